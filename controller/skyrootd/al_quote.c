/* Fresh quotes in board sessions (issue 16's measured-boot gate), on the
 * main loop.  Every tpm-quote-interval (skyrootd's config; 0: never) a
 * board's heartbeat brings, for a board with a bound TPM, a
 * TpmQuoteRequest with a single-use nonce; the board quotes PCR 0-7 and 11
 * with the AK it enrolled with (kept in its RAM, wrapped by its TPM).  The
 * answer is checked as at enrollment: signed by that AK (kept in the store
 * since the enrollment), this request's nonce used once within its time,
 * the values hashing to the quoted digest.  Then:
 *   - a good quote: its time and PCR 11 are stored (board show), and the
 *     gate judges the PCR 11: a change to one no allowed firmware has
 *     quarantines the board at once (a log line and board.quarantined);
 *     a change back, or the first good quote after a failure, releases it
 *     (board.released);
 *   - a quote that does not check out quarantines the board at once with
 *     the reason (nothing a board says is trusted without proof);
 *   - no answer within AL_QUOTE_DEADLINE_MS (or the board says it cannot
 *     quote) is a miss, logged; AL_QUOTE_MISSES in a row quarantine the
 *     board until a good quote. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/db_tpm.h"
#include "controller/skyrootd/fwgate.h"
#include "controller/skyrootd/tpm_verify.h"

#define AL_QUOTE_DEADLINE_MS AL_TPM_NONCE_TTL_MS
#define AL_QUOTE_MISSES 3
#define AL_QUOTE_ERROR_MAX 256

/* What the gate says of the board now: 1 quarantined, 0 passes, < 0 unknown. */
static int al_quote_gate(struct session *s, char *why)
{
	return fwgate_board(s->al->ctl->db, s->board_id, NULL, why);
}

/* The gate's verdict moved from before: say so (log, event). */
static void al_quote_moved(struct session *s, int before, const char *pcr11)
{
	char why[FWGATE_WHY_MAX], fw[DB_NAME_MAX];
	int after = fwgate_board(s->al->ctl->db, s->board_id, fw, why);

	if (before < 0 || after < 0 || before == after)
		return;
	if (after == 1) {
		log_warn("board %s quarantined: %s; it gets no images, guests or boot orders until a good quote of an "
			 "allowed firmware", s->board_id, why);
		if (s->al->ops.event)
			s->al->ops.event(s->al->ops_ctx, false, "board.quarantined", "board", s->board_id,
					 (const char *const[]){ "reason", why, "pcr11", pcr11, NULL });
	} else {
		log_info("board %s released from quarantine by a good quote (PCR 11 %s)", s->board_id, pcr11);
		if (s->al->ops.event)
			s->al->ops.event(s->al->ops_ctx, false, "board.released", "board", s->board_id,
					 (const char *const[]){ "firmware", fw[0] ? fw : "(the gate is off)", "pcr11",
								pcr11, NULL });
	}
}

/* A failed quote request: quarantined until a good quote. */
static void al_quote_fail(struct session *s, const char *why)
{
	char old[FWGATE_WHY_MAX];
	int before = al_quote_gate(s, old);
	int r = db_tpm_quote_failed(s->al->ctl->db, s->board_id, why);

	if (r < 0) {
		log_error("board %s: cannot record its failed quote: %s", s->board_id, strerror(-r));
		return;
	}
	al_quote_moved(s, before, "");
}

