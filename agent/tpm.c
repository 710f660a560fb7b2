/* The board's TPM 2.0 through ESAPI (agent/tpm.h). */
#include "agent/tpm.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

struct agent_tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR ek, ak;
	struct agent_tpm_ak made;     /* the AK made here, to load again later */
};

static int tpm_err(char *err, size_t errlen, TSS2_RC rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int tpm_err(char *err, size_t errlen, TSS2_RC rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		if (rc != TSS2_RC_SUCCESS && n >= 0 && (size_t)n < errlen)
			snprintf(err + n, errlen - (size_t)n, ": %s (0x%x)", Tss2_RC_Decode(rc), rc);
	}
	return -1;
}

int agent_tpm_open(const char *tcti, struct agent_tpm **out, char *err, size_t errlen)
{
	*out = NULL;
	struct agent_tpm *t = calloc(1, sizeof(*t));
	if (!t)
		return tpm_err(err, errlen, 0, "out of memory");
	t->ek = t->ak = ESYS_TR_NONE;
	const char *conf = tcti ? tcti : AGENT_TPM_DEFAULT_TCTI;
	TSS2_RC rc = Tss2_TctiLdr_Initialize(conf, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		free(t);
		return tpm_err(err, errlen, rc, "TPM: TCTI %s", conf);
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		Tss2_TctiLdr_Finalize(&t->tcti);
		free(t);
		return tpm_err(err, errlen, rc, "TPM: ESAPI");
	}
	*out = t;
	return 0;
}

void agent_tpm_close(struct agent_tpm *t)
{
	if (!t)
		return;
	if (t->ak != ESYS_TR_NONE)
		Esys_FlushContext(t->esys, t->ak);
	if (t->ek != ESYS_TR_NONE)
		Esys_FlushContext(t->esys, t->ek);
	Esys_Finalize(&t->esys);
	Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

/* ---- the EK certificate ---- */

static int nv_read(struct agent_tpm *t, uint32_t index, uint8_t *buf, size_t cap, size_t *len,
	char *err, size_t errlen)
{
	ESYS_TR nv = ESYS_TR_NONE;
	TPM2B_NV_PUBLIC *pub = NULL;
	TPM2B_NAME *name = NULL;
	TSS2_RC rc = Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc == (TPM2_RC_HANDLE | TPM2_RC_H | TPM2_RC_1))
		return 1;  /* no such index */
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(err, errlen, rc, "TPM: NV index 0x%08x", index);
	int ret = -1;
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, &name);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_err(err, errlen, rc, "TPM: NV_ReadPublic 0x%08x", index);
		goto out;
	}
	size_t size = pub->nvPublic.dataSize;
	if (size == 0 || size > cap) {
		tpm_err(err, errlen, 0, "TPM: NV 0x%08x holds %zu bytes (at most %zu taken)", index, size, cap);
		goto out;
	}
	/* In pieces: TPMs read at most TPM2_PT_NV_BUFFER_MAX (often 1024) at once. */
	for (size_t off = 0; off < size;) {
		UINT16 n = (UINT16)(size - off < 512 ? size - off : 512);
		TPM2B_MAX_NV_BUFFER *data = NULL;
		rc = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, (UINT16)off, &data);
		if (rc != TSS2_RC_SUCCESS) {
			tpm_err(err, errlen, rc, "TPM: NV_Read 0x%08x at %zu", index, off);
			goto out;
		}
		if (data->size == 0 || data->size > n) {
			Esys_Free(data);
			tpm_err(err, errlen, 0, "TPM: NV_Read 0x%08x gave %u bytes for %u", index, data->size, n);
			goto out;
		}
		memcpy(buf + off, data->buffer, data->size);
		off += data->size;
		Esys_Free(data);
	}
	*len = size;
	ret = 0;
out:
	Esys_Free(pub);
	Esys_Free(name);
	Esys_TR_Close(t->esys, &nv);
	return ret;
}

int agent_tpm_ek_cert(struct agent_tpm *t, uint8_t *buf, size_t cap, size_t *len, char *err, size_t errlen)
{
	int r = nv_read(t, AGENT_TPM_NV_EK_CERT_RSA, buf, cap, len, err, errlen);
	if (r != 1)
		return r;
	return nv_read(t, AGENT_TPM_NV_EK_CERT_ECC, buf, cap, len, err, errlen);
}

/* ---- EK and AK ---- */

/* What CreatePrimary and Create take empty here: no auth value or data in
 * the sensitive part, no outside info, no creation PCRs. */
