/* The REST API (docs/api.md) over the HTTP layer (http.c): the table of
 * routes each resource file contributes, authentication with a credential
 * and its role (creds.h), dispatch, the audit log of changes and refusals,
 * errors as {"error": {"code", "message"}}, and each answer and body in
 * JSON or protobuf as the client asks (api_reply.c). */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"

/* Every resource registers its routes here. */
static const struct api_route *const api_tables[] = {
	api_boot_routes, api_metrics_routes, api_boards_routes, api_tokens_routes, api_guests_routes,
	api_images_routes, api_creds_routes, api_pending_routes, api_networks_routes, api_events_routes, api_openapi_routes,
	api_firmware_routes,
};

const struct api_route *const *api_route_tables(size_t *n)
{
	*n = SKY_ARRAY_SIZE(api_tables);
	return api_tables;
}

#define API_NEEDS_TOKEN \
	"this call needs 'Authorization: Bearer <token>' of an API credential; the admin token is in the skyctl config that 'skyrootd init' wrote"
#define API_WRONG_TOKEN \
	"the bearer token is not a valid credential (invalid or expired); ask an admin for one ('skyctl credential create')"
#define API_AUDIT_LOG_EVERY_MS 1000

static bool api__is_v1(const char *path, size_t len)
{
	return len >= 3 && memcmp(path, "/v1", 3) == 0 && (len == 3 || path[3] == '/');
}

/* The route for path, and its segment (raw, still percent-encoded). */
static const struct api_route *api__find(const char *path, size_t len, const char **seg, size_t *seg_len)
{
	for (size_t t = 0; t < SKY_ARRAY_SIZE(api_tables); t++) {
		for (const struct api_route *rt = api_tables[t]; rt->path; rt++) {
			size_t pl = strlen(rt->path), sl;

			if (len < pl || memcmp(path, rt->path, pl) != 0)
				continue;
			if (!rt->segment) {
				if (len != pl)
					continue;
				*seg = NULL;
				*seg_len = 0;
				return rt;
			}
			sl = rt->suffix ? strlen(rt->suffix) : 0;
			if (len <= pl + sl)
				continue;
			if (sl && memcmp(path + len - sl, rt->suffix, sl) != 0)
				continue;
			if (memchr(path + pl, '/', len - pl - sl))
				continue;
			*seg = path + pl;
			*seg_len = len - pl - sl;
			return rt;
		}
	}
	return NULL;
}

