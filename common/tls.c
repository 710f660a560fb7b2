#include "common/tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TLS_READ_CHUNK (64 * 1024)
#define TLS_DEFAULT_WRITE_LIMIT (8u * 1024 * 1024)
/* A TLS record: 16 KiB of data and at most this much around it. */
#define TLS_RECORD_DATA 16384u
#define TLS_RECORD_OVERHEAD 256u

struct sky_tls {
	uv_tcp_t tcp;
	uv_timer_t *timer;         /* only while a timeout or deadline is set */
	SSL *ssl;
	BIO *rbio;                 /* network -> SSL */
	BIO *wbio;                 /* SSL -> network: appends to out (tls_out_write) */
	struct tls_write *out;     /* records not yet handed to libuv */
	size_t out_hint;           /* room for the write under way (sky_tls_write) */
	const struct sky_tls_cbs *cbs;
	void *data;
	size_t queued;
	size_t write_limit;
	uint64_t idle_ms;
	uint64_t idle_at;          /* loop time the idle timeout ends (0: none) */
	uint64_t deadline_at;      /* fixed deadline (0: none) */
	uint64_t handshake_at;     /* fixed deadline of the handshake (0: none) */
	int close_err;
	enum sky_tls_role role;
	bool plain;                /* no TLS layer: bytes pass as they are */
	bool ready;
	bool closing;
	bool handle_closed;
	bool in_callback;
};

struct tls_write {
	uv_write_t req;
	struct sky_tls *t;
	size_t len;
	size_t cap;
	uint8_t *bytes;            /* inline below, or the caller's (sky_tls_write_into) */
	sky_tls_release_fn release; /* gives the caller's bytes back */
	void *release_ctx;
	uint8_t inline_bytes[];
};

static struct tls_write *tls_write_new(struct sky_tls *t, size_t cap)
{
	struct tls_write *w = malloc(sizeof(*w) + cap);

	if (w) {
		w->t = t;
		w->len = 0;
		w->cap = cap;
		w->bytes = w->inline_bytes;
		w->release = NULL;
		w->release_ctx = NULL;
	}
	return w;
}

static void tls_write_free(struct tls_write *w)
{
	if (!w)
		return;
	if (w->release)
		w->release(w->release_ctx, w->bytes);
	free(w);
}

/* A loop runs on one thread: one read buffer per thread serves every
 * connection of its loop. */
static _Thread_local uint8_t tls_read_buf[TLS_READ_CHUNK];
static _Thread_local uint8_t tls_plain_buf[TLS_RECORD_DATA];

/* The write side is not a memory BIO: SSL's records are appended straight
 * to a buffer that goes to uv_write as it is, sized for the whole
 * sky_tls_write (no growing, no copy out of a BIO).  The method is made
 * once and never changes. */
static BIO_METHOD *tls_out_method;
static pthread_once_t tls_out_once = PTHREAD_ONCE_INIT;

static int tls_submit(struct sky_tls *t);
static int tls_seal(struct sky_tls *t, const uint8_t *p, size_t len);

static int tls_out_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct sky_tls *t = BIO_get_data(b);
	struct tls_write *w = t->out;

	if (w && w->cap - w->len < len) {
		if (tls_submit(t) < 0)
			return 0;
		w = NULL;
	}
	if (!w) {
		size_t cap = t->out_hint > len ? t->out_hint : len;
		if (cap < TLS_RECORD_DATA + TLS_RECORD_OVERHEAD)
			cap = TLS_RECORD_DATA + TLS_RECORD_OVERHEAD;
		w = tls_write_new(t, cap);
		if (!w)
			return 0;
		t->out = w;
	}
	memcpy(w->bytes + w->len, data, len);
	w->len += len;
	*written = len;
	return 1;
}

static long tls_out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void tls_out_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "skyroot uv out");
	if (m && (!BIO_meth_set_write_ex(m, tls_out_write) || !BIO_meth_set_ctrl(m, tls_out_ctrl))) {
		BIO_meth_free(m);
		m = NULL;
	}
	tls_out_method = m;
}

