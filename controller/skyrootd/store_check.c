/* Integrity at rest: the quarantine of corrupt chunks, healing by a new
 * upload, and the worker-thread checks the scrub and a board's report use
 * (store.h).  Rare statements: prepared when used. */
#include "controller/skyrootd/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/sql.h"

static int check__prepare(struct sql *c, const char *sql, struct sql_stmt **s)
{
	*s = NULL;
	return sql_prepare(c, sql, s);
}

static int check__step_done(struct sql_stmt *s)
{
	int rc = sql_step(s);
	return rc == SQL_DONE ? 0 : rc < 0 ? rc : -EIO;
}

int store_chunk_quarantine(struct db *db, int64_t rowid, const uint8_t digest[32], const char *why)
{
	struct sql *c = db_sql(db);
	struct sql_stmt *s = NULL;
	int r = check__prepare(c,
			       "UPDATE chunks SET quarantined_at = ?, quarantine_why = ? "
			       "WHERE id = ? AND digest = ? AND quarantined_at = 0",
			       &s);

	if (r == 0) {
		sql_bind_int64(s, 1, sky_unix_now());
		sql_bind_text(s, 2, why);
		sql_bind_int64(s, 3, rowid);
		sql_bind_blob(s, 4, digest, 32);
		r = check__step_done(s);
		if (r == 0)
			r = sql_changes(c) > 0 ? 1 : 0;
	}
	sql_finalize(s);
	return r;
}

int store_image_damage(struct db *db, const char *image_id, uint32_t *count, uint32_t *idx, size_t max,
		       char *why, size_t whylen)
{
	struct sql_stmt *s = NULL;
	int rc, r = check__prepare(db_sql(db),
				   "SELECT ic.idx, c.quarantine_why FROM image_chunks ic JOIN chunks c ON c.id = ic.chunk_id "
				   "WHERE ic.image_id = ? AND c.quarantined_at != 0 ORDER BY ic.idx",
				   &s);
	uint32_t n = 0;

	if (whylen)
		why[0] = '\0';
	if (r < 0)
		return r;
	sql_bind_text(s, 1, image_id);
	while ((rc = sql_step(s)) == SQL_ROW) {
		if (n == 0 && whylen)
			sql_copy_text(why, whylen, s, 1);
		if (idx && n < max)
			idx[n] = (uint32_t)sql_col_int64(s, 0);
		n++;
	}
	r = rc < 0 ? rc : 0;
	sql_finalize(s);
	if (r == 0)
		*count = n;
	return r;
}

int store_chunk_users(struct db *db, int64_t rowid, char *out, size_t len)
{
	struct sql_stmt *s = NULL;
	int rc, r = check__prepare(db_sql(db),
				   "SELECT image_id, idx FROM image_chunks WHERE chunk_id = ? ORDER BY image_id, idx LIMIT 5",
				   &s);
	size_t n = 0;
	int rows = 0;

	if (len)
		out[0] = '\0';
	if (r < 0)
		return r;
	sql_bind_int64(s, 1, rowid);
	/* Four named; a fifth row only says there are more. */
	while ((rc = sql_step(s)) == SQL_ROW && n < len) {
		const char *img = sql_col_text(s, 0);
		int w = rows == 4 ? snprintf(out + n, len - n, ", ...")
				  : snprintf(out + n, len - n, "%s%s chunk %lld", rows ? ", " : "", img ? img : "",
					     (long long)sql_col_int64(s, 1));
		if (w < 0 || ++rows == 5)
			break;
		n += (size_t)w;
	}
	sql_finalize(s);
	return rc < 0 ? rc : 0;
}

