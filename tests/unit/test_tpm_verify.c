/* The controller's checks of a board's TPM evidence
 * (controller/skyrootd/tpm_verify.c) against vectors a real TPM made:
 * tests/fixtures/tpm/, by tests/tpm/make_fixtures.sh (swtpm + tpm2-tools;
 * the list of files is there).  Each refusal of tpm_verify.h has its case;
 * truncated, oversize and flipped inputs must give a refusal, never a
 * crash (ASan build).  The last case prints quote verifications a second.
 *
 * Environment: SKY_FIXTURES (absolute path of tests/fixtures), set by meson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <tss2/tss2_mu.h>

#include "controller/skyrootd/tpm_verify.h"

struct blob {
	uint8_t *p;
	size_t n;
};

static const char *fx_dir(void)
{
	static char dir[512];
	const char *fx = getenv("SKY_FIXTURES");
	if (!fx)
		fx = "tests/fixtures";
	snprintf(dir, sizeof(dir), "%s/tpm", fx);
	return dir;
}

static const char *fx_path(const char *name)
{
	static char path[2][600];
	static int k;
	k ^= 1;
	snprintf(path[k], sizeof(path[k]), "%s/%s", fx_dir(), name);
	return path[k];
}

static struct blob load(const char *name)
{
	struct blob b = { 0 };
	FILE *f = fopen(fx_path(name), "rb");
	if (!f)
		fail_msg("fixture %s missing (SKY_FIXTURES=%s)", name, fx_dir());
	b.p = malloc(65536);
	assert_non_null(b.p);
	b.n = fread(b.p, 1, 65536, f);
	fclose(f);
	assert_true(b.n > 0);
	return b;
}

struct fx {
	struct blob ek_cert, ek_pub, ak_pub, ak_name, nonce, attest, sig, pcrs;
	struct tpmv_key *ak, *ek;
	struct tpmv_cas *cas;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->ek_cert = load("ek_cert.der");
	x->ek_pub = load("ek.pub");
	x->ak_pub = load("ak.pub");
	x->ak_name = load("ak.name");
	x->nonce = load("nonce.bin");
	x->attest = load("quote.attest");
	x->sig = load("quote.sig");
	x->pcrs = load("pcrs.bin");
	char why[256] = "";
	assert_int_equal(tpmv_key_parse(x->ak_pub.p, x->ak_pub.n, &x->ak, why, sizeof(why)), TPMV_OK);
	assert_int_equal(tpmv_key_parse(x->ek_pub.p, x->ek_pub.n, &x->ek, why, sizeof(why)), TPMV_OK);
	const char *files[] = { fx_path("ca_root.pem"), fx_path("ca_issuer.pem") };
	char f0[600], f1[600];
	snprintf(f0, sizeof(f0), "%s", files[0]);
	snprintf(f1, sizeof(f1), "%s", files[1]);
	const char *cf[] = { f0, f1 };
	x->cas = tpmv_cas_load(cf, 2, why, sizeof(why));
	assert_non_null(x->cas);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	struct blob *bs[] = { &x->ek_cert, &x->ek_pub, &x->ak_pub, &x->ak_name, &x->nonce, &x->attest, &x->sig, &x->pcrs };
	for (size_t i = 0; i < sizeof(bs) / sizeof(bs[0]); i++)
		free(bs[i]->p);
	tpmv_key_free(x->ak);
	tpmv_key_free(x->ek);
	tpmv_cas_free(x->cas);
	free(x);
	return 0;
}

static struct tpmv_quote quote_of(const struct fx *x)
{
	struct tpmv_quote q = {
		.attest = x->attest.p, .attest_len = x->attest.n,
		.sig = x->sig.p, .sig_len = x->sig.n,
		.pcrs = x->pcrs.p, .pcrs_len = x->pcrs.n,
	};
	return q;
}

/* ---- keys ---- */

