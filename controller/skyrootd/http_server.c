/* skyrootd's servers of HTTP (http.h): a server's life and its
 * connections' (admission, the list, release to the layer above), the
 * listener, and the TLS/TCP transport under a connection.  The protocol
 * is http.c's; see http_priv.h for the files of the layer. */
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/tls.h"
#include "controller/skyrootd/http_priv.h"
#include "controller/skyrootd/listener.h"

const struct http_limits http_default_limits = {
	.url_max = 2048,
	.headers_max = 16 * 1024,
	.header_count_max = 100,
	.body_max = 1024 * 1024,
	.stream_queue_max = HTTP_STREAM_QUEUE_MAX,
	.idle_ms = 30 * 1000,
	.header_ms = 10 * 1000,
	.conns_max = 1024,
};

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

static void http_tls__set_sndbuf(void *t, size_t bytes)
{
	int v = bytes > INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;

	uv_send_buffer_size((uv_handle_t *)sky_tls_stream(t), &v);
}

static const struct http_transport http_tls_transport = {
	.write = http_tls__write,
	.queued = http_tls__queued,
	.close = http_tls__close,
	.abort = http_tls__abort,
	.set_idle = http_tls__set_idle,
	.set_deadline = http_tls__set_deadline,
	.set_sndbuf = http_tls__set_sndbuf,
};

/* ---- connections ---- */

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
	http_parse_init(c);
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
		http_conn_abort(c, -ECANCELED);
	}
	listener_stop(srv->listener);
	srv->listener = NULL;
	http_server__maybe_free(srv);
}
