/* The HTTPS REST API (docs/api.md): HTTP/1.1 parsed by libhttp-parser over
 * common/tls.c, JSON rendered by api_json.c, answers from the store.
 *
 * One request at a time per connection: when a request is complete the
 * parser is paused, the request is answered (store calls are synchronous on
 * the loop thread), and parsing resumes only once the answer has been handed
 * to the kernel.  Bytes a pipelining client sends meanwhile wait in a
 * bounded buffer. */
#include "controller/skyrootd/controller.h"

#include <errno.h>
#include <inttypes.h>
#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/util.h"
#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/store.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/guests.h"

#define API_URL_MAX 2048
#define API_HEADERS_MAX (16 * 1024)
#define API_BODY_MAX (1024 * 1024)
#define API_IDLE_MS (30 * 1000)
#define API_MAX_CONNS 256
#define API_BACKLOG 128
#define API_AUTH_MAX 512
#define API_EXPECT_MAX 32
#define API_HNAME_MAX 32
/* At most about one whole request may wait while an answer is written. */
#define API_PENDING_MAX (API_URL_MAX + API_HEADERS_MAX + API_BODY_MAX + 4096)
#define API_RESPONSE_HEAD_MAX 512

#define API_TOKEN_PREFIX "skt-"
#define API_TOKEN_SECRET_BYTES 32
#define API_TOKEN_ID_BYTES 4

struct api_conn;

struct api {
	struct controller *ctl;
	uv_tcp_t listener;
	SSL_CTX *ssl_ctx;           /* NULL: the plain-HTTP network-boot listener */
	bool boot_only;
	struct api_conn *conns;
	unsigned nconns;
};

enum api_header {
	API_H_OTHER,
	API_H_AUTHORIZATION,
	API_H_EXPECT,
	API_H_HOST,
};

struct api_conn {
	struct api *api;            /* NULL once api_stop() let go of it */
	struct sky_tls *tls;
	struct api_conn *prev, *next;
	http_parser parser;

	/* The request being read; reset by api_http__message_begin. */
	char url[API_URL_MAX + 1];
	size_t url_len;
	bool have_url;
	size_t header_bytes;
	char hname[API_HNAME_MAX];
	size_t hname_len;           /* API_HNAME_MAX + 1 = longer than any we look at */
	bool in_value;
	enum api_header hcur;
	char auth[API_AUTH_MAX];
	size_t auth_len;
	unsigned auth_count;
	bool auth_overflow;
	char expect[API_EXPECT_MAX];
	size_t expect_len;
	char host[256];
	size_t host_len;
	bool host_overflow;
	struct sky_buf body;
	int reject_status;          /* a callback stopped the parser: answer this */
	const char *reject_code;
	char reject_msg[API_JSON_ERR_MAX];
	struct store_upload *upload; /* POST /v1/images streams into the store */
	struct api_async *async;    /* a deferred answer is being worked out */
	char follow[DB_ID_MAX];     /* streaming this guest's console */
	struct guests *follow_guests;
	bool keep_alive;

	/* Between requests. */
	struct sky_buf pending;     /* bytes received while an answer is written */
	bool waiting;               /* an answer is in flight: parse nothing more */
	bool deferred;              /* the answer comes later (async) */
	bool closing;
};

/* What a route handler answers. */
struct api_reply {
	int status;
	json_t *body;               /* owned; NULL = out of memory (500) */
	const char *headers;        /* extra header lines, each ending in \r\n */
};

typedef void (*api_handler)(struct api_conn *c, const char *seg, struct api_reply *rep);

struct api_route {
	const char *path;           /* exact, or the prefix before one segment */
	bool segment;
	size_t segment_max;         /* bytes incl. NUL */
	const char *noun;           /* what the segment names, for errors */
	const char *placeholder;    /* how docs/api.md writes the segment */
	const char *allow;          /* "GET, DELETE" */
	const char *allow_header;   /* the same as a header line for 405 */
	const char *suffix;         /* after the segment, e.g. "/verify" */
	api_handler get, post, del;
};

static const char api_oom_body[] =
	"{\"error\": {\"code\": \"internal\", \"message\": \"the controller ran out of memory; see its log\"}}";

/* ---- answering ---- */

static void api_conn__close(struct api_conn *c, int err)
{
	if (c->closing)
		return;
	c->closing = true;
	sky_tls_close(c->tls, err);
}

static void api_conn__log(const struct api_conn *c, int status)
{
	char path[160];
	size_t n = 0;

	if (sky_log_get_level() < SKY_LOG_DEBUG)
		return;
	for (size_t i = 0; i < c->url_len && c->url[i] != '?' && n + 1 < sizeof(path); i++) {
		unsigned char ch = (unsigned char)c->url[i];
		path[n++] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	path[n] = '\0';
	log_debug("api: %s %s -> %d", c->have_url ? http_method_str(c->parser.method) : "-",
		  n ? path : "-", status);
}

/* Send one answer; body is consumed.  The connection stays open for the
 * next request only when the client asked for keep-alive and close is
 * false. */
static void api_conn__respond(struct api_conn *c, int status, json_t *body, const char *headers,
			      bool close)
{
	char head[API_RESPONSE_HEAD_MAX];
	const char *text;
	char *dumped = NULL;
	struct sky_buf out;
	size_t text_len;
	int n, r;

	if (body)
		dumped = json_dumps(body, JSON_PRESERVE_ORDER);
	json_decref(body);
	if (dumped) {
		text = dumped;
	} else {
		status = 500;
		headers = NULL;
		text = api_oom_body;
	}
	text_len = strlen(text);
	close = close || !c->keep_alive;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "Connection: %s\r\n"
		     "%s"
		     "\r\n",
		     status, http_status_str((enum http_status)status), text_len + 1,
		     close ? "close" : "keep-alive", headers ? headers : "");
	api_conn__log(c, status);

	sky_buf_init(&out, sizeof(head) + text_len + 1);
	r = n > 0 && (size_t)n < sizeof(head) ? 0 : -EOVERFLOW;
	if (r == 0)
		r = sky_buf_append(&out, head, (size_t)n);
	/* An answer to HEAD has the headers of the body, not the body. */
	if (r == 0 && !(c->have_url && c->parser.method == HTTP_HEAD)) {
		r = sky_buf_append(&out, text, text_len);
		if (r == 0)
			r = sky_buf_append(&out, "\n", 1);
	}
	if (r == 0)
		r = sky_tls_write(c->tls, out.data, out.len);
	/* A token's secret passes through here once; leave no copy behind. */
	if (out.data)
		OPENSSL_cleanse(out.data, out.len);
	sky_buf_free(&out);
	if (dumped) {
		OPENSSL_cleanse(dumped, text_len);
		free(dumped);
	}
	if (r < 0) {
		log_warn("api: cannot send an answer (%s); closing the connection", strerror(-r));
		c->closing = true;
		sky_tls_abort(c->tls, r);
		return;
	}
	if (close)
		api_conn__close(c, 0);
	else
		c->waiting = true;
}

