/* Pending boards and expectations in the store (db_pending.h). */
#include "controller/skyrootd/db_pending.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>

static const char *const db_pending_states[] = {
	[DB_PENDING_WAITING] = "pending", [DB_PENDING_ACCEPTED] = "accepted", [DB_PENDING_REJECTED] = "rejected",
};

const char *db_pending_state_name(enum db_pending_state st)
{
	return (unsigned)st < 3 ? db_pending_states[st] : "unknown";
}

static enum db_pending_state db_pending__state(const char *s)
{
	for (unsigned i = 0; i < 3; i++)
		if (s && strcmp(s, db_pending_states[i]) == 0)
			return (enum db_pending_state)i;
	return DB_PENDING_REJECTED; /* an unknown word never lets a board in */
}

int db_pending_expire(struct db *db, int64_t now)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "DELETE FROM pending_boards WHERE expires_at <= ?1", &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, now);
	r = db_done(s);
	return r < 0 ? r : sqlite3_changes(db_handle(db));
}

int db_pending_count(struct db *db)
{
	return db_count(db, "SELECT count(*) FROM pending_boards");
}

int db_pending_insert(struct db *db, const struct db_pending *p)
{
	sqlite3_stmt *s;
	int r = db_prepare(db,
			   "INSERT INTO pending_boards (id, key_sha256, state, serial, uuid, hostname, macs, peer, "
			   "first_seen, last_seen, expires_at, decided_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
			   &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, p->key_sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, db_pending_state_name(p->state), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, p->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, p->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, p->hostname, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, p->macs, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, p->peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 9, p->first_seen);
	sqlite3_bind_int64(s, 10, p->last_seen);
	sqlite3_bind_int64(s, 11, p->expires_at);
	sqlite3_bind_int64(s, 12, p->decided_at);
	return db_done(s);
}

#define PENDING_COLS "id, key_sha256, state, serial, uuid, hostname, macs, peer, first_seen, last_seen, " \
	"expires_at, decided_at"

static void db_pending__row(sqlite3_stmt *s, void *out)
{
	struct db_pending *p = out;
	const void *key = sqlite3_column_blob(s, 1);

	memset(p, 0, sizeof(*p));
	db_copy_text(p->id, sizeof(p->id), s, 0);
	if (key && sqlite3_column_bytes(s, 1) == 32)
		memcpy(p->key_sha256, key, 32);
	p->state = db_pending__state((const char *)sqlite3_column_text(s, 2));
	db_copy_text(p->serial, sizeof(p->serial), s, 3);
	db_copy_text(p->uuid, sizeof(p->uuid), s, 4);
	db_copy_text(p->hostname, sizeof(p->hostname), s, 5);
	db_copy_text(p->macs, sizeof(p->macs), s, 6);
	db_copy_text(p->peer, sizeof(p->peer), s, 7);
	p->first_seen = sqlite3_column_int64(s, 8);
	p->last_seen = sqlite3_column_int64(s, 9);
	p->expires_at = sqlite3_column_int64(s, 10);
	p->decided_at = sqlite3_column_int64(s, 11);
}

int db_pending_by_key(struct db *db, const uint8_t key_sha256[32], struct db_pending *out)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "SELECT " PENDING_COLS " FROM pending_boards WHERE key_sha256 = ?1", &s);

	if (r < 0)
		return r;
	sqlite3_bind_blob(s, 1, key_sha256, 32, SQLITE_STATIC);
	return db_one(s, db_pending__row, out);
}

int db_pending_get(struct db *db, const char *id, struct db_pending *out)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "SELECT " PENDING_COLS " FROM pending_boards WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return db_one(s, db_pending__row, out);
}

int db_pending_seen(struct db *db, const char *id, int64_t now, const char *peer, int64_t expires_at)
{
	sqlite3_stmt *s;
	int r = db_prepare(db,
			   "UPDATE pending_boards SET last_seen = ?2, peer = ?3, expires_at = CASE state WHEN "
			   "'pending' THEN ?4 ELSE expires_at END WHERE id = ?1",
			   &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_text(s, 3, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, expires_at);
	return db_changed(db, s);
}

int db_pending_decide(struct db *db, const char *id, enum db_pending_state from, enum db_pending_state to,
		      int64_t now, int64_t expires_at)
{
	struct db_pending p;
	sqlite3_stmt *s;
	int r = db_pending_get(db, id, &p);

	if (r < 0)
		return r;
	if (p.state != from)
		return -EALREADY;
	r = db_prepare(db,
		       "UPDATE pending_boards SET state = ?2, decided_at = ?3, expires_at = ?4 WHERE id = ?1 "
		       "AND state = ?5",
		       &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, db_pending_state_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, expires_at);
	sqlite3_bind_text(s, 5, db_pending_state_name(from), -1, SQLITE_STATIC);
	return db_changed(db, s);
}

int db_pending_delete(struct db *db, const char *id)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "DELETE FROM pending_boards WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return db_changed(db, s);
}

int db_pending_list(struct db *db, db_pending_cb cb, void *ctx)
{
	sqlite3_stmt *s;
	int rc, r = db_prepare(db, "SELECT " PENDING_COLS " FROM pending_boards ORDER BY id", &s);

	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_pending p;

		db_pending__row(s, &p);
		r = cb(ctx, &p);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_errno(rc);
	sqlite3_finalize(s);
	return r;
}

/* ---- expectations ---- */

int db_expect_insert(struct db *db, const struct db_expectation *e)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "INSERT INTO expectations (id, serial, uuid, created_at) VALUES (?1,?2,?3,?4)", &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, e->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, e->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, e->created_at);
	return db_done(s);
}

int db_expect_count(struct db *db)
{
	return db_count(db, "SELECT count(*) FROM expectations");
}

int db_expect_delete(struct db *db, const char *id)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, "DELETE FROM expectations WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return db_changed(db, s);
}

static void db_expect__row(sqlite3_stmt *s, void *out)
{
	struct db_expectation *e = out;

	memset(e, 0, sizeof(*e));
	db_copy_text(e->id, sizeof(e->id), s, 0);
	db_copy_text(e->serial, sizeof(e->serial), s, 1);
	db_copy_text(e->uuid, sizeof(e->uuid), s, 2);
	e->created_at = sqlite3_column_int64(s, 3);
}

int db_expect_find(struct db *db, const char *serial, const char *uuid, struct db_expectation *out)
{
	sqlite3_stmt *s;
	int r = db_prepare(db,
			   "SELECT id, serial, uuid, created_at FROM expectations WHERE (?1 <> '' AND serial = ?1) "
			   "OR (?2 <> '' AND uuid = lower(?2)) ORDER BY created_at, id LIMIT 1",
			   &s);

	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, uuid, -1, SQLITE_STATIC);
	return db_one(s, db_expect__row, out);
}

int db_expect_list(struct db *db, db_expect_cb cb, void *ctx)
{
	sqlite3_stmt *s;
	int rc, r = db_prepare(db, "SELECT id, serial, uuid, created_at FROM expectations ORDER BY id", &s);

	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_expectation e;

		db_expect__row(s, &e);
		r = cb(ctx, &e);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_errno(rc);
	sqlite3_finalize(s);
	return r;
}
