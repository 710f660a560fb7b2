/* /v1/pending and /v1/expectations: boards that enrolled with no token
 * (pending.h), accepted or rejected by /v1/boards/{id}/accept and /reject,
 * and the serials and UUIDs accepted with no hands.  Reading needs the
 * reader role; deciding and expecting the operator role (api.c), and the
 * audit log keeps every decision. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/pending.h"

#define API_EXPECT_EXAMPLE "{\"serial\": \"SN123\"} or {\"uuid\": \"4c4c4544-...\"}"

static struct pending_opts api_pending__opts(const struct controller *ctl)
{
	return (struct pending_opts){ .max = ctl->opt.pending_max, .ttl = ctl->opt.pending_ttl };
}

/* A pending board; "board": the enrolled board whose UUID it claims (an
 * accept gives it that board, revoking the board's earlier certificates),
 * or null. */
static json_t *api_pending__json(struct db *db, const struct db_pending *p)
{
	char key[65], mac[18], board[DB_ID_MAX];
	json_t *o, *macs = json_array();
	const char *m = p->macs;
	int r = db_board_find_uuid(db, p->uuid, board);

	sky_format_hex(p->key_sha256, 32, key);
	while (macs && *m) {
		size_t n = strcspn(m, ",");
		snprintf(mac, sizeof(mac), "%.*s", (int)(n < 17 ? n : 17), m);
		if (json_array_append_new(macs, json_string(mac)) < 0) {
			json_decref(macs);
			return NULL;
		}
		m += n + (m[n] == ',');
	}
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o}", "id", p->id, "state",
		      db_pending_state_name(p->state), "serial", p->serial, "uuid", p->uuid, "hostname", p->hostname,
		      "macs", macs ? macs : json_null(), "key_sha256", key, "peer", p->peer, "first_seen_at",
		      api_json_time(p->first_seen), "last_seen_at", api_json_time(p->last_seen), "expires_at",
		      api_json_time(p->expires_at));
	if (o && json_object_set_new(o, "board", r == 0 ? json_string(board) : json_null()) < 0) {
		json_decref(o);
		return NULL;
	}
	if (o && p->decided_at && json_object_set_new(o, "decided_at", api_json_time(p->decided_at)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

struct api_pending_ctx {
	struct db *db;
	json_t *arr;
};

static int api_pending__list_cb(void *ctx, const struct db_pending *p)
{
	struct api_pending_ctx *x = ctx;

	return json_array_append_new(x->arr, api_pending__json(x->db, p)) < 0 ? -ENOMEM : 0;
}

static const char *const api_pending_states[] = { "pending", "accepted", "rejected", NULL };
static const struct api_list_spec api_pending_list = {
	.list = "pending", .id_prefix = "pnd-", .what = "list the pending boards", .filters = API_QUERY_STATE,
	.states = api_pending_states,
};

static void api__pending_list(struct api_call *call, struct api_reply *rep)
{
	struct api_list_query q;
	json_t *arr;
	int r;

	if (api_list_query(call, rep, &api_pending_list, &q) < 0)
		return;
	arr = json_array();
	if (!arr)
		return;
	r = db_pending_expire(call->ctl->db, sky_unix_now());
	if (r >= 0)
		r = db_pending_list(call->ctl->db, api_pending__list_cb,
				    &(struct api_pending_ctx){ .db = call->ctl->db, .arr = arr });
	api_list_reply(call, rep, &api_pending_list, &q, r, arr);
}

static void api_pending__none(struct api_reply *rep, const char *id)
{
	api_reply_error(rep, 404, "not_found",
			"no pending board '%s' (it may have expired, or been accepted and come online); see "
			"'skyctl board list --pending'", id);
}

static void api__pending_get(struct api_call *call, struct api_reply *rep)
{
	struct db_pending p;
	int r = db_pending_expire(call->ctl->db, sky_unix_now());

	if (r >= 0)
		r = db_pending_get(call->ctl->db, call->seg, &p);
	if (r == -ENOENT) {
		api_pending__none(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "read the pending board");
		return;
	}
	api_reply_ok(rep, 200, api_pending__json(call->ctl->db, &p));
}

/* Accept or reject a pending board in one transaction; answer its row. */
static void api_pending__decide(struct api_call *call, struct api_reply *rep, bool accept)
{
	struct controller *ctl = call->ctl;
	struct pending_opts o = api_pending__opts(ctl);
	struct db_pending p;
	int64_t now = sky_unix_now();
	char key[65];
	int r = db_begin(ctl->db);

	if (r == 0)
		r = accept ? pending_accept(ctl->db, &o, call->seg, now) : pending_reject(ctl->db, &o, call->seg, now);
	if (r == 0)
		r = db_pending_get(ctl->db, call->seg, &p);
	if (r == 0) /* durable with the decision */
		r = events_add_kv(ctl->events, accept ? "board.accepted" : "board.rejected", "pending", p.id,
				  "machine", p.uuid, "serial", p.serial, NULL);
	if (r == 0)
		r = db_commit(ctl->db);
	if (r < 0)
		db_rollback(ctl->db);
	if (r == -ENOENT) {
		api_pending__none(rep, call->seg);
		return;
	}
	if (r == -EALREADY) { /* say which decision stands */
		bool rejected = db_pending_get(ctl->db, call->seg, &p) < 0 || p.state == DB_PENDING_REJECTED;

		if (rejected)
			api_reply_error(rep, 409, "conflict", "pending board '%s' was rejected already: its key stays "
					"refused until the record expires (--pending-ttl); then the board queues again "
					"at its next ask", call->seg);
		else
			api_reply_error(rep, 409, "conflict", "pending board '%s' was accepted already: it gets its "
					"certificate when it next asks (within a few seconds); 'skyctl board reject %s' "
					"takes the accept back until then", call->seg, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, accept ? "accept the pending board" : "reject the pending board");
		return;
	}
	sky_format_hex(p.key_sha256, 32, key);
	if (accept)
		log_info("api: pending board %s (machine '%s', serial '%s') accepted: its next ask with key sha256:%s "
			 "gets a certificate", p.id, p.uuid, p.serial, key);
	else
		log_info("api: pending board %s (machine '%s', serial '%s', key sha256:%s) rejected", p.id, p.uuid,
			 p.serial, key);
	api_reply_ok(rep, 200, api_pending__json(ctl->db, &p));
}

static void api__pending_accept(struct api_call *call, struct api_reply *rep)
{
	api_pending__decide(call, rep, true);
}

static void api__pending_reject(struct api_call *call, struct api_reply *rep)
{
	api_pending__decide(call, rep, false);
}

/* ---- expectations ---- */

static json_t *api_expect__json(const struct db_expectation *e)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "id", e->id, "serial", e->serial, "uuid", e->uuid, "created_at",
			 api_json_time(e->created_at));
}

