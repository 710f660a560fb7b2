/* An enrollment's TPM step (issue 16), on the main loop, between the
 * request and the group commit (al_enroll.c):
 *
 *   board: EnrollRequest with TpmEvidence (EK public, EK certificate, AK
 *          public), as any enrollment (token, or none);
 *   here:  the EK certificate chains to a configured manufacturer CA and
 *          holds the EK; the EK is one MakeCredential takes; the AK is a
 *          restricted signing key born in the TPM.  Answer: TpmChallenge, a
 *          credential (a fresh random secret for the EK and the AK's name)
 *          and a single-use nonce;
 *   board: TpmProof, the activated secret and a quote by the AK over PCR
 *          0-7 and 11 with the nonce, and the PCR values;
 *   here:  the secret is the one made (the AK lives in the TPM of that
 *          EK), the quote is signed by the AK, carries this session's nonce
 *          (used once, within AL_TPM_NONCE_TTL_MS), and the values hash to
 *          its digest.  Only then is the EK trusted: the enrollment goes on
 *          with the EK's name, and al_enroll_decide re-enrolls the board it
 *          is bound to with no token, or binds it at this first enrollment.
 *
 * Every refusal answers ERROR_TPM_REFUSED with the reason, logs it, and
 * notes it on the board of the machine the request claims (db_tpm.h), for
 * `skyctl board show`.  With no manufacturer CA configured the evidence is
 * not used: the board enrolls as one without a TPM.
 *
 * The quote's PCR 11 goes with the enrollment (al_enroll_tpm_settle) to
 * the store, where the measured-boot gate judges it (fwgate.h: allowed
 * firmware, quarantine); later quotes in the board's sessions are
 * al_quote.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/db_tpm.h"
#include "controller/skyrootd/fwgate.h"
#include "controller/skyrootd/metrics.h"
#include "controller/skyrootd/tpm_verify.h"


struct al_tpm_wait {
	uint64_t req;
	struct enroll_prep *prep;
	struct tpmv_key *ak;
	uint8_t secret[TPMV_SECRET_MAX];
	uint8_t nonce[TPMV_NONCE_LEN];
	char ek[DB_TPM_EK_MAX];
	char uuid[AL_MAX_UUID + 1];
};

static void al_tpm_wait_free(struct al_tpm_wait *w)
{
	if (!w)
		return;
	al_enroll_prep_free(w->prep);
	tpmv_key_free(w->ak);
	OPENSSL_cleanse(w->secret, sizeof(w->secret));
	free(w);
}

void al_tpm_session_gone(struct session *s)
{
	al_tpm_wait_free(s->tpm_wait);
	s->tpm_wait = NULL;
}

/* Refuse the enrollment for its TPM: say why to the board, the log and the
 * board of the machine claimed; close the connection. */
static void al_tpm_refuse(struct session *s, uint64_t req, const char *uuid, enum tpmv_result r, const char *why)
{
	char text[DB_TPM_REFUSED_MAX];

	const char *what = tpmv_strerror(r);
	size_t n = strlen(what);

	/* tpm_verify.c's reasons start with what they are; ours do not. */
	if (why && strncmp(why, what, n) == 0 && why[n] == ':')
		snprintf(text, sizeof(text), "TPM evidence refused: %s", why);
	else
		snprintf(text, sizeof(text), "TPM evidence refused: %s%s%s", what, why && why[0] ? ": " : "",
			 why ? why : "");
	log_warn("enrollment refused for machine %s: %s", uuid, text);
	/* Shown on the board that machine is (at most once a second). */
	int e = db_tpm_refused(s->al->ctl->db, uuid, text, sky_unix_now());
	if (e < 0 && e != -ENOENT)
		log_warn("cannot note the TPM refusal on machine %s's board: %s", uuid, strerror(-e));
	metrics_enroll_fail(r == TPMV_INTERNAL ? METRICS_ENROLL_INTERNAL : METRICS_ENROLL_TPM_REFUSED);
	al_session_error(s, req, r == TPMV_INTERNAL ? SKYROOT__ERROR_CODE__ERROR_INTERNAL :
			 SKYROOT__ERROR_CODE__ERROR_TPM_REFUSED, "%s", text);
	al_sess_close(s, 0);
}

/* The EK's name (nameAlg || SHA-256 of its public area) as the store
 * keeps it: the digest in lower-case hex. */
static int al_tpm_ek_id(const struct tpmv_key *ek, char out[DB_TPM_EK_MAX])
{
	uint8_t name[TPMV_NAME_MAX];
	size_t n = tpmv_key_name(ek, name, sizeof(name));

	if (n != 2 + TPMV_DIGEST_LEN)
		return -EINVAL;
	sky_format_hex(name + 2, TPMV_DIGEST_LEN, out);
	return 0;
}

/* Check the evidence, make the credential and the nonce: TPMV_OK and w
 * filled, or the refusal with why. */
