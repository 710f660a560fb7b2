/* The state folder: keys, certificates, the store and skyctl's config. */
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/parse.h"
#include "common/util.h"
#include "common/x509.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/creds.h"
#include "controller/skyrootd/store.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/sql.h"

#define CA_DAYS 3650
#define SERVER_DAYS 825

static int path_in(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* The state folder is 0700 and everything in it 0600 (a folder in it
 * 0700): made so when fix, else checked, saying on stderr how to fix it
 * (-EPERM).  Only for init and run, which talk to the operator. */
static int state__modes(const char *dir, bool fix)
{
	struct stat sb;
	struct dirent *e;
	char p[PATH_MAX];
	DIR *d;
	int r = 0;

	if (fix && chmod(dir, 0700) < 0)
		return -errno;
	if (stat(dir, &sb) < 0)
		return -errno;
	if (sb.st_mode & 077) {
		fprintf(stderr, "skyrootd: the state folder %s is open to other users (mode %04o); it holds the "
			"CA key and the store: run 'chmod 700 %s'\n", dir, (unsigned)(sb.st_mode & 07777), dir);
		return -EPERM;
	}
	d = opendir(dir);
	if (!d)
		return -errno;
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((r = path_in(p, dir, e->d_name)) < 0)
			break;
		if (lstat(p, &sb) < 0) {
			r = errno == ENOENT ? 0 : -errno; /* gone meanwhile (a -shm file) */
			continue;
		}
		if (S_ISLNK(sb.st_mode) || !(sb.st_mode & 077))
			continue;
		if (fix && chmod(p, S_ISDIR(sb.st_mode) ? 0700 : 0600) < 0) {
			r = -errno;
		} else if (!fix) {
			fprintf(stderr, "skyrootd: %s is open to other users (mode %04o): run 'chmod %s %s'\n", p,
				(unsigned)(sb.st_mode & 07777), S_ISDIR(sb.st_mode) ? "700" : "600", p);
			r = -EPERM;
		}
	}
	closedir(d);
	return r;
}

/* Keys must not be readable by anyone else. */
static int check_key_mode(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return -errno;
	if (sb.st_mode & 077)
		return -EPERM;
	return 0;
}

/* A new random API token "<prefix><64 hex>" into out; only its SHA-256
 * is kept, in DIR/hash_file (0600; replaced unless excl). */
static int state__token(const char *dir, const char *prefix, const char *hash_file, bool excl, char *out,
			size_t outlen)
{
	char p[PATH_MAX], hex[66], token[128];
	uint8_t raw[32], hash[32];
	int r;

	if ((r = path_in(p, dir, hash_file)) < 0)
		return r;
	if ((r = sky_random(raw, sizeof(raw))) < 0)
		goto out;
	sky_format_hex(raw, sizeof(raw), hex);
	if ((size_t)snprintf(token, sizeof(token), "%s%s", prefix, hex) >= outlen) {
		r = -ENAMETOOLONG;
		goto out;
	}
	sky_sha256(token, strlen(token), hash);
	sky_format_hex(hash, sizeof(hash), hex);
	strcat(hex, "\n");
	if ((r = sky_write_file(p, hex, strlen(hex), 0600, excl)) < 0)
		goto out;
	snprintf(out, outlen, "%s", token);
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(token, sizeof(token));
	return r;
}

int ctl_state_reader_token(const char *dir, char *token_out, size_t outlen)
{
	char p[PATH_MAX];
	int r;

	/* Only into a state that 'init' made. */
	if ((r = path_in(p, dir, CTL_ADMIN_HASH)) < 0)
		return r;
	if (access(p, F_OK) < 0)
		return -errno;
	return state__token(dir, "skr-", CTL_READER_HASH, false, token_out, outlen);
}

