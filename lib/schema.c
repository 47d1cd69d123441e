/*
 * schema.c - a JSON Schema validator for what Run Report schemas use.
 *
 * Keywords: type, enum, const, required, properties, patternProperties,
 * additionalProperties, minProperties, maxProperties, items, minItems,
 * maxItems, uniqueItems, pattern, minLength, maxLength (code points),
 * minimum, maximum, exclusiveMinimum, exclusiveMaximum, allOf, anyOf,
 * oneOf, not, $ref within the document, and boolean schemas.  Others,
 * annotations included, are ignored.  Numbers compare by value, so
 * 1 and 1.0 are equal and both are integers.
 *
 * The whole schema is checked before any value is: keyword forms,
 * patterns, $ref targets, and loops of $ref/allOf/anyOf/oneOf/not that
 * apply a schema to the same value again (evaluation would never end).
 * So a broken schema is reported as broken whatever the document.
 *
 * Patterns are POSIX EREs searched unanchored, as JSON Schema searches
 * its ECMA-262 ones.  The ECMA escapes schema authors use (\d \w \s,
 * their negations, \t \n, escaped punctuation) are rewritten first,
 * since glibc would otherwise take "\d" for a plain 'd' without a word.
 * They run in the C.UTF-8 locale (per thread, via uselocale) when it is
 * there, so that "." and "é+" mean characters, not bytes.  glibc expands
 * repetitions as it compiles (x+ is x x*, x{2,9} nine copies of x, and
 * nested ones multiply), and its time grows with the square of the
 * groups' nesting, so a pattern that would expand beyond RE_MAX_ATOMS
 * atoms or nests groups deeper than RE_MAX_DEPTH is refused as too
 * complex: compiling it could take gigabytes, minutes, or the stack.
 * So is a quantifier on a quantifier (x**, as ECMA-262 does); a lazy
 * one's '?' (x+?) is dropped, since glibc would read it as (x+)?.
 */
#include <sys/types.h>

#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "phn.h"

#define RE_MAX_ATOMS	1024	/* glibc's cost grows with their square */
#define RE_MAX_DEPTH	32

enum { WHITE, GRAY, BLACK };

struct node {
	struct json_object *s;
	int	 color;
};

struct rx {
	const char *src;	/* the pattern's own bytes in the schema */
	regex_t	 re;
};

struct queued {
	struct json_object *s;
	char	*ptr;
};

struct ctx {
	struct json_object *root;
	struct phn_errs *errs;
	size_t	 nerr;		/* messages added by this call */
	int	 quiet;		/* in anyOf/oneOf/not: judge, don't tell */
	struct node *node;
	size_t	 nnode, nodecap;
	struct rx *rx;
	size_t	 nrx, rxcap;
	struct queued *queue;
	size_t	 qhead, nqueue, qcap;
	locale_t utf8;		/* for patterns; (locale_t)0 if missing */
	struct phn_buf path;	/* the value's path; "" is the root */
};

static void	tell(struct ctx *, const char *, const char *, const char *,
		    ...) __attribute__((format(printf, 4, 5)));
static int	validate(struct ctx *, struct json_object *,
		    struct json_object *);

#define serr(c, ptr, ...)	tell(c, "schema ", ptr, __VA_ARGS__)
#define problem(c, ...)	tell(c, "", *(c)->path.s ? (c)->path.s : "(root)", \
			    __VA_ARGS__)

static void
tell(struct ctx *c, const char *pfx, const char *where, const char *fmt, ...)
{
	va_list ap;
	char *m;

	if (c->quiet || c->nerr > PHN_SCHEMA_MAXERRS)
		return;
	if (c->nerr++ == PHN_SCHEMA_MAXERRS) {
		phn_errs_add(c->errs, "(root): more than %d problems; "
		    "the rest are not shown", PHN_SCHEMA_MAXERRS);
		return;
	}
	va_start(ap, fmt);
	m = phn_vasprintf(fmt, ap);
	va_end(ap);
	phn_errs_add(c->errs, "%s%s: %s", pfx, where, m);
	free(m);
}

/* A value as compact JSON, cut to a readable length on a UTF-8 boundary. */
static char *
show(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = strlen(s);

	if (n <= 64)
		return phn_strdup(s);
	n = 60;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return phn_asprintf("%.*s...", (int)n, s);
}

#define is_num	phn_json_is_num

/* An integer for JSON Schema: any finite whole number, however large. */
static int
is_int(struct json_object *o)
{
	double d = json_object_get_double(o);

	return is_num(o) && isfinite(d) && d == floor(d);
}

static int
is_count(struct json_object *o)
{
	return is_int(o) && json_object_get_double(o) >= 0;
}

/* Compare an integer object with a double exactly. */
static int
int_dbl_cmp(struct json_object *i, double d)
{
	int64_t x = json_object_get_int64(i);
	uint64_t u;
	double f = floor(d);

	if (x < 0) {
		if (d >= 0)
			return -1;
		if (f < -9223372036854775808.0)
			return 1;
		if (x != (int64_t)f)
			return x < (int64_t)f ? -1 : 1;
		return d > f ? -1 : 0;
	}
	if (d < 0)
		return 1;
	if (f >= 18446744073709551616.0)
		return -1;
	u = json_object_get_uint64(i);
	if (u != (uint64_t)f)
		return u < (uint64_t)f ? -1 : 1;
	return d > f ? -1 : 0;
}

