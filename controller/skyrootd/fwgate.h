/* The measured-boot gate (issue 16): the allowed firmware, each named and
 * known by the PCR 11 its UKI measures (fwimage/build.sh prints it), and
 * the rule that judges a board by the PCR 11 of its last verified quote.
 *
 * The rule (fwgate_judge):
 *   - a board with no TPM bound is not gated ("no TPM");
 *   - with no firmware allowed at all the gate is off: every board passes;
 *   - once one firmware is allowed, a TPM board passes only when its last
 *     verified PCR 11 is an allowed one; else it is quarantined: it gets no
 *     images, guests or boot orders (store_image_manifest refuses them)
 *     until that PCR 11 is allowed.  A TPM board with no verified PCR 11
 *     yet (bound before the gate existed) is quarantined too until it
 *     quotes again;
 *   - a TPM board whose last fresh quote request failed (quote_fail: no
 *     answer in time, too many times in a row, or a quote that did not
 *     check out: al_quote.c) is quarantined whatever the list, until a
 *     good quote.
 * The quarantine is not stored: it follows from the board's PCR 11 and the
 * list, so allowing a firmware releases its boards at once, and revoking
 * one quarantines them at once.  In the caller's transaction when there is
 * one; 0 or a negative errno, -ENOENT for "no such row". */
#ifndef SKY_CONTROLLER_FWGATE_H
#define SKY_CONTROLLER_FWGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/skyrootd/db.h"

#define FWGATE_PCR_HEX 65              /* 64 hex digits (SHA-256) and the NUL */
#define FWGATE_WHY_MAX 160
/* The most firmware the list holds. */
#define FWGATE_MAX 1024

struct fw_allowed {
	char id[DB_ID_MAX];                /* "fw-..." */
	char name[DB_NAME_MAX];
	char pcr11[FWGATE_PCR_HEX];        /* lower-case hex */
	int64_t created_at;
};

/* A PCR 11 value as an operator writes it: 64 hex digits (either case,
 * an optional 0x) into out in lower case; false with err otherwise. */
bool fwgate_pcr11_parse(const char *in, char out[FWGATE_PCR_HEX], char *err, size_t errlen);

/* Record f: -EEXIST when its name or its PCR 11 is taken (taken_by: the
 * name holding it, DB_NAME_MAX, may be NULL), -ENOSPC past FWGATE_MAX. */
int fwgate_allow(struct db *db, const struct fw_allowed *f, char *taken_by);
/* By id, or by name when no id matches. */
int fwgate_get(struct db *db, const char *id_or_name, struct fw_allowed *out);
typedef int (*fwgate_cb)(void *ctx, const struct fw_allowed *f);
int fwgate_list(struct db *db, fwgate_cb cb, void *ctx);
int fwgate_revoke(struct db *db, const char *id);
/* How many firmware are allowed (0: the gate is off). */
int fwgate_count(struct db *db);

/* The rule above for a board with EK ek ("" = no TPM) whose last verified
 * PCR 11 is pcr11 ("" = none yet), quote_fail ("" = none): 0 passes (firmware: the allowed one it
 * matched, or ""), 1 quarantined (why: the reason), or a negative errno.
 * firmware is DB_NAME_MAX bytes, why FWGATE_WHY_MAX; either may be NULL. */
int fwgate_judge(struct db *db, const char *ek, const char *pcr11, const char *quote_fail, char *firmware, char *why);
/* The same for the board with id board_id (-ENOENT: no such board). */
int fwgate_board(struct db *db, const char *board_id, char *firmware, char *why);

/* The TPM boards and whether each is quarantined now: a snapshot to tell,
 * after a change of the list, which boards it quarantined or released. */
struct fwgate_board {
	char id[DB_ID_MAX];
	char pcr11[FWGATE_PCR_HEX];
	char quote_fail[DB_TPM_REFUSED_MAX];
	bool quarantined;
};
int fwgate_snapshot(struct db *db, struct fwgate_board **out, size_t *n);

#endif
