/* Guests without an agent link: commands leave through the guests_ops the
 * test gives (what main.c wires to the agent link), and an offline board
 * gets nothing until it is back. */
#include <errno.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/skyrootd/db.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/store.h"

struct fake_link {
	bool online;
	unsigned sent;
	char board[DB_ID_MAX];
	Skyroot__GuestAction action;
	size_t manifests;
};

static bool fake_online(void *ctx, const char *board_id)
{
	(void)board_id;
	return ((struct fake_link *)ctx)->online;
}

static int fake_send(void *ctx, const char *board_id, Skyroot__Envelope *env)
{
	struct fake_link *l = ctx;

	if (!l->online)
		return -ENOTCONN;
	assert_int_equal(env->body_case, SKYROOT__ENVELOPE__BODY_GUEST_COMMAND);
	l->sent++;
	snprintf(l->board, sizeof(l->board), "%s", board_id);
	l->action = env->guest_command->action;
	l->manifests = env->guest_command->spec->n_manifests;
	return 0;
}

static const struct guests_ops fake_ops = { .online = fake_online, .send = fake_send };

static void test_commands_go_through_ops(void **state)
{
	char dir[] = "/tmp/test_guests.XXXXXX", path[64], err[GUEST_ERROR_MAX];
	struct fake_link link = { 0 };
	struct db *db;
	struct store *st;
	struct store_upload *up;
	struct store_image img;
	struct guests *g;
	struct guest gs;
	struct db_board b = { .id = "brd-000001", .name = "b1", .uuid = "u1" };
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct guest_request req = { .name = "web1", .board = "b1", .kernel = "vmlinuz", .vcpus = 1,
				     .memory = 64ull << 20, .backend = "qemu" };
	(void)state;

	assert_non_null(key);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/skyroot.db", dir);
	assert_int_equal(db_open(path, &db), 0);
	assert_int_equal(store_open(db, path, dir, key, 1 << 20, &st), 0);
	assert_int_equal(store_upload_begin(st, "vmlinuz", "kernel", 5, &up), 0);
	assert_int_equal(store_upload_write(up, "hello", 5), 0);
	assert_int_equal(store_upload_commit(up, &img), 0);
	assert_int_equal(db_board_insert(db, &b), 0);
	assert_int_equal(guests_open(db, st, &g), 0);
	guests_set_ops(g, &fake_ops, &link);

	/* Offline: the guest is kept, nothing is sent. */
	assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), 0);
	assert_string_equal(gs.board_id, "brd-000001");
	assert_int_equal(link.sent, 0);

	/* Back: the board is told to run it, with the kernel's manifest. */
	link.online = true;
	guests_board_up(g, "brd-000001");
	assert_int_equal(link.sent, 1);
	assert_string_equal(link.board, "brd-000001");
	assert_int_equal(link.action, SKYROOT__GUEST_ACTION__GUEST_ENSURE_RUNNING);
	assert_int_equal(link.manifests, 1);

	assert_int_equal(guests_set_desired(g, gs.id, "stopped", &gs), 0);
	assert_int_equal(link.action, SKYROOT__GUEST_ACTION__GUEST_ENSURE_STOPPED);
	assert_int_equal(guests_delete(g, gs.id), 0);
	assert_int_equal(link.action, SKYROOT__GUEST_ACTION__GUEST_DESTROY);
	assert_int_equal(link.sent, 3);

	/* The shared limits. */
	req.name = "web2";
	req.vcpus = SKY_GUEST_VCPUS_MAX + 1;
	assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vcpus must be from 1 to 64"));

	/* No ops at all: every board is offline. */
	guests_set_ops(g, NULL, NULL);
	req.vcpus = 1;
	assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), 0);
	assert_int_equal(link.sent, 3);

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
		cmocka_unit_test(test_commands_go_through_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