static void test_ak_name_and_attributes(void **state)
{
	struct fx *x = *state;
	uint8_t name[TPMV_NAME_MAX];
	char why[256] = "";
	size_t n = tpmv_key_name(x->ak, name, sizeof(name));
	/* the name the TPM itself gave (tpm2_createak -n) */
	assert_int_equal(n, x->ak_name.n);
	assert_memory_equal(name, x->ak_name.p, n);
	assert_int_equal(tpmv_ak_check(x->ak, why, sizeof(why)), TPMV_OK);
	assert_int_equal(tpmv_ek_check(x->ek, why, sizeof(why)), TPMV_OK);
	/* an EK is no AK, an AK no EK */
	assert_int_equal(tpmv_ak_check(x->ek, why, sizeof(why)), TPMV_AK_ATTRIBUTES);
	assert_non_null(strstr(why, "AK"));
	assert_int_equal(tpmv_ek_check(x->ak, why, sizeof(why)), TPMV_BAD_KEY);
}

/* The AK's public area with its attributes changed, marshalled again. */
static enum tpmv_result ak_with(const struct fx *x, uint32_t clear, uint32_t set, struct tpmv_key **k)
{
	TPM2B_PUBLIC p;
	size_t off = 0;
	uint8_t buf[2048];
	char why[256];
	memset(&p, 0, sizeof(p));
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(x->ak_pub.p, x->ak_pub.n, &off, &p), TSS2_RC_SUCCESS);
	p.publicArea.objectAttributes = (p.publicArea.objectAttributes & ~clear) | set;
	p.size = 0;  /* computed by the marshaller */
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&p, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(tpmv_key_parse(buf, off, k, why, sizeof(why)), TPMV_OK);
	return tpmv_ak_check(*k, why, sizeof(why));
}

static void test_ak_attributes_refused(void **state)
{
	struct fx *x = *state;
	const uint32_t must[] = { TPMA_OBJECT_RESTRICTED, TPMA_OBJECT_SIGN_ENCRYPT, TPMA_OBJECT_FIXEDTPM,
		TPMA_OBJECT_FIXEDPARENT, TPMA_OBJECT_SENSITIVEDATAORIGIN };
	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++) {
		struct tpmv_key *k = NULL;
		assert_int_equal(ak_with(x, must[i], 0, &k), TPMV_AK_ATTRIBUTES);
		tpmv_key_free(k);
	}
	struct tpmv_key *k = NULL;
	assert_int_equal(ak_with(x, 0, TPMA_OBJECT_DECRYPT, &k), TPMV_AK_ATTRIBUTES);
	tpmv_key_free(k);
	/* unchanged, through the same path: accepted (the helper is sound) */
	assert_int_equal(ak_with(x, 0, 0, &k), TPMV_OK);
	tpmv_key_free(k);
}

static void test_key_refused(void **state)
{
	struct fx *x = *state;
	TPM2B_PUBLIC p;
	size_t off = 0;
	uint8_t buf[2048];
	char why[256] = "";
	struct tpmv_key *k = NULL;
	memset(&p, 0, sizeof(p));
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(x->ak_pub.p, x->ak_pub.n, &off, &p), TSS2_RC_SUCCESS);
	/* an RSA exponent of 3 */
	TPM2B_PUBLIC m = p;
	m.size = 0;
	m.publicArea.parameters.rsaDetail.exponent = 3;
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&m, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(tpmv_key_parse(buf, off, &k, why, sizeof(why)), TPMV_BAD_KEY);
	assert_null(k);
	/* a modulus shorter than its key size says */
	m = p;
	m.size = 0;
	m.publicArea.unique.rsa.size = 128;
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&m, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(tpmv_key_parse(buf, off, &k, why, sizeof(why)), TPMV_BAD_KEY);
	/* a name algorithm other than SHA-256 */
	m = p;
	m.size = 0;
	m.publicArea.nameAlg = TPM2_ALG_SHA1;
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&m, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(tpmv_key_parse(buf, off, &k, why, sizeof(why)), TPMV_BAD_KEY);
	/* a signing scheme with SHA-1 */
	m = p;
	m.size = 0;
	m.publicArea.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA1;
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&m, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(tpmv_key_parse(buf, off, &k, why, sizeof(why)), TPMV_OK);
	assert_int_equal(tpmv_ak_check(k, why, sizeof(why)), TPMV_BAD_KEY);
	tpmv_key_free(k);
}

