/* A board's TPM 2.0 evidence, checked by the controller (tpm_verify.h).
 * TPM structures are parsed by tpm2-tss (Tss2_MU_*), keys, certificates
 * and the credential's cryptography are OpenSSL's. */
#include "controller/skyrootd/tpm_verify.h"

#include "common/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <tss2/tss2_mu.h>

struct tpmv_key {
	TPMT_PUBLIC pub;
	EVP_PKEY *pkey;
	uint8_t name[TPMV_NAME_MAX];
	size_t name_len;
};

struct tpmv_cas {
	X509_STORE *store;
};

struct nonce_slot {
	uint8_t nonce[TPMV_NONCE_LEN];
	int64_t expires_ms;            /* 0: free */
	bool used;
};

struct tpmv_nonces {
	struct nonce_slot *slot;
	size_t cap;
	int64_t ttl_ms;
};

static const char *const result_text[] = {
	[TPMV_OK] = "ok",
	[TPMV_MALFORMED] = "malformed TPM structure",
	[TPMV_BAD_KEY] = "key type or scheme not accepted",
	[TPMV_AK_ATTRIBUTES] = "AK is not a restricted signing key of the TPM",
	[TPMV_EK_UNKNOWN_CA] = "EK certificate from an unknown CA",
	[TPMV_EK_MISMATCH] = "EK public key is not the certificate's",
	[TPMV_BAD_SIGNATURE] = "quote signature does not verify with the AK",
	[TPMV_NOT_QUOTE] = "not a TPM-generated quote",
	[TPMV_WRONG_NONCE] = "wrong nonce",
	[TPMV_REPLAY] = "replayed quote (nonce already used)",
	[TPMV_PCR_SELECTION] = "quote does not cover SHA-256 PCRs 0-7 and 11",
	[TPMV_PCR_MISMATCH] = "PCR values do not match the quoted digest",
	[TPMV_NOT_BOUND] = "AK not bound to the EK (activation secret mismatch)",
	[TPMV_INTERNAL] = "internal error",
};

const char *tpmv_strerror(enum tpmv_result r)
{
	if ((unsigned)r >= sizeof(result_text) / sizeof(result_text[0]) || !result_text[r])
		return "unknown";
	return result_text[r];
}

