/* Networks and guests' NICs: the MAC and NIC syntaxes (common/parse.c),
 * the rules of networks.h, and MACs given from a prefix in a real store:
 * unique, stable, refused when taken or multicast, free again after. */
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

#include "common/parse.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/networks.h"
#include "controller/skyrootd/sql.h"
#include "tests/unit/tmpdb.h"

static void test_parse_mac(void **state)
{
	uint8_t m[6], p[3];
	char s[SKY_MAC_LEN];
	static const char *const bad[] = {
		"", "02:53:4b:00:00", "02:53:4b:00:00:01:02", "02-53-4b-00-00-01", "0253.4b00.0001", "02:53:4b:00:00:0g",
		"2:53:4b:00:00:01", "02:53:4b:00:00:1", "02:53:4b:00:00:01 ", " 02:53:4b:00:00:01", "02:53:4b:00:0001",
	};
	(void)state;

	assert_int_equal(sky_parse_mac("02:53:4B:0a:FF:01", m), 0);
	sky_format_mac(m, s);
	assert_string_equal(s, "02:53:4b:0a:ff:01");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sky_parse_mac(bad[i], m), -EINVAL);
	assert_int_equal(sky_parse_mac(NULL, m), -EINVAL);
	assert_int_equal(sky_parse_mac_n("02:53:4b", p, 3), 0);
	assert_int_equal(p[0], 0x02);
	assert_int_equal(p[2], 0x4b);
	assert_int_equal(sky_parse_mac_n("02:53:4b:", p, 3), -EINVAL);
	assert_int_equal(sky_parse_mac_n("02:53", p, 3), -EINVAL);
}

static void test_parse_nic(void **state)
{
	char net[16];
	uint8_t m[6];
	bool has;
	static const char *const bad[] = {
		"", ",mac=02:00:00:00:00:01", "prod,", "prod,mtu=9000", "prod,mac=", "prod,mac=zz", "prod,MAC=02:00:00:00:00:01",
		"prod,mac=02:00:00:00:00:01,mac=02:00:00:00:00:02", "prod,mac=02:00:00:00:00:01,",
	};
	(void)state;

	assert_int_equal(sky_parse_nic("prod", net, sizeof(net), m, &has), 0);
	assert_string_equal(net, "prod");
	assert_false(has);
	assert_int_equal(sky_parse_nic("edge-1,mac=02:AA:00:00:00:01", net, sizeof(net), m, &has), 0);
	assert_string_equal(net, "edge-1");
	assert_true(has);
	assert_int_equal(m[1], 0xaa);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sky_parse_nic(bad[i], net, sizeof(net), m, &has), -EINVAL);
	assert_int_equal(sky_parse_nic("a-name-too-long-for-16", net, sizeof(net), m, &has), -ENAMETOOLONG);
}

static void test_rules(void **state)
{
	char err[NETWORK_ERR_MAX];
	static const uint8_t ok_prefix[][3] = { { 0x02, 0x53, 0x4b }, { 0x0a, 0, 0 }, { 0xfe, 1, 2 }, { 0x52, 0x54, 0 } };
	static const uint8_t bad_prefix[][3] = { { 0x00, 0x16, 0x3e }, { 0x03, 0, 0 }, { 0x01, 0, 0 }, { 0xfc, 0, 0 } };
	uint8_t m[6] = { 0x02, 0, 0, 0, 0, 1 }, zero[6] = { 0 }, mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
	(void)state;

	assert_true(network_check("prod", 0, err, sizeof(err)));
	assert_true(network_check("prod", 1, err, sizeof(err)));
	assert_true(network_check("prod", 4094, err, sizeof(err)));
	assert_false(network_check("prod", 4095, err, sizeof(err)));
	assert_non_null(strstr(err, "1-4094"));
	assert_false(network_check("prod", 1ull << 40, err, sizeof(err)));
	assert_false(network_check("net-0123", 5, err, sizeof(err)));
	assert_false(network_check("-x", 5, err, sizeof(err)));
	assert_false(network_check("", 0, err, sizeof(err)));
	for (size_t i = 0; i < sizeof(ok_prefix) / sizeof(ok_prefix[0]); i++)
		assert_true(network_mac_prefix_ok(ok_prefix[i]));
	for (size_t i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++)
		assert_false(network_mac_prefix_ok(bad_prefix[i]));
	assert_true(network_mac_ok(m));
	assert_false(network_mac_ok(zero));
	assert_false(network_mac_ok(mcast));
}

/* A guest's NICs as guests.c reads them (its rows joined with
 * NETWORKS_NIC_COLS, through networks_nic_row), for ids with no guest row. */