static void test_key_malformed(void **state)
{
	struct fx *x = *state;
	struct tpmv_key *k = NULL;
	char why[256];
	/* every truncation of the AK public key */
	for (size_t n = 0; n < x->ak_pub.n; n++) {
		uint8_t *c = malloc(n ? n : 1);
		memcpy(c, x->ak_pub.p, n);
		enum tpmv_result r = tpmv_key_parse(c, n, &k, why, sizeof(why));
		assert_int_not_equal(r, TPMV_OK);
		assert_null(k);
		free(c);
	}
	/* a byte after it */
	uint8_t *big = calloc(1, TPMV_MAX_STRUCT + 1);
	memcpy(big, x->ak_pub.p, x->ak_pub.n);
	assert_int_equal(tpmv_key_parse(big, x->ak_pub.n + 1, &k, why, sizeof(why)), TPMV_MALFORMED);
	assert_non_null(strstr(why, "after"));
	/* oversize */
	assert_int_equal(tpmv_key_parse(big, TPMV_MAX_STRUCT + 1, &k, why, sizeof(why)), TPMV_MALFORMED);
	free(big);
	/* a size field that lies: larger than what follows */
	uint8_t lie[16] = { 0x40, 0x00, 0x00, 0x01 };
	assert_int_equal(tpmv_key_parse(lie, sizeof(lie), &k, why, sizeof(why)), TPMV_MALFORMED);
}

/* ---- EK certificates ---- */

static void test_ek_cert_ok(void **state)
{
	struct fx *x = *state;
	uint8_t fp[32] = { 0 }, zero[32] = { 0 };
	char why[256] = "";
	assert_int_equal(tpmv_ek_cert_check(x->cas, x->ek_cert.p, x->ek_cert.n, x->ek, fp, why, sizeof(why)), TPMV_OK);
	assert_memory_not_equal(fp, zero, 32);
	assert_int_equal(tpmv_ek_cert_check(x->cas, x->ek_cert.p, x->ek_cert.n, NULL, NULL, why, sizeof(why)), TPMV_OK);
}

static void test_ek_cert_unknown_ca(void **state)
{
	struct fx *x = *state;
	char why[256] = "";
	/* another maker's EK certificate */
	struct blob foreign = load("foreign_ek_cert.der");
	assert_int_equal(tpmv_ek_cert_check(x->cas, foreign.p, foreign.n, NULL, NULL, why, sizeof(why)),
		TPMV_EK_UNKNOWN_CA);
	assert_non_null(strstr(why, "unknown CA"));
	/* ours against the other maker's CA only */
	char f0[600], f1[600];
	snprintf(f0, sizeof(f0), "%s", fx_path("foreign_ca_root.pem"));
	snprintf(f1, sizeof(f1), "%s", fx_path("foreign_ca_issuer.pem"));
	const char *cf[] = { f0, f1 };
	struct tpmv_cas *other = tpmv_cas_load(cf, 2, why, sizeof(why));
	assert_non_null(other);
	assert_int_equal(tpmv_ek_cert_check(other, x->ek_cert.p, x->ek_cert.n, NULL, NULL, why, sizeof(why)),
		TPMV_EK_UNKNOWN_CA);
	tpmv_cas_free(other);
	/* the root alone, without the intermediate that signed it */
	const char *root[] = { f0 };
	snprintf(f0, sizeof(f0), "%s", fx_path("ca_root.pem"));
	other = tpmv_cas_load(root, 1, why, sizeof(why));
	assert_non_null(other);
	assert_int_equal(tpmv_ek_cert_check(other, x->ek_cert.p, x->ek_cert.n, NULL, NULL, why, sizeof(why)),
		TPMV_EK_UNKNOWN_CA);
	tpmv_cas_free(other);
	/* a CA file that is not one */
	const char *bad[] = { fx_path("ek.pub") };
	assert_null(tpmv_cas_load(bad, 1, why, sizeof(why)));
	free(foreign.p);
}

