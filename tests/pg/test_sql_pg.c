/* The PostgreSQL engine of sql.h (sql_pg.c) against a real server:
 * tests/pg/run.py starts a private one (pgserver.py) and gives its URI in
 * SKY_PG_URI and the command that stops it in SKY_PG_STOP.  The last case
 * stops the server. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/db_pg_schema.h"
#include "controller/skyrootd/sql.h"

static const char *uri(void)
{
	const char *u = getenv("SKY_PG_URI");

	if (!u)
		fail_msg("SKY_PG_URI is not set: run through tests/pg/run.py");
	return u;
}

/* The URI of database name on the same server. */
static void uri_db(char *out, size_t n, const char *name)
{
	const char *u = uri(), *slash = strrchr(u, '/');

	snprintf(out, n, "%.*s/%s", (int)(slash - u), u, name);
}

static struct sql *conn(void)
{
	struct sql *c = NULL;

	assert_int_equal(sql_open(uri(), 0, &c), 0);
	assert_non_null(c);
	assert_string_equal(c->ops->name, "postgresql");
	return c;
}

static void exec_ok(struct sql *c, const char *q)
{
	int r = sql_exec(c, q);

	if (r != 0)
		fail_msg("%s: %d %s", q, r, sql_errmsg(c));
}

static struct sql_stmt *prep(struct sql *c, const char *q)
{
	struct sql_stmt *s = NULL;
	int r = sql_prepare(c, q, &s);

	if (r != 0)
		fail_msg("%s: %d %s", q, r, sql_errmsg(c));
	return s;
}

/* A fresh empty database; its URI into out. */
static void fresh_db(const char *name, char *out, size_t n)
{
	struct sql *c = conn();
	char q[128];

	snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s", name);
	exec_ok(c, q);
	snprintf(q, sizeof(q), "CREATE DATABASE %s", name);
	exec_ok(c, q);
	sql_close(c);
	uri_db(out, n, name);
}

static void test_placeholders(void **state)
{
	struct sql *c = conn();
	struct sql_stmt *s;

	/* ?2 and ?1 by number, a bare ? after them is the next (3); the ones
	 * in a string literal (with a doubled quote) and an identifier stay */
	s = prep(c, "SELECT CAST(?2 AS TEXT) || CAST(?1 AS TEXT) || '?x''?' AS \"q?\", CAST(? AS BIGINT) -- ?");
	sql_bind_text(s, 1, "a");
	sql_bind_text(s, 2, "b");
	sql_bind_int64(s, 3, 7);
	assert_int_equal(sql_step(s), SQL_ROW);
	assert_string_equal(sql_col_text(s, 0), "ba?x'?");
	assert_int_equal(sql_col_int64(s, 1), 7);
	assert_int_equal(sql_step(s), SQL_DONE);
	/* reused after a reset, with new bindings */
	sql_reset(s);
	sql_bind_textn(s, 1, "xyz", 1); /* a length short of the NUL */
	sql_bind_text(s, 2, "");
	sql_bind_int64(s, 3, -3);
	assert_int_equal(sql_step(s), SQL_ROW);
	assert_string_equal(sql_col_text(s, 0), "x?x'?");
	assert_string_equal(sql_col_text(s, 1), "-3"); /* a number read as text */
	sql_finalize(s);
	/* ?1 twice */
	s = prep(c, "SELECT CAST(?1 AS BIGINT) + CAST(?1 AS BIGINT)");
	sql_bind_int64(s, 1, 21);
	assert_int_equal(sql_step(s), SQL_ROW);
	assert_int_equal(sql_col_int64(s, 0), 42);
	sql_finalize(s);
	/* a syntax error fails prepare; so do indexes out of range */
	assert_true(sql_prepare(c, "SELEC 1", &s) < 0);
	assert_int_equal(sql_prepare(c, "SELECT ?0", &s), -EINVAL);
	assert_int_equal(sql_prepare(c, "SELECT ?40000", &s), -EINVAL);
	assert_int_equal(sql_prepare(c, "SELECT ?32766, ?", &s), -EINVAL);
	sql_close(c);
}

