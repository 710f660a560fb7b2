/* The agent's TPM code (agent/tpm.c) against a live TPM, checked by the
 * controller's (controller/skyrootd/tpm_verify.c): a private swtpm with
 * its own manufacturer CA (tests/tpm/swtpm.sh, started and stopped here).
 *
 *   the agent reads the EK certificate, makes the EK and an AK under it
 *   (RSA, then ECC P-256);
 *   the controller checks the certificate against the swtpm's CA and the
 *   EK, the AK's attributes, and makes a credential for the EK and the AK's
 *   name; the agent's TPM activates it and the secret matches; a credential
 *   for another name does not activate (AK not bound);
 *   the agent quotes with a nonce from the controller's registry: verified,
 *   then refused as a replay; a quote over a nonce never given is refused;
 *   PCR 11 is extended: a quote with the values read before is refused
 *   (PCR mismatch), a fresh one is verified with the new value.
 *
 * Usage: live SWTPM_SH (meson passes tests/tpm/swtpm.sh).  Exit 77 with the
 * reason when swtpm is not installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "agent/tpm.h"
#include "common/util.h"
#include "controller/skyrootd/tpm_verify.h"

static char dir[64];
static const char *script;
static int failures;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
			failures++;                                          \
		}                                                            \
	} while (0)

static void stop_swtpm(void)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "'%s' stop '%s'", script, dir);
	if (system(cmd) != 0)
		fprintf(stderr, "swtpm.sh stop failed\n");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "rm failed\n");
}

/* swtpm.sh start DIR [ARGS]: 0 with the TCTI string, 77 (skip) or -1. */
static int start_swtpm(const char *args, char *tcti, size_t len)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && '%s' start '%s'%s", dir, script, dir, args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char *line = fgets(tcti, (int)len, p);
	int st = pclose(p);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		return 77;
	if (!line || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	tcti[strcspn(tcti, "\n")] = 0;
	return 0;
}

static int64_t now_ms(void)
{
	return (int64_t)sky_now_ms();
}

