/*
 * tests/fuzz/api.c - libFuzzer target: the API request router.
 *
 * The input is an HTTP request head: "METHOD TARGET [VERSION]" and
 * header lines.  It is split as libmicrohttpd splits it (the path and
 * each query key and value unescaped with MHD_http_unescape, '+' as a
 * space) and given to phn-api's own api_route_of and id_ok
 * (cmd/api-routes.c) and bearer_ok (cmd/phn-api.c), both included here,
 * phn-api's main renamed, with the token "s3cret".  A routed request's
 * path segments hold no '/', the route and its 404/405 agree, and every
 * id a handler would accept from the path or the query (id_ok) is a
 * plain name: no request can reach outside the store.  Seeds:
 * tests/fuzz/api/.  Built and run by make fuzz-check (seconds) and make
 * fuzz (FUZZ_SECONDS each).
 */
#define main	phn_api_main
#include "../../cmd/phn-api.c"
#undef main
#include "../../cmd/api-routes.c"

#include <stdint.h>
#include <strings.h>

#define NARGS	16

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct query {
	char	*k[NARGS], *v[NARGS];
	size_t	 n;
};

static void
unescape(char *s)
{
	char *p;

	for (p = s; *p; p++)
		if (*p == '+')
			*p = ' ';
	MHD_http_unescape(s);
}

static int
id_safe(const char *v)
{
	return v != NULL && phn_id_valid(v, strlen(v)) && strchr(v, '/') ==
	    NULL && strcmp(v, ".") != 0 && strcmp(v, "..") != 0;
}

/* Is h "bearer" (any case), blanks, "s3cret", blanks? */
static int
bearer_is(const char *h)
{
	size_t n;

	if (strncasecmp(h, "bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return 0;
	h += 6 + strspn(h + 6, " \t");
	n = strcspn(h, " \t");
	return n == 6 && strncmp(h, "s3cret", 6) == 0 &&
	    h[n + strspn(h + n, " \t")] == '\0';
}

/* What a handler would take as an id must be safe when id_ok passes. */
static void
id_check(const char *v)
{
	if (v != NULL && id_ok(v) && !id_safe(v))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *keys[] = { "batch_id", "job_id", "step_id",
	    "run_id", "runner_id", NULL };
	struct query q = { .n = 0 };
	struct req rq = { .rt = RT_NONE };
	char *head, *line, *next, *method, *target, *query, *auth = NULL, *a;
	const char *const *k;
	size_t i;
	int rt, ok, bad, s;

	A.token = "s3cret";
	head = malloc(size + 1);
	memcpy(head, data, size);
	head[size] = '\0';
	line = head;
	next = line + strcspn(line, "\r\n");
	if (*next)
		*next++ = '\0';
	method = line;
	target = method + strcspn(method, " ");
	if (*target)
		*target++ = '\0';
	target[strcspn(target, " ")] = '\0';
	/* Headers: only Authorization matters. */
	while (*next) {
		line = next + strspn(next, "\r\n");
		next = line + strcspn(line, "\r\n");
		if (*next)
			*next++ = '\0';
		if (strncasecmp(line, "Authorization:", 14) == 0) {
			auth = line + 14;
			auth += strspn(auth, " \t");
		}
	}
	if ((query = strchr(target, '?')) != NULL) {
		*query++ = '\0';
		while (query != NULL && *query && q.n < NARGS) {
			a = query;
			if ((query = strchr(query, '&')) != NULL)
				*query++ = '\0';
			q.k[q.n] = a;
			if ((a = strchr(a, '=')) != NULL)
				*a++ = '\0';
			else
				a = "";
			q.v[q.n] = a;
			unescape(q.k[q.n]);
			if (*q.v[q.n])
				unescape(q.v[q.n]);
			q.n++;
		}
	}
	unescape(target);

	/* The scheme is case-insensitive (RFC 7235), the token is not. */
	ok = bearer_ok(auth);
	if (ok != (auth != NULL && bearer_is(auth)))
		abort();
	rt = api_route_of(method, target, &rq, &bad);
	if ((rt == RT_NONE) != (bad != 0) || (bad != 0 &&
	    bad != MHD_HTTP_NOT_FOUND && bad != MHD_HTTP_METHOD_NOT_ALLOWED))
		abort();
	if (rt != RT_NONE) {
		if (rq.nseg > 8)
			abort();
		for (s = 0; s < rq.nseg; s++)
			if (strchr(rq.seg[s], '/') != NULL)
				abort();
		/* The path's ids: /v1/batches/B/jobs/J/steps/S/... */
		for (s = 2; s < rq.nseg && s <= 6; s += 2)
			id_check(rq.seg[s]);
	}
	for (i = 0; i < q.n; i++)
		for (k = keys; *k; k++)
			if (strcmp(q.k[i], *k) == 0)
				id_check(q.v[i]);
	free(rq.path);
	free(head);
	return 0;
}
