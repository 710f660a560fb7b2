/* Keys, certificates and CSRs (OpenSSL).  No logging; 0 or negative errno. */
#ifndef SKY_COMMON_X509_H
#define SKY_COMMON_X509_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define SKY_CSR_MAX_DER 4096
#define SKY_CERT_MAX_DER 8192

enum sky_cert_kind { SKY_CERT_CA, SKY_CERT_SERVER, SKY_CERT_CLIENT };

struct sky_cert_spec {
	enum sky_cert_kind kind;
	const char *cn;
	uint64_t serial;
	int64_t not_before;          /* unix seconds */
	int64_t not_after;
	const char *const *sans;     /* NULL-terminated DNS names or IP literals; may be NULL */
};

int sky_key_new_p256(EVP_PKEY **out);
int sky_key_new_ed25519(EVP_PKEY **out);

/* Issue a certificate for pubkey.  For SKY_CERT_CA, issuer_cert is NULL and
 * issuer_key signs its own certificate. */
int sky_cert_issue(const struct sky_cert_spec *spec, EVP_PKEY *pubkey, X509 *issuer_cert,
		   EVP_PKEY *issuer_key, X509 **out);

/* The same, straight to DER, faster (OpenSSL 3.0 re-parses a key given to
 * X509_set_pubkey; this sets the encoded point): the hot path of enrollment. */
int sky_cert_issue_der(const struct sky_cert_spec *spec, EVP_PKEY *pubkey, X509 *issuer_cert,
		       EVP_PKEY *issuer_key, uint8_t **der, size_t *der_len);

/* CSR with CN (the agent uses "skyagent"; the controller ignores it). */
int sky_csr_new(EVP_PKEY *key, const char *cn, uint8_t **der, size_t *der_len);
/* Parse a DER CSR of at most SKY_CSR_MAX_DER bytes, check its self-signature
 * and that its key is ECDSA P-256.  Returns the public key. -EMSGSIZE,
 * -EBADMSG (not a CSR), -EKEYREJECTED (signature bad), -EPROTONOSUPPORT
 * (wrong key type). */
int sky_csr_verify(const uint8_t *der, size_t len, EVP_PKEY **pubkey);

int sky_cert_to_der(X509 *cert, uint8_t **der, size_t *len);
int sky_cert_from_der(const uint8_t *der, size_t len, X509 **out);
/* SHA-256 of the DER encoding: the CA pin. */
int sky_cert_pin(X509 *cert, uint8_t out[32]);
/* "sha256:<hex>" into out (>= 72 bytes). */
void sky_pin_format(const uint8_t pin[32], char *out, size_t outlen);
/* The certificate's CN into out. */
int sky_cert_cn(X509 *cert, char *out, size_t outlen);
uint64_t sky_cert_serial(X509 *cert);
int64_t sky_cert_not_after(X509 *cert);

/* PEM files.  Keys are written 0600, certificates 0644; refuses to replace. */
int sky_key_write_pem(const char *path, EVP_PKEY *key);
int sky_cert_write_pem(const char *path, X509 *cert);
int sky_key_read_pem(const char *path, EVP_PKEY **out);
int sky_cert_read_pem(const char *path, X509 **out);
/* Ed25519 signatures (image manifests).  sign: *sig is malloc'd, 64 bytes.
 * verify: 0, or -EKEYREJECTED when the signature does not match. */
int sky_ed25519_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len);
int sky_ed25519_verify(const uint8_t pub[32], const uint8_t *msg, size_t len, const uint8_t *sig,
		       size_t sig_len);
/* Raw public key bytes (Ed25519: 32). */
int sky_key_raw_public(EVP_PKEY *key, uint8_t *out, size_t *len);

#endif
