/* Integrity at rest: the quarantine of corrupt chunks, healing by a new
 * upload, and the worker-thread checks the scrub and a board's report use
 * (store.h).  Rare statements: prepared when used. */
#include "controller/skyrootd/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"

static int check__prepare(sqlite3 *h, const char *sql, sqlite3_stmt **s)
{
	return db_errno(sqlite3_prepare_v2(h, sql, -1, s, NULL));
}

static int check__step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int store_chunk_quarantine(struct db *db, int64_t rowid, const uint8_t digest[32], const char *why)
{
	sqlite3 *h = db_handle(db);
	sqlite3_stmt *s = NULL;
	int r = check__prepare(h,
			       "UPDATE chunks SET quarantined_at = ?, quarantine_why = ? "
			       "WHERE id = ? AND digest = ? AND quarantined_at = 0",
			       &s);

	if (r == 0) {
		sqlite3_bind_int64(s, 1, sky_unix_now());
		sqlite3_bind_text(s, 2, why, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, rowid);
		sqlite3_bind_blob(s, 4, digest, 32, SQLITE_STATIC);
		r = check__step_done(s);
		if (r == 0)
			r = sqlite3_changes(h) > 0 ? 1 : 0;
	}
	sqlite3_finalize(s);
	return r;
}

int store_image_damage(struct db *db, const char *image_id, uint32_t *count, uint32_t *idx, size_t max,
		       char *why, size_t whylen)
{
	sqlite3_stmt *s = NULL;
	int rc, r = check__prepare(db_handle(db),
				   "SELECT ic.idx, c.quarantine_why FROM image_chunks ic JOIN chunks c ON c.id = ic.chunk_id "
				   "WHERE ic.image_id = ? AND c.quarantined_at != 0 ORDER BY ic.idx",
				   &s);
	uint32_t n = 0;

	if (whylen)
		why[0] = '\0';
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, image_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == 0 && whylen)
			snprintf(why, whylen, "%s", (const char *)sqlite3_column_text(s, 1));
		if (idx && n < max)
			idx[n] = (uint32_t)sqlite3_column_int64(s, 0);
		n++;
	}
	r = rc == SQLITE_DONE ? 0 : db_errno(rc);
	sqlite3_finalize(s);
	if (r == 0)
		*count = n;
	return r;
}

