/* The fleet's bus on PostgreSQL (fleet_pg.c): a connection of its own to
 * the store's database, LISTENing on channel "skyroot", its socket polled
 * on the main loop; reconnected with backoff and jitter when lost.  It
 * also holds the fleet's advisory locks (session-level: they go with the
 * connection, so a controller that dies drops its jobs).  Besides sql_pg.c
 * the one user of libpq.  Main loop only. */
#ifndef SKY_CONTROLLER_FLEET_PG_H
#define SKY_CONTROLLER_FLEET_PG_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define FLEET_PG_CHANNEL "skyroot"

struct fleet_pg;

struct fleet_pg_ops {
	/* A notification's payload (NUL-terminated, as the server sent it:
	 * not trusted, the callee parses and bounds it). */
	void (*note)(void *ctx, const char *payload);
	/* Listening again after a loss: what was published meanwhile was not
	 * heard. */
	void (*resumed)(void *ctx);
};

/* Connects now (a failure is retried in the background: the bus starts
 * anyway).  -ENOMEM only. */
int fleet_pg_start(uv_loop_t *loop, const char *uri, const struct fleet_pg_ops *ops, void *ctx,
		   struct fleet_pg **out);
/* Closes the connection (its locks go) and frees the bus once its handles
 * are closed. */
void fleet_pg_stop(struct fleet_pg *b);
/* pg_try_advisory_lock(key) on the bus's connection, once: true while
 * this connection holds it; false when another session does or the bus is
 * down (a lost connection loses every lock). */
bool fleet_pg_lock(struct fleet_pg *b, unsigned slot, int64_t key);
#define FLEET_PG_LOCKS 8

#endif
