/* skyrootd's HTTP/1.1 layer: listening, connections (TLS through
 * common/tls.c, or plain for network boot), parsing with libhttp-parser
 * under limits, keep-alive, and answers.  Its files (http_priv.h) are the
 * only ones that see the HTTP parser.  It knows no route and no resource:
 * the layer above (api.c) gets whole requests through struct http_ops and
 * answers with the http_respond_* calls.
 *
 * One request at a time per connection: when a request is complete the
 * parser stops, the request is handed up, and parsing resumes only once
 * its answer has been handed to the kernel.  Bytes a pipelining client
 * sends meanwhile wait in a bounded buffer.
 *
 * A connection's bytes come from a transport (struct http_transport): the
 * TLS/TCP one of http_server_listen(), or any other, so that tests and
 * fuzzers drive a connection with http_conn_feed() without a socket. */
#ifndef SKY_CONTROLLER_HTTP_H
#define SKY_CONTROLLER_HTTP_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct http_server;
struct http_conn;

struct http_limits {
	size_t url_max;             /* bytes of the request target */
	size_t headers_max;         /* bytes of all header names and values */
	unsigned header_count_max;  /* header lines */
	size_t body_max;            /* a buffered body (streamed bodies: the ops decide) */
	size_t stream_queue_max;    /* a streamed answer's client is dropped past this (HTTP_STREAM_QUEUE_MAX) */
	uint64_t idle_ms;           /* close after this long without a byte (keep-alive) */
	uint64_t header_ms;         /* a request's headers, from its first byte: fixed */
	unsigned conns_max;         /* connections open at once (http_conn_new) */
};
/* 2 KiB URL, 16 KiB / 100 headers, 1 MiB body, 4 MiB stream queue, 30 s
 * idle, 10 s for headers, 256 (the listener's cap applies first). */
extern const struct http_limits http_default_limits;

enum http_verb { HTTP_VERB_OTHER, HTTP_VERB_GET, HTTP_VERB_HEAD, HTTP_VERB_POST, HTTP_VERB_DELETE, HTTP_VERB_PATCH };

/* A stream's bytes queued for a slow client (http_default_limits): a
 * stream's own bound (a watch's buffer) is at most this, so that it, not
 * this drop, is what a client meets. */
#define HTTP_STREAM_QUEUE_MAX (4u << 20)

#define HTTP_IF_MATCH_MAX 128
#define HTTP_IDEM_KEY_MAX 255
#define HTTP_MEDIA_MAX 256          /* Accept, Content-Type */

/* A request as the layer above sees it.  Pointers are valid only during
 * the call they are passed to.  Header values are as received (at most
 * their buffer; *_overflow says when longer). */
struct http_request {
	enum http_verb verb;
	const char *method;         /* "GET", "PATCH", ... */
	const char *path;           /* raw (percent-encoded), not NUL-terminated */
	size_t path_len;
	const char *query;          /* after '?', raw; NULL when none */
	size_t query_len;
	const char *authorization;  /* the one Authorization header; NULL when none */
	size_t authorization_len;
	unsigned authorization_count; /* more than one: treat as unauthorized */
	const char *x_auth_token;   /* the one X-Auth-Token header (Redfish); NULL when none */
	size_t x_auth_token_len;
	unsigned x_auth_token_count;
	const char *if_match;       /* the If-Match header, NUL-terminated; NULL when none */
	bool if_match_bad;          /* more than one, or longer than HTTP_IF_MATCH_MAX */
	const char *idempotency_key; /* the Idempotency-Key header, NUL-terminated; NULL when none */
	bool idempotency_key_bad;   /* more than one, or longer than HTTP_IDEM_KEY_MAX */
	const char *accept;         /* the first Accept header, NUL-terminated; NULL when none, "" when too long */
	const char *content_type;   /* the first Content-Type header, the same way */
	const char *host;           /* the Host header; NULL when none or too long */
	const char *peer;           /* the client's address ("-" when unknown) */
	size_t host_len;
	bool tls;                   /* it came over TLS */
	bool chunked;               /* body in chunked transfer encoding */
	uint64_t content_length;    /* UINT64_MAX when not given */
	const void *body;           /* a buffered body (http_ops.begin returned HTTP_BODY_BUFFER) */
	size_t body_len;
};