int store_chunk_heal(struct sql *c, int64_t rowid, const uint8_t *data, size_t len)
{
	struct sql_stmt *s = NULL;
	char hex[65] = "";
	int rc, r = check__prepare(c, "SELECT quarantined_at, digest FROM chunks WHERE id = ?", &s);

	if (r < 0)
		return r;
	sql_bind_int64(s, 1, rowid);
	rc = sql_step(s);
	if (rc == SQL_ROW && sql_col_int64(s, 0) == 0)
		r = 0;
	else if (rc == SQL_ROW)
		r = 1;
	else
		r = rc < 0 ? rc : 0;
	if (r == 1 && sql_col_bytes(s, 1) == 32)
		sky_format_hex(sql_col_blob(s, 1), 32, hex);
	sql_finalize(s);
	if (r != 1)
		return r;
	/* The fresh bytes (the caller hashed them to this digest) in place of
	 * the damaged ones, whatever length those had: the row first (it may
	 * be gone), then the engine's blob write replaces its bytes. */
	r = check__prepare(c, "INSERT INTO chunk_data(id, data) VALUES(?, ?) ON CONFLICT (id) DO NOTHING", &s);
	if (r == 0) {
		sql_bind_int64(s, 1, rowid);
		sql_bind_blob(s, 2, "", 0);
		r = check__step_done(s);
	}
	sql_finalize(s);
	if (r == 0)
		r = c->ops->blob_write(c, "chunk_data", "data", rowid, data, len);
	if (r == 0)
		r = check__prepare(c, "UPDATE chunks SET quarantined_at = 0, quarantine_why = '' WHERE id = ?", &s);
	if (r == 0) {
		sql_bind_int64(s, 1, rowid);
		r = check__step_done(s);
		sql_finalize(s);
	}
	if (r < 0)
		return r;
	log_info("store: quarantined chunk sha256 %s healed by an upload of the same bytes; the images using it "
		 "are whole again once the upload commits", hex);
	return 1;
}

int store_scrub_cursor_get(struct db *db, int64_t *cursor)
{
	struct sql_stmt *s = NULL;
	int rc, r = check__prepare(db_sql(db), "SELECT cursor FROM scrub_state WHERE id = 0", &s);

	*cursor = 0;
	if (r < 0)
		return r;
	rc = sql_step(s);
	if (rc == SQL_ROW)
		*cursor = sql_col_int64(s, 0);
	else if (rc < 0)
		r = rc;
	sql_finalize(s);
	return r;
}

int store_scrub_cursor_set(struct db *db, int64_t cursor)
{
	struct sql_stmt *s = NULL;
	int r = check__prepare(db_sql(db),
			       "INSERT INTO scrub_state(id, cursor) VALUES(0, ?) "
			       "ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor",
			       &s);

	/* A hint only: losing the last one costs a little re-scrubbing. */
	if (r == 0)
		r = db_set_durable(db, false);
	if (r == 0) {
		sql_bind_int64(s, 1, cursor);
		r = check__step_done(s);
		db_set_durable(db, true);
	}
	sql_finalize(s);
	return r;
}

/* ---- worker threads ---- */

/* A read-only connection of its own for each check or batch, closed after
 * it (SQLite in WAL mode: readers see committed data only and never block
 * the writer).  None outlives the work, so none keeps the WAL from being
 * checkpointed and removed when skyrootd closes the store; opening one
 * costs far less than hashing a batch. */
static int check__reader(const char *db_path, struct sql **out)
{
	*out = NULL;
	return sql_open(db_path, SQL_OPEN_READONLY, out);
}

int store_chunk_check(const char *db_path, int64_t rowid, const uint8_t digest[32], uint32_t size, uint8_t *buf)
{
	struct sql *c;
	int r = check__reader(db_path, &c);

	if (r == 0)
		r = store_chunk_read_h(c, rowid, digest, buf, size);
	sql_close(c);
	return r;
}

#define SCRUB_ROWS 64 /* the LIMIT below */

int store_scrub_batch(const char *db_path, struct store_scrub_batch *b, uint8_t *buf)
{
	struct sql *c;
	struct sql_stmt *s = NULL;
	int rc = SQL_DONE, r = check__reader(db_path, &c);
	uint32_t rows = 0;

	b->last = b->after;
	b->bytes = 0;
	b->chunks = 0;
	b->n_bad = 0;
	b->end = false;
	if (r == 0)
		r = check__prepare(c,
				   "SELECT id, digest, size FROM chunks WHERE id > ? AND quarantined_at = 0 "
				   "ORDER BY id LIMIT 64",
				   &s);
	if (r < 0) {
		sql_close(c);
		return r;
	}
	sql_bind_int64(s, 1, b->after);
	while (b->bytes < b->want && (rc = sql_step(s)) == SQL_ROW) {
		int64_t row = sql_col_int64(s, 0);
		uint8_t digest[32] = {0};
		uint32_t size = (uint32_t)sql_col_int64(s, 2);

		rows++;
		if (sql_col_bytes(s, 1) == 32)
			memcpy(digest, sql_col_blob(s, 1), 32);
		r = store_chunk_read_h(c, row, digest, buf, size);
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
	if (r == 0 && rc == SQL_ROW)
		rc = sql_step(s);
	if (r == 0 && rc == SQL_DONE && rows < SCRUB_ROWS)
		b->end = true;
	else if (r == 0 && rc < 0)
		r = rc;
	sql_finalize(s);
	sql_close(c);
	return r;
}
