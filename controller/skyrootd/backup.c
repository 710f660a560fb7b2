/* `skyrootd backup`: the whole state folder into one archive while the
 * controller keeps serving (see backup.h for the format). */
#include "controller/skyrootd/backup.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/args.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/cmdline.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/sql.h"

static const char *opt_state, *opt_to;
static uint64_t opt_step_pages = 128, opt_step_pause_ms = 10;

/* --step-pause: a duration as every program reads one (10ms, 1s). */
static int backup__opt_pause(void *ctx, const char *value, char *err, size_t errlen)
{
	uint64_t ms;
	int r = sky_parse_duration_ms(value, &ms);

	if (r < 0 || ms > 60000) {
		snprintf(err, errlen, "--step-pause '%.64s' is not a duration up to 1m; use e.g. --step-pause 10ms",
			 value);
		return -EINVAL;
	}
	*(uint64_t *)ctx = ms;
	return 0;
}

static struct sky_opt backup_opts[] = {
	{ .name = "state", .kind = SKY_ARG_STR, .dest = &opt_state, .metavar = "DIR",
	  .help = "the state folder to copy (required); the controller may be running" },
	{ .name = "to", .kind = SKY_ARG_STR, .dest = &opt_to, .metavar = "FILE",
	  .help = "the archive to write (required): mode 0600, replaced atomically" },
	{ .name = "step-pages", .kind = SKY_ARG_UINT, .dest = &opt_step_pages, .metavar = "N",
	  .help = "database pages (32 KiB) copied per step (default 128)", .min = 1, .max = 1u << 20 },
	{ .name = "step-pause", .kind = SKY_ARG_CALLBACK, .cb = backup__opt_pause, .ctx = &opt_step_pause_ms,
	  .metavar = "DURATION", .help = "pause between steps, leaving the disk to the controller\n(default 10ms; at most 1m)" },
	{ 0 }
};

void ctl_backup_usage(FILE *f)
{
	fprintf(f, "\nbackup copy the whole state (keys, certificates, token hash, skyctl.conf, every\n"
		   "       other file of the folder, and the database with its images as one\n"
		   "       consistent snapshot) into one archive, while the controller runs.\n");
	sky_args_usage(f, backup_opts);
}

bool backup_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > BACKUP_NAME_MAX || name[0] == '.')
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

bool backup_name_is_db(const char *name)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	size_t n = strlen(CTL_DB_FILE);

	if (strncmp(name, CTL_DB_FILE, n) != 0)
		return false;
	for (size_t i = 0; i < SKY_ARRAY_SIZE(suffixes); i++)
		if (strcmp(name + n, suffixes[i]) == 0)
			return true;
	return false;
}

/* ---- the database: SQLite's online backup API in one read transaction ---- */

/* Copy the database at target (the store, opened through sql.h) into
 * dst_path (an empty file).  The read transaction held across the steps
 * pins one snapshot: the copy is consistent, and a commit of the running
 * controller neither restarts it nor waits for it (WAL).  The online
 * backup is SQLite's alone: -ENOTSUP for a store on another engine. */
static int backup_db(const char *target, const char *dst_path, int *pages)
{
	struct sql *c = NULL;
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b = NULL;
	int rc, busy = 0, r;

	if (sql_target_is_pg(target))
		return -ENOTSUP;
	r = sql_open(target, SQL_OPEN_READONLY, &c);
	if (r < 0)
		return r;
	src = sql_sqlite_handle(c);
	if (!src) {
		sql_close(c);
		return -ENOTSUP;
	}
	rc = sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_schema;", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE, NULL);
	/* The copy is a temporary file: the archive's fsync is what counts. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(dst, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto out;
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		rc = sqlite3_errcode(dst);
		goto out;
	}
	do {
		rc = sqlite3_backup_step(b, (int)opt_step_pages);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			busy++;
		if ((rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && opt_step_pause_ms)
			sqlite3_sleep((int)opt_step_pause_ms);
	} while ((rc == SQLITE_OK || ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && busy < 3000)));
	*pages = sqlite3_backup_pagecount(b);
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	if (sqlite3_backup_finish(b) != SQLITE_OK && rc == SQLITE_OK)
		rc = sqlite3_errcode(dst);
out:
	sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(dst);
	sql_close(c);
	return sql_sqlite_errno(rc);
}

/* ---- the archive ---- */

struct bk_file {
	char name[BACKUP_NAME_MAX + 1];
	uint64_t size;
	uint8_t sha256[32];
};

struct bk_writer {
	struct archive *a;
	uint8_t *buf;
	struct bk_file files[BACKUP_FILES_MAX + 1];
	unsigned n;
	time_t now;
};

static int bk_header(struct bk_writer *w, const char *name, uint64_t size)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, w->now, 0);
	if (archive_write_header(w->a, e) != ARCHIVE_OK)
		r = -EIO;
	archive_entry_free(e);
	return r;
}

