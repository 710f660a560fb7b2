/* The agent link's transport: a board session's socket, TLS and framing
 * on the session loop it was placed on, driven from the main loop, where
 * the session's logic lives (the threading model: loops.c).
 *
 * A connection has two halves in one struct.  The main half (ready,
 * closing, sent, drained) is touched on the main loop only; the loop half
 * (t, dec, written, cert_expired) on its session loop only; what they tell
 * each other goes through loops_post(), in order.  The last message of the
 * loop half is `closed`; main then posts `release`, the last message of
 * the main half, and the loop half frees the struct: nothing is freed
 * while a message for it is still queued. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/x509.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/loops.h"

struct al_conn {
	struct loops *loops;
	const struct al_conn_ops *ops;
	void *owner;                  /* the session (main's) */
	unsigned loop;
	/* main half */
	bool ready, closing;
	uint64_t sent, drained;       /* plaintext bytes posted / written out */
	/* loop half */
	struct sky_tls *t;
	struct sky_frame_decoder dec;
	uint64_t written;
	bool cert_expired;
	int fd;
	SSL_CTX *ssl_ctx;
	uint64_t handshake_ms, admit_ms;
};

struct conn_msg {
	struct al_conn *c;
	int kind;
	int err;
	uint64_t n;
	void *p, *p2;
	size_t off, len;
};

static int conn_ex_index = -1;

int al_conn_ex_index(void)
{
	if (conn_ex_index < 0)
		conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	return conn_ex_index;
}

static struct conn_msg *conn_msg(struct al_conn *c, int kind)
{
	struct conn_msg *m = calloc(1, sizeof(*m));

	if (m) {
		m->c = c;
		m->kind = kind;
	}
	return m;
}

static int conn_post(struct al_conn *c, unsigned loop, loops_fn fn, struct conn_msg *m)
{
	if (!m)
		return -ENOMEM;
	if (loops_post(c->loops, loop, fn, m) < 0) {
		free(m);
		return -ENOMEM;
	}
	return 0;
}

/* ---- on main: what the session loop reports ---- */

enum { UP_READY, UP_FRAME, UP_DRAINED, UP_CLOSED };

static void conn_up(void *arg)
{
	struct conn_msg *m = arg;
	struct al_conn *c = m->c;

	switch (m->kind) {
	case UP_READY:
		c->ready = !c->closing;
		c->ops->on_ready(c->owner, m->p);
		free(m->p);
		break;
	case UP_FRAME:
		c->ops->on_frame(c->owner, m->p, m->p2);
		break;
	case UP_DRAINED:
		c->drained = m->n;
		if (c->drained == c->sent)
			c->ops->on_drained(c->owner);
		break;
	case UP_CLOSED:
		c->ready = false;
		c->closing = true;
		c->ops->on_closed(c->owner, m->err);
		break;
	}
	free(m);
}

static void conn_tell(struct al_conn *c, struct conn_msg *m)
{
	if (conn_post(c, 0, conn_up, m) < 0)
		log_error("agent link: out of memory passing an event to the main loop");
}

/* ---- on the session loop: the socket ---- */

static void conn_on_ready(struct sky_tls *t)
{
	struct al_conn *c = sky_tls_data(t);
	X509 *cert = SSL_get0_peer_certificate(sky_tls_ssl(t));
	struct conn_msg *m = conn_msg(c, UP_READY);
	struct al_peer *peer = calloc(1, sizeof(*peer));

	if (!m || !peer) {
		free(m);
		free(peer);
		sky_tls_abort(t, -ENOMEM);
		return;
	}
	if (cert && !c->cert_expired) /* a certificate of our CA: board frames */
		sky_frame_decoder_init(&c->dec, SKY_FRAME_MAX_DEFAULT);
	if (cert) {
		peer->present = true;
		peer->expired = c->cert_expired;
		peer->cn_ok = sky_cert_cn(cert, peer->cn, sizeof(peer->cn)) >= 0;
		peer->serial = sky_cert_serial(cert);
		peer->not_after = sky_cert_not_after(cert);
	}
	m->p = peer;
	conn_tell(c, m);
}

