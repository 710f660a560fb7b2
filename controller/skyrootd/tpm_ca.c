/* TPM manufacturer CAs in the state folder (tpm_ca.h). */
#include "controller/skyrootd/tpm_ca.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/args.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/tpm_verify.h"

static const char *opt_state;
static struct sky_opt tpm_ca_opts[] = {
	{ .name = "state", .kind = SKY_ARG_STR, .dest = &opt_state, .metavar = "DIR",
	  .help = "the state folder 'skyrootd init' made (required)" },
	{ 0 }
};

void ctl_tpm_ca_usage(FILE *f)
{
	fprintf(f, "\ntpm-ca add --state DIR FILE\n"
		   "       take the TPM manufacturer CA certificates in FILE (PEM: a root and the\n"
		   "       intermediates that sign EK certificates) into DIR/" CTL_TPM_CA_DIR "/; a board's TPM\n"
		   "       counts only when its EK certificate chains to one of them. A running\n"
		   "       controller takes them on SIGHUP. With none, boards' TPMs are not used.\n"
		   "tpm-ca list --state DIR\n"
		   "       the CA certificates taken: file, subject, expiry.\n");
	sky_args_usage(f, tpm_ca_opts);
}

/* Every certificate of a PEM text, each a CA: 0 and *out, or -EINVAL with why. */
static int tpm_ca__parse(const char *pem, size_t len, STACK_OF(X509) **out, char *why, size_t whylen)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	int r = 0;

	if (!b || !sk) {
		r = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (X509_check_ca(x) < 1) {
			char name[200];
			X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
			snprintf(why, whylen, "certificate %d (%s) is not a CA certificate", sk_X509_num(sk) + 1, name);
			X509_free(x);
			r = -EINVAL;
			goto out;
		}
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			r = -ENOMEM;
			snprintf(why, whylen, "out of memory");
			goto out;
		}
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		snprintf(why, whylen, "no PEM certificate in it");
		r = -EINVAL;
	}
out:
	BIO_free(b);
	if (r < 0)
		sk_X509_pop_free(sk, X509_free);
	else
		*out = sk;
	return r;
}

static int tpm_ca__dir(const char *state, char *out, size_t outlen)
{
	if ((size_t)snprintf(out, outlen, "%s/%s", state, CTL_TPM_CA_DIR) >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

static int tpm_ca__add(const char *file)
{
	char dir[PATH_MAX], path[PATH_MAX + 80], hex[65], why[300] = "", admin[PATH_MAX];
	char *pem = NULL;
	size_t len = 0;
	STACK_OF(X509) *sk = NULL;
	uint8_t *der = NULL, fp[32];
	int n, r;

	/* Only into a state that 'init' made. */
	snprintf(admin, sizeof(admin), "%s/ca.crt", opt_state);
	if (access(admin, F_OK) < 0) {
		fprintf(stderr, "skyrootd tpm-ca add: %s is not a controller state (run 'skyrootd init --state DIR' "
				"first)\n", opt_state);
		return 1;
	}
	r = sky_read_file(file, CTL_TPM_CA_FILE_MAX, &pem, &len);
	if (r < 0) {
		fprintf(stderr, "skyrootd tpm-ca add: cannot read %s: %s\n", file,
			r == -EFBIG ? "larger than 256 KiB" : strerror(-r));
		return 1;
	}
	r = tpm_ca__parse(pem, len, &sk, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "skyrootd tpm-ca add: %s: %s\n", file, why);
		free(pem);
		return 1;
	}
	n = i2d_X509(sk_X509_value(sk, 0), &der);
	if (n <= 0 || tpm_ca__dir(opt_state, dir, sizeof(dir)) < 0) {
		fprintf(stderr, "skyrootd tpm-ca add: cannot name the copy of %s\n", file);
		r = -EINVAL;
		goto out;
	}
	sky_sha256(der, (size_t)n, fp);
	sky_format_hex(fp, sizeof(fp), hex);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "skyrootd tpm-ca add: cannot make %s: %s\n", dir, strerror(errno));
		r = -errno;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%.16s.pem", dir, hex);
	r = sky_write_file(path, pem, len, 0600, 0);
	if (r < 0) {
		fprintf(stderr, "skyrootd tpm-ca add: cannot write %s: %s\n", path, strerror(-r));
		goto out;
	}
	printf("added %d CA certificate%s from %s as %s (sha256:%s); a running skyrootd takes it on SIGHUP\n",
	       sk_X509_num(sk), sk_X509_num(sk) == 1 ? "" : "s", file, path, hex);
out:
	OPENSSL_free(der);
	sk_X509_pop_free(sk, X509_free);
	free(pem);
	return r < 0 ? 1 : 0;
}