/* One file into the archive under name, hashed on the way. */
static int bk_add_file(struct bk_writer *w, const char *name, const char *path, uint64_t max)
{
	struct bk_file *f = &w->files[w->n];
	EVP_MD_CTX *sha = NULL;
	struct stat sb;
	uint64_t done = 0;
	int fd, r;

	if (w->n >= BACKUP_FILES_MAX)
		return -E2BIG;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		goto out;
	}
	r = !S_ISREG(sb.st_mode) ? -ENOTSUP : (uint64_t)sb.st_size > max ? -EFBIG : 0;
	if (r == 0 && !(sha = EVP_MD_CTX_new()))
		r = -ENOMEM;
	if (r == 0 && EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1)
		r = -EIO;
	if (r == 0)
		r = bk_header(w, name, (uint64_t)sb.st_size);
	while (r == 0 && done < (uint64_t)sb.st_size) {
		ssize_t n = read(fd, w->buf, BACKUP_COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || done + (uint64_t)n > (uint64_t)sb.st_size) {
			r = n < 0 ? -errno : -EAGAIN; /* it changed while read */
			break;
		}
		if (EVP_DigestUpdate(sha, w->buf, (size_t)n) != 1 || archive_write_data(w->a, w->buf, (size_t)n) != n)
			r = -EIO;
		done += (uint64_t)n;
	}
	if (r == 0 && EVP_DigestFinal_ex(sha, f->sha256, NULL) != 1)
		r = -EIO;
	if (r == 0) {
		snprintf(f->name, sizeof(f->name), "%s", name);
		f->size = done;
		w->n++;
	}
out:
	EVP_MD_CTX_free(sha);
	close(fd);
	return r;
}

static int bk_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every state file but the database, in name order. */
static int bk_add_state_files(struct bk_writer *w, const char *dir)
{
	char *names[BACKUP_FILES_MAX], p[PATH_MAX];
	struct dirent *e;
	struct stat sb;
	size_t n = 0;
	DIR *d = opendir(dir);
	int r = 0;

	if (!d) {
		fprintf(stderr, "skyrootd backup: cannot read the state folder %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || backup_name_is_db(e->d_name))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &sb) < 0) {
			if (errno == ENOENT)
				continue; /* gone meanwhile (a temporary file) */
			r = -errno;
			fprintf(stderr, "skyrootd backup: cannot read %s: %s\n", p, strerror(errno));
		} else if (!S_ISREG(sb.st_mode) || !backup_name_ok(e->d_name)) {
			fprintf(stderr, "skyrootd backup: %s is not a plain file a backup can carry (a folder, a link, "
				"or a name outside [A-Za-z0-9._-]); move it out of the state folder\n", p);
			r = -ENOTSUP;
		} else if (n == SKY_ARRAY_SIZE(names) - 1) {
			fprintf(stderr, "skyrootd backup: more than %d files in %s\n", BACKUP_FILES_MAX - 1, dir);
			r = -E2BIG;
		} else if (!(names[n++] = strdup(e->d_name))) {
			n--;
			r = -ENOMEM;
		}
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), bk_name_cmp);
	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		int a = r == 0 ? bk_add_file(w, names[i], p, BACKUP_FILE_MAX) : 0;
		if (a == -ENOENT)
			a = 0;
		if (a < 0)
			fprintf(stderr, "skyrootd backup: cannot copy %s: %s\n", p,
				a == -EFBIG ? "larger than 16 MiB, not a state file" : strerror(-a));
		r = r ? r : a;
		free(names[i]);
	}
	return r;
}

static int bk_add_manifest(struct bk_writer *w)
{
	json_t *files = json_array(), *m;
	char hex[65], when[32], *text;
	int r = 0;

	sky_fmt_time((int64_t)w->now, when, sizeof(when));
	m = json_pack("{s:s, s:i, s:s, s:s, s:o}", "format", BACKUP_FORMAT, "version", BACKUP_VERSION, "skyrootd",
		      SKY_VERSION, "created", when, "files", files);
	if (!m)
		return -ENOMEM;
	for (unsigned i = 0; i < w->n && r == 0; i++) {
		sky_format_hex(w->files[i].sha256, 32, hex);
		if (json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "name", w->files[i].name, "size",
							   (json_int_t)w->files[i].size, "sha256", hex)) < 0)
			r = -ENOMEM;
	}
	text = r == 0 ? json_dumps(m, JSON_INDENT(1)) : NULL;
	json_decref(m);
	if (!text)
		return -ENOMEM;
	r = bk_header(w, BACKUP_MANIFEST, strlen(text));
	if (r == 0 && archive_write_data(w->a, text, strlen(text)) != (la_ssize_t)strlen(text))
		r = -EIO;
	free(text);
	return r;
}