static void api__dispatch(struct api_call *call, struct api_reply *rep)
{
	const struct http_request *req = call->req;
	const struct api_route *rt;
	const char *raw_seg;
	size_t raw_len;
	char seg[DB_NAME_MAX > DB_ID_MAX ? DB_NAME_MAX : DB_ID_MAX];
	api_handler fn = NULL;
	struct api_conn_state *st = NULL;
	int r;

	/* The plain listener serves network boot and nothing else. */
	if (call->api->boot_only && !(req->path_len >= 6 && memcmp(req->path, "/boot/", 6) == 0)) {
		api_reply_error(rep, 404, "not_found",
				"this port serves network boot only (/boot/ipxe, /boot/vmlinuz, /boot/initrd.img)");
		return;
	}
	if (api_redfish_is(req)) {
		api_redfish_dispatch(call, rep);
		return;
	}
	rt = api__find(req->path, req->path_len, &raw_seg, &raw_len);
	/* Authenticate before telling anything about /v1, even what exists. */
	if (api__is_v1(req->path, req->path_len) || (rt && rt->reader)) {
		st = http_conn_user(call->conn);
		char name[DB_NAME_MAX];
		int state;
		enum creds_role role = api_auth_role(call->api, req, name, &state);
		enum creds_role need = creds_route_need(req->verb == HTTP_VERB_GET || req->verb == HTTP_VERB_HEAD,
							rt && rt->admin);

		if (st)
			snprintf(st->credential, sizeof(st->credential), "%s", name);
		if (role == CREDS_NONE && state == -ENOTCONN) {
			/* the store is unreachable: not a wrong token (no 401,
			 * nothing counted against the client), a retry later */
			api_reply_internal(rep, state, "check the credential");
			return;
		}
		if (role == CREDS_NONE) {
			/* Which it was goes to the log, not to the client. */
			if (state == -EKEYREVOKED || state == -EKEYEXPIRED)
				log_warn("api: request %s from %s: the credential '%s' is %s", http_conn_request_id(call->conn),
					 req->peer, name, state == -EKEYREVOKED ? "revoked" : "expired");
			api_reply_error(rep, 401, "unauthorized", "%s",
					req->authorization_count == 0 ? API_NEEDS_TOKEN : API_WRONG_TOKEN);
			rep->headers = "WWW-Authenticate: Bearer\r\n";
			return;
		}
		if (!creds_role_allows(role, need)) {
			api_reply_error(rep, 403, "forbidden",
					"%s %s%s needs the role '%s'; the credential '%s' has the role '%s' (an admin "
					"can make one with 'skyctl credential create --role %s')",
					req->method, rt ? rt->path : "this path", rt && rt->segment ? rt->placeholder : "",
					creds_role_name(need), name, creds_role_name(role), creds_role_name(need));
			return;
		}
	}
	if (!rt) {
		api_reply_error(rep, 404, "not_found", "no such API route '%.*s'; see docs/api.md",
				(int)(req->path_len > 128 ? 128 : req->path_len), req->path);
		return;
	}
	switch (req->verb) {
	case HTTP_VERB_GET:
		fn = rt->get;
		break;
	case HTTP_VERB_POST:
		fn = rt->post;
		break;
	case HTTP_VERB_DELETE:
		fn = rt->del;
		break;
	case HTTP_VERB_PATCH:
		fn = rt->patch;
		break;
	default:
		break;
	}
	if (!fn) {
		api_reply_error(rep, 405, "method_not_allowed", "%s is not allowed on %s%s; use %s", req->method,
				rt->path, rt->segment ? rt->placeholder : "", rt->allow);
		rep->headers = rt->allow_header;
		return;
	}
	st = http_conn_user(call->conn);
	if (st && st->encoded && st->media_status) {
		api_reply_error(rep, st->media_status, api_reply_media_code(st->media_status), "%s", st->media_msg);
		return;
	}
	seg[0] = '\0';
	if (rt->segment) {
		r = api_json_decode_segment(raw_seg, raw_len, seg, rt->segment_max);
		if (r == -ENAMETOOLONG) {
			api_reply_error(rep, 404, "not_found", "'%.*s' is too long to be %s (at most %zu bytes)",
					(int)(raw_len > 80 ? 80 : raw_len), raw_seg, rt->noun, rt->segment_max - 1);
			return;
		}
		if (r < 0) {
			api_reply_error(rep, 400, "bad_request",
					"'%.*s' is not %s: it has a bad %%-escape, a '/' or a control character",
					(int)(raw_len > 80 ? 80 : raw_len), raw_seg, rt->noun);
			return;
		}
	}
	call->seg = seg;
	/* A protobuf body reaches its handler as the JSON it takes. */
	st = http_conn_user(call->conn);
	if (st && st->encoded && st->pb_request) {
		char msg[PBJSON_ERR_MAX + 128];
		size_t len = 0;

		r = api_reply_body_json(req, rt, &call->json_body, &len, msg, sizeof(msg));
		if (r) {
			api_reply_error(rep, r, r == 400 ? "bad_request" : api_reply_media_code(r), "%s", msg);
			return;
		}
		if (call->json_body) {
			call->json_req = *req;
			call->json_req.body = call->json_body;
			call->json_req.body_len = len;
			call->req = req = &call->json_req;
		}
	}
	if (req->verb == HTTP_VERB_POST &&
	    api_idem_begin(call, rep, &call->idem, call->idem_headers, sizeof(call->idem_headers))) {
		call->replayed = rep->headers == call->idem_headers;
		return;
	}
	fn(call, rep);
}

/* ---- the HTTP layer's ops ---- */

/* Each request gets an id (sent as X-Request-Id, in the log and the audit
 * log), and what the audit log keeps of it. */
