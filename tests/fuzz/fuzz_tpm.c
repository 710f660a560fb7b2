/* libFuzzer target: what a board's TPM evidence can be on the wire, as the
 * controller parses and checks it (controller/skyrootd/tpm_verify.c).
 *
 * First byte: 0 - the rest is a public key (TPM2B_PUBLIC): parsed, its
 *   name taken, checked as an AK and as an EK, and when it passes as an EK
 *   a credential is made for it;
 * 1 - a quote: u16 length + AK public key, 32-byte nonce, u16 length +
 *   TPMS_ATTEST, u16 length + TPMT_SIGNATURE, the rest the PCR values;
 *   verified with that nonce, and through a nonce registry that gave it;
 * 2 - an EK certificate (DER), checked against an empty CA store.
 * Nothing may be accepted that breaks the promises of tpm_verify.h (a good
 * quote covers PCRs 0-7 and 11), nothing read past the input (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyrootd/tpm_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int take(const uint8_t **d, size_t *n, size_t want, const uint8_t **out)
{
	if (*n < want)
		return -1;
	*out = *d;
	*d += want;
	*n -= want;
	return 0;
}

static int take16(const uint8_t **d, size_t *n, const uint8_t **out, size_t *len)
{
	const uint8_t *l;
	if (take(d, n, 2, &l) != 0)
		return -1;
	*len = (size_t)l[0] << 8 | l[1];
	return take(d, n, *len, out);
}

static void key_case(const uint8_t *d, size_t n)
{
	struct tpmv_key *k = NULL;
	char why[256];
	if (tpmv_key_parse(d, n, &k, why, sizeof(why)) != TPMV_OK) {
		if (k)
			abort();
		return;
	}
	uint8_t name[TPMV_NAME_MAX];
	if (tpmv_key_name(k, name, sizeof(name)) != 34)
		abort();
	tpmv_ak_check(k, why, sizeof(why));
	if (tpmv_ek_check(k, why, sizeof(why)) == TPMV_OK) {
		uint8_t id[TPMV_ID_OBJECT_MAX], es[TPMV_ENC_SECRET_MAX], secret[16] = { 1 };
		size_t idn = sizeof(id), esn = sizeof(es);
		if (tpmv_make_credential(k, name, 34, secret, sizeof(secret), id, &idn, es, &esn, why, sizeof(why)) == TPMV_OK &&
		    (idn > sizeof(id) || esn > sizeof(es)))
			abort();
	}
	tpmv_key_free(k);
}

static void quote_case(const uint8_t *d, size_t n)
{
	const uint8_t *akp, *nonce, *at, *sig;
	size_t akn, atn, sign;
	if (take16(&d, &n, &akp, &akn) != 0 || take(&d, &n, TPMV_NONCE_LEN, &nonce) != 0 ||
	    take16(&d, &n, &at, &atn) != 0 || take16(&d, &n, &sig, &sign) != 0)
		return;
	struct tpmv_key *ak = NULL;
	char why[256];
	if (tpmv_key_parse(akp, akn, &ak, why, sizeof(why)) != TPMV_OK)
		return;
	struct tpmv_quote q = { at, atn, sig, sign, d, n };
	struct tpmv_pcrs out;
	if (tpmv_quote_verify(ak, &q, nonce, TPMV_NONCE_LEN, &out, why, sizeof(why)) == TPMV_OK &&
	    (out.mask & TPMV_PCR_REQUIRED) != TPMV_PCR_REQUIRED)
		abort();
	struct tpmv_nonces *reg = tpmv_nonces_new(2, 1000);
	if (reg && tpmv_nonce_register(reg, 1, nonce, TPMV_NONCE_LEN) == 0) {
		enum tpmv_result first = tpmv_quote_verify_fresh(ak, &q, reg, 2, NULL, why, sizeof(why));
		enum tpmv_result again = tpmv_quote_verify_fresh(ak, &q, reg, 3, NULL, why, sizeof(why));
		/* a quote taken once is never taken twice */
		if (first == TPMV_OK && again != TPMV_REPLAY)
			abort();
	}
	tpmv_nonces_free(reg);
	tpmv_key_free(ak);
}

static void cert_case(const uint8_t *d, size_t n)
{
	char why[256];
	struct tpmv_cas *cas = tpmv_cas_load(NULL, 0, why, sizeof(why));
	if (!cas)
		return;
	uint8_t fp[32];
	/* no CA is configured: nothing can pass */
	if (tpmv_ek_cert_check(cas, d, n, NULL, fp, why, sizeof(why)) == TPMV_OK)
		abort();
	tpmv_cas_free(cas);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 3;
	data++;
	size--;
	if (mode == 0)
		key_case(data, size);
	else if (mode == 1)
		quote_case(data, size);
	else
		cert_case(data, size);
	return 0;
}