static const TPM2B_SENSITIVE_CREATE no_sensitive;
static const TPM2B_DATA no_outside_info;
static const TPML_PCR_SELECTION no_creation_pcrs;

/* What they give back besides the key's handle or private part. */
struct created {
	TPM2B_PUBLIC *pub;
	TPM2B_CREATION_DATA *data;
	TPM2B_DIGEST *hash;
	TPMT_TK_CREATION *ticket;
};

static void created_free(struct created *c)
{
	Esys_Free(c->pub);
	Esys_Free(c->data);
	Esys_Free(c->hash);
	Esys_Free(c->ticket);
}

static int marshal_public(const TPM2B_PUBLIC *p, uint8_t *out, size_t cap, size_t *len, char *err, size_t errlen)
{
	size_t off = 0;
	TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Marshal(p, out, cap, &off);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(err, errlen, rc, "TPM: marshalling a public key");
	*len = off;
	return 0;
}

int agent_tpm_create_ek(struct agent_tpm *t, uint8_t *pub, size_t cap, size_t *len, char *err, size_t errlen)
{
	/* TCG EK Credential Profile, template L-1 (RSA 2048): the policy is
	 * PolicySecret(TPM_RH_ENDORSEMENT). */
	static const uint8_t policy[32] = {
		0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
		0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
	};
	TPM2B_PUBLIC tmpl;
	memset(&tmpl, 0, sizeof(tmpl));
	TPMT_PUBLIC *p = &tmpl.publicArea;
	p->type = TPM2_ALG_RSA;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	p->authPolicy.size = sizeof(policy);
	memcpy(p->authPolicy.buffer, policy, sizeof(policy));
	p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.rsaDetail.keyBits = 2048;
	p->parameters.rsaDetail.exponent = 0;
	p->unique.rsa.size = 256;  /* zeros, as the profile says */

	struct created c = { 0 };
	if (t->ek != ESYS_TR_NONE) {
		Esys_FlushContext(t->esys, t->ek);
		t->ek = ESYS_TR_NONE;
	}
	TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		&no_sensitive, &tmpl, &no_outside_info, &no_creation_pcrs, &t->ek, &c.pub, &c.data, &c.hash, &c.ticket);
	if (rc != TSS2_RC_SUCCESS) {
		t->ek = ESYS_TR_NONE;
		return tpm_err(err, errlen, rc, "TPM: CreatePrimary (EK)");
	}
	int r = marshal_public(c.pub, pub, cap, len, err, errlen);
	created_free(&c);
	return r;
}

/* A policy session that satisfies the EK's PolicySecret(endorsement); it
 * ends with the command it authorizes (continueSession clear). */
static int ek_session(struct agent_tpm *t, ESYS_TR *sess, char *err, size_t errlen)
{
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	TSS2_RC rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, sess);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(err, errlen, rc, "TPM: StartAuthSession");
	TPM2B_NONCE empty_nonce = { .size = 0 };
	TPM2B_DIGEST empty_digest = { .size = 0 };
	TPM2B_TIMEOUT *timeout = NULL;
	TPMT_TK_AUTH *ticket = NULL;
	rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, *sess, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		&empty_nonce, &empty_digest, &empty_nonce, 0, &timeout, &ticket);
	Esys_Free(timeout);
	Esys_Free(ticket);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_TRSess_SetAttributes(t->esys, *sess, 0, TPMA_SESSION_CONTINUESESSION);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(t->esys, *sess);
		*sess = ESYS_TR_NONE;
		return tpm_err(err, errlen, rc, "TPM: PolicySecret(endorsement)");
	}
	return 0;
}