/* Numbers compare by value, whichever way json-c stored them. */
static int
num_cmp(struct json_object *a, struct json_object *b)
{
	int ai = json_object_is_type(a, json_type_int);
	int bi = json_object_is_type(b, json_type_int);
	int64_t x, y;
	uint64_t u, v;
	double d, e;

	if (ai && bi) {
		x = json_object_get_int64(a);
		y = json_object_get_int64(b);
		if (x < 0 || y < 0)
			return x < y ? -1 : x > y;
		/* get_int64 saturates; get_uint64 is exact for both here */
		u = json_object_get_uint64(a);
		v = json_object_get_uint64(b);
		return u < v ? -1 : u > v;
	}
	if (ai)
		return int_dbl_cmp(a, json_object_get_double(b));
	if (bi)
		return -int_dbl_cmp(b, json_object_get_double(a));
	d = json_object_get_double(a);
	e = json_object_get_double(b);
	return d < e ? -1 : d > e;
}

static int
equal(struct json_object *a, struct json_object *b)
{
	struct json_object *w;
	size_t i, n;

	if (is_num(a) && is_num(b))
		return num_cmp(a, b) == 0;
	if (json_object_get_type(a) != json_object_get_type(b))
		return 0;
	switch (json_object_get_type(a)) {
	case json_type_null:
		return 1;
	case json_type_boolean:
		return !json_object_get_boolean(a) ==
		    !json_object_get_boolean(b);
	case json_type_string:
		n = (size_t)json_object_get_string_len(a);
		return n == (size_t)json_object_get_string_len(b) &&
		    memcmp(json_object_get_string(a),
		    json_object_get_string(b), n) == 0;
	case json_type_array:
		n = json_object_array_length(a);
		if (n != json_object_array_length(b))
			return 0;
		for (i = 0; i < n; i++)
			if (!equal(json_object_array_get_idx(a, i),
			    json_object_array_get_idx(b, i)))
				return 0;
		return 1;
	case json_type_object: {
		if (json_object_object_length(a) !=
		    json_object_object_length(b))
			return 0;
		json_object_object_foreach(a, k, v)
			if (!json_object_object_get_ex(b, k, &w) ||
			    !equal(v, w))
				return 0;
		return 1;
	}
	default:
		return 0;
	}
}

static const char *
re_class(int ch)
{
	switch (ch) {
	case 'd': case 'D':
		return "0-9";
	case 'w': case 'W':
		return "A-Za-z0-9_";
	case 's': case 'S':
		return "[:space:]";
	}
	return NULL;
}

static int
re_ctl(int ch)
{
	switch (ch) {
	case 't': return '\t';
	case 'n': return '\n';
	case 'r': return '\r';
	case 'f': return '\f';
	case 'v': return '\v';
	}
	return 0;
}

/*
 * An ECMA bracket expression at *sp into POSIX at *qp.  POSIX brackets
 * have no escapes, so an escaped ']' goes first, '^' late and '-' last.
 */
static int
re_bracket(const char **sp, char **qp, const char **why)
{
	const char *s = *sp + 1, *cl;
	char *b, *p, *q = *qp;
	int neg = 0, rb = 0, dash = 0, caret = 0, ch;

	b = p = phn_malloc(8 * strlen(s) + 16);
	if (*s == '^') {
		neg = 1;
		s++;
	}
	if (*s == ']') {
		*why = "empty character class";
		goto fail;
	}
	while (*s != ']') {
		if (*s == '\0') {
			*why = "missing ]";
			goto fail;
		}
		if (*s != '\\') {
			*p++ = *s++;
			continue;
		}
		if ((ch = (unsigned char)s[1]) == '\0') {
			*why = "trailing backslash";
			goto fail;
		}
		s += 2;
		if ((cl = re_class(ch)) != NULL && islower(ch))
			p = stpcpy(p, cl);
		else if (re_ctl(ch))
			*p++ = (char)re_ctl(ch);
		else if (ch == ']')
			rb = 1;
		else if (ch == '-')
			dash = 1;
		else if (ch == '^')
			caret = 1;
		else if (ch >= 0x80 || !isalnum(ch))
			*p++ = (char)ch;
		else {
			*why = "unsupported escape in a character class";
			goto fail;
		}
	}
	*p = '\0';
	*sp = s + 1;
	if (!neg && !rb && caret && *b == '\0')
		q = stpcpy(q, dash ? "[-^]" : "\\^");
	else {
		*q++ = '[';
		if (neg)
			*q++ = '^';
		if (rb)
			*q++ = ']';
		q = stpcpy(q, b);
		if (caret)
			*q++ = '^';
		if (dash)
			*q++ = '-';
		*q++ = ']';
	}
	*qp = q;
	free(b);
	return 0;
fail:
	free(b);
	return -1;
}

