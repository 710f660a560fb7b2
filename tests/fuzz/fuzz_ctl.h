/* The controller's state as the fuzz targets over skyrootd (fuzz_agent.c,
 * fuzz_rest.c) set it up: a CA, a real database and store in a folder,
 * images and guests given fixed ids so that seeds can name them, and the
 * folder removed at the end.  Any failure aborts: a target cannot run
 * without its state. */
#ifndef SKY_TESTS_FUZZ_CTL_H
#define SKY_TESTS_FUZZ_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/store.h"

/* A fresh P-256 CA, self-signed ("fuzz CA", serial 1, to 2100). */
void fz_ctl_ca(EVP_PKEY **key, X509 **cert);
/* Opens ctl's database, dir/skyroot.db (ctl->db_path), not durable (its
 * fsyncs would be most of the time), and ctl's store in dir, signing with
 * signing. */
void fz_ctl_store_open(struct controller *ctl, const char *dir, EVP_PKEY *signing);
/* Changes a row's id from id to to with sql (?1 the new id, ?2 the old),
 * at least one row; id then reads to. */
void fz_ctl_rename(struct controller *ctl, const char *sql, const char *to, char *id, size_t idlen);
/* Uploads bytes to ctl's store as image name of kind, then gives it the
 * fixed id (its chunks too); out as the upload committed it, with that id. */
void fz_ctl_image(struct controller *ctl, const char *name, const char *kind, const uint8_t *bytes, size_t n,
		  const char *id, struct store_image *out);
/* Removes dir and everything in it. */
void fz_ctl_rm_tree(const char *dir);

#endif