int agent_tpm_create_ak(struct agent_tpm *t, enum agent_tpm_ak_type type, uint8_t *pub, size_t cap, size_t *len,
	char *err, size_t errlen)
{
	if (t->ek == ESYS_TR_NONE)
		return tpm_err(err, errlen, 0, "TPM: no EK yet (agent_tpm_create_ek first)");
	TPM2B_PUBLIC tmpl;
	memset(&tmpl, 0, sizeof(tmpl));
	TPMT_PUBLIC *p = &tmpl.publicArea;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
	if (type == AGENT_TPM_AK_ECC) {
		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	} else {
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
		p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = 2048;
		p->parameters.rsaDetail.exponent = 0;
	}

	TPM2B_PRIVATE *priv = NULL;
	struct created c = { 0 };
	ESYS_TR sess;
	int r = -1;
	if (ek_session(t, &sess, err, errlen) != 0)
		return -1;
	TSS2_RC rc = Esys_Create(t->esys, t->ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, &no_sensitive, &tmpl,
		&no_outside_info, &no_creation_pcrs, &priv, &c.pub, &c.data, &c.hash, &c.ticket);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(t->esys, sess);
		tpm_err(err, errlen, rc, "TPM: Create (AK)");
		goto out;
	}
	if (ek_session(t, &sess, err, errlen) != 0)
		goto out;
	if (t->ak != ESYS_TR_NONE) {
		Esys_FlushContext(t->esys, t->ak);
		t->ak = ESYS_TR_NONE;
	}
	rc = Esys_Load(t->esys, t->ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, priv, c.pub, &t->ak);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(t->esys, sess);
		t->ak = ESYS_TR_NONE;
		tpm_err(err, errlen, rc, "TPM: Load (AK)");
		goto out;
	}
	r = marshal_public(c.pub, pub, cap, len, err, errlen);
	if (r == 0) {
		size_t off = 0;
		if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv, t->made.priv, sizeof(t->made.priv), &off) != TSS2_RC_SUCCESS ||
		    marshal_public(c.pub, t->made.pub, sizeof(t->made.pub), &t->made.pub_len, err, errlen) != 0)
			memset(&t->made, 0, sizeof(t->made)); /* quotes in sessions only: not kept */
		else
			t->made.priv_len = off;
	}
out:
	Esys_Free(priv);
	created_free(&c);
	return r;
}

int agent_tpm_ak_made(const struct agent_tpm *t, struct agent_tpm_ak *out)
{
	if (!t->made.priv_len)
		return -1;
	*out = t->made;
	return 0;
}

int agent_tpm_load_ak(struct agent_tpm *t, const struct agent_tpm_ak *ak, char *err, size_t errlen)
{
	TPM2B_PRIVATE priv;
	TPM2B_PUBLIC pub;
	size_t off = 0;

	if (t->ek == ESYS_TR_NONE)
		return tpm_err(err, errlen, 0, "TPM: no EK yet (agent_tpm_create_ek first)");
	memset(&priv, 0, sizeof(priv));
	memset(&pub, 0, sizeof(pub));
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(ak->priv, ak->priv_len, &off, &priv) != TSS2_RC_SUCCESS ||
	    off != ak->priv_len)
		return tpm_err(err, errlen, 0, "TPM: the kept AK's private part does not unmarshal");
	off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(ak->pub, ak->pub_len, &off, &pub) != TSS2_RC_SUCCESS || off != ak->pub_len)
		return tpm_err(err, errlen, 0, "TPM: the kept AK's public part does not unmarshal");
	ESYS_TR sess;
	if (ek_session(t, &sess, err, errlen) != 0)
		return -1;
	if (t->ak != ESYS_TR_NONE) {
		Esys_FlushContext(t->esys, t->ak);
		t->ak = ESYS_TR_NONE;
	}
	TSS2_RC rc = Esys_Load(t->esys, t->ek, sess, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &t->ak);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(t->esys, sess);
		t->ak = ESYS_TR_NONE;
		return tpm_err(err, errlen, rc, "TPM: Load (the kept AK)");
	}
	return 0;
}

/* ---- activation ---- */

int agent_tpm_activate(struct agent_tpm *t, const uint8_t *id_object, size_t id_object_len,
	const uint8_t *enc_secret, size_t enc_secret_len,
	uint8_t *secret, size_t cap, size_t *len, char *err, size_t errlen)
{
	if (t->ek == ESYS_TR_NONE || t->ak == ESYS_TR_NONE)
		return tpm_err(err, errlen, 0, "TPM: no EK and AK yet");
	TPM2B_ID_OBJECT idobj;
	TPM2B_ENCRYPTED_SECRET es;
	size_t o1 = 0, o2 = 0;
	memset(&idobj, 0, sizeof(idobj));
	memset(&es, 0, sizeof(es));
	/* From the controller: parsed by the TSS's own unmarshalling, bounded. */
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object, id_object_len, &o1, &idobj) != TSS2_RC_SUCCESS ||
	    o1 != id_object_len ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc_secret, enc_secret_len, &o2, &es) != TSS2_RC_SUCCESS ||
	    o2 != enc_secret_len)
		return tpm_err(err, errlen, 0, "TPM: the credential does not parse");
	ESYS_TR sess;
	if (ek_session(t, &sess, err, errlen) != 0)
		return -1;
	TPM2B_DIGEST *info = NULL;
	TSS2_RC rc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, sess, ESYS_TR_NONE,
		&idobj, &es, &info);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(t->esys, sess);
		return tpm_err(err, errlen, rc, "TPM: ActivateCredential");
	}
	int r = 0;
	if (info->size > cap)
		r = tpm_err(err, errlen, 0, "TPM: activated secret of %u bytes", info->size);
	else {
		memcpy(secret, info->buffer, info->size);
		*len = info->size;
	}
	Esys_Free(info);
	return r;
}

