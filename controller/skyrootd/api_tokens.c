/* /v1/tokens: enrollment tokens; the secret is shown once, at creation. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/events.h"

#define API_TOKEN_PREFIX "skt-"
#define API_TOKEN_SECRET_BYTES 32
#define API_TOKEN_ID_BYTES 4

static void api__tokens_create(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct api_token_request req;
	char err[API_JSON_ERR_MAX];
	uint8_t raw[API_TOKEN_SECRET_BYTES], hash[32];
	char secret[sizeof(API_TOKEN_PREFIX) + 2 * API_TOKEN_SECRET_BYTES];
	char expires[32];
	struct db_token t;
	int r, began;

	if (api_json_parse_token_request(call->req->body, call->req->body_len, &req, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	r = sky_random(raw, sizeof(raw));
	if (r < 0) {
		api_reply_internal(rep, r, "get random bytes for a token");
		return;
	}
	memcpy(secret, API_TOKEN_PREFIX, strlen(API_TOKEN_PREFIX));
	sky_format_hex(raw, sizeof(raw), secret + strlen(API_TOKEN_PREFIX));
	OPENSSL_cleanse(raw, sizeof(raw));
	/* The store keeps only the hash of the whole string a board presents. */
	sky_sha256(secret, strlen(secret), hash);

	memset(&t, 0, sizeof(t));
	if (req.board[0]) {
		char name[DB_NAME_MAX];
		r = api_board_lookup(ctl, req.board, t.board_id, name);
		if (r == -ENOENT) {
			api_reply_no_board(rep, req.board);
			return;
		}
		if (r < 0) {
			api_reply_internal(rep, r, "read the board");
			return;
		}
	}
	t.created_at = sky_unix_now();
	t.expires_at = t.created_at + req.ttl_seconds;
	t.uses = req.uses;
	t.uses_left = req.uses;
	t.revoked = false;
	/* The token and its event in one transaction: durable together. */
	began = db_begin(ctl->db);
	r = began;
	/* 32-bit ids: retry the rare collision with a fresh one. */
	for (int attempt = 0; began == 0 && attempt < 3; attempt++) {
		r = db_new_id("tok-", API_TOKEN_ID_BYTES, t.id, sizeof(t.id));
		if (r < 0)
			break;
		r = db_token_insert(ctl->db, &t, hash);
		if (r != -EEXIST)
			break;
	}
	if (r == 0) {
		events_add_kv(ctl->events, "token.created", "token", t.id, "board", t.board_id, NULL);
		r = db_commit(ctl->db);
	}
	if (began == 0 && r < 0)
		db_rollback(ctl->db);
	if (r < 0) {
		OPENSSL_cleanse(secret, sizeof(secret));
		api_reply_internal(rep, r, "store the new token");
		return;
	}
	sky_fmt_time(t.expires_at, expires, sizeof(expires));
	log_info("api: token %s created (%u use%s, expires %s%s%s)", t.id, t.uses, t.uses == 1 ? "" : "s",
		 expires, t.board_id[0] ? "; re-enrolls board " : "", t.board_id);
	api_reply_ok(rep, 201, api_json_token_created(&t, secret, ctl->ca_pin_str, ctl->advertise));
	OPENSSL_cleanse(secret, sizeof(secret));
}

struct api_token_ctx {
	json_t *array;
	int64_t now;
};

static int api_token__list_cb(void *ctx, const struct db_token *t)
{
	struct api_token_ctx *x = ctx;

	if (json_array_append_new(x->array, api_json_token(t, x->now)) < 0)
		return -ENOMEM;
	return 0;
}

static const char *const api_token_states[] = { "active", "expired", "used", "revoked", NULL };
static const struct api_list_spec api_tokens_list = {
	.list = "tokens", .id_prefix = "tok-", .what = "list the tokens", .filters = API_QUERY_STATE | API_QUERY_BOARD,
	.states = api_token_states,
};

static void api__tokens_list(struct api_call *call, struct api_reply *rep)
{
	struct api_token_ctx x = { .now = sky_unix_now() };
	struct api_list_query q;

	if (api_list_query(call, rep, &api_tokens_list, &q) < 0)
		return;
	x.array = json_array();
	if (x.array)
		api_list_reply(call, rep, &api_tokens_list, &q, db_token_list(call->ctl->db, api_token__list_cb, &x), x.array);
}

static void api__token_revoke(struct api_call *call, struct api_reply *rep)
{
	struct db *db = call->ctl->db;
	int began = db_begin(db), r = began;

	/* The revocation and its event in one transaction. */
	if (r == 0)
		r = db_token_revoke(db, call->seg);
	if (r == 0) {
		events_add_kv(call->ctl->events, "token.revoked", "token", call->seg, NULL);
		r = db_commit(db);
	}
	if (began == 0 && r < 0)
		db_rollback(db);

	if (r == -ENOENT) {
		api_reply_error(rep, 404, "not_found", "no token '%s'; see 'skyctl token list'", call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "revoke the token");
		return;
	}
	log_info("api: token %s revoked", call->seg);
	api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", call->seg, "deleted", 1));
}

const struct api_route api_tokens_routes[] = {
	{ .path = "/v1/tokens", API_ALLOW("GET, POST"), .get = api__tokens_list, .post = api__tokens_create,
	  .get_s = { .request = NULL, .answer = API_MSG(token_list) }, .post_s = { .request = API_MSG(token_request), .answer = API_MSG(token) },
	  .summary = "Enrollment tokens: list (a page), create" },
	{ .path = "/v1/tokens/", .segment = true, .segment_max = DB_ID_MAX, .noun = "a token id",
	  .placeholder = "{id}", API_ALLOW("DELETE"), .del = api__token_revoke,
	  .del_s = { .request = NULL, .answer = API_MSG(deleted) }, .summary = "Revoke an enrollment token" },
	{ .path = NULL },
};
