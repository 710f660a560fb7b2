/* skyrootd's HTTP/1.1 layer: see http.h. */
#include "controller/skyrootd/http.h"

#include <errno.h>
#include <http_parser.h>
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
#include "common/parse.h"
#include "common/tls.h"
#include "common/util.h"
#include "controller/skyrootd/listener.h"

#define HTTP_AUTH_MAX 512
#define HTTP_EXPECT_MAX 32
#define HTTP_HOST_MAX 256
#define HTTP_HNAME_MAX 32
#define HTTP_RESPONSE_HEAD_MAX 512
#define HTTP_ERR_MAX 512
#define HTTP_HVAL_MAX 512 /* the largest of http_hdrs[].max */

const struct http_limits http_default_limits = {
	.url_max = 2048,
	.headers_max = 16 * 1024,
	.header_count_max = 100,
	.body_max = 1024 * 1024,
	.stream_queue_max = 4u << 20,
	.idle_ms = 30 * 1000,
	.header_ms = 10 * 1000,
	.conns_max = 1024,
};

/* The headers the layer reads; every other one is only counted. */
enum http_hdr { H_AUTHORIZATION, H_XAUTH, H_EXPECT, H_HOST, H_IF_MATCH, H_IDEM_KEY, H__COUNT, H_OTHER = H__COUNT };

static const struct {
	const char *name;
	size_t max;   /* bytes kept; longer is an overflow */
	bool secret;  /* wiped after each request */
} http_hdrs[H__COUNT] = {
	[H_AUTHORIZATION] = {"authorization", HTTP_AUTH_MAX, true},
	[H_XAUTH] = {"x-auth-token", HTTP_AUTH_MAX, true}, /* a Redfish session */
	[H_EXPECT] = {"expect", HTTP_EXPECT_MAX, false},
	[H_HOST] = {"host", HTTP_HOST_MAX, false},
	[H_IF_MATCH] = {"if-match", HTTP_IF_MATCH_MAX, false},
	[H_IDEM_KEY] = {"idempotency-key", HTTP_IDEM_KEY_MAX, false},
};

_Static_assert(HTTP_AUTH_MAX <= HTTP_HVAL_MAX && HTTP_EXPECT_MAX <= HTTP_HVAL_MAX && HTTP_HOST_MAX <= HTTP_HVAL_MAX &&
		       HTTP_IF_MATCH_MAX <= HTTP_HVAL_MAX && HTTP_IDEM_KEY_MAX <= HTTP_HVAL_MAX,
	       "every kept header fits struct http_hval");

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

static const char http_oom_body[] =
	"{\"error\": {\"code\": \"internal\", \"message\": \"the controller ran out of memory; see its log\"}}";

/* ---- transports ---- */

static int http_tls__write(void *t, const void *data, size_t len)
{
	return sky_tls_write(t, data, len);
}

static size_t http_tls__queued(void *t)
{
	return sky_tls_queued(t);
}

static void http_tls__close(void *t, int err)
{
	sky_tls_close(t, err);
}

static void http_tls__abort(void *t, int err)
{
	sky_tls_abort(t, err);
}

static void http_tls__set_idle(void *t, uint64_t ms)
{
	sky_tls_set_idle_timeout(t, ms);
}

static void http_tls__set_deadline(void *t, uint64_t ms)
{
	sky_tls_set_deadline(t, ms);
}

static const struct http_transport http_tls_transport = {
	.write = http_tls__write,
	.queued = http_tls__queued,
	.close = http_tls__close,
	.abort = http_tls__abort,
	.set_idle = http_tls__set_idle,
	.set_deadline = http_tls__set_deadline,
};

/* ---- answering ---- */

void *http_conn_user(const struct http_conn *c)
{
	return c->user;
}

void http_conn_set_user(struct http_conn *c, void *user)
{
	c->user = user;
}

void http_conn_close(struct http_conn *c, int err)
{
	if (c->closing)
		return;
	c->closing = true;
	c->tp->close(c->t, err);
}

void http_conn_last(struct http_conn *c)
{
	c->keep_alive = false;
}

static void http__abort(struct http_conn *c, int err)
{
	c->closing = true;
	c->tp->abort(c->t, err);
}

static bool http__is_head(const struct http_conn *c)
{
	return c->have_url && c->parser.method == HTTP_HEAD;
}