static void api_reply__error(struct api_reply *rep, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void api_reply__error(struct api_reply *rep, int status, const char *code, const char *fmt, ...)
{
	char msg[API_JSON_ERR_MAX * 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(rep->body);
	rep->status = status;
	rep->body = api_json_error(code, "%s", msg);
}

static void api_reply__internal(struct api_reply *rep, int err, const char *what)
{
	log_error("api: cannot %s: %s", what, strerror(-err));
	api_reply__error(rep, 500, "internal", "the controller could not %s; see its log", what);
}

static void api_reply__ok(struct api_reply *rep, int status, json_t *body)
{
	json_decref(rep->body);
	rep->status = status;
	rep->body = body;
}

/* ---- boards ---- */

static json_t *api_board__render(struct controller *ctl, const struct db_board *b)
{
	int64_t seen = 0;
	bool online = ctl->agents && agentlink_board_online(ctl->agents, b->id, &seen);
	json_t *o = api_json_board(b, online, online ? seen : b->last_seen);

	if (o && api_json_board_images(o, online ? agentlink_board_images(ctl->agents, b->id) : NULL) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

struct api_board_ctx {
	struct controller *ctl;
	json_t *json;               /* the array (list) or the object (get) */
	char id[DB_ID_MAX];
	char name[DB_NAME_MAX];
};

static int api_board__list_cb(void *ctx, const struct db_board *b)
{
	struct api_board_ctx *x = ctx;

	if (json_array_append_new(x->json, api_board__render(x->ctl, b)) < 0)
		return -ENOMEM;
	return 0;
}

static void api__boards_list(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct api_board_ctx x = { .ctl = c->api->ctl, .json = json_array() };
	int r;

	(void)seg;
	if (!x.json)
		return;
	r = db_board_list(x.ctl->db, api_board__list_cb, &x);
	if (r == 0)
		r = api_json_sort_by_name(x.json);
	if (r < 0) {
		json_decref(x.json);
		api_reply__internal(rep, r, "list the boards");
		return;
	}
	api_reply__ok(rep, 200, json_pack("{s:o}", "boards", x.json));
}

static int api_board__get_cb(void *ctx, const struct db_board *b)
{
	struct api_board_ctx *x = ctx;

	x->json = api_board__render(x->ctl, b);
	return x->json ? 0 : -ENOMEM;
}

static void api_reply__no_board(struct api_reply *rep, const char *name)
{
	api_reply__error(rep, 404, "not_found", "no board named '%s'; see 'skyctl board list'", name);
}

static void api__board_get(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct api_board_ctx x = { .ctl = c->api->ctl };
	int r = db_board_get(x.ctl->db, seg, api_board__get_cb, &x);

	if (r == -ENOENT) {
		json_decref(x.json);
		api_reply__no_board(rep, seg);
		return;
	}
	if (r < 0) {
		json_decref(x.json);
		api_reply__internal(rep, r, "read the board");
		return;
	}
	api_reply__ok(rep, 200, x.json);
}

static int api_board__id_cb(void *ctx, const struct db_board *b)
{
	struct api_board_ctx *x = ctx;

	snprintf(x->id, sizeof(x->id), "%.*s", (int)strnlen(b->id, sizeof(b->id)), b->id);
	snprintf(x->name, sizeof(x->name), "%.*s", (int)strnlen(b->name, sizeof(b->name)), b->name);
	return 0;
}

static void api__board_delete(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct api_board_ctx x = { .ctl = c->api->ctl };
	int r = db_board_get(x.ctl->db, seg, api_board__id_cb, &x);

	if (r == 0)
		r = db_board_delete(x.ctl->db, x.id);
	if (r == -ENOENT) {
		api_reply__no_board(rep, seg);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "delete the board");
		return;
	}
	/* The delete is committed: the board's certificates are revoked.  Now
	 * end its session so it cannot keep talking on the old one. */
	if (x.ctl->agents)
		agentlink_board_kick(x.ctl->agents, x.id);
	log_info("api: board %s ('%s') deleted; its certificates are revoked", x.id, x.name);
	api_reply__ok(rep, 200, json_pack("{s:s}", "deleted", x.id));
}

/* ---- tokens ---- */

static void api__tokens_create(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct controller *ctl = c->api->ctl;
	struct api_token_request req;
	char err[API_JSON_ERR_MAX];
	uint8_t raw[API_TOKEN_SECRET_BYTES], hash[32];
	char secret[sizeof(API_TOKEN_PREFIX) + 2 * API_TOKEN_SECRET_BYTES];
	char expires[32];
	struct db_token t;
	int r;

	(void)seg;
	if (api_json_parse_token_request(c->body.data, c->body.len, &req, err, sizeof(err)) < 0) {
		api_reply__error(rep, 400, "bad_request", "%s", err);
		return;
	}
	r = sky_random(raw, sizeof(raw));
	if (r < 0) {
		api_reply__internal(rep, r, "get random bytes for a token");
		return;
	}
	memcpy(secret, API_TOKEN_PREFIX, strlen(API_TOKEN_PREFIX));
	sky_hex(raw, sizeof(raw), secret + strlen(API_TOKEN_PREFIX));
	OPENSSL_cleanse(raw, sizeof(raw));
	/* The store keeps only the hash of the whole string a board presents. */
	sky_sha256(secret, strlen(secret), hash);

	memset(&t, 0, sizeof(t));
	t.created_at = sky_unix_now();
	t.expires_at = t.created_at + req.ttl_seconds;
	t.uses = req.uses;
	t.uses_left = req.uses;
	t.revoked = false;
	/* 32-bit ids: retry the rare collision with a fresh one. */
	for (int attempt = 0; attempt < 3; attempt++) {
		r = db_new_id("tok-", API_TOKEN_ID_BYTES, t.id, sizeof(t.id));
		if (r < 0)
			break;
		r = db_token_insert(ctl->db, &t, hash);
		if (r != -EEXIST)
			break;
	}
	if (r < 0) {
		OPENSSL_cleanse(secret, sizeof(secret));
		api_reply__internal(rep, r, "store the new token");
		return;
	}
	sky_fmt_time(t.expires_at, expires, sizeof(expires));
	log_info("api: token %s created (%u use%s, expires %s)", t.id, t.uses, t.uses == 1 ? "" : "s",
		 expires);
	api_reply__ok(rep, 201, api_json_token_created(&t, secret, ctl->ca_pin_str, ctl->advertise));
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

static void api__tokens_list(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct api_token_ctx x = { .array = json_array(), .now = sky_unix_now() };
	int r;

	(void)seg;
	if (!x.array)
		return;
	r = db_token_list(c->api->ctl->db, api_token__list_cb, &x);
	if (r < 0) {
		json_decref(x.array);
		api_reply__internal(rep, r, "list the tokens");
		return;
	}
	api_reply__ok(rep, 200, json_pack("{s:o}", "tokens", x.array));
}

static void api__token_revoke(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	int r = db_token_revoke(c->api->ctl->db, seg);

	if (r == -ENOENT) {
		api_reply__error(rep, 404, "not_found", "no token '%s'; see 'skyctl token list'", seg);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "revoke the token");
		return;
	}
	log_info("api: token %s revoked", seg);
	api_reply__ok(rep, 200, json_pack("{s:s}", "revoked", seg));
}

/* ---- images ---- */

static void api_reply__no_image(struct api_reply *rep, const char *name)
{
	api_reply__error(rep, 404, "not_found", "no image named '%s'; see 'skyctl image list'", name);
}

static void api__images_upload(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct store_image img;
	struct store_upload *up = c->upload;
	int r;

	(void)seg;
	c->upload = NULL;
	if (!up) {
		api_reply__error(rep, 400, "bad_request", "POST /v1/images?name=NAME&kind=KIND with the image as the body");
		return;
	}
	r = store_upload_commit(up, &img);
	if (r == -EPIPE) {
		api_reply__error(rep, 400, "bad_request", "the body ended before its Content-Length; nothing was stored");
		return;
	}
	if (r == -ENOSPC) {
		api_reply__error(rep, 507, "insufficient_storage",
				 "the controller's state folder ran out of space; nothing was stored");
		return;
	}
	if (r == -EEXIST) {
		api_reply__error(rep, 409, "conflict", "an image with that name appeared meanwhile; nothing was stored");
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "store the image");
		return;
	}
	log_info("api: image %s '%s' stored: %" PRIu64 " bytes in %u chunks", img.id, img.name, img.size, img.chunks);
	api_reply__ok(rep, 201, api_json_image(&img));
}

/* Answer {"key": arr} for a list r filled, or its error. */
static void api_reply__list(struct api_reply *rep, const char *key, const char *what, int r, json_t *arr)
{
	if (r < 0) {
		json_decref(arr);
		api_reply__internal(rep, r, what);
		return;
	}
	api_reply__ok(rep, 200, json_pack("{s:o}", key, arr));
}

static int api_image__list_cb(void *ctx, const struct store_image *img)
{
	return json_array_append_new(ctx, api_json_image(img)) < 0 ? -ENOMEM : 0;
}

static void api__images_list(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	json_t *arr = json_array();
	(void)seg;
	if (arr)
		api_reply__list(rep, "images", "list the images",
				store_image_list(c->api->ctl->store, api_image__list_cb, arr), arr);
}

static void api__image_get(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct store_image img;
	int r = store_image_get(c->api->ctl->store, seg, &img);
	if (r == -ENOENT)
		api_reply__no_image(rep, seg);
	else if (r < 0)
		api_reply__internal(rep, r, "read the image");
	else
		api_reply__ok(rep, 200, api_json_image(&img));
}

static void api__image_delete(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct store_image img;
	int r = store_image_get(c->api->ctl->store, seg, &img);
	if (r == 0) {
		r = guests_image_in_use(c->api->ctl->guests, img.id);
		if (r > 0) {
			api_reply__error(rep, 409, "conflict",
					 "image '%s' is used by a guest; delete the guest first (see 'skyctl guest list')",
					 img.name);
			return;
		}
	}
	if (r == 0)
		r = store_image_delete(c->api->ctl->store, img.id);
	if (r == -ENOENT) {
		api_reply__no_image(rep, seg);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "delete the image");
		return;
	}
	log_info("api: image %s '%s' deleted", img.id, img.name);
	api_reply__ok(rep, 200, json_pack("{s:s}", "deleted", img.id));
}

/* A deferred answer: work in a worker thread, answer from the loop. */
struct api_async {
	uv_work_t work;
	struct api_conn *c;         /* NULL once the client went away */
	char db_path[4096];
	char image_id[DB_ID_MAX];
	int result;
	uint32_t chunks;
	json_t *bad;
};

static void api_verify__bad(void *ctx, uint32_t index, const uint8_t digest[32])
{
	struct api_async *a = ctx;
	char hex[65];
	sky_hex(digest, 32, hex);
	json_array_append_new(a->bad, json_pack("{s:I, s:s}", "index", (json_int_t)index, "sha256", hex));
}

static void api_verify__work(uv_work_t *w)
{
	struct api_async *a = w->data;
	a->result = store_verify(a->db_path, a->image_id, &a->chunks, api_verify__bad, a);
}

static void api_verify__done(uv_work_t *w, int status)
{
	struct api_async *a = w->data;
	struct api_conn *c = a->c;

	if (c) {
		c->async = NULL;
		c->deferred = false;
		if (status < 0 || a->result < 0) {
			log_error("api: verify of image %s failed: %s", a->image_id,
				  strerror(status < 0 ? -status : -a->result));
			api_conn__respond(c, 500, api_json_error("internal", "the controller could not verify the image; see its log"),
					  NULL, false);
		} else {
			if (a->result > 0)
				log_error("api: image %s: %d of %u chunks are corrupt in the store", a->image_id,
					  a->result, a->chunks);
			json_t *body = json_pack("{s:s, s:b, s:I, s:O}", "id", a->image_id, "ok", a->result == 0,
						 "chunks", (json_int_t)a->chunks, "bad_chunks", a->bad);
			api_conn__respond(c, 200, body, NULL, false);
		}
	}
	json_decref(a->bad);
	free(a);
}

static void api__image_verify(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct controller *ctl = c->api->ctl;
	struct store_image img;
	struct api_async *a;
	int r = store_image_get(ctl->store, seg, &img);

	if (r == -ENOENT) {
		api_reply__no_image(rep, seg);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "read the image");
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a || !(a->bad = json_array())) {
		free(a);
		api_reply__internal(rep, -ENOMEM, "verify the image");
		return;
	}
	a->c = c;
	snprintf(a->db_path, sizeof(a->db_path), "%s", ctl->db_path);
	snprintf(a->image_id, sizeof(a->image_id), "%s", img.id);
	a->work.data = a;
	r = uv_queue_work(ctl->loop, &a->work, api_verify__work, api_verify__done);
	if (r < 0) {
		json_decref(a->bad);
		free(a);
		api_reply__internal(rep, r, "verify the image");
		return;
	}
	c->async = a;
	rep->status = 0; /* answered by api_verify__done */
}

