/* The REST API's insides (docs/api.md), shared by its files:
 *   api.c          the route table, authentication, dispatch (over http.c)
 *   api_boards.c   /v1/boards...       api_tokens.c  /v1/tokens...
 *   api_images.c   /v1/images...       api_guests.c  /v1/guests...
 *   api_boot.c     /boot/... (network boot) and /healthz
 *   api_metrics.c  /metrics (Prometheus) and /readyz
 *   api_creds.c    /v1/credentials... and /v1/audit (api_creds_json.c: their bodies)
 *   api_pending.c  /v1/pending..., /v1/boards/{id}/accept|reject, /v1/expectations...
 *   api_events.c   /v1/events: the event log (events.h), listed and watched
 *   api_networks.c /v1/networks...
 *   api_firmware.c /v1/firmware... (the measured-boot gate's allowed firmware)
 *   api_redfish.c  /redfish/v1 (Redfish, over api_redfish_parse.c)
 *   api_meta.c     PATCH of names, labels, descriptions; etags
 *   api_idem.c     Idempotency-Key: answers kept for a repeat of a POST
 *   api_list.c     one page of a list: query, filters, order, page token
 *   api_openapi.c  /v1/openapi.json, made from the route tables and api.proto
 *   api_reply.c    answers and lookups every resource uses; JSON or protobuf
 *                  (over pbjson.c) as the client asks (the bottom)
 * Calls go downwards only: api.c -> api_<resource>.c -> api_list.c ->
 * api_reply.c. */
#ifndef SKY_CONTROLLER_API_PRIV_H
#define SKY_CONTROLLER_API_PRIV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/audit.h"
#include "controller/skyrootd/creds.h"
#include "controller/skyrootd/api_meta.h"
#include "controller/skyrootd/api_query.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/http.h"
#include "controller/skyrootd/metrics.h"
#include "controller/skyrootd/pbjson.h"
#include "api.pb-c.h"

struct store_upload;
struct api_async;
struct api_auth;
struct api_auth_wait;
struct api_boot_dl;
struct api_redfish;
struct api_watch;

struct api {
	struct controller *ctl;
	struct http_server *http;
	struct api_auth *auth;      /* wrong-token throttling (api_auth.c) */
	struct api_redfish *redfish; /* Redfish sessions and boot overrides (api_redfish.c) */
	bool boot_only;             /* the plain listener: /boot/ only */
	uint8_t page_key[API_PAGE_KEY_LEN]; /* authenticates page tokens (api_list.c) */
	/* Every JSON answer is checked against its message (the environment
	 * variable SKYROOTD_API_STRICT=1; the tests set it): one that does not
	 * fit is logged and answered 500.  The drift guard of shapes. */
	bool strict;
	const struct api_route *const *tables; /* every route (api.c), for api_openapi.c */
	size_t n_tables;
	/* GET /v1/openapi.json's document, made on the first request (the
	 * tables and api.proto do not change while running); shared by every
	 * answer, so nothing may change it (it has no "id" nor "error"). */
	json_t *openapi;
	/* The newest event a watch sent, as a watch's item: [0] a JSON line,
	 * [1] length-delimited protobuf (api_events.c): made once for every
	 * watcher that wants it. */
	struct api_watch_item {
		int64_t rv;
		char *data;           /* NULL: none */
		size_t len;
	} watch_item[2];
};

/* What a connection holds across calls (http_conn_user), made on need. */
struct api_conn_state {
	struct store_upload *upload;  /* POST /v1/images streams into the store */
	struct api_async *async;      /* a deferred answer is being worked out */
	char follow[DB_ID_MAX];       /* streaming this guest's console */
	struct api_boot_dl *boot;     /* a firmware file being sent */
	struct api_auth_wait *auth_wait; /* a delayed 401 */
	struct api_watch *watch;      /* watching the events (api_events.c) */
	unsigned auth_fails;          /* wrong tokens on this connection */
	/* The request being answered, for skyroot_api_requests_total. */
	char metric_route[METRICS_ROUTE_LEN];
	uint64_t metric_t0;           /* uv_hrtime() at its headers; 0 = none */
	/* The request being answered, for the audit log (api.c); its id is
	 * the HTTP layer's (http_conn_request_id). */
	char credential[DB_NAME_MAX]; /* who, once authenticated; "" = unknown */
	/* The encodings of the request being answered (api_reply_negotiate). */
	const ProtobufCMessageDescriptor *answer_msg; /* its route's answer; NULL: none */
	bool pb_answer;               /* answer (errors too) in protobuf */
	bool pb_request;              /* the body is protobuf (Content-Type) */
	bool strict;                  /* struct api's */
	bool encoded;                 /* this request's answer is of api.proto (not Redfish, not the boot port) */
	int media_status;             /* 406 or 415 when it asks for what is not served; 0: fine */
	char media_msg[256];          /* and why */
	char method[16];              /* "" = no request to audit */
	char path[AUDIT_PATH_MAX];
	char peer[64];
};