/* Extend PCR 11 through a connection of its own, as a boot stage would. */
static int extend_pcr11(const char *tcti)
{
	TSS2_TCTI_CONTEXT *tc = NULL;
	ESYS_CONTEXT *e = NULL;
	if (Tss2_TctiLdr_Initialize(tcti, &tc) != TSS2_RC_SUCCESS)
		return -1;
	if (Esys_Initialize(&e, tc, NULL) != TSS2_RC_SUCCESS) {
		Tss2_TctiLdr_Finalize(&tc);
		return -1;
	}
	TPML_DIGEST_VALUES v;
	memset(&v, 0, sizeof(v));
	v.count = 1;
	v.digests[0].hashAlg = TPM2_ALG_SHA256;
	memset(v.digests[0].digest.sha256, 0x11, 32);
	TSS2_RC rc = Esys_PCR_Extend(e, ESYS_TR_PCR11, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v);
	Esys_Finalize(&e);
	Tss2_TctiLdr_Finalize(&tc);
	return rc == TSS2_RC_SUCCESS ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s tests/tpm/swtpm.sh\n", argv[0]);
		return 2;
	}
	script = argv[1];
	snprintf(dir, sizeof(dir), "/tmp/sky-tpm-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	char tcti[256] = "";
	int st = start_swtpm("", tcti, sizeof(tcti));
	if (st != 0) {
		stop_swtpm();
		if (st == 77) {
			printf("SKIP: swtpm is not installed (deploy/packages/base.txt)\n");
			return 77;
		}
		fprintf(stderr, "swtpm.sh start failed\n");
		return 1;
	}
	printf("TPM at %s\n", tcti);

	char err[512] = "", why[512] = "";
	struct agent_tpm *t = NULL;
	struct tpmv_key *ek = NULL, *ak = NULL;
	struct tpmv_cas *cas = NULL;
	struct tpmv_nonces *reg = tpmv_nonces_new(16, 60000);
	static uint8_t cert[AGENT_TPM_CERT_MAX];
	uint8_t ekpub[AGENT_TPM_PUBLIC_MAX], akpub[AGENT_TPM_PUBLIC_MAX];
	size_t certn = 0, ekn = 0, akn = 0;
	static struct agent_tpm_quote q, q2;

	/* a TCTI that reaches nothing: refused with a reason, nothing left open */
	if (agent_tpm_open("swtpm:host=127.0.0.1,port=1", &t, err, sizeof(err)) == 0) {
		CHECK(0, "a TPM at port 1");
		agent_tpm_close(t);
		t = NULL;
	} else {
		CHECK(t == NULL && err[0], "no reason given");
		printf("no TPM there: %s\n", err);
	}
	if (agent_tpm_open(tcti, &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "open: %s\n", err);
		failures++;
		goto out;
	}
	/* before an EK and an AK: refused, the TPM untouched */
	static struct agent_tpm_quote early;
	uint8_t n0[8] = { 0 }, sec0[8];
	size_t sec0n = 0;
	CHECK(agent_tpm_quote(t, n0, sizeof(n0), &early, err, sizeof(err)) != 0, "quote without an AK");
	CHECK(agent_tpm_activate(t, n0, sizeof(n0), n0, sizeof(n0), sec0, sizeof(sec0), &sec0n, err, sizeof(err)) != 0,
		"activation without keys");
	/* the agent's side: certificate, EK, AK */
	int r = agent_tpm_ek_cert(t, cert, sizeof(cert), &certn, err, sizeof(err));
	CHECK(r == 0, "EK certificate: %d %s", r, err);
	r = agent_tpm_create_ek(t, ekpub, sizeof(ekpub), &ekn, err, sizeof(err));
	CHECK(r == 0, "EK: %s", err);
	r = agent_tpm_create_ak(t, AGENT_TPM_AK_RSA, akpub, sizeof(akpub), &akn, err, sizeof(err));
	CHECK(r == 0, "AK: %s", err);
	if (failures)
		goto out;

	/* the controller's side: the EK and its certificate, the AK */
	char root[128], issuer[128];
	snprintf(root, sizeof(root), "%s/ca/rootca.pem", dir);
	snprintf(issuer, sizeof(issuer), "%s/ca/issuer.pem", dir);
	const char *cafiles[] = { root, issuer };
	cas = tpmv_cas_load(cafiles, 2, why, sizeof(why));
	CHECK(cas, "CA: %s", why);
	CHECK(tpmv_key_parse(ekpub, ekn, &ek, why, sizeof(why)) == TPMV_OK, "EK parse: %s", why);
	CHECK(tpmv_key_parse(akpub, akn, &ak, why, sizeof(why)) == TPMV_OK, "AK parse: %s", why);
	if (failures)
		goto out;
	CHECK(tpmv_ek_cert_check(cas, cert, certn, ek, NULL, why, sizeof(why)) == TPMV_OK, "EK cert: %s", why);
	CHECK(tpmv_ek_check(ek, why, sizeof(why)) == TPMV_OK, "EK: %s", why);
	CHECK(tpmv_ak_check(ak, why, sizeof(why)) == TPMV_OK, "AK: %s", why);

	/* the credential, made here, activated by the TPM */
	uint8_t name[TPMV_NAME_MAX], secret[32], got[AGENT_TPM_SECRET_MAX];
	uint8_t id[TPMV_ID_OBJECT_MAX], es[TPMV_ENC_SECRET_MAX];
	size_t namen = tpmv_key_name(ak, name, sizeof(name)), idn = sizeof(id), esn = sizeof(es), gotn = 0;
	for (size_t i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(i * 7 + 3);
	CHECK(tpmv_make_credential(ek, name, namen, secret, sizeof(secret), id, &idn, es, &esn, why, sizeof(why)) == TPMV_OK,
		"MakeCredential: %s", why);
	r = agent_tpm_activate(t, id, idn, es, esn, got, sizeof(got), &gotn, err, sizeof(err));
	CHECK(r == 0, "ActivateCredential: %s", err);
	CHECK(r == 0 && tpmv_activation_check(secret, sizeof(secret), got, gotn) == TPMV_OK, "activated secret differs");
	printf("credential activated by the TPM: %zu-byte secret matches\n", gotn);
	/* made for another object's name: the TPM refuses it (its HMAC covers the name) */
	uint8_t other[TPMV_NAME_MAX];
	memcpy(other, name, namen);
	other[namen - 1] ^= 1;
	idn = sizeof(id);
	esn = sizeof(es);
	CHECK(tpmv_make_credential(ek, other, namen, secret, sizeof(secret), id, &idn, es, &esn, why, sizeof(why)) == TPMV_OK,
		"MakeCredential (other name): %s", why);
	r = agent_tpm_activate(t, id, idn, es, esn, got, sizeof(got), &gotn, err, sizeof(err));
	CHECK(r != 0 || tpmv_activation_check(secret, sizeof(secret), got, gotn) == TPMV_NOT_BOUND,
		"a credential for another name activated");
	printf("credential for another name: %s\n", r ? err : "activated to another secret");

	/* a credential that does not parse, or has a byte too many: refused
	 * before it reaches the TPM */
	uint8_t junk[4] = { 0x01, 0x00, 0xaa, 0xbb };
	CHECK(agent_tpm_activate(t, junk, sizeof(junk), es, esn, got, sizeof(got), &gotn, err, sizeof(err)) != 0,
		"a truncated ID object taken");
	CHECK(agent_tpm_activate(t, id, idn, es, esn - 1, got, sizeof(got), &gotn, err, sizeof(err)) != 0,
		"a truncated secret taken");
	/* quotes: a nonce longer than the TPM takes is refused here */
	uint8_t longnonce[AGENT_TPM_NONCE_MAX + 1] = { 0 };
	CHECK(agent_tpm_quote(t, longnonce, sizeof(longnonce), &q, err, sizeof(err)) != 0, "a %zu-byte nonce taken",
		sizeof(longnonce));
	uint8_t nonce[TPMV_NONCE_LEN];
	CHECK(tpmv_nonce_issue(reg, now_ms(), nonce) == 0, "nonce");
	r = agent_tpm_quote(t, nonce, sizeof(nonce), &q, err, sizeof(err));
	CHECK(r == 0, "Quote: %s", err);
	struct tpmv_quote vq = { q.attest, q.attest_len, q.sig, q.sig_len, q.pcrs, q.pcrs_len };
	struct tpmv_pcrs pcrs;
	enum tpmv_result v = tpmv_quote_verify_fresh(ak, &vq, reg, now_ms(), &pcrs, why, sizeof(why));
	CHECK(v == TPMV_OK, "quote: %s", why);
	v = tpmv_quote_verify_fresh(ak, &vq, reg, now_ms(), NULL, why, sizeof(why));
	CHECK(v == TPMV_REPLAY, "replay: %d %s", v, why);
	printf("replayed quote: %s\n", why);
	uint8_t never[TPMV_NONCE_LEN];
	memset(never, 0x42, sizeof(never));
	r = agent_tpm_quote(t, never, sizeof(never), &q2, err, sizeof(err));
	CHECK(r == 0, "Quote: %s", err);
	struct tpmv_quote vq2 = { q2.attest, q2.attest_len, q2.sig, q2.sig_len, q2.pcrs, q2.pcrs_len };
	v = tpmv_quote_verify_fresh(ak, &vq2, reg, now_ms(), NULL, why, sizeof(why));
	CHECK(v == TPMV_WRONG_NONCE, "nonce never given: %d %s", v, why);
	v = tpmv_quote_verify(ak, &vq2, nonce, sizeof(nonce), NULL, why, sizeof(why));
	CHECK(v == TPMV_WRONG_NONCE, "another nonce: %d %s", v, why);
	printf("wrong nonce: %s\n", why);

	/* PCR 11 extended: the old values no longer match a new quote */
	CHECK(extend_pcr11(tcti) == 0, "PCR_Extend");
	CHECK(tpmv_nonce_issue(reg, now_ms(), nonce) == 0, "nonce");
	r = agent_tpm_quote(t, nonce, sizeof(nonce), &q2, err, sizeof(err));
	CHECK(r == 0, "Quote: %s", err);
	struct tpmv_quote stale = { q2.attest, q2.attest_len, q2.sig, q2.sig_len, q.pcrs, q.pcrs_len };
	v = tpmv_quote_verify(ak, &stale, nonce, sizeof(nonce), NULL, why, sizeof(why));
	CHECK(v == TPMV_PCR_MISMATCH, "stale PCR values: %d %s", v, why);
	printf("PCR 11 extended, old values: %s\n", why);
	struct tpmv_pcrs pcrs2;
	vq2 = (struct tpmv_quote){ q2.attest, q2.attest_len, q2.sig, q2.sig_len, q2.pcrs, q2.pcrs_len };
	v = tpmv_quote_verify_fresh(ak, &vq2, reg, now_ms(), &pcrs2, why, sizeof(why));
	CHECK(v == TPMV_OK, "fresh quote after extend: %s", why);
	CHECK(memcmp(pcrs.value[11], pcrs2.value[11], 32) != 0, "PCR 11 did not change");
	CHECK(memcmp(pcrs.value[0], pcrs2.value[0], 32) == 0, "PCR 0 changed");

	/* An ECC P-256 AK in its place: bound the same way, its quotes verified. */
	struct tpmv_key *akecc = NULL;
	r = agent_tpm_create_ak(t, AGENT_TPM_AK_ECC, akpub, sizeof(akpub), &akn, err, sizeof(err));
	CHECK(r == 0, "ECC AK: %s", err);
	if (r == 0) {
		CHECK(tpmv_key_parse(akpub, akn, &akecc, why, sizeof(why)) == TPMV_OK, "ECC AK parse: %s", why);
		if (akecc) {
			CHECK(tpmv_ak_check(akecc, why, sizeof(why)) == TPMV_OK, "ECC AK: %s", why);
			namen = tpmv_key_name(akecc, name, sizeof(name));
			idn = sizeof(id);
			esn = sizeof(es);
			CHECK(tpmv_make_credential(ek, name, namen, secret, sizeof(secret), id, &idn, es, &esn, why,
				sizeof(why)) == TPMV_OK, "MakeCredential (ECC AK): %s", why);
			r = agent_tpm_activate(t, id, idn, es, esn, got, sizeof(got), &gotn, err, sizeof(err));
			CHECK(r == 0 && tpmv_activation_check(secret, sizeof(secret), got, gotn) == TPMV_OK,
				"ECC AK activation: %s", err);
			CHECK(tpmv_nonce_issue(reg, now_ms(), nonce) == 0, "nonce");
			CHECK(agent_tpm_quote(t, nonce, sizeof(nonce), &q2, err, sizeof(err)) == 0, "Quote (ECC): %s", err);
			vq2 = (struct tpmv_quote){ q2.attest, q2.attest_len, q2.sig, q2.sig_len, q2.pcrs, q2.pcrs_len };
			v = tpmv_quote_verify_fresh(akecc, &vq2, reg, now_ms(), NULL, why, sizeof(why));
			CHECK(v == TPMV_OK, "ECC quote: %s", why);
			/* and not under the RSA AK */
			v = tpmv_quote_verify(ak, &vq2, nonce, sizeof(nonce), NULL, why, sizeof(why));
			CHECK(v == TPMV_BAD_SIGNATURE, "ECC quote under the RSA AK: %d %s", v, why);
			printf("ECC P-256 AK: activated, quote verified\n");
		}
	}
	tpmv_key_free(akecc);

	/* A TPM whose maker wrote no EK certificate: none is read, the EK is made. */
	if (!failures) {
		agent_tpm_close(t);
		t = NULL;
		stop_swtpm();
		char t2[256] = "";
		if (start_swtpm(" --no-ek-cert", t2, sizeof(t2)) != 0) {
			CHECK(0, "swtpm --no-ek-cert did not start");
			goto out;
		}
		CHECK(agent_tpm_open(t2, &t, err, sizeof(err)) == 0, "open: %s", err);
		if (t) {
			r = agent_tpm_ek_cert(t, cert, sizeof(cert), &certn, err, sizeof(err));
			CHECK(r == 1, "EK certificate on a TPM without one: %d %s", r, err);
			CHECK(agent_tpm_create_ek(t, ekpub, sizeof(ekpub), &ekn, err, sizeof(err)) == 0, "EK: %s", err);
			printf("TPM without EK certificate: none read, EK made\n");
		}
	}

out:
	tpmv_key_free(ek);
	tpmv_key_free(ak);
	tpmv_cas_free(cas);
	tpmv_nonces_free(reg);
	agent_tpm_close(t);
	stop_swtpm();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok: EK certificate, EK, RSA and ECC AKs, credential activation, quotes, replay, wrong nonce, PCR change\n");
	return 0;
}
