/* id.c - identifiers: validation and generation. */
#include <sys/random.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phn.h"

/*
 * 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit
 * (so never "." or ".." and never a store name such as "_system"); no
 * '@' or '/', which the store uses as separators.
 */
int
phn_id_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > PHN_ID_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');
		if (i == 0 && !alnum)
			return 0;
		if (!alnum && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/* Why a JSON value is not a valid id, or NULL if it is one. */
const char *
phn_id_problem(struct json_object *o)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(o, json_type_string))
		return "must be a string";
	s = json_object_get_string(o);
	len = (size_t)json_object_get_string_len(o);
	if (len == 0)
		return "must not be empty";
	if (len > PHN_ID_MAX)
		return "is longer than 128 characters";
	if (strlen(s) != len)
		return "must not contain \\u0000";
	if (!phn_id_valid(s, len))
		return "must be 1-128 characters of [A-Za-z0-9._-] starting "
		    "with a letter or digit";
	return NULL;
}

uint32_t
phn_random32(void)
{
	static uint32_t n;
	uint32_t v;

	/* Ids need to be unlikely to collide, not secret: without the
	 * kernel's bytes, the time, the pid and a counter do. */
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint32_t)(phn_now() * 1e6) ^ ((uint32_t)getpid() << 16) ^
		    ++n * 2654435761u;
	return v;
}

/* "<prefix>_<YYYYMMDDTHHMMSSZ>_<8 hex>" */
char *
phn_id_new(const char *prefix)
{
	char st[PHN_STAMP_LEN];

	phn_stamp(phn_now(), st);
	return phn_asprintf("%s_%s_%08x", prefix, st, phn_random32());
}
