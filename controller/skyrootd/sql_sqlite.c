/* The SQLite engine (sql.h): one file in WAL mode, FULL synchronous
 * commits, 32 KiB pages (1 MiB chunks measured fastest with them,
 * tests/bench/pagesize.py), and chunk bytes by incremental blob I/O straight
 * into the caller's buffer. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyrootd/sql.h"

struct sq {
	struct sql base;
	sqlite3 *h;
};

struct sq_stmt {
	struct sql_stmt base;
	sqlite3_stmt *s;
};

static sqlite3 *H(struct sql *c)
{
	return ((struct sq *)c)->h;
}

static sqlite3_stmt *S(struct sql_stmt *s)
{
	return ((struct sq_stmt *)s)->s;
}

int sql_sqlite_errno(int rc)
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
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

static void sq_close(struct sql *c)
{
	sqlite3_close(H(c));
	free(c);
}

static int sq_exec(struct sql *c, const char *q)
{
	return sql_sqlite_errno(sqlite3_exec(H(c), q, NULL, NULL, NULL));
}

static int sq_open(const char *target, unsigned flags, struct sql **out)
{
	struct sq *c = calloc(1, sizeof(*c));
	bool ro = flags & SQL_OPEN_READONLY;
	int r;

	if (!c)
		return -ENOMEM;
	c->base.ops = &sql_sqlite_ops;
	r = sql_sqlite_errno(sqlite3_open_v2(target, &c->h,
				   (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
					   SQLITE_OPEN_NOMUTEX,
				   NULL));
	if (r < 0)
		goto fail;
	sqlite3_busy_timeout(c->h, 5000);
	sqlite3_extended_result_codes(c->h, 1);
	if (ro) {
		/* Chunks stream through a reader once: SQLite's default 2 MB
		 * page cache on each worker thread would hold nothing worth
		 * keeping, and is memory while boards stream. */
		r = sq_exec(&c->base, "PRAGMA cache_size = -256");
	} else {
		/* page_size only takes effect on a new store.  WAL: readers
		 * never block the writer; FULL: a commit survives power loss. */
		r = sq_exec(&c->base, "PRAGMA page_size = 32768");
		if (r == 0)
			r = sq_exec(&c->base, "PRAGMA journal_mode = WAL");
		if (r == 0)
			r = sq_exec(&c->base, "PRAGMA synchronous = FULL");
		if (r == 0)
			r = sq_exec(&c->base, "PRAGMA foreign_keys = ON");
		/* Statement journals (a savepoint's, db_begin inside db_hold) in
		 * RAM: with 32 KiB pages one spilled past SQLite's 64 KiB into a
		 * temporary file, made, written and closed by every such
		 * transaction (an enrollment's, for one). */
		if (r == 0)
			r = sq_exec(&c->base, "PRAGMA temp_store = MEMORY");
	}
	if (r < 0)
		goto fail;
	*out = &c->base;
	return 0;
fail:
	sq_close(&c->base);
	return r;
}

static int sq_prepare(struct sql *c, const char *q, struct sql_stmt **out)
{
	struct sq_stmt *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->base.c = c;
	r = sql_sqlite_errno(sqlite3_prepare_v3(H(c), q, -1, SQLITE_PREPARE_PERSISTENT, &s->s, NULL));
	if (r < 0 || !s->s) {
		sqlite3_finalize(s->s);
		free(s);
		return r < 0 ? r : -EINVAL;
	}
	*out = &s->base;
	return 0;
}

static void sq_finalize(struct sql_stmt *s)
{
	sqlite3_finalize(S(s));
	free(s);
}

static void sq_reset(struct sql_stmt *s)
{
	sqlite3_reset(S(s));
	sqlite3_clear_bindings(S(s));
}

static void sq_bind_int64(struct sql_stmt *s, int idx, int64_t v)
{
	sqlite3_bind_int64(S(s), idx, v);
}

static void sq_bind_text(struct sql_stmt *s, int idx, const char *v, int len)
{
	sqlite3_bind_text(S(s), idx, v, len, SQLITE_STATIC);
}

static void sq_bind_blob(struct sql_stmt *s, int idx, const void *v, size_t len)
{
	/* zero bytes: an empty blob, not NULL */
	sqlite3_bind_blob64(S(s), idx, len ? v : "", len, SQLITE_STATIC);
}

static void sq_bind_null(struct sql_stmt *s, int idx)
{
	sqlite3_bind_null(S(s), idx);
}

static int sq_step(struct sql_stmt *s)
{
	int rc = sqlite3_step(S(s));

	if (rc == SQLITE_ROW)
		return SQL_ROW;
	if (rc == SQLITE_DONE)
		return SQL_DONE;
	rc = sql_sqlite_errno(rc);
	return rc < 0 ? rc : -EIO;
}