const char *http_conn_request_id(struct http_conn *c)
{
	static unsigned long long fallback;
	uint8_t raw[8];

	if (c->request_id[0])
		return c->request_id;
	memcpy(c->request_id, "req-", 4);
	if (sky_random(raw, sizeof(raw)) == 0)
		sky_format_hex(raw, sizeof(raw), c->request_id + 4);
	else /* no randomness: still one id per request of this process */
		snprintf(c->request_id + 4, sizeof(c->request_id) - 4, "%016llx", ++fallback);
	return c->request_id;
}

/* An answer's head goes out: tell the layer above (counting), log it. */
static void http__answered(struct http_conn *c, int status)
{
	char path[160];
	size_t n = 0;

	if (c->srv->ops.answered)
		c->srv->ops.answered(c->srv->ctx, c, status);
	if (sky_log_get_level() < SKY_LOG_DEBUG)
		return;
	for (size_t i = 0; i < c->url_len && c->url[i] != '?' && n + 1 < sizeof(path); i++) {
		unsigned char ch = (unsigned char)c->url[i];
		path[n++] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	path[n] = '\0';
	log_debug("http: %s %s -> %d (request %s)", c->have_url ? http_method_str(c->parser.method) : "-",
		  n ? path : "-", status, http_conn_request_id(c));
}

/* The answer is queued: keep reading after it drains, or close. */
static void http__sent(struct http_conn *c, int r, bool close)
{
	c->answered = true;
	if (r < 0) {
		log_warn("http: cannot send an answer (%s); closing the connection", strerror(-r));
		http__abort(c, r);
		return;
	}
	if (close || !c->keep_alive)
		http_conn_close(c, 0);
	else
		c->waiting = true;
}

/* The head of an answer into head[HTTP_RESPONSE_HEAD_MAX]: its length,
 * or -EOVERFLOW. */
static int http__head(struct http_conn *c, char *head, int status, const char *type, const char *headers,
		      uint64_t len, bool close)
{
	int n = snprintf(head, HTTP_RESPONSE_HEAD_MAX,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %llu\r\n"
			 "Cache-Control: no-store\r\n"
			 "Connection: %s\r\n"
			 "X-Request-Id: %s\r\n"
			 "%s"
			 "\r\n",
			 status, http_status_str((enum http_status)status), type, (unsigned long long)len,
			 close ? "close" : "keep-alive", http_conn_request_id(c), headers ? headers : "");

	http__answered(c, status);
	return n > 0 && n < HTTP_RESPONSE_HEAD_MAX ? n : -EOVERFLOW;
}

/* Head and body in one write; the copy is wiped afterwards. */
static void http__send(struct http_conn *c, int status, const char *type, const char *headers,
		       const void *data, size_t len, bool nl, bool close)
{
	char head[HTTP_RESPONSE_HEAD_MAX];
	struct sky_buf out;
	int n, r;

	if (c->closing)
		return;
	c->deferred = false;
	close = close || !c->keep_alive;
	n = http__head(c, head, status, type, headers, len + (nl ? 1 : 0), close);
	sky_buf_init(&out, sizeof(head) + len + 1);
	r = n < 0 ? n : 0;
	if (r == 0)
		r = sky_buf_append(&out, head, (size_t)n);
	/* An answer to HEAD has the headers of the body, not the body. */
	if (r == 0 && !http__is_head(c)) {
		if (len)
			r = sky_buf_append(&out, data, len);
		if (r == 0 && nl)
			r = sky_buf_append(&out, "\n", 1);
	}
	if (r == 0)
		r = c->tp->write(c->t, out.data, out.len);
	if (out.data)
		OPENSSL_cleanse(out.data, out.len);
	sky_buf_free(&out);
	http__sent(c, r, close);
}

static void http__respond_json(struct http_conn *c, int status, json_t *body, const char *headers, bool close)
{
	json_t *err = json_object_get(body, "error");
	char *text;

	/* Every error names its request, as the X-Request-Id header and the
	 * log line do. */
	if (json_is_object(err) && !json_object_get(err, "request_id"))
		json_object_set_new(err, "request_id", json_string(http_conn_request_id(c)));
	text = body ? json_dumps(body, JSON_PRESERVE_ORDER) : NULL;

	json_decref(body);
	if (!text) {
		http__send(c, 500, "application/json", NULL, http_oom_body, strlen(http_oom_body), true, close);
		return;
	}
	http__send(c, status, "application/json", headers, text, strlen(text), true, close);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
}

void http_respond_json(struct http_conn *c, int status, json_t *body, const char *headers)
{
	http__respond_json(c, status, body, headers, false);
}

static json_t *http__error_body(const char *code, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

void http_respond_error(struct http_conn *c, int status, const char *code, const char *message,
			const char *headers)
{
	http__respond_json(c, status, http__error_body(code, message), headers, false);
}

void http_respond_raw(struct http_conn *c, int status, const char *type, const void *data, size_t len)
{
	http__send(c, status, type, NULL, data, len, false, false);
}

int http_body_begin(struct http_conn *c, int status, const char *type, uint64_t len, const char *headers)
{
	char head[HTTP_RESPONSE_HEAD_MAX];
	int n, r;

	if (c->closing)
		return -ENOTCONN;
	n = http__head(c, head, status, type, headers, len, !c->keep_alive);
	r = n < 0 ? n : c->tp->write(c->t, head, (size_t)n);
	if (r < 0 || http__is_head(c)) {
		c->deferred = false;
		http__sent(c, r, false);
		return r < 0 ? r : 1;
	}
	/* Nothing more is read until the body is out.  A sized answer must be
	 * taken at HTTP_SEND_MIN_RATE or faster, with the keep-alive time as
	 * slack, from now: a client that does not read cannot hold the
	 * connection (and a firmware download slot) by sending a byte now and
	 * then.  The next request's headers set the deadline anew. */
	c->answered = true;
	c->waiting = true;
	c->deferred = true;
	c->sending = true;
	if (c->tp->set_deadline)
		c->tp->set_deadline(c->t, c->srv->lim.idle_ms + len / (HTTP_SEND_MIN_RATE / 1000));
	return 0;
}

int http_body_write(struct http_conn *c, const void *data, size_t len)
{
	int r;

	if (c->closing || !c->sending)
		return -ENOTCONN;
	r = c->tp->write(c->t, data, len);
	if (r < 0) {
		c->sending = false;
		http__abort(c, r);
	}
	return r;
}

void http_body_end(struct http_conn *c)
{
	if (c->closing || !c->sending)
		return;
	c->sending = false;
	c->deferred = false;
	http__sent(c, 0, false);
}

void http_defer(struct http_conn *c)
{
	c->answered = true;
	c->deferred = true;
	c->waiting = true;
}

int http_stream_begin(struct http_conn *c, int status, const char *type)
{
	char head[HTTP_RESPONSE_HEAD_MAX];
	int n, r;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Transfer-Encoding: chunked\r\n"
		     "Cache-Control: no-store\r\n"
		     "Connection: close\r\n"
		     "X-Request-Id: %s\r\n"
		     "\r\n",
		     status, http_status_str((enum http_status)status), type, http_conn_request_id(c));
	http__answered(c, status);
	r = n > 0 && (size_t)n < sizeof(head) ? c->tp->write(c->t, head, (size_t)n) : -EOVERFLOW;
	c->answered = true;
	if (r < 0) {
		http_conn_close(c, r);
		return r;
	}
	c->keep_alive = false;
	c->streaming = true;
	c->deferred = true;
	c->waiting = true;
	c->tp->set_idle(c->t, 0);
	return 0;
}

int http_stream_write(struct http_conn *c, const void *data, size_t len)
{
	char head[24];
	int n;

	if (c->closing || !c->streaming)
		return -ENOTCONN;
	if (len == 0)
		return 0;
	/* A client that cannot keep up is dropped, not buffered forever. */
	if (c->tp->queued(c->t) > c->srv->lim.stream_queue_max) {
		http_conn_close(c, -ENOBUFS);
		return -ENOBUFS;
	}
	n = snprintf(head, sizeof(head), "%zx\r\n", len);
	if (c->tp->write(c->t, head, (size_t)n) < 0 || c->tp->write(c->t, data, len) < 0 ||
	    c->tp->write(c->t, "\r\n", 2) < 0) {
		http_conn_close(c, -EIO);
		return -EIO;
	}
	return 0;
}

int http_conn_refuse(struct http_conn *c, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->reject_msg, sizeof(c->reject_msg), fmt, ap);
	va_end(ap);
	c->reject_status = status;
	c->reject_code = code;
	return -1;
}