/* ---- quotes ---- */

static void pcr_selection(TPML_PCR_SELECTION *sel, uint32_t mask)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	for (unsigned i = 0; i < 24; i++)
		if (mask & (1u << i))
			sel->pcrSelections[0].pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* PCR_Read answers at most 8 values a call: ask until all are read. */
static int pcr_read(struct agent_tpm *t, uint8_t *out, char *err, size_t errlen)
{
	uint8_t value[24][32];
	uint32_t want = AGENT_TPM_PCR_MASK;
	for (int round = 0; want && round < 8; round++) {
		TPML_PCR_SELECTION sel, *got = NULL;
		TPML_DIGEST *vals = NULL;
		UINT32 counter = 0;
		pcr_selection(&sel, want);
		TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &counter, &got, &vals);
		if (rc != TSS2_RC_SUCCESS)
			return tpm_err(err, errlen, rc, "TPM: PCR_Read");
		uint32_t k = 0;
		bool bad = false;
		for (uint32_t b = 0; b < got->count && !bad; b++) {
			const TPMS_PCR_SELECTION *s = &got->pcrSelections[b];
			if (s->hash != TPM2_ALG_SHA256)
				continue;
			for (unsigned i = 0; i < 24 && i / 8 < s->sizeofSelect; i++) {
				if (!(s->pcrSelect[i / 8] & (1u << (i % 8))))
					continue;
				if (k >= vals->count || vals->digests[k].size != 32 || !(want & (1u << i))) {
					bad = true;
					break;
				}
				memcpy(value[i], vals->digests[k++].buffer, 32);
				want &= ~(1u << i);
			}
		}
		Esys_Free(got);
		Esys_Free(vals);
		if (bad)
			return tpm_err(err, errlen, 0, "TPM: PCR_Read answered values not asked for");
	}
	if (want)
		return tpm_err(err, errlen, 0, "TPM: PCR_Read did not give PCRs 0x%06x", want);
	size_t k = 0;
	for (unsigned i = 0; i < 24; i++)
		if (AGENT_TPM_PCR_MASK & (1u << i))
			memcpy(out + 32 * k++, value[i], 32);
	return 0;
}

int agent_tpm_quote(struct agent_tpm *t, const uint8_t *nonce, size_t nonce_len,
	struct agent_tpm_quote *q, char *err, size_t errlen)
{
	if (t->ak == ESYS_TR_NONE)
		return tpm_err(err, errlen, 0, "TPM: no AK yet");
	TPM2B_DATA qd;
	if (nonce_len > AGENT_TPM_NONCE_MAX || nonce_len > sizeof(qd.buffer))
		return tpm_err(err, errlen, 0, "TPM: nonce of %zu bytes", nonce_len);
	memset(&qd, 0, sizeof(qd));
	qd.size = (UINT16)nonce_len;
	if (nonce_len)
		memcpy(qd.buffer, nonce, nonce_len);
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };  /* the AK's own */
	TPML_PCR_SELECTION sel;
	pcr_selection(&sel, AGENT_TPM_PCR_MASK);
	TPM2B_ATTEST *quoted = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TSS2_RC rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd, &scheme, &sel,
		&quoted, &sig);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(err, errlen, rc, "TPM: Quote");
	int r = -1;
	size_t off = 0;
	if (quoted->size == 0 || quoted->size > sizeof(q->attest)) {
		tpm_err(err, errlen, 0, "TPM: quote of %u bytes", quoted->size);
		goto out;
	}
	memcpy(q->attest, quoted->attestationData, quoted->size);
	q->attest_len = quoted->size;
	rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, q->sig, sizeof(q->sig), &off);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_err(err, errlen, rc, "TPM: marshalling the signature");
		goto out;
	}
	q->sig_len = off;
	if (pcr_read(t, q->pcrs, err, errlen) != 0)
		goto out;
	q->pcrs_len = AGENT_TPM_PCR_N * 32;
	r = 0;
out:
	Esys_Free(quoted);
	Esys_Free(sig);
	return r;
}