static void test_ints_text_nulls(void **state)
{
	const int64_t v[] = {INT64_MIN, INT64_MAX, 0, -1, 1, (int64_t)1 << 40};
	struct sql *c = conn();
	struct sql_stmt *ins, *sel;
	char buf[32];

	exec_ok(c, "DROP TABLE IF EXISTS t_int; CREATE TABLE t_int (id BIGINT PRIMARY KEY, v BIGINT, t TEXT, b BOOLEAN)");
	ins = prep(c, "INSERT INTO t_int (id, v, t, b) VALUES (?, ?, ?, ?)");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sql_reset(ins);
		sql_bind_int64(ins, 1, (int64_t)i);
		sql_bind_int64(ins, 2, v[i]);
		snprintf(buf, sizeof(buf), "%lld", (long long)v[i]);
		sql_bind_text(ins, 3, buf);
		sql_bind_int64(ins, 4, (int64_t)(i & 1));
		assert_int_equal(sql_run(ins), 0);
		assert_int_equal(sql_changes(c), 1);
	}
	sql_reset(ins);
	sql_bind_int64(ins, 1, 100);
	sql_bind_null(ins, 2);
	sql_bind_null(ins, 3);
	sql_bind_null(ins, 4);
	assert_int_equal(sql_run(ins), 0);
	sel = prep(c, "SELECT v, t, b, v IS NULL, count(*) OVER () FROM t_int WHERE id = ?");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sql_reset(sel);
		sql_bind_int64(sel, 1, (int64_t)i);
		assert_int_equal(sql_step(sel), SQL_ROW);
		assert_false(sql_col_null(sel, 0));
		assert_true(sql_col_int64(sel, 0) == v[i]);
		assert_true(sql_col_int64(sel, 1) == v[i]); /* text parsed */
		snprintf(buf, sizeof(buf), "%lld", (long long)v[i]);
		assert_string_equal(sql_col_text(sel, 0), buf);
		assert_string_equal(sql_col_text(sel, 1), buf);
		assert_int_equal(sql_col_bytes(sel, 1), strlen(buf));
		assert_int_equal(sql_col_int64(sel, 2), (int64_t)(i & 1)); /* BOOL */
		assert_int_equal(sql_col_int64(sel, 3), 0);
		assert_int_equal(sql_col_int64(sel, 4), 1);
		assert_int_equal(sql_step(sel), SQL_DONE);
	}
	sql_reset(sel);
	sql_bind_int64(sel, 1, 100);
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_true(sql_col_null(sel, 0));
	assert_true(sql_col_null(sel, 1));
	assert_null(sql_col_text(sel, 1));
	assert_int_equal(sql_col_int64(sel, 0), 0);
	assert_int_equal(sql_col_int64(sel, 3), 1);
	/* no such row: done at once */
	sql_reset(sel);
	sql_bind_int64(sel, 1, 999);
	assert_int_equal(sql_step(sel), SQL_DONE);
	sql_finalize(sel);
	/* count(*) and sum() (NUMERIC on PostgreSQL) as integers */
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_int"), 7);
	sel = prep(c, "SELECT sum(v) FROM t_int WHERE v > 0");
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_true(sql_col_int64(sel, 0) == INT64_MAX); /* saturated: INT64_MAX + 1 + 2^40 */
	sql_finalize(sel);
	sel = prep(c, "SELECT sum(v), sum(-v) FROM t_int WHERE id IN (4, 5)");
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_true(sql_col_int64(sel, 0) == ((int64_t)1 << 40) + 1);
	assert_true(sql_col_int64(sel, 1) == -(((int64_t)1 << 40) + 1));
	sql_finalize(sel);
	sql_finalize(ins);
	sql_close(c);
}

