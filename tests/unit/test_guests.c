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
	size_t nics;                  /* of the last order, and their MACs and VLANs */
	char macs[SKY_GUEST_NICS_MAX][SKY_MAC_LEN];
	uint32_t vlans[SKY_GUEST_NICS_MAX];
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
	l->nics = env->guest_command->spec->n_nics;
	for (size_t i = 0; i < l->nics && i < SKY_GUEST_NICS_MAX; i++) {
		snprintf(l->macs[i], sizeof(l->macs[i]), "%s", env->guest_command->spec->nics[i]->mac);
		l->vlans[i] = env->guest_command->spec->nics[i]->vlan;
	}
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

	/* NICs: their MACs from the request's prefix (or the operator's),
	 * stored with the guest, in every order to the board; gone with it. */
	{
		struct network prod = { .id = "net-000001", .name = "prod", .vlan = 100 };
		static const uint8_t prefix[3] = { 0x0a, 0xbc, 0xde };
		struct guest back;

		assert_int_equal(networks_insert(db, &prod), 0);
		req.name = "web3";
		req.vcpus = 1;
		req.nics[0] = (struct nic_request){ .network = "prod" };
		req.nics[1] = (struct nic_request){ .network = "net-000001", .mac = "02:00:00:00:00:0A" };
		req.n_nics = 2;
		req.mac_prefix = prefix;
		assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), 0);
		assert_int_equal(link.sent, 4);
		assert_int_equal(link.nics, 2);
		assert_memory_equal(link.macs[0], "0a:bc:de:", 9);
		assert_string_equal(link.macs[1], "02:00:00:00:00:0a");
		assert_int_equal(link.vlans[0], 100);
		assert_string_equal(gs.nics[0].mac, link.macs[0]);
		assert_int_equal(guests_get(g, "web3", &back), 0);
		assert_int_equal(back.n_nics, 2);
		assert_string_equal(back.nics[0].mac, link.macs[0]);
		assert_string_equal(back.nics[1].network, "prod");
		guests_board_up(g, "brd-000001");
		assert_string_equal(link.macs[0], back.nics[0].mac); /* the same MAC every time */
		/* The same MAC again: refused, and no guest is left behind. */
		req.name = "web4";
		req.nics[0].mac = back.nics[0].mac;
		req.n_nics = 1;
		assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), -EEXIST);
		assert_int_equal(guests_get(g, "web4", &gs), -ENOENT);
		assert_int_equal(guests_delete(g, back.id), 0);
		assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), 0); /* free again */
		assert_int_equal(guests_delete(g, gs.id), 0);
		req.n_nics = 0;
	}

	/* No ops at all: every board is offline. */
	guests_set_ops(g, NULL, NULL);
	req.vcpus = 1;
	{
		unsigned before = link.sent;

		assert_int_equal(guests_create(g, &req, &gs, err, sizeof(err)), 0);
		assert_int_equal(link.sent, before);
	}

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
