/*
 * jscan.c - a strict RFC 8259 pre-scan, run before json-c parses.
 *
 * json-c is lenient: it takes NaN and Infinity, single quotes, some
 * trailing data, invalid UTF-8, and duplicate keys (the last one wins).
 * This scanner accepts exactly RFC 8259 JSON text, with these extra
 * rules: no byte order mark, nesting at most maxdepth, no duplicate keys
 * in an object (compared after unescaping), no "\u0000" in keys, and no
 * unpaired UTF-16 surrogate escapes.  The first problem found is
 * reported as "LINE:COL: message" (1-based; COL counts bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "phn.h"

struct key {
	char	*s;
	size_t	 len;
	const unsigned char *pos;
};

struct scan {
	const unsigned char *start, *p, *end;
	const unsigned char *errpos;
	const char *err;
	char	 errbuf[128];
	int	 maxdepth;
};

static int value(struct scan *, int);

static int
fail(struct scan *s, const unsigned char *at, const char *msg)
{
	if (s->err == NULL) {
		s->errpos = at;
		s->err = msg;
	}
	return -1;
}

static void
ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
hex4(const unsigned char *p, unsigned *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		unsigned c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			*v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			*v |= c - 'A' + 10;
		else
			return -1;
	}
	return 0;
}

/* Length of a valid UTF-8 sequence at p, or 0. */
static size_t
utf8len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n, i;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void
put(char **buf, size_t *len, size_t *cap, const void *b, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = phn_realloc(*buf, *cap);
	}
	memcpy(*buf + *len, b, n);
	*len += n;
}

static void
putcp(char **buf, size_t *len, size_t *cap, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = 0xc0 | cp >> 6;
		u[1] = 0x80 | (cp & 0x3f);
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = 0xe0 | cp >> 12;
		u[1] = 0x80 | (cp >> 6 & 0x3f);
		u[2] = 0x80 | (cp & 0x3f);
		n = 3;
	} else {
		u[0] = 0xf0 | cp >> 18;
		u[1] = 0x80 | (cp >> 12 & 0x3f);
		u[2] = 0x80 | (cp >> 6 & 0x3f);
		u[3] = 0x80 | (cp & 0x3f);
		n = 4;
	}
	put(buf, len, cap, u, n);
}

/* Scan a string at s->p ('"'); if out != NULL, decode it for comparison. */
static int
string(struct scan *s, struct key *out)
{
	const unsigned char *q0 = s->p;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	s->p++;
	for (;;) {
		if (s->p >= s->end) {
			free(buf);
			return fail(s, q0, "unterminated string");
		}
		unsigned c = *s->p;
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			/* a run of plain ASCII at once */
			const unsigned char *r = s->p + 1;
			while (r < s->end && *r >= 0x20 && *r < 0x80 &&
			    *r != '"' && *r != '\\')
				r++;
			if (out)
				put(&buf, &len, &cap, s->p, (size_t)(r - s->p));
			s->p = r;
			continue;
		}
		if (c == '"')
			break;
		if (c < 0x20) {
			free(buf);
			return fail(s, s->p, "control character in string "
			    "(escape it)");
		}
		if (c == '\\') {
			const unsigned char *e = s->p;
			unsigned long cp;
			unsigned u, lo;
			char ch;

			if (s->end - s->p < 2) {
				free(buf);
				return fail(s, e, "unterminated string");
			}
			switch (s->p[1]) {
			case '"': ch = '"'; break;
			case '\\': ch = '\\'; break;
			case '/': ch = '/'; break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			case 'u':
				if (s->end - s->p < 6 || hex4(s->p + 2, &u) == -1) {
					free(buf);
					return fail(s, e, "invalid \\u escape");
				}
				s->p += 6;
				cp = u;
				if (u >= 0xdc00 && u <= 0xdfff) {
					free(buf);
					return fail(s, e, "unpaired UTF-16 "
					    "surrogate in \\u escape");
				}
				if (u >= 0xd800 && u <= 0xdbff) {
					if (s->end - s->p < 6 || s->p[0] != '\\' ||
					    s->p[1] != 'u' ||
					    hex4(s->p + 2, &lo) == -1 ||
					    lo < 0xdc00 || lo > 0xdfff) {
						free(buf);
						return fail(s, e, "unpaired UTF-16 "
						    "surrogate in \\u escape");
					}
					s->p += 6;
					cp = 0x10000 + ((u - 0xd800) << 10) +
					    (lo - 0xdc00);
				}
				if (cp == 0 && out != NULL) {
					free(buf);
					return fail(s, e, "\\u0000 is not "
					    "allowed in a key");
				}
				if (out)
					putcp(&buf, &len, &cap, cp);
				continue;
			default:
				free(buf);
				return fail(s, e, "invalid escape in string");
			}
			if (out)
				put(&buf, &len, &cap, &ch, 1);
			s->p += 2;
			continue;
		}
		size_t n = utf8len(s->p, s->end);
		if (n == 0) {
			free(buf);
			return fail(s, s->p, "invalid UTF-8 in string");
		}
		if (out)
			put(&buf, &len, &cap, s->p, n);
		s->p += n;
	}
	s->p++;
	if (out) {
		if (buf == NULL)
			buf = phn_strdup("");
		out->s = buf;
		out->len = len;
		out->pos = q0;
	}
	return 0;
}