static void test_ek_cert_mismatch(void **state)
{
	struct fx *x = *state;
	char why[256] = "";
	/* a good certificate, but the EK offered is another key */
	assert_int_equal(tpmv_ek_cert_check(x->cas, x->ek_cert.p, x->ek_cert.n, x->ak, NULL, why, sizeof(why)),
		TPMV_EK_MISMATCH);
}

static void test_ek_cert_malformed(void **state)
{
	struct fx *x = *state;
	char why[256];
	for (size_t n = 0; n < x->ek_cert.n; n += (n < 64 ? 1 : 37)) {
		uint8_t *c = malloc(n ? n : 1);
		memcpy(c, x->ek_cert.p, n);
		assert_int_equal(tpmv_ek_cert_check(x->cas, c, n, NULL, NULL, why, sizeof(why)), TPMV_MALFORMED);
		free(c);
	}
	uint8_t *big = calloc(1, TPMV_MAX_CERT + 1);
	memcpy(big, x->ek_cert.p, x->ek_cert.n);
	assert_int_equal(tpmv_ek_cert_check(x->cas, big, x->ek_cert.n + 1, NULL, NULL, why, sizeof(why)), TPMV_MALFORMED);
	assert_int_equal(tpmv_ek_cert_check(x->cas, big, TPMV_MAX_CERT + 1, NULL, NULL, why, sizeof(why)), TPMV_MALFORMED);
	/* a flipped byte in the signed part: parses, does not verify */
	memcpy(big, x->ek_cert.p, x->ek_cert.n);
	big[x->ek_cert.n / 2] ^= 0x01;
	assert_int_not_equal(tpmv_ek_cert_check(x->cas, big, x->ek_cert.n, NULL, NULL, why, sizeof(why)), TPMV_OK);
	free(big);
}

/* ---- credentials ---- */

static void test_make_credential(void **state)
{
	struct fx *x = *state;
	uint8_t id[TPMV_ID_OBJECT_MAX], es[TPMV_ENC_SECRET_MAX], secret[32];
	size_t idn = sizeof(id), esn = sizeof(es);
	char why[256] = "";
	memset(secret, 0x5a, sizeof(secret));
	assert_int_equal(tpmv_make_credential(x->ek, x->ak_name.p, x->ak_name.n, secret, sizeof(secret),
		id, &idn, es, &esn, why, sizeof(why)), TPMV_OK);
	/* The shape tpm2_makecredential gives for the same EK and name
	 * (cred.blob: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET);
	 * the TPM itself activates ours in tests/tpm/live.c. */
	struct blob ref = load("cred.blob");
	assert_true(ref.n > 8);
	assert_memory_equal(ref.p, "\xba\xdc\xc0\xde\x00\x00\x00\x01", 8);
	TPM2B_ID_OBJECT rid, mid;
	TPM2B_ENCRYPTED_SECRET res, mes;
	size_t off = 8;
	assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(ref.p, ref.n, &off, &rid), TSS2_RC_SUCCESS);
	assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(ref.p, ref.n, &off, &res), TSS2_RC_SUCCESS);
	assert_int_equal(off, ref.n);
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id, idn, &off, &mid), TSS2_RC_SUCCESS);
	assert_int_equal(off, idn);
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(es, esn, &off, &mes), TSS2_RC_SUCCESS);
	assert_int_equal(off, esn);
	assert_int_equal(mid.size, rid.size);
	assert_int_equal(mes.size, res.size);
	assert_int_equal(mes.size, 256);
	/* the integrity HMAC's size prefix (32) leads both */
	assert_memory_equal(mid.credential, rid.credential, 2);
	/* random seed: two credentials for the same secret differ */
	uint8_t id2[TPMV_ID_OBJECT_MAX], es2[TPMV_ENC_SECRET_MAX];
	size_t idn2 = sizeof(id2), esn2 = sizeof(es2);
	assert_int_equal(tpmv_make_credential(x->ek, x->ak_name.p, x->ak_name.n, secret, sizeof(secret),
		id2, &idn2, es2, &esn2, why, sizeof(why)), TPMV_OK);
	assert_memory_not_equal(id, id2, idn);
	free(ref.p);

	/* refused: an AK as the EK, no secret, a secret too long, no name */
	idn = sizeof(id);
	esn = sizeof(es);
	assert_int_equal(tpmv_make_credential(x->ak, x->ak_name.p, x->ak_name.n, secret, sizeof(secret),
		id, &idn, es, &esn, why, sizeof(why)), TPMV_BAD_KEY);
	assert_int_equal(tpmv_make_credential(x->ek, x->ak_name.p, x->ak_name.n, secret, 0,
		id, &idn, es, &esn, why, sizeof(why)), TPMV_MALFORMED);
	uint8_t longsec[TPMV_SECRET_MAX + 1] = { 0 };
	assert_int_equal(tpmv_make_credential(x->ek, x->ak_name.p, x->ak_name.n, longsec, sizeof(longsec),
		id, &idn, es, &esn, why, sizeof(why)), TPMV_MALFORMED);
	assert_int_equal(tpmv_make_credential(x->ek, x->ak_name.p, 1, secret, sizeof(secret),
		id, &idn, es, &esn, why, sizeof(why)), TPMV_MALFORMED);
}