static enum tpmv_result al_tpm_check(struct agentlink *al, const struct al_tpm_claim *c, struct al_tpm_wait *w,
				     Skyroot__TpmChallenge *ch, uint8_t *id, size_t *idn, uint8_t *es, size_t *esn,
				     char *why, size_t whylen, bool *busy)
{
	struct tpmv_key *ek = NULL;
	uint8_t name[TPMV_NAME_MAX];
	size_t namen;
	enum tpmv_result r;

	if (c->ek_cert_len == 0) {
		snprintf(why, whylen, "the TPM has no EK certificate (NV index 0x01c00002) to check against the "
			 "manufacturer CAs");
		return TPMV_EK_UNKNOWN_CA;
	}
	r = tpmv_key_parse(c->ek_pub, c->ek_pub_len, &ek, why, whylen);
	if (r == TPMV_OK)
		r = tpmv_ek_check(ek, why, whylen);
	if (r == TPMV_OK)
		r = tpmv_ek_cert_check(al->ctl->tpm_cas, c->ek_cert, c->ek_cert_len, ek, NULL, why, whylen);
	if (r == TPMV_OK)
		r = tpmv_key_parse(c->ak_pub, c->ak_pub_len, &w->ak, why, whylen);
	if (r == TPMV_OK)
		r = tpmv_ak_check(w->ak, why, whylen);
	if (r == TPMV_OK && al_tpm_ek_id(ek, w->ek) < 0) {
		snprintf(why, whylen, "the EK has no SHA-256 name");
		r = TPMV_BAD_KEY;
	}
	if (r == TPMV_OK && sky_random(w->secret, sizeof(w->secret)) < 0) {
		snprintf(why, whylen, "no random bytes");
		r = TPMV_INTERNAL;
	}
	if (r == TPMV_OK) {
		namen = tpmv_key_name(w->ak, name, sizeof(name));
		r = tpmv_make_credential(ek, name, namen, w->secret, sizeof(w->secret), id, idn, es, esn, why, whylen);
	}
	if (r == TPMV_OK) {
		if (!al->tpm_nonces)
			al->tpm_nonces = tpmv_nonces_new(AL_TPM_NONCES, AL_TPM_NONCE_TTL_MS);
		if (!al->tpm_nonces || tpmv_nonce_issue(al->tpm_nonces, (int64_t)sky_now_ms(), w->nonce) < 0) {
			snprintf(why, whylen, "too many TPM enrollments at once: ask again later");
			*busy = true;
			r = TPMV_INTERNAL;
		}
	}
	tpmv_key_free(ek);
	if (r == TPMV_OK) {
		ch->id_object.data = id;
		ch->id_object.len = *idn;
		ch->enc_secret.data = es;
		ch->enc_secret.len = *esn;
		ch->nonce.data = w->nonce;
		ch->nonce.len = sizeof(w->nonce);
	}
	return r;
}

void al_tpm_enroll(struct session *s, uint64_t req, struct enroll_prep *prep)
{
	struct agentlink *al = s->al;
	const char *uuid = NULL;
	const struct al_tpm_claim *c = al_enroll_tpm_claim(prep, &uuid);
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__TpmChallenge ch = SKYROOT__TPM_CHALLENGE__INIT;
	uint8_t id[TPMV_ID_OBJECT_MAX], es[TPMV_ENC_SECRET_MAX];
	size_t idn = sizeof(id), esn = sizeof(es);
	struct al_tpm_wait *w;
	char why[512] = "";
	enum tpmv_result r;
	bool busy = false;

	if (s->tpm_wait) {
		al_enroll_prep_free(prep);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST, "one enrollment at a time");
		al_sess_close(s, 0);
		return;
	}
	if (!c || s->enrolling) { /* no TPM; or refused, or a second one: al_enroll_prepared says */
		al_enroll_prepared(s, req, prep);
		return;
	}
	if (!al->ctl->tpm_cas) {
		log_info("machine %s sent TPM evidence; no TPM manufacturer CA is configured ('skyrootd tpm-ca add'): "
			 "it enrolls as a board without a TPM", uuid);
		al_enroll_tpm_settle(prep, NULL, NULL);
		al_enroll_prepared(s, req, prep);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		al_tpm_refuse(s, req, uuid, TPMV_INTERNAL, "out of memory");
		al_enroll_prep_free(prep);
		return;
	}
	snprintf(w->uuid, sizeof(w->uuid), "%s", uuid);
	r = al_tpm_check(al, c, w, &ch, id, &idn, es, &esn, why, sizeof(why), &busy);
	if (busy) { /* the nonce cache is full: not the board's fault; it retries with backoff */
		log_warn("machine %s: %s (%d nonces live)", w->uuid, why, AL_TPM_NONCES);
		metrics_enroll_fail(METRICS_ENROLL_INTERNAL);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BUSY, "%s", why);
		al_sess_close(s, 0);
		al_tpm_wait_free(w);
		al_enroll_prep_free(prep);
		return;
	}
	if (r != TPMV_OK) {
		al_tpm_refuse(s, req, w->uuid, r, why);
		al_tpm_wait_free(w);
		al_enroll_prep_free(prep);
		return;
	}
	w->req = req;
	w->prep = prep;
	s->tpm_wait = w;
	env.request_id = req;
	env.body_case = SKYROOT__ENVELOPE__BODY_TPM_CHALLENGE;
	env.tpm_challenge = &ch;
	log_debug("machine %s: TPM EK %.16s... checked against the manufacturer CAs; credential and nonce sent",
		  w->uuid, w->ek);
	al_session_send(s, &env);
}

