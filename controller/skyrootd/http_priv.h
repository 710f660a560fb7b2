/* The HTTP layer's insides (http.h), shared by its files and by nobody
 * else:
 *   http_answer.c  answering: heads, JSON and raw answers, sized bodies,
 *                  chunked streams, refusals (the bottom)
 *   http.c         the HTTP/1.1 engine: parsing with http_parser under
 *                  limits, the request handed up, one request at a time
 *   http_server.c  servers, their connections' life, the listener and the
 *                  TLS/TCP transport under them
 *   http_tls.c     the HTTPS port's TLS policy (calls none of them)
 * Calls go downwards only: http_server.c -> http.c -> http_answer.c
 * (tests/unit/circles.py checks it); the layer above is reached through
 * struct http_ops, the bytes' transport through struct http_transport. */
#ifndef SKY_CONTROLLER_HTTP_PRIV_H
#define SKY_CONTROLLER_HTTP_PRIV_H

#include <http_parser.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "controller/skyrootd/http.h"

#define HTTP_HNAME_MAX 32
#define HTTP_ERR_MAX 512
#define HTTP_HVAL_MAX 512 /* the largest of http_hdrs[].max (http.c) */

struct listener;
struct listener_slot;

/* The headers the layer reads; every other one is only counted. */
enum http_hdr { H_AUTHORIZATION, H_XAUTH, H_EXPECT, H_HOST, H_IF_MATCH, H_IDEM_KEY, H_ACCEPT, H_CTYPE, H__COUNT, H_OTHER = H__COUNT };

/* One header's value as received: the first of its name only; count says
 * how many came. */
struct http_hval {
	char buf[HTTP_HVAL_MAX + 1];
	size_t len;
	unsigned count;
	bool overflow;
};

struct http_server {
	uv_loop_t *loop;
	SSL_CTX *ssl_ctx;
	struct http_limits lim;
	struct http_ops ops;
	void *ctx;
	struct listener *listener;
	bool stopping;
	struct http_conn *conns;
	unsigned nconns;
};

struct http_conn {
	struct http_server *srv;
	const struct http_transport *tp;
	void *t;
	struct http_conn *prev, *next;
	struct listener_slot *slot; /* admission (listener.c); NULL without a listener */
	unsigned requests;          /* begun on this connection */
	bool linked;
	http_parser parser;
	void *user;

	/* The request being read; reset by http__message_begin. */
	char *url;                  /* lim.url_max + 1 bytes */
	size_t url_len;
	bool have_url;
	size_t header_bytes;
	unsigned header_count;
	char hname[HTTP_HNAME_MAX];
	size_t hname_len;           /* HTTP_HNAME_MAX + 1: longer than any we look at */
	bool in_value;
	enum http_hdr hcur;
	struct http_hval hv[H__COUNT];
	struct sky_buf body;
	bool streaming_body;        /* begin() chose HTTP_BODY_STREAM */
	bool begun;                 /* begin() accepted: failed() is owed on error */
	int reject_status;          /* a callback stopped the parser: answer this */
	const char *reject_code;
	char reject_msg[HTTP_ERR_MAX];
	bool keep_alive;
	char request_id[HTTP_REQUEST_ID_MAX]; /* "" until asked for or answered */

	/* Between requests. */
	struct sky_buf pending;     /* bytes received while an answer is written */
	bool answered;              /* the current request has its answer (or will) */
	bool waiting;               /* an answer is in flight: parse nothing more */
	bool deferred;              /* the answer comes later, or is a stream */
	bool streaming;             /* a chunked answer is open */
	bool sending;               /* an http_body_begin answer is open */
	bool closing;
};

/* ---- http_answer.c ---- */

/* Close now, dropping what is queued. */
void http_conn_abort(struct http_conn *c, int err);
/* http_respond_json(), closing the connection after it when close. */
void http_answer_json(struct http_conn *c, int status, json_t *body, const char *headers, bool close);
/* {"error": {"code": code, "message": message}}; NULL when out of memory. */
json_t *http_error_body(const char *code, const char *message);

/* ---- http.c ---- */

/* A new connection's parser, before its first byte. */
void http_parse_init(struct http_conn *c);

#endif