/* ---- the request to the layer above ---- */

static enum http_verb http__verb(unsigned method)
{
	switch (method) {
	case HTTP_GET:
		return HTTP_VERB_GET;
	case HTTP_HEAD:
		return HTTP_VERB_HEAD;
	case HTTP_POST:
		return HTTP_VERB_POST;
	case HTTP_DELETE:
		return HTTP_VERB_DELETE;
	case HTTP_PATCH:
		return HTTP_VERB_PATCH;
	default:
		return HTTP_VERB_OTHER;
	}
}

/* 0, or -EINVAL when the target has no path. */
/* Header h for the layer above, NUL-terminated: NULL when absent, "" when
 * too long.  Returns how many came, an overflow counting as one more. */
static unsigned http__hval(struct http_conn *c, enum http_hdr h, const char **val, size_t *len)
{
	struct http_hval *v = &c->hv[h];

	v->buf[v->overflow ? 0 : v->len] = '\0';
	*val = v->count ? v->buf : NULL;
	if (len)
		*len = v->count && !v->overflow ? v->len : 0;
	return v->count + (v->overflow ? 1 : 0);
}

static int http__request(struct http_conn *c, struct http_request *req)
{
	struct http_parser_url u;
	const http_parser *p = &c->parser;

	memset(req, 0, sizeof(*req));
	req->verb = http__verb(p->method);
	req->method = http_method_str(p->method);
	req->tls = c->srv->ssl_ctx != NULL;
	req->peer = listener_peer(c->slot);
	req->chunked = (p->flags & F_CHUNKED) != 0;
	req->content_length = p->content_length == ULLONG_MAX ? UINT64_MAX : p->content_length;
	req->authorization_count = http__hval(c, H_AUTHORIZATION, &req->authorization, &req->authorization_len);
	req->x_auth_token_count = http__hval(c, H_XAUTH, &req->x_auth_token, &req->x_auth_token_len);
	if (http__hval(c, H_HOST, &req->host, &req->host_len) != 1 || !req->host_len)
		req->host = NULL, req->host_len = 0;
	req->if_match_bad = http__hval(c, H_IF_MATCH, &req->if_match, NULL) > 1;
	req->idempotency_key_bad = http__hval(c, H_IDEM_KEY, &req->idempotency_key, NULL) > 1;
	req->body = c->body.data;
	req->body_len = c->body.len;
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, p->method == HTTP_CONNECT, &u) != 0 ||
	    !(u.field_set & (1u << UF_PATH)))
		return -EINVAL;
	req->path = c->url + u.field_data[UF_PATH].off;
	req->path_len = u.field_data[UF_PATH].len;
	if (u.field_set & (1u << UF_QUERY)) {
		req->query = c->url + u.field_data[UF_QUERY].off;
		req->query_len = u.field_data[UF_QUERY].len;
	}
	return 0;
}

