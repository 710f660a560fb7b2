/* The audit log's rows (audit.h). */
#include "controller/skyrootd/audit.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>

int audit_add(struct db *db, const struct audit_entry *e, uint64_t keep)
{
	sqlite3 *h = db_handle(db);
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(h,
				"INSERT INTO audit (at, credential, peer, method, path, status, request_id) "
				"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	sqlite3_bind_int64(s, 1, e->at);
	sqlite3_bind_text(s, 2, e->credential, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, e->peer, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, e->method, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, e->path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 6, e->status);
	sqlite3_bind_text(s, 7, e->request_id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_errno(rc);
	if (keep == 0)
		keep = 1;
	rc = sqlite3_prepare_v2(h, "DELETE FROM audit WHERE seq <= last_insert_rowid() - ?1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	sqlite3_bind_int64(s, 1, keep > INT64_MAX ? INT64_MAX : (int64_t)keep);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int audit_list(struct db *db, uint64_t limit, audit_cb cb, void *ctx)
{
	sqlite3_stmt *s;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db_handle(db),
				"SELECT seq, at, credential, peer, method, path, status, request_id FROM audit "
				"ORDER BY seq DESC LIMIT ?1",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_errno(rc);
	sqlite3_bind_int64(s, 1, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct audit_entry e;

		memset(&e, 0, sizeof(e));
		e.seq = sqlite3_column_int64(s, 0);
		e.at = sqlite3_column_int64(s, 1);
		db_copy_text(e.credential, sizeof(e.credential), s, 2);
		db_copy_text(e.peer, sizeof(e.peer), s, 3);
		db_copy_text(e.method, sizeof(e.method), s, 4);
		db_copy_text(e.path, sizeof(e.path), s, 5);
		e.status = sqlite3_column_int(s, 6);
		db_copy_text(e.request_id, sizeof(e.request_id), s, 7);
		r = cb(ctx, &e);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_errno(rc);
	sqlite3_finalize(s);
	return r;
}