static void test_blobs(void **state)
{
	static uint8_t big[1 << 20];
	const uint8_t nul[] = {0, 1, 0, 0xff, 0};
	struct sql *c = conn();
	struct sql_stmt *ins, *sel;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	exec_ok(c, "DROP TABLE IF EXISTS t_blob; CREATE TABLE t_blob (id BIGINT PRIMARY KEY, b BYTEA)");
	ins = prep(c, "INSERT INTO t_blob (id, b) VALUES (?, ?)");
	sql_bind_int64(ins, 1, 1);
	sql_bind_blob(ins, 2, nul, sizeof(nul));
	assert_int_equal(sql_run(ins), 0);
	sql_bind_int64(ins, 1, 2);
	sql_bind_blob(ins, 2, big, sizeof(big));
	assert_int_equal(sql_run(ins), 0);
	sql_bind_int64(ins, 1, 3);
	sql_bind_blob(ins, 2, NULL, 0); /* empty, not NULL */
	assert_int_equal(sql_run(ins), 0);
	sql_bind_int64(ins, 1, 4);
	sql_bind_null(ins, 2);
	assert_int_equal(sql_run(ins), 0);
	sel = prep(c, "SELECT b, b IS NULL FROM t_blob WHERE id = ?");
	sql_bind_int64(sel, 1, 1);
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_int_equal(sql_col_bytes(sel, 0), sizeof(nul));
	assert_memory_equal(sql_col_blob(sel, 0), nul, sizeof(nul));
	sql_reset(sel);
	sql_bind_int64(sel, 1, 2);
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_int_equal(sql_col_bytes(sel, 0), sizeof(big));
	assert_memory_equal(sql_col_blob(sel, 0), big, sizeof(big));
	sql_reset(sel);
	sql_bind_int64(sel, 1, 3);
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_false(sql_col_null(sel, 0));
	assert_int_equal(sql_col_bytes(sel, 0), 0);
	assert_int_equal(sql_col_int64(sel, 1), 0);
	sql_reset(sel);
	sql_bind_int64(sel, 1, 4);
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_true(sql_col_null(sel, 0));
	assert_int_equal(sql_col_int64(sel, 1), 1);
	sql_finalize(sel);
	/* more than libpq can send: the step fails, nothing is read */
	sql_bind_int64(ins, 1, 5);
	sql_bind_blob(ins, 2, big, (size_t)INT32_MAX + 1);
	assert_int_equal(sql_step(ins), -EINVAL);
	sql_reset(ins);
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_blob"), 4);
	/* a type the store never reads: NULL and 0, not its binary form */
	sel = prep(c, "SELECT now(), CAST('1.5' AS REAL)");
	assert_int_equal(sql_step(sel), SQL_ROW);
	assert_false(sql_col_null(sel, 0));
	assert_null(sql_col_text(sel, 0));
	assert_null(sql_col_blob(sel, 0));
	assert_int_equal(sql_col_bytes(sel, 0), 0);
	assert_int_equal(sql_col_int64(sel, 1), 0);
	sql_finalize(sel);
	sql_finalize(ins);
	sql_close(c);
}

