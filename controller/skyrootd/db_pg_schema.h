/* The store's schema on PostgreSQL (db_pg_schema.c): the base that makes a
 * new database at DB_PG_BASE_VERSION (the SQLite schema's version then,
 * db.c), and the forward migrations from there, entry i taking
 * DB_PG_BASE_VERSION + i to the next.  Both engines always reach the same
 * version number with the same tables. */
#ifndef SKY_CONTROLLER_DB_PG_SCHEMA_H
#define SKY_CONTROLLER_DB_PG_SCHEMA_H

#define DB_PG_BASE_VERSION 12

extern const char db_pg_base[];
extern const char *const db_pg_migrations[];
extern const int db_pg_migrations_n;
/* Its length, for db.c's check that each SQLite migration has its twin. */
#define DB_PG_MIGRATIONS_N 4

#endif