static void test_activation_check(void **state)
{
	(void)state;
	uint8_t a[32], b[32];
	memset(a, 7, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_int_equal(tpmv_activation_check(a, 32, b, 32), TPMV_OK);
	b[31] ^= 1;
	assert_int_equal(tpmv_activation_check(a, 32, b, 32), TPMV_NOT_BOUND);
	assert_int_equal(tpmv_activation_check(a, 32, a, 31), TPMV_NOT_BOUND);
	assert_int_equal(tpmv_activation_check(a, 0, a, 0), TPMV_NOT_BOUND);
	assert_string_equal(tpmv_strerror(TPMV_NOT_BOUND), "AK not bound to the EK (activation secret mismatch)");
}

/* ---- quotes ---- */

static void test_quote_ok(void **state)
{
	struct fx *x = *state;
	struct tpmv_quote q = quote_of(x);
	struct tpmv_pcrs out;
	char why[256] = "";
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, &out, why, sizeof(why)), TPMV_OK);
	assert_int_equal(out.mask, TPMV_PCR_REQUIRED);
	assert_memory_equal(out.value[0], x->pcrs.p, 32);
	assert_memory_equal(out.value[7], x->pcrs.p + 7 * 32, 32);
	assert_memory_equal(out.value[11], x->pcrs.p + 8 * 32, 32);
	uint8_t zero[32] = { 0 };
	assert_memory_not_equal(out.value[11], zero, 32);  /* make_fixtures.sh extended it */
}

