/* The engine a target names, and helpers over any engine's ops (sql.h). */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "controller/skyrootd/sql.h"

bool sql_target_is_pg(const char *target)
{
	return strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0;
}

const struct sql_ops *sql_engine(const char *target)
{
	if (!sql_target_is_pg(target))
		return &sql_sqlite_ops;
#ifdef SKY_HAVE_PG
	return &sql_pg_ops;
#else
	return NULL;
#endif
}

int sql_open(const char *target, unsigned flags, struct sql **out)
{
	const struct sql_ops *e = sql_engine(target);

	return e ? e->open(target, flags, out) : -EPROTONOSUPPORT;
}

int sql_run(struct sql_stmt *s)
{
	int r = sql_step(s);

	sql_reset(s);
	return r == SQL_DONE ? 0 : r < 0 ? r : -EIO;
}

void sql_copy_text(char *dst, size_t n, struct sql_stmt *s, int col)
{
	const char *t = sql_col_text(s, col);

	snprintf(dst, n, "%s", t ? t : "");
}

int sql_copy_blob(void *dst, size_t n, struct sql_stmt *s, int col)
{
	const void *b = sql_col_blob(s, col);

	if (sql_col_bytes(s, col) != n || (n && !b))
		return -EIO;
	if (n)
		memcpy(dst, b, n);
	return 0;
}

int sql_once_done(struct sql_stmt *s)
{
	int r = sql_step(s);

	sql_finalize(s);
	return r == SQL_DONE ? 0 : r < 0 ? r : -EIO;
}

int sql_once_changed(struct sql_stmt *s)
{
	struct sql *c = s->c;
	int r = sql_once_done(s);

	return r == 0 && sql_changes(c) == 0 ? -ENOENT : r;
}

int sql_once_row(struct sql_stmt *s, sql_row_fn row, void *out)
{
	int r = sql_step(s);

	if (r == SQL_ROW) {
		row(s, out);
		r = 0;
	} else if (r == SQL_DONE) {
		r = -ENOENT;
	}
	sql_finalize(s);
	return r;
}

int sql_once_each(struct sql_stmt *s, sql_each_fn each, void *ctx)
{
	int rc, r = 0;

	while ((rc = sql_step(s)) == SQL_ROW) {
		r = each(ctx, s);
		if (r)
			break;
	}
	if (r == 0 && rc != SQL_DONE)
		r = rc < 0 ? rc : -EIO;
	sql_finalize(s);
	return r;
}

int sql_count(struct sql *c, const char *q)
{
	struct sql_stmt *s;
	int64_t v;
	int r = sql_prepare(c, q, &s);

	if (r < 0)
		return r;
	r = sql_step(s);
	if (r == SQL_ROW) {
		v = sql_col_int64(s, 0);
		r = v < 0 ? -EIO : v > INT32_MAX ? INT32_MAX : (int)v;
	} else if (r == SQL_DONE) {
		r = -EIO;
	}
	sql_finalize(s);
	return r;
}