enum http_body_mode {
	HTTP_BODY_BUFFER = 0,       /* keep the body (up to body_max) for request() */
	HTTP_BODY_STREAM = 1,       /* hand each piece to body() instead */
};

struct http_ops {
	/* The headers are complete.  Return HTTP_BODY_BUFFER or
	 * HTTP_BODY_STREAM, or http_conn_refuse(...) to answer with an error
	 * without reading the body.  May be NULL: always buffer. */
	int (*begin)(void *ctx, struct http_conn *c, const struct http_request *req);
	/* A piece of a streamed body: 0, or http_conn_refuse(...). */
	int (*body)(void *ctx, struct http_conn *c, const void *data, size_t len);
	/* The whole request: answer it now with one of http_respond_*,
	 * http_stream_begin, or call http_defer() and answer later.  Not
	 * answering is answered with a 500. */
	void (*request)(void *ctx, struct http_conn *c, const struct http_request *req);
	/* A request that began was refused before it was whole (bad syntax, a
	 * limit, a refusal from body()): drop what begin() set up.  May be NULL. */
	void (*failed)(void *ctx, struct http_conn *c);
	/* The connection is going away: drop everything tied to it (its user
	 * pointer).  May be NULL. */
	void (*closed)(void *ctx, struct http_conn *c);
	/* An answer begun with http_body_begin may take more bytes: what was
	 * queued has gone to the kernel.  May be NULL when nobody uses it. */
	void (*writable)(void *ctx, struct http_conn *c);
	/* The head of an answer with this status is being written (every
	 * answer, refusals of this layer too: for counting).  May be NULL. */
	void (*answered)(void *ctx, struct http_conn *c, int status);
};

/* The transport under a connection: a vtable over sky_tls for real
 * connections, anything for tests. */
struct http_transport {
	/* Queue bytes: 0 or a negative errno. */
	int (*write)(void *t, const void *data, size_t len);
	/* Bytes queued and not yet handed to the kernel. */
	size_t (*queued)(void *t);
	/* Flush then close (graceful) / close now.  The transport later calls
	 * http_conn_closed() exactly once. */
	void (*close)(void *t, int err);
	void (*abort)(void *t, int err);
	/* Close after ms without input (0: never). */
	void (*set_idle)(void *t, uint64_t ms);
	/* Close ms from now whatever arrives (0: cancel).  May be NULL. */
	void (*set_deadline)(void *t, uint64_t ms);
	/* What the kernel may hold unsent for the peer (SO_SNDBUF).  May be NULL. */
	void (*set_sndbuf)(void *t, size_t bytes);
};

/* ---- servers ---- */

/* ssl_ctx NULL: plain HTTP (network boot).  The server keeps a reference
 * to ssl_ctx.  loop may be NULL for a server that only gets connections
 * from http_conn_new() (tests). */
int http_server_new(uv_loop_t *loop, SSL_CTX *ssl_ctx, const struct http_limits *limits,
		    const struct http_ops *ops, void *ctx, struct http_server **out);
struct listener_limits;
/* Accept TLS (or plain) connections on addr under lim (listener.h): caps,
 * descriptors kept in reserve, deadlines; the first request's headers must
 * be in by lim->admit_ms from accept. */
int http_server_listen(struct http_server *srv, const char *name, const struct sockaddr *addr,
		       const struct listener_limits *lim);
/* Close every connection and the listener; the server is freed once its
 * handles are closed (or now, when it never listened).  Accepts NULL. */
void http_server_stop(struct http_server *srv);
/* New connections use ssl_ctx (ignored on a plain server), limits and
 * lim (listener.h); open ones keep theirs.  Accepts NULL. */
void http_server_set(struct http_server *srv, SSL_CTX *ssl_ctx, const struct http_limits *limits,
		     const struct listener_limits *lim);

/* An SSL_CTX for an HTTPS server with this certificate, key and chain
 * certificate, speaking http/1.1 in ALPN.  NULL when they do not fit. */
SSL_CTX *http_tls_ctx_new(X509 *cert, EVP_PKEY *key, X509 *chain);

/* ---- connections over any transport (tests, fuzzers) ---- */

