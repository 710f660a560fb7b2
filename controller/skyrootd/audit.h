/* The audit log (docs/api.md "Audit log"): every change made through the
 * API and every refused call, in the database (migration 6), bounded to
 * the newest rows. */
#ifndef SKY_CONTROLLER_AUDIT_H
#define SKY_CONTROLLER_AUDIT_H

#include <stdint.h>

#include "controller/skyrootd/db.h"

#define AUDIT_KEEP_DEFAULT 10000
#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_PATH_MAX 256
#define AUDIT_RID_MAX 40

struct audit_entry {
	int64_t seq;
	int64_t at;
	char credential[DB_NAME_MAX];   /* "unknown" when none was valid */
	char peer[64];
	char method[16];
	char path[AUDIT_PATH_MAX];      /* without the query */
	int status;
	char request_id[AUDIT_RID_MAX];
};

/* Add e (its seq ignored) and keep only the newest keep rows. */
int audit_add(struct db *db, const struct audit_entry *e, uint64_t keep);
typedef int (*audit_cb)(void *ctx, const struct audit_entry *e);
/* The newest limit entries, newest first. */
int audit_list(struct db *db, uint64_t limit, audit_cb cb, void *ctx);

#endif
