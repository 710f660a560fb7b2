/* Integrity at rest in the store (controller/skyrootd/store_check.c): the
 * scrub's batches walk every row once per pass and say where the pass
 * ends, a corrupt row is found, quarantined once, skipped by later passes
 * and shown as the image's damage, and an upload of the same bytes heals
 * it. */
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
#include <openssl/evp.h>

#include "common/util.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/sql.h"
#include "controller/skyrootd/store.h"

#define NCHUNKS 3
#define TAIL 1000 /* the last chunk's bytes */

struct fx {
	char dir[64];
	char path[128];
	struct db *db;
	struct store *st;
	EVP_PKEY *key;
	uint8_t *image;
	size_t len;
	struct store_image img;
	uint8_t *buf;
};

static int push(struct fx *x, const char *name, struct store_image *out)
{
	struct store_upload *up = NULL;
	int r = store_upload_begin(x->st, name, "disk", x->len, &up);

	if (r < 0)
		return r;
	r = store_upload_write(up, x->image, x->len);
	if (r < 0) {
		store_upload_abort(up);
		return r;
	}
	return store_upload_commit(up, out);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	snprintf(x->dir, sizeof(x->dir), "/tmp/sky-store-check-XXXXXX");
	if (!mkdtemp(x->dir))
		return -1;
	snprintf(x->path, sizeof(x->path), "%s/skyroot.db", x->dir);
	x->len = (NCHUNKS - 1) * (size_t)STORE_CHUNK_SIZE + TAIL;
	x->image = malloc(x->len);
	x->buf = malloc(STORE_CHUNK_SIZE);
	x->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!x->image || !x->buf || !x->key)
		return -1;
	/* No two chunks alike (the store would keep one). */
	for (size_t i = 0, v = 1; i < x->len; i++) {
		v = v * 1103515245u + 12345u;
		x->image[i] = (uint8_t)(v >> 16);
	}
	if (db_open(x->path, &x->db) < 0 || store_open(x->db, x->path, x->dir, x->key, 1ull << 30, &x->st) < 0)
		return -1;
	if (push(x, "img", &x->img) < 0)
		return -1;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char cmd[160];

	store_close(x->st);
	db_close(x->db);
	EVP_PKEY_free(x->key);
	free(x->image);
	free(x->buf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
	if (system(cmd) != 0)
		return -1;
	free(x);
	return 0;
}

/* Flip a byte of chunk `index` of the image in the database. */
static int64_t corrupt(struct fx *x, uint32_t index)
{
	int64_t rowid;
	uint8_t digest[32];
	uint32_t size;
	struct sql_stmt *s;

	assert_int_equal(store_image_chunk(x->st, x->img.id, index, &rowid, digest, &size), 0);
	memcpy(x->buf, x->image + (size_t)index * STORE_CHUNK_SIZE, size);
	x->buf[size / 2] ^= 1;
	assert_int_equal(sql_prepare(db_sql(x->db), "UPDATE chunk_data SET data = ? WHERE id = ?", &s), 0);
	sql_bind_blob(s, 1, x->buf, size);
	sql_bind_int64(s, 2, rowid);
	assert_int_equal(sql_run(s), 0);
	assert_int_equal(sql_changes(db_sql(x->db)), 1);
	sql_finalize(s);
	return rowid;
}

/* One whole pass in batches of `want` bytes: rows, bytes, bad rows. */
static void pass(struct fx *x, uint64_t want, uint32_t *chunks, uint64_t *bytes, uint32_t *bad, int64_t *bad_row)
{
	struct store_scrub_batch b = { .after = 0 };
	unsigned batches = 0;

	*chunks = *bad = 0;
	*bytes = 0;
	do {
		b.want = want;
		assert_int_equal(store_scrub_batch(x->path, &b, x->buf), 0);
		*chunks += b.chunks;
		*bytes += b.bytes;
		if (b.n_bad)
			*bad_row = b.bad_row[0];
		*bad += b.n_bad;
		b.after = b.last;
		assert_true(++batches <= NCHUNKS + 1);
	} while (!b.end);
}

