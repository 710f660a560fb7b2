/* The controller's SQL engines behind one statement interface: SQLite (the
 * embedded default, one controller; sql_sqlite.c) and PostgreSQL (several
 * controllers on one database; sql_pg.c).  Each engine is an ops table;
 * nothing above this layer names an engine's library.
 *
 * The SQL text is one dialect both engines run: '?' or '?N' parameters (the
 * PostgreSQL engine turns them into $N), ON CONFLICT instead of INSERT OR,
 * RETURNING instead of last_insert_rowid(), no PRAGMA.  What differs is an
 * op: opening, transactions, the schema version, durability, the integrity
 * check and chunk bytes (incremental blob I/O on SQLite).  Schemas are per
 * engine (db.c keeps a forward migration list for each).
 *
 * A connection is used by one thread at a time.  Every int-returning call
 * gives 0 (or a count) or a negative errno: -ENOENT no row, -EEXIST a
 * constraint, -EBUSY a lock or a serialization failure worth retrying,
 * -ENOTCONN the database is unreachable (the API answers 503), -EIO else.
 * Bound text and blobs are not copied: they must stay valid until the
 * statement is stepped for the last time or reset. */
#ifndef SKY_CONTROLLER_SQL_H
#define SKY_CONTROLLER_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sql;
struct sql_stmt;

/* sql_step: a row is there to read, or the statement is done. */
#define SQL_ROW 1
#define SQL_DONE 0

enum sql_open_flags {
	SQL_OPEN_READONLY = 1 << 0, /* a reader for a worker thread (small cache) */
};

struct sql_ops {
	const char *name; /* "sqlite", "postgresql" */
	int (*open)(const char *target, unsigned flags, struct sql **out);
	void (*close)(struct sql *c);
	/* Compile once, run many times (reset between runs). */
	int (*prepare)(struct sql *c, const char *sql, struct sql_stmt **out);
	void (*finalize)(struct sql_stmt *s);
	void (*reset)(struct sql_stmt *s); /* and clear its bindings */
	void (*bind_int64)(struct sql_stmt *s, int idx, int64_t v);
	void (*bind_text)(struct sql_stmt *s, int idx, const char *v, int len); /* len < 0: to NUL */
	void (*bind_blob)(struct sql_stmt *s, int idx, const void *v, size_t len);
	void (*bind_null)(struct sql_stmt *s, int idx);
	int (*step)(struct sql_stmt *s); /* SQL_ROW, SQL_DONE or -errno */
	bool (*col_null)(struct sql_stmt *s, int col);
	int64_t (*col_int64)(struct sql_stmt *s, int col);
	const char *(*col_text)(struct sql_stmt *s, int col); /* NULL when NULL */
	const void *(*col_blob)(struct sql_stmt *s, int col);
	size_t (*col_bytes)(struct sql_stmt *s, int col);
	/* Rows the last INSERT, UPDATE or DELETE of c changed. */
	int64_t (*changes)(struct sql *c);
	/* Statements without parameters or results, ';'-separated. */
	int (*exec)(struct sql *c, const char *sql);
	/* A write transaction (SQLite: BEGIN IMMEDIATE, the one writer). */
	int (*begin)(struct sql *c);
	bool (*in_tx)(struct sql *c);
	/* Commits need not reach the disk until the next durable one
	 * (SQLite: synchronous=NORMAL in WAL mode; PostgreSQL:
	 * synchronous_commit off).  durable=true again: FULL. */
	int (*set_durable)(struct sql *c, bool durable);
	int (*schema_version)(struct sql *c);
	int (*set_schema_version)(struct sql *c, int v); /* inside a transaction */
	int (*check)(struct sql *c); /* 0 when the store is sound, -EIO not */
	/* The bytes of column col of the row of table whose integer key (id)
	 * is id: exactly size bytes into buf; -ENOENT no such row, -EBADMSG
	 * its size differs.  write stores len bytes as that column of that
	 * (existing) row. */
	int (*blob_read)(struct sql *c, const char *table, const char *col, int64_t id, void *buf,
			 size_t size);
	int (*blob_write)(struct sql *c, const char *table, const char *col, int64_t id, const void *buf,
			  size_t len);
	const char *(*errmsg)(struct sql *c);
};

/* Every connection and statement starts with these. */
struct sql {
	const struct sql_ops *ops;
};
struct sql_stmt {
	struct sql *c;
};

extern const struct sql_ops sql_sqlite_ops;
extern const struct sql_ops sql_pg_ops; /* only when built with libpq */

/* The engine a target names: "postgresql://..." or "postgres://..." (a
 * libpq URI) is PostgreSQL; anything else is a SQLite file.  NULL: a
 * PostgreSQL target and a skyrootd built without libpq. */