/* What api_idem.c knows of a POST with an Idempotency-Key. */
struct api_idem {
	bool on;                      /* keep this request's answer */
	bool held;                    /* in a transaction of its own (db_hold) with its answer */
	const char *key;              /* the Idempotency-Key */
	uint8_t cred[32], seal[32], request[32];
};

/* One call to a route. */
struct api_call {
	struct api *api;
	struct controller *ctl;
	struct http_conn *conn;
	const struct http_request *req;
	const char *seg;              /* the decoded {id|name}; "" when none */
	struct api_idem idem;         /* a POST's Idempotency-Key */
	bool replayed;                /* the answer is the one kept for its key */
	char idem_headers[512];       /* the kept answer's header lines */
	char *json_body;              /* a protobuf body as JSON (owned) ... */
	struct http_request json_req; /* ... in the request the handler gets */
};

/* What a handler answers: status 0 when it answered itself (raw bytes, a
 * stream, or later). */
struct api_reply {
	int status;
	json_t *body;                 /* owned */
	const char *headers;          /* extra header lines, each ending in \r\n */
	char headers_buf[512];        /* room for headers made per answer */
};

typedef void (*api_handler)(struct api_call *call, struct api_reply *rep);

/* A method's messages in proto/api.proto: its request body's (NULL: it
 * takes none, or not JSON) and its answer's.  Every method names its
 * answer: a message, or (media) the type of an answer that is not one
 * (text, bytes, the OpenAPI document itself); tests/unit/test_api_openapi.c
 * fails on a row that names neither.  stream: a method that may answer a
 * stream of items instead (GET /v1/events?watch=true): each item's message,
 * sent as JSON lines (application/x-ndjson) or, in protobuf, each after
 * its length as a varint. */
struct api_schema {
	const ProtobufCMessageDescriptor *request, *answer;
	const char *media;
	const ProtobufCMessageDescriptor *stream;
};
#define API_MSG(name) (&skyroot__api__v1__##name##__descriptor)

struct api_route {
	const char *path;             /* exact, or the prefix before one segment */
	bool segment;
	size_t segment_max;           /* bytes incl. NUL */
	const char *noun;             /* what the segment names, for errors */
	const char *placeholder;      /* how docs/api.md writes the segment */
	const char *allow;            /* "GET, DELETE" */
	const char *allow_header;     /* the same as a header line for 405 */
	const char *suffix;           /* after the segment, e.g. "/verify" */
	bool reader;                  /* needs a token, and the reader token may GET it */
	bool admin;                   /* only the admin role, whatever the method */
	api_handler get, post, del, patch;
	struct api_schema get_s, post_s, del_s, patch_s; /* each handler's messages */
	const char *summary;          /* one line for /v1/openapi.json */
};
#define API_ALLOW(methods) .allow = methods, .allow_header = "Allow: " methods "\r\n"

/* api.c: the API (boot_only: the network-boot routes only) over
 * connections from http_conn_new(), without a listener: api_start() and
 * api_start_boot() listen on one; tests/fuzz/fuzz_rest.c feeds its own.
 * ssl NULL: plain HTTP (the server keeps a reference otherwise).  0 or a
 * negative errno; api_stop() ends it. */
int api_open(struct controller *ctl, bool boot_only, SSL_CTX *ssl, struct api **out);