static void test_changes_constraint(void **state)
{
	struct sql *c = conn();
	struct sql_stmt *s;

	exec_ok(c, "DROP TABLE IF EXISTS t_ch; CREATE TABLE t_ch (id BIGINT PRIMARY KEY, v BIGINT NOT NULL);"
		   "INSERT INTO t_ch VALUES (1, 0), (2, 0), (3, 5)");
	s = prep(c, "UPDATE t_ch SET v = v + 1 WHERE v < ?");
	sql_bind_int64(s, 1, 5);
	assert_int_equal(sql_run(s), 0);
	assert_int_equal(sql_changes(c), 2);
	/* a SELECT leaves changes() alone */
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_ch"), 3);
	assert_int_equal(sql_changes(c), 2);
	sql_bind_int64(s, 1, -1);
	assert_int_equal(sql_run(s), 0);
	assert_int_equal(sql_changes(c), 0);
	assert_int_equal(sql_once_changed(s), -ENOENT);
	/* unique and NOT NULL: -EEXIST */
	s = prep(c, "INSERT INTO t_ch (id, v) VALUES (?, ?)");
	sql_bind_int64(s, 1, 1);
	sql_bind_int64(s, 2, 9);
	assert_int_equal(sql_run(s), -EEXIST);
	assert_non_null(strstr(sql_errmsg(c), "duplicate key"));
	sql_bind_int64(s, 1, 10);
	sql_bind_null(s, 2);
	assert_int_equal(sql_run(s), -EEXIST);
	/* ON CONFLICT ... DO UPDATE and RETURNING */
	sql_finalize(s);
	s = prep(c, "INSERT INTO t_ch (id, v) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING id");
	sql_bind_int64(s, 1, 3);
	sql_bind_int64(s, 2, 77);
	assert_int_equal(sql_step(s), SQL_ROW);
	assert_int_equal(sql_col_int64(s, 0), 3);
	assert_int_equal(sql_step(s), SQL_DONE);
	assert_int_equal(sql_changes(c), 1);
	sql_finalize(s);
	assert_int_equal(sql_count(c, "SELECT v FROM t_ch WHERE id = 3"), 77);
	/* a statement timeout: -ETIMEDOUT */
	exec_ok(c, "SET statement_timeout = 50");
	s = prep(c, "SELECT pg_sleep(5)");
	assert_int_equal(sql_step(s), -ETIMEDOUT);
	sql_finalize(s);
	sql_close(c);
}

static void test_transactions(void **state)
{
	struct sql *c = conn();

	exec_ok(c, "DROP TABLE IF EXISTS t_tx; CREATE TABLE t_tx (id BIGINT PRIMARY KEY)");
	assert_false(sql_in_tx(c));
	assert_int_equal(c->ops->begin(c), 0);
	assert_true(sql_in_tx(c));
	exec_ok(c, "INSERT INTO t_tx VALUES (1)");
	exec_ok(c, "SAVEPOINT item");
	exec_ok(c, "INSERT INTO t_tx VALUES (2)");
	/* a failure inside the savepoint, undone by rolling back to it */
	assert_int_equal(sql_exec(c, "INSERT INTO t_tx VALUES (1)"), -EEXIST);
	assert_true(sql_in_tx(c));
	exec_ok(c, "ROLLBACK TO item");
	exec_ok(c, "RELEASE item");
	exec_ok(c, "INSERT INTO t_tx VALUES (3)");
	exec_ok(c, "COMMIT");
	assert_false(sql_in_tx(c));
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_tx"), 2);
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_tx WHERE id = 2"), 0);
	assert_int_equal(c->ops->begin(c), 0);
	exec_ok(c, "DELETE FROM t_tx");
	exec_ok(c, "ROLLBACK");
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_tx"), 2);
	assert_int_equal(c->ops->set_durable(c, false), 0);
	assert_int_equal(sql_count(c, "SELECT CASE WHEN current_setting('synchronous_commit') = 'off' THEN 1 ELSE 0 END"), 1);
	assert_int_equal(c->ops->set_durable(c, true), 0);
	assert_int_equal(sql_count(c, "SELECT CASE WHEN current_setting('synchronous_commit') = 'on' THEN 1 ELSE 0 END"), 1);
	assert_int_equal(c->ops->check(c), 0);
	assert_int_equal(sql_count(c, "SELECT CASE WHEN current_setting('application_name') = 'skyrootd' THEN 1 ELSE 0 END"), 1);
	sql_close(c);
}

