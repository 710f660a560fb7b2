/* Networks and guests' NICs in the store (networks.h). */
#include "controller/skyrootd/networks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "controller/skyrootd/sql.h"

/* Tries at a free random MAC before giving up: with 2^24 addresses under
 * a prefix, a miss this many times means the prefix is nearly full. */
#define NETWORK_MAC_TRIES 32

bool network_check(const char *name, uint64_t vlan, char *err, size_t errlen)
{
	if (!sky_name_ok(name, "net-")) {
		snprintf(err, errlen,
			 "a network name is 1-%u of A-Z a-z 0-9 . _ - and does not start with '-', '.' or 'net-'",
			 SKY_NAME_MAX);
		return false;
	}
	if (vlan != 0 && (vlan < SKY_VLAN_MIN || vlan > SKY_VLAN_MAX)) {
		snprintf(err, errlen, "vlan %llu is out of range: a VLAN id is %u-%u (leave it out for untagged)",
			 (unsigned long long)vlan, SKY_VLAN_MIN, SKY_VLAN_MAX);
		return false;
	}
	return true;
}

bool network_mac_prefix_ok(const uint8_t prefix[3])
{
	return (prefix[0] & 0x02) && !(prefix[0] & 0x01);
}

bool network_mac_ok(const uint8_t mac[6])
{
	static const uint8_t zero[6];

	return !(mac[0] & 0x01) && memcmp(mac, zero, 6) != 0;
}

void network_mac_make(const uint8_t prefix[3], const uint8_t rnd[3], uint8_t out[6])
{
	memcpy(out, prefix, 3);
	memcpy(out + 3, rnd, 3);
}

int networks_insert(struct db *db, const struct network *n)
{
	struct sql_stmt *s;
	int r = sql_count(db_sql(db), "SELECT count(*) FROM networks");

	if (r >= NETWORKS_MAX)
		return -ENOSPC;
	if (r >= 0)
		r = sql_prepare(db_sql(db), "INSERT INTO networks (id, name, vlan, created_at) VALUES (?1, ?2, ?3, ?4)",
				&s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, n->id);
	sql_bind_text(s, 2, n->name);
	sql_bind_int64(s, 3, n->vlan);
	sql_bind_int64(s, 4, n->created_at);
	return sql_once_done(s);
}

static void networks__row(struct sql_stmt *s, void *out)
{
	struct network *n = out;

	memset(n, 0, sizeof(*n));
	sql_copy_text(n->id, sizeof(n->id), s, 0);
	sql_copy_text(n->name, sizeof(n->name), s, 1);
	n->vlan = (uint32_t)sql_col_int64(s, 2);
	n->created_at = sql_col_int64(s, 3);
}

int networks_get(struct db *db, const char *id_or_name, struct network *out)
{
	struct sql_stmt *s;
	/* The id first, then the name: an explicit order, as the order of a
	 * UNION's rows is not defined on every engine. */
	int r = sql_prepare(db_sql(db),
			    "SELECT id, name, vlan, created_at FROM networks WHERE id = ?1 OR name = ?1 "
			    "ORDER BY id = ?1 DESC LIMIT 1",
			    &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id_or_name);
	return sql_once_row(s, networks__row, out);
}

struct networks__each {
	network_cb cb;
	void *ctx;
};

static int networks__each(void *arg, struct sql_stmt *s)
{
	struct networks__each *e = arg;
	struct network n;

	networks__row(s, &n);
	return e->cb(e->ctx, &n);
}

int networks_list(struct db *db, network_cb cb, void *ctx)
{
	struct networks__each e = { cb, ctx };
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "SELECT id, name, vlan, created_at FROM networks ORDER BY name, id", &s);

	return r < 0 ? r : sql_once_each(s, networks__each, &e);
}

int networks_delete(struct db *db, const char *id, char *guest)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db),
			    "SELECT COALESCE(g.name, n.guest_id) FROM guest_nics n LEFT JOIN guests g ON g.id = "
			    "n.guest_id WHERE n.network_id = ?1 ORDER BY 1 LIMIT 1",
			    &s), rc;

	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		sql_copy_text(guest, DB_NAME_MAX, s, 0);
		r = -EBUSY;
	} else if (rc != SQL_DONE) {
		r = rc < 0 ? rc : -EIO;
	}
	sql_finalize(s);
	if (r < 0)
		return r;
	r = sql_prepare(db_sql(db), "DELETE FROM networks WHERE id = ?1", &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, id);
	return sql_once_changed(s);
}

/* 1 when a NIC has this MAC, 0 when none. */
static int networks__mac_used(struct db *db, const char *mac)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "SELECT 1 FROM guest_nics WHERE mac = ?1", &s), rc;

	if (r < 0)
		return r;
	sql_bind_text(s, 1, mac);
	rc = sql_step(s);
	r = rc == SQL_ROW ? 1 : rc == SQL_DONE ? 0 : rc;
	sql_finalize(s);
	return r;
}