static void api__board_fetch(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct api_board_ctx x = { .ctl = c->api->ctl };
	struct store_image img;
	json_error_t jerr;
	json_t *body = json_loadb((const char *)c->body.data, c->body.len, 0, &jerr);
	const char *image = body ? json_string_value(json_object_get(body, "image")) : NULL;
	int r;

	if (!image) {
		json_decref(body);
		api_reply__error(rep, 400, "bad_request", "send {\"image\": \"<image id or name>\"}");
		return;
	}
	r = db_board_get(x.ctl->db, seg, api_board__id_cb, &x);
	if (r == -ENOENT) {
		json_decref(body);
		api_reply__no_board(rep, seg);
		return;
	}
	r = r < 0 ? r : store_image_get(x.ctl->store, image, &img);
	if (r == -ENOENT) {
		api_reply__no_image(rep, image);
		json_decref(body);
		return;
	}
	json_decref(body);
	if (r == 0)
		r = agentlink_board_fetch(x.ctl->agents, x.id, img.id);
	if (r == -ENOTCONN) {
		api_reply__error(rep, 409, "conflict", "board '%s' is offline; it can fetch once it is back", x.name);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "ask the board to fetch the image");
		return;
	}
	api_reply__ok(rep, 202, json_pack("{s:s, s:s}", "board", x.id, "image", img.id));
}

/* ---- network boot ----
 *
 * Firmware that boots from the network (iPXE) fetches a script, then the
 * kernel and initrd, over plain HTTP: it cannot check our CA.  The script
 * carries the board's command line with an enrollment token; the CA pin in
 * it still protects the board from a controller that is not ours.  The
 * files are the public firmware image; nothing here needs the admin token. */

static int api_query__get(const char *q, size_t qlen, const char *key, char *out, size_t outlen);

/* Answer with bytes that are not JSON.  Consumes nothing; copies data. */
static void api_conn__respond_raw(struct api_conn *c, int status, const char *type, const void *data, size_t len)
{
	char head[API_RESPONSE_HEAD_MAX];
	bool close = !c->keep_alive;
	int n, r;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "Connection: %s\r\n"
		     "\r\n",
		     status, http_status_str((enum http_status)status), type, len, close ? "close" : "keep-alive");
	api_conn__log(c, status);
	r = sky_tls_write(c->tls, head, (size_t)n);
	if (r == 0 && len && !(c->have_url && c->parser.method == HTTP_HEAD))
		r = sky_tls_write(c->tls, data, len);
	if (r < 0) {
		c->closing = true;
		sky_tls_abort(c->tls, r);
		return;
	}
	if (close)
		api_conn__close(c, 0);
	else
		c->waiting = true;
}

#define API_BOOT_FILE_MAX (256u << 20)
#define API_BOOT_DEFAULT_CMDLINE "console=ttyS0 intel_iommu=on iommu=pt panic=-1"

static void api_boot__file(struct api_conn *c, const char *name, struct api_reply *rep)
{
	struct controller *ctl = c->api->ctl;
	char path[4200];
	char *data = NULL;
	size_t len = 0;
	int r;

	if (!ctl->opt.firmware_dir) {
		api_reply__error(rep, 404, "not_found",
				 "this controller serves no firmware: start skyrootd with --firmware DIR "
				 "(the output of fwimage/build.sh)");
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", ctl->opt.firmware_dir, name);
	r = sky_read_file(path, API_BOOT_FILE_MAX, &data, &len);
	if (r < 0) {
		log_error("api: cannot read %s for network boot: %s", path, strerror(-r));
		api_reply__error(rep, 404, "not_found", "the firmware's %s is missing on the controller; see its log",
				 name);
		return;
	}
	api_conn__respond_raw(c, 200, "application/octet-stream", data, len);
	free(data);
	rep->status = -1; /* answered */
}

static void api__boot_vmlinuz(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	(void)seg;
	api_boot__file(c, "vmlinuz", rep);
}

static void api__boot_initrd(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	(void)seg;
	api_boot__file(c, "initrd.img", rep);
}

static void api__boot_ipxe(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct controller *ctl = c->api->ctl;
	struct http_parser_url u;
	const char *query = NULL;
	size_t qlen = 0;
	char token[160], host[256], cmdline[1024] = API_BOOT_DEFAULT_CMDLINE, script[4096];
	char path[4200], *extra = NULL;
	uint8_t hash[32];
	int r;

	(void)seg;
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, 0, &u) == 0 && (u.field_set & (1u << UF_QUERY))) {
		query = c->url + u.field_data[UF_QUERY].off;
		qlen = u.field_data[UF_QUERY].len;
	}
	if (api_query__get(query, qlen, "token", token, sizeof(token)) < 0) {
		api_reply__error(rep, 400, "bad_request",
				 "GET /boot/ipxe?token=TOKEN with an enrollment token from 'skyctl token create'");
		return;
	}
	sky_sha256(token, strlen(token), hash);
	r = db_token_check(ctl->db, hash, sky_unix_now());
	if (r < 0) {
		api_reply__error(rep, 403, "forbidden",
				 "the enrollment token is unknown, expired, revoked or used up; create one with "
				 "'skyctl token create'");
		return;
	}
	/* The board reached us by the Host it asked for. */
	if (c->host_len == 0 || c->host_overflow || memchr(c->host, ' ', c->host_len)) {
		api_reply__error(rep, 400, "bad_request", "the request has no usable Host header");
		return;
	}
	snprintf(host, sizeof(host), "%.*s", (int)c->host_len, c->host);
	if (ctl->opt.firmware_dir) {
		snprintf(path, sizeof(path), "%s/cmdline", ctl->opt.firmware_dir);
		if (sky_read_file(path, 900, &extra, NULL) == 0) {
			extra[strcspn(extra, "\r\n")] = '\0';
			if (extra[0])
				snprintf(cmdline, sizeof(cmdline), "%s", extra);
			free(extra);
		}
	}
	int n = snprintf(script, sizeof(script),
			 "#!ipxe\n"
			 "echo Skyroot: network boot from http://%s\n"
			 "kernel http://%s/boot/vmlinuz initrd=initrd.img %s skyroot.controller=%s skyroot.token=%s skyroot.ca=%s\n"
			 "initrd http://%s/boot/initrd.img\n"
			 "boot\n",
			 host, host, cmdline, ctl->advertise, token, ctl->ca_pin_str, host);
	if (n < 0 || (size_t)n >= sizeof(script)) {
		api_reply__internal(rep, -ENAMETOOLONG, "write the boot script");
		return;
	}
	log_info("boot: iPXE script for a board at %s", host);
	api_conn__respond_raw(c, 200, "text/plain", script, (size_t)n);
	OPENSSL_cleanse(script, sizeof(script));
	rep->status = -1;
}