/* A token's hash from DIR/name (0600): -ENOENT when there is none. */
static int state__read_hash(const char *dir, const char *name, uint8_t hash[32])
{
	char p[PATH_MAX], *hex = NULL;
	int r;

	if ((r = path_in(p, dir, name)) < 0 || (r = check_key_mode(p)) < 0 || (r = sky_read_file(p, 256, &hex, NULL)) < 0)
		return r;
	hex[strcspn(hex, "\r\n")] = '\0';
	r = sky_parse_hex(hex, hash, 32);
	free(hex);
	return r;
}

static uint64_t new_serial(void)
{
	uint64_t s = 0;
	sky_random(&s, sizeof(s));
	s &= 0x7fffffffffffffffULL; /* positive, fits SQLite INTEGER */
	return s ? s : 1;
}

/* A PostgreSQL store must start empty: a second controller of a fleet
 * takes a copy of the first one's state folder instead (docs/ha.md), so
 * that one database never has two CAs. */
static int state__db_empty(const char *url)
{
	struct sql *c = NULL;
	int r = sql_open(url, 0, &c), v;

	if (r < 0)
		return r;
	v = c->ops->schema_version(c);
	sql_close(c);
	return v < 0 ? v : v > 0 ? -EADDRINUSE : 0;
}

int ctl_state_init(const char *dir, const char *const *sans, const char *api_listen, const char *db_url,
		   char *admin_token_out, size_t outlen)
{
	char p[PATH_MAX], conf[PATH_MAX + 256], hex[66];
	EVP_PKEY *ca_key = NULL, *srv_key = NULL, *sign_key = NULL;
	X509 *ca = NULL, *srv = NULL;
	struct db *db = NULL;
	const char *default_sans[] = {"localhost", "127.0.0.1", NULL};
	const char *all_sans[64];
	size_t n = 0;
	int64_t now = sky_unix_now();
	int r;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((r = path_in(p, dir, CTL_CA_KEY)) < 0)
		return r;
	if (access(p, F_OK) == 0)
		return -EEXIST;
	if ((r = path_in(p, dir, CTL_DB_FILE)) < 0)
		return r;
	if (access(p, F_OK) == 0)
		return -EEXIST;
	if (db_url && (r = state__db_empty(db_url)) < 0)
		return r;

	for (size_t i = 0; default_sans[i]; i++)
		all_sans[n++] = default_sans[i];
	for (size_t i = 0; sans && sans[i] && n < SKY_ARRAY_SIZE(all_sans) - 1; i++)
		all_sans[n++] = sans[i];
	all_sans[n] = NULL;

	r = sky_key_new_p256(&ca_key);
	if (r < 0)
		goto out;
	char cn[96];
	uint8_t caid[4];
	sky_random(caid, sizeof(caid));
	sky_format_hex(caid, sizeof(caid), hex);
	snprintf(cn, sizeof(cn), "Skyroot CA %s", hex);
	struct sky_cert_spec ca_spec = {
		.kind = SKY_CERT_CA, .cn = cn, .serial = new_serial(),
		.not_before = now - 300, .not_after = now + (int64_t)CA_DAYS * 86400,
	};
	r = sky_cert_issue(&ca_spec, ca_key, NULL, ca_key, &ca);
	if (r < 0)
		goto out;
	r = sky_key_new_p256(&srv_key);
	if (r < 0)
		goto out;
	struct sky_cert_spec srv_spec = {
		.kind = SKY_CERT_SERVER, .cn = "skyrootd", .serial = new_serial(),
		.not_before = now - 300, .not_after = now + (int64_t)SERVER_DAYS * 86400,
		.sans = all_sans,
	};
	r = sky_cert_issue(&srv_spec, srv_key, ca, ca_key, &srv);
	if (r < 0)
		goto out;
	r = sky_key_new_ed25519(&sign_key);
	if (r < 0)
		goto out;

	if ((r = path_in(p, dir, CTL_CA_KEY)) < 0 || (r = sky_key_write_pem(p, ca_key)) < 0)
		goto out;
	if ((r = path_in(p, dir, CTL_CA_CERT)) < 0 || (r = sky_cert_write_pem(p, ca)) < 0)
		goto out;
	if ((r = path_in(p, dir, CTL_SERVER_KEY)) < 0 || (r = sky_key_write_pem(p, srv_key)) < 0)
		goto out;
	if ((r = path_in(p, dir, CTL_SERVER_CERT)) < 0 || (r = sky_cert_write_pem(p, srv)) < 0)
		goto out;
	if ((r = path_in(p, dir, CTL_SIGNING_KEY)) < 0 || (r = sky_key_write_pem(p, sign_key)) < 0)
		goto out;

	/* The admin token: shown once, kept only as a hash (and in skyctl.conf, 0600). */
	if ((r = state__token(dir, "ska-", CTL_ADMIN_HASH, true, admin_token_out, outlen)) < 0)
		goto out;

	if (db_url) {
		char line[4096 + 2];
		size_t ln = (size_t)snprintf(line, sizeof(line), "%s\n", db_url);

		if (ln >= sizeof(line) || (r = path_in(p, dir, CTL_DB_URL)) < 0 ||
		    (r = sky_write_file(p, line, ln, 0600, 1)) < 0 || (r = db_open(db_url, &db)) < 0)
			goto out;
	} else if ((r = path_in(p, dir, CTL_DB_FILE)) < 0 || (r = db_open(p, &db)) < 0) {
		goto out;
	}

	const char *host = api_listen;
	n = (size_t)snprintf(conf, sizeof(conf),
			     "# skyctl configuration written by 'skyrootd init'.\n"
			     "# Use it with: skyctl --config %s/%s ...  (or export SKYROOT_CONFIG)\n"
			     "controller = https://%s\n"
			     "ca = %s\n"
			     "token = %s\n",
			     dir, CTL_SKYCTL_CONF, host, CTL_CA_CERT, admin_token_out);
	if ((r = path_in(p, dir, CTL_SKYCTL_CONF)) < 0 || (r = sky_write_file(p, conf, n, 0600, 1)) < 0)
		goto out;
	db_close(db);
	db = NULL;
	r = state__modes(dir, true);
out:
	db_close(db);
	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(sign_key);
	ERR_clear_error();
	return r;
}