/* A pattern's size once glibc expands its repetitions (re_size). */
struct re_cost {
	double	*atoms;		/* of the group open at each depth */
	size_t	 d;		/* the depth */
	double	 last;		/* of the last atom or group */
	int	 quant;		/* the last token was a quantifier */
};

/*
 * Count a pattern's next token into c: the plain character or quantifier
 * at s, or (s NULL) an escape or a bracket.  A quantifier repeats the
 * last atom or group.  Returns the length of the token at s; 0 for a
 * lazy quantifier's '?', dropped (a search cannot tell lazy from
 * greedy; glibc would read x+? as (x+)?); -1 for a quantifier on a
 * quantifier, which ECMA-262 refuses and glibc takes ages over.
 */
/*
 * The length of the bounds {n}, {n,}, {n,m} or {,m} at s, 0 if there are
 * none; *k gets how many copies of x x{...} makes: n or m, n + 1 for
 * {n,}.
 */
static int
re_bounds(const char *s, double *k)
{
	const char *e;
	double n = 0, m;

	if (*s != '{')
		return 0;
	for (e = s + 1; isdigit((unsigned char)*e); e++)
		n = n * 10 + (*e - '0');
	m = n;
	if (*e == ',' && e[1] == '}')
		m = n + 1;
	else if (*e == ',')
		for (m = 0, e++; isdigit((unsigned char)*e); e++)
			m = m * 10 + (*e - '0');
	if (*e != '}' || e == s + 1)
		return 0;
	*k = fmax(fmax(n, m), 1);
	return (int)(e + 1 - s);
}

static int
re_size(const char *s, struct re_cost *c)
{
	double k = 1, *a = c->atoms;
	int quant = c->quant, len = 1;

	c->quant = s != NULL && (strchr("+*?", *s) != NULL ||
	    (len = re_bounds(s, &k)) > 0);
	if (len == 0)
		len = 1;
	if (c->quant && quant == 1 && *s == '?') {
		c->quant = 2;
		return 0;
	}
	if (c->quant && quant)
		return -1;
	if (s == NULL || (!c->quant && strchr("()|", *s) == NULL)) {
		a[c->d] += 1;
		c->last = 1;
	} else if (*s == '(')
		a[++c->d] = c->last = 0;
	else if (*s == ')' && c->d > 0) {
		c->last = fmax(a[c->d--], 1);	/* () is not free */
		a[c->d] += c->last;
	} else if (*s == '+') {
		a[c->d] += c->last;
		c->last *= 2;
	} else if (*s == '{') {
		a[c->d] += c->last * (k - 1);
		c->last *= k;
	} else if (*s == '|')
		c->last = 0;
	return s == NULL ? 0 : len;
}

static char *
re_posix(const char *s, const char **why)
{
	struct re_cost c = { .d = 0 };
	char *o, *q;
	const char *cl;
	int ch, n;

	o = q = phn_malloc(8 * strlen(s) + 16);
	c.atoms = phn_malloc((strlen(s) + 2) * sizeof(*c.atoms));
	c.atoms[0] = 0;
	for (;;) {
		if (c.atoms[c.d] > RE_MAX_ATOMS || c.last > RE_MAX_ATOMS ||
		    c.d > RE_MAX_DEPTH) {
			*why = "too complex (over 1024 atoms once its "
			    "repetitions are expanded, or groups nested over "
			    "32 deep)";
			goto fail;
		}
		if (*s == '\0')
			break;
		if (*s == '[') {
			if (re_bracket(&s, &q, why) == -1)
				goto fail;
			re_size(NULL, &c);
			continue;
		}
		if (*s != '\\') {
			if ((n = re_size(s, &c)) == -1) {
				*why = "a quantifier on a quantifier";
				goto fail;
			}
			memcpy(q, s, (size_t)n);
			q += n;
			s += n ? n : 1;
			continue;
		}
		if ((ch = (unsigned char)s[1]) == '\0') {
			*why = "trailing backslash";
			goto fail;
		}
		re_size(NULL, &c);
		s += 2;
		if ((cl = re_class(ch)) != NULL) {
			q = stpcpy(q, isupper(ch) ? "[^" : "[");
			q = stpcpy(q, cl);
			*q++ = ']';
		} else if (re_ctl(ch))
			*q++ = (char)re_ctl(ch);
		else if (ch == 'b' || ch == 'B' ||
		    (ch < 0x80 && strchr(".[]()*+?{}|^$\\", ch) != NULL)) {
			*q++ = '\\';
			*q++ = (char)ch;
		} else if (ch >= 0x80 || !isalnum(ch))
			*q++ = (char)ch;	/* glibc gives \< \' ... meanings */
		else {
			*why = "unsupported escape";
			goto fail;
		}
	}
	*q = '\0';
	free(c.atoms);
	return o;
fail:
	free(c.atoms);
	free(o);
	return NULL;
}

