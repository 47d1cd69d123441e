/*
 * tests/fuzz/api.c - libFuzzer target: the API request router.
 *
 * The input is an HTTP request head: "METHOD TARGET [VERSION]" and
 * header lines.  It is split as libmicrohttpd splits it (the path and
 * each query key and value unescaped with MHD_http_unescape, '+' as a
 * space) and given to phn-api's own route_of, request_check and
 * bearer_ok (cmd/phn-api.c, included here with its main renamed), with
 * the token "s3cret".  A request that passes must name only valid ids,
 * so no request can reach outside the store.  Seeds: tests/fuzz/api/.
 * Built and run by make fuzz-check (seconds) and make fuzz
 * (FUZZ_SECONDS each).
 */
#define main	phn_api_main
#include "../../cmd/phn-api.c"
#undef main

#include <stdint.h>
#include <strings.h>

#define NARGS	16

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct query {
	char	*k[NARGS], *v[NARGS];
	size_t	 n;
};

/* MHD_lookup_connection_value for GET arguments: the first one wins. */
static const char *
qarg(void *cls, const char *k)
{
	struct query *q = cls;
	size_t i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->k[i], k) == 0)
			return q->v[i];
	return NULL;
}

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *keys[] = { "batch_id", "job_id", "step_id",
	    "run_id", NULL };
	struct query q = { .n = 0 };
	char *head, *line, *next, *method, *target, *query, *auth = NULL, *a;
	char conc[32];
	const char *bad, *const *k;
	int rt, ok;

	token = "s3cret";
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

	rt = route_of(method, target);
	ok = bearer_ok(auth);
	if (ok && (auth == NULL || strcmp(auth, "Bearer s3cret") != 0))
		abort();
	bad = rt == RT_NONE || rt == RT_HEALTH ? NULL :
	    request_check(rt, target, qarg, &q, conc);
	if (bad == NULL) {
		switch (rt) {
		case RT_TICK:
			if (*conc && (atol(conc) < 1 || atol(conc) > 100000))
				abort();
			break;
		case RT_SCORE:
			if (qarg(&q, "batch_id") && !id_safe(qarg(&q,
			    "batch_id")))
				abort();
			break;
		case RT_BATCH:
			if (!id_safe(target + 12))
				abort();
			break;
		case RT_ARTIFACT:
		case RT_CANCEL:
			for (k = keys; *k; k++)
				if (!id_safe(qarg(&q, *k)))
					abort();
			if (rt == RT_ARTIFACT && (qarg(&q, "name") == NULL ||
			    strchr(qarg(&q, "name"), '/') != NULL))
				abort();
			break;
		}
	}
	free(head);
	return 0;
}
