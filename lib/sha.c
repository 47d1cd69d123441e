/* sha.c - SHA-256 via libmd; no hand-written digest. */
#include <sys/types.h>

#include <sha2.h>

#include "phn.h"

void
phn_sha256_hex(const void *buf, size_t len, char out[PHN_SHA256_HEX])
{
	SHA2_CTX ctx;

	SHA256Init(&ctx);
	SHA256Update(&ctx, buf, len);
	SHA256End(&ctx, out);
}