static int conn_on_frame(void *ctx, Skyroot__Envelope *env)
{
	struct al_conn *c = ctx;
	struct conn_msg *m = conn_msg(c, UP_FRAME);

	if (!m) {
		skyroot__envelope__free_unpacked(env, NULL);
		return -ENOMEM;
	}
	m->p = env;
	m->p2 = c->ops->loop_frame ? c->ops->loop_frame(env) : NULL;
	conn_tell(c, m);
	return 0;
}

static void conn_on_data(struct sky_tls *t, const uint8_t *data, size_t len)
{
	struct al_conn *c = sky_tls_data(t);
	int r = sky_frame_feed(&c->dec, data, len, conn_on_frame, c);

	if (r < 0) {
		log_warn("agent link: %s; closing the connection",
			 r == -EMSGSIZE ? "frame over the size limit" : "malformed frame");
		sky_tls_abort(t, r);
	}
}

static void conn_on_drain(struct sky_tls *t)
{
	struct al_conn *c = sky_tls_data(t);
	struct conn_msg *m = conn_msg(c, UP_DRAINED);

	if (m) {
		m->n = c->written;
		conn_tell(c, m);
	}
}

static void conn_on_close(struct sky_tls *t, int err)
{
	struct al_conn *c = sky_tls_data(t);
	struct conn_msg *m = conn_msg(c, UP_CLOSED);

	c->t = NULL;
	if (!m) {
		/* main would never learn of it: better to leak than to lie */
		log_error("agent link: out of memory reporting a closed connection");
		return;
	}
	m->err = err;
	conn_tell(c, m);
}

static const struct sky_tls_cbs conn_cbs = {
	.on_ready = conn_on_ready,
	.on_data = conn_on_data,
	.on_drain = conn_on_drain,
	.on_close = conn_on_close,
};

enum { DOWN_OPEN, DOWN_SEND, DOWN_CLOSE, DOWN_ABORT, DOWN_IDLE, DOWN_ADMIT, DOWN_RELEASE };

static void conn_open(struct al_conn *c)
{
	int r = sky_tls_new(loops_loop(c->loops, c->loop), c->ssl_ctx, SKY_TLS_SERVER, &conn_cbs, c, &c->t);

	SSL_CTX_free(c->ssl_ctx);
	c->ssl_ctx = NULL;
	if (r < 0) {
		struct conn_msg *m = conn_msg(c, UP_CLOSED);
		close(c->fd);
		c->t = NULL;
		if (m) {
			m->err = r;
			conn_tell(c, m);
		}
		return;
	}
	SSL_set_ex_data(sky_tls_ssl(c->t), al_conn_ex_index(), &c->cert_expired);
	r = uv_tcp_open(sky_tls_tcp(c->t), c->fd);
	if (r < 0) {
		close(c->fd);
		sky_tls_abort(c->t, r);
		return;
	}
	if (c->handshake_ms)
		sky_tls_set_handshake_deadline(c->t, c->handshake_ms);
	sky_tls_set_deadline(c->t, c->admit_ms);
	uv_tcp_nodelay(sky_tls_tcp(c->t), 1);
	r = sky_tls_start(c->t);
	if (r < 0)
		sky_tls_abort(c->t, r);
}

static void conn_buf_free(struct al_pool *pool, uint8_t *buf)
{
	if (pool)
		al_pool_put(pool, buf);
	else
		free(buf);
}

/* A frame in a pool buffer is sealed into a second one, which goes to the
 * socket as it is and back to the pool once written: no allocation. */
static int conn_write(struct al_conn *c, struct conn_msg *m)
{
	const uint8_t *data = (const uint8_t *)m->p + m->off;
	uint8_t *out = m->p2 && SKY_TLS_WRITE_ROOM(m->len) <= AL_POOL_BUF ? al_pool_get(m->p2, true) : NULL;

	if (!out)
		return sky_tls_write(c->t, data, m->len);
	return sky_tls_write_into(c->t, data, m->len, out, AL_POOL_BUF, al_pool_put_cb, m->p2);
}

