/* The TPM's part of the agent's enrollment (issue 16), over agent/tpm.h:
 *
 *   agent_tpm_link_start   before the EnrollRequest: open the TPM, read
 *                          the EK certificate, make the EK and an AK under
 *                          it; the TpmEvidence to send;
 *   agent_tpm_link_answer  on the controller's TpmChallenge: activate the
 *                          credential with the EK and the AK, quote PCR 0-7
 *                          and 11 with its nonce; the TpmProof to send.
 *
 * What the controller sends is bounded before the TPM sees it.  The link
 * holds the TPM connection and the buffers the messages point into; free
 * it once the enrollment is over (answered, refused or cut). */
#ifndef SKY_AGENT_TPM_LINK_H
#define SKY_AGENT_TPM_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/tpm.h"
#include "skyroot.pb-c.h"

/* Bounds on a TpmChallenge's fields (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET). */
#define AGENT_TPM_ID_OBJECT_MAX 512
#define AGENT_TPM_ENC_SECRET_MAX 1024

struct agent_tpm_link;

/* 0 and *out with ev filled (its bytes live in *out), or -1 with err. */
int agent_tpm_link_start(const char *tcti, struct agent_tpm_link **out, Skyroot__TpmEvidence *ev, char *err,
			 size_t errlen);
/* 0 with proof filled (its bytes live in l), or -1 with err. */
int agent_tpm_link_answer(struct agent_tpm_link *l, const Skyroot__TpmChallenge *ch, Skyroot__TpmProof *proof,
			  char *err, size_t errlen);
void agent_tpm_link_free(struct agent_tpm_link *l);

/* For the link (client.c): the TPM at tcti ("" = none) for an enrollment,
 * in place of *out (an earlier enrollment's, freed; *out starts NULL).
 * 0 and *out (NULL: no TPM used; a default one, explicit == 0, that does
 * not answer is logged and left out), or -1 with err (--tpm's TPM). */
int agent_tpm_link_enroll(const char *tcti, int explicit_tpm, struct agent_tpm_link **out, Skyroot__TpmEvidence *ev,
			  char *err, size_t errlen);
/* The TpmProof envelope (held by l) answering the challenge in env, under
 * env's request id; NULL with err (also logged) when l is NULL (no TPM in
 * this enrollment) or the TPM cannot answer. */
Skyroot__Envelope *agent_tpm_link_proof(struct agent_tpm_link *l, const Skyroot__Envelope *env, char *err,
					size_t errlen);

/* Fresh quotes in a session (the measured-boot gate): the AK of the
 * enrollment that l served, kept (agent_tpm_link_keep, after the
 * enrollment was issued: false when there is none to keep); on each
 * TpmQuoteRequest, a quote by it with the request's nonce, the TPM at
 * tcti opened for it and closed after: the TpmQuote envelope (held by k),
 * with the reason in its error when there is no quote (also logged). */
struct agent_tpm_kept {
	bool on;
	struct agent_tpm_ak ak;
	struct agent_tpm_quote q;
	char error[256];
	Skyroot__TpmQuote answer;
	Skyroot__Envelope env;
};
bool agent_tpm_link_keep(const struct agent_tpm_link *l, struct agent_tpm_kept *k);
Skyroot__Envelope *agent_tpm_link_quote(struct agent_tpm_kept *k, const char *tcti, const Skyroot__Envelope *env);

#endif
