/*
 * json.c - json-c helpers: strict located parsing, the on-disk document
 * form (sorted keys, 2-space indent, trailing newline, which json-c's own
 * pretty printer does not sort), and one compact object per output line.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "phn.h"

/*
 * Parse buf strictly.  On error return NULL with "NAME:LINE:COL: msg"
 * (or "NAME: msg") in msg.
 */
struct json_object *
phn_json_parse(const char *buf, size_t len, const char *name, char *msg,
    size_t msglen)
{
	struct json_tokener *tok;
	struct json_object *o;
	char scan[192];

	if (phn_json_prescan(buf, len, PHN_JSON_MAX_DEPTH, scan,
	    sizeof(scan)) == -1) {
		snprintf(msg, msglen, "%s:%s", name, scan);
		return NULL;
	}
	if ((tok = json_tokener_new_ex(PHN_JSON_MAX_DEPTH + 1)) == NULL)
		phn_die(PHN_EXIT_TEMP, "out of memory");
	o = json_tokener_parse_ex(tok, buf, (int)len);
	/* A bare scalar at the very end leaves json-c wanting more input. */
	if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	if (o == NULL && json_tokener_get_error(tok) == json_tokener_success)
		snprintf(msg, msglen, "%s: the document is null, not an object",
		    name);
	else if (o == NULL ||
	    json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(msg, msglen, "%s: %s", name, json_tokener_error_desc(
		    json_tokener_get_error(tok)));
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* Read and parse a JSON file; errno-based failures also go into msg. */
struct json_object *
phn_json_load(const char *path, char *msg, size_t msglen)
{
	char *buf;
	size_t len;
	struct json_object *o;

	if (phn_read_file(path, &buf, &len, PHN_JSON_MAXSZ) == -1) {
		snprintf(msg, msglen, "%s: %s", path, errno == EFBIG ?
		    "file too large" : strerror(errno));
		return NULL;
	}
	if (len > INT32_MAX) {
		free(buf);
		snprintf(msg, msglen, "%s: file too large", path);
		return NULL;
	}
	o = phn_json_parse(buf, len, path, msg, msglen);
	free(buf);
	return o;
}

/*
 * A JSON document that must be an object (and, with key, have key of
 * type t): it, or NULL with errno (EINVAL: not that shape).
 */
struct json_object *
phn_json_load_doc(const char *path, const char *key, enum json_type t)
{
	char msg[512];
	struct json_object *o = phn_json_load(path, msg, sizeof(msg));

	if (o != NULL && (!json_object_is_type(o, json_type_object) ||
	    (key != NULL && !json_object_is_type(phn_json_get(o, key), t)))) {
		json_object_put(o);
		errno = EINVAL;
		return NULL;
	}
	return o;
}

/* The element of array arr whose member key is the string val, or NULL. */
struct json_object *
phn_json_find(struct json_object *arr, const char *key, const char *val)
{
	size_t i, n = json_object_is_type(arr, json_type_array) ?
	    json_object_array_length(arr) : 0;
	const char *s;

	for (i = 0; i < n; i++)
		if ((s = phn_jstr(json_object_array_get_idx(arr, i), key)) !=
		    NULL && strcmp(s, val) == 0)
			return json_object_array_get_idx(arr, i);
	return NULL;
}

void
phn_buf_put(struct phn_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = phn_realloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
bputs(struct phn_buf *b, const char *s)
{
	phn_buf_put(b, s, strlen(s));
}

static void
indent(struct phn_buf *b, int n)
{
	static const char sp[] = "\n                                ";
	int k;

	phn_buf_put(b, sp, 1);
	for (n *= 2; n > 0; n -= k) {
		k = n < (int)sizeof(sp) - 2 ? n : (int)sizeof(sp) - 2;
		phn_buf_put(b, sp + 1, (size_t)k);
	}
}

/*
 * s (n bytes) as a JSON string, escaped as json-c's
 * json_object_to_json_string_ext(JSON_C_TO_STRING_PLAIN |
 * JSON_C_TO_STRING_NOSLASHESCAPE) does, without making an object for it:
 * the documents are byte for byte the same.
 */
static void
bstring(struct phn_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;
	char esc[8];

	phn_buf_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = NULL;
		switch (c) {
		case '\b': e = "\\b"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		case '\f': e = "\\f"; break;
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		default:
			if (c < ' ') {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xf];
				esc[6] = '\0';
				e = esc;
			}
			break;
		}
		if (e == NULL) {
			run++;
			continue;
		}
		phn_buf_put(b, s + i - run, run);
		run = 0;
		bputs(b, e);
	}
	phn_buf_put(b, s + n - run, run);
	phn_buf_put(b, "\"", 1);
}

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
pretty(struct phn_buf *b, struct json_object *o, int depth)
{
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_object: {
		struct json_object_iterator it, end;
		const char **keys;

		n = (size_t)json_object_object_length(o);
		if (n == 0) {
			bputs(b, "{}");
			return;
		}
		keys = phn_malloc(n * sizeof(*keys));
		i = 0;
		it = json_object_iter_begin(o);
		end = json_object_iter_end(o);
		for (; !json_object_iter_equal(&it, &end);
		    json_object_iter_next(&it))
			keys[i++] = json_object_iter_peek_name(&it);
		qsort(keys, n, sizeof(*keys), strp_cmp);
		bputs(b, "{");
		for (i = 0; i < n; i++) {
			indent(b, depth + 1);
			bstring(b, keys[i], strlen(keys[i]));
			bputs(b, ": ");
			pretty(b, json_object_object_get(o, keys[i]), depth + 1);
			if (i + 1 < n)
				bputs(b, ",");
		}
		free(keys);
		indent(b, depth);
		bputs(b, "}");
		return;
	}
	case json_type_array:
		n = json_object_array_length(o);
		if (n == 0) {
			bputs(b, "[]");
			return;
		}
		bputs(b, "[");
		for (i = 0; i < n; i++) {
			indent(b, depth + 1);
			pretty(b, json_object_array_get_idx(o, i), depth + 1);
			if (i + 1 < n)
				bputs(b, ",");
		}
		indent(b, depth);
		bputs(b, "]");
		return;
	case json_type_string:
		bstring(b, json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
		return;
	default:
		bputs(b, json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
}

/* The document form of o: sorted keys, 2-space indent, final newline. */
char *
phn_json_pretty(struct json_object *o)
{
	struct phn_buf b = { NULL, 0, 0 };

	pretty(&b, o, 0);
	bputs(&b, "\n");
	return b.s;
}

/* o in the document form, written by phn_atomic_write with flags. */
int
phn_json_write(const char *path, struct json_object *o, int flags)
{
	char *s = phn_json_pretty(o);
	int r = phn_atomic_write(path, s, strlen(s), flags);

	free(s);
	return r;
}

/* One compact object on one line; line-buffered stdout makes it one write. */
void
phn_json_emit(FILE *fp, struct json_object *o)
{
	fprintf(fp, "%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *
phn_json_type(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "a value";
}

/*
 * The one rule for an integer: an int, or an integral double, within
 * +-PHN_JSON_INT_MAX (2^53, what any JSON reader keeps exactly).  json-c
 * reads larger literals as int64 (or clamps them), so both are bounded.
 */
int
phn_json_is_int(struct json_object *o)
{
	double d;
	int64_t i;

	if (json_object_is_type(o, json_type_int)) {
		i = json_object_get_int64(o);
		return i >= -PHN_JSON_INT_MAX && i <= PHN_JSON_INT_MAX;
	}
	if (!json_object_is_type(o, json_type_double))
		return 0;
	d = json_object_get_double(o);
	return isfinite(d) && d == floor(d) && fabs(d) <= PHN_JSON_INT_MAX;
}

int
phn_json_is_num(struct json_object *o)
{
	return json_object_is_type(o, json_type_int) ||
	    json_object_is_type(o, json_type_double);
}

/* o[k] when o is an object that has k; NULL otherwise (or JSON null). */
struct json_object *
phn_json_get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, k, &v))
		return NULL;
	return v;
}

/*
 * Typed getters: o[k] when o is an object whose k has that type, else
 * the default (NULL for a string).  An integer-valued double counts as
 * an integer; any number as a number.
 */
const char *
phn_jstr(struct json_object *o, const char *k)
{
	struct json_object *v = phn_json_get(o, k);

	return json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
}

long long
phn_json_int(struct json_object *o, const char *k, long long dflt)
{
	struct json_object *v = phn_json_get(o, k);

	return phn_json_is_int(v) ? (long long)json_object_get_int64(v) : dflt;
}

double
phn_json_num(struct json_object *o, const char *k, double dflt)
{
	struct json_object *v = phn_json_get(o, k);

	return phn_json_is_num(v) ? json_object_get_double(v) : dflt;
}

int
phn_json_bool(struct json_object *o, const char *k, int dflt)
{
	struct json_object *v = phn_json_get(o, k);

	return json_object_is_type(v, json_type_boolean) ?
	    json_object_get_boolean(v) : dflt;
}

/* A new JSON string, or JSON null for NULL. */
struct json_object *
phn_json_string(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* Look up "a.b.c" through nested objects; NULL if any part is missing. */
struct json_object *
phn_json_path_get(struct json_object *o, const char *path)
{
	char *p, *s, *save = NULL;

	if (strchr(path, '.') == NULL)
		return json_object_object_get_ex(o, path, &o) ? o : NULL;
	p = phn_strdup(path);

	for (s = strtok_r(p, ".", &save); s && o; s = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, s, &o))
			o = NULL;
	free(p);
	return o;
}

/*
 * Deep merge: object onto object merges key by key; anything else
 * replaces.  Returns a new reference; neither argument is changed.
 */
struct json_object *
phn_json_merge(struct json_object *base, struct json_object *over)
{
	struct json_object *r = NULL;

	if (json_object_is_type(base, json_type_object) &&
	    json_object_is_type(over, json_type_object)) {
		json_object_deep_copy(base, &r, NULL);
		json_object_object_foreach(over, k, v) {
			struct json_object *old = json_object_object_get(r, k);
			json_object_object_add(r, k, phn_json_merge(old, v));
		}
		return r;
	}
	if (over == NULL)	/* JSON null replaces too */
		return NULL;
	json_object_deep_copy(over, &r, NULL);
	return r;
}
