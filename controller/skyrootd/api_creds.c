/* /v1/credentials (API credentials with roles; the token is shown once, at
 * creation and at rotation) and /v1/audit: the admin role's routes. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_creds_json.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/events.h"

#define API_CRED_PREFIX "skc-"
#define API_CRED_SECRET_BYTES 32
#define API_AUDIT_LIMIT_MAX 10000

/* A new token, shown once, and its hash, stored. */
struct api_cred_secret {
	char token[sizeof(API_CRED_PREFIX) + 2 * API_CRED_SECRET_BYTES];
	uint8_t hash[32];
};

/* A new token into sec: 0, or -1 with the 500 in rep. */
static int api_creds__secret(struct api_reply *rep, struct api_cred_secret *sec)
{
	uint8_t raw[API_CRED_SECRET_BYTES];
	int r = sky_random(raw, sizeof(raw));

	if (r < 0) {
		api_reply_internal(rep, r, "get random bytes for a credential");
		return -1;
	}
	memcpy(sec->token, API_CRED_PREFIX, strlen(API_CRED_PREFIX));
	sky_format_hex(raw, sizeof(raw), sec->token + strlen(API_CRED_PREFIX));
	OPENSSL_cleanse(raw, sizeof(raw));
	sky_sha256(sec->token, strlen(sec->token), sec->hash);
	return 0;
}

static void api_creds__no(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no credential named '%s'; see 'skyctl credential list'", name);
}

/* The credential as it is now, with the token when one was just made. */
static void api_creds__answer(struct api_call *call, struct api_reply *rep, int status, const char *name,
			      const char *secret)
{
	int64_t now = sky_unix_now();
	struct creds_row c;
	json_t *o;
	int r = creds_get(call->ctl->db, name, &c);

	if (r < 0) {
		api_reply_internal(rep, r, "read the credential back");
		return;
	}
	o = api_creds_json(&c, now);
	if (o && secret && json_object_set_new(o, "token", json_string(secret)) < 0) {
		json_decref(o);
		o = NULL;
	}
	api_reply_ok(rep, status, o);
}

/* Inside the change's transaction: its event, then the commit. */
static int api_creds__event(struct api_call *call, const char *name, const char *change, const char *role)
{
	events_add_kv(call->ctl->events, "credential.changed", "credential", name, "change", change, "role", role, NULL);
	return db_commit(call->ctl->db);
}