static void test_schema_version(void **state)
{
	char u[512];
	struct sql *c, *ro;

	fresh_db("sky_schema", u, sizeof(u));
	assert_int_equal(sql_open(u, SQL_OPEN_READONLY, &ro), 0);
	assert_int_equal(ro->ops->schema_version(ro), 0); /* no table yet */
	assert_int_equal(sql_exec(ro, "CREATE TABLE x (a BIGINT)"), -EIO); /* a reader */
	assert_int_equal(sql_open(u, 0, &c), 0);
	assert_int_equal(c->ops->schema_version(c), 0);
	assert_int_equal(c->ops->begin(c), 0);
	assert_int_equal(c->ops->set_schema_version(c, 5), 0);
	exec_ok(c, "COMMIT");
	assert_int_equal(c->ops->schema_version(c), 5);
	assert_int_equal(c->ops->begin(c), 0);
	assert_int_equal(c->ops->set_schema_version(c, 6), 0);
	exec_ok(c, "COMMIT");
	assert_int_equal(c->ops->schema_version(c), 6);
	assert_int_equal(sql_count(c, "SELECT count(*) FROM skyroot_schema"), 1);
	assert_int_equal(ro->ops->schema_version(ro), 6);
	sql_close(ro);
	sql_close(c);
}

static void test_blob_io(void **state)
{
	static uint8_t big[1 << 20], back[1 << 20];
	struct sql *c = conn();
	uint8_t small[4];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i % 251);
	big[7] = 0;
	exec_ok(c, "DROP TABLE IF EXISTS chunks_t; CREATE TABLE chunks_t (id BIGINT PRIMARY KEY, data BYTEA);"
		   "INSERT INTO chunks_t VALUES (1, NULL)");
	assert_int_equal(c->ops->blob_write(c, "chunks_t", "data", 1, big, sizeof(big)), 0);
	assert_int_equal(c->ops->blob_read(c, "chunks_t", "data", 1, back, sizeof(back)), 0);
	assert_memory_equal(back, big, sizeof(big));
	assert_int_equal(c->ops->blob_read(c, "chunks_t", "data", 1, small, sizeof(small)), -EBADMSG);
	assert_int_equal(c->ops->blob_read(c, "chunks_t", "data", 1, back, sizeof(back) - 1), -EBADMSG);
	assert_int_equal(c->ops->blob_read(c, "chunks_t", "data", 2, small, sizeof(small)), -ENOENT);
	assert_int_equal(c->ops->blob_write(c, "chunks_t", "data", 2, small, sizeof(small)), -ENOENT);
	assert_int_equal(c->ops->blob_write(c, "chunks_t; DROP TABLE x", "data", 1, small, 1), -EINVAL);
	assert_int_equal(c->ops->blob_read(c, "chunks_t", "Data", 1, small, 1), -EINVAL);
	assert_int_equal(c->ops->blob_write(c, "chunks_t", "data", 1, "ab", 2), 0);
	assert_int_equal(c->ops->blob_read(c, "chunks_t", "data", 1, small, 2), 0);
	assert_memory_equal(small, "ab", 2);
	assert_int_equal(c->ops->blob_write(c, "chunks_t", "data", 1, NULL, 0), 0);
	assert_int_equal(c->ops->blob_read(c, "chunks_t", "data", 1, small, 0), 0);
	sql_close(c);
}

/* The URI's password never shows in a message, even one that would quote
 * it back. */
static void test_errmsg_no_password(void **state)
{
	const char *u = uri(), *at = strchr(u + strlen("postgresql://"), '@');
	char withpw[512];
	struct sql *c;

	assert_non_null(at);
	snprintf(withpw, sizeof(withpw), "%.*s:s3cretpw%s", (int)(at - u), u, at);
	assert_int_equal(sql_open(withpw, 0, &c), 0); /* trust: the password is not needed */
	assert_int_equal(sql_exec(c, "SELECT CAST('s3cretpw' AS BIGINT)"), -EIO);
	assert_non_null(strstr(sql_errmsg(c), "invalid input syntax"));
	assert_null(strstr(sql_errmsg(c), "s3cretpw"));
	assert_null(strchr(sql_errmsg(c), '\n')); /* the first line only */
	sql_close(c);
}

