/* libFuzzer target: skyrootd's HTTP layer (controller/skyrootd/http.c).
 * The input is what a client sends on one connection, fed through the
 * parser with small limits over a test transport (no socket, no loop): the
 * first byte picks the size of the pieces it arrives in.  Requests are
 * answered as the API would (JSON, raw, a streamed body, a stream, a
 * deferred answer that never comes); after the input, the connection is
 * drained and closed.
 *
 * Every answer starts with a status line; every request handed up is
 * within the limits (URL, body), never framed both by a length and by
 * chunks, and a buffered body with a length has exactly that length; the
 * connection's memory stays within its limits; nothing leaks (ASan). */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/skyrootd/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_transport {
	size_t written;
	size_t writes;
	bool closed;
	bool head_ok;
};

static int fz_write(void *t, const void *data, size_t len)
{
	struct fz_transport *x = t;

	if (x->closed)
		return -107; /* -ENOTCONN */
	if (x->writes == 0 && (len < 9 || memcmp(data, "HTTP/1.1 ", 9) != 0))
		abort(); /* the first bytes sent are a status line */
	x->written += len;
	x->writes++;
	return 0;
}

static size_t fz_queued(void *t)
{
	(void)t;
	return 0;
}

static void fz_close(void *t, int err)
{
	struct fz_transport *x = t;
	(void)err;
	x->closed = true;
}

static void fz_set_idle(void *t, uint64_t ms)
{
	(void)t;
	(void)ms;
}

static const struct http_transport fz_tp = {
	.write = fz_write, .queued = fz_queued, .close = fz_close, .abort = fz_close, .set_idle = fz_set_idle,
};

static const struct http_limits fz_lim = {
	.url_max = 256, .headers_max = 1024, .header_count_max = 16, .body_max = 4096,
	.stream_queue_max = 1024, .idle_ms = 1000, .conns_max = 4,
};

/* The framing the request's headers announced (begin), for request(). */
#define FZ_NO_HEAD (UINT64_MAX - 1)
static uint64_t fz_length = FZ_NO_HEAD;
static bool fz_chunked;

/* What every request handed up must be, whatever the bytes were. */
static void fz_check_request(const struct http_request *req)
{
	if (!req->method || !req->path || req->path_len + req->query_len > fz_lim.url_max)
		abort();
	if (!req->query && req->query_len)
		abort();
	if (req->host && (req->host_len > fz_lim.headers_max || memchr(req->host, '\n', req->host_len)))
		abort();
	if (req->authorization_count == 1 && !req->authorization)
		abort();
	if ((req->verb == HTTP_VERB_GET) != (strcmp(req->method, "GET") == 0) ||
	    (req->verb == HTTP_VERB_POST) != (strcmp(req->method, "POST") == 0))
		abort();
}

static int fz_begin(void *ctx, struct http_conn *c, const struct http_request *req)
{
	(void)ctx;
	fz_check_request(req);
	/* Both a length and chunked framing: the two could disagree with a
	 * proxy in front about where the request ends (smuggling).  (By
	 * request(), content_length is what http_parser has left to read.) */
	if (req->chunked && req->content_length != UINT64_MAX)
		abort();
	fz_length = req->content_length;
	fz_chunked = req->chunked;
	if (req->path_len >= 7 && memcmp(req->path, "/refuse", 7) == 0)
		return http_conn_refuse(c, 409, "conflict", "refused %.*s", (int)req->path_len, req->path);
	if (req->path_len >= 7 && memcmp(req->path, "/upload", 7) == 0) {
		if (!http_conn_user(c)) /* per connection, as the API keeps it */
			http_conn_set_user(c, malloc(16));
		return HTTP_BODY_STREAM;
	}
	return HTTP_BODY_BUFFER;
}

static int fz_body(void *ctx, struct http_conn *c, const void *data, size_t len)
{
	(void)ctx;
	(void)data;
	if (len > 4000)
		return http_conn_refuse(c, 413, "too_large", "piece of %zu bytes", len);
	return 0;
}

static void fz_request(void *ctx, struct http_conn *c, const struct http_request *req)
{
	(void)ctx;
	fz_check_request(req);
	if (req->body_len > fz_lim.body_max)
		abort();
	/* A buffered body that gave its length is all there, no more, no less. */
	if (fz_length != FZ_NO_HEAD && !fz_chunked && fz_length != UINT64_MAX && req->body_len != fz_length &&
	    !(req->path_len >= 7 && memcmp(req->path, "/upload", 7) == 0))
		abort();
	fz_length = FZ_NO_HEAD;
	switch (req->path_len % 5) {
	case 0:
		http_respond_json(c, 200, json_pack("{s:s%}", "path", req->path, req->path_len), NULL);
		break;
	case 1:
		http_respond_raw(c, 200, "text/plain", req->body, req->body_len);
		break;
	case 2:
		http_respond_error(c, 404, "not_found", "no such route", "X-Test: 1\r\n");
		break;
	case 3:
		if (http_stream_begin(c, 200, "text/plain") == 0)
			http_stream_write(c, "tick", 4);
		break;
	default:
		if (req->query_len % 2)
			http_defer(c); /* never answered: the close must clean up */
		/* else: no answer at all, the layer answers 500 */
		break;
	}
}

static void fz_release(void *ctx, struct http_conn *c)
{
	(void)ctx;
	free(http_conn_user(c));
	http_conn_set_user(c, NULL);
}

static const struct http_ops fz_ops = {
	.begin = fz_begin, .body = fz_body, .request = fz_request, .failed = fz_release, .closed = fz_release,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_transport t = { 0 };
	struct http_server *srv;
	struct http_conn *c;
	size_t piece;

	sky_log_init("fuzz", SKY_LOG_NONE);
	fz_length = FZ_NO_HEAD;
	if (size == 0)
		return 0;
	piece = (size_t)data[0] * 7 + 1;
	data++;
	size--;
	if (http_server_new(NULL, NULL, &fz_lim, &fz_ops, NULL, &srv) < 0)
		return 0;
	if (http_conn_new(srv, &fz_tp, &t, &c) < 0) {
		http_server_stop(srv);
		return 0;
	}
	for (size_t off = 0; off < size && !t.closed; off += piece) {
		size_t n = size - off < piece ? size - off : piece;
		http_conn_feed(c, data + off, n);
		http_conn_drained(c); /* everything was written at once */
	}
	for (int i = 0; i < 64 && !t.closed; i++)
		http_conn_drained(c);
	http_server_stop(srv);
	http_conn_closed(c, 0); /* the transport reports the close: frees c and srv */
	return 0;
}