static void http__handle(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	struct http_request req;

	/* We never switch protocols: after an Upgrade/CONNECT the rest of the
	 * stream is not HTTP, so answer and close. */
	if (c->parser.upgrade)
		c->keep_alive = false;
	c->answered = false;
	c->begun = false;
	if (http__request(c, &req) < 0)
		http_respond_error(c, 400, "bad_request", "the request target must be a path such as /v1/boards", NULL);
	else if (srv->ops.request)
		srv->ops.request(srv->ctx, c, &req);
	if (!c->answered && !c->closing) {
		log_error("http: a request to %.*s got no answer", (int)(req.path_len > 80 ? 80 : req.path_len),
			  req.path ? req.path : "");
		http_respond_error(c, 500, "internal", "the controller did not answer; see its log", NULL);
	}
	sky_buf_free(&c->body);
}

/* ---- parser callbacks ---- */

static int http__refuse_limit(struct http_conn *c, int status, const char *msg)
{
	return http_conn_refuse(c, status, status == 500 ? "internal" : "too_large", "%s", msg);
}

static int http__message_begin(http_parser *p)
{
	struct http_conn *c = p->data;

	/* The first request's headers have the listener's deadline from
	 * accept; each later one gets its own from its first byte. */
	if (c->requests++ > 0 && c->tp->set_deadline)
		c->tp->set_deadline(c->t, c->srv->lim.header_ms);
	c->url_len = 0;
	c->url[0] = '\0';
	c->request_id[0] = '\0';
	c->have_url = false;
	c->header_bytes = 0;
	c->header_count = 0;
	c->hname_len = 0;
	c->in_value = false;
	c->hcur = H_OTHER;
	for (unsigned h = 0; h < H__COUNT; h++) {
		if (http_hdrs[h].secret)
			OPENSSL_cleanse(c->hv[h].buf, c->hv[h].len);
		c->hv[h].len = 0;
		c->hv[h].count = 0;
		c->hv[h].overflow = false;
	}
	sky_buf_reset(&c->body);
	c->streaming_body = false;
	c->begun = false;
	c->reject_status = 0;
	c->reject_code = NULL;
	c->reject_msg[0] = '\0';
	return 0;
}

