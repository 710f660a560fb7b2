/* A store in a fresh directory under /tmp for a unit test, and its
 * removal (the database and its -wal and -shm files, then the directory).
 * Include after <cmocka.h>: a failure to make it fails the test. */
#ifndef SKY_TESTS_UNIT_TMPDB_H
#define SKY_TESTS_UNIT_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "controller/skyrootd/db.h"

struct tmpdb {
	char dir[64];
	char path[96];
	struct db *db;
};

/* name: a word for the directory ("/tmp/sky-NAME-XXXXXX"). */
static inline void tmpdb_open(struct tmpdb *t, const char *name)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/sky-%s-XXXXXX", name);
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/skyroot.db", t->dir);
	assert_int_equal(db_open(t->path, &t->db), 0);
}

static inline void tmpdb_close(struct tmpdb *t)
{
	char p[128];

	db_close(t->db);
	t->db = NULL;
	for (const char *const *s = (const char *const[]){ "", "-wal", "-shm", NULL }; *s; s++) {
		snprintf(p, sizeof(p), "%s%s", t->path, *s);
		unlink(p);
	}
	rmdir(t->dir);
}

#endif
