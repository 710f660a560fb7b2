/* Enrollment-token rules in the store: single use, expiry, revocation,
 * multi-use counting, and certificate revocation with board deletion. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "controller/skyrootd/db.h"

static int setup(void **state)
{
	struct db *db;
	if (db_open(":memory:", &db) < 0)
		return -1;
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	db_close(*state);
	return 0;
}

static void add_token(struct db *db, const char *id, const char *secret, int64_t exp, uint32_t uses)
{
	struct db_token t = {0};
	uint8_t h[32];
	snprintf(t.id, sizeof(t.id), "%s", id);
	t.created_at = 1000;
	t.expires_at = exp;
	t.uses = uses;
	t.uses_left = uses;
	sky_sha256(secret, strlen(secret), h);
	assert_int_equal(db_token_insert(db, &t, h), 0);
}

static int consume(struct db *db, const char *secret, int64_t now, char *id)
{
	uint8_t h[32];
	sky_sha256(secret, strlen(secret), h);
	return db_token_consume(db, h, now, id);
}

static void test_single_use(void **state)
{
	struct db *db = *state;
	char id[DB_ID_MAX];
	add_token(db, "tok-1", "secret-1", 5000, 1);
	assert_int_equal(consume(db, "secret-1", 2000, id), 0);
	assert_string_equal(id, "tok-1");
	assert_int_equal(consume(db, "secret-1", 2000, id), -EUSERS);
	struct db_token t;
	assert_int_equal(db_token_get(db, "tok-1", &t), 0);
	assert_int_equal(t.uses_left, 0);
	assert_int_equal(t.uses, 1);
}

static void test_unknown_and_expired(void **state)
{
	struct db *db = *state;
	char id[DB_ID_MAX] = "unchanged";
	add_token(db, "tok-2", "secret-2", 5000, 1);
	assert_int_equal(consume(db, "nope", 2000, id), -ENOENT);
	assert_int_equal(consume(db, "secret-2", 5000, id), -EKEYEXPIRED);
	assert_int_equal(consume(db, "secret-2", 9000, id), -EKEYEXPIRED);
	assert_string_equal(id, "unchanged"); /* no out-parameter written on failure */
	struct db_token t;
	assert_int_equal(db_token_get(db, "tok-2", &t), 0);
	assert_int_equal(t.uses_left, 1); /* an expired try uses nothing */
}

static void test_revoked(void **state)
{
	struct db *db = *state;
	char id[DB_ID_MAX];
	add_token(db, "tok-3", "secret-3", 5000, 3);
	assert_int_equal(db_token_revoke(db, "tok-3"), 0);
	assert_int_equal(consume(db, "secret-3", 2000, id), -EKEYREVOKED);
	assert_int_equal(db_token_revoke(db, "tok-none"), -ENOENT);
}