/* ---- guests ---- */

static void api_reply__no_guest(struct api_reply *rep, const char *name)
{
	api_reply__error(rep, 404, "not_found", "no guest named '%s'; see 'skyctl guest list'", name);
}

static const char *api_json__opt_str(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

static void api__guests_create(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct guests *g = c->api->ctl->guests;
	struct guest_request req = {.vcpus = 1, .memory = 256ull << 20, .backend = "qemu"};
	struct guest gs;
	json_error_t jerr;
	json_t *body, *v;
	char err[API_JSON_ERR_MAX];
	bool bad = false;
	int r;

	(void)seg;
	body = json_loadb((const char *)c->body.data, c->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!body || !json_is_object(body)) {
		json_decref(body);
		api_reply__error(rep, 400, "bad_request", "the body must be a JSON object: %s",
				 body ? "it is not an object" : jerr.text);
		return;
	}
	req.name = api_json__opt_str(body, "name", &bad);
	req.board = api_json__opt_str(body, "board", &bad);
	req.kernel = api_json__opt_str(body, "kernel", &bad);
	req.initrd = api_json__opt_str(body, "initrd", &bad);
	req.disk = api_json__opt_str(body, "disk", &bad);
	req.cmdline = api_json__opt_str(body, "cmdline", &bad);
	if (api_json__opt_str(body, "backend", &bad))
		req.backend = api_json__opt_str(body, "backend", &bad);
	if ((v = json_object_get(body, "vcpus")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 64)
			bad = true;
		else
			req.vcpus = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(body, "memory_bytes")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			bad = true;
		else
			req.memory = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(body, "devices")) && !json_is_null(v)) {
		size_t i;
		json_t *d;
		if (!json_is_array(v) || json_array_size(v) > GUEST_MAX_DEVICES)
			bad = true;
		else
			json_array_foreach(v, i, d) {
				if (!json_is_string(d))
					bad = true;
				else
					req.devices[req.n_devices++] = json_string_value(d);
			}
	}
	if (bad) {
		json_decref(body);
		api_reply__error(rep, 400, "bad_request",
				 "bad guest: name, board, kernel, initrd, disk, cmdline, backend are strings; vcpus 1..64 "
				 "and memory_bytes are integers; devices is a list of at most %d PCI addresses",
				 GUEST_MAX_DEVICES);
		return;
	}
	err[0] = '\0';
	r = guests_create(g, &req, &gs, err, sizeof(err));
	json_decref(body);
	switch (r) {
	case 0:
		api_reply__ok(rep, 201, api_json_guest(&gs));
		return;
	case -EINVAL:
		api_reply__error(rep, 400, "bad_request", "%s", err);
		return;
	case -ENOENT:
		api_reply__error(rep, 404, "not_found", "%s", err);
		return;
	case -EEXIST:
	case -ENOSPC:
	case -EBUSY:
		api_reply__error(rep, 409, "conflict", "%s", err);
		return;
	default:
		api_reply__internal(rep, r, "create the guest");
	}
}

static int api_guest__list_cb(void *ctx, const struct guest *gs)
{
	return json_array_append_new(ctx, api_json_guest(gs)) < 0 ? -ENOMEM : 0;
}

static void api__guests_list(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	json_t *arr = json_array();
	(void)seg;
	if (arr)
		api_reply__list(rep, "guests", "list the guests",
				guests_list(c->api->ctl->guests, api_guest__list_cb, arr), arr);
}

static void api__guest_get(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct guest gs;
	int r = guests_get(c->api->ctl->guests, seg, &gs);
	if (r == -ENOENT)
		api_reply__no_guest(rep, seg);
	else if (r < 0)
		api_reply__internal(rep, r, "read the guest");
	else
		api_reply__ok(rep, 200, api_json_guest(&gs));
}

static void api_guest__desired(struct api_conn *c, const char *seg, const char *desired, struct api_reply *rep)
{
	struct guest gs;
	int r = guests_get(c->api->ctl->guests, seg, &gs);
	if (r == 0)
		r = guests_set_desired(c->api->ctl->guests, gs.id, desired, &gs);
	if (r == -ENOENT)
		api_reply__no_guest(rep, seg);
	else if (r < 0)
		api_reply__internal(rep, r, "change the guest");
	else
		api_reply__ok(rep, 200, api_json_guest(&gs));
}

static void api__guest_start(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	api_guest__desired(c, seg, "running", rep);
}

static void api__guest_stop(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	api_guest__desired(c, seg, "stopped", rep);
}

static void api__guest_delete(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct guest gs;
	int r = guests_get(c->api->ctl->guests, seg, &gs);
	if (r == 0)
		r = guests_delete(c->api->ctl->guests, gs.id);
	if (r == -ENOENT) {
		api_reply__no_guest(rep, seg);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "delete the guest");
		return;
	}
	log_info("api: guest %s '%s' deleted", gs.id, gs.name);
	api_reply__ok(rep, 200, json_pack("{s:s}", "deleted", gs.id));
}

static void api_console__chunk(void *ctx, const uint8_t *data, size_t len)
{
	struct api_conn *c = ctx;
	char head[24];
	int n;
	if (c->closing || len == 0)
		return;
	/* A follower that cannot keep up is dropped, not buffered forever. */
	if (sky_tls_queued(c->tls) > (4u << 20)) {
		api_conn__close(c, -ENOBUFS);
		return;
	}
	n = snprintf(head, sizeof(head), "%zx\r\n", len);
	if (sky_tls_write(c->tls, head, (size_t)n) < 0 || sky_tls_write(c->tls, data, len) < 0 ||
	    sky_tls_write(c->tls, "\r\n", 2) < 0)
		api_conn__close(c, -EIO);
}

