/* Networks and guests' NICs (docs/api.md "Networks"): a network is a name
 * and an optional VLAN (1-4094; 0 = untagged on the boards' bridge); a
 * guest has up to SKY_GUEST_NICS_MAX NICs, each on a network with a MAC
 * that is unique in the store and kept while the guest exists.  The
 * controller picks a MAC from its locally administered prefix
 * (--mac-prefix) unless the operator gives one.  Rows live in the store
 * (db.c's migration 8 -> 9); inside the caller's transaction when there
 * is one.  0 or a negative errno, -ENOENT for "no such row". */
#ifndef SKY_CONTROLLER_NETWORKS_H
#define SKY_CONTROLLER_NETWORKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "common/parse.h"
#include "controller/skyrootd/db.h"

struct sql_stmt;

/* Locally administered (bit 1 of the first byte), unicast (bit 0 clear):
 * never a vendor's address, and not QEMU's 52:54:00. */
#define NETWORK_MAC_PREFIX_DEFAULT "02:53:4b"
#define NETWORK_ERR_MAX 256

struct network {
	char id[DB_ID_MAX];           /* "net-<hex>" */
	char name[DB_NAME_MAX];
	uint32_t vlan;                /* 0 = untagged */
	int64_t created_at;
};

struct guest_nic {
	char network_id[DB_ID_MAX];
	char network[DB_NAME_MAX];    /* its name, for people */
	uint32_t vlan;
	char mac[SKY_MAC_LEN];        /* "02:53:4b:0a:1b:2c" */
};

/* What a guest asks for: a network (id or name) and a MAC or "". */
struct nic_request {
	const char *network;
	const char *mac;
};

/* A name and a VLAN as POST /v1/networks gives them: true, or false with
 * why in err. */
bool network_check(const char *name, uint64_t vlan, char *err, size_t errlen);
/* A prefix --mac-prefix may name: three bytes, locally administered and
 * unicast. */
bool network_mac_prefix_ok(const uint8_t prefix[3]);
/* A MAC an operator may give a guest: unicast and not all zero. */
bool network_mac_ok(const uint8_t mac[6]);
/* The MAC of prefix and three random bytes rnd. */
void network_mac_make(const uint8_t prefix[3], const uint8_t rnd[3], uint8_t out[6]);

/* A fleet has at most NETWORKS_MAX networks (one per VLAN id and then
 * some): an API caller cannot grow the table, or a list, without bound. */
#define NETWORKS_MAX 8192
/* -EEXIST: the name is taken; -ENOSPC: NETWORKS_MAX reached */
int networks_insert(struct db *db, const struct network *n);
int networks_get(struct db *db, const char *id_or_name, struct network *out);
typedef int (*network_cb)(void *ctx, const struct network *n);
int networks_list(struct db *db, network_cb cb, void *ctx);
/* Delete a network no guest uses: -EBUSY with the name of one guest that
 * does in guest (DB_NAME_MAX bytes). */
int networks_delete(struct db *db, const char *id, char *guest);

/* The NICs of a request checked against the store into out (networks by
 * id or name, given MACs valid and free, none twice): 0, or -EINVAL /
 * -ENOENT / -EEXIST with why in err.  The MAC of a NIC with none given
 * stays "". */
int networks_nics_resolve(struct db *db, const struct nic_request *req, unsigned n, struct guest_nic *out, char *err,
			  size_t errlen);
/* Store the NICs of guest_id, giving each without a MAC a free one from
 * prefix (written back into nics).  -EEXIST when a MAC was taken since. */
int networks_nics_store(struct db *db, const char *guest_id, const uint8_t prefix[3], struct guest_nic *nics,
			unsigned n);
/* A guest's NICs read with the guest, in the same query (guests.c): the
 * columns to select after the guest's, and the join after "FROM guests";
 * one row per NIC, in order with "ORDER BY ..., gn.idx", and one row of
 * NULLs for a guest without any. */
#define NETWORKS_NIC_COLS "gn.network_id, COALESCE(gw.name, ''), COALESCE(gw.vlan, 0), gn.mac"
#define NETWORKS_NIC_JOIN \
	"LEFT JOIN guest_nics gn ON gn.guest_id = guests.id LEFT JOIN networks gw ON gw.id = gn.network_id"
/* The NIC in such a row, from column col on, appended to out[*n] (at most
 * max); nothing for a row of NULLs. */
void networks_nic_row(struct sql_stmt *s, int col, struct guest_nic *out, unsigned max, unsigned *n);
int networks_nics_forget(struct db *db, const char *guest_id);

#endif
