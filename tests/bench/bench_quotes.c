/* Quote checks per second on the controller (issue 16's benchmark): what
 * al_quote.c does with each fresh quote a board sends, parse the AK kept in
 * the store and verify the quote (signature, nonce, PCR digest), over the
 * swtpm quotes stored as fixtures (tests/fixtures/tpm, make_fixtures.sh),
 * with the RSA and the ECC P-256 AK, for about a second each, on one core.
 *
 * usage: bench_quotes [FIXTURES_DIR]   (default tests/fixtures/tpm)
 * Prints "quote checks/s (AK): N"; exits 1 if any check fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/skyrootd/tpm_verify.h"

struct blob {
	uint8_t p[8192];
	size_t n;
};

static int load(const char *dir, const char *name, struct blob *b)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "bench_quotes: cannot open %s\n", path);
		return -1;
	}
	b->n = fread(b->p, 1, sizeof(b->p), f);
	fclose(f);
	return b->n ? 0 : -1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *dir, const char *what, const char *pub, const char *attest, const char *sig)
{
	static struct blob k, a, s, nonce, pcrs;
	char why[256];
	unsigned long n = 0;

	if (load(dir, pub, &k) || load(dir, attest, &a) || load(dir, sig, &s) || load(dir, "nonce.bin", &nonce) ||
	    load(dir, "pcrs.bin", &pcrs))
		return -1;
	struct tpmv_quote q = { a.p, a.n, s.p, s.n, pcrs.p, pcrs.n };
	double t0 = now_s(), t;
	do {
		for (int i = 0; i < 50; i++, n++) {
			struct tpmv_key *ak = NULL;
			struct tpmv_pcrs out;
			enum tpmv_result r = tpmv_key_parse(k.p, k.n, &ak, why, sizeof(why));
			if (r == TPMV_OK)
				r = tpmv_quote_verify(ak, &q, nonce.p, nonce.n, &out, why, sizeof(why));
			tpmv_key_free(ak);
			if (r != TPMV_OK) {
				fprintf(stderr, "bench_quotes: %s: %s\n", what, why);
				return -1;
			}
		}
		t = now_s() - t0;
	} while (t < 1.0);
	printf("quote checks/s (%s): %.0f\n", what, (double)n / t);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fixtures/tpm";

	if (run(dir, "RSA 2048 AK", "ak.pub", "quote.attest", "quote.sig") < 0 ||
	    run(dir, "ECC P-256 AK, skyagent's", "ak_ecc.pub", "quote_ecc.attest", "quote_ecc.sig") < 0)
		return 1;
	return 0;
}
