/* skyrootd's HTTP/1.1 engine (http.h): bytes to requests with
 * http_parser under limits, the request handed up, and one request at a
 * time per connection.  Answers are http_answer.c's; servers and
 * transports http_server.c's (http_priv.h). */
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"
#include "controller/skyrootd/http_priv.h"
#include "controller/skyrootd/listener.h"

#define HTTP_AUTH_MAX 512
#define HTTP_EXPECT_MAX 32
#define HTTP_HOST_MAX 256

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
	[H_ACCEPT] = {"accept", HTTP_MEDIA_MAX, false},
	[H_CTYPE] = {"content-type", HTTP_MEDIA_MAX, false},
};

_Static_assert(HTTP_AUTH_MAX <= HTTP_HVAL_MAX && HTTP_EXPECT_MAX <= HTTP_HVAL_MAX && HTTP_HOST_MAX <= HTTP_HVAL_MAX &&
		       HTTP_IF_MATCH_MAX <= HTTP_HVAL_MAX && HTTP_IDEM_KEY_MAX <= HTTP_HVAL_MAX &&
		       HTTP_MEDIA_MAX <= HTTP_HVAL_MAX,
	       "every kept header fits struct http_hval");

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
	http__hval(c, H_ACCEPT, &req->accept, NULL);
	http__hval(c, H_CTYPE, &req->content_type, NULL);
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

void http_parse_init(struct http_conn *c)
{
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
}

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
		http_answer_json(c, status, http_error_body(c->reject_status ? c->reject_code : "bad_request", msg),
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
		http_conn_abort(c, r);
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

	if ((c->sending || c->streaming) && !c->closing) {
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