static void api__guest_console(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct guests *g = c->api->ctl->guests;
	struct guest gs;
	struct http_parser_url u;
	char flag[8] = "";
	char *ring;
	size_t n;
	int r = guests_get(g, seg, &gs);

	if (r == -ENOENT) {
		api_reply__no_guest(rep, seg);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "read the guest");
		return;
	}
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, 0, &u) == 0 && (u.field_set & (1u << UF_QUERY)))
		api_query__get(c->url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len, "follow", flag,
			       sizeof(flag));
	ring = malloc(GUEST_CONSOLE_RING);
	if (!ring) {
		api_reply__internal(rep, -ENOMEM, "read the console");
		return;
	}
	n = guests_console_read(g, gs.id, ring, GUEST_CONSOLE_RING);
	if (strcmp(flag, "1") != 0 && strcmp(flag, "true") != 0) {
		api_conn__respond_raw(c, 200, "text/plain; charset=utf-8", ring, n);
		free(ring);
		rep->status = -1;
		return;
	}
	/* Follow: a chunked answer that stays open. */
	static const char head[] = "HTTP/1.1 200 OK\r\n"
				   "Content-Type: text/plain; charset=utf-8\r\n"
				   "Transfer-Encoding: chunked\r\n"
				   "Cache-Control: no-store\r\n"
				   "Connection: close\r\n"
				   "\r\n";
	api_conn__log(c, 200);
	r = sky_tls_write(c->tls, head, sizeof(head) - 1);
	if (r == 0 && n)
		api_console__chunk(c, (const uint8_t *)ring, n);
	free(ring);
	if (r == 0)
		r = guests_console_follow(g, gs.id, api_console__chunk, c);
	if (r < 0) {
		api_conn__close(c, r);
		rep->status = -1;
		return;
	}
	snprintf(c->follow, sizeof(c->follow), "%s", gs.id);
	c->follow_guests = g;
	c->keep_alive = false;
	c->deferred = true;
	c->waiting = true;
	sky_tls_set_idle_timeout(c->tls, 0);
	rep->status = -1;
}

static void api__board_boot(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	struct controller *ctl = c->api->ctl;
	struct api_board_ctx x = { .ctl = ctl };
	struct store_image kernel, initrd;
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__BareMetalBoot bm = SKYROOT__BARE_METAL_BOOT__INIT;
	Skyroot__SignedManifest km = SKYROOT__SIGNED_MANIFEST__INIT, im = SKYROOT__SIGNED_MANIFEST__INIT;
	json_error_t jerr;
	json_t *body = json_loadb((const char *)c->body.data, c->body.len, 0, &jerr);
	bool bad = false;
	const char *k = body ? api_json__opt_str(body, "kernel", &bad) : NULL;
	const char *i = body ? api_json__opt_str(body, "initrd", &bad) : NULL;
	const char *cmdline = body ? api_json__opt_str(body, "cmdline", &bad) : NULL;
	int r;

	if (!k || bad || (cmdline && strlen(cmdline) >= GUEST_CMDLINE_MAX)) {
		json_decref(body);
		api_reply__error(rep, 400, "bad_request",
				 "send {\"kernel\": \"<image>\", \"initrd\": \"<image>\", \"cmdline\": \"...\"}; kernel is required");
		return;
	}
	r = db_board_get(ctl->db, seg, api_board__id_cb, &x);
	if (r == -ENOENT) {
		json_decref(body);
		api_reply__no_board(rep, seg);
		return;
	}
	if (r == 0) {
		r = store_image_get(ctl->store, k, &kernel);
		if (r == -ENOENT) {
			api_reply__no_image(rep, k);
			json_decref(body);
			return;
		}
	}
	if (r == 0 && i) {
		r = store_image_get(ctl->store, i, &initrd);
		if (r == -ENOENT) {
			api_reply__no_image(rep, i);
			json_decref(body);
			return;
		}
	}
	if (r == 0)
		r = store_image_manifest(ctl->store, kernel.id, &km.manifest.data, &km.manifest.len,
					 &km.signature.data, &km.signature.len);
	if (r == 0 && i)
		r = store_image_manifest(ctl->store, initrd.id, &im.manifest.data, &im.manifest.len,
					 &im.signature.data, &im.signature.len);
	if (r == 0) {
		bm.kernel = &km;
		bm.initrd = i ? &im : NULL;
		bm.cmdline = (char *)(cmdline ? cmdline : "console=ttyS0");
		env.body_case = SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT;
		env.bare_metal_boot = &bm;
		r = agentlink_board_send(ctl->agents, x.id, &env);
	}
	free(km.manifest.data);
	free(km.signature.data);
	free(im.manifest.data);
	free(im.signature.data);
	json_decref(body);
	if (r == -ENOTCONN) {
		api_reply__error(rep, 409, "conflict", "board '%s' is offline", x.name);
		return;
	}
	if (r < 0) {
		api_reply__internal(rep, r, "send the boot command");
		return;
	}
	agentlink_board_baremetal(ctl->agents, x.id, true);
	log_info("api: board %s told to kexec image %s on bare metal", x.id, kernel.id);
	api_reply__ok(rep, 202, json_pack("{s:s}", "board", x.id));
}

/* ---- health ---- */

static void api__healthz(struct api_conn *c, const char *seg, struct api_reply *rep)
{
	(void)c;
	(void)seg;
	api_reply__ok(rep, 200, json_pack("{s:s, s:s}", "status", "ok", "version", SKY_VERSION));
}

/* ---- routing ---- */

#define API_ALLOW(methods) .allow = methods, .allow_header = "Allow: " methods "\r\n"

static const struct api_route api_routes[] = {
	{ .path = "/healthz", API_ALLOW("GET"), .get = api__healthz },
	{ .path = "/boot/ipxe", API_ALLOW("GET"), .get = api__boot_ipxe },
	{ .path = "/boot/vmlinuz", API_ALLOW("GET"), .get = api__boot_vmlinuz },
	{ .path = "/boot/initrd.img", API_ALLOW("GET"), .get = api__boot_initrd },
	{ .path = "/v1/boards", API_ALLOW("GET"), .get = api__boards_list },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_NAME_MAX,
	  .noun = "a board id or name", .placeholder = "{id|name}", API_ALLOW("GET, DELETE"),
	  .get = api__board_get, .del = api__board_delete },
	{ .path = "/v1/tokens", API_ALLOW("GET, POST"), .get = api__tokens_list,
	  .post = api__tokens_create },
	{ .path = "/v1/tokens/", .segment = true, .segment_max = DB_ID_MAX,
	  .noun = "a token id", .placeholder = "{id}", API_ALLOW("DELETE"),
	  .del = api__token_revoke },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_NAME_MAX, .suffix = "/fetch",
	  .noun = "a board id or name", .placeholder = "{id|name}/fetch", API_ALLOW("POST"),
	  .post = api__board_fetch },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_NAME_MAX, .suffix = "/boot",
	  .noun = "a board id or name", .placeholder = "{id|name}/boot", API_ALLOW("POST"),
	  .post = api__board_boot },
	{ .path = "/v1/guests", API_ALLOW("GET, POST"), .get = api__guests_list, .post = api__guests_create },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX,
	  .noun = "a guest id or name", .placeholder = "{id|name}", API_ALLOW("GET, DELETE"),
	  .get = api__guest_get, .del = api__guest_delete },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX, .suffix = "/start",
	  .noun = "a guest id or name", .placeholder = "{id|name}/start", API_ALLOW("POST"),
	  .post = api__guest_start },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX, .suffix = "/stop",
	  .noun = "a guest id or name", .placeholder = "{id|name}/stop", API_ALLOW("POST"),
	  .post = api__guest_stop },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX, .suffix = "/console",
	  .noun = "a guest id or name", .placeholder = "{id|name}/console", API_ALLOW("GET"),
	  .get = api__guest_console },
	{ .path = "/v1/images", API_ALLOW("GET, POST"), .get = api__images_list,
	  .post = api__images_upload },
	{ .path = "/v1/images/", .segment = true, .segment_max = STORE_NAME_MAX,
	  .noun = "an image id or name", .placeholder = "{id|name}", API_ALLOW("GET, DELETE"),
	  .get = api__image_get, .del = api__image_delete },
	{ .path = "/v1/images/", .segment = true, .segment_max = STORE_NAME_MAX, .suffix = "/verify",
	  .noun = "an image id or name", .placeholder = "{id|name}/verify", API_ALLOW("POST"),
	  .post = api__image_verify },
};

