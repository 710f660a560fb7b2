/* A board's TPM 2.0 evidence, checked by the controller (issue 16).
 *
 * What a board sends, in the TPM's own marshalled forms (parsed with
 * tpm2-tss's Tss2_MU_*_Unmarshal; every byte must be consumed):
 *   - its EK certificate (DER, from NV 0x01c00002) and its EK public key
 *     (TPM2B_PUBLIC): the certificate must chain to a configured
 *     manufacturer CA and carry the same key;
 *   - its AK public key (TPM2B_PUBLIC): a restricted signing key made in
 *     the TPM (fixedTPM, fixedParent, sensitiveDataOrigin);
 *   - the answer to a credential made here for the EK and the AK's name
 *     (tpmv_make_credential): only the TPM that holds both can give the
 *     secret back, which binds the AK to the EK;
 *   - quotes: TPMS_ATTEST, its TPMT_SIGNATURE by the AK, and the values of
 *     PCRs 0-7 and 11 of the SHA-256 bank, over a nonce given by the
 *     controller (single use: struct tpmv_nonces).
 * Each refusal is its own enum tpmv_result, with a reason in why. */
#ifndef SKY_CONTROLLER_TPM_VERIFY_H
#define SKY_CONTROLLER_TPM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a board sends; larger is refused before parsing. */
#define TPMV_MAX_STRUCT 4096           /* a TPM structure (public key, attest, signature) */
#define TPMV_MAX_CERT 8192             /* an EK certificate */
#define TPMV_NONCE_LEN 32
#define TPMV_DIGEST_LEN 32             /* SHA-256, the only bank and name algorithm taken */
#define TPMV_NAME_MAX (2 + 64)
#define TPMV_SECRET_MAX 32             /* a credential's secret (TPM2B_DIGEST of SHA-256) */
#define TPMV_ID_OBJECT_MAX 256         /* a marshalled TPM2B_ID_OBJECT */
#define TPMV_ENC_SECRET_MAX 520        /* a marshalled TPM2B_ENCRYPTED_SECRET */
/* The PCRs a quote must cover: 0-7 (firmware, boot loader) and 11 (UKI). */
#define TPMV_PCR_REQUIRED 0x8ffu
#define TPMV_PCR_COUNT 24

enum tpmv_result {
	TPMV_OK = 0,
	TPMV_MALFORMED,        /* does not parse, too long, or bytes left over */
	TPMV_BAD_KEY,          /* a key type, size, algorithm or scheme not taken */
	TPMV_AK_ATTRIBUTES,    /* the AK is not a restricted signing key born in the TPM */
	TPMV_EK_UNKNOWN_CA,    /* the EK certificate does not chain to a configured CA */
	TPMV_EK_MISMATCH,      /* the EK public key is not the certificate's */
	TPMV_BAD_SIGNATURE,    /* the quote is not signed by the AK */
	TPMV_NOT_QUOTE,        /* not TPM_GENERATED_VALUE / TPM_ST_ATTEST_QUOTE */
	TPMV_WRONG_NONCE,      /* extraData is not the nonce given (or it expired) */
	TPMV_REPLAY,           /* the nonce was given and already used */
	TPMV_PCR_SELECTION,    /* not the SHA-256 bank over 0-7 and 11, or values missing */
	TPMV_PCR_MISMATCH,     /* the values do not hash to the quoted digest */
	TPMV_NOT_BOUND,        /* the activation's secret is not the credential's */
	TPMV_INTERNAL,         /* out of memory, OpenSSL failure */
};

const char *tpmv_strerror(enum tpmv_result r);

/* A TPM public key (TPM2B_PUBLIC) as parsed, with its name. */
struct tpmv_key;

enum tpmv_result tpmv_key_parse(const uint8_t *buf, size_t len, struct tpmv_key **out,
	char *why, size_t whylen);
void tpmv_key_free(struct tpmv_key *k);
/* The TPM's name of the key: nameAlg (2 bytes) || SHA-256 of TPMT_PUBLIC. */
size_t tpmv_key_name(const struct tpmv_key *k, uint8_t *out, size_t outlen);
/* An AK: RSA 2048+ or ECC P-256, nameAlg SHA-256, restricted, sign, not
 * decrypt, fixedTPM, fixedParent, sensitiveDataOrigin, scheme RSASSA,
 * RSAPSS or ECDSA with SHA-256. */
enum tpmv_result tpmv_ak_check(const struct tpmv_key *ak, char *why, size_t whylen);
/* An EK as MakeCredential needs it: RSA 2048, nameAlg SHA-256, restricted
 * decrypt, AES-128-CFB (the TCG default template).  ECC EKs: TPMV_BAD_KEY. */