static enum tpmv_result fail(enum tpmv_result r, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum tpmv_result fail(enum tpmv_result r, char *why, size_t whylen, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		int n = snprintf(why, whylen, "%s: ", tpmv_strerror(r));
		if (n >= 0 && (size_t)n < whylen)
			vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* ---- keys ---- */

static EVP_PKEY *rsa_pkey(const TPMS_RSA_PARMS *parms, const TPM2B_PUBLIC_KEY_RSA *n)
{
	EVP_PKEY *pkey = NULL;
	uint32_t exp = parms->exponent ? parms->exponent : 65537;
	BIGNUM *bn_n = BN_bin2bn(n->buffer, n->size, NULL);
	BIGNUM *bn_e = BN_new();
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!bn_n || !bn_e || !bld || !ctx || !BN_set_word(bn_e, exp) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(bn_n);
	BN_free(bn_e);
	return pkey;
}

static EVP_PKEY *ecc_pkey(const TPMS_ECC_POINT *pt)
{
	uint8_t point[1 + 2 * 32];
	EVP_PKEY *pkey = NULL;
	if (pt->x.size == 0 || pt->x.size > 32 || pt->y.size == 0 || pt->y.size > 32)
		return NULL;
	memset(point, 0, sizeof(point));
	point[0] = POINT_CONVERSION_UNCOMPRESSED;
	memcpy(point + 1 + 32 - pt->x.size, pt->x.buffer, pt->x.size);
	memcpy(point + 1 + 64 - pt->y.size, pt->y.buffer, pt->y.size);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	/* fromdata does not check the point: a point off the curve is refused here */
	if (pkey) {
		EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (!chk || EVP_PKEY_public_check(chk) != 1) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
		EVP_PKEY_CTX_free(chk);
	}
	return pkey;
}

enum tpmv_result tpmv_key_parse(const uint8_t *buf, size_t len, struct tpmv_key **out,
	char *why, size_t whylen)
{
	TPM2B_PUBLIC p2b;
	size_t off = 0;
	*out = NULL;
	if (!buf || len == 0 || len > TPMV_MAX_STRUCT)
		return fail(TPMV_MALFORMED, why, whylen, "public key of %zu bytes", len);
	memset(&p2b, 0, sizeof(p2b));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &p2b) != TSS2_RC_SUCCESS)
		return fail(TPMV_MALFORMED, why, whylen, "TPM2B_PUBLIC does not parse");
	if (off != len)
		return fail(TPMV_MALFORMED, why, whylen, "%zu bytes after TPM2B_PUBLIC", len - off);
	const TPMT_PUBLIC *pub = &p2b.publicArea;
	if (pub->nameAlg != TPM2_ALG_SHA256)
		return fail(TPMV_BAD_KEY, why, whylen, "name algorithm 0x%04x, not SHA-256", pub->nameAlg);

	struct tpmv_key *k = calloc(1, sizeof(*k));
	if (!k)
		return fail(TPMV_INTERNAL, why, whylen, "out of memory");
	k->pub = *pub;
	if (pub->type == TPM2_ALG_RSA) {
		uint16_t bits = pub->parameters.rsaDetail.keyBits;
		if ((bits != 2048 && bits != 3072 && bits != 4096) || pub->unique.rsa.size != bits / 8) {
			tpmv_key_free(k);
			return fail(TPMV_BAD_KEY, why, whylen, "RSA key of %u bits with a %u-byte modulus",
				bits, pub->unique.rsa.size);
		}
		uint32_t e = pub->parameters.rsaDetail.exponent;
		if (e != 0 && e != 65537) {
			tpmv_key_free(k);
			return fail(TPMV_BAD_KEY, why, whylen, "RSA exponent %u", e);
		}
		k->pkey = rsa_pkey(&pub->parameters.rsaDetail, &pub->unique.rsa);
	} else if (pub->type == TPM2_ALG_ECC) {
		if (pub->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256) {
			tpmv_key_free(k);
			return fail(TPMV_BAD_KEY, why, whylen, "ECC curve 0x%04x, not P-256",
				pub->parameters.eccDetail.curveID);
		}
		k->pkey = ecc_pkey(&pub->unique.ecc);
	} else {
		tpmv_key_free(k);
		return fail(TPMV_BAD_KEY, why, whylen, "key type 0x%04x", pub->type);
	}
	if (!k->pkey) {
		tpmv_key_free(k);
		return fail(TPMV_BAD_KEY, why, whylen, "the public key is not a valid key");
	}
	/* The name: nameAlg || H(TPMT_PUBLIC as marshalled). */
	uint8_t m[sizeof(TPMT_PUBLIC)];
	size_t mlen = 0;
	if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, m, sizeof(m), &mlen) != TSS2_RC_SUCCESS) {
		tpmv_key_free(k);
		return fail(TPMV_INTERNAL, why, whylen, "TPMT_PUBLIC does not marshal");
	}
	k->name[0] = TPM2_ALG_SHA256 >> 8;
	k->name[1] = TPM2_ALG_SHA256 & 0xff;
	sky_sha256(m, mlen, k->name + 2);
	k->name_len = 2 + TPMV_DIGEST_LEN;
	*out = k;
	return TPMV_OK;
}

