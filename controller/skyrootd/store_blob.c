/* A chunk's bytes from the store, on a connection the caller holds: the
 * engine's blob read (SQLite: incremental blob I/O straight into the
 * caller's buffer), and the same checked against its SHA-256.  Serves
 * sending (store_chunk_load), image verify (store_chunk_read) and the scrub
 * (store_check.c); calls nothing of theirs back. */
#include <errno.h>

#include "common/util.h"
#include "controller/skyrootd/sql.h"
#include "controller/skyrootd/store.h"

int store_chunk_load_h(struct sql *c, int64_t rowid, uint8_t *buf, uint32_t size)
{
	if (size > STORE_CHUNK_SIZE)
		return -EBADMSG;
	return c->ops->blob_read(c, "chunk_data", "data", rowid, buf, size);
}

int store_chunk_read_h(struct sql *c, int64_t rowid, const uint8_t digest[32], uint8_t *buf, uint32_t size)
{
	uint8_t got[32];
	int r = store_chunk_load_h(c, rowid, buf, size);

	if (r < 0)
		return r;
	/* Never trust the disk: a chunk that does not hash right is corrupt. */
	sky_sha256(buf, size, got);
	return sky_memeq_ct(got, digest, 32) ? 0 : -EBADMSG;
}