/* Each resource's routes, ended by { .path = NULL }. */
extern const struct api_route api_boards_routes[];
extern const struct api_route api_tokens_routes[];
extern const struct api_route api_images_routes[];
extern const struct api_route api_guests_routes[];
extern const struct api_route api_boot_routes[];
extern const struct api_route api_metrics_routes[];
extern const struct api_route api_creds_routes[];
extern const struct api_route api_pending_routes[];
extern const struct api_route api_events_routes[];
extern const struct api_route api_openapi_routes[];
extern const struct api_route api_networks_routes[];
extern const struct api_route api_firmware_routes[];
/* api_firmware.c: true when the measured-boot gate holds board id (name:
 * for the reason) and rep holds the 409 that says so and why (what: "images",
 * "boot orders"); or a 500 when the gate cannot be read. */
bool api_board_quarantined(struct controller *ctl, struct api_reply *rep, const char *id, const char *name,
			   const char *what);

/* api_images.c: POST /v1/images streams its body into the store. */
bool api_images_is_upload(const struct http_request *req);
int api_images_upload_begin(struct api *api, struct http_conn *c, const struct http_request *req);
int api_images_upload_body(struct api *api, struct http_conn *c, const void *data, size_t len);
void api_images_conn_gone(struct api_conn_state *st);
/* api_guests.c: a console follower goes. */
void api_guests_conn_gone(struct api *api, struct http_conn *c, struct api_conn_state *st);

/* api_auth.c: the credential of a request (creds.h), and throttling wrong
 * ones.  Its role (CREDS_NONE for none, a wrong, expired or revoked one);
 * name gets the credential's name when one matched (even revoked or
 * expired: *state says which), else "". */
enum creds_role api_auth_role(const struct api *api, const struct http_request *req, char name[DB_NAME_MAX],
			      int *state);
/* A user name and secret (Redfish's Basic and sessions): the secret is a
 * credential's token and the user its name ("admin" for init's).  0 with
 * *role, or -EACCES (none, another's name, expired or revoked). */
int api_auth_basic(struct controller *ctl, const char *user, const char *secret, enum creds_role *role);
/* Answer 401 with body (owned) now or, after recent failures from the
 * peer, later; close the connection after a few on it. */
/* An upload is refused before its body, so its 401 cannot wait: its wrong
 * token is counted with api_auth_fail, and while api_auth_waiting says the
 * address must wait (*wait_ms), no token of its uploads is looked at. */
void api_auth_fail(struct api *api, const struct http_request *req);
bool api_auth_waiting(struct api *api, const char *peer, uint64_t *wait_ms);
void api_auth_refuse(struct api *api, struct http_conn *c, const struct http_request *req, json_t *body,
		     const char *headers);
void api_auth_conn_gone(struct api *api, struct api_conn_state *st);
int api_auth_start(struct api *api);
void api_auth_stop(struct api *api);

/* api_redfish.c: the Redfish service under /redfish (its own auth,
 * errors and verbs); api_redfish_stop frees its state. */
static inline bool api_redfish_is(const struct http_request *req)
{
	return req->path_len >= 8 && memcmp(req->path, "/redfish", 8) == 0 &&
	       (req->path_len == 8 || req->path[8] == '/');
}
void api_redfish_dispatch(struct api_call *call, struct api_reply *rep);
void api_redfish_stop(struct api *api);

/* api_events.c: a watch of the events takes more as its client drains,
 * and goes with its connection. */
void api_events_writable(struct api *api, struct http_conn *c);
void api_events_conn_gone(struct api *api, struct api_conn_state *st);
/* What struct api keeps for the watches, let go (api_stop). */
void api_events_stop(struct api *api);

/* api_boot.c: firmware files go out as the client takes them. */
void api_boot_writable(struct api *api, struct http_conn *c);
void api_boot_conn_gone(struct api *api, struct api_conn_state *st);

/* ---- api_idem.c ---- */
/* Before a POST with an Idempotency-Key: 1 when rep has the answer (the
 * kept one, with its headers in headers; or an error), 0 to go on. */
int api_idem_begin(struct api_call *call, struct api_reply *rep, struct api_idem *st, char *headers, size_t hlen);
/* After it: keep the answer (rep->headers included) for a repeat.  What
 * the request did and its kept answer commit together (db_hold): a repeat
 * after a crash, here or on another controller, finds both or neither.
 * rep may change: a 503 when they could not be kept (nothing done), or
 * the answer of the same key's request that committed first. */
void api_idem_end(struct api_call *call, struct api_idem *st, struct api_reply *rep, char *headers, size_t hlen);

