/* A board's TPM for hand-made agent-link messages (tests/integration/
 * test_tpm_proof.py): the agent's own TPM code (agent/tpm.c) behind a
 * line protocol on stdin/stdout, so a test can send the controller what a
 * real agent never would (an old quote, a quote over another nonce, a
 * wrong secret) with real TPM structures.  One EK and one AK for the
 * process's life:
 *
 *   evidence                   -> EKPUB EKCERT AKPUB          (hex, one line)
 *   activate IDOBJ ENCSECRET   -> SECRET
 *   quote NONCE                -> ATTEST SIG PCRS
 *   (errors)                   -> "error REASON"
 *
 * Usage: tpm_oracle TCTI.  Test code only: not part of any product. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tpm.h"

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(s);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return 0;
}

static void puthex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	if (n == 0)
		putchar('-');
}

int main(int argc, char **argv)
{
	static char line[65536];
	static uint8_t cert[AGENT_TPM_CERT_MAX], a[4096], b[4096];
	static struct agent_tpm_quote q;
	uint8_t ek[AGENT_TPM_PUBLIC_MAX], ak[AGENT_TPM_PUBLIC_MAX], secret[AGENT_TPM_SECRET_MAX];
	size_t certn = 0, ekn = 0, akn = 0, an, bn, sn;
	char err[512];
	struct agent_tpm *t = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: %s TCTI\n", argv[0]);
		return 2;
	}
	if (agent_tpm_open(argv[1], &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		char *cmd = strtok(line, " \n"), *x = strtok(NULL, " \n"), *y = strtok(NULL, " \n");
		if (!cmd)
			continue;
		if (strcmp(cmd, "evidence") == 0) {
			int r = agent_tpm_ek_cert(t, cert, sizeof(cert), &certn, err, sizeof(err));
			if (r < 0 || agent_tpm_create_ek(t, ek, sizeof(ek), &ekn, err, sizeof(err)) < 0 ||
			    agent_tpm_create_ak(t, AGENT_TPM_AK_RSA, ak, sizeof(ak), &akn, err, sizeof(err)) < 0) {
				printf("error %s\n", err);
				continue;
			}
			puthex(ek, ekn);
			putchar(' ');
			puthex(cert, r == 1 ? 0 : certn);
			putchar(' ');
			puthex(ak, akn);
			putchar('\n');
		} else if (strcmp(cmd, "activate") == 0 && x && y && unhex(x, a, sizeof(a), &an) == 0 &&
			   unhex(y, b, sizeof(b), &bn) == 0) {
			if (agent_tpm_activate(t, a, an, b, bn, secret, sizeof(secret), &sn, err, sizeof(err)) < 0) {
				printf("error %s\n", err);
				continue;
			}
			puthex(secret, sn);
			putchar('\n');
		} else if (strcmp(cmd, "quote") == 0 && x && unhex(x, a, sizeof(a), &an) == 0) {
			if (agent_tpm_quote(t, a, an, &q, err, sizeof(err)) < 0) {
				printf("error %s\n", err);
				continue;
			}
			puthex(q.attest, q.attest_len);
			putchar(' ');
			puthex(q.sig, q.sig_len);
			putchar(' ');
			puthex(q.pcrs, q.pcrs_len);
			putchar('\n');
		} else {
			printf("error bad command\n");
		}
	}
	agent_tpm_close(t);
	return 0;
}
