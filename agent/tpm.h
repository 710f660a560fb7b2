/* The board's TPM 2.0 (issue 16), through tpm2-tss's ESAPI: the EK and its
 * certificate, an attestation key (AK) made under the EK, activation of a
 * credential the controller made for them, and quotes of the boot PCRs.
 * Private keys never leave the TPM: what comes out are public keys, the
 * certificate, the activated secret and signed quotes, in the TPM's
 * marshalled forms that controller/skyrootd/tpm_verify.h checks.
 *
 * One struct agent_tpm holds one connection (a TCTI) and the EK and AK it
 * made; agent_tpm_close flushes them (a TPM without a resource manager
 * keeps transient objects across connections). */
#ifndef SKY_AGENT_TPM_H
#define SKY_AGENT_TPM_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_TPM_DEFAULT_TCTI "device:/dev/tpmrm0"
#define AGENT_TPM_NV_EK_CERT_RSA 0x01c00002u
#define AGENT_TPM_NV_EK_CERT_ECC 0x01c0000au
#define AGENT_TPM_CERT_MAX 8192        /* an EK certificate read from NV */
#define AGENT_TPM_PUBLIC_MAX 1024      /* a marshalled TPM2B_PUBLIC */
#define AGENT_TPM_ATTEST_MAX 2048      /* TPMS_ATTEST of a quote */
#define AGENT_TPM_SIG_MAX 1024         /* a marshalled TPMT_SIGNATURE */
#define AGENT_TPM_NONCE_MAX 64         /* qualifying data of a quote */
#define AGENT_TPM_SECRET_MAX 64        /* an activated credential's secret */
/* The quoted PCRs: 0-7 and 11 of the SHA-256 bank. */
#define AGENT_TPM_PCR_MASK 0x8ffu
#define AGENT_TPM_PCR_N 9

struct agent_tpm;

/* tcti: a tpm2-tss TCTI string ("device:/dev/tpmrm0", "swtpm:host=...,port=..."),
 * NULL for AGENT_TPM_DEFAULT_TCTI.  0, or -1 with the reason in err. */
int agent_tpm_open(const char *tcti, struct agent_tpm **out, char *err, size_t errlen);
void agent_tpm_close(struct agent_tpm *t);

/* The EK certificate (DER) from NV: the RSA one, else the ECC one.
 * 0 with *len; 1 when the TPM has none; -1 on error. */
int agent_tpm_ek_cert(struct agent_tpm *t, uint8_t *buf, size_t cap, size_t *len, char *err, size_t errlen);

/* The EK (TCG EK Credential Profile, default RSA 2048 template) made in
 * the endorsement hierarchy: its TPM2B_PUBLIC. */
int agent_tpm_create_ek(struct agent_tpm *t, uint8_t *pub, size_t cap, size_t *len, char *err, size_t errlen);

enum agent_tpm_ak_type {
	AGENT_TPM_AK_RSA,              /* RSA 2048, RSASSA-SHA256 */
	AGENT_TPM_AK_ECC,              /* ECC NIST P-256, ECDSA-SHA256 */
};

/* An AK under the EK (after agent_tpm_create_ek): restricted signing,
 * fixedTPM, fixedParent, sensitiveDataOrigin; loaded for the connection's
 * life (a second one replaces the first).  Its TPM2B_PUBLIC. */
int agent_tpm_create_ak(struct agent_tpm *t, enum agent_tpm_ak_type type, uint8_t *pub, size_t cap, size_t *len,
	char *err, size_t errlen);

/* TPM2_ActivateCredential of the controller's credential (marshalled
 * TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET) with the AK and the EK: the
 * secret in it, which only this TPM with this EK and AK can recover. */
int agent_tpm_activate(struct agent_tpm *t, const uint8_t *id_object, size_t id_object_len,
	const uint8_t *enc_secret, size_t enc_secret_len,
	uint8_t *secret, size_t cap, size_t *len, char *err, size_t errlen);

struct agent_tpm_quote {
	uint8_t attest[AGENT_TPM_ATTEST_MAX];  /* TPMS_ATTEST */
	size_t attest_len;
	uint8_t sig[AGENT_TPM_SIG_MAX];        /* TPMT_SIGNATURE */
	size_t sig_len;
	uint8_t pcrs[AGENT_TPM_PCR_N * 32];    /* PCR 0-7, 11 (SHA-256), in that order */
	size_t pcrs_len;
};

/* TPM2_Quote by the AK over PCRs 0-7 and 11 (SHA-256) with nonce as the
 * qualifying data, and the values of those PCRs (TPM2_PCR_Read). */
int agent_tpm_quote(struct agent_tpm *t, const uint8_t *nonce, size_t nonce_len,
	struct agent_tpm_quote *q, char *err, size_t errlen);

/* The AK made by agent_tpm_create_ak, wrapped by the TPM (its private part
 * is encrypted under the EK, which is the same primary key every time):
 * kept in RAM after an enrollment, loaded again in a later connection to
 * answer the controller's fresh quote requests (issue 16's gate). */
struct agent_tpm_ak {
	uint8_t priv[1024];            /* marshalled TPM2B_PRIVATE */
	size_t priv_len;
	uint8_t pub[AGENT_TPM_PUBLIC_MAX]; /* marshalled TPM2B_PUBLIC */
	size_t pub_len;
};
/* 0 and the AK made on t; -1 when none was (or it could not be kept). */
int agent_tpm_ak_made(const struct agent_tpm *t, struct agent_tpm_ak *out);
/* Load ak under t's EK (agent_tpm_create_ek first) as t's AK. */
int agent_tpm_load_ak(struct agent_tpm *t, const struct agent_tpm_ak *ak, char *err, size_t errlen);

#endif