int store_chunk_users(struct db *db, int64_t rowid, char *out, size_t len)
{
	sqlite3_stmt *s = NULL;
	int rc, r = check__prepare(db_handle(db),
				   "SELECT image_id, idx FROM image_chunks WHERE chunk_id = ? ORDER BY image_id, idx LIMIT 5",
				   &s);
	size_t n = 0;
	int rows = 0;

	if (len)
		out[0] = '\0';
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, rowid);
	/* Four named; a fifth row only says there are more. */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < len) {
		int w = rows == 4 ? snprintf(out + n, len - n, ", ...")
				  : snprintf(out + n, len - n, "%s%s chunk %lld", rows ? ", " : "",
					     (const char *)sqlite3_column_text(s, 0), (long long)sqlite3_column_int64(s, 1));
		if (w < 0 || ++rows == 5)
			break;
		n += (size_t)w;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int store_chunk_heal(struct sqlite3 *h, int64_t rowid, const uint8_t *data, size_t len)
{
	sqlite3_stmt *s = NULL;
	sqlite3_blob *blob = NULL;
	char hex[65] = "";
	int rc, r = check__prepare(h, "SELECT quarantined_at, digest FROM chunks WHERE id = ?", &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, rowid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == 0)
		r = 0;
	else if (rc == SQLITE_ROW)
		r = 1;
	else
		r = rc == SQLITE_DONE ? 0 : db_errno(rc);
	if (r == 1 && sqlite3_column_bytes(s, 1) == 32)
		sky_format_hex(sqlite3_column_blob(s, 1), 32, hex);
	sqlite3_finalize(s);
	s = NULL;
	if (r != 1)
		return r;
	/* The fresh bytes (the caller hashed them to this digest) in place of
	 * the damaged ones, whatever length those had. */
	r = check__prepare(h, "INSERT OR REPLACE INTO chunk_data(id, data) VALUES(?, zeroblob(?))", &s);
	if (r == 0) {
		sqlite3_bind_int64(s, 1, rowid);
		sqlite3_bind_int64(s, 2, (int64_t)len);
		r = check__step_done(s);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (r == 0 && len) {
		r = db_errno(sqlite3_blob_open(h, "main", "chunk_data", "data", rowid, 1, &blob));
		if (r == 0)
			r = db_errno(sqlite3_blob_write(blob, data, (int)len, 0));
		if (blob)
			sqlite3_blob_close(blob);
	}
	if (r == 0)
		r = check__prepare(h, "UPDATE chunks SET quarantined_at = 0, quarantine_why = '' WHERE id = ?", &s);
	if (r == 0) {
		sqlite3_bind_int64(s, 1, rowid);
		r = check__step_done(s);
	}
	sqlite3_finalize(s);
	if (r < 0)
		return r;
	log_info("store: quarantined chunk sha256 %s healed by an upload of the same bytes; the images using it "
		 "are whole again once the upload commits", hex);
	return 1;
}

int store_scrub_cursor_get(struct db *db, int64_t *cursor)
{
	sqlite3_stmt *s = NULL;
	int rc, r = check__prepare(db_handle(db), "SELECT cursor FROM scrub_state WHERE id = 0", &s);

	*cursor = 0;
	if (r < 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*cursor = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		r = db_errno(rc);
	sqlite3_finalize(s);
	return r;
}

int store_scrub_cursor_set(struct db *db, int64_t cursor)
{
	sqlite3_stmt *s = NULL;
	int r = check__prepare(db_handle(db), "INSERT OR REPLACE INTO scrub_state(id, cursor) VALUES(0, ?)", &s);

	/* A hint only: losing the last one costs a little re-scrubbing. */
	if (r == 0)
		r = db_set_durable(db, false);
	if (r == 0) {
		sqlite3_bind_int64(s, 1, cursor);
		r = check__step_done(s);
		db_set_durable(db, true);
	}
	sqlite3_finalize(s);
	return r;
}

/* ---- worker threads ---- */

/* A read-only connection of its own for each check or batch, closed after
 * it (WAL: readers see committed data only and never block the writer).
 * None outlives the work, so none keeps the WAL from being checkpointed
 * and removed when skyrootd closes the store; opening one costs far less
 * than hashing a batch. */
static int check__reader(const char *db_path, sqlite3 **out)
{
	int rc = sqlite3_open_v2(db_path, out, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		sqlite3_close(*out);
		*out = NULL;
		return db_errno(rc);
	}
	sqlite3_busy_timeout(*out, 5000);
	return 0;
}

int store_chunk_check(const char *db_path, int64_t rowid, const uint8_t digest[32], uint32_t size, uint8_t *buf)
{
	sqlite3 *h;
	int r = check__reader(db_path, &h);

	if (r == 0)
		r = store_chunk_read_h(h, rowid, digest, buf, size);
	sqlite3_close(h);
	return r;
}

#define SCRUB_ROWS 64 /* the LIMIT below */

int store_scrub_batch(const char *db_path, struct store_scrub_batch *b, uint8_t *buf)
{
	sqlite3 *h;
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_DONE, r = check__reader(db_path, &h);
	uint32_t rows = 0;

	b->last = b->after;
	b->bytes = 0;
	b->chunks = 0;
	b->n_bad = 0;
	b->end = false;
	if (r == 0)
		r = check__prepare(h,
				   "SELECT id, digest, size FROM chunks WHERE id > ? AND quarantined_at = 0 "
				   "ORDER BY id LIMIT 64",
				   &s);
	if (r < 0) {
		sqlite3_close(h);
		return r;
	}
	sqlite3_bind_int64(s, 1, b->after);
	while (b->bytes < b->want && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t row = sqlite3_column_int64(s, 0);
		uint8_t digest[32] = {0};
		uint32_t size = (uint32_t)sqlite3_column_int64(s, 2);

		rows++;
		if (sqlite3_column_bytes(s, 1) == 32)
			memcpy(digest, sqlite3_column_blob(s, 1), 32);
		r = store_chunk_read_h(h, row, digest, buf, size);
		b->last = row;
		b->chunks++;
		b->bytes += size;
		if (r == -EBADMSG) {
			if (b->n_bad < STORE_SCRUB_BAD_MAX) {
				b->bad_row[b->n_bad] = row;
				memcpy(b->bad_digest[b->n_bad], digest, 32);
			}
			b->n_bad++;
		} else if (r < 0 && r != -ENOENT) {
			break; /* -ENOENT: deleted meanwhile */
		}
		r = 0;
	}
	/* Fewer rows than asked for and none left unread: the end. */
	if (r == 0 && rc == SQLITE_ROW)
		rc = sqlite3_step(s) == SQLITE_ROW ? SQLITE_ROW : SQLITE_DONE;
	if (r == 0 && rc == SQLITE_DONE && rows < SCRUB_ROWS)
		b->end = true;
	else if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = db_errno(rc);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return r;
}
