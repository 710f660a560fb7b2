/* Admission for every listening port of skyrootd (agent, API, boot): one
 * piece that accepts connections and decides which may stay.
 *
 *   - a cap on connections open at once, and one per source address (on
 *     the agent port only for connections not yet admitted: a rack behind
 *     one NAT address holds many board sessions);
 *   - descriptors kept in reserve: a listener refuses while fewer than its
 *     reserve of the process's RLIMIT_NOFILE remain, so that a flood of one
 *     port leaves room for the others and for open sessions;
 *   - a refused connection is accepted and closed at once, so the backlog
 *     never fills;
 *   - FIXED deadlines from accept that incoming bytes do not extend: the TLS
 *     handshake, and the whole phase before listener_admit() (enrollment on
 *     the agent port, the first request's headers on HTTP).
 *
 * The owner of a port gets each admitted connection through attach(), with
 * its slot, and gives the slot back with listener_release() when the
 * connection closes.  Loop thread only (the loop that listens; with
 * listener_start_handoff() the connections themselves may live on other
 * loops, loops.c). */
#ifndef SKY_CONTROLLER_LISTENER_H
#define SKY_CONTROLLER_LISTENER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/tls.h"

struct listener;
struct listener_slot;

struct listener_limits {
	unsigned conns_max;         /* connections open at once */
	unsigned per_addr_max;      /* from one source address; 0: no cap */
	bool per_addr_until_admitted; /* count a connection per address only until admitted */
	unsigned fd_reserve;        /* refuse while fewer descriptors than this remain */
	uint64_t handshake_ms;      /* the TLS handshake, from accept (0: none) */
	uint64_t admit_ms;          /* until listener_admit(), from accept (0: none) */
};

/* Defaults: agent 20,000 / 64 unadmitted per address, 30 s to enroll;
 * API 512 / 32; boot 256 / 16; 10 s for a TLS handshake and for the first
 * request's headers. */
extern const struct listener_limits listener_agent_defaults;
extern const struct listener_limits listener_api_defaults;
extern const struct listener_limits listener_boot_defaults;

/* An admitted connection: t is accepted, its deadlines set, not started.
 * Set its data (sky_tls_set_data) and keep the slot; return 0, or a
 * negative errno to refuse it (the listener aborts t: its on_close runs
 * with the data set, or NULL). */
typedef int (*listener_attach_fn)(void *ctx, struct sky_tls *t, struct listener_slot *slot);

/* Listen on addr with TLS from ssl_ctx (NULL: plain) and cbs for every
 * connection.  name is for the log ("agent port").  0 or a negative errno
 * (the listener is gone then). */
int listener_start(uv_loop_t *loop, const char *name, const struct sockaddr *addr, SSL_CTX *ssl_ctx,
		   const struct sky_tls_cbs *cbs, const struct listener_limits *lim, listener_attach_fn attach,
		   void *ctx, struct listener **out);
/* Admitted connections are not made into a sky_tls here but handed over
 * as their descriptor, with the limits they were admitted under (the
 * deadlines: the owner arms them where the connection lives): the owner
 * owns fd on success (0), else the listener closes it and frees the slot.
 * listener_admit() and listener_release() stay on the listening loop. */
typedef int (*listener_handoff_fn)(void *ctx, int fd, struct listener_slot *slot, const struct listener_limits *lim);

/* Listen on addr, accept and admit (caps, per-address, fd reserve) on
 * loop, and hand each admitted connection's descriptor to handoff. */
int listener_start_handoff(uv_loop_t *loop, const char *name, const struct sockaddr *addr,
			   const struct listener_limits *lim, listener_handoff_fn handoff, void *ctx,
			   struct listener **out);
/* Stop accepting.  Connections go on until released; the listener is
 * freed once its handle is closed and every slot is back.  Accepts NULL. */
void listener_stop(struct listener *l);
/* Connections accepted from now on use ssl_ctx (a reference is taken;
 * ignored on a plain listener: a port does not change between TLS and
 * plain) and lim; those open keep what they had.  Accepts NULL. */
void listener_set(struct listener *l, SSL_CTX *ssl_ctx, const struct listener_limits *lim);

/* The connection is past its unauthenticated phase: its admission
 * deadline is off and, with per_addr_until_admitted, it no longer counts
 * against its address.  Accepts NULL; once only has an effect. */
void listener_admit(struct listener_slot *slot);
/* The peer's address for logs and per-address accounting ("127.0.0.1"). */
const char *listener_peer(const struct listener_slot *slot);
/* The connection is gone.  Accepts NULL. */
void listener_release(struct listener_slot *slot);

#endif
