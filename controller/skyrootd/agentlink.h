/* The agent port (agentlink.c and its layers, agentlink_priv.h): one
 * mutual-TLS session per board.  It tells the rest of the controller what
 * boards report through struct agentlink_ops, set up by main.c; it calls
 * nothing of guests, events or the API. */
#ifndef SKY_CONTROLLER_AGENTLINK_H
#define SKY_CONTROLLER_AGENTLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "skyroot.pb-c.h"

struct agentlink;
struct controller;

/* Called on the loop thread; any may be NULL. */
struct agentlink_ops {
	/* A board's session is up and it said hello for the first time: its
	 * guests can be driven to their desired state. */
	void (*board_up)(void *ctx, const char *board_id);
	/* That session ended (not called while the link stops). */
	void (*board_down)(void *ctx, const char *board_id);
	/* The board reported its guests. */
	void (*guest_report)(void *ctx, const char *board_id, const Skyroot__GuestReport *r);
	/* Console output of one of the board's guests. */
	void (*console)(void *ctx, const char *board_id, const Skyroot__ConsoleData *d);
	/* The board answered the bare-metal boot order whose request id is req. */
	void (*boot_result)(void *ctx, const char *board_id, uint64_t req, const Skyroot__BareMetalBootResult *r);
	/* Something an integrator watches happened (docs/api.md "Events"):
	 * type ("board.offline"), the object's kind and id, and a detail of
	 * key, value pairs ended by NULL.  in_txn: told inside the store's
	 * transaction of what it tells (an enrollment, a new pending board),
	 * so that the event is durable with it; else it may be written later. */
	void (*event)(void *ctx, bool in_txn, const char *type, const char *kind, const char *id,
		      const char *const *detail);
};

struct listener_limits;
/* Listen on addr under lim (listener.h); sets ctl->agents. */
int agentlink_start(struct controller *ctl, const struct sockaddr *addr, const struct listener_limits *lim,
		    const struct agentlink_ops *ops, void *ops_ctx);
void agentlink_stop(struct agentlink *al);
/* The agent port's TLS: TLS 1.3, this server certificate and key, client
 * certificates of the CA ca asked for (enrollment comes without one).
 * NULL when they do not fit. */
SSL_CTX *agentlink_tls_ctx(X509 *cert, EVP_PKEY *key, X509 *ca);
/* New connections use ssl_ctx (a reference is taken) and lim; the open
 * sessions keep theirs.  Accepts NULL. */
void agentlink_set_tls(struct agentlink *al, SSL_CTX *ssl_ctx, const struct listener_limits *lim);
/* Is the board in a live session?  last_seen (unix s) of the session. */
bool agentlink_board_online(struct agentlink *al, const char *board_id, int64_t *last_seen);
/* How many boards are in a live session (0 when al is NULL). */
size_t agentlink_online_count(const struct agentlink *al);
/* Close the board's session now (after a delete). */
void agentlink_board_kick(struct agentlink *al, const char *board_id);
/* Flush in-memory last-seen times to the store. */
void agentlink_flush(struct agentlink *al);
/* Ask a board to load an image into its RAM cache: -ENOTCONN when the
 * board has no session, -ENOENT when the image is gone. */
int agentlink_board_fetch(struct agentlink *al, const char *board_id, const char *image_id);
/* Send a message to a board's session: -ENOTCONN when it has none. */
int agentlink_board_send(struct agentlink *al, const char *board_id, Skyroot__Envelope *env);
/* Mark a board as running a bare-metal OS (its session ends soon). */
int agentlink_board_baremetal(struct agentlink *al, const char *board_id, bool on);
/* The chunk buffer pool (al_pool.c), in bytes: in use now, allocated
 * now, the most ever allocated, and the bound it never passes. */
struct agentlink_pool_stats {
	uint64_t in_use_bytes;
	uint64_t allocated_bytes;
	uint64_t peak_bytes;
	uint64_t limit_bytes;
};
/* All zero when al is NULL. */
void agentlink_pool_stats(const struct agentlink *al, struct agentlink_pool_stats *st);
/* What the board last reported of its image cache (NULL: nothing yet). */
const Skyroot__ImageStatus *agentlink_board_images(struct agentlink *al, const char *board_id);

#endif