static int load_key(const char *dir, const char *name, EVP_PKEY **out, const char **failed)
{
	char p[PATH_MAX];
	int r = path_in(p, dir, name);
	*failed = name;
	if (r == 0)
		r = check_key_mode(p);
	if (r == 0)
		r = sky_key_read_pem(p, out);
	return r;
}

static int load_cert(const char *dir, const char *name, X509 **out, const char **failed)
{
	char p[PATH_MAX];
	int r = path_in(p, dir, name);
	*failed = name;
	if (r == 0)
		r = sky_cert_read_pem(p, out);
	return r;
}

/* Where the store is: --db, else DIR/store.url, else DIR/skyroot.db. */
static int state__db_target(const struct controller *ctl, char *out, size_t n)
{
	const char *dir = ctl->opt.state_dir;
	char p[PATH_MAX], *url = NULL;
	int r;

	if (ctl->opt.db)
		return !sql_target_is_pg(ctl->opt.db) ? -EINVAL
		       : (size_t)snprintf(out, n, "%s", ctl->opt.db) < n ? 0 : -ENAMETOOLONG;
	if ((r = path_in(p, dir, CTL_DB_URL)) < 0)
		return r;
	r = check_key_mode(p);
	if (r == -ENOENT)
		return path_in(out, dir, CTL_DB_FILE);
	if (r < 0 || (r = sky_read_file(p, 4096, &url, NULL)) < 0)
		return r;
	url[strcspn(url, "\r\n")] = '\0';
	r = !sql_target_is_pg(url) ? -EINVAL : (size_t)snprintf(out, n, "%s", url) < n ? 0 : -ENAMETOOLONG;
	OPENSSL_cleanse(url, strlen(url));
	free(url);
	return r;
}