static bool api_conn__authorized(const struct api_conn *c)
{
	const char *v = c->auth;
	size_t n = c->auth_len;
	uint8_t hash[32];
	bool ok;

	if (c->auth_count != 1 || c->auth_overflow)
		return false;
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	/* RFC 7235: the scheme is case-insensitive, then at least one space. */
	if (n < 7 || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
		return false;
	v += 7;
	n -= 7;
	while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	if (n == 0)
		return false;
	sky_sha256(v, n, hash);
	ok = sky_memeq_ct(hash, c->api->ctl->admin_hash, sizeof(hash)) == 1;
	OPENSSL_cleanse(hash, sizeof(hash));
	return ok;
}

static bool api_path__is_v1(const char *path, size_t len)
{
	return len >= 3 && memcmp(path, "/v1", 3) == 0 && (len == 3 || path[3] == '/');
}

/* The route for path, and its segment (raw, still percent-encoded). */
static const struct api_route *api_route__find(const char *path, size_t len, const char **seg,
					       size_t *seg_len)
{
	for (size_t i = 0; i < SKY_ARRAY_SIZE(api_routes); i++) {
		const struct api_route *rt = &api_routes[i];
		size_t pl = strlen(rt->path);

		if (len < pl || memcmp(path, rt->path, pl) != 0)
			continue;
		if (!rt->segment) {
			if (len != pl)
				continue;
			*seg = NULL;
			*seg_len = 0;
			return rt;
		}
		size_t sl = rt->suffix ? strlen(rt->suffix) : 0;
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
	return NULL;
}

static void api_conn__dispatch(struct api_conn *c, struct api_reply *rep)
{
	struct http_parser_url u;
	const struct api_route *rt;
	const char *path, *raw_seg;
	size_t path_len, raw_len;
	char seg[DB_NAME_MAX > DB_ID_MAX ? DB_NAME_MAX : DB_ID_MAX];
	api_handler fn = NULL;
	int r;

	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1u << UF_PATH))) {
		api_reply__error(rep, 400, "bad_request",
				 "the request target must be a path such as /v1/boards");
		return;
	}
	path = c->url + u.field_data[UF_PATH].off;
	path_len = u.field_data[UF_PATH].len;

	/* The plain listener serves network boot and nothing else. */
	if (c->api->boot_only && !(path_len >= 6 && memcmp(path, "/boot/", 6) == 0)) {
		api_reply__error(rep, 404, "not_found",
				 "this port serves network boot only (/boot/ipxe, /boot/vmlinuz, /boot/initrd.img)");
		return;
	}
	/* Authenticate before telling anything about /v1, even what exists. */
	if (api_path__is_v1(path, path_len) && !api_conn__authorized(c)) {
		api_reply__error(rep, 401, "unauthorized",
				 c->auth_count == 0 ?
				 "this call needs 'Authorization: Bearer <admin token>'; the admin token is in the skyctl config that 'skyrootd init' wrote" :
				 "the bearer token is not the controller's admin token; use the one in the skyctl config that 'skyrootd init' wrote");
		rep->headers = "WWW-Authenticate: Bearer\r\n";
		return;
	}

	rt = api_route__find(path, path_len, &raw_seg, &raw_len);
	if (!rt) {
		api_reply__error(rep, 404, "not_found", "no such API route '%.*s'; see docs/api.md",
				 (int)(path_len > 128 ? 128 : path_len), path);
		return;
	}
	switch (c->parser.method) {
	case HTTP_GET:
		fn = rt->get;
		break;
	case HTTP_POST:
		fn = rt->post;
		break;
	case HTTP_DELETE:
		fn = rt->del;
		break;
	default:
		break;
	}
	if (!fn) {
		api_reply__error(rep, 405, "method_not_allowed", "%s is not allowed on %s%s; use %s",
				 http_method_str(c->parser.method), rt->path,
				 rt->segment ? rt->placeholder : "", rt->allow);
		rep->headers = rt->allow_header;
		return;
	}
	seg[0] = '\0';
	if (rt->segment) {
		r = api_json_decode_segment(raw_seg, raw_len, seg, rt->segment_max);
		if (r == -ENAMETOOLONG) {
			api_reply__error(rep, 404, "not_found",
					 "'%.*s' is too long to be %s (at most %zu bytes)",
					 (int)(raw_len > 80 ? 80 : raw_len), raw_seg, rt->noun,
					 rt->segment_max - 1);
			return;
		}
		if (r < 0) {
			api_reply__error(rep, 400, "bad_request",
					 "'%.*s' is not %s: it has a bad %%-escape, a '/' or a control character",
					 (int)(raw_len > 80 ? 80 : raw_len), raw_seg, rt->noun);
			return;
		}
	}
	fn(c, seg, rep);
}

static void api_conn__handle_request(struct api_conn *c)
{
	struct api_reply rep = { .status = 500 };

	/* We never switch protocols: after an Upgrade/CONNECT the rest of the
	 * stream is not HTTP, so answer and close. */
	if (c->parser.upgrade)
		c->keep_alive = false;
	api_conn__dispatch(c, &rep);
	sky_buf_free(&c->body);
	if (rep.status < 0) {
		json_decref(rep.body); /* answered already (raw bytes) */
		return;
	}
	if (rep.status == 0) {
		/* Answered later (api_async); read nothing more until then. */
		c->deferred = true;
		c->waiting = true;
		return;
	}
	api_conn__respond(c, rep.status, rep.body, rep.headers, false);
}

/* ---- HTTP parser callbacks ---- */

static int api_http__reject_code(struct api_conn *c, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int api_http__reject_code(struct api_conn *c, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->reject_msg, sizeof(c->reject_msg), fmt, ap);
	va_end(ap);
	c->reject_status = status;
	c->reject_code = code;
	return -1;
}

static int api_http__reject(struct api_conn *c, int status, const char *msg)
{
	return api_http__reject_code(c, status, status == 500 ? "internal" : "too_large", "%s", msg);
}

static int api_http__message_begin(http_parser *p)
{
	struct api_conn *c = p->data;

	c->url_len = 0;
	c->url[0] = '\0';
	c->have_url = false;
	c->header_bytes = 0;
	c->hname_len = 0;
	c->in_value = false;
	c->hcur = API_H_OTHER;
	OPENSSL_cleanse(c->auth, c->auth_len);
	c->auth_len = 0;
	c->auth_count = 0;
	c->auth_overflow = false;
	c->expect_len = 0;
	c->host_len = 0;
	c->host_overflow = false;
	sky_buf_reset(&c->body);
	c->reject_status = 0;
	c->reject_code = NULL;
	c->reject_msg[0] = '\0';
	return 0;
}

static int api_http__url(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = p->data;

	c->have_url = true;
	if (len > API_URL_MAX - c->url_len)
		return api_http__reject(c, 414, "the URL is longer than the 2 KiB limit");
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return 0;
}

static int api_http__count_header(struct api_conn *c, size_t len)
{
	if (len > API_HEADERS_MAX - c->header_bytes)
		return api_http__reject(c, 431, "the request headers are over the 16 KiB limit");
	c->header_bytes += len;
	return 0;
}

static int api_http__header_field(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = p->data;

	if (api_http__count_header(c, len) < 0)
		return -1;
	if (c->in_value) {
		/* A new header starts. */
		c->in_value = false;
		c->hname_len = 0;
		c->hcur = API_H_OTHER;
	}
	if (c->hname_len > API_HNAME_MAX || len > API_HNAME_MAX - c->hname_len) {
		c->hname_len = API_HNAME_MAX + 1;
		return 0;
	}
	memcpy(c->hname + c->hname_len, at, len);
	c->hname_len += len;
	return 0;
}

static bool api_http__name_is(const struct api_conn *c, const char *name)
{
	size_t n = strlen(name);
	return c->hname_len == n && strncasecmp(c->hname, name, n) == 0;
}

static void api_http__append(char *dst, size_t *dst_len, size_t max, const char *at, size_t len,
			     bool *overflow)
{
	if (len > max - *dst_len) {
		*overflow = true;
		return;
	}
	memcpy(dst + *dst_len, at, len);
	*dst_len += len;
}

static int api_http__header_value(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = p->data;
	bool expect_overflow = false;

	if (api_http__count_header(c, len) < 0)
		return -1;
	if (!c->in_value) {
		c->in_value = true;
		if (api_http__name_is(c, "authorization")) {
			c->hcur = API_H_AUTHORIZATION;
			c->auth_count++;
		} else if (api_http__name_is(c, "expect")) {
			c->hcur = API_H_EXPECT;
			c->expect_len = 0;
		} else if (api_http__name_is(c, "host")) {
			c->hcur = API_H_HOST;
			c->host_len = 0;
		} else {
			c->hcur = API_H_OTHER;
		}
	}
	switch (c->hcur) {
	case API_H_AUTHORIZATION:
		/* A second Authorization header makes the request unauthorized. */
		if (c->auth_count == 1)
			api_http__append(c->auth, &c->auth_len, sizeof(c->auth), at, len, &c->auth_overflow);
		break;
	case API_H_EXPECT:
		api_http__append(c->expect, &c->expect_len, sizeof(c->expect), at, len, &expect_overflow);
		break;
	case API_H_HOST:
		api_http__append(c->host, &c->host_len, sizeof(c->host), at, len, &c->host_overflow);
		break;
	case API_H_OTHER:
		break;
	}
	return 0;
}

