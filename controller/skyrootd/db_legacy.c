/* The old SQLite-only helpers of db.h, for modules not yet on sql.h.  Goes
 * when the last of them is converted. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/sql.h"

sqlite3 *db_handle(struct db *db)
{
	return sql_sqlite_handle(db_sql(db));
}

int db_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	default:
		return -EIO;
	}
}

void db_copy_text(char *dst, size_t n, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, n, "%s", t ? (const char *)t : "");
}

int db_prepare(struct db *db, const char *sql, sqlite3_stmt **s)
{
	return db_errno(sqlite3_prepare_v2(db_handle(db), sql, -1, s, NULL));
}

int db_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int db_changed(struct db *db, sqlite3_stmt *s)
{
	int r = db_done(s);

	return r == 0 && sqlite3_changes(db_handle(db)) == 0 ? -ENOENT : r;
}

int db_one(sqlite3_stmt *s, db_row_fn row, void *out)
{
	int rc = sqlite3_step(s), r = 0;

	if (rc == SQLITE_ROW)
		row(s, out);
	else
		r = rc == SQLITE_DONE ? -ENOENT : db_errno(rc);
	sqlite3_finalize(s);
	return r;
}

int db_count(struct db *db, const char *sql)
{
	sqlite3_stmt *s;
	int r = db_prepare(db, sql, &s), rc;

	if (r < 0)
		return r;
	rc = sqlite3_step(s);
	r = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : db_errno(rc);
	sqlite3_finalize(s);
	return r;
}
