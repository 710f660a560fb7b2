/* Guests' serial consoles: what the boards send of each guest's console,
 * kept for `skyctl guest console [--follow]` (GET /v1/guests/{id}/console).
 *
 * The controller that holds a board's session keeps each of its guests'
 * output in a ring of GUEST_CONSOLE_RING bytes in memory: the local truth.
 * On SQLite (one controller) that is all: reads and followers are served
 * from the ring, and nothing is written to the store.
 *
 * On a shared store (fleet_shared: PostgreSQL, several controllers) the
 * holder also copies each guest's new output into the store (table
 * guest_console: rows of (guest_id, seq, data, at), about
 * GUEST_CONSOLE_RING bytes and at most CONSOLE_ROWS_MAX rows per guest,
 * older rows trimmed by the same statement), coalesced: one statement per
 * guest at most every CONSOLE_FLUSH_MS, each followed by a "console GUEST"
 * wake-up (fleet.h).  seq is MAX(seq) + 1 of the guest's rows, taken in
 * the statement that inserts it, so it keeps growing when the board moves
 * to another controller.  Every controller (the holder too) then serves
 * reads from the store and streams followers the rows after the last one
 * they got, on each wake-up and every CONSOLE_POLL_MS while it has
 * followers (a wake-up lost while the bus reconnects only delays).
 *
 * What is not trusted: a board's chunk is bounded (CONSOLE_CHUNK_MAX) and
 * counts only for a guest placed on that board; a wake-up's guest id is
 * only a key looked up among this controller's followers; a row's bytes
 * are bounded before they are used.  Main loop only. */
#ifndef SKY_CONTROLLER_CONSOLES_H
#define SKY_CONTROLLER_CONSOLES_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "skyroot.pb-c.h"

#define GUEST_CONSOLE_RING (64u * 1024u)
#define CONSOLE_CHUNK_MAX (64u * 1024u) /* one ConsoleData from a board */
#define CONSOLE_FLUSH_MS 150
#define CONSOLE_RETRY_MS 1000           /* after a flush the store refused */
#define CONSOLE_POLL_MS 3000
#define CONSOLE_ROWS_MAX 512

struct consoles;
struct db;
struct fleet;
struct guests;

/* fleet may be NULL (tests, tools): as on SQLite. */
int consoles_start(uv_loop_t *loop, struct db *db, struct guests *g, struct fleet *f, struct consoles **out);
/* Writes what waits to the store (shared), lets every follower go; the
 * memory goes when the loop has closed its timers.  Before fleet_stop. */
void consoles_stop(struct consoles *cs);

/* A board's console output (main.c routes the agent link's here). */
void consoles_on_data(struct consoles *cs, const char *board_id, const Skyroot__ConsoleData *d);
/* A guest was deleted (its rows went with it, guests_delete): its ring
 * goes too, unless someone follows it. */
void consoles_forget(struct consoles *cs, const char *guest_id);

/* The newest bytes of the guest's console, up to outlen: its length, or a
 * negative errno (the store's, on a shared store). */
int consoles_read(struct consoles *cs, const char *guest_id, char *out, size_t outlen, size_t *len);
/* Follow the guest's console: out gets the newest bytes now (as
 * consoles_read), and cb every byte after them, later (never from inside
 * this call), until consoles_unfollow(ctx). */
typedef void (*consoles_cb)(void *ctx, const uint8_t *data, size_t len);
int consoles_follow(struct consoles *cs, const char *guest_id, consoles_cb cb, void *ctx, char *out, size_t outlen,
		    size_t *len);
void consoles_unfollow(struct consoles *cs, const char *guest_id, void *ctx);

#endif