/* POST /v1/images?name=..&kind=..: the body streams into the store. */
static bool api_upload__is_route(struct api_conn *c, const char **query, size_t *query_len)
{
	struct http_parser_url u;
	const char *path;
	size_t len;

	if (c->parser.method != HTTP_POST)
		return false;
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 || !(u.field_set & (1u << UF_PATH)))
		return false;
	path = c->url + u.field_data[UF_PATH].off;
	len = u.field_data[UF_PATH].len;
	if (len != strlen("/v1/images") || memcmp(path, "/v1/images", len) != 0)
		return false;
	*query = NULL;
	*query_len = 0;
	if (u.field_set & (1u << UF_QUERY)) {
		*query = c->url + u.field_data[UF_QUERY].off;
		*query_len = u.field_data[UF_QUERY].len;
	}
	return true;
}

/* The value of key in a query string, percent-decoded: 0, -ENOENT, -EINVAL. */
static int api_query__get(const char *q, size_t qlen, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);
	const char *end = q + qlen;
	while (q && q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - q) > klen && memcmp(q, key, klen) == 0 && q[klen] == '=')
			return api_json_decode_segment(q + klen + 1, (size_t)(stop - q - klen - 1), out, outlen) < 0 ?
				       -EINVAL : 0;
		q = amp ? amp + 1 : end;
	}
	return -ENOENT;
}

static int api_upload__start(struct api_conn *c, const char *query, size_t qlen)
{
	struct controller *ctl = c->api->ctl;
	http_parser *p = &c->parser;
	char name[STORE_NAME_MAX], kind[16] = "disk";
	uint64_t expected = UINT64_MAX;
	int r;

	if (!api_conn__authorized(c))
		return api_http__reject_code(c, 401, "unauthorized",
					     "this call needs 'Authorization: Bearer <admin token>'; the admin token is in the skyctl config that 'skyrootd init' wrote");
	r = api_query__get(query, qlen, "name", name, sizeof(name));
	if (r < 0)
		return api_http__reject_code(c, 400, "bad_request",
					     "give the image a name: POST /v1/images?name=NAME&kind=kernel|initrd|disk");
	r = api_query__get(query, qlen, "kind", kind, sizeof(kind));
	if (r == -EINVAL)
		return api_http__reject_code(c, 400, "bad_request", "kind must be kernel, initrd or disk");
	if (!(p->flags & F_CHUNKED)) {
		if (p->content_length == ULLONG_MAX)
			return api_http__reject_code(c, 400, "bad_request",
						     "send the image with Content-Length or chunked transfer encoding");
		expected = p->content_length;
	}
	r = store_upload_begin(ctl->store, name, kind, expected, &c->upload);
	switch (r) {
	case 0:
		log_info("api: upload of image '%s' (%s, %s) started", name, kind,
			 expected == UINT64_MAX ? "size unknown" : "size known");
		return 0;
	case -EINVAL:
		return api_http__reject_code(c, 400, "bad_request",
					     "bad image name '%s' or kind '%s': a name is 1-63 of A-Z a-z 0-9 . _ - "
					     "(not starting with '.', '-' or 'img-'); kind is kernel, initrd or disk",
					     name, kind);
	case -EEXIST:
		return api_http__reject_code(c, 409, "conflict",
					     "an image named '%s' exists or is being uploaded; pick another name "
					     "or delete it first", name);
	case -EFBIG:
		return api_http__reject_code(c, 413, "too_large",
					     "the image is over this controller's limit of %" PRIu64 " bytes (skyrootd --image-max)",
					     store_image_max(ctl->store));
	case -ENOSPC:
		return api_http__reject_code(c, 507, "insufficient_storage",
					     "not enough free space in the controller's state folder: the image needs "
					     "about %" PRIu64 " MiB, %" PRIu64 " MiB are free",
					     (uint64_t)(expected == UINT64_MAX ? 0 : (2 * expected + STORE_SPACE_MARGIN) >> 20),
					     store_free_space(ctl->store) >> 20);
	case -EBUSY:
		return api_http__reject_code(c, 503, "busy", "too many uploads at once (%d); try again shortly",
					     STORE_MAX_UPLOADS);
	default:
		log_error("api: cannot start an upload: %s", strerror(-r));
		return api_http__reject_code(c, 500, "internal", "the controller could not start the upload; see its log");
	}
}

static int api_http__headers_complete(http_parser *p)
{
	struct api_conn *c = p->data;
	bool has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
	const char *query;
	size_t qlen;

	if (api_upload__is_route(c, &query, &qlen)) {
		if (api_upload__start(c, query, qlen) < 0)
			return -1;
	} else if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX && p->content_length > API_BODY_MAX) {
		return api_http__reject(c, 413, "the request body is over the 1 MiB limit");
	}
	/* curl waits for this before it sends a larger body. */
	if (has_body && c->expect_len == strlen("100-continue") &&
	    strncasecmp(c->expect, "100-continue", c->expect_len) == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (sky_tls_write(c->tls, cont, sizeof(cont) - 1) < 0)
			return api_http__reject(c, 500, "the controller could not answer; see its log");
	}
	return 0;
}

static int api_http__body(http_parser *p, const char *at, size_t len)
{
	struct api_conn *c = p->data;
	int r;

	if (c->upload) {
		r = store_upload_write(c->upload, at, len);
		if (r == 0)
			return 0;
		if (r == -EFBIG)
			return api_http__reject_code(c, 413, "too_large",
						     "the image is over this controller's limit of %" PRIu64
						     " bytes (skyrootd --image-max) or longer than its Content-Length",
						     store_image_max(c->api->ctl->store));
		if (r == -ENOSPC)
			return api_http__reject_code(c, 507, "insufficient_storage",
						     "the controller's state folder ran out of space during the upload "
						     "(%" PRIu64 " MiB free); nothing was stored",
						     store_free_space(c->api->ctl->store) >> 20);
		log_error("api: upload failed: %s", strerror(-r));
		return api_http__reject_code(c, 500, "internal", "the upload failed in the store; see the controller's log");
	}
	r = sky_buf_append(&c->body, at, len);
	if (r == -ENOBUFS)
		return api_http__reject(c, 413, "the request body is over the 1 MiB limit");
	if (r < 0)
		return api_http__reject(c, 500, "the controller ran out of memory; see its log");
	return 0;
}