/* The compiled form of a pattern, compiled once; NULL if it is bad. */
static regex_t *
rx_get(struct ctx *c, const char *src, size_t len, const char *ptr)
{
	const char *why = NULL;
	char *posix, msg[128];
	locale_t old = (locale_t)0;
	size_t i;
	int e;

	for (i = 0; i < c->nrx; i++)
		if (c->rx[i].src == src)
			return &c->rx[i].re;
	if (strlen(src) != len) {
		serr(c, ptr, "pattern contains a NUL character");
		return NULL;
	}
	if ((posix = re_posix(src, &why)) == NULL) {
		serr(c, ptr, "cannot use pattern %s: %s", src, why);
		return NULL;
	}
	if (c->nrx == c->rxcap) {
		c->rxcap = c->rxcap ? 2 * c->rxcap : 8;
		c->rx = phn_realloc(c->rx, c->rxcap * sizeof(*c->rx));
	}
	if (c->utf8)
		old = uselocale(c->utf8);
	e = regcomp(&c->rx[c->nrx].re, posix, REG_EXTENDED | REG_NOSUB);
	if (c->utf8)
		uselocale(old);
	free(posix);
	if (e != 0) {
		regerror(e, &c->rx[c->nrx].re, msg, sizeof(msg));
		serr(c, ptr, "cannot compile pattern %s: %s", src, msg);
		return NULL;
	}
	c->rx[c->nrx].src = src;
	return &c->rx[c->nrx++].re;
}

static int
rx_search(struct ctx *c, regex_t *re, const char *s, size_t len)
{
	regmatch_t m[1];
	locale_t old = (locale_t)0;
	int flags = 0, r;

	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)len;
#ifdef REG_STARTEND
	flags = REG_STARTEND;	/* a string may hold "\u0000" */
#endif
	if (c->utf8)
		old = uselocale(c->utf8);
	r = regexec(re, s, 1, m, flags);
	if (c->utf8)
		uselocale(old);
	return r == 0;
}

static char *
ptr_add(const char *ptr, const char *key)
{
	char *r = phn_malloc(strlen(ptr) + 2 * strlen(key) + 2), *q;

	q = stpcpy(r, ptr);
	*q++ = '/';
	for (; *key != '\0'; key++) {
		if (*key == '~' || *key == '/') {
			*q++ = '~';
			*q++ = *key == '~' ? '0' : '1';
		} else
			*q++ = *key;
	}
	*q = '\0';
	return r;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Follow a JSON Pointer token; NULL for a missing member. */
static int
ptr_step(struct json_object *o, const char *tok, struct json_object **out)
{
	const char *p;
	size_t i = 0;

	if (json_object_is_type(o, json_type_object))
		return json_object_object_get_ex(o, tok, out) ? 0 : -1;
	if (!json_object_is_type(o, json_type_array) || *tok == '\0' ||
	    (tok[0] == '0' && tok[1] != '\0'))
		return -1;
	for (p = tok; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p) || i > SIZE_MAX / 10 - 1)
			return -1;
		i = 10 * i + (size_t)(*p - '0');
	}
	if (i >= json_object_array_length(o))
		return -1;
	*out = json_object_array_get_idx(o, i);
	return 0;
}

/*
 * Resolve "#", "#/json/pointer", or the same after the root's own $id.
 * The fragment is %-decoded, then each token ~1/~0-unescaped.
 */
static int
ref_resolve(struct ctx *c, const char *ref, struct json_object **out)
{
	struct json_object *o = c->root, *id;
	const char *s;
	char *buf, *p, *q, *tok;
	size_t n;
	int h, l, r = 0;

	if (*ref != '#' && json_object_object_get_ex(c->root, "$id", &id) &&
	    json_object_is_type(id, json_type_string)) {
		n = strlen(json_object_get_string(id));
		if (n > 0 && strncmp(ref, json_object_get_string(id), n) == 0)
			ref += n;
	}
	if (*ref == '#')
		ref++;
	else if (*ref != '\0')
		return -1;
	if (*ref != '\0' && *ref != '/')
		return -1;
	buf = q = phn_malloc(strlen(ref) + 1);
	for (s = ref; *s != '\0'; s++) {
		if (*s != '%')
			*q++ = *s;
		else if ((h = hexval(s[1])) >= 0 && (l = hexval(s[2])) >= 0 &&
		    (h | l) != 0) {
			*q++ = (char)(16 * h + l);
			s += 2;
		} else {
			free(buf);
			return -1;
		}
	}
	*q = '\0';
	for (p = buf; r == 0 && *p == '/'; ) {
		tok = q = ++p;
		for (; *p != '\0' && *p != '/'; p++) {
			if (*p != '~')
				*q++ = *p;
			else if (p[1] == '0' || p[1] == '1')
				*q++ = *++p == '0' ? '~' : '/';
			else
				r = -1;
		}
		l = *p;
		*q = '\0';
		if (r == 0)
			r = ptr_step(o, tok, &o);
		*p = (char)l;
	}
	free(buf);
	*out = o;
	return r;
}

static size_t
node_get(struct ctx *c, struct json_object *s)
{
	size_t i;

	for (i = 0; i < c->nnode; i++)
		if (c->node[i].s == s)
			return i;
	if (c->nnode == c->nodecap) {
		c->nodecap = c->nodecap ? 2 * c->nodecap : 32;
		c->node = phn_realloc(c->node, c->nodecap * sizeof(*c->node));
	}
	c->node[c->nnode].s = s;
	c->node[c->nnode].color = WHITE;
	return c->nnode++;
}