static void test_scrub_pass(void **state)
{
	struct fx *x = *state;
	uint32_t chunks, bad;
	uint64_t bytes;
	int64_t bad_row = 0, row;

	/* One chunk a batch, then all at once: every row once, none bad. */
	pass(x, 1, &chunks, &bytes, &bad, &bad_row);
	assert_int_equal(chunks, NCHUNKS);
	assert_int_equal(bytes, x->len);
	assert_int_equal(bad, 0);
	pass(x, 1ull << 40, &chunks, &bytes, &bad, &bad_row);
	assert_int_equal(chunks, NCHUNKS);
	assert_int_equal(bad, 0);

	row = corrupt(x, 1);
	pass(x, 1, &chunks, &bytes, &bad, &bad_row);
	assert_int_equal(bad, 1);
	assert_int_equal(bad_row, row);
}

static void test_quarantine_and_heal(void **state)
{
	struct fx *x = *state;
	struct store_image again;
	uint32_t chunks, bad, n = 9, idx[4] = { 0 };
	uint64_t bytes;
	int64_t bad_row = 0, row, good;
	uint8_t digest[32], good_digest[32];
	uint32_t size, good_size;
	char why[200];

	row = corrupt(x, 2);
	assert_int_equal(store_image_chunk(x->st, x->img.id, 2, &row, digest, &size), 0);
	assert_int_equal(store_image_chunk(x->st, x->img.id, 0, &good, good_digest, &good_size), 0);
	assert_int_equal(store_chunk_check(x->path, row, digest, size, x->buf), -EBADMSG);
	assert_int_equal(store_chunk_check(x->path, good, good_digest, good_size, x->buf), 0);
	assert_int_equal(store_chunk_check(x->path, 424242, digest, size, x->buf), -ENOENT);
	/* Another chunk's digest is not this row's: nothing happens. */
	assert_int_equal(store_chunk_quarantine(x->db, row, good_digest, "x"), 0);
	assert_int_equal(store_chunk_quarantined(x->st, row), 0);
	assert_int_equal(store_chunk_quarantine(x->db, row, digest, "found by a test"), 1);
	assert_int_equal(store_chunk_quarantine(x->db, row, digest, "again"), 0);
	assert_int_equal(store_chunk_quarantined(x->st, row), 1);
	assert_int_equal(store_chunk_quarantined(x->st, good), 0);
	assert_int_equal(store_image_damage(x->db, x->img.id, &n, idx, 4, why, sizeof(why)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(idx[0], 2);
	assert_string_equal(why, "found by a test");
	/* Later passes skip it. */
	pass(x, 1, &chunks, &bytes, &bad, &bad_row);
	assert_int_equal(chunks, NCHUNKS - 1);
	assert_int_equal(bad, 0);

	/* The same bytes again heal it for every image using it. */
	assert_int_equal(push(x, "again", &again), 0);
	{
		char users[200], want[200];
		const char *a = strcmp(x->img.id, again.id) < 0 ? x->img.id : again.id;
		const char *b = a == x->img.id ? again.id : x->img.id;

		snprintf(want, sizeof(want), "%s chunk 2, %s chunk 2", a, b);
		assert_int_equal(store_chunk_users(x->db, row, users, sizeof(users)), 0);
		assert_string_equal(users, want);
		assert_int_equal(store_chunk_users(x->db, 424242, users, sizeof(users)), 0);
		assert_string_equal(users, "");
	}
	assert_int_equal(store_chunk_quarantined(x->st, row), 0);
	assert_int_equal(store_chunk_check(x->path, row, digest, size, x->buf), 0);
	assert_int_equal(store_image_damage(x->db, x->img.id, &n, idx, 4, why, sizeof(why)), 0);
	assert_int_equal(n, 0);
	assert_string_equal(why, "");
	pass(x, 1, &chunks, &bytes, &bad, &bad_row);
	assert_int_equal(chunks, NCHUNKS);
	assert_int_equal(bad, 0);
}

static void test_cursor_kept(void **state)
{
	struct fx *x = *state;
	int64_t c = -1;

	assert_int_equal(store_scrub_cursor_get(x->db, &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(store_scrub_cursor_set(x->db, 17), 0);
	assert_int_equal(store_scrub_cursor_set(x->db, 42), 0);
	assert_int_equal(store_scrub_cursor_get(x->db, &c), 0);
	assert_int_equal(c, 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scrub_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_and_heal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_kept, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
