/* What became of each board's last bare-metal boot order: sent, then the
 * board's answer (accepted, refused or failed, with its reason).  api_boards.c
 * records the orders and shows them; the agent link's answers arrive here
 * through its ops (main.c wires them).  Kept in memory: a restarted
 * controller shows no boot until the next order.  No I/O, no logging. */
#ifndef SKY_CONTROLLER_BOOTS_H
#define SKY_CONTROLLER_BOOTS_H

#include <stdint.h>

#include "controller/skyrootd/db.h"
#include "skyroot.pb-c.h"

/* Bytes of a board's reason that are kept. */
#define BOOTS_ERROR_MAX 512

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

int boots_new(struct boots **out);
void boots_free(struct boots *b);
/* A fresh request id for an order (never 0). */
uint64_t boots_next_request(struct boots *b);
/* An order went to the board: it replaces the board's last one. */
int boots_sent(struct boots *b, const char *board_id, uint64_t req, const char *kernel, int64_t now);
/* The board answered order req: -ENOENT when the board has no order here,
 * -ESTALE when req is not its last one, -EALREADY when that order is
 * already settled (an answer after a refusal or failure, or a second
 * acceptance). */
int boots_answer(struct boots *b, const char *board_id, uint64_t req, Skyroot__BootOutcome outcome,
		 const char *error, int64_t now);
/* The board's last order, or NULL when none. */
const struct boot_status *boots_get(const struct boots *b, const char *board_id);
/* The board is deleted. */
void boots_forget(struct boots *b, const char *board_id);
/* "sent", "accepted", "refused", "failed" (docs/api.md). */
const char *boots_state_name(enum boot_state s);

#endif