static void conn_down(void *arg)
{
	struct conn_msg *m = arg;
	struct al_conn *c = m->c;

	switch (m->kind) {
	case DOWN_OPEN:
		conn_open(c);
		break;
	case DOWN_SEND:
		c->written += m->len;
		if (c->t && conn_write(c, m) < 0 && sky_tls_queued(c->t) == 0)
			conn_on_drain(c->t); /* nothing will be written: main stops counting it */
		conn_buf_free(m->p2, m->p);
		break;
	case DOWN_CLOSE:
		if (c->t)
			sky_tls_close(c->t, m->err);
		break;
	case DOWN_ABORT:
		if (c->t)
			sky_tls_abort(c->t, m->err);
		break;
	case DOWN_IDLE:
		if (c->t)
			sky_tls_set_idle_timeout(c->t, m->n);
		break;
	case DOWN_ADMIT:
		if (c->t)
			sky_tls_set_deadline(c->t, 0);
		break;
	case DOWN_RELEASE:
		sky_frame_decoder_free(&c->dec);
		free(c);
		break;
	}
	free(m);
}

/* ---- the main half's interface ---- */

struct al_conn *al_conn_open(struct loops *loops, const struct al_conn_ops *ops, void *owner, int fd,
			     SSL_CTX *ssl_ctx, uint64_t handshake_ms, uint64_t admit_ms)
{
	struct al_conn *c = calloc(1, sizeof(*c));

	if (!c || SSL_CTX_up_ref(ssl_ctx) != 1) {
		free(c);
		return NULL;
	}
	c->loops = loops;
	c->ops = ops;
	c->owner = owner;
	c->fd = fd;
	c->ssl_ctx = ssl_ctx;
	c->handshake_ms = handshake_ms;
	c->admit_ms = admit_ms;
	c->loop = loops_pick(loops);
	sky_frame_decoder_init(&c->dec, AL_ENROLL_FRAME_MAX);
	if (conn_post(c, c->loop, conn_down, conn_msg(c, DOWN_OPEN)) < 0) {
		SSL_CTX_free(ssl_ctx);
		free(c);
		return NULL;
	}
	return c;
}

int al_conn_send(struct al_conn *c, uint8_t *buf, size_t off, size_t len, struct al_pool *pool)
{
	struct conn_msg *m;

	if (!c->ready || c->closing) {
		conn_buf_free(pool, buf);
		return -ENOTCONN;
	}
	m = conn_msg(c, DOWN_SEND);
	if (!m) {
		conn_buf_free(pool, buf);
		return -ENOMEM;
	}
	m->p = buf;
	m->p2 = pool;
	m->off = off;
	m->len = len;
	if (conn_post(c, c->loop, conn_down, m) < 0) {
		conn_buf_free(pool, buf);
		return -ENOMEM;
	}
	c->sent += len;
	return 0;
}

static void conn_simple(struct al_conn *c, int kind, int err, uint64_t n)
{
	struct conn_msg *m = conn_msg(c, kind);

	if (m) {
		m->err = err;
		m->n = n;
	}
	if (conn_post(c, c->loop, conn_down, m) < 0)
		log_error("agent link: out of memory passing an order to a session loop");
}

void al_conn_close(struct al_conn *c, int err)
{
	if (c->closing)
		return;
	c->closing = true;
	c->ready = false;
	conn_simple(c, DOWN_CLOSE, err, 0);
}

void al_conn_abort(struct al_conn *c, int err)
{
	c->closing = true;
	c->ready = false;
	conn_simple(c, DOWN_ABORT, err, 0);
}

void al_conn_idle(struct al_conn *c, uint64_t ms)
{
	if (!c->closing)
		conn_simple(c, DOWN_IDLE, 0, ms);
}

void al_conn_admit(struct al_conn *c)
{
	if (!c->closing)
		conn_simple(c, DOWN_ADMIT, 0, 0);
}

void al_conn_release(struct al_conn *c)
{
	conn_simple(c, DOWN_RELEASE, 0, 0);
}

bool al_conn_ready(const struct al_conn *c)
{
	return c->ready && !c->closing;
}

size_t al_conn_queued(const struct al_conn *c)
{
	return (size_t)(c->sent - c->drained);
}
