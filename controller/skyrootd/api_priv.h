/* The REST API's insides (docs/api.md), shared by its files:
 *   api.c          the route table, authentication, dispatch (over http.c)
 *   api_boards.c   /v1/boards...       api_tokens.c  /v1/tokens...
 *   api_images.c   /v1/images...       api_guests.c  /v1/guests...
 *   api_boot.c     /boot/... (network boot) and /healthz
 *   api_metrics.c  /metrics (Prometheus) and /readyz
 *   api_creds.c    /v1/credentials... and /v1/audit (api_creds_json.c: their bodies)
 *   api_reply.c    answers and lookups every resource uses (the bottom)
 * Calls go downwards only: api.c -> api_<resource>.c -> api_reply.c. */
#ifndef SKY_CONTROLLER_API_PRIV_H
#define SKY_CONTROLLER_API_PRIV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/audit.h"
#include "controller/skyrootd/creds.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/http.h"
#include "controller/skyrootd/metrics.h"

struct store_upload;
struct api_async;
struct api_auth;
struct api_auth_wait;
struct api_boot_dl;

struct api {
	struct controller *ctl;
	struct http_server *http;
	struct api_auth *auth;      /* wrong-token throttling (api_auth.c) */
	bool boot_only;             /* the plain listener: /boot/ only */
};

/* What a connection holds across calls (http_conn_user), made on need. */
struct api_conn_state {
	struct store_upload *upload;  /* POST /v1/images streams into the store */
	struct api_async *async;      /* a deferred answer is being worked out */
	char follow[DB_ID_MAX];       /* streaming this guest's console */
	struct api_boot_dl *boot;     /* a firmware file being sent */
	struct api_auth_wait *auth_wait; /* a delayed 401 */
	unsigned auth_fails;          /* wrong tokens on this connection */
	/* The request being answered, for skyroot_api_requests_total. */
	char metric_route[METRICS_ROUTE_LEN];
	uint64_t metric_t0;           /* uv_hrtime() at its headers; 0 = none */
	/* The request being answered, for the audit log (api.c). */
	char request_id[HTTP_REQUEST_ID_MAX]; /* "" = none */
	char credential[DB_NAME_MAX]; /* who, once authenticated; "" = unknown */
	char method[16];
	char path[AUDIT_PATH_MAX];
	char peer[64];
};

/* One call to a route. */
struct api_call {
	struct api *api;
	struct controller *ctl;
	struct http_conn *conn;
	const struct http_request *req;
	const char *seg;              /* the decoded {id|name}; "" when none */
};

/* What a handler answers: status 0 when it answered itself (raw bytes, a
 * stream, or later). */
struct api_reply {
	int status;
	json_t *body;                 /* owned */
	const char *headers;          /* extra header lines, each ending in \r\n */
};

typedef void (*api_handler)(struct api_call *call, struct api_reply *rep);

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
	api_handler get, post, del;
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

/* api_boot.c: firmware files go out as the client takes them. */
void api_boot_writable(struct api *api, struct http_conn *c);
void api_boot_conn_gone(struct api *api, struct api_conn_state *st);

/* ---- api_reply.c ---- */
/* A new request id ("req-" and 16 hex digits) into out. */
void api_request_id_new(char out[HTTP_REQUEST_ID_MAX]);
/* The id of the request being answered (its X-Request-Id; the controller's
 * log and the audit log show it): "" when none. */
const char *api_call_request_id(const struct api_call *call);
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