static void test_quote_ecc(void **state)
{
	struct fx *x = *state;
	struct blob pub = load("ak_ecc.pub"), name = load("ak_ecc.name");
	struct blob at = load("quote_ecc.attest"), sig = load("quote_ecc.sig");
	struct tpmv_key *ak = NULL;
	char why[256] = "";
	uint8_t nm[TPMV_NAME_MAX];
	assert_int_equal(tpmv_key_parse(pub.p, pub.n, &ak, why, sizeof(why)), TPMV_OK);
	assert_int_equal(tpmv_key_name(ak, nm, sizeof(nm)), name.n);
	assert_memory_equal(nm, name.p, name.n);
	assert_int_equal(tpmv_ak_check(ak, why, sizeof(why)), TPMV_OK);
	struct tpmv_quote q = { at.p, at.n, sig.p, sig.n, x->pcrs.p, x->pcrs.n };
	assert_int_equal(tpmv_quote_verify(ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_OK);
	/* S flipped: the ECDSA signature no longer verifies */
	sig.p[sig.n - 1] ^= 0x01;
	assert_int_equal(tpmv_quote_verify(ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_BAD_SIGNATURE);
	sig.p[sig.n - 1] ^= 0x01;
	/* the RSA AK's quote under the ECC AK: scheme differs */
	struct tpmv_quote rq = quote_of(x);
	assert_int_equal(tpmv_quote_verify(ak, &rq, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_BAD_SIGNATURE);
	/* a point off the curve */
	TPM2B_PUBLIC p;
	size_t off = 0;
	uint8_t buf[1024];
	struct tpmv_key *bad = NULL;
	memset(&p, 0, sizeof(p));
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub.p, pub.n, &off, &p), TSS2_RC_SUCCESS);
	p.size = 0;
	p.publicArea.unique.ecc.y.buffer[5] ^= 0x01;
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&p, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(tpmv_key_parse(buf, off, &bad, why, sizeof(why)), TPMV_BAD_KEY);
	tpmv_key_free(ak);
	free(pub.p);
	free(name.p);
	free(at.p);
	free(sig.p);
}

static void test_quote_wrong_nonce(void **state)
{
	struct fx *x = *state;
	struct tpmv_quote q = quote_of(x);
	uint8_t other[TPMV_NONCE_LEN];
	char why[256] = "";
	memcpy(other, x->nonce.p, sizeof(other));
	other[0] ^= 0x80;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, other, sizeof(other), NULL, why, sizeof(why)), TPMV_WRONG_NONCE);
	assert_non_null(strstr(why, "wrong nonce"));
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n - 1, NULL, why, sizeof(why)), TPMV_WRONG_NONCE);
	/* with a registry: never given */
	struct tpmv_nonces *reg = tpmv_nonces_new(4, 60000);
	assert_int_equal(tpmv_quote_verify_fresh(x->ak, &q, reg, 1000, NULL, why, sizeof(why)), TPMV_WRONG_NONCE);
	/* given, but expired */
	assert_int_equal(tpmv_nonce_register(reg, 1000, x->nonce.p, x->nonce.n), 0);
	assert_int_equal(tpmv_quote_verify_fresh(x->ak, &q, reg, 1000 + 60000, NULL, why, sizeof(why)), TPMV_WRONG_NONCE);
	tpmv_nonces_free(reg);
}

static void test_quote_replay(void **state)
{
	struct fx *x = *state;
	struct tpmv_quote q = quote_of(x);
	char why[256] = "";
	struct tpmv_nonces *reg = tpmv_nonces_new(4, 60000);
	assert_int_equal(tpmv_nonce_register(reg, 1000, x->nonce.p, x->nonce.n), 0);
	/* a forged signature does not spend the nonce */
	uint8_t *sig = malloc(x->sig.n);
	memcpy(sig, x->sig.p, x->sig.n);
	sig[x->sig.n - 1] ^= 1;
	struct tpmv_quote bad = q;
	bad.sig = sig;
	assert_int_equal(tpmv_quote_verify_fresh(x->ak, &bad, reg, 2000, NULL, why, sizeof(why)), TPMV_BAD_SIGNATURE);
	free(sig);
	assert_int_equal(tpmv_quote_verify_fresh(x->ak, &q, reg, 2000, NULL, why, sizeof(why)), TPMV_OK);
	assert_int_equal(tpmv_quote_verify_fresh(x->ak, &q, reg, 3000, NULL, why, sizeof(why)), TPMV_REPLAY);
	assert_non_null(strstr(why, "replayed"));
	tpmv_nonces_free(reg);
}