/* A subschema for a deeper value: checked after the current walk. */
static void
later(struct ctx *c, struct json_object *s, char *ptr)
{
	if (c->nqueue == c->qcap) {
		c->qcap = c->qcap ? 2 * c->qcap : 32;
		c->queue = phn_realloc(c->queue, c->qcap * sizeof(*c->queue));
	}
	c->queue[c->nqueue].s = s;
	c->queue[c->nqueue++].ptr = ptr;
}

static const char *types[] = { "null", "boolean", "object", "array",
	"number", "integer", "string", NULL };

static int
type_name_ok(struct json_object *t)
{
	size_t i;

	if (!json_object_is_type(t, json_type_string))
		return 0;
	for (i = 0; types[i] != NULL; i++)
		if (strcmp(json_object_get_string(t), types[i]) == 0)
			return 1;
	return 0;
}

static void	check(struct ctx *, struct json_object *, const char *);

static void
check_kw(struct ctx *c, const char *k, struct json_object *v, const char *ptr)
{
	struct json_object *t;
	char *sub = ptr_add(ptr, k);
	size_t i, n = 0;
	int arr = json_object_is_type(v, json_type_array);

	if (arr)
		n = json_object_array_length(v);
	if (strcmp(k, "type") == 0) {
		for (i = 0; arr && i < n; i++)
			if (!type_name_ok(json_object_array_get_idx(v, i)))
				break;
		if (arr ? n == 0 || i < n : !type_name_ok(v))
			serr(c, sub, "must be a type name or an array of "
			    "them (null, boolean, object, array, number, "
			    "integer, string)");
	} else if (strcmp(k, "required") == 0) {
		for (i = 0; arr && i < n; i++)
			if (!json_object_is_type(json_object_array_get_idx(v,
			    i), json_type_string))
				break;
		if (!arr || i < n)
			serr(c, sub, "must be an array of strings");
	} else if (strcmp(k, "properties") == 0 ||
	    strcmp(k, "patternProperties") == 0 ||
	    strcmp(k, "$defs") == 0 || strcmp(k, "definitions") == 0) {
		if (!json_object_is_type(v, json_type_object)) {
			serr(c, sub, "must be an object");
			goto out;
		}
		json_object_object_foreach(v, pk, ps) {
			if (strcmp(k, "patternProperties") == 0)
				rx_get(c, pk, strlen(pk), sub);
			later(c, ps, ptr_add(sub, pk));
		}
	} else if (strcmp(k, "items") == 0 && arr)
		serr(c, sub, "the array (tuple) form is not supported");
	else if (strcmp(k, "items") == 0 ||
	    strcmp(k, "additionalProperties") == 0) {
		later(c, v, sub);
		return;
	} else if (strcmp(k, "not") == 0)
		check(c, v, sub);
	else if (strcmp(k, "allOf") == 0 || strcmp(k, "anyOf") == 0 ||
	    strcmp(k, "oneOf") == 0) {
		if (!arr || n == 0)
			serr(c, sub, "must be a non-empty array of schemas");
		for (i = 0; arr && i < n; i++) {
			char *e = phn_asprintf("%s/%zu", sub, i);
			check(c, json_object_array_get_idx(v, i), e);
			free(e);
		}
	} else if (strcmp(k, "$ref") == 0) {
		if (!json_object_is_type(v, json_type_string))
			serr(c, sub, "must be a string");
		else if (ref_resolve(c, json_object_get_string(v), &t) == -1)
			serr(c, sub, "cannot resolve \"%s\" in this document",
			    json_object_get_string(v));
		else
			check(c, t, json_object_get_string(v));
	} else if (strcmp(k, "enum") == 0) {
		if (!arr)
			serr(c, sub, "must be an array");
	} else if (strcmp(k, "pattern") == 0) {
		if (!json_object_is_type(v, json_type_string))
			serr(c, sub, "must be a string");
		else
			rx_get(c, json_object_get_string(v),
			    (size_t)json_object_get_string_len(v), sub);
	} else if (strcmp(k, "minItems") == 0 || strcmp(k, "maxItems") == 0 ||
	    strcmp(k, "minLength") == 0 || strcmp(k, "maxLength") == 0 ||
	    strcmp(k, "minProperties") == 0 ||
	    strcmp(k, "maxProperties") == 0) {
		if (!is_count(v))
			serr(c, sub, "must be a non-negative integer");
	} else if (strcmp(k, "minimum") == 0 || strcmp(k, "maximum") == 0) {
		if (!is_num(v))
			serr(c, sub, "must be a number");
	} else if (strcmp(k, "exclusiveMinimum") == 0 ||
	    strcmp(k, "exclusiveMaximum") == 0) {
		if (!is_num(v) && !json_object_is_type(v, json_type_boolean))
			serr(c, sub, "must be a number");
	} else if (strcmp(k, "uniqueItems") == 0) {
		if (!json_object_is_type(v, json_type_boolean))
			serr(c, sub, "must be a boolean");
	}
out:
	free(sub);
}

