/* The controller's state for the fuzz targets over skyrootd (fuzz_ctl.h). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/x509.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/sql.h"
#include "tests/fuzz/fuzz_ctl.h"

void fz_ctl_ca(EVP_PKEY **key, X509 **cert)
{
	struct sky_cert_spec spec = { .kind = SKY_CERT_CA, .cn = "fuzz CA", .serial = 1, .not_before = 0,
				      .not_after = 4102444800 };

	if (sky_key_new_p256(key) != 0 || sky_cert_issue(&spec, *key, NULL, *key, cert) != 0)
		abort();
}

void fz_ctl_store_open(struct controller *ctl, const char *dir, EVP_PKEY *signing)
{
	snprintf(ctl->db_path, sizeof(ctl->db_path), "%s/skyroot.db", dir);
	if (db_open(ctl->db_path, &ctl->db) != 0)
		abort();
	db_set_durable(ctl->db, false);
	if (store_open(ctl->db, ctl->db_path, dir, signing, 1 << 20, &ctl->store) != 0)
		abort();
}

void fz_ctl_rename(struct controller *ctl, const char *sql, const char *to, char *id, size_t idlen)
{
	struct sql_stmt *st;

	if (sql_prepare(db_sql(ctl->db), sql, &st) != 0)
		abort();
	sql_bind_text(st, 1, to);
	sql_bind_text(st, 2, id); /* id is rewritten only after the statement ran */
	if (sql_run(st) != 0 || sql_changes(db_sql(ctl->db)) < 1)
		abort();
	sql_finalize(st);
	snprintf(id, idlen, "%s", to);
}

void fz_ctl_image(struct controller *ctl, const char *name, const char *kind, const uint8_t *bytes, size_t n,
		  const char *id, struct store_image *out)
{
	struct store_upload *up;
	char old[DB_ID_MAX];

	if (store_upload_begin(ctl->store, name, kind, n, &up) != 0 || store_upload_write(up, bytes, n) != 0 ||
	    store_upload_commit(up, out) != 0)
		abort();
	snprintf(old, sizeof(old), "%s", out->id);
	fz_ctl_rename(ctl, "UPDATE image_chunks SET image_id = ?1 WHERE image_id = ?2", id, old, sizeof(old));
	fz_ctl_rename(ctl, "UPDATE images SET id = ?1 WHERE id = ?2", id, out->id, sizeof(out->id));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void fz_ctl_rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}