static int api_expect__list_cb(void *ctx, const struct db_expectation *e)
{
	return json_array_append_new(ctx, api_expect__json(e)) < 0 ? -ENOMEM : 0;
}

static const struct api_list_spec api_expect_list = {
	.list = "expectations", .id_prefix = "exp-", .what = "list the expectations",
};

static void api__expect_list(struct api_call *call, struct api_reply *rep)
{
	struct api_list_query q;
	json_t *arr;

	if (api_list_query(call, rep, &api_expect_list, &q) < 0)
		return;
	arr = json_array();
	if (arr)
		api_list_reply(call, rep, &api_expect_list, &q, db_expect_list(call->ctl->db, api_expect__list_cb, arr),
			       arr);
}

/* The body {"serial": S} or {"uuid": U} into e: 0, or -EINVAL with err. */
static int api_expect__parse(const struct http_request *req, struct db_expectation *e, char *err, size_t errlen)
{
	static const char *const known[] = { "serial", "uuid", NULL };
	const char *val[2] = { NULL, NULL };
	json_t *root;
	int r = api_json_load_object(req->body, req->body_len, "expectation", API_EXPECT_EXAMPLE, &root, err, errlen);

	if (r < 0)
		return r;
	r = api_json_known_keys(root, "an expectation", known, err, errlen);
	for (int i = 0; r == 0 && i < 2; i++) {
		json_t *v = json_object_get(root, known[i]);

		if (v && !json_is_string(v)) {
			snprintf(err, errlen, "expectation.%s must be a string, like %s", known[i], API_EXPECT_EXAMPLE);
			r = -EINVAL;
		}
		val[i] = json_string_value(v);
	}
	if (r == 0 && !pending_expect_check(e, val[0], val[1], err, errlen))
		r = -EINVAL;
	json_decref(root);
	return r;
}