void tpmv_key_free(struct tpmv_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

size_t tpmv_key_name(const struct tpmv_key *k, uint8_t *out, size_t outlen)
{
	if (outlen < k->name_len)
		return 0;
	memcpy(out, k->name, k->name_len);
	return k->name_len;
}

enum tpmv_result tpmv_ak_check(const struct tpmv_key *ak, char *why, size_t whylen)
{
	const TPMT_PUBLIC *p = &ak->pub;
	const TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
		TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
	if ((p->objectAttributes & need) != need)
		return fail(TPMV_AK_ATTRIBUTES, why, whylen, "attributes 0x%08x lack 0x%08x",
			p->objectAttributes, need & ~p->objectAttributes);
	if (p->objectAttributes & TPMA_OBJECT_DECRYPT)
		return fail(TPMV_AK_ATTRIBUTES, why, whylen, "the AK can decrypt");
	const TPMT_ASYM_SCHEME *s;
	if (p->type == TPM2_ALG_RSA) {
		s = (const TPMT_ASYM_SCHEME *)&p->parameters.rsaDetail.scheme;
		if (s->scheme != TPM2_ALG_RSASSA && s->scheme != TPM2_ALG_RSAPSS)
			return fail(TPMV_BAD_KEY, why, whylen, "RSA AK scheme 0x%04x", s->scheme);
		if (p->parameters.rsaDetail.symmetric.algorithm != TPM2_ALG_NULL)
			return fail(TPMV_BAD_KEY, why, whylen, "a signing AK with a symmetric algorithm");
	} else {
		s = (const TPMT_ASYM_SCHEME *)&p->parameters.eccDetail.scheme;
		if (s->scheme != TPM2_ALG_ECDSA)
			return fail(TPMV_BAD_KEY, why, whylen, "ECC AK scheme 0x%04x", s->scheme);
		if (p->parameters.eccDetail.symmetric.algorithm != TPM2_ALG_NULL)
			return fail(TPMV_BAD_KEY, why, whylen, "a signing AK with a symmetric algorithm");
	}
	/* every signing scheme's details start with hashAlg */
	if (s->details.rsassa.hashAlg != TPM2_ALG_SHA256)
		return fail(TPMV_BAD_KEY, why, whylen, "AK hash 0x%04x, not SHA-256", s->details.rsassa.hashAlg);
	return TPMV_OK;
}

enum tpmv_result tpmv_ek_check(const struct tpmv_key *ek, char *why, size_t whylen)
{
	const TPMT_PUBLIC *p = &ek->pub;
	const TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
		TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
	if (p->type != TPM2_ALG_RSA)
		return fail(TPMV_BAD_KEY, why, whylen, "only RSA EKs are taken (type 0x%04x)", p->type);
	if ((p->objectAttributes & need) != need || (p->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT))
		return fail(TPMV_BAD_KEY, why, whylen, "EK attributes 0x%08x: not a restricted decryption key",
			p->objectAttributes);
	const TPMT_SYM_DEF_OBJECT *sym = &p->parameters.rsaDetail.symmetric;
	if (sym->algorithm != TPM2_ALG_AES || sym->keyBits.aes != 128 || sym->mode.aes != TPM2_ALG_CFB)
		return fail(TPMV_BAD_KEY, why, whylen, "EK symmetric algorithm is not AES-128-CFB");
	return TPMV_OK;
}

/* ---- EK certificates ---- */

struct tpmv_cas *tpmv_cas_load(const char *const *files, size_t n, char *why, size_t whylen)
{
	struct tpmv_cas *cas = calloc(1, sizeof(*cas));
	if (!cas || !(cas->store = X509_STORE_new())) {
		free(cas);
		fail(TPMV_INTERNAL, why, whylen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		FILE *f = fopen(files[i], "r");
		if (!f) {
			fail(TPMV_INTERNAL, why, whylen, "cannot open CA file %s", files[i]);
			tpmv_cas_free(cas);
			return NULL;
		}
		int count = 0;
		X509 *x;
		while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
			int ok = X509_STORE_add_cert(cas->store, x);
			X509_free(x);
			if (!ok)
				break;
			count++;
		}
		ERR_clear_error();
		fclose(f);
		if (count == 0) {
			fail(TPMV_INTERNAL, why, whylen, "no certificate in CA file %s", files[i]);
			tpmv_cas_free(cas);
			return NULL;
		}
	}
	return cas;
}

void tpmv_cas_free(struct tpmv_cas *cas)
{
	if (!cas)
		return;
	X509_STORE_free(cas->store);
	free(cas);
}

enum tpmv_result tpmv_ek_cert_check(const struct tpmv_cas *cas, const uint8_t *der, size_t len,
	const struct tpmv_key *ek, uint8_t sha256_out[32], char *why, size_t whylen)
{
	if (!der || len == 0 || len > TPMV_MAX_CERT)
		return fail(TPMV_MALFORMED, why, whylen, "EK certificate of %zu bytes", len);
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	if (!cert || p != der + len) {
		X509_free(cert);
		ERR_clear_error();
		return fail(TPMV_MALFORMED, why, whylen, "EK certificate is not one DER certificate");
	}
	enum tpmv_result r = TPMV_OK;
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	if (!ctx || !X509_STORE_CTX_init(ctx, cas->store, cert, NULL)) {
		r = fail(TPMV_INTERNAL, why, whylen, "X509_STORE_CTX");
		goto out;
	}
	/* EK certificates name the TPM in a critical subjectAltName of
	 * directoryName form that OpenSSL knows; their EKU (2.23.133.8.1) is the
	 * TCG's, so no purpose is asked. */
	if (X509_verify_cert(ctx) != 1) {
		r = fail(TPMV_EK_UNKNOWN_CA, why, whylen, "%s",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (ek) {
		EVP_PKEY *cert_key = X509_get0_pubkey(cert);
		if (!cert_key || EVP_PKEY_eq(cert_key, ek->pkey) != 1) {
			r = fail(TPMV_EK_MISMATCH, why, whylen, "the EK given is not the certificate's key");
			goto out;
		}
	}
	if (sha256_out) {
		unsigned dl = 0;
		if (!X509_digest(cert, EVP_sha256(), sha256_out, &dl))
			r = fail(TPMV_INTERNAL, why, whylen, "certificate digest");
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_free(cert);
	return r;
}

/* ---- MakeCredential ---- */

/* KDFa (TPM 2.0 part 1, 11.4.10.2) with HMAC-SHA-256 in counter mode:
 * K(i) = HMAC(key, i || label || 0 || contextU || contextV || bits). */
static int kdfa_sha256(const uint8_t *key, size_t keylen, const char *label,
	const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen, uint8_t *out, size_t outlen)
{
	uint8_t msg[4 + 16 + 2 * TPMV_NAME_MAX + 4];
	size_t llen = strlen(label) + 1;
	uint32_t bits = (uint32_t)outlen * 8;
	if (4 + llen + ulen + vlen + 4 > sizeof(msg))
		return -1;
	for (uint32_t i = 1, done = 0; done < outlen; i++) {
		size_t m = 0;
		msg[m++] = (uint8_t)(i >> 24);
		msg[m++] = (uint8_t)(i >> 16);
		msg[m++] = (uint8_t)(i >> 8);
		msg[m++] = (uint8_t)i;
		memcpy(msg + m, label, llen);
		m += llen;
		if (ulen)
			memcpy(msg + m, u, ulen);
		m += ulen;
		if (vlen)
			memcpy(msg + m, v, vlen);
		m += vlen;
		msg[m++] = (uint8_t)(bits >> 24);
		msg[m++] = (uint8_t)(bits >> 16);
		msg[m++] = (uint8_t)(bits >> 8);
		msg[m++] = (uint8_t)bits;
		uint8_t block[32];
		unsigned bl = 0;
		if (!HMAC(EVP_sha256(), key, (int)keylen, msg, m, block, &bl) || bl != 32)
			return -1;
		size_t take = outlen - done < 32 ? outlen - done : 32;
		memcpy(out + done, block, take);
		done += (uint32_t)take;
		OPENSSL_cleanse(block, sizeof(block));
	}
	OPENSSL_cleanse(msg, sizeof(msg));
	return 0;
}

static int rsa_oaep_identity(EVP_PKEY *pkey, const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
	static const char label[] = "IDENTITY";  /* with its NUL: 9 bytes */
	int ok = 0;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	void *l = OPENSSL_memdup(label, sizeof(label));
	if (!ctx || !l || EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0)
		goto out;
	if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, sizeof(label)) <= 0)
		goto out;
	l = NULL;  /* the context owns it now */
	ok = EVP_PKEY_encrypt(ctx, out, outlen, in, inlen) > 0;
out:
	OPENSSL_free(l);
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

enum tpmv_result tpmv_make_credential(const struct tpmv_key *ek, const uint8_t *name, size_t namelen,
	const uint8_t *secret, size_t secretlen,
	uint8_t *id_object, size_t *id_object_len, uint8_t *enc_secret, size_t *enc_secret_len,
	char *why, size_t whylen)
{
	enum tpmv_result r = tpmv_ek_check(ek, why, whylen);
	if (r != TPMV_OK)
		return r;
	if (namelen < 2 || namelen > TPMV_NAME_MAX || secretlen == 0 || secretlen > TPMV_SECRET_MAX)
		return fail(TPMV_MALFORMED, why, whylen, "name of %zu or secret of %zu bytes", namelen, secretlen);
	if (*id_object_len < TPMV_ID_OBJECT_MAX || *enc_secret_len < TPMV_ENC_SECRET_MAX)
		return fail(TPMV_INTERNAL, why, whylen, "output buffers too small");

	uint8_t seed[32], sym[16], hkey[32], ident[2 + TPMV_SECRET_MAX], hmac[32];
	uint8_t ct[512];
	size_t ctlen = sizeof(ct);
	unsigned hl = 0;
	int outl = 0;
	TPM2B_ID_OBJECT idobj;
	TPM2B_ENCRYPTED_SECRET es;
	EVP_CIPHER_CTX *cctx = NULL;
	r = TPMV_INTERNAL;

	/* The seed, encrypted to the EK: RSA-OAEP-SHA-256, label "IDENTITY\0". */
	if (sky_random(seed, sizeof(seed)) < 0 ||
	    rsa_oaep_identity(ek->pkey, seed, sizeof(seed), ct, &ctlen) != 0) {
		fail(r, why, whylen, "encrypting the seed to the EK");
		goto out;
	}
	/* The symmetric key (the EK's AES-128) and the HMAC key, from the seed. */
	if (kdfa_sha256(seed, sizeof(seed), "STORAGE", name, namelen, NULL, 0, sym, sizeof(sym)) != 0 ||
	    kdfa_sha256(seed, sizeof(seed), "INTEGRITY", NULL, 0, NULL, 0, hkey, sizeof(hkey)) != 0) {
		fail(r, why, whylen, "KDFa");
		goto out;
	}
	/* encIdentity: the secret as a TPM2B_DIGEST, AES-128-CFB with a zero IV. */
	ident[0] = (uint8_t)(secretlen >> 8);
	ident[1] = (uint8_t)secretlen;
	memcpy(ident + 2, secret, secretlen);
	memset(&idobj, 0, sizeof(idobj));
	uint8_t *enc_ident = idobj.credential + 2 + sizeof(hmac);
	static const uint8_t zero_iv[16];
	cctx = EVP_CIPHER_CTX_new();
	if (!cctx || EVP_EncryptInit_ex(cctx, EVP_aes_128_cfb128(), NULL, sym, zero_iv) != 1 ||
	    EVP_EncryptUpdate(cctx, enc_ident, &outl, ident, (int)(2 + secretlen)) != 1 ||
	    outl != (int)(2 + secretlen)) {
		fail(r, why, whylen, "AES-128-CFB");
		goto out;
	}
	/* The outer HMAC over encIdentity || name. */
	uint8_t hmsg[2 + TPMV_SECRET_MAX + TPMV_NAME_MAX];
	memcpy(hmsg, enc_ident, 2 + secretlen);
	memcpy(hmsg + 2 + secretlen, name, namelen);
	if (!HMAC(EVP_sha256(), hkey, sizeof(hkey), hmsg, 2 + secretlen + namelen, hmac, &hl) || hl != 32) {
		fail(r, why, whylen, "HMAC");
		goto out;
	}
	idobj.credential[0] = 0;
	idobj.credential[1] = sizeof(hmac);
	memcpy(idobj.credential + 2, hmac, sizeof(hmac));
	idobj.size = (UINT16)(2 + sizeof(hmac) + 2 + secretlen);
	memset(&es, 0, sizeof(es));
	if (ctlen > sizeof(es.secret)) {
		fail(r, why, whylen, "encrypted seed of %zu bytes", ctlen);
		goto out;
	}
	memcpy(es.secret, ct, ctlen);
	es.size = (UINT16)ctlen;
	size_t o1 = 0, o2 = 0;
	if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(&idobj, id_object, *id_object_len, &o1) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&es, enc_secret, *enc_secret_len, &o2) != TSS2_RC_SUCCESS) {
		fail(r, why, whylen, "marshalling the credential");
		goto out;
	}
	*id_object_len = o1;
	*enc_secret_len = o2;
	r = TPMV_OK;
out:
	EVP_CIPHER_CTX_free(cctx);
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(sym, sizeof(sym));
	OPENSSL_cleanse(hkey, sizeof(hkey));
	OPENSSL_cleanse(ident, sizeof(ident));
	return r;
}

enum tpmv_result tpmv_activation_check(const uint8_t *expected, size_t expected_len,
	const uint8_t *got, size_t got_len)
{
	if (!expected || !got || expected_len == 0 || expected_len != got_len ||
	    !sky_memeq_ct(expected, got, expected_len))
		return TPMV_NOT_BOUND;
	return TPMV_OK;
}

/* ---- nonces ---- */

struct tpmv_nonces *tpmv_nonces_new(size_t capacity, int64_t ttl_ms)
{
	if (capacity == 0 || ttl_ms <= 0)
		return NULL;
	struct tpmv_nonces *n = calloc(1, sizeof(*n));
	if (!n || !(n->slot = calloc(capacity, sizeof(*n->slot)))) {
		free(n);
		return NULL;
	}
	n->cap = capacity;
	n->ttl_ms = ttl_ms;
	return n;
}

void tpmv_nonces_free(struct tpmv_nonces *n)
{
	if (!n)
		return;
	free(n->slot);
	free(n);
}

static struct nonce_slot *nonce_free_slot(struct tpmv_nonces *n, int64_t now_ms)
{
	for (size_t i = 0; i < n->cap; i++)
		if (n->slot[i].expires_ms == 0 || n->slot[i].expires_ms <= now_ms)
			return &n->slot[i];
	return NULL;
}

int tpmv_nonce_issue(struct tpmv_nonces *n, int64_t now_ms, uint8_t out[TPMV_NONCE_LEN])
{
	uint8_t fresh[TPMV_NONCE_LEN];
	if (sky_random(fresh, sizeof(fresh)) < 0 || tpmv_nonce_register(n, now_ms, fresh, sizeof(fresh)) != 0)
		return -1;
	memcpy(out, fresh, sizeof(fresh));
	return 0;
}

int tpmv_nonce_register(struct tpmv_nonces *n, int64_t now_ms, const uint8_t *nonce, size_t len)
{
	if (!nonce || len != TPMV_NONCE_LEN)
		return -1;
	struct nonce_slot *s = nonce_free_slot(n, now_ms);
	if (!s)
		return -1;
	memcpy(s->nonce, nonce, TPMV_NONCE_LEN);
	s->expires_ms = now_ms + n->ttl_ms;
	s->used = false;
	return 0;
}

enum tpmv_result tpmv_nonce_use(struct tpmv_nonces *n, int64_t now_ms, const uint8_t *nonce, size_t len)
{
	if (!nonce || len != TPMV_NONCE_LEN)
		return TPMV_WRONG_NONCE;
	for (size_t i = 0; i < n->cap; i++) {
		struct nonce_slot *s = &n->slot[i];
		if (s->expires_ms == 0 || s->expires_ms <= now_ms || !sky_memeq_ct(s->nonce, nonce, TPMV_NONCE_LEN))
			continue;
		if (s->used)
			return TPMV_REPLAY;
		s->used = true;  /* kept until it expires, so a replay is told apart */
		return TPMV_OK;
	}
	return TPMV_WRONG_NONCE;
}

/* ---- quotes ---- */

static enum tpmv_result check_signature(const struct tpmv_key *ak, const uint8_t *msg, size_t msglen,
	const TPMT_SIGNATURE *sig, char *why, size_t whylen)
{
	const TPMT_PUBLIC *p = &ak->pub;
	uint16_t want = p->type == TPM2_ALG_RSA ? p->parameters.rsaDetail.scheme.scheme
		: p->parameters.eccDetail.scheme.scheme;
	if (sig->sigAlg != want)
		return fail(TPMV_BAD_SIGNATURE, why, whylen, "signature scheme 0x%04x, the AK's is 0x%04x",
			sig->sigAlg, want);
	const uint8_t *s = NULL;
	size_t slen = 0;
	uint8_t der[80];
	uint16_t hash;
	if (sig->sigAlg == TPM2_ALG_RSASSA || sig->sigAlg == TPM2_ALG_RSAPSS) {
		hash = sig->signature.rsassa.hash;
		s = sig->signature.rsassa.sig.buffer;
		slen = sig->signature.rsassa.sig.size;
	} else {
		hash = sig->signature.ecdsa.hash;
		const TPM2B_ECC_PARAMETER *r = &sig->signature.ecdsa.signatureR, *ss = &sig->signature.ecdsa.signatureS;
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *br = BN_bin2bn(r->buffer, r->size, NULL), *bs = BN_bin2bn(ss->buffer, ss->size, NULL);
		if (!es || !br || !bs || !ECDSA_SIG_set0(es, br, bs)) {
			BN_free(br);
			BN_free(bs);
			ECDSA_SIG_free(es);
			return fail(TPMV_INTERNAL, why, whylen, "ECDSA_SIG");
		}
		int n = i2d_ECDSA_SIG(es, NULL);
		unsigned char *d = der;
		if (n <= 0 || (size_t)n > sizeof(der) || i2d_ECDSA_SIG(es, &d) != n) {
			ECDSA_SIG_free(es);
			return fail(TPMV_BAD_SIGNATURE, why, whylen, "ECDSA signature too large");
		}
		ECDSA_SIG_free(es);
		s = der;
		slen = (size_t)n;
	}
	if (hash != TPM2_ALG_SHA256)
		return fail(TPMV_BAD_SIGNATURE, why, whylen, "signature hash 0x%04x, not SHA-256", hash);

	enum tpmv_result res = TPMV_OK;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	if (!md || EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, ak->pkey) != 1) {
		res = fail(TPMV_INTERNAL, why, whylen, "EVP_DigestVerifyInit");
		goto out;
	}
	if (sig->sigAlg == TPM2_ALG_RSAPSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) <= 0)) {
		res = fail(TPMV_INTERNAL, why, whylen, "RSA-PSS");
		goto out;
	}
	if (EVP_DigestVerify(md, s, slen, msg, msglen) != 1)
		res = fail(TPMV_BAD_SIGNATURE, why, whylen, "the signature does not verify");
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	return res;
}