int ctl_state_load(struct controller *ctl)
{
	const char *dir = ctl->opt.state_dir, *failed = "";
	char p[PATH_MAX];
	size_t len = sizeof(ctl->signing_pub);
	int r;

	r = state__modes(dir, false);
	if (r < 0) {
		if (r != -EPERM)
			fprintf(stderr, "skyrootd: cannot read the state folder %s: %s%s\n", dir, strerror(-r),
				r == -ENOENT ? " (run 'skyrootd init --state DIR' first)" : "");
		return r;
	}
	if ((r = load_key(dir, CTL_CA_KEY, &ctl->ca_key, &failed)) < 0 ||
	    (r = load_cert(dir, CTL_CA_CERT, &ctl->ca_cert, &failed)) < 0 ||
	    (r = load_key(dir, CTL_SERVER_KEY, &ctl->server_key, &failed)) < 0 ||
	    (r = load_cert(dir, CTL_SERVER_CERT, &ctl->server_cert, &failed)) < 0 ||
	    (r = load_key(dir, CTL_SIGNING_KEY, &ctl->signing_key, &failed)) < 0)
		goto fail;
	failed = CTL_SIGNING_KEY;
	if ((r = sky_key_raw_public(ctl->signing_key, ctl->signing_pub, &len)) < 0)
		goto fail;
	failed = CTL_ADMIN_HASH;
	if ((r = state__read_hash(dir, CTL_ADMIN_HASH, ctl->admin_hash)) < 0)
		goto fail;
	/* States made before the reader token have none until
	 * 'skyrootd reader-token' makes one. */
	failed = CTL_READER_HASH;
	r = state__read_hash(dir, CTL_READER_HASH, ctl->reader_hash);
	if (r < 0 && r != -ENOENT)
		goto fail;
	ctl->has_reader = r == 0;
	failed = CTL_CA_CERT;
	if ((r = sky_cert_pin(ctl->ca_cert, ctl->ca_pin)) < 0)
		goto fail;
	sky_pin_format(ctl->ca_pin, ctl->ca_pin_str, sizeof(ctl->ca_pin_str));
	failed = ctl->opt.db ? "" : CTL_DB_URL;
	if ((r = state__db_target(ctl, p, sizeof(p))) < 0)
		goto fail;
	failed = ctl->opt.db ? "" : sql_target_is_pg(p) ? CTL_DB_URL : CTL_DB_FILE;
	if ((r = db_open(p, &ctl->db)) < 0)
		goto fail;
	snprintf(ctl->db_path, sizeof(ctl->db_path), "%s", p);
	/* The tokens of init and reader-token are the credentials 'admin'
	 * and 'reader' (older states: made now, once; rotated or revoked
	 * ones stay so, until a new hash in the state folder and SIGHUP:
	 * ctl_state_reload). */
	if ((r = creds_import(ctl->db, "admin", CREDS_ADMIN, ctl->admin_hash, false, sky_unix_now())) < 0 ||
	    (ctl->has_reader &&
	     (r = creds_import(ctl->db, "reader", CREDS_READER, ctl->reader_hash, false, sky_unix_now())) < 0))
		goto fail;
	if ((r = store_open(ctl->db, ctl->db_path, dir, ctl->signing_key,
			    ctl->opt.image_max ? ctl->opt.image_max : STORE_DEFAULT_IMAGE_MAX, &ctl->store)) < 0)
		goto fail;
	if ((r = guests_open(ctl->db, ctl->store, &ctl->guests)) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "skyrootd: cannot load %s%s%s: %s%s\n", failed[0] ? dir : "the store of --db",
		failed[0] ? "/" : "", failed,
		r == -EPERM ? "key file is readable by others; run chmod 600 on it" : strerror(-r),
		r == -ENOENT ? " (run 'skyrootd init --state DIR' first)" :
		r == -EPROTONOSUPPORT ? " (the store was made by a newer skyrootd, or this one was built without PostgreSQL)" :
		r == -ENOTCONN ? " (the PostgreSQL server of the store cannot be reached)" :
		r == -EINVAL && !failed[0] ? " (--db takes a postgresql:// URI)" :
		r == -EINVAL && strcmp(failed, CTL_DB_URL) == 0 ? " (it must hold one postgresql:// URI)" : "");
	ctl_state_unload(ctl);
	return r;
}

