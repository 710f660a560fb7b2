/* The board's identity kept across agent restarts: see identity.h. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/identity.h"
#include "common/parse.h"
#include "common/util.h"
#include "common/x509.h"

#define IDENTITY_PEM "identity.pem"
#define IDENTITY_SIGNING_PUB "signing.pub"

static int identity__path(const char *dir, const char *name, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int agent_identity_save(const char *dir, EVP_PKEY *key, X509 *cert, const uint8_t signing_pub[32],
			const char **failed)
{
	char path[4200];
	char hex[2 * 32 + 2]; /* the digits, '\n', NUL */
	size_t hexlen = 2 * 32;
	BIO *mem;
	char *data;
	long len;
	int r;

	*failed = IDENTITY_PEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	r = identity__path(dir, IDENTITY_PEM, path, sizeof(path));
	if (r < 0)
		return r;
	mem = BIO_new(BIO_s_mem());
	if (!mem)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1 || PEM_write_bio_X509(mem, cert) != 1) {
		ERR_clear_error();
		r = -ENOMEM;
		goto out;
	}
	len = BIO_get_mem_data(mem, &data);
	r = sky_write_file(path, data, (size_t)len, 0600, 0);
	OPENSSL_cleanse(data, (size_t)len);
	if (r < 0)
		goto out;
	*failed = IDENTITY_SIGNING_PUB;
	sky_format_hex(signing_pub, 32, hex);
	hex[hexlen++] = '\n';
	hex[hexlen] = '\0';
	r = identity__path(dir, IDENTITY_SIGNING_PUB, path, sizeof(path));
	if (r == 0)
		r = sky_write_file(path, hex, hexlen, 0600, 0);
out:
	BIO_free(mem);
	return r;
}

int agent_identity_load(const char *dir, EVP_PKEY **key_out, X509 **cert_out, uint8_t signing_pub[32],
			char *board_id, size_t board_id_len)
{
	char path[4200], *hex = NULL, cn[64];
	uint8_t pub[32];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	FILE *f;
	int r = identity__path(dir, IDENTITY_PEM, path, sizeof(path));

	if (r < 0)
		return r;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ENOENT : -EINVAL;
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	cert = key ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	fclose(f);
	r = -EINVAL;
	if (!cert || X509_check_private_key(cert, key) != 1 || sky_cert_cn(cert, cn, sizeof(cn)) < 0 ||
	    strlen(cn) >= board_id_len ||
	    identity__path(dir, IDENTITY_SIGNING_PUB, path, sizeof(path)) < 0 ||
	    sky_read_file(path, 256, &hex, NULL) < 0)
		goto fail;
	hex[strcspn(hex, "\n")] = '\0';
	if (sky_parse_hex(hex, pub, sizeof(pub)) < 0)
		goto fail;
	free(hex);
	*key_out = key;
	*cert_out = cert;
	memcpy(signing_pub, pub, sizeof(pub));
	snprintf(board_id, board_id_len, "%s", cn);
	return 0;
fail:
	free(hex);
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return r;
}

void agent_identity_forget(const char *dir)
{
	char path[4200];
	if (identity__path(dir, IDENTITY_PEM, path, sizeof(path)) == 0)
		unlink(path);
}