static int http__url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	c->have_url = true;
	if (len > c->srv->lim.url_max - c->url_len)
		return http_conn_refuse(c, 414, "too_large", "the URL is longer than the %zu-byte limit",
					c->srv->lim.url_max);
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return 0;
}

static int http__count_header(struct http_conn *c, size_t len)
{
	if (len > c->srv->lim.headers_max - c->header_bytes)
		return http_conn_refuse(c, 431, "too_large", "the request headers are over the %zu-byte limit",
					c->srv->lim.headers_max);
	c->header_bytes += len;
	return 0;
}

static int http__header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (http__count_header(c, len) < 0)
		return -1;
	if (c->in_value || c->header_count == 0) {
		/* A new header starts. */
		if (++c->header_count > c->srv->lim.header_count_max)
			return http_conn_refuse(c, 431, "too_large", "the request has more than %u headers",
						c->srv->lim.header_count_max);
		c->in_value = false;
		c->hname_len = 0;
		c->hcur = H_OTHER;
	}
	if (c->hname_len > HTTP_HNAME_MAX || len > HTTP_HNAME_MAX - c->hname_len) {
		c->hname_len = HTTP_HNAME_MAX + 1;
		return 0;
	}
	memcpy(c->hname + c->hname_len, at, len);
	c->hname_len += len;
	return 0;
}

static bool http__name_is(const struct http_conn *c, const char *name)
{
	size_t n = strlen(name);
	return c->hname_len == n && strncasecmp(c->hname, name, n) == 0;
}

static int http__header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (http__count_header(c, len) < 0)
		return -1;
	if (!c->in_value) {
		c->in_value = true;
		for (c->hcur = 0; c->hcur < H__COUNT && !http__name_is(c, http_hdrs[c->hcur].name); c->hcur++)
			;
		if (c->hcur != H_OTHER)
			c->hv[c->hcur].count++;
	}
	/* The first of each name only: a second Authorization header makes
	 * the request unauthorized, a second If-Match a bad request. */
	if (c->hcur != H_OTHER && c->hv[c->hcur].count == 1) {
		struct http_hval *v = &c->hv[c->hcur];
		if (len > http_hdrs[c->hcur].max - v->len)
			v->overflow = true;
		else if (!v->overflow)
			memcpy(v->buf + v->len, at, len), v->len += len;
	}
	return 0;
}

static int http__headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct http_server *srv = c->srv;
	bool has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
	struct http_request req;
	int mode = HTTP_BODY_BUFFER;

	/* The headers are in: the body has the idle timeout only. */
	listener_admit(c->slot);
	if (c->tp->set_deadline)
		c->tp->set_deadline(c->t, 0);
	if (srv->ops.begin && http__request(c, &req) == 0) {
		mode = srv->ops.begin(srv->ctx, c, &req);
		if (mode < 0)
			return -1;
		c->begun = true;
	}
	c->streaming_body = mode == HTTP_BODY_STREAM;
	if (!c->streaming_body && !(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
	    p->content_length > srv->lim.body_max)
		return http_conn_refuse(c, 413, "too_large", "the request body is over the %zu-byte limit",
					srv->lim.body_max);
	/* curl waits for this before it sends a larger body. */
	if (has_body && !c->hv[H_EXPECT].overflow && c->hv[H_EXPECT].len == strlen("100-continue") &&
	    strncasecmp(c->hv[H_EXPECT].buf, "100-continue", c->hv[H_EXPECT].len) == 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (c->tp->write(c->t, cont, sizeof(cont) - 1) < 0)
			return http__refuse_limit(c, 500, "the controller could not answer; see its log");
	}
	return 0;
}

