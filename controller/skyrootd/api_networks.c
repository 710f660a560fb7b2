/* /v1/networks: the networks guests' NICs join (networks.h).  Reading
 * needs the reader role, changing the operator role (api.c), and the
 * audit log keeps every change. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/networks.h"

#define API_NETWORK_EXAMPLE "{\"name\": \"prod\", \"vlan\": 100}"

static json_t *api_network__json(const struct network *n)
{
	return json_pack("{s:s, s:s, s:o, s:o}", "id", n->id, "name", n->name, "vlan",
			 n->vlan ? json_integer(n->vlan) : json_null(), "created_at", api_json_time(n->created_at));
}

static int api_network__list_cb(void *ctx, const struct network *n)
{
	return json_array_append_new(ctx, api_network__json(n)) < 0 ? -ENOMEM : 0;
}

static const struct api_list_spec api_networks_list = {
	.list = "networks", .id_prefix = "net-", .what = "list the networks",
};

static void api__networks_list(struct api_call *call, struct api_reply *rep)
{
	struct api_list_query q;
	json_t *arr;

	if (api_list_query(call, rep, &api_networks_list, &q) < 0)
		return;
	arr = json_array();
	if (arr)
		api_list_reply(call, rep, &api_networks_list, &q, networks_list(call->ctl->db, api_network__list_cb, arr),
			       arr);
}

static void api_network__none(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no network named '%s'; see 'skyctl network list'", name);
}

static void api__network_get(struct api_call *call, struct api_reply *rep)
{
	struct network n;
	int r = networks_get(call->ctl->db, call->seg, &n);

	if (r == -ENOENT)
		api_network__none(rep, call->seg);
	else if (r < 0)
		api_reply_internal(rep, r, "read the network");
	else
		api_reply_ok(rep, 200, api_network__json(&n));
}

/* The body {"name": N, "vlan": V} into n: 0, or -EINVAL with err. */
static int api_network__parse(const struct http_request *req, struct network *n, char *err, size_t errlen)
{
	static const char *const known[] = { "name", "vlan", NULL };
	json_t *root, *name;
	uint64_t vlan = 0;
	int r = api_json_load_object(req->body, req->body_len, "network", API_NETWORK_EXAMPLE, &root, err, errlen);

	if (r < 0)
		return r;
	r = api_json_known_keys(root, "a network", known, err, errlen);
	if (r == 0)
		r = api_json_get_uint(root, "vlan", "network", SKY_VLAN_MIN, SKY_VLAN_MAX, " (or null for untagged)",
				      &vlan, err, errlen);
	name = json_object_get(root, "name");
	if (r >= 0 && !name) {
		snprintf(err, errlen, "a network needs a name, like %s", API_NETWORK_EXAMPLE);
		r = -EINVAL;
	} else if (r >= 0 && (!json_is_string(name) || json_string_length(name) >= sizeof(n->name))) {
		snprintf(err, errlen, "network.name must be a string of at most %u bytes", SKY_NAME_MAX);
		r = -EINVAL;
	}
	if (r >= 0) {
		snprintf(n->name, sizeof(n->name), "%s", json_string_value(name));
		r = network_check(n->name, vlan, err, errlen) ? 0 : -EINVAL;
		n->vlan = (uint32_t)vlan;
	}
	json_decref(root);
	return r;
}

static void api__networks_create(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct network n, old;
	char err[API_JSON_ERR_MAX];
	int r;

	memset(&n, 0, sizeof(n));
	if (api_network__parse(call->req, &n, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	n.created_at = sky_unix_now();
	r = db_begin(ctl->db);
	if (r == 0) {
		r = networks_get(ctl->db, n.name, &old);
		if (r == 0)
			r = -EEXIST;
		else if (r == -ENOENT)
			r = db_new_id("net-", 6, n.id, sizeof(n.id));
	}
	if (r == 0)
		r = networks_insert(ctl->db, &n);
	if (r == 0)
		r = db_commit(ctl->db);
	if (r < 0)
		db_rollback(ctl->db);
	if (r == -EEXIST) {
		api_reply_error(rep, 409, "conflict", "a network named '%s' exists already; pick another name or delete it",
				n.name);
		return;
	}
	if (r == -ENOSPC) {
		api_reply_error(rep, 409, "conflict", "the fleet has %d networks, the most it keeps; delete one first",
				NETWORKS_MAX);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "store the network");
		return;
	}
	if (n.vlan)
		log_info("api: network %s '%s' created on VLAN %u", n.id, n.name, n.vlan);
	else
		log_info("api: network %s '%s' created, untagged", n.id, n.name);
	api_reply_ok(rep, 201, api_network__json(&n));
}

static void api__network_delete(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct network n;
	char guest[DB_NAME_MAX] = "";
	int r = db_begin(ctl->db);

	if (r == 0)
		r = networks_get(ctl->db, call->seg, &n);
	if (r == 0)
		r = networks_delete(ctl->db, n.id, guest);
	if (r == 0)
		r = db_commit(ctl->db);
	if (r < 0)
		db_rollback(ctl->db);
	if (r == -ENOENT) {
		api_network__none(rep, call->seg);
		return;
	}
	if (r == -EBUSY) {
		api_reply_error(rep, 409, "conflict",
				"network '%s' is in use by guest '%s' (a NIC of it): delete that guest first", n.name,
				guest);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "delete the network");
		return;
	}
	log_info("api: network %s '%s' deleted", n.id, n.name);
	api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", n.id, "deleted", 1));
}

const struct api_route api_networks_routes[] = {
	{ .path = "/v1/networks", API_ALLOW("GET, POST"), .get = api__networks_list, .post = api__networks_create,
	  .get_s = { .request = NULL, .answer = API_MSG(network_list) }, .post_s = { .request = API_MSG(network_request), .answer = API_MSG(network) },
	  .summary = "Networks guests' NICs join: list (a page), create" },
	{ .path = "/v1/networks/", .segment = true, .segment_max = DB_NAME_MAX, .noun = "a network id or name",
	  .placeholder = "{id|name}", API_ALLOW("GET, DELETE"), .get = api__network_get, .del = api__network_delete,
	  .get_s = { .request = NULL, .answer = API_MSG(network) }, .del_s = { .request = NULL, .answer = API_MSG(deleted) }, .summary = "A network" },
	{ .path = NULL },
};