/* The quote as parsed and signature-checked, before its nonce is looked at. */
static enum tpmv_result quote_parse(const struct tpmv_key *ak, const struct tpmv_quote *q,
	TPMS_ATTEST *at, char *why, size_t whylen)
{
	TPMT_SIGNATURE sig;
	size_t off = 0;
	if (!q->attest || q->attest_len == 0 || q->attest_len > TPMV_MAX_STRUCT ||
	    !q->sig || q->sig_len == 0 || q->sig_len > TPMV_MAX_STRUCT || q->pcrs_len > TPMV_PCR_COUNT * TPMV_DIGEST_LEN)
		return fail(TPMV_MALFORMED, why, whylen, "quote parts of %zu, %zu and %zu bytes",
			q->attest_len, q->sig_len, q->pcrs_len);
	memset(at, 0, sizeof(*at));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(q->attest, q->attest_len, &off, at) != TSS2_RC_SUCCESS)
		return fail(TPMV_MALFORMED, why, whylen, "TPMS_ATTEST does not parse");
	if (off != q->attest_len)
		return fail(TPMV_MALFORMED, why, whylen, "%zu bytes after TPMS_ATTEST", q->attest_len - off);
	off = 0;
	memset(&sig, 0, sizeof(sig));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(q->sig, q->sig_len, &off, &sig) != TSS2_RC_SUCCESS)
		return fail(TPMV_MALFORMED, why, whylen, "TPMT_SIGNATURE does not parse");
	if (off != q->sig_len)
		return fail(TPMV_MALFORMED, why, whylen, "%zu bytes after TPMT_SIGNATURE", q->sig_len - off);
	enum tpmv_result r = check_signature(ak, q->attest, q->attest_len, &sig, why, whylen);
	if (r != TPMV_OK)
		return r;
	if (at->magic != TPM2_GENERATED_VALUE || at->type != TPM2_ST_ATTEST_QUOTE)
		return fail(TPMV_NOT_QUOTE, why, whylen, "magic 0x%08x, type 0x%04x", at->magic, at->type);
	return TPMV_OK;
}