static int
digits(struct scan *s)
{
	const unsigned char *b = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > b ? 0 : -1;
}

static int
number(struct scan *s)
{
	const unsigned char *b = s->p;

	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (digits(s) == -1)
		return fail(s, b, "invalid number");
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (digits(s) == -1)
			return fail(s, b, "invalid number");
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) == -1)
			return fail(s, b, "invalid number");
	}
	return 0;
}

static int
keycmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);

	if (c == 0 && x->len != y->len)
		c = x->len < y->len ? -1 : 1;
	if (c == 0)
		c = x->pos < y->pos ? -1 : x->pos > y->pos;
	return c;
}

static int
object(struct scan *s, int depth)
{
	struct key *keys = NULL;
	size_t nk = 0, ck = 0, i;
	const unsigned char *dup = NULL;
	int r = -1;

	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		ws(s);
		if (s->p >= s->end || *s->p != '"') {
			fail(s, s->p, s->p < s->end && *s->p == '\'' ?
			    "single quotes are not JSON (use \")" :
			    "expected a string key");
			goto out;
		}
		if (nk == ck) {
			ck = ck ? ck * 2 : 8;
			keys = phn_realloc(keys, ck * sizeof(*keys));
		}
		if (string(s, &keys[nk]) == -1)
			goto out;
		nk++;
		ws(s);
		if (s->p >= s->end || *s->p != ':') {
			fail(s, s->p, "expected ':' after key");
			goto out;
		}
		s->p++;
		if (value(s, depth + 1) == -1)
			goto out;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			break;
		}
		fail(s, s->p, "expected ',' or '}' in object");
		goto out;
	}
	qsort(keys, nk, sizeof(*keys), keycmp);
	for (i = 1; i < nk; i++)
		if (keys[i].len == keys[i - 1].len &&
		    memcmp(keys[i].s, keys[i - 1].s, keys[i].len) == 0 &&
		    (dup == NULL || keys[i].pos < dup))
			dup = keys[i].pos;
	if (dup != NULL) {
		size_t n = 0;
		for (i = 0; i < nk; i++)
			if (keys[i].pos == dup)
				n = i;
		snprintf(s->errbuf, sizeof(s->errbuf), "duplicate key \"%.*s\"",
		    keys[n].len > 60 ? 60 : (int)keys[n].len, keys[n].s);
		fail(s, dup, s->errbuf);
		goto out;
	}
	r = 0;
out:
	for (i = 0; i < nk; i++)
		free(keys[i].s);
	free(keys);
	return r;
}

static int
array(struct scan *s, int depth)
{
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (value(s, depth + 1) == -1)
			return -1;
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		return fail(s, s->p, "expected ',' or ']' in array");
	}
}

static int
literal(struct scan *s, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(s->end - s->p) >= n && memcmp(s->p, w, n) == 0) {
		s->p += n;
		return 0;
	}
	return -1;
}

static int
value(struct scan *s, int depth)
{
	ws(s);
	if (s->p >= s->end)
		return fail(s, s->p, "unexpected end of input");
	if (depth > s->maxdepth)
		return fail(s, s->p, "nesting too deep");
	switch (*s->p) {
	case '{':
		return object(s, depth);
	case '[':
		return array(s, depth);
	case '"':
		return string(s, NULL);
	case 't':
		if (literal(s, "true") == 0)
			return 0;
		break;
	case 'f':
		if (literal(s, "false") == 0)
			return 0;
		break;
	case 'n':
		if (literal(s, "null") == 0)
			return 0;
		break;
	case '\'':
		return fail(s, s->p, "single quotes are not JSON (use \")");
	case 'N':
	case 'I':
		return fail(s, s->p, "NaN and Infinity are not JSON");
	default:
		if (*s->p == '-' && s->end - s->p > 1 && s->p[1] == 'I')
			return fail(s, s->p, "NaN and Infinity are not JSON");
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return number(s);
	}
	return fail(s, s->p, "unexpected character");
}

int
phn_json_prescan(const char *buf, size_t len, int maxdepth, char *msg,
    size_t msglen)
{
	struct scan s;
	const unsigned char *q;
	int line = 1, col = 1;

	memset(&s, 0, sizeof(s));
	s.start = s.p = (const unsigned char *)buf;
	s.end = s.start + len;
	s.maxdepth = maxdepth;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		fail(&s, s.p, "UTF-8 byte order mark is not allowed");
	else if (value(&s, 1) == 0) {
		ws(&s);
		if (s.p < s.end)
			fail(&s, s.p, "trailing data after the JSON value");
	}
	if (s.err == NULL)
		return 0;
	for (q = s.start; q < s.errpos && q < s.end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	snprintf(msg, msglen, "%d:%d: %s", line, col, s.err);
	return -1;
}

int
phn_utf8_valid(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf, *end = p + len;
	size_t n;

	while (p < end) {
		if ((n = utf8len(p, end)) == 0)
			return 0;
		p += n;
	}
	return 1;
}