static void test_nonce_registry(void **state)
{
	(void)state;
	struct tpmv_nonces *reg = tpmv_nonces_new(2, 100);
	uint8_t a[TPMV_NONCE_LEN], b[TPMV_NONCE_LEN], c[TPMV_NONCE_LEN];
	assert_int_equal(tpmv_nonce_issue(reg, 0, a), 0);
	assert_int_equal(tpmv_nonce_issue(reg, 0, b), 0);
	assert_memory_not_equal(a, b, TPMV_NONCE_LEN);
	/* full of live nonces, used or not */
	assert_int_equal(tpmv_nonce_issue(reg, 50, c), -1);
	assert_int_equal(tpmv_nonce_use(reg, 50, a, sizeof(a)), TPMV_OK);
	assert_int_equal(tpmv_nonce_use(reg, 60, a, sizeof(a)), TPMV_REPLAY);
	assert_int_equal(tpmv_nonce_issue(reg, 60, c), -1);
	assert_int_equal(tpmv_nonce_use(reg, 60, a, sizeof(a) - 1), TPMV_WRONG_NONCE);
	/* expired: b refused, and slots free again */
	assert_int_equal(tpmv_nonce_use(reg, 100, b, sizeof(b)), TPMV_WRONG_NONCE);
	assert_int_equal(tpmv_nonce_issue(reg, 100, c), 0);
	assert_int_equal(tpmv_nonce_use(reg, 101, c, sizeof(c)), TPMV_OK);
	assert_null(tpmv_nonces_new(0, 100));
	tpmv_nonces_free(reg);
}

static void test_quote_pcr_mismatch(void **state)
{
	struct fx *x = *state;
	struct tpmv_quote q = quote_of(x);
	uint8_t pcrs[9 * 32];
	char why[256] = "";
	assert_int_equal(x->pcrs.n, sizeof(pcrs));
	/* an extended PCR 11, as another UKI would leave it */
	memcpy(pcrs, x->pcrs.p, sizeof(pcrs));
	pcrs[8 * 32] ^= 0x01;
	q.pcrs = pcrs;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_PCR_MISMATCH);
	/* values in another order */
	memcpy(pcrs, x->pcrs.p + 32, 32);
	memcpy(pcrs + 32, x->pcrs.p, 32);
	memcpy(pcrs + 64, x->pcrs.p + 64, sizeof(pcrs) - 64);
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_PCR_MISMATCH);
	/* a value missing */
	q.pcrs = x->pcrs.p;
	q.pcrs_len = x->pcrs.n - 32;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_PCR_SELECTION);
}

static void test_quote_selection(void **state)
{
	struct fx *x = *state;
	struct blob at = load("quote_no11.attest"), sig = load("quote_no11.sig"), pcrs = load("pcrs_no11.bin");
	struct tpmv_quote q = { at.p, at.n, sig.p, sig.n, pcrs.p, pcrs.n };
	char why[256] = "";
	/* signed by the AK, right nonce, right values: but no PCR 11 */
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_PCR_SELECTION);
	assert_non_null(strstr(why, "lacks 0x000800"));
	free(at.p);
	free(sig.p);
	free(pcrs.p);
}

static void test_not_a_quote(void **state)
{
	struct fx *x = *state;
	struct blob at = load("time.attest"), sig = load("time.sig");
	struct tpmv_quote q = { at.p, at.n, sig.p, sig.n, x->pcrs.p, x->pcrs.n };
	char why[256] = "";
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_NOT_QUOTE);
	free(at.p);
	free(sig.p);
}

static void test_quote_bad_signature(void **state)
{
	struct fx *x = *state;
	char why[256] = "";
	uint8_t *sig = malloc(x->sig.n), *at = malloc(x->attest.n);
	/* the signature's last byte */
	memcpy(sig, x->sig.p, x->sig.n);
	sig[x->sig.n - 1] ^= 0x01;
	struct tpmv_quote q = quote_of(x);
	q.sig = sig;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_BAD_SIGNATURE);
	/* the quoted digest (the attest's last byte) */
	memcpy(at, x->attest.p, x->attest.n);
	at[x->attest.n - 1] ^= 0x01;
	q = quote_of(x);
	q.attest = at;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_BAD_SIGNATURE);
	/* another key: the EK cannot have signed it */
	q = quote_of(x);
	assert_int_equal(tpmv_quote_verify(x->ek, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_BAD_SIGNATURE);
	free(sig);
	free(at);
}

