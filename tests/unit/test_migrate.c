/* `skyrootd migrate`'s copier (controller/skyrootd/migrate.c): its table
 * list is the SQLite schema exactly (every table, every column, in order,
 * of the right kind); a copy moves every value of every column of every
 * table (NULLs, empty blobs and a 1 MiB chunk included) through sql.h;
 * a destination with rows is refused and left as it was (one
 * transaction); a store a skyrootd holds open is seen as busy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/migrate.h"
#include "controller/skyrootd/sql.h"
#include "tmpdb.h"

#define BIG (1u << 20) /* a chunk's bytes */

static sqlite3 *H(struct tmpdb *t)
{
	sqlite3 *h = sql_sqlite_handle(db_sql(t->db));

	assert_non_null(h);
	return h;
}

static const struct migrate_table *spec(const char *name)
{
	for (size_t i = 0; i < migrate_tables_n; i++)
		if (strcmp(migrate_tables[i].name, name) == 0)
			return &migrate_tables[i];
	return NULL;
}

static enum migrate_kind kind_of(const char *decl)
{
	if (strcmp(decl, "INTEGER") == 0)
		return MIGRATE_INT;
	if (strcmp(decl, "TEXT") == 0)
		return MIGRATE_TEXT;
	if (strcmp(decl, "BLOB") == 0)
		return MIGRATE_BLOB;
	fail_msg("a column of type '%s': migrate.c knows INTEGER, TEXT and BLOB", decl);
	return MIGRATE_INT;
}

/* The store's own tables (not SQLite's), by name. */
static int user_tables(sqlite3 *h, char names[][32], int max)
{
	sqlite3_stmt *s;
	int n = 0;

	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT name FROM sqlite_schema WHERE type = 'table' "
					    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
					    -1, &s, NULL),
			 SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		assert_true(n < max);
		snprintf(names[n++], 32, "%s", (const char *)sqlite3_column_text(s, 0));
	}
	sqlite3_finalize(s);
	return n;
}

/* Every table and column of a new SQLite store is in migrate_tables, in
 * table_info's order and of its declared kind, and nothing else is. */