static enum tpmv_result quote_pcrs(const TPMS_ATTEST *at, const struct tpmv_quote *q,
	struct tpmv_pcrs *out, char *why, size_t whylen)
{
	const TPML_PCR_SELECTION *sel = &at->attested.quote.pcrSelect;
	if (sel->count != 1 || sel->pcrSelections[0].hash != TPM2_ALG_SHA256)
		return fail(TPMV_PCR_SELECTION, why, whylen, "%u banks, the first 0x%04x: want SHA-256 alone",
			sel->count, sel->count ? sel->pcrSelections[0].hash : 0);
	const TPMS_PCR_SELECTION *s = &sel->pcrSelections[0];
	if (s->sizeofSelect > sizeof(s->pcrSelect))
		return fail(TPMV_MALFORMED, why, whylen, "a PCR selection of %u bytes", s->sizeofSelect);
	uint32_t mask = 0;
	for (unsigned i = 0; i < s->sizeofSelect && i < 3; i++)
		mask |= (uint32_t)s->pcrSelect[i] << (8 * i);
	for (unsigned i = 3; i < s->sizeofSelect; i++)
		if (s->pcrSelect[i])
			return fail(TPMV_PCR_SELECTION, why, whylen, "PCRs past 23 selected");
	if ((mask & TPMV_PCR_REQUIRED) != TPMV_PCR_REQUIRED)
		return fail(TPMV_PCR_SELECTION, why, whylen, "selection 0x%06x lacks 0x%06x", mask,
			TPMV_PCR_REQUIRED & ~mask);
	size_t n = (size_t)__builtin_popcount(mask);
	if (q->pcrs_len != n * TPMV_DIGEST_LEN)
		return fail(TPMV_PCR_SELECTION, why, whylen, "%zu bytes of PCR values for %zu PCRs", q->pcrs_len, n);
	uint8_t d[TPMV_DIGEST_LEN];
	sky_sha256(q->pcrs, q->pcrs_len, d);
	const TPM2B_DIGEST *qd = &at->attested.quote.pcrDigest;
	if (qd->size != sizeof(d) || !sky_memeq_ct(qd->buffer, d, sizeof(d)))
		return fail(TPMV_PCR_MISMATCH, why, whylen, "the %zu values given hash to another digest", n);
	if (out) {
		memset(out, 0, sizeof(*out));
		out->mask = mask;
		size_t k = 0;
		for (unsigned i = 0; i < TPMV_PCR_COUNT; i++)
			if (mask & (1u << i))
				memcpy(out->value[i], q->pcrs + TPMV_DIGEST_LEN * k++, TPMV_DIGEST_LEN);
		out->clock = at->clockInfo.clock;
		out->reset_count = at->clockInfo.resetCount;
		out->restart_count = at->clockInfo.restartCount;
	}
	return TPMV_OK;
}