static void test_quote_malformed(void **state)
{
	struct fx *x = *state;
	char why[256];
	struct tpmv_quote q;
	/* every truncation of the attest and of the signature */
	for (size_t n = 0; n < x->attest.n; n++) {
		uint8_t *c = malloc(n ? n : 1);
		memcpy(c, x->attest.p, n);
		q = quote_of(x);
		q.attest = c;
		q.attest_len = n;
		assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_MALFORMED);
		free(c);
	}
	for (size_t n = 0; n < x->sig.n; n++) {
		uint8_t *c = malloc(n ? n : 1);
		memcpy(c, x->sig.p, n);
		q = quote_of(x);
		q.sig = c;
		q.sig_len = n;
		assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_MALFORMED);
		free(c);
	}
	/* a byte after each, and oversize parts */
	uint8_t *big = calloc(1, TPMV_MAX_STRUCT + 1);
	memcpy(big, x->attest.p, x->attest.n);
	q = quote_of(x);
	q.attest = big;
	q.attest_len = x->attest.n + 1;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_MALFORMED);
	q.attest_len = TPMV_MAX_STRUCT + 1;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_MALFORMED);
	memcpy(big, x->sig.p, x->sig.n);
	q = quote_of(x);
	q.sig = big;
	q.sig_len = x->sig.n + 1;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_MALFORMED);
	q = quote_of(x);
	q.pcrs = big;
	q.pcrs_len = TPMV_MAX_STRUCT;
	assert_int_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_MALFORMED);
	free(big);
	/* every single-byte flip of the attest: refused, whatever the reason */
	uint8_t *c = malloc(x->attest.n);
	for (size_t i = 0; i < x->attest.n; i++) {
		memcpy(c, x->attest.p, x->attest.n);
		c[i] ^= 0xff;
		q = quote_of(x);
		q.attest = c;
		assert_int_not_equal(tpmv_quote_verify(x->ak, &q, x->nonce.p, x->nonce.n, NULL, why, sizeof(why)), TPMV_OK);
	}
	free(c);
}

/* ---- the figure ---- */

static double rate(const struct tpmv_key *ak, const struct tpmv_quote *q, const struct blob *nonce, long *count)
{
	struct timespec t0, t1;
	char why[256];
	long n = 0;
	double s = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 50; i++, n++)
			assert_int_equal(tpmv_quote_verify(ak, q, nonce->p, nonce->n, NULL, why, sizeof(why)), TPMV_OK);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	} while (s < 1.0);
	*count = n;
	return s;
}

static void test_quote_rate(void **state)
{
	struct fx *x = *state;
	struct tpmv_quote q = quote_of(x);
	long n = 0;
	double s = rate(x->ak, &q, &x->nonce, &n);
	print_message("# quote verifications (RSA-2048 AK, 9 PCRs): %ld in %.2f s = %.0f/s on one core\n", n, s, n / s);
	assert_true(n > 0);

	struct blob pub = load("ak_ecc.pub"), at = load("quote_ecc.attest"), sig = load("quote_ecc.sig");
	struct tpmv_key *ak = NULL;
	char why[256];
	assert_int_equal(tpmv_key_parse(pub.p, pub.n, &ak, why, sizeof(why)), TPMV_OK);
	struct tpmv_quote qe = { at.p, at.n, sig.p, sig.n, x->pcrs.p, x->pcrs.n };
	s = rate(ak, &qe, &x->nonce, &n);
	print_message("# quote verifications (ECC P-256 AK, 9 PCRs): %ld in %.2f s = %.0f/s on one core\n", n, s, n / s);
	assert_true(n > 0);
	tpmv_key_free(ak);
	free(pub.p);
	free(at.p);
	free(sig.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ak_name_and_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ak_attributes_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ek_cert_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ek_cert_unknown_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ek_cert_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ek_cert_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_make_credential, setup, teardown),
		cmocka_unit_test(test_activation_check),
		cmocka_unit_test_setup_teardown(test_quote_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_ecc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_wrong_nonce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_replay, setup, teardown),
		cmocka_unit_test(test_nonce_registry),
		cmocka_unit_test_setup_teardown(test_quote_pcr_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_selection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_quote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_bad_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_rate, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