int networks_nics_resolve(struct db *db, const struct nic_request *req, unsigned n, struct guest_nic *out, char *err,
			  size_t errlen)
{
	uint8_t mac[6];
	int r;

	if (n > SKY_GUEST_NICS_MAX) {
		snprintf(err, errlen, "a guest has at most %u NICs", SKY_GUEST_NICS_MAX);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		struct network net;

		memset(&out[i], 0, sizeof(out[i]));
		if (!req[i].network || !req[i].network[0]) {
			snprintf(err, errlen, "nics[%u] needs a network (\"network\": \"<id or name>\")", i);
			return -EINVAL;
		}
		r = networks_get(db, req[i].network, &net);
		if (r == -ENOENT)
			snprintf(err, errlen, "no network named '%.64s' for nics[%u]; see 'skyctl network list'",
				 req[i].network, i);
		if (r < 0)
			return r;
		snprintf(out[i].network_id, sizeof(out[i].network_id), "%s", net.id);
		snprintf(out[i].network, sizeof(out[i].network), "%s", net.name);
		out[i].vlan = net.vlan;
		if (!req[i].mac || !req[i].mac[0])
			continue;
		if (sky_parse_mac(req[i].mac, mac) < 0 || !network_mac_ok(mac)) {
			snprintf(err, errlen,
				 "nics[%u]: '%.32s' is not a unicast MAC address like 02:53:4b:00:00:01 (the first "
				 "byte even, not all zero)", i, req[i].mac);
			return -EINVAL;
		}
		sky_format_mac(mac, out[i].mac);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(out[j].mac, out[i].mac) == 0) {
				snprintf(err, errlen, "nics[%u] and nics[%u] have the same MAC %s", j, i, out[i].mac);
				return -EINVAL;
			}
		r = networks__mac_used(db, out[i].mac);
		if (r < 0)
			return r;
		if (r) {
			snprintf(err, errlen, "the MAC %s of nics[%u] is in use by another guest's NIC", out[i].mac, i);
			return -EEXIST;
		}
	}
	return 0;
}

/* A free MAC under prefix into out (not in the store, nor among taken[0..n)). */
static int networks__pick(struct db *db, const uint8_t prefix[3], const struct guest_nic *taken, unsigned n,
			  char out[SKY_MAC_LEN])
{
	uint8_t rnd[3], mac[6];
	char s[SKY_MAC_LEN];
	int r;

	for (int t = 0; t < NETWORK_MAC_TRIES; t++) {
		bool dup = false;

		r = sky_random(rnd, sizeof(rnd));
		if (r < 0)
			return r;
		network_mac_make(prefix, rnd, mac);
		sky_format_mac(mac, s);
		for (unsigned j = 0; j < n; j++)
			dup = dup || strcmp(taken[j].mac, s) == 0;
		if (dup)
			continue;
		r = networks__mac_used(db, s);
		if (r < 0)
			return r;
		if (r == 0) {
			memcpy(out, s, SKY_MAC_LEN);
			return 0;
		}
	}
	return -ENOSPC;
}

int networks_nics_store(struct db *db, const char *guest_id, const uint8_t prefix[3], struct guest_nic *nics,
			unsigned n)
{
	struct sql_stmt *s;
	int r;

	for (unsigned i = 0; i < n; i++) {
		if (!nics[i].mac[0]) {
			r = networks__pick(db, prefix, nics, n, nics[i].mac);
			if (r < 0)
				return r;
		}
		r = sql_prepare(db_sql(db),
				"INSERT INTO guest_nics (guest_id, idx, network_id, mac) VALUES (?1, ?2, ?3, ?4)", &s);
		if (r < 0)
			return r;
		sql_bind_text(s, 1, guest_id);
		sql_bind_int64(s, 2, i);
		sql_bind_text(s, 3, nics[i].network_id);
		sql_bind_text(s, 4, nics[i].mac);
		r = sql_once_done(s);
		if (r < 0)
			return r;
	}
	return 0;
}

void networks_nic_row(struct sql_stmt *s, int col, struct guest_nic *out, unsigned max, unsigned *n)
{
	struct guest_nic *g;

	if (sql_col_null(s, col) || *n >= max)
		return;
	g = &out[(*n)++];
	memset(g, 0, sizeof(*g));
	sql_copy_text(g->network_id, sizeof(g->network_id), s, col);
	sql_copy_text(g->network, sizeof(g->network), s, col + 1);
	g->vlan = (uint32_t)sql_col_int64(s, col + 2);
	sql_copy_text(g->mac, sizeof(g->mac), s, col + 3);
}

int networks_nics_forget(struct db *db, const char *guest_id)
{
	struct sql_stmt *s;
	int r = sql_prepare(db_sql(db), "DELETE FROM guest_nics WHERE guest_id = ?1", &s);

	if (r < 0)
		return r;
	sql_bind_text(s, 1, guest_id);
	return sql_once_done(s);
}
