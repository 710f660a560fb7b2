/* `skyrootd migrate`: a single controller's SQLite store, images included,
 * into an empty PostgreSQL database (issue 14).
 *
 * The copy goes through sql.h on both ends, table by table and row by row
 * (a chunk's 1 MiB at a time, never the whole store in memory), inside one
 * transaction of the destination: all of it lands, or nothing.  Every table
 * of the schema is named once, with its columns, in migrate_tables
 * (migrate.c); a unit test holds that list to the SQLite schema, so that a
 * new column cannot be left behind.  After the commit every image of the
 * destination is verified (every chunk re-hashed, its signed manifest
 * checked); only then does the state folder switch: DIR/store.url (0600)
 * names the database, and the SQLite file is renamed aside. */
#ifndef SKY_CONTROLLER_MIGRATE_H
#define SKY_CONTROLLER_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sql;

enum migrate_kind {
	MIGRATE_INT,  /* INTEGER on SQLite, BIGINT on PostgreSQL */
	MIGRATE_TEXT, /* TEXT */
	MIGRATE_BLOB, /* BLOB, BYTEA */
};

#define MIGRATE_COLS_MAX 24

struct migrate_col {
	const char *name;
	enum migrate_kind kind;
};

/* identity: the column PostgreSQL numbers itself (GENERATED ... AS
 * IDENTITY; SQLite's rowid or AUTOINCREMENT), NULL for none.  Its values
 * are kept, and PostgreSQL's sequence is moved past them afterwards.
 * generated_always: PostgreSQL takes an explicit value only with
 * OVERRIDING SYSTEM VALUE. */
struct migrate_table {
	const char *name;
	const char *identity;
	bool generated_always;
	struct migrate_col cols[MIGRATE_COLS_MAX]; /* in the schema's order, ended by { NULL } */
};

extern const struct migrate_table migrate_tables[];
extern const size_t migrate_tables_n;

/* What a copy moved. */
struct migrate_stats {
	uint64_t rows;
	uint64_t bytes; /* of text and blob values */
	unsigned tables;
};

/* Copy every table of src into dst, a store of the same schema version
 * with no rows.  src: a SQLite store, read inside one read transaction (a
 * consistent snapshot).  dst_pg: dst is PostgreSQL (the identity columns
 * need its own SQL).  All inside one transaction of dst, committed at the
 * end: 0, or a negative errno with a sentence in err and nothing left in
 * dst. */
int migrate_copy(struct sql *src, struct sql *dst, bool dst_pg, struct migrate_stats *stats, char *err,
		 size_t errlen);

/* 0 when no process has the SQLite store at path open (a skyrootd running
 * on it), -EBUSY when one has, or another negative errno. */
int migrate_source_idle(const char *path);

int ctl_migrate_main(int argc, char **argv);
void ctl_migrate_usage(FILE *f);

#endif
