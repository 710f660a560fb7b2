/* What became of each board's last bare-metal boot order: sent, then the
 * board's answer (accepted, refused or failed, with its reason).  api_boards.c
 * records the orders and shows them; the agent link's answers arrive here
 * through its ops (main.c wires them).
 *
 * Kept in the store (table board_boots, a row per board), so that every
 * controller on a shared store shows the same order and answer, the
 * controller holding the board's session settles an order sent through
 * another one (issue 14), and a restarted controller still shows the last
 * boot.  Request ids are random (BOOTS_REQUEST_BITS), so orders sent
 * through different controllers, or before a restart, do not share one.
 * The store's connection and the loop thread only; no logging. */
#ifndef SKY_CONTROLLER_BOOTS_H
#define SKY_CONTROLLER_BOOTS_H

#include <stdint.h>

#include "controller/skyrootd/db.h"
#include "skyroot.pb-c.h"

/* Bytes of a board's reason that are kept. */
#define BOOTS_ERROR_MAX 512
/* Request ids are random below 2^53: unique in the fleet for all purposes
 * (an answer is matched by board and id), and exact as a JSON number in
 * every client (a double holds 53 bits). */
#define BOOTS_REQUEST_BITS 53

enum boot_state {
	BOOT_STATE_SENT,              /* sent to the board, not answered yet */
	BOOT_STATE_ACCEPTED,          /* the board loads the images and kexecs */
	BOOT_STATE_REFUSED,           /* the board will not (error says why) */
	BOOT_STATE_FAILED,            /* the board took it but could not (error says why) */
};

struct boot_status {
	enum boot_state state;
	uint64_t request_id;          /* the order's request id on the agent link */
	int64_t at;                   /* unix s of the last change */
	char kernel[DB_ID_MAX];       /* the kernel image's id */
	char error[BOOTS_ERROR_MAX + 1]; /* "" unless refused or failed */
};

struct boots;

/* Prepares its statements on db's connection: part of the store's
 * transactions (db_begin) like the rest. */
int boots_open(struct db *db, struct boots **out);
void boots_free(struct boots *b);
/* A fresh request id for an order (random, never 0, below
 * 2^BOOTS_REQUEST_BITS). */
int boots_next_request(struct boots *b, uint64_t *req);
/* An order went to the board: it replaces the board's last one. */
int boots_sent(struct boots *b, const char *board_id, uint64_t req, const char *kernel, int64_t now);
/* The board answered order req: its new status into out (may be NULL).
 * -ENOENT when the board has no order, -ESTALE when req is not its last
 * one, -EALREADY when that order is already settled (an answer after a
 * refusal or failure, or a second acceptance); another error is the
 * store's. */
int boots_answer(struct boots *b, const char *board_id, uint64_t req, Skyroot__BootOutcome outcome,
		 const char *error, int64_t now, struct boot_status *out);
/* The board's last order into out: 0, -ENOENT when none, or the store's
 * error. */
int boots_get(struct boots *b, const char *board_id, struct boot_status *out);
/* Every board's last order at once, for a list of boards (one statement
 * instead of one per board): free with boots_all_free. */
struct boots_all;
int boots_all(struct boots *b, struct boots_all **out);
/* The board's last order in it, or NULL when none. */
const struct boot_status *boots_all_find(const struct boots_all *all, const char *board_id);
void boots_all_free(struct boots_all *all);
/* The board is deleted: its row goes. */
int boots_forget(struct boots *b, const char *board_id);
/* "sent", "accepted", "refused", "failed" (docs/api.md). */
const char *boots_state_name(enum boot_state s);

#endif
