/* The TPM's part of the agent's enrollment (tpm_link.h). */
#include "agent/tpm_link.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tpm.h"
#include "common/log.h"

struct agent_tpm_link {
	struct agent_tpm *t;
	uint8_t cert[AGENT_TPM_CERT_MAX];
	size_t cert_len;
	uint8_t ek[AGENT_TPM_PUBLIC_MAX], ak[AGENT_TPM_PUBLIC_MAX];
	size_t ek_len, ak_len;
	uint8_t secret[AGENT_TPM_SECRET_MAX];
	size_t secret_len;
	struct agent_tpm_quote q;
	int answered;
	Skyroot__TpmProof proof;
	Skyroot__Envelope env;
};

void agent_tpm_link_free(struct agent_tpm_link *l)
{
	if (!l)
		return;
	agent_tpm_close(l->t);
	memset(l->secret, 0, sizeof(l->secret));
	free(l);
}

int agent_tpm_link_start(const char *tcti, struct agent_tpm_link **out, Skyroot__TpmEvidence *ev, char *err,
			 size_t errlen)
{
	struct agent_tpm_link *l = calloc(1, sizeof(*l));
	int r;

	*out = NULL;
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (agent_tpm_open(tcti, &l->t, err, errlen) < 0)
		goto fail;
	r = agent_tpm_ek_cert(l->t, l->cert, sizeof(l->cert), &l->cert_len, err, errlen);
	if (r < 0)
		goto fail;
	if (r == 1) /* none: the controller says what it makes of that */
		l->cert_len = 0;
	/* An ECC P-256 AK: made in tens of milliseconds where an RSA one takes
	 * a TPM seconds (swtpm: enrollment 60 ms against 200 ms). */
	if (agent_tpm_create_ek(l->t, l->ek, sizeof(l->ek), &l->ek_len, err, errlen) < 0 ||
	    agent_tpm_create_ak(l->t, AGENT_TPM_AK_ECC, l->ak, sizeof(l->ak), &l->ak_len, err, errlen) < 0)
		goto fail;
	skyroot__tpm_evidence__init(ev);
	ev->ek_public.data = l->ek;
	ev->ek_public.len = l->ek_len;
	ev->ek_cert.data = l->cert;
	ev->ek_cert.len = l->cert_len;
	ev->ak_public.data = l->ak;
	ev->ak_public.len = l->ak_len;
	*out = l;
	return 0;
fail:
	agent_tpm_link_free(l);
	return -1;
}

int agent_tpm_link_answer(struct agent_tpm_link *l, const Skyroot__TpmChallenge *ch, Skyroot__TpmProof *proof,
			  char *err, size_t errlen)
{
	if (l->answered) {
		snprintf(err, errlen, "a second TPM challenge in one enrollment");
		return -1;
	}
	l->answered = 1;
	if (ch->id_object.len == 0 || ch->id_object.len > AGENT_TPM_ID_OBJECT_MAX || ch->enc_secret.len == 0 ||
	    ch->enc_secret.len > AGENT_TPM_ENC_SECRET_MAX || ch->nonce.len == 0 || ch->nonce.len > AGENT_TPM_NONCE_MAX) {
		snprintf(err, errlen, "the TPM challenge has a field empty or over its limit (credential %zu and %zu "
			 "bytes, nonce %zu)", ch->id_object.len, ch->enc_secret.len, ch->nonce.len);
		return -1;
	}
	if (agent_tpm_activate(l->t, ch->id_object.data, ch->id_object.len, ch->enc_secret.data, ch->enc_secret.len,
			       l->secret, sizeof(l->secret), &l->secret_len, err, errlen) < 0)
		return -1;
	if (agent_tpm_quote(l->t, ch->nonce.data, ch->nonce.len, &l->q, err, errlen) < 0)
		return -1;
	skyroot__tpm_proof__init(proof);
	proof->secret.data = l->secret;
	proof->secret.len = l->secret_len;
	proof->attest.data = l->q.attest;
	proof->attest.len = l->q.attest_len;
	proof->signature.data = l->q.sig;
	proof->signature.len = l->q.sig_len;
	proof->pcrs.data = l->q.pcrs;
	proof->pcrs.len = l->q.pcrs_len;
	return 0;
}