static int tpm_ca__name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .pem files of STATE/tpm-ca, sorted: 0 and *n paths in names (each
 * malloc'd), -ENOENT with none there. */
static int tpm_ca__files(const char *state, char **names, size_t *n)
{
	char dir[PATH_MAX];
	DIR *d;
	struct dirent *e;
	int r = tpm_ca__dir(state, dir, sizeof(dir));

	*n = 0;
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".pem") != 0)
			continue;
		if (*n == CTL_TPM_CA_FILES_MAX) {
			r = -E2BIG;
			break;
		}
		size_t plen = strlen(dir) + 1 + l + 1;
		names[*n] = malloc(plen);
		if (!names[*n]) {
			r = -ENOMEM;
			break;
		}
		snprintf(names[*n], plen, "%s/%s", dir, e->d_name);
		(*n)++;
	}
	closedir(d);
	qsort(names, *n, sizeof(*names), tpm_ca__name_cmp);
	return r;
}

static void tpm_ca__free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
}

static int tpm_ca__list(void)
{
	char *names[CTL_TPM_CA_FILES_MAX];
	size_t n = 0;
	int r = tpm_ca__files(opt_state, names, &n), bad = 0;

	if (r < 0) {
		fprintf(stderr, "skyrootd tpm-ca list: cannot read %s/%s: %s\n", opt_state, CTL_TPM_CA_DIR, strerror(-r));
		tpm_ca__free_names(names, n);
		return 1;
	}
	if (n == 0)
		printf("no TPM manufacturer CAs (boards' TPMs are not used); add one with "
		       "'skyrootd tpm-ca add --state %s FILE'\n", opt_state);
	for (size_t i = 0; i < n; i++) {
		char *pem = NULL, why[300];
		size_t len = 0;
		STACK_OF(X509) *sk = NULL;
		if (sky_read_file(names[i], CTL_TPM_CA_FILE_MAX, &pem, &len) < 0 ||
		    tpm_ca__parse(pem, len, &sk, why, sizeof(why)) < 0) {
			printf("%s  UNUSABLE\n", names[i]);
			bad = 1;
			free(pem);
			continue;
		}
		for (int j = 0; j < sk_X509_num(sk); j++) {
			X509 *x = sk_X509_value(sk, j);
			char subject[256], until[64] = "?";
			BIO *b = BIO_new(BIO_s_mem());
			X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
			if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
				int m = BIO_read(b, until, sizeof(until) - 1);
				until[m > 0 ? m : 0] = '\0';
			}
			BIO_free(b);
			printf("%s  %s  until %s\n", names[i], subject, until);
		}
		sk_X509_pop_free(sk, X509_free);
		free(pem);
	}
	tpm_ca__free_names(names, n);
	return bad;
}

int ctl_tpm_ca_main(int argc, char **argv)
{
	char err[256];
	int first, r;
	const char *verb = argc > 1 ? argv[1] : "";
	bool add = strcmp(verb, "add") == 0, list = strcmp(verb, "list") == 0;

	if (argc > 1 && (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0)) {
		ctl_tpm_ca_usage(stdout);
		return 0;
	}
	if (!add && !list) {
		fprintf(stderr, "skyrootd tpm-ca: say 'add' or 'list'\n");
		ctl_tpm_ca_usage(stderr);
		return 2;
	}
	r = sky_args_parse(tpm_ca_opts, argc - 1, argv + 1, &first, err, sizeof(err));
	if (r == 1) {
		ctl_tpm_ca_usage(stdout);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "skyrootd tpm-ca %s: %s\n", verb, err);
		return 2;
	}
	if (!opt_state) {
		fprintf(stderr, "skyrootd tpm-ca %s: --state DIR is required\n", verb);
		return 2;
	}
	if (add && first + 1 != argc - 1) {
		fprintf(stderr, "skyrootd tpm-ca add: give one FILE (PEM) after the options\n");
		return 2;
	}
	if (list && first != argc - 1) {
		fprintf(stderr, "skyrootd tpm-ca list: unexpected argument '%s'\n", argv[1 + first]);
		return 2;
	}
	umask(077);
	return add ? tpm_ca__add(argv[1 + first]) : tpm_ca__list();
}

int ctl_tpm_cas_load(const char *state_dir, struct tpmv_cas **out, size_t *n, char *why, size_t whylen)
{
	char *names[CTL_TPM_CA_FILES_MAX];
	int r = tpm_ca__files(state_dir, names, n);

	*out = NULL;
	if (r < 0) {
		snprintf(why, whylen, "cannot read %s/%s: %s", state_dir, CTL_TPM_CA_DIR,
			 r == -E2BIG ? "more than 64 files" : strerror(-r));
		tpm_ca__free_names(names, *n);
		return r;
	}
	if (*n > 0) {
		*out = tpmv_cas_load((const char *const *)names, *n, why, whylen);
		if (!*out)
			r = -EINVAL;
	}
	tpm_ca__free_names(names, *n);
	return r;
}
