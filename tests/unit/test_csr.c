/* CSR and certificate checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "common/util.h"
#include "common/x509.h"

static void test_csr_roundtrip(void **state)
{
	EVP_PKEY *key, *pub = NULL;
	uint8_t *der;
	size_t len;
	(void)state;
	assert_int_equal(sky_key_new_p256(&key), 0);
	assert_int_equal(sky_csr_new(key, "skyagent", &der, &len), 0);
	assert_int_equal(sky_csr_verify(der, len, &pub), 0);
	assert_non_null(pub);
	assert_int_equal(EVP_PKEY_eq(key, pub), 1);
	EVP_PKEY_free(pub);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void test_csr_tampered_signature(void **state)
{
	EVP_PKEY *key, *pub = NULL;
	uint8_t *der;
	size_t len;
	(void)state;
	assert_int_equal(sky_key_new_p256(&key), 0);
	assert_int_equal(sky_csr_new(key, "skyagent", &der, &len), 0);
	/* Flip a byte inside the subject CN ("skyagent"): still parses, no longer verifies. */
	uint8_t *p = memmem(der, len, "skyagent", 8);
	assert_non_null(p);
	p[0] = 'S';
	assert_int_equal(sky_csr_verify(der, len, &pub), -EKEYREJECTED);
	assert_null(pub);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void test_csr_garbage_and_limits(void **state)
{
	EVP_PKEY *pub = NULL;
	uint8_t junk[64];
	uint8_t *big = calloc(1, SKY_CSR_MAX_DER + 1);
	(void)state;
	memset(junk, 0x30, sizeof(junk));
	assert_int_equal(sky_csr_verify(junk, sizeof(junk), &pub), -EBADMSG);
	assert_int_equal(sky_csr_verify(junk, 0, &pub), -EMSGSIZE);
	assert_int_equal(sky_csr_verify(big, SKY_CSR_MAX_DER + 1, &pub), -EMSGSIZE);
	assert_null(pub);
	free(big);
}

static void test_csr_wrong_key_type(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *pub = NULL;
	uint8_t *der;
	size_t len;
	(void)state;
	assert_non_null(key);
	assert_int_equal(sky_csr_new(key, "x", &der, &len), 0);
	assert_int_equal(sky_csr_verify(der, len, &pub), -EPROTONOSUPPORT);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void test_issue_chain_and_purpose(void **state)
{
	EVP_PKEY *ca_key, *key;
	X509 *ca, *client, *server;
	int64_t now = sky_unix_now();
	const char *sans[] = {"localhost", "127.0.0.1", NULL};
	(void)state;
	assert_int_equal(sky_key_new_p256(&ca_key), 0);
	assert_int_equal(sky_key_new_p256(&key), 0);
	struct sky_cert_spec cs = {.kind = SKY_CERT_CA, .cn = "ca", .serial = 1, .not_before = now - 10, .not_after = now + 3600};
	assert_int_equal(sky_cert_issue(&cs, ca_key, NULL, ca_key, &ca), 0);
	struct sky_cert_spec cl = {.kind = SKY_CERT_CLIENT, .cn = "brd-0123456789ab", .serial = 42, .not_before = now - 10, .not_after = now + 60};
	assert_int_equal(sky_cert_issue(&cl, key, ca, ca_key, &client), 0);
	struct sky_cert_spec sv = {.kind = SKY_CERT_SERVER, .cn = "skyrootd", .serial = 43, .not_before = now - 10, .not_after = now + 60, .sans = sans};
	assert_int_equal(sky_cert_issue(&sv, key, ca, ca_key, &server), 0);

	char cn[64];
	assert_int_equal(sky_cert_cn(client, cn, sizeof(cn)), 0);
	assert_string_equal(cn, "brd-0123456789ab");
	assert_int_equal(sky_cert_serial(client), 42);
	assert_true(sky_cert_not_after(client) >= now + 59 && sky_cert_not_after(client) <= now + 61);
	/* Purposes: a client certificate cannot act as a server one. */
	assert_int_equal(X509_check_purpose(client, X509_PURPOSE_SSL_CLIENT, 0), 1);
	assert_int_equal(X509_check_purpose(client, X509_PURPOSE_SSL_SERVER, 0), 0);
	assert_int_equal(X509_check_purpose(server, X509_PURPOSE_SSL_SERVER, 0), 1);
	assert_int_equal(X509_check_ip_asc(server, "127.0.0.1", 0), 1);
	/* Chains to the CA. */
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX_init(ctx, store, client, NULL);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	/* Pins are stable and formatted. */
	uint8_t pin[32], pin2[32];
	char s[80];
	assert_int_equal(sky_cert_pin(ca, pin), 0);
	assert_int_equal(sky_cert_pin(ca, pin2), 0);
	assert_memory_equal(pin, pin2, 32);
	sky_pin_format(pin, s, sizeof(s));
	assert_int_equal(strlen(s), 7 + 64);
	assert_memory_equal(s, "sha256:", 7);
	/* DER round trip with limits. */
	uint8_t *der;
	size_t len;
	X509 *back;
	assert_int_equal(sky_cert_to_der(client, &der, &len), 0);
	assert_int_equal(sky_cert_from_der(der, len, &back), 0);
	assert_int_equal(X509_cmp(client, back), 0);
	{ X509 *none = NULL; assert_int_equal(sky_cert_from_der(der, len - 1, &none), -EBADMSG); assert_null(none); }
	X509_free(back);
	OPENSSL_free(der);
	X509_free(ca);
	X509_free(client);
	X509_free(server);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
}

/* The fast DER path makes the same certificate as the general one. */
static void test_issue_der_fast_path(void **state)
{
	EVP_PKEY *ca_key, *key;
	X509 *ca, *slow, *fast = NULL;
	uint8_t *der;
	size_t len;
	int64_t now = sky_unix_now();
	(void)state;
	assert_int_equal(sky_key_new_p256(&ca_key), 0);
	assert_int_equal(sky_key_new_p256(&key), 0);
	struct sky_cert_spec cs = {.kind = SKY_CERT_CA, .cn = "ca", .serial = 1, .not_before = now - 10, .not_after = now + 3600};
	assert_int_equal(sky_cert_issue(&cs, ca_key, NULL, ca_key, &ca), 0);
	struct sky_cert_spec cl = {.kind = SKY_CERT_CLIENT, .cn = "brd-0123456789ab", .serial = 42, .not_before = now - 10, .not_after = now + 60};
	assert_int_equal(sky_cert_issue(&cl, key, ca, ca_key, &slow), 0);
	assert_int_equal(sky_cert_issue_der(&cl, key, ca, ca_key, &der, &len), 0);
	assert_int_equal(sky_cert_from_der(der, len, &fast), 0);
	/* Same public key bytes, and the key decodes. */
	assert_int_equal(X509_PUBKEY_eq(X509_get_X509_PUBKEY(slow), X509_get_X509_PUBKEY(fast)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(fast), key), 1);
	assert_int_equal(X509_check_purpose(fast, X509_PURPOSE_SSL_CLIENT, 0), 1);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX_init(ctx, store, fast, NULL);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	OPENSSL_free(der);
	X509_free(fast);
	X509_free(slow);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_roundtrip),
		cmocka_unit_test(test_csr_tampered_signature),
		cmocka_unit_test(test_csr_garbage_and_limits),
		cmocka_unit_test(test_csr_wrong_key_type),
		cmocka_unit_test(test_issue_chain_and_purpose),
		cmocka_unit_test(test_issue_der_fast_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