SSL_CTX *sky_tls_ctx_new(enum sky_tls_role role, int min_version)
{
	SSL_CTX *ctx = SSL_CTX_new(role == SKY_TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, min_version);
	/* Idle sessions hold no read/write buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (role == SKY_TLS_SERVER) {
		/* No resumption: no tickets (TLS 1.3 and 1.2), no cache. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	return ctx;
}

int sky_tls_new(uv_loop_t *loop, SSL_CTX *ctx, enum sky_tls_role role,
		const struct sky_tls_cbs *cbs, void *data, struct sky_tls **out)
{
	struct sky_tls *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	if (!ctx) {
		t->plain = true;
		goto tcp;
	}
	pthread_once(&tls_out_once, tls_out_method_init);
	t->ssl = SSL_new(ctx);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = tls_out_method ? BIO_new(tls_out_method) : NULL;
	if (!t->ssl || !t->rbio || !t->wbio) {
		r = -ENOMEM;
		goto fail;
	}
	BIO_set_mem_eof_return(t->rbio, -1);
	BIO_set_data(t->wbio, t);
	BIO_set_init(t->wbio, 1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio); /* SSL owns the BIOs now */
	if (role == SKY_TLS_SERVER)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
tcp:
	r = uv_tcp_init(loop, &t->tcp);
	if (r < 0)
		goto fail_ssl;
	t->tcp.data = t;
	t->cbs = cbs;
	t->data = data;
	t->role = role;
	t->write_limit = TLS_DEFAULT_WRITE_LIMIT;
	*out = t;
	return 0;

fail:
	BIO_free(t->rbio);
	BIO_free(t->wbio);
fail_ssl:
	SSL_free(t->ssl);
	free(t);
	return r;
}

uv_tcp_t *sky_tls_tcp(struct sky_tls *t) { return &t->tcp; }
uv_stream_t *sky_tls_stream(struct sky_tls *t) { return (uv_stream_t *)&t->tcp; }
SSL *sky_tls_ssl(struct sky_tls *t) { return t->ssl; }
void *sky_tls_data(struct sky_tls *t) { return t->data; }
void sky_tls_set_data(struct sky_tls *t, void *data) { t->data = data; }
bool sky_tls_is_ready(const struct sky_tls *t) { return t->ready && !t->closing; }
size_t sky_tls_queued(const struct sky_tls *t) { return t->queued; }
void sky_tls_set_write_limit(struct sky_tls *t, size_t max) { t->write_limit = max; }

static void tls_free_cb(uv_handle_t *h)
{
	struct sky_tls *t = h->data;
	if (t->cbs->on_close)
		t->cbs->on_close(t, t->close_err);
	SSL_free(t->ssl);
	tls_write_free(t->out);
	free(t);
}

static void tls_timer_closed(uv_handle_t *h)
{
	free(h);
}

static void tls_close_handles(struct sky_tls *t)
{
	if (t->handle_closed)
		return;
	t->handle_closed = true;
	if (t->timer) {
		uv_close((uv_handle_t *)t->timer, tls_timer_closed);
		t->timer = NULL;
	}
	uv_close((uv_handle_t *)&t->tcp, tls_free_cb);
}

void sky_tls_abort(struct sky_tls *t, int err)
{
	if (!t->closing)
		t->close_err = err;
	t->closing = true;
	uv_read_stop(sky_tls_stream(t));
	tls_close_handles(t);
}

static void tls_write_done(uv_write_t *req, int status)
{
	struct tls_write *w = (struct tls_write *)req;
	struct sky_tls *t = w->t;

	t->queued -= w->len;
	tls_write_free(w);
	if (status < 0 && status != UV_ECANCELED) {
		sky_tls_abort(t, status);
		return;
	}
	if (t->closing) {
		if (t->queued == 0)
			tls_close_handles(t);
		return;
	}
	if (t->queued == 0 && t->cbs->on_drain)
		t->cbs->on_drain(t);
}

/* Hand the records SSL produced to the socket, in the buffer they were
 * written into. */
static int tls_submit(struct sky_tls *t)
{
	struct tls_write *w = t->out;
	uv_buf_t b;
	int r;

	if (!w || w->len == 0)
		return 0;
	t->out = NULL;
	b = uv_buf_init((char *)w->bytes, (unsigned)w->len);
	r = uv_write(&w->req, sky_tls_stream(t), &b, 1, tls_write_done);
	if (r < 0) {
		tls_write_free(w);
		return r;
	}
	t->queued += w->len;
	return 0;
}