struct opener {
	const char *uri;
	struct db *db;
	int r;
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;

	o->r = db_open(o->uri, &o->db);
	return NULL;
}

static void token_fill(struct db_token *t, const char *id, int uses)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->created_at = 1000;
	t->expires_at = 2000;
	t->uses = (uint32_t)uses;
	t->uses_left = (uint32_t)uses;
}

static int board_seen(void *ctx, const struct db_board *b)
{
	snprintf(ctx, DB_NAME_MAX, "%s", b->name);
	return 0;
}

static void test_db_open_race(void **state)
{
	char u[512], id[DB_ID_MAX], name[DB_NAME_MAX] = "";
	struct opener o[3];
	pthread_t th[3];
	struct db_token t, got;
	struct db_board b;
	uint8_t hash[32];

	fresh_db("sky_race", u, sizeof(u));
	for (int i = 0; i < 3; i++) {
		o[i] = (struct opener){.uri = u};
		assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		if (o[i].r != 0)
			fail_msg("db_open %d: %d", i, o[i].r);
	}
	assert_int_equal(db_schema_version(o[0].db), DB_PG_BASE_VERSION + db_pg_migrations_n);
	assert_int_equal(sql_count(db_sql(o[0].db), "SELECT count(*) FROM skyroot_schema"), 1);
	/* the store's functions on PostgreSQL, one controller's write seen
	 * by another */
	memset(hash, 0xab, sizeof(hash));
	token_fill(&t, "tok_1", 3);
	assert_int_equal(db_token_insert(o[0].db, &t, hash), 0);
	assert_int_equal(db_token_insert(o[1].db, &t, hash), -EEXIST);
	assert_int_equal(db_token_consume(o[1].db, hash, 1500, id), 0);
	assert_string_equal(id, "tok_1");
	assert_int_equal(db_token_get(o[2].db, "tok_1", &got), 0);
	assert_int_equal(got.uses_left, 2);
	assert_int_equal(db_token_consume(o[2].db, hash, 2500, id), -EKEYEXPIRED);
	assert_int_equal(db_token_revoke(o[0].db, "tok_1"), 0);
	assert_int_equal(db_token_consume(o[1].db, hash, 1500, id), -EKEYREVOKED);
	memset(&b, 0, sizeof(b));
	snprintf(b.id, sizeof(b.id), "brd_1");
	snprintf(b.name, sizeof(b.name), "rack-1");
	snprintf(b.uuid, sizeof(b.uuid), "0000-1111");
	b.enrolled_at = 42;
	assert_int_equal(db_board_insert(o[0].db, &b), 0);
	assert_int_equal(db_board_insert(o[1].db, &b), -EEXIST);
	assert_int_equal(db_board_find_uuid(o[1].db, "0000-1111", id), 0);
	assert_string_equal(id, "brd_1");
	assert_int_equal(db_board_find_uuid(o[1].db, "nope", id), -ENOENT);
	assert_int_equal(db_board_get(o[2].db, "rack-1", board_seen, name), 0);
	assert_string_equal(name, "rack-1");
	assert_int_equal(db_check(o[2].db), 0);
	for (int i = 0; i < 3; i++)
		db_close(o[i].db);
	/* a second start migrates nothing */
	assert_int_equal(db_open(u, &o[0].db), 0);
	assert_int_equal(db_schema_version(o[0].db), DB_PG_BASE_VERSION + db_pg_migrations_n);
	db_close(o[0].db);
}

struct taker {
	struct db *db;
	const uint8_t *hash;
	int r;
	char id[DB_ID_MAX];
};

static void *take_thread(void *arg)
{
	struct taker *t = arg;

	t->r = db_token_consume(t->db, t->hash, 1500, t->id);
	return NULL;
}

