/* `skyrootd backup` and `skyrootd restore`: the whole controller state in
 * one archive.
 *
 * The archive is a POSIX tar (libarchive, no compression) of flat entries:
 * every regular file of the state folder but the database and its
 * -wal/-shm/-journal, then the database as copied by SQLite's online backup
 * API inside one read transaction (a consistent snapshot; in WAL mode the
 * running controller's writers are never blocked), then MANIFEST.json:
 *   {"format": "skyroot-backup", "version": 1, "skyrootd": "0.1.0",
 *    "created": "RFC 3339", "files": [{"name", "size", "sha256"}, ...]}
 * The digests catch damage, not a forger: the archive holds the CA key,
 * keep it as closely as the state folder itself.
 *
 * backup.c writes it, restore.c reads it.  Each command returns its exit
 * status (0, 1 error, 2 usage) and talks to the operator on stdout/stderr. */
#ifndef SKY_CONTROLLER_BACKUP_H
#define SKY_CONTROLLER_BACKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BACKUP_FORMAT "skyroot-backup"
#define BACKUP_VERSION 1
#define BACKUP_MANIFEST "MANIFEST.json"
/* Bounds a restore holds an archive to. */
#define BACKUP_FILES_MAX 256
#define BACKUP_NAME_MAX 128
#define BACKUP_FILE_MAX (16u << 20)      /* a state file other than the database */
#define BACKUP_MANIFEST_MAX (1u << 20)

int ctl_backup_main(int argc, char **argv);
int ctl_restore_main(int argc, char **argv);
/* The usage of each command, for skyrootd --help. */
void ctl_backup_usage(FILE *f);
void ctl_restore_usage(FILE *f);

/* The buffer both commands copy files with. */
#define BACKUP_COPY_BUF (1u << 20)

/* A name a state file may have in an archive: a plain file name of
 * [A-Za-z0-9._-], not starting with '.', at most BACKUP_NAME_MAX bytes. */
bool backup_name_ok(const char *name);
/* The database and its companions, which only the online copy carries. */
bool backup_name_is_db(const char *name);

#endif