/*
 * Check schema s, following the keywords that apply a schema to the
 * same value depth first: meeting a GRAY schema again is a loop.
 * Subschemas of deeper values wait in the work queue.
 */
static void
check(struct ctx *c, struct json_object *s, const char *ptr)
{
	size_t i;

	if (json_object_is_type(s, json_type_boolean))
		return;
	if (s == NULL) {
		serr(c, ptr, "not a schema (want an object or a boolean)");
		return;
	}
	i = node_get(c, s);
	if (c->node[i].color == BLACK)
		return;
	if (!json_object_is_type(s, json_type_object)) {
		serr(c, ptr, "not a schema (want an object or a boolean)");
		c->node[i].color = BLACK;
		return;
	}
	if (c->node[i].color == GRAY) {
		serr(c, ptr, "$ref loop: the schema applies to the same "
		    "value again");
		return;
	}
	c->node[i].color = GRAY;
	json_object_object_foreach(s, k, v)
		check_kw(c, k, v, ptr);
	c->node[i].color = BLACK;
}

static size_t
path_key(struct ctx *c, const char *k)
{
	size_t old = c->path.len, i;
	struct json_object *js;
	const char *q;

	for (i = 0; k[i] != '\0'; i++)
		if (!(isalpha((unsigned char)k[i]) || k[i] == '_' ||
		    (i > 0 && isdigit((unsigned char)k[i]))))
			break;
	if (i > 0 && k[i] == '\0') {
		if (old > 0)
			phn_buf_put(&c->path, ".", 1);
		phn_buf_put(&c->path, k, i);
		return old;
	}
	js = json_object_new_string(k);
	q = json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
	phn_buf_put(&c->path, "[", 1);
	phn_buf_put(&c->path, q, strlen(q));
	phn_buf_put(&c->path, "]", 1);
	json_object_put(js);
	return old;
}

static size_t
path_idx(struct ctx *c, size_t i)
{
	size_t old = c->path.len;
	char b[32];

	snprintf(b, sizeof(b), "[%zu]", i);
	phn_buf_put(&c->path, b, strlen(b));
	return old;
}

static void
path_pop(struct ctx *c, size_t old)
{
	c->path.len = old;
	c->path.s[old] = '\0';
}

static const char *
vtype(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_double: return "number";
	case json_type_int: return "integer";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "value";
}

static int
type_is(const char *t, struct json_object *v)
{
	if (strcmp(t, "number") == 0)
		return is_num(v);
	if (strcmp(t, "integer") == 0)
		return is_int(v);
	return strcmp(t, vtype(v)) == 0;
}

static int
v_type(struct ctx *c, struct json_object *t, struct json_object *v)
{
	size_t i, n;
	char *want, *w;

	if (json_object_is_type(t, json_type_string)) {
		if (type_is(json_object_get_string(t), v))
			return 0;
		problem(c, "expected %s, got %s", json_object_get_string(t),
		    vtype(v));
		return 1;
	}
	n = json_object_array_length(t);
	for (i = 0; i < n; i++)
		if (type_is(json_object_get_string(
		    json_object_array_get_idx(t, i)), v))
			return 0;
	want = phn_strdup(json_object_get_string(
	    json_object_array_get_idx(t, 0)));
	for (i = 1; i < n; i++) {
		w = phn_asprintf("%s%s%s", want, i + 1 < n ? ", " : " or ",
		    json_object_get_string(json_object_array_get_idx(t, i)));
		free(want);
		want = w;
	}
	problem(c, "expected %s, got %s", want, vtype(v));
	free(want);
	return 1;
}

static int
v_string(struct ctx *c, struct json_object *s, struct json_object *v)
{
	const char *str = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v), cp = 0, i;
	struct json_object *k;
	regex_t *re;
	char *sv;
	int bad = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)str[i] & 0xc0) != 0x80)
			cp++;
	if (json_object_object_get_ex(s, "minLength", &k) &&
	    (int64_t)cp < json_object_get_int64(k)) {
		problem(c, "length %zu is less than minLength %lld", cp,
		    (long long)json_object_get_int64(k));
		bad = 1;
	}
	if (json_object_object_get_ex(s, "maxLength", &k) &&
	    (int64_t)cp > json_object_get_int64(k)) {
		problem(c, "length %zu is more than maxLength %lld", cp,
		    (long long)json_object_get_int64(k));
		bad = 1;
	}
	if (json_object_object_get_ex(s, "pattern", &k) &&
	    (re = rx_get(c, json_object_get_string(k),
	    (size_t)json_object_get_string_len(k), "pattern")) != NULL &&
	    !rx_search(c, re, str, len)) {
		sv = show(v);
		problem(c, "%s does not match pattern %s", sv,
		    json_object_get_string(k));
		free(sv);
		bad = 1;
	}
	return bad;
}

