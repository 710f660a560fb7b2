/* Several controllers on one store (issue 14; docs/ha.md).  Each board
 * holds its session with one controller; every controller answers every
 * API call.  What crosses between controllers goes through the store:
 *
 *  - presence: which controller holds which board's session (a row per
 *    board, refreshed while the session lives; a row no one refreshed for
 *    FLEET_PRESENCE_STALE_S is a board nobody holds);
 *  - relay: an order for a board held elsewhere (a guest's desired state,
 *    a fetch, a boot) is a row of an outbox for that board, taken and sent
 *    by the controller that holds it;
 *  - wake-ups: PostgreSQL LISTEN/NOTIFY on one channel, payload "TOPIC
 *    ARG": "outbox BOARD" (fleet.c), "events RV" (events.c); a controller
 *    subscribes to topics and is called on its main loop.  NOTIFY is
 *    transactional: published inside the store's transaction, it is heard
 *    when that commits.  A wake-up lost while the bus was down is made up
 *    for: the outbox is read again on reconnection and every
 *    FLEET_PRESENCE_STALE_S / 3 s;
 *  - jobs that must run once in the fleet (expiry sweeps, trims, the
 *    scrub): each under a PostgreSQL advisory lock on the bus's own
 *    connection, held while that connection lives (a controller killed
 *    drops it, and another takes the job at its next try).
 *
 * On SQLite there is one controller: no rows, publish calls this
 * controller's subscribers on the next loop turn, every job is ours.
 *
 * What is not trusted: a payload is parsed and bounded (a topic of lower
 * case letters, an argument of id characters) and never means more than
 * "wake up and read the store"; an outbox row's bytes are bounded and
 * unpacked by protobuf-c before they go to a board.  Main loop only. */
#ifndef SKY_CONTROLLER_FLEET_H
#define SKY_CONTROLLER_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "skyroot.pb-c.h"

struct controller;
struct fleet;

#define FLEET_ID_MAX 48               /* "ctl-<hostname>-<hex>" */
#define FLEET_PRESENCE_STALE_S 30
#define FLEET_OUTBOX_TTL_S 300        /* orders nobody took by then are dropped */
#define FLEET_PAYLOAD_MAX 200         /* "TOPIC ARG" */
#define FLEET_ENVELOPE_MAX (256 * 1024) /* a relayed order, packed */

enum fleet_job {
	FLEET_JOB_SCRUB = 1,
	FLEET_JOB_SWEEP,              /* pending boards, idempotency keys, audit and event trims */
};

typedef void (*fleet_cb)(void *ctx, const char *arg);

/* The sessions this controller holds (main.c wires the agent link): what
 * fleet.c does to a board held here. */
struct fleet_local_ops {
	bool (*online)(void *ctx, const char *board_id, int64_t *last_seen);
	int (*send)(void *ctx, const char *board_id, Skyroot__Envelope *env);   /* -ENOTCONN: not here */
	int (*fetch)(void *ctx, const char *board_id, const char *image_id);    /* -ENOTCONN: not here */
	void (*kick)(void *ctx, const char *board_id);
};

/* Starts the bus (its own connection to the store's database when that is
 * PostgreSQL, reconnected with backoff when lost) and sets ctl->fleet. */
int fleet_start(struct controller *ctl, struct fleet **out);
void fleet_stop(struct fleet *f);
/* Before the agent link starts. */
void fleet_set_local(struct fleet *f, const struct fleet_local_ops *ops, void *ctx);
/* This controller's id in presence rows and logs. */
const char *fleet_self(const struct fleet *f);
/* More than one controller may share the store (it is PostgreSQL). */
bool fleet_shared(const struct fleet *f);

int fleet_subscribe(struct fleet *f, const char *topic, fleet_cb cb, void *ctx);
/* Heard by every controller's subscribers of topic (this one's too), when
 * the store's current transaction commits, or soon when none is open. */
int fleet_publish(struct fleet *f, const char *topic, const char *arg);

/* Presence of the boards whose sessions this controller holds. */
void fleet_board_up(struct fleet *f, const char *board_id);
void fleet_board_down(struct fleet *f, const char *board_id);
/* Held by some controller now (here: the session; elsewhere: a fresh
 * presence row); last_seen (may be NULL) its last sign of life. */
bool fleet_board_online(struct fleet *f, const char *board_id, int64_t *last_seen);
/* The same, and holder (may be NULL) gets the id of the controller that
 * holds the session (this one's on SQLite). */
bool fleet_board_where(struct fleet *f, const char *board_id, int64_t *last_seen, char holder[FLEET_ID_MAX]);
/* To the board wherever its session is: sent here, or put in the outbox
 * of the controller that holds it.  -ENOTCONN when nobody holds it. */
int fleet_board_send(struct fleet *f, const char *board_id, Skyroot__Envelope *env);
/* agentlink_board_fetch and agentlink_board_kick wherever the board's
 * session is (the same errors; a kick of a board held nowhere is 0). */
int fleet_board_fetch(struct fleet *f, const char *board_id, const char *image_id);
void fleet_board_kick(struct fleet *f, const char *board_id);

/* Whether this controller runs job now (takes its lock when free). */
bool fleet_job_mine(struct fleet *f, enum fleet_job job);
/* Inside the store's transaction, before an event's insert: on
 * PostgreSQL the fleet's events lock (pg_advisory_xact_lock, held to the
 * commit: rvs commit in order); 0 at once on SQLite (one writer) or when
 * f is NULL. */
int fleet_order_events(struct fleet *f);

#endif
