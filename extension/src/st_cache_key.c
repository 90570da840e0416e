/*
 * st_cache_key.c
 *		The cache key in C: SHA-256 (hex) over length-prefixed key material.
 *
 * The same bytes as sidecar/src/cache/key.ts and the SQL function
 * _steadytext_cache_key; test/integration/cache-key-parity.test.ts holds all
 * three together over many inputs. The material is
 *
 *		steadytext-cache-v1\n kind=<n>:<kind>\n model=<n>:<sha256>\n <field>=<n>:<value>\n ...
 *
 * where <n> is the value's length in UTF-8 bytes, so no two different inputs
 * serialise alike. Values are hashed as UTF-8 whatever the database encoding.
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "utils/resowner.h"

#include "st_cache_key.h"

#define ST_CACHE_KEY_VERSION "steadytext-cache-v1\n"

/* Append one length-prefixed field: name=<utf8 bytes>:value\n */
static void
append_field(StringInfo material, const char *name, const char *value, int len)
{
	char	   *utf8 = pg_server_to_any(value, len, PG_UTF8);
	int			utf8_len = (utf8 == value) ? len : (int) strlen(utf8);

	appendStringInfo(material, "%s=%d:", name, utf8_len);
	appendBinaryStringInfo(material, utf8, utf8_len);
	appendStringInfoChar(material, '\n');
	if (utf8 != value)
		pfree(utf8);
}

/* SHA-256 of `data` as 64 lower-case hex digits (and a NUL) in `out` */
static void
sha256_hex(const char *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	int			i;

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
	{
		const char *why = ctx ? pg_cryptohash_error(ctx) : "out of memory";

		if (ctx)
			pg_cryptohash_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a SHA-256 digest: %s", why)));
	}
	pg_cryptohash_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
	{
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 0x0f];
	}
	out[ST_CACHE_KEY_LENGTH] = '\0';
}

void
st_cache_key(const char *kind, const char *model_sha256, const StKeyField *fields, int nfields, char *out)
{
	StringInfoData material;
	int			i;

	initStringInfo(&material);
	appendStringInfoString(&material, ST_CACHE_KEY_VERSION);
	append_field(&material, "kind", kind, strlen(kind));
	append_field(&material, "model", model_sha256, strlen(model_sha256));
	for (i = 0; i < nfields; i++)
		append_field(&material, fields[i].name, fields[i].value, fields[i].len);
	sha256_hex(material.data, material.len, out);
	pfree(material.data);
}

/*
 * With the library preloaded, hash once in the postmaster: the crypto
 * library's one-time set-up (providers, algorithm tables) is then inherited
 * by every backend instead of costing each one's first cached call (a third
 * of a millisecond here). The hash needs a resource owner, which the
 * postmaster does not have: a temporary one, empty again once the hash is
 * freed.
 */
void
st_cache_key_warm_up(void)
{
	/* Set in the postmaster when preloaded, so a backend's session warm-up (st_warm.c) finds it done */
	static bool warmed = false;
	ResourceOwner saved = CurrentResourceOwner;
	ResourceOwner owner;
	char		out[ST_CACHE_KEY_LENGTH + 1];

	if (warmed)
		return;
	owner = ResourceOwnerCreate(NULL, "pg_steadytext warm-up");
	CurrentResourceOwner = owner;
	sha256_hex(ST_CACHE_KEY_VERSION, strlen(ST_CACHE_KEY_VERSION), out);
	CurrentResourceOwner = saved;
	ResourceOwnerDelete(owner);
	warmed = true;
}