static void test_token_race(void **state)
{
	char u[512];
	struct db *a, *b;
	struct db_token t;
	struct taker tk[2];
	pthread_t th[2];
	uint8_t hash[32];
	int wins = 0;

	uri_db(u, sizeof(u), "sky_race"); /* made by test_db_open_race */
	assert_int_equal(db_open(u, &a), 0);
	assert_int_equal(db_open(u, &b), 0);
	memset(hash, 0x5a, sizeof(hash));
	token_fill(&t, "tok_once", 1);
	assert_int_equal(db_token_insert(a, &t, hash), 0);
	/* a takes the last use in an open transaction; b's take waits for
	 * that row, then sees it used up */
	assert_int_equal(db_begin(a), 0);
	tk[0] = (struct taker){.db = a, .hash = hash};
	take_thread(&tk[0]);
	assert_int_equal(tk[0].r, 0);
	tk[1] = (struct taker){.db = b, .hash = hash};
	assert_int_equal(pthread_create(&th[1], NULL, take_thread, &tk[1]), 0);
	usleep(200 * 1000);
	assert_int_equal(db_commit(a), 0);
	pthread_join(th[1], NULL);
	assert_int_equal(tk[1].r, -EUSERS);
	/* both at once, each in its own transaction: exactly one wins */
	for (int round = 0; round < 10; round++) {
		char id[DB_ID_MAX];
		memset(hash, round, sizeof(hash));
		snprintf(id, sizeof(id), "tok_r%d", round);
		token_fill(&t, id, 1);
		assert_int_equal(db_token_insert(a, &t, hash), 0);
		tk[0] = (struct taker){.db = a, .hash = hash};
		tk[1] = (struct taker){.db = b, .hash = hash};
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&th[i], NULL, take_thread, &tk[i]), 0);
		wins = 0;
		for (int i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			if (tk[i].r == 0)
				wins++;
			else
				assert_int_equal(tk[i].r, -EUSERS);
		}
		assert_int_equal(wins, 1);
	}
	db_close(a);
	db_close(b);
}