void al_quote_heartbeat(struct session *s)
{
	struct agentlink *al = s->al;
	uint64_t iv = al->ctl->opt.tpm_quote_interval * 1000, now = sky_now_ms();
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__TpmQuoteRequest rq = SKYROOT__TPM_QUOTE_REQUEST__INIT;
	uint8_t ak[AL_TPM_PUBLIC_MAX];
	size_t ak_len;
	char why[160];

	if (s->state != SESS_BOARD || !iv || !al->ctl->tpm_cas)
		return;
	if (s->quote_req) {
		if (now - s->quote_sent_ms < AL_QUOTE_DEADLINE_MS)
			return;
		s->quote_req = 0;
		s->quote_misses++;
		log_warn("board %s: no answer to its quote request within %d s (%u in a row)", s->board_id,
			 AL_QUOTE_DEADLINE_MS / 1000, s->quote_misses);
		if (s->quote_misses >= AL_QUOTE_MISSES) {
			snprintf(why, sizeof(why), "no answer to %u quote requests in a row", s->quote_misses);
			al_quote_fail(s, why);
		}
		/* Asked again when the interval from that request is over (quote_next_ms). */
		return;
	}
	if (now < s->quote_next_ms)
		return;
	s->quote_next_ms = now + iv;
	/* Only a board with a bound TPM whose AK the store keeps. */
	if (db_tpm_get_ak(al->ctl->db, s->board_id, ak, sizeof(ak), &ak_len) < 0)
		return;
	if (!al->tpm_nonces)
		al->tpm_nonces = tpmv_nonces_new(AL_TPM_NONCES, AL_TPM_NONCE_TTL_MS);
	if (!al->tpm_nonces || tpmv_nonce_issue(al->tpm_nonces, (int64_t)now, s->quote_nonce) < 0) {
		log_warn("board %s: no nonce free for its quote request (%d live); asked at a later heartbeat",
			 s->board_id, AL_TPM_NONCES);
		s->quote_next_ms = now;
		return;
	}
	if (sky_random(&s->quote_req, sizeof(s->quote_req)) < 0 || s->quote_req == 0)
		s->quote_req = now | 1;
	s->quote_sent_ms = now;
	rq.nonce.data = s->quote_nonce;
	rq.nonce.len = sizeof(s->quote_nonce);
	env.request_id = s->quote_req;
	env.body_case = SKYROOT__ENVELOPE__BODY_TPM_QUOTE_REQUEST;
	env.tpm_quote_request = &rq;
	log_debug("board %s: fresh quote asked", s->board_id);
	al_session_send(s, &env);
}

void al_quote_answer(struct session *s, uint64_t req, const Skyroot__TpmQuote *tq)
{
	struct agentlink *al = s->al;
	struct tpmv_key *ak = NULL;
	struct tpmv_pcrs pcrs;
	uint8_t akb[AL_TPM_PUBLIC_MAX];
	size_t ak_len;
	char why[400] = "", text[FWGATE_WHY_MAX], pcr11[FWGATE_PCR_HEX];
	enum tpmv_result r;

	if (s->state != SESS_BOARD || !s->quote_req || req != s->quote_req) {
		log_warn("board %s: a quote nobody asked for (request %llu); ignored", s->board_id,
			 (unsigned long long)req);
		return;
	}
	s->quote_req = 0;
	if (tq->error && tq->error[0]) {
		s->quote_misses++;
		log_warn("board %s cannot quote (%u in a row): %.*s", s->board_id, s->quote_misses, AL_QUOTE_ERROR_MAX,
			 tq->error);
		if (s->quote_misses >= AL_QUOTE_MISSES) {
			snprintf(text, sizeof(text), "no quote in %u requests in a row: %.80s", s->quote_misses, tq->error);
			al_quote_fail(s, text);
		}
		return;
	}
	if (db_tpm_get_ak(al->ctl->db, s->board_id, akb, sizeof(akb), &ak_len) < 0) {
		r = TPMV_BAD_KEY;
		snprintf(why, sizeof(why), "the store keeps no AK of this board");
	} else {
		r = tpmv_key_parse(akb, ak_len, &ak, why, sizeof(why));
	}
	if (r == TPMV_OK)
		r = al_tpm_check_quote(al, ak, &tq->attest, &tq->signature, &tq->pcrs, s->quote_nonce,
				       sizeof(s->quote_nonce), &pcrs, why, sizeof(why));
	tpmv_key_free(ak);
	if (r != TPMV_OK) {
		snprintf(text, sizeof(text), "fresh quote refused: %.130s", why[0] ? why : tpmv_strerror(r));
		log_warn("board %s: %s", s->board_id, text);
		al_quote_fail(s, text);
		return;
	}
	s->quote_misses = 0;
	sky_format_hex(pcrs.value[11], TPMV_DIGEST_LEN, pcr11);
	int before = al_quote_gate(s, text);
	int e = db_tpm_quoted(al->ctl->db, s->board_id, pcr11, sky_unix_now());
	if (e < 0) {
		log_error("board %s: cannot record its quote: %s", s->board_id, strerror(-e));
		return;
	}
	log_debug("board %s: fresh quote verified, PCR 11 %s", s->board_id, pcr11);
	al_quote_moved(s, before, pcr11);
}