int http_conn_new(struct http_server *srv, const struct http_transport *tp, void *t, struct http_conn **out);
/* Bytes arrived. */
void http_conn_feed(struct http_conn *c, const uint8_t *data, size_t len);
/* Every queued byte has been written: the next request may be read. */
void http_conn_drained(struct http_conn *c);
/* The transport is closed: c is freed. */
void http_conn_closed(struct http_conn *c, int err);

/* ---- answering (from http_ops.request, or later after http_defer) ---- */

void *http_conn_user(const struct http_conn *c);
/* The current request's id ("req-" and 16 hex digits), made on first use:
 * sent as X-Request-Id on its answer, as "request_id" in an error body
 * and in the log line of the answer. */
#define HTTP_REQUEST_ID_MAX 24
const char *http_conn_request_id(struct http_conn *c);
void http_conn_set_user(struct http_conn *c, void *user);
/* Close the connection (after what is queued). */
void http_conn_close(struct http_conn *c, int err);
/* The answer to the current request is the last: "Connection: close". */
void http_conn_last(struct http_conn *c);

/* For http_ops.begin and .body: answer status with an error body
 * {"error": {"code", "message"}} once the request is dropped, and close.
 * Returns the negative value begin/body must return. */
int http_conn_refuse(struct http_conn *c, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* JSON answer; body is consumed (NULL: out of memory, a 500).  headers:
 * extra lines each ending in "\r\n", or NULL.  The text is wiped from
 * memory after sending (a token's secret may be in it). */
void http_respond_json(struct http_conn *c, int status, json_t *body, const char *headers);
/* {"error": {"code": code, "message": message}} */
void http_respond_error(struct http_conn *c, int status, const char *code, const char *message,
			const char *headers);
/* Bytes that are not JSON; data is copied. */
void http_respond_raw(struct http_conn *c, int status, const char *type, const void *data, size_t len);
/* The same with extra header lines (each ending in \r\n; NULL: none). */
void http_respond_bytes(struct http_conn *c, int status, const char *type, const char *headers, const void *data,
			size_t len);
/* The slowest a client may take a sized answer (http_body_begin): bytes a
 * second.  1 MiB/s: a board's firmware of 100 MiB in under two minutes. */
#define HTTP_SEND_MIN_RATE (1024u * 1024u)
/* An answer of len bytes produced piece by piece as the client takes
 * them (a file): after the head, http_ops.writable is called each time
 * what was queued has gone to the kernel; http_body_write the next piece
 * then, and http_body_end once len bytes are written.  Returns 0 (go on),
 * 1 when no body is wanted (HEAD: the answer is complete), or a negative
 * errno (the connection is closing).  The client must take the answer at
 * HTTP_SEND_MIN_RATE or faster, plus the keep-alive time: a fixed deadline
 * from the head that its bytes do not extend. */
int http_body_begin(struct http_conn *c, int status, const char *type, uint64_t len, const char *headers);
int http_body_write(struct http_conn *c, const void *data, size_t len);
void http_body_end(struct http_conn *c);
/* The answer comes later (from a worker's completion): read nothing more
 * until then.  The connection may close meanwhile: http_ops.closed. */
void http_defer(struct http_conn *c);
/* A chunked answer that stays open until the client goes; the idle
 * timeout is off.  Then http_stream_write() each piece: a client that
 * lets more than stream_queue_max bytes queue up is dropped (-ENOBUFS). */
int http_stream_begin(struct http_conn *c, int status, const char *type);
int http_stream_write(struct http_conn *c, const void *data, size_t len);
/* Bytes of a stream queued and not yet taken by the client (0 when it is
 * not streaming); http_ops.writable is called each time they drained. */
size_t http_stream_queued(const struct http_conn *c);
/* Let the kernel hold at most about bytes for the stream's client as well
 * (its send buffer, autotuned to megabytes otherwise): a client that stops
 * reading shows in http_stream_queued() that much later. */
void http_stream_sndbuf(struct http_conn *c, size_t bytes);
/* End a stream (its last chunk) and close; a client that has not taken
 * what is queued linger_ms later is cut off. */
void http_stream_end(struct http_conn *c, uint64_t linger_ms);

#endif
