/* Answers of skyrootd's HTTP layer (http.h): heads, JSON and raw answers,
 * sized bodies written as the client takes them, chunked streams, and the
 * refusals the parser's callbacks make.  Calls no other file of the layer
 * (http_priv.h). */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/http_priv.h"

#define HTTP_RESPONSE_HEAD_MAX 512

static const char http_oom_body[] =
	"{\"error\": {\"code\": \"internal\", \"message\": \"the controller ran out of memory; see its log\"}}";

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

void http_conn_abort(struct http_conn *c, int err)
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
		http_conn_abort(c, r);
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

void http_answer_json(struct http_conn *c, int status, json_t *body, const char *headers, bool close)
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
	http_answer_json(c, status, body, headers, false);
}

json_t *http_error_body(const char *code, const char *message)
{
	return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
}

void http_respond_error(struct http_conn *c, int status, const char *code, const char *message,
			const char *headers)
{
	http_answer_json(c, status, http_error_body(code, message), headers, false);
}

void http_respond_raw(struct http_conn *c, int status, const char *type, const void *data, size_t len)
{
	http__send(c, status, type, NULL, data, len, false, false);
}

void http_respond_bytes(struct http_conn *c, int status, const char *type, const char *headers, const void *data,
			size_t len)
{
	http__send(c, status, type, headers, data, len, false, false);
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
		http_conn_abort(c, r);
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

size_t http_stream_queued(const struct http_conn *c)
{
	return c->streaming && !c->closing ? c->tp->queued(c->t) : 0;
}

void http_stream_sndbuf(struct http_conn *c, size_t bytes)
{
	if (c->streaming && !c->closing && c->tp->set_sndbuf)
		c->tp->set_sndbuf(c->t, bytes);
}

void http_stream_end(struct http_conn *c, uint64_t linger_ms)
{
	if (c->closing || !c->streaming)
		return;
	if (c->tp->write(c->t, "0\r\n\r\n", 5) < 0) {
		http_conn_abort(c, -EIO);
		return;
	}
	/* A client that does not read would hold the close forever. */
	if (c->tp->set_deadline)
		c->tp->set_deadline(c->t, linger_ms);
	http_conn_close(c, 0);
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