static void api__creds_create(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct api_cred_request req;
	struct api_cred_secret sec;
	char err[API_JSON_ERR_MAX];
	int64_t now = sky_unix_now();
	int r, began;

	if (api_creds_parse_create(call->req->body, call->req->body_len, &req, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	if (api_creds__secret(rep, &sec) < 0)
		return;
	began = db_begin(ctl->db); /* the change and its event: durable together */
	r = began ? began : creds_create(ctl->db, req.name, req.role, now, req.ttl_seconds ? now + req.ttl_seconds : 0,
					 sec.hash);
	if (r == 0)
		r = api_creds__event(call, req.name, "created", creds_role_name(req.role));
	if (began == 0 && r < 0)
		db_rollback(ctl->db);
	if (r == -EEXIST) {
		api_reply_error(rep, 409, "conflict",
				"a credential named '%s' exists (revoked ones keep their name); choose another name",
				req.name);
	} else if (r < 0) {
		api_reply_internal(rep, r, "store the new credential");
	} else {
		log_info("api: credential '%s' created (role %s)", req.name, creds_role_name(req.role));
		api_creds__answer(call, rep, 201, req.name, sec.token);
	}
	OPENSSL_cleanse(&sec, sizeof(sec));
}

struct api_creds_ctx {
	json_t *array;
	int64_t now;
};

static int api_creds__list_cb(void *ctx, const struct creds_row *c)
{
	struct api_creds_ctx *x = ctx;

	return json_array_append_new(x->array, api_creds_json(c, x->now)) < 0 ? -ENOMEM : 0;
}

static void api__creds_list(struct api_call *call, struct api_reply *rep)
{
	struct api_creds_ctx x = { .array = json_array(), .now = sky_unix_now() };
	int r = x.array ? creds_list(call->ctl->db, api_creds__list_cb, &x) : -ENOMEM;

	api_reply_list(rep, "credentials", "list the credentials", r, x.array);
}

static void api__cred_show(struct api_call *call, struct api_reply *rep)
{
	struct creds_row c;
	int r = creds_get(call->ctl->db, call->seg, &c);

	if (r == -ENOENT)
		api_creds__no(rep, call->seg);
	else if (r < 0)
		api_reply_internal(rep, r, "read the credential");
	else
		api_reply_ok(rep, 200, api_creds_json(&c, sky_unix_now()));
}

static void api__cred_rotate(struct api_call *call, struct api_reply *rep)
{
	struct api_cred_secret sec;
	char err[API_JSON_ERR_MAX];
	int64_t grace;
	int r, began;

	if (api_creds_parse_rotate(call->req->body, call->req->body_len, &grace, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	if (api_creds__secret(rep, &sec) < 0)
		return;
	began = db_begin(call->ctl->db);
	r = began ? began : creds_rotate(call->ctl->db, call->seg, sec.hash, sky_unix_now(), grace);
	if (r == 0)
		r = api_creds__event(call, call->seg, "rotated", NULL);
	if (began == 0 && r < 0)
		db_rollback(call->ctl->db);
	if (r == -ENOENT) {
		api_creds__no(rep, call->seg);
	} else if (r == -EKEYREVOKED) {
		api_reply_error(rep, 409, "conflict", "the credential '%s' is revoked; create a new one", call->seg);
	} else if (r < 0) {
		api_reply_internal(rep, r, "rotate the credential");
	} else {
		log_info("api: credential '%s' rotated (the old token works %lld s more)", call->seg, (long long)grace);
		api_creds__answer(call, rep, 200, call->seg, sec.token);
	}
	OPENSSL_cleanse(&sec, sizeof(sec));
}

static void api__cred_revoke(struct api_call *call, struct api_reply *rep)
{
	int began = db_begin(call->ctl->db), r = began;

	if (r == 0)
		r = creds_revoke(call->ctl->db, call->seg, sky_unix_now());
	if (r == 0)
		r = api_creds__event(call, call->seg, "revoked", NULL);
	if (began == 0 && r < 0)
		db_rollback(call->ctl->db);

	if (r == -ENOENT) {
		api_creds__no(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "revoke the credential");
		return;
	}
	log_info("api: credential '%s' revoked", call->seg);
	api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", call->seg, "deleted", 1));
}

static int api_audit__cb(void *ctx, const struct audit_entry *e)
{
	return json_array_append_new(ctx, api_creds_audit_json(e)) < 0 ? -ENOMEM : 0;
}

static void api__audit_list(struct api_call *call, struct api_reply *rep)
{
	char err[API_JSON_ERR_MAX];
	uint64_t limit;
	json_t *arr;
	int r;

	if (api_creds_parse_limit(call->req->query, call->req->query_len, API_AUDIT_LIMIT_MAX, &limit, err,
				  sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	arr = json_array();
	r = arr ? audit_list(call->ctl->db, limit, api_audit__cb, arr) : -ENOMEM;
	api_reply_list(rep, "entries", "read the audit log", r, arr);
}

const struct api_route api_creds_routes[] = {
	{ .path = "/v1/credentials", .admin = true, API_ALLOW("GET, POST"), .get = api__creds_list,
	  .post = api__creds_create, .get_s = { .request = NULL, .answer = API_MSG(credential_list) },
	  .post_s = { .request = API_MSG(credential_request), .answer = API_MSG(credential) }, .summary = "API credentials (admin)" },
	{ .path = "/v1/credentials/", .segment = true, .segment_max = CREDS_NAME_MAX, .noun = "a credential name",
	  .placeholder = "{name}", .admin = true, API_ALLOW("GET, DELETE"), .get = api__cred_show,
	  .del = api__cred_revoke, .get_s = { .request = NULL, .answer = API_MSG(credential) }, .del_s = { .request = NULL, .answer = API_MSG(deleted) },
	  .summary = "An API credential (admin); DELETE revokes it" },
	{ .path = "/v1/credentials/", .segment = true, .segment_max = CREDS_NAME_MAX, .noun = "a credential name",
	  .placeholder = "{name}/rotate", .suffix = "/rotate", .admin = true, API_ALLOW("POST"), .post = api__cred_rotate,
	  .post_s = { .request = API_MSG(rotate_request), .answer = API_MSG(credential) }, .summary = "A new token for the credential (admin)" },
	{ .path = "/v1/audit", .admin = true, API_ALLOW("GET"), .get = api__audit_list,
	  .get_s = { .request = NULL, .answer = API_MSG(audit_list) }, .summary = "The audit log, newest first (admin)" },
	{ .path = NULL },
};