/* The backend of c killed from another connection; its pid. */
static int64_t kill_backend(struct sql *c)
{
	struct sql *killer = conn();
	struct sql_stmt *pid = prep(c, "SELECT pg_backend_pid()"), *s;
	int64_t backend;

	assert_int_equal(sql_step(pid), SQL_ROW);
	backend = sql_col_int64(pid, 0);
	sql_finalize(pid);
	s = prep(killer, "SELECT pg_terminate_backend(CAST(? AS INTEGER))");
	sql_bind_int64(s, 1, backend);
	assert_int_equal(sql_step(s), SQL_ROW);
	assert_int_equal(sql_col_int64(s, 0), 1);
	sql_finalize(s);
	sql_close(killer);
	return backend;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A lost connection comes back by itself: -ENOTCONN at once and for a
 * second (no reset sooner), then a reset; a statement prepared before is
 * prepared again on the new session, whose settings are ours again.  A
 * transaction open at the loss stays lost until ROLLBACK: nothing of it
 * runs on the new session. */
static void test_reconnect(void **state)
{
	struct sql *c = conn();
	struct sql_stmt *pid = prep(c, "SELECT pg_backend_pid()"), *ins;
	int64_t old;

	(void)state;
	exec_ok(c, "DROP TABLE IF EXISTS t_rc; CREATE TABLE t_rc (id BIGINT PRIMARY KEY)");
	assert_int_equal(c->ops->set_durable(c, false), 0);
	old = kill_backend(c);
	assert_int_equal(sql_step(pid), -ENOTCONN);
	sql_reset(pid);
	assert_int_equal(sql_step(pid), -ENOTCONN); /* within the second: no reset */
	assert_false(sql_in_tx(c));
	sleep_ms(1100);
	sql_reset(pid);
	assert_int_equal(sql_step(pid), SQL_ROW); /* reset, prepared again */
	assert_true(sql_col_int64(pid, 0) != old);
	assert_int_equal(sql_count(c, "SELECT CASE WHEN current_setting('synchronous_commit') = 'off' THEN 1 ELSE 0 END"), 1);
	assert_int_equal(c->ops->set_durable(c, true), 0);

	/* lost inside a transaction */
	ins = prep(c, "INSERT INTO t_rc (id) VALUES (?)");
	assert_int_equal(c->ops->begin(c), 0);
	sql_bind_int64(ins, 1, 1);
	assert_int_equal(sql_step(ins), SQL_DONE);
	kill_backend(c);
	sql_reset(ins);
	sql_bind_int64(ins, 1, 2);
	assert_int_equal(sql_step(ins), -ENOTCONN);
	sleep_ms(1100);
	sql_reset(ins);
	sql_bind_int64(ins, 1, 3);
	assert_int_equal(sql_step(ins), -ENOTCONN); /* not outside its transaction */
	assert_true(sql_in_tx(c));
	assert_int_equal(sql_exec(c, "ROLLBACK TO item"), -ENOTCONN);
	assert_int_equal(sql_exec(c, "ROLLBACK"), 0);
	assert_false(sql_in_tx(c));
	sql_reset(ins);
	sql_bind_int64(ins, 1, 4);
	assert_int_equal(sql_step(ins), SQL_DONE);
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_rc"), 1);
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_rc WHERE id = 4"), 1);

	/* lost at a COMMIT's turn: the COMMIT fails */
	assert_int_equal(c->ops->begin(c), 0);
	sql_reset(ins);
	sql_bind_int64(ins, 1, 5);
	assert_int_equal(sql_step(ins), SQL_DONE);
	kill_backend(c);
	assert_int_equal(sql_exec(c, "COMMIT"), -ENOTCONN); /* the loss found here, the transaction over */
	assert_false(sql_in_tx(c));
	sleep_ms(1100);
	assert_int_equal(sql_count(c, "SELECT count(*) FROM t_rc WHERE id = 5"), 0);
	sql_finalize(ins);
	sql_finalize(pid);
	sql_close(c);
}

/* Last: the server goes away. */
static void test_connection_loss(void **state)
{
	struct sql *c = conn(), *killer = conn(), *c2 = conn();
	struct sql_stmt *s, *pid, *s2;
	const char *stop = getenv("SKY_PG_STOP");
	int64_t backend;

	/* the backend killed under a connection */
	pid = prep(c, "SELECT pg_backend_pid()");
	assert_int_equal(sql_step(pid), SQL_ROW);
	backend = sql_col_int64(pid, 0);
	assert_true(backend > 0);
	s = prep(killer, "SELECT pg_terminate_backend(CAST(? AS INTEGER))");
	sql_bind_int64(s, 1, backend);
	assert_int_equal(sql_step(s), SQL_ROW);
	assert_int_equal(sql_col_int64(s, 0), 1);
	sql_finalize(s);
	sql_reset(pid);
	assert_int_equal(sql_step(pid), -ENOTCONN);
	assert_int_equal(sql_exec(c, "SELECT 1"), -ENOTCONN);
	sql_finalize(pid);
	sql_close(c);
	/* the whole server stopped */
	assert_non_null(stop);
	s2 = prep(c2, "SELECT 1");
	assert_int_equal(system(stop), 0);
	assert_int_equal(sql_step(s2), -ENOTCONN);
	assert_int_equal(c2->ops->begin(c2), -ENOTCONN);
	assert_int_equal(c2->ops->check(c2), -ENOTCONN);
	sql_finalize(s2);
	sql_close(c2);
	sql_close(killer);
	assert_int_equal(sql_open(uri(), 0, &c), -ENOTCONN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_ints_text_nulls),
		cmocka_unit_test(test_blobs),
		cmocka_unit_test(test_changes_constraint),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_schema_version),
		cmocka_unit_test(test_blob_io),
		cmocka_unit_test(test_errmsg_no_password),
		cmocka_unit_test(test_db_open_race),
		cmocka_unit_test(test_token_race),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_connection_loss),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