static void test_multi_use_counts_down(void **state)
{
	struct db *db = *state;
	char id[DB_ID_MAX];
	add_token(db, "tok-4", "secret-4", 5000, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(consume(db, "secret-4", 2000, id), 0);
	assert_int_equal(consume(db, "secret-4", 2000, id), -EUSERS);
}

static void test_rollback_restores_use(void **state)
{
	struct db *db = *state;
	char id[DB_ID_MAX];
	add_token(db, "tok-5", "secret-5", 5000, 1);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(consume(db, "secret-5", 2000, id), 0);
	db_rollback(db);
	/* The enrollment failed after taking the use: the token is still good. */
	assert_int_equal(consume(db, "secret-5", 2000, id), 0);
}

static int count_cb(void *ctx, const struct db_token *t)
{
	(void)t;
	(*(int *)ctx)++;
	return 0;
}

static void test_list(void **state)
{
	struct db *db = *state;
	int n = 0;
	add_token(db, "tok-a", "a", 5000, 1);
	add_token(db, "tok-b", "b", 5000, 1);
	assert_int_equal(db_token_list(db, count_cb, &n), 0);
	assert_int_equal(n, 2);
}

static int name_cb(void *ctx, const struct db_board *b)
{
	snprintf(ctx, DB_NAME_MAX, "%s", b->name);
	return 0;
}

static void test_board_delete_revokes_certs(void **state)
{
	struct db *db = *state;
	struct db_board b = {.id = "brd-1", .name = "node-a", .uuid = "u-1", .enrolled_at = 1};
	char found[DB_ID_MAX], name[DB_NAME_MAX];
	assert_int_equal(db_board_insert(db, &b), 0);
	assert_int_equal(db_cert_insert(db, 77, "brd-1", 9999), 0);
	assert_int_equal(db_cert_check(db, 77, "brd-1"), 0);
	assert_int_equal(db_cert_check(db, 77, "brd-2"), -ENOENT); /* CN must match */
	assert_int_equal(db_cert_check(db, 78, "brd-1"), -ENOENT);
	assert_int_equal(db_board_find_uuid(db, "u-1", found), 0);
	assert_string_equal(found, "brd-1");
	assert_int_equal(db_board_get(db, "node-a", name_cb, name), 0); /* by name */
	assert_string_equal(name, "node-a");
	assert_int_equal(db_board_get(db, "brd-1", name_cb, name), 0); /* by id */
	assert_int_equal(db_board_name_taken(db, "node-a"), 1);
	assert_int_equal(db_board_delete(db, "brd-1"), 0);
	assert_int_equal(db_cert_check(db, 77, "brd-1"), -EKEYREVOKED);
	assert_int_equal(db_board_find_uuid(db, "u-1", found), -ENOENT);
	assert_int_equal(db_board_get(db, "node-a", name_cb, name), -ENOENT);
	assert_int_equal(db_board_delete(db, "brd-1"), -ENOENT);
	/* Unique identity. */
	assert_int_equal(db_board_insert(db, &b), 0);
	struct db_board dup = {.id = "brd-9", .name = "other", .uuid = "u-1", .enrolled_at = 1};
	assert_int_equal(db_board_insert(db, &dup), -EEXIST);
}

/* A newer certificate revokes the older ones of the board, never a newer
 * one; re-enrollment allowances are taken once and lapse; image grants
 * are per board and go with it. */
static void test_identity_rules(void **state)
{
	struct db *db = *state;
	struct db_board b = {.id = "brd-1", .name = "node-a", .uuid = "u-1", .enrolled_at = 1};
	struct db_board c = {.id = "brd-2", .name = "node-b", .uuid = "u-2", .enrolled_at = 1};
	assert_int_equal(db_board_insert(db, &b), 0);
	assert_int_equal(db_board_insert(db, &c), 0);
	assert_int_equal(db_cert_insert(db, 10, "brd-1", 9999), 0);
	assert_int_equal(db_cert_insert(db, 5, "brd-1", 9999), 0);  /* issued later, smaller serial */
	assert_int_equal(db_cert_insert(db, 7, "brd-2", 9999), 0);
	assert_int_equal(db_cert_revoke_older(db, "brd-1", 10), 0); /* the oldest: nothing before it */
	assert_int_equal(db_cert_check(db, 5, "brd-1"), 0);
	assert_int_equal(db_cert_revoke_older(db, "brd-1", 5), 1);
	assert_int_equal(db_cert_check(db, 10, "brd-1"), -ESTALE);
	assert_int_equal(db_cert_check(db, 5, "brd-1"), 0);
	assert_int_equal(db_cert_check(db, 7, "brd-2"), 0);         /* another board's stays */

	assert_int_equal(db_board_reenroll_take(db, "brd-1", 100), -EACCES);
	assert_int_equal(db_board_reenroll_allow(db, "brd-1", 200), 0);
	assert_int_equal(db_board_reenroll_take(db, "brd-1", 200), -EACCES); /* lapsed */
	assert_int_equal(db_board_reenroll_allow(db, "brd-1", 300), 0);
	assert_int_equal(db_board_reenroll_take(db, "brd-1", 200), 0);
	assert_int_equal(db_board_reenroll_take(db, "brd-1", 200), -EACCES); /* once */
	assert_int_equal(db_board_reenroll_allow(db, "brd-9", 300), -ENOENT);

	assert_int_equal(db_board_image_granted(db, "brd-1", "img-1"), 0);
	assert_int_equal(db_board_image_grant(db, "brd-1", "img-1", 1), 0);
	assert_int_equal(db_board_image_grant(db, "brd-1", "img-1", 2), 0); /* again: no error */
	assert_int_equal(db_board_image_granted(db, "brd-1", "img-1"), 1);
	assert_int_equal(db_board_image_granted(db, "brd-2", "img-1"), 0);
	assert_int_equal(db_board_delete(db, "brd-1"), 0);
	assert_int_equal(db_board_image_granted(db, "brd-1", "img-1"), 0);
}

static void test_schema_version(void **state)
{
	struct db *db = *state;
	assert_int_equal(db_schema_version(db), 16); /* 15 -> 16: certificates by seq */
	assert_int_equal(db_check(db), 0);
}

/* A certificate's seq is MAX(seq) + 1 (db.c, S_CERT_INSERT): answered by
 * the certs_seq index, not a scan of every certificate ever issued. */
static void test_cert_seq_indexed(void **state)
{
	char path[] = "/tmp/sky-test-token-XXXXXX";
	char dbpath[64], plan[256] = "";
	struct db *db;
	sqlite3 *h;
	sqlite3_stmt *st;
	int fd = mkstemp(path);
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(dbpath, sizeof(dbpath), "%s/s.db", path);
	assert_int_equal(db_open(dbpath, &db), 0);
	assert_int_equal(db_cert_insert(db, 7, "brd-1", 100), 0);
	assert_int_equal(sqlite3_open_v2(dbpath, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "EXPLAIN QUERY PLAN SELECT COALESCE(MAX(seq), 0) + 1 FROM certs", -1,
					    &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		strncat(plan, d ? d : "", sizeof(plan) - strlen(plan) - 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(h);
	db_close(db);
	assert_non_null(strstr(plan, "INDEX certs_seq"));
	snprintf(dbpath, sizeof(dbpath), "rm -rf '%s'", path);
	assert_int_equal(system(dbpath), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_single_use, setup, teardown),
		cmocka_unit_test(test_cert_seq_indexed),
		cmocka_unit_test_setup_teardown(test_unknown_and_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_use_counts_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_restores_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_board_delete_revokes_certs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