static int http__body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	int r;

	if (c->streaming_body)
		return c->srv->ops.body ? (c->srv->ops.body(c->srv->ctx, c, at, len) < 0 ? -1 : 0) : 0;
	r = sky_buf_append(&c->body, at, len);
	if (r == -ENOBUFS)
		return http_conn_refuse(c, 413, "too_large", "the request body is over the %zu-byte limit",
					c->srv->lim.body_max);
	if (r < 0)
		return http__refuse_limit(c, 500, "the controller ran out of memory; see its log");
	return 0;
}

static int http__message_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	c->keep_alive = http_should_keep_alive(p) != 0;
	/* Stop here: the request is answered before the next one is read. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings http_settings = {
	.on_message_begin = http__message_begin,
	.on_url = http__url,
	.on_header_field = http__header_field,
	.on_header_value = http__header_value,
	.on_headers_complete = http__headers_complete,
	.on_body = http__body,
	.on_message_complete = http__message_complete,
};

/* Feed bytes to the parser until one request has been answered, the input
 * ends, or the connection fails.  Returns how many bytes were used. */
static size_t http__parse(struct http_conn *c, const uint8_t *data, size_t len)
{
	size_t n = http_parser_execute(&c->parser, &http_settings, (const char *)data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

	if (e == HPE_PAUSED) {
		http_parser_pause(&c->parser, 0);
		http__handle(c);
		return n;
	}
	if (e != HPE_OK) {
		char msg[HTTP_ERR_MAX + 64];
		int status = c->reject_status ? c->reject_status : 400;

		if (c->begun && c->srv->ops.failed)
			c->srv->ops.failed(c->srv->ctx, c);
		c->begun = false;
		if (c->reject_status)
			snprintf(msg, sizeof(msg), "%s", c->reject_msg);
		else
			snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_description(e));
		c->keep_alive = false;
		sky_buf_free(&c->body);
		http__respond_json(c, status, http__error_body(c->reject_status ? c->reject_code : "bad_request", msg),
				   NULL, true);
		return len;
	}
	if (n != len) {
		/* Not paused and not failed yet short: nothing we can parse. */
		http_conn_close(c, -EPROTO);
		return len;
	}
	return n;
}

/* ---- connections ---- */

static void http__stash(struct http_conn *c, const uint8_t *data, size_t len)
{
	int r = sky_buf_append(&c->pending, data, len);

	if (r < 0) {
		log_debug("http: a client sent more than one request ahead; closing its connection");
		http__abort(c, r);
	}
}

void http_conn_feed(struct http_conn *c, const uint8_t *data, size_t len)
{
	size_t n;

	if (c->closing)
		return;
	if (c->waiting) {
		http__stash(c, data, len);
		return;
	}
	n = http__parse(c, data, len);
	if (!c->closing && n < len)
		http__stash(c, data + n, len - n);
}

void http_conn_drained(struct http_conn *c)
{
	size_t n;

	if (c->sending && !c->closing) {
		if (c->srv->ops.writable)
			c->srv->ops.writable(c->srv->ctx, c);
		return;
	}
	if (c->closing || !c->waiting || c->deferred)
		return;
	c->waiting = false;
	if (c->pending.len == 0)
		return;
	n = http__parse(c, c->pending.data, c->pending.len);
	if (c->closing)
		return;
	sky_buf_consume(&c->pending, n);
	if (c->pending.len == 0)
		sky_buf_free(&c->pending);
}

static void http_server__maybe_free(struct http_server *srv)
{
	if (!srv->stopping || srv->nconns > 0)
		return;
	SSL_CTX_free(srv->ssl_ctx);
	free(srv);
}

static void http__unlink(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (!c->linked)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->linked = false;
}

/* The layer above lets go of the connection: once only. */
static void http__release(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->begun && srv->ops.failed)
		srv->ops.failed(srv->ctx, c);
	c->begun = false;
	if (srv->ops.closed)
		srv->ops.closed(srv->ctx, c);
	c->user = NULL;
}

void http_conn_closed(struct http_conn *c, int err)
{
	struct http_server *srv = c->srv;

	if (err < 0 && err != -ETIMEDOUT && err != -ECANCELED)
		log_debug("http: connection closed: %s", strerror(-err));
	if (c->linked) {
		http__unlink(c);
		http__release(c);
	}
	OPENSSL_cleanse(c->hv, sizeof(c->hv));
	sky_buf_free(&c->body);
	sky_buf_free(&c->pending);
	free(c->url);
	free(c);
	srv->nconns--;
	http_server__maybe_free(srv);
}

