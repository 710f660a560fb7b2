/* The audit log's rows (audit.h). */
#include "controller/skyrootd/audit.h"

#include <errno.h>
#include <string.h>

#include "controller/skyrootd/sql.h"

int audit_add(struct db *db, const struct audit_entry *e, uint64_t keep)
{
	struct sql *c = db_sql(db);
	struct sql_stmt *s;
	int64_t seq = 0;
	int r;

	/* e's strings outlive the statement: bound without a copy. */
	r = sql_prepare(c,
			"INSERT INTO audit (at, credential, peer, method, path, status, request_id) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING seq",
			&s);
	if (r < 0)
		return r;
	sql_bind_int64(s, 1, e->at);
	sql_bind_text(s, 2, e->credential);
	sql_bind_text(s, 3, e->peer);
	sql_bind_text(s, 4, e->method);
	sql_bind_text(s, 5, e->path);
	sql_bind_int64(s, 6, e->status);
	sql_bind_text(s, 7, e->request_id);
	r = sql_step(s);
	if (r == SQL_ROW) {
		seq = sql_col_int64(s, 0);
		r = sql_step(s); /* the one row returned: then done */
		r = r == SQL_DONE ? 0 : r < 0 ? r : -EIO;
	} else {
		r = r < 0 ? r : -EIO; /* an insert returns its seq */
	}
	sql_finalize(s);
	if (r < 0)
		return r;
	if (keep == 0)
		keep = 1;
	if (seq <= 0 || keep >= (uint64_t)seq)
		return 0; /* seqs start at 1: none older than the newest keep */
	r = sql_prepare(c, "DELETE FROM audit WHERE seq <= ?1", &s);
	if (r < 0)
		return r;
	sql_bind_int64(s, 1, seq - (int64_t)keep);
	return sql_once_done(s);
}

int audit_list(struct db *db, uint64_t limit, audit_cb cb, void *ctx)
{
	struct sql_stmt *s;
	int rc, r;

	r = sql_prepare(db_sql(db),
			"SELECT seq, at, credential, peer, method, path, status, request_id FROM audit "
			"ORDER BY seq DESC LIMIT ?1",
			&s);
	if (r < 0)
		return r;
	sql_bind_int64(s, 1, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	while ((rc = sql_step(s)) == SQL_ROW) {
		struct audit_entry e;

		memset(&e, 0, sizeof(e));
		e.seq = sql_col_int64(s, 0);
		e.at = sql_col_int64(s, 1);
		sql_copy_text(e.credential, sizeof(e.credential), s, 2);
		sql_copy_text(e.peer, sizeof(e.peer), s, 3);
		sql_copy_text(e.method, sizeof(e.method), s, 4);
		sql_copy_text(e.path, sizeof(e.path), s, 5);
		e.status = (int)sql_col_int64(s, 6);
		sql_copy_text(e.request_id, sizeof(e.request_id), s, 7);
		r = cb(ctx, &e);
		if (r < 0)
			break;
	}
	if (r == 0 && rc < 0)
		r = rc;
	sql_finalize(s);
	return r;
}