static int tls_flush(struct sky_tls *t)
{
	return tls_submit(t);
}

void sky_tls_close(struct sky_tls *t, int err)
{
	if (t->closing)
		return;
	t->close_err = err;
	t->closing = true;
	uv_read_stop(sky_tls_stream(t));
	if (t->ready && !t->plain) {
		SSL_shutdown(t->ssl);
		if (tls_flush(t) < 0) {
			tls_close_handles(t);
			return;
		}
	}
	if (t->queued == 0)
		tls_close_handles(t);
	/* else tls_write_done closes once the last write is out */
}

/* A timeout or deadline ends the connection: politely when nothing is
 * queued, else at once: a peer that does not read would hold a graceful
 * close (and its queued bytes) forever. */
static void tls_timer_cb(uv_timer_t *timer)
{
	struct sky_tls *t = timer->data;
	if (t->queued > 0 || t->closing)
		sky_tls_abort(t, -ETIMEDOUT);
	else
		sky_tls_close(t, -ETIMEDOUT);
}

/* One timer serves the idle timeout and both deadlines: it fires at the
 * earliest of them. */
static void tls_arm(struct sky_tls *t)
{
	uint64_t at = 0, now;
	uint64_t cands[3] = { t->idle_at, t->deadline_at, t->ready ? 0 : t->handshake_at };

	if (t->handle_closed)
		return;
	for (size_t i = 0; i < 3; i++)
		if (cands[i] && (!at || cands[i] < at))
			at = cands[i];
	if (!at) {
		if (t->timer)
			uv_timer_stop(t->timer);
		return;
	}
	if (!t->timer) {
		t->timer = malloc(sizeof(*t->timer));
		if (!t->timer)
			return;
		uv_timer_init(t->tcp.loop, t->timer);
		t->timer->data = t;
	}
	now = uv_now(t->tcp.loop);
	uv_timer_start(t->timer, tls_timer_cb, at > now ? at - now : 0, 0);
}

/* Loop time timeout_ms from now; 0 stays 0 (none). */
static uint64_t tls_from_now(struct sky_tls *t, uint64_t timeout_ms)
{
	return timeout_ms ? uv_now(t->tcp.loop) + timeout_ms : 0;
}

void sky_tls_set_idle_timeout(struct sky_tls *t, uint64_t timeout_ms)
{
	t->idle_ms = timeout_ms;
	t->idle_at = tls_from_now(t, timeout_ms);
	tls_arm(t);
}

void sky_tls_set_deadline(struct sky_tls *t, uint64_t timeout_ms)
{
	t->deadline_at = tls_from_now(t, timeout_ms);
	tls_arm(t);
}

void sky_tls_set_handshake_deadline(struct sky_tls *t, uint64_t timeout_ms)
{
	t->handshake_at = tls_from_now(t, timeout_ms);
	tls_arm(t);
}

static int tls_ssl_error(struct sky_tls *t, int ret)
{
	int e = SSL_get_error(t->ssl, ret);
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

static void tls_on_bytes(struct sky_tls *t, const uint8_t *data, size_t len)
{
	int r;

	if (t->plain) {
		t->cbs->on_data(t, data, len);
		return;
	}
	if (BIO_write(t->rbio, data, (int)len) != (int)len) {
		sky_tls_abort(t, -ENOMEM);
		return;
	}
	if (!t->ready) {
		r = SSL_do_handshake(t->ssl);
		if (tls_flush(t) < 0) {
			sky_tls_abort(t, -EIO);
			return;
		}
		if (r != 1) {
			r = tls_ssl_error(t, r);
			if (r < 0)
				sky_tls_close(t, -EPROTO);
			return;
		}
		t->ready = true;
		if (t->handshake_at) {
			t->handshake_at = 0;
			tls_arm(t);
		}
		if (t->cbs->on_ready)
			t->cbs->on_ready(t);
		if (t->closing)
			return;
	}
	for (;;) {
		r = SSL_read(t->ssl, tls_plain_buf, sizeof(tls_plain_buf));
		if (r <= 0) {
			int e = tls_ssl_error(t, r);
			if (tls_flush(t) < 0)
				e = -EIO;
			if (e == -ECONNRESET)
				sky_tls_close(t, 0);
			else if (e < 0)
				sky_tls_close(t, e);
			return;
		}
		t->cbs->on_data(t, tls_plain_buf, (size_t)r);
		if (t->closing)
			return;
	}
}

static void tls_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	/* libuv calls read_cb right after alloc_cb, so one buffer is enough. */
	buf->base = (char *)tls_read_buf;
	buf->len = sizeof(tls_read_buf);
}

