/* TLS over a libuv TCP stream, with OpenSSL driven through BIOs: a memory
 * BIO in; out, a BIO that appends the records straight to the buffer that
 * goes to uv_write (one per sky_tls_write, sized for it: full 16 KiB
 * records, no copy out of a BIO).
 *
 * The connection owns its uv_tcp_t.  Reads go through one buffer per thread
 * (a loop runs on one thread), so an idle connection holds only the SSL
 * object, the handle and this struct.  Every callback may call
 * sky_tls_close(); the struct stays valid until on_close has returned. */
#ifndef SKY_COMMON_TLS_H
#define SKY_COMMON_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct sky_tls;

struct sky_tls_cbs {
	/* TLS handshake finished; peer identity can be inspected. */
	void (*on_ready)(struct sky_tls *t);
	/* Decrypted application bytes. */
	void (*on_data)(struct sky_tls *t, const uint8_t *data, size_t len);
	/* Every queued write has been handed to the kernel (backpressure). */
	void (*on_drain)(struct sky_tls *t);
	/* The handle is closed; err is 0 for an orderly close, else negative
	 * errno (-ETIMEDOUT, -ECONNRESET, -EPROTO for a TLS failure).  The
	 * struct is freed right after this returns. */
	void (*on_close)(struct sky_tls *t, int err);
};

enum sky_tls_role { SKY_TLS_CLIENT, SKY_TLS_SERVER };

/* Make a connection object around a new uv_tcp_t on loop.  ctx NULL makes
 * a plain connection (no TLS layer; for network boot, which firmware does
 * over plain HTTP) with the same interface.  For a server,
 * uv_accept() into sky_tls_stream(t) then call sky_tls_start(); for a
 * client, uv_tcp_connect() on sky_tls_stream(t) and call sky_tls_start()
 * when connected.  0 or -ENOMEM/-EIO; *out is not written on failure. */
int sky_tls_new(uv_loop_t *loop, SSL_CTX *ctx, enum sky_tls_role role,
		const struct sky_tls_cbs *cbs, void *data, struct sky_tls **out);
uv_tcp_t *sky_tls_tcp(struct sky_tls *t);
uv_stream_t *sky_tls_stream(struct sky_tls *t);
SSL *sky_tls_ssl(struct sky_tls *t);
void *sky_tls_data(struct sky_tls *t);
void sky_tls_set_data(struct sky_tls *t, void *data);
bool sky_tls_is_ready(const struct sky_tls *t);

/* Start reading and the handshake.  0 or negative errno. */
int sky_tls_start(struct sky_tls *t);
/* Encrypt and queue bytes.  -ENOTCONN before ready or after close,
 * -ENOBUFS when more than the write limit is queued. */
int sky_tls_write(struct sky_tls *t, const void *data, size_t len);
/* The same with the records written into out (cap bytes, the caller's:
 * sky_tls_write_room(len) is always enough), which goes to the socket as
 * it is; release(ctx, out) gives it back once written or dropped, or at
 * once when this connection cannot take it (then it is sky_tls_write's
 * job, with a buffer of its own).  A caller that recycles its buffers (a
 * pool) thus gets no allocation per write.  release may run on this
 * loop's thread only. */
typedef void (*sky_tls_release_fn)(void *ctx, uint8_t *out);
int sky_tls_write_into(struct sky_tls *t, const void *data, size_t len, uint8_t *out, size_t cap,
		       sky_tls_release_fn release, void *ctx);
/* Bytes of TLS records that len bytes of data make at most (16 KiB
 * records, 256 bytes of room around each: far over TLS 1.3's 22). */
#define SKY_TLS_WRITE_ROOM(len) ((len) + ((len) / 16384u + 1u) * 256u)
size_t sky_tls_write_room(size_t len);
/* Bytes queued to the kernel and not yet written. */
size_t sky_tls_queued(const struct sky_tls *t);
void sky_tls_set_write_limit(struct sky_tls *t, size_t max);
/* Close after the next timeout_ms without any bytes read (0 disables). */
void sky_tls_set_idle_timeout(struct sky_tls *t, uint64_t timeout_ms);
/* Close with -ETIMEDOUT timeout_ms from now, whatever arrives meanwhile
 * (0 cancels).  A deadline, unlike the idle timeout, is not extended by
 * incoming bytes: a peer that dribbles one byte at a time cannot hold the
 * connection past it. */
void sky_tls_set_deadline(struct sky_tls *t, uint64_t timeout_ms);
/* The same for the TLS handshake only: cancelled once it completes. */
void sky_tls_set_handshake_deadline(struct sky_tls *t, uint64_t timeout_ms);
/* Send close_notify and whatever is queued, then close.  Idempotent. */
void sky_tls_close(struct sky_tls *t, int err);
/* Close now without flushing. */
void sky_tls_abort(struct sky_tls *t, int err);

/* Shared context setup.  min_version is TLS1_3_VERSION on the agent link. */
SSL_CTX *sky_tls_ctx_new(enum sky_tls_role role, int min_version);

#endif