static int api_http__message_complete(http_parser *p)
{
	struct api_conn *c = p->data;

	c->keep_alive = http_should_keep_alive(p) != 0;
	/* Stop here: the request is answered before the next one is read. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings api_http_settings = {
	.on_message_begin = api_http__message_begin,
	.on_url = api_http__url,
	.on_header_field = api_http__header_field,
	.on_header_value = api_http__header_value,
	.on_headers_complete = api_http__headers_complete,
	.on_body = api_http__body,
	.on_message_complete = api_http__message_complete,
};

/* Feed bytes to the parser until one request has been answered, the input
 * ends, or the connection fails.  Returns how many bytes were used. */
static size_t api_conn__feed(struct api_conn *c, const uint8_t *data, size_t len)
{
	size_t n = http_parser_execute(&c->parser, &api_http_settings, (const char *)data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

	if (e == HPE_PAUSED) {
		http_parser_pause(&c->parser, 0);
		api_conn__handle_request(c);
		return n;
	}
	if (e != HPE_OK) {
		json_t *body;
		int status = c->reject_status ? c->reject_status : 400;

		if (c->upload) {
			store_upload_abort(c->upload);
			c->upload = NULL;
		}
		if (c->reject_status)
			body = api_json_error(c->reject_code, "%s", c->reject_msg);
		else
			body = api_json_error("bad_request", "malformed HTTP request: %s",
					      http_errno_description(e));
		c->keep_alive = false;
		sky_buf_free(&c->body);
		api_conn__respond(c, status, body, NULL, true);
		return len;
	}
	if (n != len) {
		/* Not paused and not failed yet short: nothing we can parse. */
		api_conn__close(c, -EPROTO);
		return len;
	}
	return n;
}

/* ---- connections ---- */

static void api_conn__stash(struct api_conn *c, const uint8_t *data, size_t len)
{
	int r = sky_buf_append(&c->pending, data, len);

	if (r < 0) {
		log_debug("api: a client sent more than one request ahead; closing its connection");
		c->closing = true;
		sky_tls_abort(c->tls, r);
	}
}

static void api_conn__on_data(struct sky_tls *t, const uint8_t *data, size_t len)
{
	struct api_conn *c = sky_tls_data(t);
	size_t n;

	if (c->closing)
		return;
	if (c->waiting) {
		api_conn__stash(c, data, len);
		return;
	}
	n = api_conn__feed(c, data, len);
	if (!c->closing && n < len)
		api_conn__stash(c, data + n, len - n);
}

static void api_conn__on_drain(struct sky_tls *t)
{
	struct api_conn *c = sky_tls_data(t);
	size_t n;

	if (c->closing || !c->waiting || c->deferred)
		return;
	c->waiting = false;
	if (c->pending.len == 0)
		return;
	n = api_conn__feed(c, c->pending.data, c->pending.len);
	if (c->closing)
		return;
	sky_buf_consume(&c->pending, n);
	if (c->pending.len == 0)
		sky_buf_free(&c->pending);
}

static void api_conn__unlink(struct api_conn *c)
{
	struct api *api = c->api;

	if (!api)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		api->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	api->nconns--;
	c->api = NULL;
}

static void api_conn__on_close(struct sky_tls *t, int err)
{
	struct api_conn *c = sky_tls_data(t);

	if (err < 0 && err != -ETIMEDOUT && err != -ECANCELED)
		log_debug("api: connection closed: %s", strerror(-err));
	api_conn__unlink(c);
	if (c->upload) {
		log_warn("api: upload interrupted after %" PRIu64 " bytes; nothing was stored",
			 store_upload_received(c->upload));
		store_upload_abort(c->upload);
		c->upload = NULL;
	}
	if (c->async)
		c->async->c = NULL;
	if (c->follow[0] && c->follow_guests)
		guests_console_unfollow(c->follow_guests, c->follow, c);
	OPENSSL_cleanse(c->auth, sizeof(c->auth));
	sky_buf_free(&c->body);
	sky_buf_free(&c->pending);
	free(c);
}

static const struct sky_tls_cbs api_conn_cbs = {
	.on_data = api_conn__on_data,
	.on_drain = api_conn__on_drain,
	.on_close = api_conn__on_close,
};

static void api__free_handle(uv_handle_t *h)
{
	free(h);
}

/* Over the connection limit: take the connection off the backlog and
 * close it, so the listener does not spin on it. */
static void api__refuse(uv_stream_t *server)
{
	uv_tcp_t *tcp = malloc(sizeof(*tcp));

	if (!tcp)
		return;
	if (uv_tcp_init(server->loop, tcp) < 0) {
		free(tcp);
		return;
	}
	uv_accept(server, (uv_stream_t *)tcp);
	uv_close((uv_handle_t *)tcp, api__free_handle);
}

static void api__on_connection(uv_stream_t *server, int status)
{
	struct api *api = server->data;
	struct api_conn *c;
	int r;

	if (status < 0) {
		log_warn("api: accept failed: %s", uv_strerror(status));
		return;
	}
	if (api->nconns >= API_MAX_CONNS) {
		log_warn("api: %u connections open, the limit; refusing another", api->nconns);
		api__refuse(server);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		api__refuse(server);
		return;
	}
	sky_buf_init(&c->body, API_BODY_MAX);
	sky_buf_init(&c->pending, API_PENDING_MAX);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	r = sky_tls_new(server->loop, api->ssl_ctx, SKY_TLS_SERVER, &api_conn_cbs, c, &c->tls);
	if (r < 0) {
		free(c);
		api__refuse(server);
		return;
	}
	/* Linked first: from here on, on_close frees it. */
	c->api = api;
	c->next = api->conns;
	if (api->conns)
		api->conns->prev = c;
	api->conns = c;
	api->nconns++;

	r = uv_accept(server, sky_tls_stream(c->tls));
	if (r == 0) {
		sky_tls_set_idle_timeout(c->tls, API_IDLE_MS);
		r = sky_tls_start(c->tls);
	}
	if (r < 0) {
		log_warn("api: cannot start a connection: %s", strerror(-r));
		c->closing = true;
		sky_tls_abort(c->tls, r);
	}
}

/* ---- start / stop ---- */

/* Boards and curl both speak HTTP/1.1 only here: say so in ALPN. */
static int api__alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char http11[] = "\x08http/1.1";
	unsigned char *sel = NULL;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, http11, sizeof(http11) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int api__ssl_ctx_new(struct controller *ctl, SSL_CTX **out)
{
	SSL_CTX *ctx = sky_tls_ctx_new(SKY_TLS_SERVER, TLS1_2_VERSION);
	int r = -EINVAL;

	if (!ctx)
		return -ENOMEM;
	if (!ctl->server_cert || !ctl->server_key || !ctl->ca_cert) {
		log_error("api: the server certificate, key or CA is not loaded");
		goto fail;
	}
	if (SSL_CTX_use_certificate(ctx, ctl->server_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, ctl->server_key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		log_error("api: the server key does not fit the server certificate in %s; "
			  "re-create the state folder with 'skyrootd init'", ctl->opt.state_dir ? ctl->opt.state_dir : "the state folder");
		goto fail;
	}
	/* Send the CA along so clients can check the chain against the pin. */
	X509_up_ref(ctl->ca_cert);
	if (SSL_CTX_add_extra_chain_cert(ctx, ctl->ca_cert) != 1) {
		X509_free(ctl->ca_cert);
		r = -ENOMEM;
		goto fail;
	}
	/* API clients authenticate with the bearer token, not a certificate. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_alpn_select_cb(ctx, api__alpn_select, NULL);
	*out = ctx;
	return 0;

fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return r;
}

static void api__on_listener_closed(uv_handle_t *h)
{
	struct api *api = h->data;

	SSL_CTX_free(api->ssl_ctx);
	free(api);
}

static int api__start(struct controller *ctl, const struct sockaddr *addr, bool boot_only, struct api **out)
{
	struct api *api;
	int r;

	if (*out)
		return -EALREADY;
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->ctl = ctl;
	api->boot_only = boot_only;
	r = boot_only ? 0 : api__ssl_ctx_new(ctl, &api->ssl_ctx);
	if (r < 0)
		goto fail_free;
	r = uv_tcp_init(ctl->loop, &api->listener);
	if (r < 0)
		goto fail_ctx;
	api->listener.data = api;
	r = uv_tcp_bind(&api->listener, addr, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&api->listener, API_BACKLOG, api__on_connection);
	if (r < 0)
		goto fail_close;
	*out = api;
	return 0;

fail_close:
	/* The close callback frees the context and api. */
	uv_close((uv_handle_t *)&api->listener, api__on_listener_closed);
	return r;
fail_ctx:
	SSL_CTX_free(api->ssl_ctx);
fail_free:
	free(api);
	return r;
}

int api_start(struct controller *ctl, const struct sockaddr *addr)
{
	return api__start(ctl, addr, false, &ctl->api);
}

int api_start_boot(struct controller *ctl, const struct sockaddr *addr)
{
	return api__start(ctl, addr, true, &ctl->boot);
}

void api_stop(struct api *api)
{
	struct api_conn *c, *next;

	if (!api)
		return;
	if (api->ctl->api == api)
		api->ctl->api = NULL;
	if (api->ctl->boot == api)
		api->ctl->boot = NULL;
	for (c = api->conns; c; c = next) {
		next = c->next;
		c->api = NULL;
		c->prev = c->next = NULL;
		/* Also those already closing: a stalled write must not keep
		 * the loop alive. */
		c->closing = true;
		sky_tls_abort(c->tls, -ECANCELED);
	}
	api->conns = NULL;
	api->nconns = 0;
	uv_close((uv_handle_t *)&api->listener, api__on_listener_closed);
}