static int nics_load(struct db *db, const char *guest_id, struct guest_nic *out, unsigned max, unsigned *n)
{
	struct sql_stmt *s;
	int rc, r = sql_prepare(db_sql(db),
				"SELECT " NETWORKS_NIC_COLS " FROM guest_nics gn LEFT JOIN networks gw ON gw.id = "
				"gn.network_id WHERE gn.guest_id = ?1 ORDER BY gn.idx",
				&s);

	*n = 0;
	if (r < 0)
		return r;
	sql_bind_text(s, 1, guest_id);
	while ((rc = sql_step(s)) == SQL_ROW)
		networks_nic_row(s, 0, out, max, n);
	sql_finalize(s);
	return rc == SQL_DONE ? 0 : rc < 0 ? rc : -EIO;
}

struct fixture {
	struct tmpdb t;
	struct network prod, flat;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	tmpdb_open(&f->t, "networks");
	f->prod = (struct network){ .id = "net-000001", .name = "prod", .vlan = 100, .created_at = 1 };
	f->flat = (struct network){ .id = "net-000002", .name = "flat", .vlan = 0, .created_at = 2 };
	assert_int_equal(networks_insert(f->t.db, &f->prod), 0);
	assert_int_equal(networks_insert(f->t.db, &f->flat), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tmpdb_close(&f->t);
	free(f);
	return 0;
}

static void test_store_rules(void **state)
{
	struct fixture *f = *state;
	struct network dup = { .id = "net-000003", .name = "prod" }, got;
	char guest[DB_NAME_MAX];

	assert_int_equal(networks_insert(f->t.db, &dup), -EEXIST);
	assert_int_equal(networks_get(f->t.db, "prod", &got), 0);
	assert_string_equal(got.id, "net-000001");
	assert_int_equal(got.vlan, 100);
	assert_int_equal(networks_get(f->t.db, "net-000002", &got), 0);
	assert_string_equal(got.name, "flat");
	assert_int_equal(networks_get(f->t.db, "nope", &got), -ENOENT);
	assert_int_equal(networks_delete(f->t.db, "net-000009", guest), -ENOENT);
}

/* The table is bounded: NETWORKS_MAX and no more, until one is deleted. */
static void test_networks_bounded(void **state)
{
	struct fixture *f = *state;
	struct network n = { .created_at = 3 };
	char guest[DB_NAME_MAX];
	int i;

	assert_int_equal(db_begin(f->t.db), 0);
	for (i = 2; i < NETWORKS_MAX; i++) {
		snprintf(n.id, sizeof(n.id), "net-b%05d", i);
		snprintf(n.name, sizeof(n.name), "n%d", i);
		assert_int_equal(networks_insert(f->t.db, &n), 0);
	}
	snprintf(n.id, sizeof(n.id), "net-over");
	snprintf(n.name, sizeof(n.name), "over");
	assert_int_equal(networks_insert(f->t.db, &n), -ENOSPC);
	assert_int_equal(networks_delete(f->t.db, "net-b00002", guest), 0);
	assert_int_equal(networks_insert(f->t.db, &n), 0);
	assert_int_equal(db_commit(f->t.db), 0);
}

/* Many NICs from one prefix: each under it, all different, read back the
 * same after the store is closed and opened again. */
static void test_macs_unique_stable(void **state)
{
	struct fixture *f = *state;
	static const uint8_t prefix[3] = { 0x0a, 0xbc, 0xde };
	struct nic_request req[SKY_GUEST_NICS_MAX];
	struct guest_nic nics[SKY_GUEST_NICS_MAX], back[SKY_GUEST_NICS_MAX];
	char err[NETWORK_ERR_MAX], gid[DB_ID_MAX], all[32 * SKY_GUEST_NICS_MAX][SKY_MAC_LEN];
	unsigned n, total = 0;

	for (unsigned i = 0; i < SKY_GUEST_NICS_MAX; i++)
		req[i] = (struct nic_request){ .network = i % 2 ? "flat" : "net-000001" };
	for (unsigned g = 0; g < 32; g++) {
		snprintf(gid, sizeof(gid), "gst-%06u", g);
		assert_int_equal(networks_nics_resolve(f->t.db, req, SKY_GUEST_NICS_MAX, nics, err, sizeof(err)), 0);
		assert_string_equal(nics[0].mac, "");
		assert_int_equal(networks_nics_store(f->t.db, gid, prefix, nics, SKY_GUEST_NICS_MAX), 0);
		for (unsigned i = 0; i < SKY_GUEST_NICS_MAX; i++) {
			uint8_t m[6];

			assert_int_equal(sky_parse_mac(nics[i].mac, m), 0);
			assert_memory_equal(m, prefix, 3);
			assert_true(network_mac_ok(m));
			for (unsigned j = 0; j < total; j++)
				assert_string_not_equal(all[j], nics[i].mac);
			snprintf(all[total++], SKY_MAC_LEN, "%s", nics[i].mac);
		}
	}
	/* Stable: the same after a reopen, in order, with networks and VLANs. */
	db_close(f->t.db);
	assert_int_equal(db_open(f->t.path, &f->t.db), 0);
	assert_int_equal(nics_load(f->t.db, "gst-000031", back, SKY_GUEST_NICS_MAX, &n), 0);
	assert_int_equal(n, SKY_GUEST_NICS_MAX);
	for (unsigned i = 0; i < n; i++) {
		assert_string_equal(back[i].mac, all[31 * SKY_GUEST_NICS_MAX + i]);
		assert_string_equal(back[i].network, i % 2 ? "flat" : "prod");
		assert_int_equal(back[i].vlan, i % 2 ? 0 : 100);
	}
}

static void test_macs_refused(void **state)
{
	struct fixture *f = *state;
	static const uint8_t prefix[3] = { 0x02, 0x53, 0x4b };
	struct nic_request req[2] = { { .network = "prod", .mac = "02:00:00:00:00:01" }, { .network = "flat" } };
	struct guest_nic nics[SKY_GUEST_NICS_MAX];
	char err[NETWORK_ERR_MAX], guest[DB_NAME_MAX];

	assert_int_equal(networks_nics_resolve(f->t.db, req, 2, nics, err, sizeof(err)), 0);
	assert_int_equal(networks_nics_store(f->t.db, "gst-a", prefix, nics, 2), 0);
	assert_string_equal(nics[0].mac, "02:00:00:00:00:01");
	assert_memory_equal(nics[1].mac, "02:53:4b:", 9);
	/* Taken: the operator's one, and the one the controller gave. */
	req[0].mac = "02:00:00:00:00:01";
	assert_int_equal(networks_nics_resolve(f->t.db, req, 1, nics, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "in use"));
	{
		struct guest_nic a[2];
		unsigned n;
		char upper[SKY_MAC_LEN];

		assert_int_equal(nics_load(f->t.db, "gst-a", a, 2, &n), 0);
		for (size_t i = 0; i < sizeof(upper); i++)
			upper[i] = (char)(a[1].mac[i] >= 'a' && a[1].mac[i] <= 'f' ? a[1].mac[i] - 32 : a[1].mac[i]);
		req[0].mac = upper;
		assert_int_equal(networks_nics_resolve(f->t.db, req, 1, nics, err, sizeof(err)), -EEXIST);
	}
	/* Multicast, zero, not a MAC, twice in one guest, no such network. */
	req[0].mac = "01:00:5e:00:00:01";
	assert_int_equal(networks_nics_resolve(f->t.db, req, 1, nics, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unicast"));
	req[0].mac = "00:00:00:00:00:00";
	assert_int_equal(networks_nics_resolve(f->t.db, req, 1, nics, err, sizeof(err)), -EINVAL);
	req[0].mac = "02:00:00:00:01";
	assert_int_equal(networks_nics_resolve(f->t.db, req, 1, nics, err, sizeof(err)), -EINVAL);
	req[0].mac = "02:00:00:00:00:05";
	req[1].mac = "02:00:00:00:00:05";
	assert_int_equal(networks_nics_resolve(f->t.db, req, 2, nics, err, sizeof(err)), -EINVAL);
	req[1] = (struct nic_request){ .network = "nope" };
	assert_int_equal(networks_nics_resolve(f->t.db, req, 2, nics, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "nope"));
	assert_int_equal(networks_nics_resolve(f->t.db, req, SKY_GUEST_NICS_MAX + 1, nics, err, sizeof(err)), -EINVAL);
	/* In use: the network cannot go; after the guest, it can, and the
	 * MAC is free again. */
	assert_int_equal(networks_delete(f->t.db, "net-000001", guest), -EBUSY);
	assert_string_equal(guest, "gst-a"); /* no guests row here: its id */
	assert_int_equal(networks_nics_forget(f->t.db, "gst-a"), 0);
	req[0] = (struct nic_request){ .network = "prod", .mac = "02:00:00:00:00:01" };
	assert_int_equal(networks_nics_resolve(f->t.db, req, 1, nics, err, sizeof(err)), 0);
	assert_int_equal(networks_delete(f->t.db, "net-000001", guest), 0);
	assert_int_equal(networks_get(f->t.db, "prod", &(struct network){ 0 }), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_mac),
		cmocka_unit_test(test_parse_nic),
		cmocka_unit_test(test_rules),
		cmocka_unit_test_setup_teardown(test_store_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_macs_unique_stable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_macs_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_networks_bounded, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