int agent_tpm_link_enroll(const char *tcti, int explicit_tpm, struct agent_tpm_link **out, Skyroot__TpmEvidence *ev,
			  char *err, size_t errlen)
{
	char why[300] = "";

	agent_tpm_link_free(*out); /* an earlier enrollment's */
	*out = NULL;
	if (!tcti[0])
		return 0;
	if (agent_tpm_link_start(tcti, out, ev, why, sizeof(why)) == 0) {
		log_info("enrolling with the TPM at %s", tcti);
		return 0;
	}
	if (!explicit_tpm) {
		log_warn("TPM %s: %s; enrolling without it", tcti, why);
		return 0;
	}
	snprintf(err, errlen, "TPM %.200s (--tpm): %s", tcti, why);
	return -1;
}

Skyroot__Envelope *agent_tpm_link_proof(struct agent_tpm_link *l, const Skyroot__Envelope *env, char *err,
					size_t errlen)
{
	char why[300] = "";

	if (!l || env->body_case != SKYROOT__ENVELOPE__BODY_TPM_CHALLENGE || !env->tpm_challenge) {
		snprintf(err, errlen, "a TPM challenge from the controller, and no TPM in this enrollment");
		log_error("%s", err);
		return NULL;
	}
	if (agent_tpm_link_answer(l, env->tpm_challenge, &l->proof, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot answer the controller's TPM challenge: %s", why);
		log_error("%s", err);
		return NULL;
	}
	skyroot__envelope__init(&l->env);
	l->env.request_id = env->request_id;
	l->env.body_case = SKYROOT__ENVELOPE__BODY_TPM_PROOF;
	l->env.tpm_proof = &l->proof;
	log_info("TPM: credential activated and PCRs quoted for the controller");
	return &l->env;
}

bool agent_tpm_link_keep(const struct agent_tpm_link *l, struct agent_tpm_kept *k)
{
	k->on = l && l->answered && agent_tpm_ak_made(l->t, &k->ak) == 0;
	return k->on;
}

static int agent_tpm_fresh_quote(const char *tcti, const struct agent_tpm_ak *ak, const Skyroot__TpmQuoteRequest *rq,
				 struct agent_tpm_quote *q, char *err, size_t errlen)
{
	uint8_t ek[AGENT_TPM_PUBLIC_MAX];
	size_t ek_len;
	struct agent_tpm *t = NULL;
	int r = -1;

	if (!ak) {
		snprintf(err, errlen, "no AK kept since this agent's enrollment (it enrolled without its TPM, or "
			 "before it started): the board must enroll again to be quoted");
		return -1;
	}
	if (rq->nonce.len == 0 || rq->nonce.len > AGENT_TPM_NONCE_MAX) {
		snprintf(err, errlen, "a quote request with a nonce of %zu bytes", rq->nonce.len);
		return -1;
	}
	if (agent_tpm_open(tcti, &t, err, errlen) == 0 &&
	    agent_tpm_create_ek(t, ek, sizeof(ek), &ek_len, err, errlen) == 0 &&
	    agent_tpm_load_ak(t, ak, err, errlen) == 0 &&
	    agent_tpm_quote(t, rq->nonce.data, rq->nonce.len, q, err, errlen) == 0)
		r = 0;
	agent_tpm_close(t);
	return r;
}

Skyroot__Envelope *agent_tpm_link_quote(struct agent_tpm_kept *k, const char *tcti, const Skyroot__Envelope *env)
{
	skyroot__tpm_quote__init(&k->answer);
	k->error[0] = '\0';
	if (env->body_case != SKYROOT__ENVELOPE__BODY_TPM_QUOTE_REQUEST || !env->tpm_quote_request)
		snprintf(k->error, sizeof(k->error), "not a quote request");
	else if (agent_tpm_fresh_quote(k->on ? tcti : NULL, k->on ? &k->ak : NULL, env->tpm_quote_request, &k->q,
				       k->error, sizeof(k->error)) == 0) {
		k->answer.attest.data = k->q.attest;
		k->answer.attest.len = k->q.attest_len;
		k->answer.signature.data = k->q.sig;
		k->answer.signature.len = k->q.sig_len;
		k->answer.pcrs.data = k->q.pcrs;
		k->answer.pcrs.len = k->q.pcrs_len;
		log_debug("TPM: a fresh quote for the controller");
	}
	if (k->error[0]) {
		log_warn("cannot answer the controller's quote request: %s", k->error);
		k->answer.error = k->error;
	}
	skyroot__envelope__init(&k->env);
	k->env.request_id = env->request_id;
	k->env.body_case = SKYROOT__ENVELOPE__BODY_TPM_QUOTE;
	k->env.tpm_quote = &k->answer;
	return &k->env;
}