enum tpmv_result al_tpm_check_quote(struct agentlink *al, const struct tpmv_key *ak, const ProtobufCBinaryData *attest,
				    const ProtobufCBinaryData *sig, const ProtobufCBinaryData *pcrv, const uint8_t *nonce,
				    size_t nonce_len, struct tpmv_pcrs *pcrs, char *why, size_t whylen)
{
	struct tpmv_quote q = {0};
	int64_t now = (int64_t)sky_now_ms();
	enum tpmv_result r;

	if (attest->len > TPMV_MAX_STRUCT || sig->len > TPMV_MAX_STRUCT ||
	    pcrv->len > TPMV_PCR_COUNT * TPMV_DIGEST_LEN) {
		snprintf(why, whylen, "a field of the quote over its limit");
		return TPMV_MALFORMED;
	}
	q.attest = attest->data;
	q.attest_len = attest->len;
	q.sig = sig->data;
	q.sig_len = sig->len;
	q.pcrs = pcrv->data;
	q.pcrs_len = pcrv->len;
	r = tpmv_quote_verify(ak, &q, nonce, nonce_len, pcrs, why, whylen);
	/* Not this nonce: one used before is a replay, say so. */
	if (r == TPMV_WRONG_NONCE &&
	    tpmv_quote_verify_fresh(ak, &q, al->tpm_nonces, now, NULL, NULL, 0) == TPMV_REPLAY) {
		snprintf(why, whylen, "the quote carries a nonce used before");
		return TPMV_REPLAY;
	}
	if (r != TPMV_OK)
		return r;
	/* This nonce, once, within its time. */
	r = tpmv_nonce_use(al->tpm_nonces, now, nonce, nonce_len);
	if (r == TPMV_WRONG_NONCE)
		snprintf(why, whylen, "the nonce expired (%d s) before the quote came", AL_TPM_NONCE_TTL_MS / 1000);
	else if (r == TPMV_REPLAY)
		snprintf(why, whylen, "the nonce was used already");
	return r;
}

void al_tpm_proof(struct session *s, uint64_t req, const Skyroot__TpmProof *tp)
{
	struct agentlink *al = s->al;
	struct al_tpm_wait *w = s->tpm_wait;
	struct tpmv_pcrs pcrs;
	char why[512] = "";
	enum tpmv_result r;

	if (!w || w->req != req) {
		log_warn("enrollment refused: a TPM proof without a TPM challenge outstanding for request %llu",
			 (unsigned long long)req);
		metrics_enroll_fail(METRICS_ENROLL_BAD_REQUEST);
		al_session_error(s, req, SKYROOT__ERROR_CODE__ERROR_BAD_REQUEST,
				 "a TPM proof without a TPM challenge outstanding for request %llu",
				 (unsigned long long)req);
		al_sess_close(s, 0);
		return;
	}
	s->tpm_wait = NULL;
	if (tp->secret.len > TPMV_SECRET_MAX) {
		r = TPMV_MALFORMED;
		snprintf(why, sizeof(why), "a field of the proof over its limit");
	} else {
		r = tpmv_activation_check(w->secret, sizeof(w->secret), tp->secret.data, tp->secret.len);
		if (r != TPMV_OK)
			snprintf(why, sizeof(why), "the activated secret is not the credential's: the AK is not in "
				 "the TPM of this EK");
	}
	if (r == TPMV_OK)
		r = al_tpm_check_quote(al, w->ak, &tp->attest, &tp->signature, &tp->pcrs, w->nonce, sizeof(w->nonce),
				       &pcrs, why, sizeof(why));
	if (r != TPMV_OK) {
		al_tpm_refuse(s, req, w->uuid, r, why);
		al_tpm_wait_free(w);
		return;
	}
	/* The measured-boot gate judges PCR 11 once the board is known
	 * (al_enroll_gate, fwgate.h): recorded with the binding. */
	char pcr11[FWGATE_PCR_HEX];
	sky_format_hex(pcrs.value[11], TPMV_DIGEST_LEN, pcr11);
	log_info("machine %s: TPM verified: EK %.16s... from a configured manufacturer CA, AK bound by credential "
		 "activation, quote over PCR 0-7,11 fresh (TPM clock %llu ms, resets %u), PCR 11 %s", w->uuid, w->ek,
		 (unsigned long long)pcrs.clock, pcrs.reset_count, pcr11);
	al_enroll_tpm_settle(w->prep, w->ek, pcr11);
	struct enroll_prep *prep = w->prep;
	w->prep = NULL;
	al_tpm_wait_free(w);
	al_enroll_prepared(s, req, prep);
}