static void api__request_begin(struct api *api, struct http_conn *c, const struct http_request *req)
{
	struct api_conn_state *st = api_conn_state(c);
	size_t n = 0;

	if (!st)
		return;
	st->credential[0] = '\0';
	snprintf(st->method, sizeof(st->method), "%s", req->method ? req->method : "-");
	/* The path only (a query is not kept), printable ASCII. */
	for (size_t i = 0; i < req->path_len && n + 1 < sizeof(st->path); i++) {
		unsigned char ch = (unsigned char)req->path[i];
		st->path[n++] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	st->path[n] = '\0';
	snprintf(st->peer, sizeof(st->peer), "%s", req->peer ? req->peer : "-");
	(void)api;
}

/* Into the audit log: every change (not GET or HEAD) that succeeded, and
 * every call refused for its credential (401, 403). */
static void api__audit(struct api *api, struct http_conn *c, struct api_conn_state *st, int status)
{
	bool read = strcmp(st->method, "GET") == 0 || strcmp(st->method, "HEAD") == 0;
	struct audit_entry e;
	int r;

	if (api->boot_only || !st->method[0] || !api->ctl->db)
		return;
	if (!((!read && status >= 200 && status < 400) || status == 401 || status == 403)) {
		st->method[0] = '\0';
		return;
	}
	memset(&e, 0, sizeof(e));
	e.at = sky_unix_now();
	snprintf(e.credential, sizeof(e.credential), "%s", st->credential[0] ? st->credential : "unknown");
	snprintf(e.peer, sizeof(e.peer), "%s", st->peer);
	snprintf(e.method, sizeof(e.method), "%s", st->method);
	snprintf(e.path, sizeof(e.path), "%s", st->path);
	e.status = status;
	snprintf(e.request_id, sizeof(e.request_id), "%s", http_conn_request_id(c));
	st->method[0] = '\0';
	log_info("api: request %s: %s %s by %s from %s -> %d", e.request_id, e.method, e.path, e.credential, e.peer,
		 status);
	r = audit_add(api->ctl->db, &e, api->ctl->opt.audit_keep ? api->ctl->opt.audit_keep : AUDIT_KEEP_DEFAULT);
	if (r < 0)
		log_error("api: cannot add request %s to the audit log: %s", e.request_id, strerror(-r));
}

/* The request's route as docs/api.md writes it, and when it began, for
 * the counters (api__answered). */
static void api__metrics_begin(struct api *api, struct http_conn *c, const struct http_request *req)
{
	struct api_conn_state *st = api_conn_state(c);
	const struct api_route *rt;
	const char *seg;
	size_t seg_len;

	if (!st)
		return;
	rt = api__find(req->path, req->path_len, &seg, &seg_len);
	if (rt && api->boot_only && strncmp(rt->path, "/boot/", 6) != 0)
		rt = NULL;
	if (rt)
		snprintf(st->metric_route, sizeof(st->metric_route), "%s%s%s", rt->path,
			 rt->segment ? rt->placeholder : "", rt->suffix ? rt->suffix : "");
	else
		snprintf(st->metric_route, sizeof(st->metric_route), "unmatched");
	st->metric_t0 = uv_hrtime();
}

static void api__answered(void *ctx, struct http_conn *c, int status)
{
	struct api_conn_state *st = http_conn_user(c);

	(void)ctx;
	if (!st || !st->metric_t0) {
		metrics_api_request("unmatched", status); /* refused before its headers were whole */
		return;
	}
	metrics_api_request(st->metric_route, status);
	metrics_api_latency(st->metric_route, (uv_hrtime() - st->metric_t0) / 1000);
	st->metric_t0 = 0;
	api__audit(ctx, c, st, status);
}

static int api__begin(void *ctx, struct http_conn *c, const struct http_request *req)
{
	struct api *api = ctx;
	struct api_conn_state *st;
	char name[DB_NAME_MAX];
	uint64_t wait_ms;
	enum creds_role role;
	int state;

	api__metrics_begin(api, c, req);
	api__request_begin(api, c, req);
	st = http_conn_user(c);
	if (st) {
		st->answer_msg = NULL;
		st->pb_answer = st->pb_request = false;
		st->strict = api->strict;
		/* Redfish and the boot port speak only their own JSON. */
		st->encoded = !api->boot_only && !api_redfish_is(req);
	}
	if (st && st->encoded) {
		const struct api_route *rt = NULL;
		const char *seg;
		size_t seg_len;

		/* Refused (406, 415) once the credential is checked (api__dispatch). */
		rt = api__find(req->path, req->path_len, &seg, &seg_len);
		st->media_status = api_reply_negotiate(req, rt, st, st->media_msg, sizeof(st->media_msg));
	}
	if (api->boot_only || !api_images_is_upload(req))
		return HTTP_BODY_BUFFER;
	if (api_auth_waiting(api, req->peer, &wait_ms))
		return http_conn_refuse(c, 429, "too_many_requests",
					"too many wrong admin tokens from %s; try again in %llu ms", req->peer,
					(unsigned long long)wait_ms);
	role = api_auth_role(api, req, name, &state);
	if (st)
		snprintf(st->credential, sizeof(st->credential), "%s", name);
	if (role != CREDS_NONE && !creds_role_allows(role, CREDS_OPERATOR))
		return http_conn_refuse(c, 403, "forbidden",
					"POST /v1/images needs the role 'operator'; the credential '%s' has the role '%s'",
					name, creds_role_name(role));
	if (role == CREDS_NONE && state == -ENOTCONN)
		return http_conn_refuse(c, 503, "unavailable",
					"the controller could not check the credential: its database is unreachable; "
					"retry later");
	if (role == CREDS_NONE) {
		if (state == -EKEYREVOKED || state == -EKEYEXPIRED)
			log_warn("api: request %s from %s: the credential '%s' is %s", http_conn_request_id(c),
				 req->peer, name, state == -EKEYREVOKED ? "revoked" : "expired");
		api_auth_fail(api, req);
		return http_conn_refuse(c, 401, "unauthorized", "%s",
					req->authorization_count == 0 ? API_NEEDS_TOKEN : API_WRONG_TOKEN);
	}
	if (st && st->encoded && st->media_status)
		return http_conn_refuse(c, st->media_status, api_reply_media_code(st->media_status), "%s", st->media_msg);
	if (req->idempotency_key)
		return http_conn_refuse(c, 400, "bad_request",
					"image uploads take no Idempotency-Key: a name is stored once, a repeat is "
					"409 conflict; see 'skyctl image list'");
	return api_images_upload_begin(api, c, req);
}

static int api__body(void *ctx, struct http_conn *c, const void *data, size_t len)
{
	return api_images_upload_body(ctx, c, data, len);
}

static void api__request(void *ctx, struct http_conn *c, const struct http_request *req)
{
	struct api *api = ctx;
	struct api_call call = { .api = api, .ctl = api->ctl, .conn = c, .req = req, .seg = "" };
	struct api_reply rep = { .status = 500 };
	char headers[256];
	const char *id;

	api__dispatch(&call, &rep);
	id = json_string_value(json_object_get(rep.body, "id"));
	if ((rep.status == 200 || rep.status == 201) && id && strlen(id) < DB_ID_MAX && !call.replayed &&
	    req->verb != HTTP_VERB_DELETE) {
		const char *etag;
		int n = 0;

		/* A board, image or guest has its labels, description and etag
		 * (the ETag header too); a 201 says where the new thing is. */
		if (api_meta_decorate(call.ctl, rep.body) < 0) {
			json_decref(rep.body);
			rep.body = NULL;
			api_reply_internal(&rep, -EIO, "read the labels");
		}
		etag = json_string_value(json_object_get(rep.body, "etag"));
		if (etag)
			n = snprintf(headers, sizeof(headers), "ETag: %s\r\n", etag);
		if (rep.status == 201 && req->path_len < 64)
			n += snprintf(headers + n, sizeof(headers) - (size_t)n, "Location: %.*s/%s\r\n", (int)req->path_len,
				      req->path, id);
		if (n > 0 && (size_t)n + (rep.headers ? strlen(rep.headers) : 0) < sizeof(headers)) {
			snprintf(headers + n, sizeof(headers) - (size_t)n, "%s", rep.headers ? rep.headers : "");
			rep.headers = headers;
		}
	}
	if (rep.status == 200 && req->verb == HTTP_VERB_DELETE)
		api_meta_forget(call.ctl, json_string_value(json_object_get(rep.body, "id")));
	api_idem_end(&call, &call.idem, &rep, call.idem_headers, sizeof(call.idem_headers));
	free(call.json_body);
	if (rep.status == 0) {
		json_decref(rep.body); /* answered already */
		return;
	}
	if (rep.status == 401) {
		api_auth_refuse(api, c, req, rep.body, rep.headers);
		return;
	}
	api_reply_send(c, rep.status, rep.body, rep.headers);
}

static void api__failed(void *ctx, struct http_conn *c)
{
	struct api_conn_state *st = http_conn_user(c);

	(void)ctx;
	if (st)
		api_images_conn_gone(st);
}

static void api__closed(void *ctx, struct http_conn *c)
{
	struct api_conn_state *st = http_conn_user(c);

	if (!st)
		return;
	api_images_conn_gone(st);
	api_guests_conn_gone(ctx, c, st);
	api_auth_conn_gone(ctx, st);
	api_boot_conn_gone(ctx, st);
	api_events_conn_gone(ctx, st);
	free(st);
	http_conn_set_user(c, NULL);
}

static void api__writable(void *ctx, struct http_conn *c)
{
	api_boot_writable(ctx, c);
	api_events_writable(ctx, c);
}

static const struct http_ops api_http_ops = {
	.writable = api__writable,
	.begin = api__begin,
	.body = api__body,
	.request = api__request,
	.failed = api__failed,
	.closed = api__closed,
	.answered = api__answered,
};

/* ---- start / stop ---- */

/* The HTTP layer's limits for a port under lim. */
static struct http_limits api__http_limits(const struct listener_limits *lim, uint64_t keepalive_ms)
{
	struct http_limits hl = http_default_limits;

	hl.idle_ms = keepalive_ms;
	hl.header_ms = lim->admit_ms;
	hl.conns_max = lim->conns_max;
	return hl;
}

int api_open(struct controller *ctl, bool boot_only, SSL_CTX *ssl, struct api **out)
{
	const struct listener_limits *lim = boot_only ? &ctl->opt.boot_lim : &ctl->opt.api_lim;
	struct http_limits hl = api__http_limits(lim, ctl->opt.keepalive_ms);
	struct api *api = calloc(1, sizeof(*api));
	int r;

	if (!api)
		return -ENOMEM;
	api->ctl = ctl;
	api->boot_only = boot_only;
	api->strict = getenv("SKYROOTD_API_STRICT") && strcmp(getenv("SKYROOTD_API_STRICT"), "1") == 0;
	api->tables = api_tables;
	api->n_tables = SKY_ARRAY_SIZE(api_tables);
	r = api_list_key(ctl, api->page_key);
	if (r == 0)
		r = http_server_new(ctl->loop, ssl, &hl, &api_http_ops, api, &api->http);
	if (r == 0)
		r = api_auth_start(api);
	if (r < 0) {
		http_server_stop(api->http);
		free(api);
		return r;
	}
	*out = api;
	return 0;
}

static int api__start(struct controller *ctl, const struct sockaddr *addr, bool boot_only, struct api **out)
{
	const struct listener_limits *lim = boot_only ? &ctl->opt.boot_lim : &ctl->opt.api_lim;
	SSL_CTX *ssl = NULL;
	struct api *api;
	int r;

	if (*out)
		return -EALREADY;
	if (!boot_only) {
		ssl = http_tls_ctx_new(ctl->server_cert, ctl->server_key, ctl->ca_cert);
		if (!ssl) {
			log_error("api: the server key does not fit the server certificate in %s; "
				  "re-create the state folder with 'skyrootd init'",
				  ctl->opt.state_dir ? ctl->opt.state_dir : "the state folder");
			return -EINVAL;
		}
	}
	r = api_open(ctl, boot_only, ssl, &api);
	SSL_CTX_free(ssl);
	if (r < 0)
		return r;
	r = http_server_listen(api->http, boot_only ? "boot port" : "API port", addr, lim);
	if (r < 0) {
		http_server_stop(api->http);
		api_auth_stop(api);
		free(api);
		return r;
	}
	*out = api;
	return 0;
}

int api_start(struct controller *ctl, const struct sockaddr *addr)
{
	return api__start(ctl, addr, false, &ctl->api);
}

int api_start_boot(struct controller *ctl, const struct sockaddr *addr)
{
	return api__start(ctl, addr, true, &ctl->boot);
}

void api_set_tls(struct api *api, SSL_CTX *ssl, const struct listener_limits *lim, uint64_t keepalive_ms)
{
	struct http_limits hl;

	if (!api)
		return;
	hl = api__http_limits(lim, keepalive_ms);
	http_server_set(api->http, ssl, &hl, lim);
}

void api_stop(struct api *api)
{
	if (!api)
		return;
	if (api->ctl->api == api)
		api->ctl->api = NULL;
	if (api->ctl->boot == api)
		api->ctl->boot = NULL;
	/* Every connection lets go of its state now (api__closed). */
	http_server_stop(api->http);
	api_auth_stop(api);
	api_redfish_stop(api);
	json_decref(api->openapi);
	api_events_stop(api);
	free(api);
}