static void test_spec_is_the_schema(void **state)
{
	struct tmpdb t;
	char names[64][32], q[96];
	int n;

	(void)state;
	tmpdb_open(&t, "migrate-spec");
	n = user_tables(H(&t), names, 64);
	assert_int_equal((size_t)n, migrate_tables_n);
	for (int i = 0; i < n; i++) {
		const struct migrate_table *tb = spec(names[i]);
		sqlite3_stmt *s;
		int c = 0;

		if (!tb)
			fail_msg("table %s of the schema is not in migrate_tables (migrate.c)", names[i]);
		snprintf(q, sizeof(q), "PRAGMA table_info(%.31s)", names[i]);
		assert_int_equal(sqlite3_prepare_v2(H(&t), q, -1, &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW) {
			const char *col = (const char *)sqlite3_column_text(s, 1);
			const char *decl = (const char *)sqlite3_column_text(s, 2);

			if (!tb->cols[c].name)
				fail_msg("%s.%s is not in migrate_tables (migrate.c)", names[i], col);
			if (strcmp(tb->cols[c].name, col) != 0)
				fail_msg("%s: column %d is %s, migrate_tables says %s", names[i], c, col, tb->cols[c].name);
			if (kind_of(decl) != tb->cols[c].kind)
				fail_msg("%s.%s is %s, migrate_tables says another kind", names[i], col, decl);
			c++;
		}
		sqlite3_finalize(s);
		if (tb->cols[c].name)
			fail_msg("%s.%s is in migrate_tables, not in the schema", names[i], tb->cols[c].name);
		if (tb->identity) {
			const struct migrate_col *ic = tb->cols;
			while (ic->name && strcmp(ic->name, tb->identity) != 0)
				ic++;
			assert_non_null(ic->name);
			assert_int_equal(ic->kind, MIGRATE_INT);
		}
	}
	tmpdb_close(&t);
}

/* Rows into every table of t, from table_info (not from migrate_tables,
 * so a column the list forgot still gets a value the copy must carry):
 * row 0 plain values (chunk_data's a 1 MiB blob), row 1 NULL in every
 * nullable column, row 2 empty blobs in the nullable blob columns.  The
 * number of rows. */
static unsigned fill(struct tmpdb *t, uint8_t *big)
{
	char names[64][32], q[1024], pq[96];
	int n = user_tables(H(t), names, 64);
	unsigned rows = 0;

	for (int i = 0; i < n; i++) {
		int nrows = strcmp(names[i], "scrub_state") == 0 ? 1 : 3; /* its id is 0, one row */

		for (int k = 0; k < nrows; k++) {
			sqlite3_stmt *ti, *ins;
			size_t a = (size_t)snprintf(q, sizeof(q), "INSERT INTO %.31s VALUES(", names[i]);
			int ncols = 0;

			snprintf(pq, sizeof(pq), "PRAGMA table_info(%.31s)", names[i]);
			assert_int_equal(sqlite3_prepare_v2(H(t), pq, -1, &ti, NULL), SQLITE_OK);
			while (sqlite3_step(ti) == SQLITE_ROW)
				a += (size_t)snprintf(q + a, 1024 - a, "%s?", ncols++ ? ", " : "");
			snprintf(q + a, 1024 - a, ")");
			assert_int_equal(sqlite3_prepare_v2(H(t), q, -1, &ins, NULL), SQLITE_OK);
			sqlite3_reset(ti);
			for (int c = 1; sqlite3_step(ti) == SQLITE_ROW; c++) {
				const char *col = (const char *)sqlite3_column_text(ti, 1);
				enum migrate_kind kd = kind_of((const char *)sqlite3_column_text(ti, 2));
				bool nullable = !sqlite3_column_int(ti, 3) && !sqlite3_column_int(ti, 5);
				char v[128];

				snprintf(v, sizeof(v), "%.31s.%.40s#%d", names[i], col, k);
				if (strcmp(names[i], "scrub_state") == 0 && c == 1)
					sqlite3_bind_int64(ins, c, 0);
				else if (k == 1 && nullable)
					sqlite3_bind_null(ins, c);
				else if (kd == MIGRATE_INT) /* gaps between rows; every other one past 32 bits */
					sqlite3_bind_int64(ins, c, ((int64_t)(c % 2) << 40) + 1000 * k + 7 + c);
				else if (kd == MIGRATE_TEXT)
					sqlite3_bind_text(ins, c, v, -1, SQLITE_TRANSIENT);
				else if (k == 2 && nullable)
					sqlite3_bind_blob(ins, c, "", 0, SQLITE_STATIC);
				else if (k == 0 && strcmp(names[i], "chunk_data") == 0)
					sqlite3_bind_blob(ins, c, big, BIG, SQLITE_STATIC);
				else
					sqlite3_bind_blob(ins, c, v, (int)strlen(v), SQLITE_TRANSIENT);
			}
			if (sqlite3_step(ins) != SQLITE_DONE)
				fail_msg("insert into %s: %s", names[i], sqlite3_errmsg(H(t)));
			sqlite3_finalize(ins);
			sqlite3_finalize(ti);
			rows++;
		}
	}
	return rows;
}

/* Table by table, row by row, value by value: the same types and bytes. */
static void same_stores(struct tmpdb *x, struct tmpdb *y)
{
	char names[64][32], q[128];
	int n = user_tables(H(x), names, 64);

	for (int i = 0; i < n; i++) {
		sqlite3_stmt *a, *b;
		int ra, rb, nrows = 0;

		snprintf(q, sizeof(q), "SELECT * FROM %.31s ORDER BY 1, 2", names[i]);
		assert_int_equal(sqlite3_prepare_v2(H(x), q, -1, &a, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(H(y), q, -1, &b, NULL), SQLITE_OK);
		while ((ra = sqlite3_step(a)) == SQLITE_ROW) {
			rb = sqlite3_step(b);
			if (rb != SQLITE_ROW)
				fail_msg("%s: row %d missing in the copy", names[i], nrows);
			for (int c = 0; c < sqlite3_column_count(a); c++) {
				int ta = sqlite3_column_type(a, c), tb = sqlite3_column_type(b, c);
				const void *va = sqlite3_column_blob(a, c), *vb = sqlite3_column_blob(b, c);
				int la = sqlite3_column_bytes(a, c), lb = sqlite3_column_bytes(b, c);

				if (ta != tb || la != lb || (la && memcmp(va, vb, (size_t)la) != 0))
					fail_msg("%s row %d: column %s differs in the copy (type %d/%d, %d/%d bytes)",
						 names[i], nrows, sqlite3_column_name(a, c), ta, tb, la, lb);
			}
			nrows++;
		}
		assert_int_equal(ra, SQLITE_DONE);
		assert_int_equal(sqlite3_step(b), SQLITE_DONE);
		assert_true(nrows > 0);
		sqlite3_finalize(a);
		sqlite3_finalize(b);
	}
}

static void test_copy_everything(void **state)
{
	struct tmpdb src, dst;
	struct sql *ro = NULL;
	struct migrate_stats st;
	uint8_t *big = malloc(BIG);
	char err[256];
	unsigned rows;

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 12));
	tmpdb_open(&src, "migrate-src");
	tmpdb_open(&dst, "migrate-dst");
	rows = fill(&src, big);
	/* the newest event went: its rv is still never given again */
	assert_int_equal(sqlite3_exec(H(&src), "DELETE FROM events WHERE rv = (SELECT MAX(rv) FROM events)", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_changes(H(&src)), 1);
	rows--;
	assert_int_equal(sql_open(src.path, SQL_OPEN_READONLY, &ro), 0);
	assert_int_equal(migrate_copy(ro, db_sql(dst.db), false, &st, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(st.rows, rows);
	assert_int_equal(st.tables, migrate_tables_n);
	assert_true(st.bytes > BIG);
	assert_false(sql_in_tx(db_sql(dst.db)));
	same_stores(&src, &dst);
	same_stores(&dst, &src);
	sql_close(ro);
	tmpdb_close(&dst);
	tmpdb_close(&src);
	free(big);
}

/* A destination with a row in the last table: refused there, after every
 * other table was copied, and none of those rows stays. */
static void test_nonempty_refused_all_or_nothing(void **state)
{
	struct tmpdb src, dst;
	struct sql *ro = NULL;
	struct migrate_stats st;
	uint8_t *big = calloc(1, BIG);
	char err[256];
	const char *last = migrate_tables[migrate_tables_n - 1].name;

	(void)state;
	assert_non_null(big);
	tmpdb_open(&src, "migrate-src");
	tmpdb_open(&dst, "migrate-dst");
	fill(&src, big);
	assert_string_equal(last, "guest_console");
	assert_int_equal(sqlite3_exec(H(&dst), "INSERT INTO guest_console(guest_id, seq, data, at) "
					       "VALUES('gst-x', 1, x'41', 1)", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sql_open(src.path, SQL_OPEN_READONLY, &ro), 0);
	assert_int_equal(migrate_copy(ro, db_sql(dst.db), false, &st, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "guest_console"));
	assert_true(st.tables == migrate_tables_n - 1);
	assert_false(sql_in_tx(db_sql(dst.db)));
	for (size_t i = 0; i + 1 < migrate_tables_n; i++) {
		char q[96];
		snprintf(q, sizeof(q), "SELECT count(*) FROM %s", migrate_tables[i].name);
		assert_int_equal(sql_count(db_sql(dst.db), q), 0);
	}
	assert_int_equal(sql_count(db_sql(dst.db), "SELECT count(*) FROM guest_console"), 1);
	sql_close(ro);
	tmpdb_close(&dst);
	tmpdb_close(&src);
	free(big);
}

/* A store some process holds open (as a running skyrootd does) is busy;
 * closed, it is idle; a missing one is -ENOENT. */
static void test_source_idle(void **state)
{
	struct tmpdb t;
	char p[128];

	(void)state;
	tmpdb_open(&t, "migrate-idle");
	assert_int_equal(migrate_source_idle(t.path), -EBUSY);
	db_close(t.db);
	t.db = NULL;
	assert_int_equal(migrate_source_idle(t.path), 0);
	snprintf(p, sizeof(p), "%s/none.db", t.dir);
	assert_int_equal(migrate_source_idle(p), -ENOENT);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(db_open(t.path, &t.db), 0);
	tmpdb_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_is_the_schema),
		cmocka_unit_test(test_copy_everything),
		cmocka_unit_test(test_nonempty_refused_all_or_nothing),
		cmocka_unit_test(test_source_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