/* ---- api_meta.c ---- */
struct api_meta_kind {
	const char *table;            /* "boards" (also the list's name) */
	const char *id_prefix;        /* "brd-" */
	const char *noun;             /* "board" */
};
/* Add labels, description and etag to a board, image or guest (by its
 * "id"), or to each of an array of them. */
int api_meta_decorate(struct controller *ctl, json_t *obj_or_array);
/* A deleted board, image or guest: its labels and description go too. */
void api_meta_forget(struct controller *ctl, const char *id);
/* PATCH .../{id|name}: check If-Match, change, and answer what get does. */
void api_meta_patch(struct api_call *call, struct api_reply *rep, const struct api_meta_kind *k, api_handler get);

/* ---- api_list.c ---- */
struct api_list_spec {
	const char *list;             /* "boards": the key of the answer, and the route */
	const char *id_prefix;        /* "brd-" */
	const char *what;             /* "list the boards", for a 500 */
	unsigned filters;             /* API_QUERY_STATE | API_QUERY_BOARD */
	const char *const *states;    /* the values of "state", NULL-ended */
};
/* The key of page tokens: derived from the CA's private key, so that
 * tokens outlive a restart and nobody without that key can make one. */
int api_list_key(struct controller *ctl, uint8_t key[API_PAGE_KEY_LEN]);
/* The call's query into q: 0, or a 400 (or 500) answered into rep. */
int api_list_query(struct api_call *call, struct api_reply *rep, const struct api_list_spec *spec,
		   struct api_list_query *q);
/* The page of arr (owned: every item rendered; r < 0 when the listing
 * failed) that q asks for: {"LIST": [...], "next_page_token": ...}. */
void api_list_reply(struct api_call *call, struct api_reply *rep, const struct api_list_spec *spec, const struct api_list_query *q,
		    int r, json_t *arr);

/* api.c: every route table (what dispatch serves, and the tests check). */
const struct api_route *const *api_route_tables(size_t *n);
/* api_openapi.c: the OpenAPI document of these tables (NULL: out of memory). */
json_t *api_openapi_doc(const struct api_route *const *tables, size_t n_tables);

/* ---- api_reply.c ---- */
#define API_PROTOBUF "application/x-protobuf"
/* The messages of rt's handler for verb (NULL: no such handler). */
const struct api_schema *api_route_schema(const struct api_route *rt, enum http_verb verb);
/* Choose the encodings of req on route rt (NULL: none) into st: 0, or
 * 406 / 415 (an answer or a body of a media type not served) with a
 * message in msg. */
int api_reply_negotiate(const struct http_request *req, const struct api_route *rt, struct api_conn_state *st,
			char *msg, size_t msglen);
/* "not_acceptable" (406), "unsupported_media_type" (415), else "internal". */
const char *api_reply_media_code(int status);
/* A protobuf request body as the JSON its handler takes: 0 and *out
 * (malloc'd text; NULL when there is none), *len; or 400 (not the
 * message), 415 (the call takes no protobuf body) with a message in msg. */
int api_reply_body_json(const struct http_request *req, const struct api_route *rt, char **out, size_t *len,
			char *msg, size_t msglen);
/* Answer on c as its request asked (api_conn_state): JSON, or the route's
 * message (an Error for a status >= 400) packed.  body is owned. */
void api_reply_send(struct http_conn *c, int status, json_t *body, const char *headers);
void api_reply_error(struct api_reply *rep, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Log err and answer 500 "the controller could not <what>; see its log". */
void api_reply_internal(struct api_reply *rep, int err, const char *what);
void api_reply_ok(struct api_reply *rep, int status, json_t *body);
/* {"key": arr} for a list that r filled, or its error. */
void api_reply_list(struct api_reply *rep, const char *key, const char *what, int r, json_t *arr);
void api_reply_no_board(struct api_reply *rep, const char *name);
void api_reply_no_image(struct api_reply *rep, const char *name);
void api_reply_no_guest(struct api_reply *rep, const char *name);
/* The per-connection state, made on first use: NULL when out of memory. */
struct api_conn_state *api_conn_state(struct http_conn *c);
/* A board by id or name: its id and name.  0, -ENOENT or a negative errno. */
int api_board_lookup(struct controller *ctl, const char *id_or_name, char id[DB_ID_MAX], char name[DB_NAME_MAX]);

#endif