int http_conn_new(struct http_server *srv, const struct http_transport *tp, void *t, struct http_conn **out)
{
	struct http_conn *c;

	if (srv->stopping)
		return -ECANCELED;
	if (srv->nconns >= srv->lim.conns_max)
		return -EMFILE;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->url = malloc(srv->lim.url_max + 1);
	if (!c->url) {
		free(c);
		return -ENOMEM;
	}
	c->url[0] = '\0';
	c->srv = srv;
	c->tp = tp;
	c->t = t;
	sky_buf_init(&c->body, srv->lim.body_max);
	/* At most about one whole request may wait while an answer is written. */
	sky_buf_init(&c->pending, srv->lim.url_max + srv->lim.headers_max + srv->lim.body_max + 4096);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	c->linked = true;
	srv->nconns++;
	*out = c;
	return 0;
}

/* ---- TLS/TCP connections ---- */

static void http__on_data(struct sky_tls *t, const uint8_t *data, size_t len)
{
	http_conn_feed(sky_tls_data(t), data, len);
}

static void http__on_drain(struct sky_tls *t)
{
	http_conn_drained(sky_tls_data(t));
}

static void http__on_close(struct sky_tls *t, int err)
{
	struct http_conn *c = sky_tls_data(t);
	struct listener_slot *slot;

	if (!c)
		return; /* refused by the listener */
	slot = c->slot;
	http_conn_closed(c, err);
	listener_release(slot);
}

static const struct sky_tls_cbs http_tls_cbs = {
	.on_data = http__on_data,
	.on_drain = http__on_drain,
	.on_close = http__on_close,
};

/* The listener admitted a connection. */
static int http__attach(void *ctx, struct sky_tls *t, struct listener_slot *slot)
{
	struct http_server *srv = ctx;
	struct http_conn *c;
	int r = http_conn_new(srv, &http_tls_transport, t, &c);

	if (r < 0)
		return r;
	c->slot = slot;
	sky_tls_set_data(t, c);
	sky_tls_set_idle_timeout(t, srv->lim.idle_ms);
	return 0;
}

/* ---- servers ---- */

int http_server_new(uv_loop_t *loop, SSL_CTX *ssl_ctx, const struct http_limits *limits,
		    const struct http_ops *ops, void *ctx, struct http_server **out)
{
	struct http_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	if (ssl_ctx && SSL_CTX_up_ref(ssl_ctx) != 1) {
		free(srv);
		return -ENOMEM;
	}
	srv->ssl_ctx = ssl_ctx;
	srv->lim = limits ? *limits : http_default_limits;
	srv->ops = *ops;
	srv->ctx = ctx;
	*out = srv;
	return 0;
}

int http_server_listen(struct http_server *srv, const char *name, const struct sockaddr *addr,
		       const struct listener_limits *lim)
{
	if (!srv->loop || srv->listener)
		return -EINVAL;
	return listener_start(srv->loop, name, addr, srv->ssl_ctx, &http_tls_cbs, lim, http__attach, srv,
			      &srv->listener);
}

void http_server_set(struct http_server *srv, SSL_CTX *ssl_ctx, const struct http_limits *limits,
		     const struct listener_limits *lim)
{
	if (!srv || srv->stopping)
		return;
	if (srv->ssl_ctx && ssl_ctx && SSL_CTX_up_ref(ssl_ctx) == 1) {
		SSL_CTX_free(srv->ssl_ctx);
		srv->ssl_ctx = ssl_ctx;
	}
	srv->lim = *limits;
	listener_set(srv->listener, ssl_ctx, lim);
}

void http_server_stop(struct http_server *srv)
{
	struct http_conn *c, *next;

	if (!srv || srv->stopping)
		return;
	srv->stopping = true;
	for (c = srv->conns; c; c = next) {
		next = c->next;
		/* The layer above lets go now; the transport frees c later.
		 * Also those already closing: a stalled write must not keep the
		 * loop alive. */
		http__unlink(c);
		http__release(c);
		http__abort(c, -ECANCELED);
	}
	listener_stop(srv->listener);
	srv->listener = NULL;
	http_server__maybe_free(srv);
}
