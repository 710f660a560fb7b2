/* Guests' consoles on one controller (consoles.c without a shared store):
 * only a guest's own board writes its console, by the guest's id; the ring
 * keeps the newest GUEST_CONSOLE_RING bytes; a follower gets the ring and
 * then every new byte until it lets go; the console goes with its guest
 * (guests_ops.deleted, as main.c wires it). */
#include <errno.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "controller/skyrootd/consoles.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/store.h"

struct got {
	uint8_t *data;
	size_t len;
	unsigned calls;
};

static void got_cb(void *ctx, const uint8_t *data, size_t len)
{
	struct got *g = ctx;

	g->data = realloc(g->data, g->len + len);
	assert_non_null(g->data);
	memcpy(g->data + g->len, data, len);
	g->len += len;
	g->calls++;
}

static struct consoles *the_consoles;

static void on_deleted(void *ctx, const char *guest_id)
{
	(void)ctx;
	consoles_forget(the_consoles, guest_id);
}

static const struct guests_ops ops = { .deleted = on_deleted };

static void send_data(struct consoles *cs, const char *board, const char *guest, const void *p, size_t n)
{
	Skyroot__ConsoleData d = SKYROOT__CONSOLE_DATA__INIT;

	d.guest_id = (char *)guest;
	d.data.data = (uint8_t *)p;
	d.data.len = n;
	consoles_on_data(cs, board, &d);
}

static size_t read_all(struct consoles *cs, const char *guest, char *buf)
{
	size_t n = 12345;

	assert_int_equal(consoles_read(cs, guest, buf, GUEST_CONSOLE_RING, &n), 0);
	return n;
}

static void test_one_controller(void **state)
{
	char dir[] = "/tmp/test_consoles.XXXXXX", path[64], err[GUEST_ERROR_MAX];
	static char buf[GUEST_CONSOLE_RING], first[GUEST_CONSOLE_RING];
	struct db *db;
	struct store *st;
	struct store_upload *up;
	struct store_image img;
	struct guests *g;
	struct guest gs;
	struct consoles *cs;
	struct got got = { 0 }, other = { 0 };
	struct db_board b1 = { .id = "brd-000001", .name = "b1", .uuid = "u1" };
	struct db_board b2 = { .id = "brd-000002", .name = "b2", .uuid = "u2" };
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct guest_request req = { .name = "web1", .board = "b1", .kernel = "vmlinuz", .vcpus = 1,
				     .memory = 64ull << 20, .backend = "qemu" };
	uv_loop_t loop;
	uint8_t *big;
	size_t n;
	(void)state;

	assert_non_null(key);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(uv_loop_init(&loop), 0);
	snprintf(path, sizeof(path), "%s/skyroot.db", dir);
	assert_int_equal(db_open(path, &db), 0);
	assert_int_equal(store_open(db, path, dir, key, 1 << 20, &st), 0);
	assert_int_equal(store_upload_begin(st, "vmlinuz", "kernel", 5, &up), 0);
	assert_int_equal(store_upload_write(up, "hello", 5), 0);
	assert_int_equal(store_upload_commit(up, &img), 0);
	assert_int_equal(db_board_insert(db, &b1), 0);
	assert_int_equal(db_board_insert(db, &b2), 0);
	assert_int_equal(guests_open(db, st, &g), 0);
	guests_set_ops(g, &ops, NULL);
	assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), 0);
	assert_int_equal(consoles_start(&loop, db, g, NULL, &cs), 0);
	the_consoles = cs;

	/* Nothing yet. */
	assert_int_equal(read_all(cs, gs.id, buf), 0);
	/* Another board's word for the guest, the guest's name for its id,
	 * an unknown guest, a chunk over the bound: none of it counts. */
	send_data(cs, "brd-000002", gs.id, "x", 1);
	send_data(cs, "brd-000001", "web1", "x", 1);
	send_data(cs, "brd-000001", "gst-nosuch", "x", 1);
	big = calloc(1, CONSOLE_CHUNK_MAX + 1);
	assert_non_null(big);
	send_data(cs, "brd-000001", gs.id, big, CONSOLE_CHUNK_MAX + 1);
	assert_int_equal(read_all(cs, gs.id, buf), 0);

	/* Its own board's. */
	send_data(cs, "brd-000001", gs.id, "hello ", 6);
	n = read_all(cs, gs.id, buf);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "hello ", 6);

	/* A follower: the ring at once, then each new byte, later. */
	assert_int_equal(consoles_follow(cs, gs.id, got_cb, &got, first, sizeof(first), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(first, "hello ", 6);
	assert_int_equal(got.calls, 0);
	assert_int_equal(consoles_follow(cs, gs.id, got_cb, &other, first, sizeof(first), &n), 0);
	send_data(cs, "brd-000001", gs.id, "world", 5);
	assert_int_equal(got.len, 5);
	assert_memory_equal(got.data, "world", 5);
	assert_int_equal(other.len, 5);
	send_data(cs, "brd-000002", gs.id, "nope", 4);
	assert_int_equal(got.len, 5);

	/* The newest GUEST_CONSOLE_RING bytes, across the ring's end. */
	for (size_t i = 0; i < CONSOLE_CHUNK_MAX; i++)
		big[i] = (uint8_t)(i * 7 + 1);
	send_data(cs, "brd-000001", gs.id, big, 30000);
	send_data(cs, "brd-000001", gs.id, big + 30000, 30000);
	send_data(cs, "brd-000001", gs.id, big + 60000, 5536); /* 11 + 65536 in all */
	n = read_all(cs, gs.id, buf);
	assert_int_equal(n, GUEST_CONSOLE_RING);
	assert_memory_equal(buf, big, GUEST_CONSOLE_RING);
	send_data(cs, "brd-000001", gs.id, "tail", 4);
	n = read_all(cs, gs.id, buf);
	assert_int_equal(n, GUEST_CONSOLE_RING);
	assert_memory_equal(buf, big + 4, GUEST_CONSOLE_RING - 4);
	assert_memory_equal(buf + GUEST_CONSOLE_RING - 4, "tail", 4);
	/* A chunk as large as the ring replaces it whole. */
	send_data(cs, "brd-000001", gs.id, big + 1, CONSOLE_CHUNK_MAX);
	n = read_all(cs, gs.id, buf);
	assert_memory_equal(buf, big + 1, GUEST_CONSOLE_RING);
	/* A smaller out gets the newest bytes. */
	assert_int_equal(consoles_read(cs, gs.id, buf, 10, &n), 0);
	assert_int_equal(n, 10);
	assert_memory_equal(buf, big + 1 + CONSOLE_CHUNK_MAX - 10, 10);
	assert_int_equal(got.len, 5 + 4 + 30000 * 2 + 5536 + CONSOLE_CHUNK_MAX);

	/* Let go: no more bytes. */
	consoles_unfollow(cs, gs.id, &got);
	n = got.len;
	send_data(cs, "brd-000001", gs.id, "more", 4);
	assert_int_equal(got.len, n);
	assert_int_equal(other.len, n + 4);
	consoles_unfollow(cs, gs.id, &other);

	/* The console goes with its guest. */
	assert_int_equal(guests_delete(g, gs.id), 0);
	assert_int_equal(read_all(cs, gs.id, buf), 0);
	send_data(cs, "brd-000001", gs.id, "late", 4);
	assert_int_equal(read_all(cs, gs.id, buf), 0);

	consoles_stop(cs);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(big);
	free(got.data);
	free(other.data);
	guests_close(g);
	store_close(st);
	db_close(db);
	EVP_PKEY_free(key);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_controller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