enum tpmv_result tpmv_quote_verify(const struct tpmv_key *ak, const struct tpmv_quote *q,
	const uint8_t *nonce, size_t nonce_len, struct tpmv_pcrs *out, char *why, size_t whylen)
{
	TPMS_ATTEST at;
	enum tpmv_result r = quote_parse(ak, q, &at, why, whylen);
	if (r != TPMV_OK)
		return r;
	if (!nonce || nonce_len == 0 || at.extraData.size != nonce_len ||
	    !sky_memeq_ct(at.extraData.buffer, nonce, nonce_len))
		return fail(TPMV_WRONG_NONCE, why, whylen, "the quote's %u-byte nonce is not the one given",
			at.extraData.size);
	return quote_pcrs(&at, q, out, why, whylen);
}

enum tpmv_result tpmv_quote_verify_fresh(const struct tpmv_key *ak, const struct tpmv_quote *q,
	struct tpmv_nonces *nonces, int64_t now_ms, struct tpmv_pcrs *out, char *why, size_t whylen)
{
	TPMS_ATTEST at;
	enum tpmv_result r = quote_parse(ak, q, &at, why, whylen);
	if (r != TPMV_OK)
		return r;
	/* only a quote signed by the AK spends a nonce */
	r = tpmv_nonce_use(nonces, now_ms, at.extraData.buffer, at.extraData.size);
	if (r == TPMV_REPLAY)
		return fail(r, why, whylen, "this nonce was answered before");
	if (r != TPMV_OK)
		return fail(r, why, whylen, "the quote's nonce was never given or has expired");
	return quote_pcrs(&at, q, out, why, whylen);
}