const struct sql_ops *sql_engine(const char *target);
bool sql_target_is_pg(const char *target);
/* sql_engine(target)->open; -EPROTONOSUPPORT without the engine. */
int sql_open(const char *target, unsigned flags, struct sql **out);

static inline void sql_close(struct sql *c)
{
	if (c)
		c->ops->close(c);
}
static inline int sql_prepare(struct sql *c, const char *q, struct sql_stmt **out)
{
	return c->ops->prepare(c, q, out);
}
static inline void sql_finalize(struct sql_stmt *s)
{
	if (s)
		s->c->ops->finalize(s);
}
static inline void sql_reset(struct sql_stmt *s)
{
	s->c->ops->reset(s);
}
static inline void sql_bind_int64(struct sql_stmt *s, int idx, int64_t v)
{
	s->c->ops->bind_int64(s, idx, v);
}
static inline void sql_bind_text(struct sql_stmt *s, int idx, const char *v)
{
	s->c->ops->bind_text(s, idx, v, -1);
}
static inline void sql_bind_textn(struct sql_stmt *s, int idx, const char *v, int len)
{
	s->c->ops->bind_text(s, idx, v, len);
}
static inline void sql_bind_blob(struct sql_stmt *s, int idx, const void *v, size_t len)
{
	s->c->ops->bind_blob(s, idx, v, len);
}
static inline void sql_bind_null(struct sql_stmt *s, int idx)
{
	s->c->ops->bind_null(s, idx);
}
static inline int sql_step(struct sql_stmt *s)
{
	return s->c->ops->step(s);
}
static inline bool sql_col_null(struct sql_stmt *s, int col)
{
	return s->c->ops->col_null(s, col);
}
static inline int64_t sql_col_int64(struct sql_stmt *s, int col)
{
	return s->c->ops->col_int64(s, col);
}
static inline const char *sql_col_text(struct sql_stmt *s, int col)
{
	return s->c->ops->col_text(s, col);
}
static inline const void *sql_col_blob(struct sql_stmt *s, int col)
{
	return s->c->ops->col_blob(s, col);
}
static inline size_t sql_col_bytes(struct sql_stmt *s, int col)
{
	return s->c->ops->col_bytes(s, col);
}
static inline int64_t sql_changes(struct sql *c)
{
	return c->ops->changes(c);
}
static inline int sql_exec(struct sql *c, const char *q)
{
	return c->ops->exec(c, q);
}
static inline const char *sql_errmsg(struct sql *c)
{
	return c->ops->errmsg(c);
}
static inline bool sql_in_tx(struct sql *c)
{
	return c->ops->in_tx(c);
}

/* The SQLite handle of a SQLite connection (NULL for another engine), for
 * what only SQLite has (backup.c's online backup). */
struct sqlite3;
struct sqlite3 *sql_sqlite_handle(struct sql *c);
/* A SQLite result code as a negative errno (0 for OK, ROW, DONE), as
 * the engine maps them. */
int sql_sqlite_errno(int rc);

/* Helpers over the ops (sql.c). */
/* Step s (its bindings set) to SQL_DONE and reset it: 0 or -errno (a row
 * is -EIO: a statement that was to return none). */
int sql_run(struct sql_stmt *s);
/* Column col as text into dst (n bytes, cut to fit; NULL is ""). */
void sql_copy_text(char *dst, size_t n, struct sql_stmt *s, int col);
/* Column col as a blob of exactly n bytes into dst: 0, or -EIO when its
 * size differs (nothing copied). */
int sql_copy_blob(void *dst, size_t n, struct sql_stmt *s, int col);

/* One-off statements (compiled, run once, finalized), for rare paths:
 * sql_once_done steps s, which returns no row, and finalizes it;
 * sql_once_changed is that, -ENOENT when no row changed; sql_once_row
 * steps s to its first row, reads it with row(s, out) and finalizes s
 * (-ENOENT: no row); sql_once_each steps s through its rows, giving each
 * to each(ctx, s) until one returns non-zero (that is returned, as is a
 * step's error), and finalizes s; sql_count is the first column of the
 * first row of q (a SELECT count(*) ...) as a non-negative int. */
typedef void (*sql_row_fn)(struct sql_stmt *s, void *out);
typedef int (*sql_each_fn)(void *ctx, struct sql_stmt *s);
int sql_once_done(struct sql_stmt *s);
int sql_once_changed(struct sql_stmt *s);
int sql_once_row(struct sql_stmt *s, sql_row_fn row, void *out);
int sql_once_each(struct sql_stmt *s, sql_each_fn each, void *ctx);
int sql_count(struct sql *c, const char *q);

#endif
