/* Pending boards and expectations in the store (db_pending.h). */
#include "controller/skyrootd/db_pending.h"

#include <errno.h>
#include <string.h>

#include "controller/skyrootd/sql.h"

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
	struct sql_stmt *s;
	int64_t n;
	int r = sql_prepare(db_sql(db), "DELETE FROM pending_boards WHERE expires_at <= ?1", &s);

	if (r < 0)
		return r;
	sql_bind_int64(s, 1, now);
	r = sql_once_done(s);
	if (r < 0)
		return r;
	n = sql_changes(db_sql(db));
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

int db_pending_count(struct db *db)
{
	return sql_count(db_sql(db), "SELECT count(*) FROM pending_boards");
}

int db_pending_insert(struct db *db, const struct db_pending *p)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db),
			   "INSERT INTO pending_boards (id, key_sha256, state, serial, uuid, hostname, macs, peer, "
			   "first_seen, last_seen, expires_at, decided_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
			   &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, p->id);
	sql_bind_blob(s, 2, p->key_sha256, 32);
	sql_bind_text(s, 3, db_pending_state_name(p->state));
	sql_bind_text(s, 4, p->serial);
	sql_bind_text(s, 5, p->uuid);
	sql_bind_text(s, 6, p->hostname);
	sql_bind_text(s, 7, p->macs);
	sql_bind_text(s, 8, p->peer);
	sql_bind_int64(s, 9, p->first_seen);
	sql_bind_int64(s, 10, p->last_seen);
	sql_bind_int64(s, 11, p->expires_at);
	sql_bind_int64(s, 12, p->decided_at);
	return sql_once_done(s);
}

#define PENDING_COLS "id, key_sha256, state, serial, uuid, hostname, macs, peer, first_seen, last_seen, " \
	"expires_at, decided_at"

static void db_pending__row(struct sql_stmt *s, void *out)
{
	struct db_pending *p = out;
	const void *key = sql_col_blob(s, 1);

	memset(p, 0, sizeof(*p));
	sql_copy_text(p->id, sizeof(p->id), s, 0);
	if (key && sql_col_bytes(s, 1) == 32)
		memcpy(p->key_sha256, key, 32);
	p->state = db_pending__state(sql_col_text(s, 2));
	sql_copy_text(p->serial, sizeof(p->serial), s, 3);
	sql_copy_text(p->uuid, sizeof(p->uuid), s, 4);
	sql_copy_text(p->hostname, sizeof(p->hostname), s, 5);
	sql_copy_text(p->macs, sizeof(p->macs), s, 6);
	sql_copy_text(p->peer, sizeof(p->peer), s, 7);
	p->first_seen = sql_col_int64(s, 8);
	p->last_seen = sql_col_int64(s, 9);
	p->expires_at = sql_col_int64(s, 10);
	p->decided_at = sql_col_int64(s, 11);
}

int db_pending_by_key(struct db *db, const uint8_t key_sha256[32], struct db_pending *out)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "SELECT " PENDING_COLS " FROM pending_boards WHERE key_sha256 = ?1", &s);

	if (r < 0)
		return r;
	sql_bind_blob(s, 1, key_sha256, 32);
	return sql_once_row(s, db_pending__row, out);
}

int db_pending_get(struct db *db, const char *id, struct db_pending *out)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "SELECT " PENDING_COLS " FROM pending_boards WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	return sql_once_row(s, db_pending__row, out);
}

int db_pending_seen(struct db *db, const char *id, int64_t now, const char *peer, int64_t expires_at)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db),
			   "UPDATE pending_boards SET last_seen = ?2, peer = ?3, expires_at = CASE state WHEN "
			   "'pending' THEN ?4 ELSE expires_at END WHERE id = ?1",
			   &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	sql_bind_int64(s, 2, now);
	sql_bind_text(s, 3, peer);
	sql_bind_int64(s, 4, expires_at);
	return sql_once_changed(s);
}

int db_pending_decide(struct db *db, const char *id, enum db_pending_state from, enum db_pending_state to,
		      int64_t now, int64_t expires_at)
{
	struct db_pending p;
	struct sql_stmt *s;
	int r = db_pending_get(db, id, &p);

	if (r < 0)
		return r;
	if (p.state != from)
		return -EALREADY;
	r = sql_prepare(db_sql(db),
		       "UPDATE pending_boards SET state = ?2, decided_at = ?3, expires_at = ?4 WHERE id = ?1 "
		       "AND state = ?5",
		       &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	sql_bind_text(s, 2, db_pending_state_name(to));
	sql_bind_int64(s, 3, now);
	sql_bind_int64(s, 4, expires_at);
	sql_bind_text(s, 5, db_pending_state_name(from));
	return sql_once_changed(s);
}

int db_pending_delete(struct db *db, const char *id)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "DELETE FROM pending_boards WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	return sql_once_changed(s);
}

int db_pending_list(struct db *db, db_pending_cb cb, void *ctx)
{
	struct sql_stmt *s;
	int rc, r = sql_prepare(db_sql(db), "SELECT " PENDING_COLS " FROM pending_boards ORDER BY id", &s);

	if (r < 0)
		return r;
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct db_pending p;

		db_pending__row(s, &p);
		r = cb(ctx, &p);
		if (r < 0)
			break;
	}
	if (r == 0 && rc < 0)
		r = rc;
	sql_finalize(s);
	return r;
}

/* ---- expectations ---- */

int db_expect_insert(struct db *db, const struct db_expectation *e)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "INSERT INTO expectations (id, serial, uuid, created_at) VALUES (?1,?2,?3,?4)", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, e->id);
	sql_bind_text(s, 2, e->serial);
	sql_bind_text(s, 3, e->uuid);
	sql_bind_int64(s, 4, e->created_at);
	return sql_once_done(s);
}

int db_expect_count(struct db *db)
{
	return sql_count(db_sql(db), "SELECT count(*) FROM expectations");
}

int db_expect_delete(struct db *db, const char *id)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "DELETE FROM expectations WHERE id = ?1", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	return sql_once_changed(s);
}

static void db_expect__row(struct sql_stmt *s, void *out)
{
	struct db_expectation *e = out;

	memset(e, 0, sizeof(*e));
	sql_copy_text(e->id, sizeof(e->id), s, 0);
	sql_copy_text(e->serial, sizeof(e->serial), s, 1);
	sql_copy_text(e->uuid, sizeof(e->uuid), s, 2);
	e->created_at = sql_col_int64(s, 3);
}

int db_expect_find(struct db *db, const char *serial, const char *uuid, struct db_expectation *out)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db),
			   "SELECT id, serial, uuid, created_at FROM expectations WHERE (?1 <> '' AND serial = ?1) "
			   "OR (?2 <> '' AND uuid = lower(?2)) ORDER BY created_at, id LIMIT 1",
			   &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, serial);
	sql_bind_text(s, 2, uuid);
	return sql_once_row(s, db_expect__row, out);
}

int db_expect_list(struct db *db, db_expect_cb cb, void *ctx)
{
	struct sql_stmt *s;
	int rc, r = sql_prepare(db_sql(db), "SELECT id, serial, uuid, created_at FROM expectations ORDER BY id", &s);

	if (r < 0)
		return r;
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct db_expectation e;

		db_expect__row(s, &e);
		r = cb(ctx, &e);
		if (r < 0)
			break;
	}
	if (r == 0 && rc < 0)
		r = rc;
	sql_finalize(s);
	return r;
}