static void tls_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct sky_tls *t = s->data;

	(void)buf;
	if (nread == 0)
		return;
	if (nread < 0) {
		sky_tls_abort(t, nread == UV_EOF ? (t->ready ? 0 : -ECONNRESET) : (int)nread);
		return;
	}
	if (t->idle_ms) {
		t->idle_at = tls_from_now(t, t->idle_ms);
		tls_arm(t);
	}
	/* BIO_write copies out of the shared buffer before any callback runs. */
	tls_on_bytes(t, (const uint8_t *)buf->base, (size_t)nread);
}

int sky_tls_start(struct sky_tls *t)
{
	int r = uv_read_start(sky_tls_stream(t), tls_alloc_cb, tls_read_cb);
	if (r < 0)
		return r;
	if (t->plain) {
		t->ready = true;
		if (t->cbs->on_ready)
			t->cbs->on_ready(t);
		return 0;
	}
	if (t->role == SKY_TLS_CLIENT) {
		int hr = SSL_do_handshake(t->ssl);
		if (hr != 1 && tls_ssl_error(t, hr) < 0)
			return -EPROTO;
		return tls_flush(t);
	}
	return 0;
}

int sky_tls_write(struct sky_tls *t, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (!t->ready || t->closing)
		return -ENOTCONN;
	if (t->queued > t->write_limit)
		return -ENOBUFS;
	if (t->plain) {
		struct tls_write *w = tls_write_new(t, len);
		uv_buf_t b;
		int r;
		if (!w)
			return -ENOMEM;
		memcpy(w->bytes, data, len);
		w->len = len;
		b = uv_buf_init((char *)w->bytes, (unsigned)len);
		r = uv_write(&w->req, sky_tls_stream(t), &b, 1, tls_write_done);
		if (r < 0) {
			tls_write_free(w);
			return r;
		}
		t->queued += len;
		return 0;
	}
	/* One buffer for all the records of this write: full 16 KiB records
	 * (SSL cuts them), each appended where it goes out from. */
	t->out_hint = sky_tls_write_room(len);
	return tls_seal(t, p, len);
}

size_t sky_tls_write_room(size_t len)
{
	_Static_assert(TLS_RECORD_DATA == 16384u && TLS_RECORD_OVERHEAD == 256u, "SKY_TLS_WRITE_ROOM's figures");
	return SKY_TLS_WRITE_ROOM(len);
}

int sky_tls_write_into(struct sky_tls *t, const void *data, size_t len, uint8_t *out, size_t cap,
		       sky_tls_release_fn release, void *ctx)
{
	struct tls_write *w;

	if (!t->ready || t->closing || t->queued > t->write_limit || t->plain || t->out) {
		/* Not for the caller's buffer: the usual path decides. */
		release(ctx, out);
		return sky_tls_write(t, data, len);
	}
	w = tls_write_new(t, 0); /* its bytes are the caller's */
	if (!w) {
		release(ctx, out);
		return -ENOMEM;
	}
	w->cap = cap;
	w->bytes = out;
	w->release = release;
	w->release_ctx = ctx;
	t->out = w;
	/* Records past cap (not expected: sky_tls_write_room) go to a buffer
	 * of our own after this one. */
	t->out_hint = sky_tls_write_room(len);
	return tls_seal(t, data, len);
}

/* Encrypt len bytes into records appended to t->out, and hand them to
 * the socket. */
static int tls_seal(struct sky_tls *t, const uint8_t *p, size_t len)
{
	while (len > 0) {
		int chunk = len > INT_MAX / 2 ? INT_MAX / 2 : (int)len;
		int n = SSL_write(t->ssl, p, chunk);
		if (n <= 0) {
			t->out_hint = 0;
			ERR_clear_error();
			return -EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	t->out_hint = 0;
	return tls_flush(t);
}