enum tpmv_result tpmv_ek_check(const struct tpmv_key *ek, char *why, size_t whylen);

/* Manufacturer CAs: PEM files, each with one or more certificates (roots
 * and the intermediates that sign EK certificates). */
struct tpmv_cas;
struct tpmv_cas *tpmv_cas_load(const char *const *files, size_t n, char *why, size_t whylen);
void tpmv_cas_free(struct tpmv_cas *cas);
/* The EK certificate (DER) chains to one of cas; if ek is not NULL, its
 * key is the certificate's.  sha256_out (may be NULL): the certificate's
 * fingerprint. */
enum tpmv_result tpmv_ek_cert_check(const struct tpmv_cas *cas, const uint8_t *der, size_t len,
	const struct tpmv_key *ek, uint8_t sha256_out[32], char *why, size_t whylen);

/* MakeCredential (TPM 2.0 part 1, 24 "Credential Protection"), in
 * software: secret (1..TPMV_SECRET_MAX bytes) for the object named name,
 * protected by ek.  Writes the marshalled TPM2B_ID_OBJECT and
 * TPM2B_ENCRYPTED_SECRET that TPM2_ActivateCredential takes. */
enum tpmv_result tpmv_make_credential(const struct tpmv_key *ek, const uint8_t *name, size_t namelen,
	const uint8_t *secret, size_t secretlen,
	uint8_t *id_object, size_t *id_object_len, uint8_t *enc_secret, size_t *enc_secret_len,
	char *why, size_t whylen);
/* What the board says its TPM activated against what was made:
 * TPMV_NOT_BOUND unless equal (compared in constant time). */
enum tpmv_result tpmv_activation_check(const uint8_t *expected, size_t expected_len,
	const uint8_t *got, size_t got_len);

/* Single-use nonces with an expiry, for quotes. */
struct tpmv_nonces;
struct tpmv_nonces *tpmv_nonces_new(size_t capacity, int64_t ttl_ms);
void tpmv_nonces_free(struct tpmv_nonces *n);
/* A fresh random nonce, valid until now_ms + ttl; -1 when every slot holds
 * a live nonce (given or used, not yet expired). */
int tpmv_nonce_issue(struct tpmv_nonces *n, int64_t now_ms, uint8_t out[TPMV_NONCE_LEN]);
/* Record a nonce the caller made and gave itself (TPMV_NONCE_LEN bytes):
 * as tpmv_nonce_issue otherwise. */
int tpmv_nonce_register(struct tpmv_nonces *n, int64_t now_ms, const uint8_t *nonce, size_t len);
/* TPMV_OK once for a nonce given and live; TPMV_REPLAY after; TPMV_WRONG_NONCE
 * for one never given or expired. */
enum tpmv_result tpmv_nonce_use(struct tpmv_nonces *n, int64_t now_ms, const uint8_t *nonce, size_t len);

/* A quote as the board sends it. */
struct tpmv_quote {
	const uint8_t *attest;         /* TPMS_ATTEST */
	size_t attest_len;
	const uint8_t *sig;            /* TPMT_SIGNATURE */
	size_t sig_len;
	const uint8_t *pcrs;           /* the selected PCRs' values, ascending, 32 bytes each */
	size_t pcrs_len;
};

/* What a good quote says. */
struct tpmv_pcrs {
	uint32_t mask;                 /* the PCRs quoted (bit i: PCR i) */
	uint8_t value[TPMV_PCR_COUNT][TPMV_DIGEST_LEN];
	uint64_t clock;                /* the TPM's clock, reset and restart counts */
	uint32_t reset_count, restart_count;
};

/* The quote is signed by ak (already tpmv_ak_check'ed), is a TPM quote,
 * carries nonce, covers PCRs 0-7 and 11 of the SHA-256 bank, and its values
 * hash to the quoted digest.  out (may be NULL) gets the values. */
enum tpmv_result tpmv_quote_verify(const struct tpmv_key *ak, const struct tpmv_quote *q,
	const uint8_t *nonce, size_t nonce_len, struct tpmv_pcrs *out, char *why, size_t whylen);
/* The same with the nonce taken from the quote and used up in nonces:
 * a nonce never given is TPMV_WRONG_NONCE, one used before TPMV_REPLAY. */
enum tpmv_result tpmv_quote_verify_fresh(const struct tpmv_key *ak, const struct tpmv_quote *q,
	struct tpmv_nonces *nonces, int64_t now_ms, struct tpmv_pcrs *out, char *why, size_t whylen);

#endif
