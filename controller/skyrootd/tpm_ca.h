/* TPM manufacturer CAs (issue 16): the certificates an EK certificate must
 * chain to for a board's TPM to count.  They live in the state folder,
 * STATE/tpm-ca/ (0700), one PEM file per `skyrootd tpm-ca add FILE`
 * (0600, as every file of the state), named by the SHA-256 of the file's
 * first certificate.  skyrootd run loads them at start and on SIGHUP;
 * with none, boards' TPMs are not used (they enroll as boards without one). */
#ifndef SKY_CONTROLLER_TPM_CA_H
#define SKY_CONTROLLER_TPM_CA_H

#include <stddef.h>
#include <stdio.h>

#define CTL_TPM_CA_DIR "tpm-ca"
/* Files taken from the folder, and the size of one. */
#define CTL_TPM_CA_FILES_MAX 64
#define CTL_TPM_CA_FILE_MAX (256u << 10)

struct tpmv_cas;

/* `skyrootd tpm-ca add|list ...` (argv[0] is "tpm-ca"): the exit status. */
int ctl_tpm_ca_main(int argc, char **argv);
void ctl_tpm_ca_usage(FILE *f);
/* The CAs in STATE/tpm-ca: 0 and *out (NULL when there are none, *n = 0),
 * or a negative errno with the reason in why. */
int ctl_tpm_cas_load(const char *state_dir, struct tpmv_cas **out, size_t *n, char *why, size_t whylen);

#endif