static void api__expect_create(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct db_expectation e, old;
	char err[API_JSON_ERR_MAX];
	int r;

	memset(&e, 0, sizeof(e));
	if (api_expect__parse(call->req, &e, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	e.created_at = sky_unix_now();
	r = db_begin(ctl->db);
	if (r == 0) {
		r = db_expect_find(ctl->db, e.serial, e.uuid, &old);
		if (r == 0)
			r = -EEXIST;
		else if (r == -ENOENT)
			r = db_expect_count(ctl->db);
	}
	if (r >= PENDING_EXPECT_MAX)
		r = -ENOSPC;
	else if (r >= 0)
		r = db_new_id("exp-", 6, e.id, sizeof(e.id));
	if (r == 0)
		r = db_expect_insert(ctl->db, &e);
	if (r == 0)
		r = db_commit(ctl->db);
	if (r < 0)
		db_rollback(ctl->db);
	if (r == -EEXIST) {
		api_reply_error(rep, 409, "conflict", "%s '%s' is expected already by %s", e.serial[0] ? "serial" : "uuid",
				e.serial[0] ? e.serial : e.uuid, old.id);
		return;
	}
	if (r == -ENOSPC) {
		api_reply_error(rep, 409, "conflict", "%d expectations are kept already; delete some first",
				PENDING_EXPECT_MAX);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "store the expectation");
		return;
	}
	log_info("api: expectation %s: a board with no token claiming %s '%s' is accepted with no hands (once)", e.id,
		 e.serial[0] ? "serial" : "uuid", e.serial[0] ? e.serial : e.uuid);
	api_reply_ok(rep, 201, api_expect__json(&e));
}

static void api__expect_delete(struct api_call *call, struct api_reply *rep)
{
	int r = db_expect_delete(call->ctl->db, call->seg);

	if (r == -ENOENT) {
		api_reply_error(rep, 404, "not_found", "no expectation '%s' (a used one is gone); see 'skyctl board "
				"expect-list'", call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "delete the expectation");
		return;
	}
	log_info("api: expectation %s deleted", call->seg);
	api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", call->seg, "deleted", 1));
}

const struct api_route api_pending_routes[] = {
	{ .path = "/v1/pending", API_ALLOW("GET"), .get = api__pending_list, .get_s = { .request = NULL, .answer = API_MSG(pending_list) },
	  .summary = "Boards that asked to enroll with no token (a page)" },
	{ .path = "/v1/pending/", .segment = true, .segment_max = DB_ID_MAX, .noun = "a pending board id",
	  .placeholder = "{id}", API_ALLOW("GET"), .get = api__pending_get, .get_s = { .request = NULL, .answer = API_MSG(pending_board) },
	  .summary = "A pending board" },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_ID_MAX, .suffix = "/accept",
	  .noun = "a pending board id", .placeholder = "{id}/accept", API_ALLOW("POST"), .post = api__pending_accept,
	  .post_s = { .request = NULL, .answer = API_MSG(pending_board) }, .summary = "Accept a pending board: its next ask gets a certificate" },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_ID_MAX, .suffix = "/reject",
	  .noun = "a pending board id", .placeholder = "{id}/reject", API_ALLOW("POST"), .post = api__pending_reject,
	  .post_s = { .request = NULL, .answer = API_MSG(pending_board) }, .summary = "Reject a pending board" },
	{ .path = "/v1/expectations", API_ALLOW("GET, POST"), .get = api__expect_list, .post = api__expect_create,
	  .get_s = { .request = NULL, .answer = API_MSG(expectation_list) },
	  .post_s = { .request = API_MSG(expectation_request), .answer = API_MSG(expectation) },
	  .summary = "Expected serials and UUIDs, accepted with no hands: list (a page), create" },
	{ .path = "/v1/expectations/", .segment = true, .segment_max = DB_ID_MAX, .noun = "an expectation id",
	  .placeholder = "{id}", API_ALLOW("DELETE"), .del = api__expect_delete, .del_s = { .request = NULL, .answer = API_MSG(deleted) },
	  .summary = "Delete an expectation" },
	{ .path = NULL },
};
