/* Boards' TPM identity in the store (issue 16): EK -> board, bound at the
 * board's first enrollment whose TPM evidence checked out
 * (al_tpm.c); the time of its last good quote; the last refusal of a TPM
 * that claimed the board's machine.  The EK is named by the SHA-256 of its
 * TPM name (tpmv_key_name), in lower-case hex: DB_TPM_EK_MAX - 1 digits.
 * Inside the caller's transaction when there is one; 0 or a negative
 * errno, -ENOENT for "no such row". */
#ifndef SKY_CONTROLLER_DB_TPM_H
#define SKY_CONTROLLER_DB_TPM_H

#include <stddef.h>
#include <stdint.h>

#include "controller/skyrootd/db.h"

/* The board whose EK is ek: its id in id_out (DB_ID_MAX). */
int db_tpm_find_ek(struct db *db, const char *ek, char *id_out);
/* Bind ek to the board (its earlier EK, if any, is replaced) and note a
 * good quote at now with its PCR 11 (hex, for the gate: fwgate.h); the
 * last refusal is cleared. */
int db_tpm_bind(struct db *db, const char *board_id, const char *ek, const char *pcr11, int64_t now);
/* A good quote by the board's bound TPM at now, with its PCR 11. */
int db_tpm_quoted(struct db *db, const char *board_id, const char *pcr11, int64_t now);
/* A TPM claiming machine uuid was refused at now, for why: recorded on
 * the board of that machine, at most once a second (-ENOENT: no such
 * board, or one was recorded this second). */
int db_tpm_refused(struct db *db, const char *uuid, const char *why, int64_t now);
/* The AK (marshalled TPM2B_PUBLIC) of the board's bound TPM, which its
 * fresh quotes are checked with (al_quote.c): set at each verified
 * enrollment; read (-ENOENT: no TPM bound, or no AK kept, or over cap). */
int db_tpm_set_ak(struct db *db, const char *board_id, const uint8_t *ak, size_t len);
int db_tpm_get_ak(struct db *db, const char *board_id, uint8_t *ak, size_t cap, size_t *len);
/* A fresh quote request failed for why (no answer in time N times in a
 * row, a quote that does not check out): the gate quarantines the board
 * until a good quote (db_tpm_quoted, db_tpm_bind clear it). */
int db_tpm_quote_failed(struct db *db, const char *board_id, const char *why);

#endif