int ctl_state_reload(struct controller *ctl)
{
	uint8_t admin[32], reader[32];
	int r, rr;

	if ((r = state__read_hash(ctl->opt.state_dir, CTL_ADMIN_HASH, admin)) < 0)
		return r;
	rr = state__read_hash(ctl->opt.state_dir, CTL_READER_HASH, reader);
	if (rr < 0 && rr != -ENOENT)
		return rr;
	/* A new hash written in the state folder (an admin token replaced by
	 * hand) replaces the credential 'admin', as a new 'skyrootd
	 * reader-token' replaces 'reader'; an unchanged file changes nothing
	 * (a rotation through the API stands). */
	if (ctl->db && sky_memeq_ct(admin, ctl->admin_hash, sizeof(admin)) != 1 &&
	    (r = creds_import(ctl->db, "admin", CREDS_ADMIN, admin, true, sky_unix_now())) < 0)
		return r;
	memcpy(ctl->admin_hash, admin, sizeof(admin));
	if (rr == 0 && ctl->db && (!ctl->has_reader || sky_memeq_ct(reader, ctl->reader_hash, sizeof(reader)) != 1) &&
	    (r = creds_import(ctl->db, "reader", CREDS_READER, reader, true, sky_unix_now())) < 0)
		return r;
	if (rr == 0)
		memcpy(ctl->reader_hash, reader, sizeof(reader));
	ctl->has_reader = rr == 0;
	return 0;
}

int ctl_state_read_server(const struct controller *ctl, X509 **cert_out, EVP_PKEY **key_out, char *err,
			  size_t errlen)
{
	const char *dir = ctl->opt.state_dir, *failed = "";
	X509 *cert = NULL;
	EVP_PKEY *key = NULL, *ca_pub;
	int r;

	if ((r = load_key(dir, CTL_SERVER_KEY, &key, &failed)) < 0 ||
	    (r = load_cert(dir, CTL_SERVER_CERT, &cert, &failed)) < 0) {
		snprintf(err, errlen, "cannot read %s/%s: %s", dir, failed,
			 r == -EPERM ? "it is readable by others (chmod 600 it)" : strerror(-r));
		goto fail;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(err, errlen, "%s/%s does not fit %s/%s: replace both together", dir, CTL_SERVER_KEY, dir,
			 CTL_SERVER_CERT);
		r = -EINVAL;
		goto fail;
	}
	ca_pub = X509_get0_pubkey(ctl->ca_cert);
	if (!ca_pub || X509_verify(cert, ca_pub) != 1) {
		snprintf(err, errlen, "%s/%s is not signed by the controller's CA (%s): boards would refuse it; "
			 "sign it with %s/%s", dir, CTL_SERVER_CERT, CTL_CA_CERT, dir, CTL_CA_KEY);
		r = -EINVAL;
		goto fail;
	}
	*cert_out = cert;
	*key_out = key;
	return 0;
fail:
	ERR_clear_error();
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

void ctl_state_unload(struct controller *ctl)
{
	guests_close(ctl->guests);
	ctl->guests = NULL;
	store_close(ctl->store);
	ctl->store = NULL;
	db_close(ctl->db);
	ctl->db = NULL;
	X509_free(ctl->ca_cert);
	X509_free(ctl->server_cert);
	EVP_PKEY_free(ctl->ca_key);
	EVP_PKEY_free(ctl->server_key);
	EVP_PKEY_free(ctl->signing_key);
	ctl->ca_cert = ctl->server_cert = NULL;
	ctl->ca_key = ctl->server_key = ctl->signing_key = NULL;
}