/* One bound: sign is the side v must not be on, strict if equal fails. */
static int
v_bound(struct ctx *c, struct json_object *s, struct json_object *v,
    const char *kw, int sign, int strict, const char *what)
{
	struct json_object *k;
	char *sv, *sk;
	int r;

	if (!json_object_object_get_ex(s, kw, &k) || !is_num(k))
		return 0;
	r = num_cmp(v, k);
	if (r != sign && (r != 0 || !strict))
		return 0;
	sv = show(v);
	sk = show(k);
	problem(c, "%s is %s %s %s", sv, what, kw, sk);
	free(sv);
	free(sk);
	return 1;
}

static int
v_number(struct ctx *c, struct json_object *s, struct json_object *v)
{
	struct json_object *k;
	int xmin = 0, xmax = 0, bad = 0;

	/* draft 4: a boolean exclusiveMinimum makes minimum strict */
	if (json_object_object_get_ex(s, "exclusiveMinimum", &k) &&
	    json_object_is_type(k, json_type_boolean))
		xmin = json_object_get_boolean(k);
	if (json_object_object_get_ex(s, "exclusiveMaximum", &k) &&
	    json_object_is_type(k, json_type_boolean))
		xmax = json_object_get_boolean(k);
	bad |= v_bound(c, s, v, "minimum", -1, xmin,
	    xmin ? "not more than" : "less than");
	bad |= v_bound(c, s, v, "maximum", 1, xmax,
	    xmax ? "not less than" : "more than");
	bad |= v_bound(c, s, v, "exclusiveMinimum", -1, 1, "not more than");
	bad |= v_bound(c, s, v, "exclusiveMaximum", 1, 1, "not less than");
	return bad;
}

static int
v_array(struct ctx *c, struct json_object *s, struct json_object *v)
{
	struct json_object *k;
	size_t n = json_object_array_length(v), i, j, old;
	int bad = 0;

	if (json_object_object_get_ex(s, "minItems", &k) &&
	    (int64_t)n < json_object_get_int64(k)) {
		problem(c, "%zu items, fewer than minItems %lld", n,
		    (long long)json_object_get_int64(k));
		bad = 1;
	}
	if (json_object_object_get_ex(s, "maxItems", &k) &&
	    (int64_t)n > json_object_get_int64(k)) {
		problem(c, "%zu items, more than maxItems %lld", n,
		    (long long)json_object_get_int64(k));
		bad = 1;
	}
	if (json_object_object_get_ex(s, "uniqueItems", &k) &&
	    json_object_get_boolean(k))
		for (i = 0; i < n; i++)
			for (j = i + 1; j < n; j++)
				if (equal(json_object_array_get_idx(v, i),
				    json_object_array_get_idx(v, j))) {
					old = path_idx(c, j);
					problem(c, "equals item %zu, but "
					    "uniqueItems is set", i);
					path_pop(c, old);
					bad = 1;
				}
	if (json_object_object_get_ex(s, "items", &k))
		for (i = 0; i < n; i++) {
			old = path_idx(c, i);
			bad |= validate(c, k, json_object_array_get_idx(v, i));
			path_pop(c, old);
		}
	return bad;
}

static int
v_object(struct ctx *c, struct json_object *s, struct json_object *v)
{
	struct json_object *k, *props = NULL, *pats = NULL, *add = NULL, *w;
	size_t i, n, old;
	regex_t *re;
	int bad = 0, seen, hasadd;

	if (json_object_object_get_ex(s, "required", &k)) {
		n = json_object_array_length(k);
		for (i = 0; i < n; i++) {
			const char *name = json_object_get_string(
			    json_object_array_get_idx(k, i));
			if (json_object_object_get_ex(v, name, NULL))
				continue;
			old = path_key(c, name);
			problem(c, "required property is missing");
			path_pop(c, old);
			bad = 1;
		}
	}
	json_object_object_get_ex(s, "properties", &props);
	json_object_object_get_ex(s, "patternProperties", &pats);
	hasadd = json_object_object_get_ex(s, "additionalProperties", &add);
	json_object_object_foreach(v, key, val) {
		seen = 0;
		old = path_key(c, key);
		if (props != NULL &&
		    json_object_object_get_ex(props, key, &w)) {
			bad |= validate(c, w, val);
			seen = 1;
		}
		if (pats != NULL) {
			json_object_object_foreach(pats, pk, ps) {
				re = rx_get(c, pk, strlen(pk), "pattern");
				if (re != NULL && rx_search(c, re, key,
				    strlen(key))) {
					bad |= validate(c, ps, val);
					seen = 1;
				}
			}
		}
		if (!seen && hasadd) {
			if (json_object_is_type(add, json_type_boolean) &&
			    !json_object_get_boolean(add)) {
				problem(c, "additional property is not "
				    "allowed");
				bad = 1;
			} else
				bad |= validate(c, add, val);
		}
		path_pop(c, old);
	}
	n = (size_t)json_object_object_length(v);
	if (json_object_object_get_ex(s, "minProperties", &k) &&
	    (int64_t)n < json_object_get_int64(k)) {
		problem(c, "%zu properties, fewer than minProperties %lld", n,
		    (long long)json_object_get_int64(k));
		bad = 1;
	}
	if (json_object_object_get_ex(s, "maxProperties", &k) &&
	    (int64_t)n > json_object_get_int64(k)) {
		problem(c, "%zu properties, more than maxProperties %lld", n,
		    (long long)json_object_get_int64(k));
		bad = 1;
	}
	return bad;
}