/* The archive's folder must not be the state folder (each backup would
 * carry the one before). */
static int bk_check_target(const char *state, const char *to)
{
	char *copy = strdup(to), sp[PATH_MAX], tp[PATH_MAX];
	int r = 0;

	if (!copy)
		return -ENOMEM;
	if (!realpath(state, sp) || !realpath(dirname(copy), tp))
		r = -errno;
	else if (strcmp(sp, tp) == 0)
		r = -ELOOP;
	free(copy);
	return r;
}

static int bk_write(struct bk_writer *w, const char *state, const char *db_copy, int fd, int *pages)
{
	char p[PATH_MAX];
	int r;

	snprintf(p, sizeof(p), "%s/%s", state, CTL_DB_FILE);
	r = backup_db(p, db_copy, pages);
	if (r < 0) {
		const char *why = strerror(-r);

		if (r == -EBUSY)
			why = "it stayed locked (is a migration running?); try again";
		else if (r == -ENOTSUP)
			why = "the store is not SQLite, and the online copy is SQLite's: back up a PostgreSQL "
			      "store with pg_dump";
		fprintf(stderr, "skyrootd backup: cannot copy the database %s: %s\n", p, why);
		return r;
	}
	if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK || archive_write_open_fd(w->a, fd) != ARCHIVE_OK)
		return -EIO;
	if ((r = bk_add_state_files(w, state)) < 0)
		return r;
	r = bk_add_file(w, CTL_DB_FILE, db_copy, UINT64_MAX);
	if (r == 0)
		r = bk_add_manifest(w);
	if (r == 0 && archive_write_close(w->a) != ARCHIVE_OK)
		r = -EIO;
	if (r < 0)
		fprintf(stderr, "skyrootd backup: cannot write the archive: %s\n",
			archive_error_string(w->a) ? archive_error_string(w->a) : strerror(-r));
	return r;
}

int ctl_backup_main(int argc, char **argv)
{
	struct bk_writer *w = NULL;
	char tmp[PATH_MAX], db_copy[PATH_MAX];
	uint64_t t0 = sky_now_ms(), db_size = 0;
	int fd = -1, dbfd = -1, pages = 0, r = ctl_cmdline_parse("backup", backup_opts, 2, argc, argv, ctl_backup_usage);

	if (r)
		return r < 0 ? 0 : r;
	umask(077);
	r = bk_check_target(opt_state, opt_to);
	if (r < 0) {
		fprintf(stderr, "skyrootd backup: %s\n", r == -ELOOP ? "--to must be outside the state folder" :
			"cannot find the state folder or the archive's folder");
		return 1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", opt_to) >= (int)sizeof(tmp) ||
	    snprintf(db_copy, sizeof(db_copy), "%s.db-XXXXXX", opt_to) >= (int)sizeof(db_copy)) {
		fprintf(stderr, "skyrootd backup: --to %s: path too long\n", opt_to);
		return 1;
	}
	w = calloc(1, sizeof(*w));
	if (!w || !(w->buf = malloc(BACKUP_COPY_BUF)) || !(w->a = archive_write_new())) {
		fprintf(stderr, "skyrootd backup: out of memory\n");
		goto fail_mem;
	}
	w->now = time(NULL);
	fd = mkstemp(tmp);
	if (fd < 0 || (dbfd = mkstemp(db_copy)) < 0) {
		fprintf(stderr, "skyrootd backup: cannot create a file beside %s: %s\n", opt_to, strerror(errno));
		goto fail_tmp;
	}
	close(dbfd);
	r = bk_write(w, opt_state, db_copy, fd, &pages);
	db_size = w->n ? w->files[w->n - 1].size : 0;
	unlink(db_copy);
	if (r < 0)
		goto fail_tmp;
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0 || close(fd) < 0 || (fd = -1, rename(tmp, opt_to) < 0) ||
	    sky_fsync_dir_of(opt_to) < 0) {
		fprintf(stderr, "skyrootd backup: cannot write %s: %s\n", opt_to, strerror(errno));
		goto fail_tmp;
	}
	printf("Backed up %s to %s: %u files, the database a consistent snapshot of %.1f MiB (%d pages), "
	       "in %.1f s\n", opt_state, opt_to, w->n, (double)db_size / (1 << 20), pages,
	       (double)(sky_now_ms() - t0) / 1000);
	archive_write_free(w->a);
	free(w->buf);
	free(w);
	return 0;

fail_tmp:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	unlink(db_copy);
fail_mem:
	if (w) {
		archive_write_free(w->a);
		free(w->buf);
	}
	free(w);
	return 1;
}