static bool sq_col_null(struct sql_stmt *s, int col)
{
	return sqlite3_column_type(S(s), col) == SQLITE_NULL;
}

static int64_t sq_col_int64(struct sql_stmt *s, int col)
{
	return sqlite3_column_int64(S(s), col);
}

static const char *sq_col_text(struct sql_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(S(s), col);
}

static const void *sq_col_blob(struct sql_stmt *s, int col)
{
	return sqlite3_column_blob(S(s), col);
}

static size_t sq_col_bytes(struct sql_stmt *s, int col)
{
	return (size_t)sqlite3_column_bytes(S(s), col);
}

static int64_t sq_changes(struct sql *c)
{
	return sqlite3_changes64(H(c));
}

static int sq_begin(struct sql *c)
{
	return sq_exec(c, "BEGIN IMMEDIATE");
}

static bool sq_in_tx(struct sql *c)
{
	return !sqlite3_get_autocommit(H(c));
}

static int sq_set_durable(struct sql *c, bool durable)
{
	return sq_exec(c, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

static int sq_pragma_int(struct sql *c, const char *q)
{
	sqlite3_stmt *s;
	int v = -EIO;

	if (sqlite3_prepare_v2(H(c), q, -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int sq_schema_version(struct sql *c)
{
	return sq_pragma_int(c, "PRAGMA user_version");
}

static int sq_set_schema_version(struct sql *c, int v)
{
	char q[64];

	snprintf(q, sizeof(q), "PRAGMA user_version = %d", v);
	return sq_exec(c, q);
}

static int sq_check(struct sql *c)
{
	sqlite3_stmt *s;
	int r = -EIO;

	if (sqlite3_prepare_v2(H(c), "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) &&
	    strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0)
		r = 0;
	sqlite3_finalize(s);
	return r;
}

static int sq_blob_read(struct sql *c, const char *table, const char *col, int64_t id, void *buf, size_t size)
{
	sqlite3_blob *blob = NULL;
	int r;

	if (size > INT32_MAX)
		return -EINVAL;
	r = sql_sqlite_errno(sqlite3_blob_open(H(c), "main", table, col, id, 0, &blob));
	if (r < 0)
		return r == -EIO ? -ENOENT : r;
	if (sqlite3_blob_bytes(blob) != (int)size)
		r = -EBADMSG;
	else if (size)
		r = sql_sqlite_errno(sqlite3_blob_read(blob, buf, (int)size, 0));
	sqlite3_blob_close(blob);
	return r;
}

/* The row's column becomes a zeroblob of len bytes, then the bytes go
 * straight into it: no copy of a 1 MiB chunk into SQLite's own buffer. */
static int sq_blob_write(struct sql *c, const char *table, const char *col, int64_t id, const void *buf,
			 size_t len)
{
	char q[160];
	sqlite3_stmt *s;
	sqlite3_blob *blob = NULL;
	int r;

	if (len > INT32_MAX)
		return -EINVAL;
	if ((size_t)snprintf(q, sizeof(q), "UPDATE %s SET %s = zeroblob(?) WHERE id = ?", table, col) >= sizeof(q))
		return -EINVAL;
	r = sql_sqlite_errno(sqlite3_prepare_v2(H(c), q, -1, &s, NULL));
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)len);
	sqlite3_bind_int64(s, 2, id);
	r = sql_sqlite_errno(sqlite3_step(s));
	sqlite3_finalize(s);
	if (r == 0 && sqlite3_changes(H(c)) != 1)
		r = -ENOENT;
	if (r < 0 || len == 0)
		return r;
	r = sql_sqlite_errno(sqlite3_blob_open(H(c), "main", table, col, id, 1, &blob));
	if (r == 0)
		r = sql_sqlite_errno(sqlite3_blob_write(blob, buf, (int)len, 0));
	sqlite3_blob_close(blob);
	return r;
}

static const char *sq_errmsg(struct sql *c)
{
	return sqlite3_errmsg(H(c));
}

const struct sql_ops sql_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.reset = sq_reset,
	.bind_int64 = sq_bind_int64,
	.bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob,
	.bind_null = sq_bind_null,
	.step = sq_step,
	.col_null = sq_col_null,
	.col_int64 = sq_col_int64,
	.col_text = sq_col_text,
	.col_blob = sq_col_blob,
	.col_bytes = sq_col_bytes,
	.changes = sq_changes,
	.exec = sq_exec,
	.begin = sq_begin,
	.in_tx = sq_in_tx,
	.set_durable = sq_set_durable,
	.schema_version = sq_schema_version,
	.set_schema_version = sq_set_schema_version,
	.check = sq_check,
	.blob_read = sq_blob_read,
	.blob_write = sq_blob_write,
	.errmsg = sq_errmsg,
};

struct sqlite3 *sql_sqlite_handle(struct sql *c)
{
	return c && c->ops == &sql_sqlite_ops ? H(c) : NULL;
}
