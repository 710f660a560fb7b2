/* A chunk's bytes from the store, on a connection the caller holds:
 * incremental blob I/O straight into the caller's buffer, and the same
 * checked against its SHA-256.  Serves sending (store_chunk_load), image
 * verify (store_chunk_read) and the scrub (store_check.c); calls nothing
 * of theirs back. */
#include <errno.h>
#include <sqlite3.h>

#include "common/util.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/store.h"

int store_chunk_load_h(struct sqlite3 *h, int64_t rowid, uint8_t *buf, uint32_t size)
{
	sqlite3_blob *blob = NULL;
	int r;

	if (size > STORE_CHUNK_SIZE)
		return -EBADMSG;
	r = db_errno(sqlite3_blob_open(h, "main", "chunk_data", "data", rowid, 0, &blob));
	if (r < 0)
		return r == -EIO ? -ENOENT : r;
	if (sqlite3_blob_bytes(blob) != (int)size)
		r = -EBADMSG;
	else if (size)
		r = db_errno(sqlite3_blob_read(blob, buf, (int)size, 0));
	sqlite3_blob_close(blob);
	return r;
}

int store_chunk_read_h(struct sqlite3 *h, int64_t rowid, const uint8_t digest[32], uint8_t *buf, uint32_t size)
{
	uint8_t got[32];
	int r = store_chunk_load_h(h, rowid, buf, size);

	if (r < 0)
		return r;
	/* Never trust the disk: a chunk that does not hash right is corrupt. */
	sky_sha256(buf, size, got);
	return sky_memeq_ct(got, digest, 32) ? 0 : -EBADMSG;
}