/* How many of the array's schemas v matches, judged quietly. */
static size_t
matches(struct ctx *c, struct json_object *arr, struct json_object *v,
    size_t enough)
{
	size_t i, n = json_object_array_length(arr), m = 0;

	c->quiet++;
	for (i = 0; i < n && m < enough; i++)
		if (validate(c, json_object_array_get_idx(arr, i), v) == 0)
			m++;
	c->quiet--;
	return m;
}

static int
v_apply(struct ctx *c, struct json_object *s, struct json_object *v)
{
	struct json_object *k, *t;
	size_t i, n, m;
	int bad = 0;

	if (json_object_object_get_ex(s, "$ref", &k) &&
	    ref_resolve(c, json_object_get_string(k), &t) == 0)
		bad |= validate(c, t, v);
	if (json_object_object_get_ex(s, "allOf", &k)) {
		n = json_object_array_length(k);
		for (i = 0; i < n; i++)
			bad |= validate(c, json_object_array_get_idx(k, i), v);
	}
	if (json_object_object_get_ex(s, "anyOf", &k) &&
	    matches(c, k, v, 1) == 0) {
		problem(c, "matches none of the schemas in anyOf");
		bad = 1;
	}
	if (json_object_object_get_ex(s, "oneOf", &k) &&
	    (m = matches(c, k, v, SIZE_MAX)) != 1) {
		if (m == 0)
			problem(c, "matches none of the schemas in oneOf");
		else
			problem(c, "matches %zu schemas in oneOf, not "
			    "exactly one", m);
		bad = 1;
	}
	if (json_object_object_get_ex(s, "not", &k)) {
		c->quiet++;
		m = validate(c, k, v) == 0;
		c->quiet--;
		if (m) {
			problem(c, "matches the schema in not");
			bad = 1;
		}
	}
	return bad;
}

static int
validate(struct ctx *c, struct json_object *s, struct json_object *v)
{
	struct json_object *k;
	size_t i, n;
	char *sv, *sk;
	int bad = 0;

	if (!c->quiet && c->nerr > PHN_SCHEMA_MAXERRS)
		return 1;
	if (json_object_is_type(s, json_type_boolean)) {
		if (json_object_get_boolean(s))
			return 0;
		problem(c, "no value is allowed here");
		return 1;
	}
	if (json_object_object_get_ex(s, "type", &k) && v_type(c, k, v))
		return 1;
	if (json_object_object_get_ex(s, "enum", &k)) {
		n = json_object_array_length(k);
		for (i = 0; i < n; i++)
			if (equal(v, json_object_array_get_idx(k, i)))
				break;
		if (i == n) {
			sv = show(v);
			sk = show(k);
			problem(c, "%s is not one of %s", sv, sk);
			free(sv);
			free(sk);
			bad = 1;
		}
	}
	if (json_object_object_get_ex(s, "const", &k) && !equal(v, k)) {
		sv = show(v);
		sk = show(k);
		problem(c, "%s is not the constant %s", sv, sk);
		free(sv);
		free(sk);
		bad = 1;
	}
	switch (json_object_get_type(v)) {
	case json_type_string:
		bad |= v_string(c, s, v);
		break;
	case json_type_int:
	case json_type_double:
		bad |= v_number(c, s, v);
		break;
	case json_type_array:
		bad |= v_array(c, s, v);
		break;
	case json_type_object:
		bad |= v_object(c, s, v);
		break;
	default:
		break;
	}
	return v_apply(c, s, v) | bad;
}

int
phn_schema_validate(struct json_object *schema, struct json_object *doc,
    struct phn_errs *errs)
{
	static locale_t utf8;
	struct ctx c;
	size_t i;
	int r = -1;

	memset(&c, 0, sizeof(c));
	c.root = schema;
	c.errs = errs;
	/* made once per process: each newlocale reads the locale files */
	if (utf8 == (locale_t)0 && (utf8 = newlocale(LC_CTYPE_MASK |
	    LC_COLLATE_MASK, "C.utf8", (locale_t)0)) == (locale_t)0)
		utf8 = newlocale(LC_CTYPE_MASK | LC_COLLATE_MASK, "C.UTF-8",
		    (locale_t)0);	/* ("C.utf8" is glibc's name: no probing) */
	c.utf8 = utf8;
	check(&c, schema, "#");
	for (; c.qhead < c.nqueue; c.qhead++)
		check(&c, c.queue[c.qhead].s, c.queue[c.qhead].ptr);
	if (c.nerr == 0) {
		phn_buf_put(&c.path, "", 0);
		r = validate(&c, schema, doc);
	}
	for (i = 0; i < c.nqueue; i++)
		free(c.queue[i].ptr);
	for (i = 0; i < c.nrx; i++)
		regfree(&c.rx[i].re);
	free(c.queue);
	free(c.rx);
	free(c.node);
	free(c.path.s);
	return r;
}
