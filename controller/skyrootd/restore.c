/* `skyrootd restore`: a backup archive (backup.h) into a new state folder.
 * Everything goes into a folder beside the target first; it becomes the
 * target only once every file matches the manifest and the restored state
 * loads and verifies (every chunk, every image's signed manifest). */
#include "controller/skyrootd/backup.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/args.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/cmdline.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/store.h"

static const char *opt_from, *opt_state;

static struct sky_opt restore_opts[] = {
	{ .name = "from", .kind = SKY_ARG_STR, .dest = &opt_from, .metavar = "FILE",
	  .help = "the archive 'skyrootd backup' wrote (required)" },
	{ .name = "state", .kind = SKY_ARG_STR, .dest = &opt_state, .metavar = "DIR",
	  .help = "the state folder to create (required): must not exist, or be empty" },
	{ 0 }
};

void ctl_restore_usage(FILE *f)
{
	fprintf(f, "\nrestore make a state folder from a backup: checks every file against the\n"
		   "       archive's manifest, then every image (chunks and signed manifest).\n");
	sky_args_usage(f, restore_opts);
}

struct rs_file {
	char name[BACKUP_NAME_MAX + 1];
	uint64_t size;
	uint8_t sha256[32];
	bool listed;                  /* in the manifest */
};

struct rs {
	char staging[PATH_MAX];
	struct rs_file files[BACKUP_FILES_MAX];
	unsigned n;
	char *manifest;
	size_t manifest_len;
	uint8_t *buf;
};

#define RS_ERR(...) fprintf(stderr, "skyrootd restore: " __VA_ARGS__)

/* 0 when dir does not exist or is an empty folder. */
static int rs_target_free(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : errno == ENOTDIR ? -EEXIST : -errno;
	while (r == 0 && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			r = -EEXIST;
	closedir(d);
	return r;
}

static void rs_remove_staging(const struct rs *s)
{
	char p[PATH_MAX + 258];
	struct dirent *e;
	DIR *d = opendir(s->staging);

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", s->staging, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(s->staging);
}

static struct rs_file *rs_find(struct rs *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->files[i].name, name) == 0)
			return &s->files[i];
	return NULL;
}

/* The entry's data into the staging folder, hashed on the way. */
static int rs_extract(struct rs *s, struct archive *a, const char *name, uint64_t size)
{
	struct rs_file *f = &s->files[s->n];
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	char p[PATH_MAX + BACKUP_NAME_MAX + 2];
	uint64_t done = 0;
	la_ssize_t n;
	int fd, r = 0;

	if (!sha)
		return -ENOMEM;
	snprintf(p, sizeof(p), "%s/%s", s->staging, name);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1)
		r = -EIO;
	while (r == 0 && (n = archive_read_data(a, s->buf, BACKUP_COPY_BUF)) != 0) {
		if (n < 0 || done + (uint64_t)n > size) {
			RS_ERR("%s: the archive is damaged at %s: %s\n", opt_from, name,
			       n < 0 ? archive_error_string(a) : "more data than its header says");
			r = -EBADMSG;
			break;
		}
		if (EVP_DigestUpdate(sha, s->buf, (size_t)n) != 1)
			r = -EIO;
		for (la_ssize_t off = 0; r == 0 && off < n;) {
			ssize_t w = write(fd, s->buf + off, (size_t)(n - off));
			if (w < 0 && errno != EINTR)
				r = -errno;
			off += w > 0 ? w : 0;
		}
		done += (uint64_t)n;
	}
	if (r == 0 && done != size) {
		RS_ERR("%s: the archive is cut short in %s\n", opt_from, name);
		r = -EBADMSG;
	}
	if (r == 0 && (EVP_DigestFinal_ex(sha, f->sha256, NULL) != 1))
		r = -EIO;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == -ENOSPC || r == -EDQUOT)
		RS_ERR("no room for %s in %s: free some space and try again\n", name, s->staging);
	else if (r < 0 && r != -EBADMSG)
		RS_ERR("cannot write %s: %s\n", p, strerror(-r));
	if (r == 0) {
		snprintf(f->name, sizeof(f->name), "%s", name);
		f->size = size;
		s->n++;
	}
out:
	EVP_MD_CTX_free(sha);
	return r;
}

static int rs_read_manifest(struct rs *s, struct archive *a, uint64_t size)
{
	la_ssize_t n;

	if (s->manifest || size > BACKUP_MANIFEST_MAX) {
		RS_ERR("%s: %s twice, or over 1 MiB: not an archive skyrootd wrote\n", opt_from, BACKUP_MANIFEST);
		return -EBADMSG;
	}
	s->manifest = malloc(size + 1);
	if (!s->manifest)
		return -ENOMEM;
	while (s->manifest_len < size && (n = archive_read_data(a, s->manifest + s->manifest_len,
								  size - s->manifest_len)) > 0)
		s->manifest_len += (size_t)n;
	if (s->manifest_len != size) {
		RS_ERR("%s: the archive is damaged in %s\n", opt_from, BACKUP_MANIFEST);
		return -EBADMSG;
	}
	return 0;
}

/* Every entry: plain files of known names, bounded sizes, each once. */
static int rs_unpack(struct rs *s)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int rc, r = 0;

	if (!a)
		return -ENOMEM;
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, opt_from, 1 << 16) != ARCHIVE_OK) {
		RS_ERR("cannot read %s: %s\n", opt_from, archive_error_string(a));
		archive_read_free(a);
		return -EIO;
	}
	while (r == 0 && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		la_int64_t size = archive_entry_size(e);

		if (!name || archive_entry_filetype(e) != AE_IFREG || !archive_entry_size_is_set(e) || size < 0) {
			RS_ERR("%s: an entry that is not a plain file: not an archive skyrootd wrote\n", opt_from);
			r = -EBADMSG;
		} else if (strcmp(name, BACKUP_MANIFEST) == 0) {
			r = rs_read_manifest(s, a, (uint64_t)size);
		} else if (!backup_name_ok(name) || (backup_name_is_db(name) && strcmp(name, CTL_DB_FILE) != 0)) {
			RS_ERR("%s: an entry with a name a backup never has: not an archive skyrootd wrote\n", opt_from);
			r = -EBADMSG;
		} else if (rs_find(s, name) || s->n == BACKUP_FILES_MAX ||
			   (strcmp(name, CTL_DB_FILE) != 0 && (uint64_t)size > BACKUP_FILE_MAX)) {
			RS_ERR("%s: %s twice, too many files, or a state file over 16 MiB: not an archive "
			       "skyrootd wrote\n", opt_from, name);
			r = -EBADMSG;
		} else {
			r = rs_extract(s, a, name, (uint64_t)size);
		}
	}
	if (r == 0 && rc != ARCHIVE_EOF) {
		RS_ERR("%s is damaged or not a tar archive: %s\n", opt_from, archive_error_string(a));
		r = -EBADMSG;
	}
	archive_read_free(a);
	return r;
}

/* Every extracted file against the manifest, and the manifest against
 * what was extracted. */
static int rs_check_manifest(struct rs *s)
{
	json_error_t jerr;
	json_t *m, *files, *it;
	const char *format = NULL;
	json_int_t version = 0;
	size_t i;
	int r = -EBADMSG;

	if (!s->manifest) {
		RS_ERR("%s has no %s: not a skyrootd backup, or cut short\n", opt_from, BACKUP_MANIFEST);
		return -EBADMSG;
	}
	m = json_loadb(s->manifest, s->manifest_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!m || json_unpack(m, "{s:s, s:I, s:o}", "format", &format, "version", &version, "files", &files) < 0 ||
	    strcmp(format, BACKUP_FORMAT) != 0 || !json_is_array(files)) {
		RS_ERR("%s: %s is not a skyrootd backup manifest\n", opt_from, BACKUP_MANIFEST);
		goto out;
	}
	if (version != BACKUP_VERSION) {
		RS_ERR("%s is a backup of version %" JSON_INTEGER_FORMAT ", this skyrootd reads version %d: "
		       "restore it with the skyrootd that made it\n", opt_from, version, BACKUP_VERSION);
		goto out;
	}
	json_array_foreach(files, i, it) {
		const char *name = NULL, *hex = NULL;
		json_int_t size = -1;
		uint8_t want[32];
		struct rs_file *f;

		if (json_unpack(it, "{s:s, s:I, s:s}", "name", &name, "size", &size, "sha256", &hex) < 0 ||
		    !backup_name_ok(name) || sky_parse_hex(hex, want, sizeof(want)) < 0) {
			RS_ERR("%s: file %zu of %s is malformed\n", opt_from, i, BACKUP_MANIFEST);
			goto out;
		}
		f = rs_find(s, name);
		if (!f) {
			RS_ERR("%s lacks %s, which its manifest lists: the archive is damaged or was altered; "
			       "nothing was restored\n", opt_from, name);
			goto out;
		}
		if ((uint64_t)size != f->size || !sky_memeq_ct(want, f->sha256, 32)) {
			RS_ERR("%s: %s does not match its SHA-256 in the manifest: the archive is damaged or "
			       "was altered; nothing was restored\n", opt_from, name);
			goto out;
		}
		f->listed = true;
	}
	for (unsigned k = 0; k < s->n; k++) {
		if (!s->files[k].listed) {
			RS_ERR("%s: %s is not in the manifest: the archive was altered; nothing was restored\n",
			       opt_from, s->files[k].name);
			goto out;
		}
	}
	if (!rs_find(s, CTL_DB_FILE)) {
		RS_ERR("%s holds no %s: not a whole backup\n", opt_from, CTL_DB_FILE);
		goto out;
	}
	r = 0;
out:
	json_decref(m);
	return r;
}

/* ---- the restored state: it loads as `run` loads it, and every image
 * verifies ---- */

static int rs__count_board(void *ctx, const struct db_board *b)
{
	(void)b;
	++*(unsigned *)ctx;
	return 0;
}

static int rs__count_token(void *ctx, const struct db_token *t)
{
	(void)t;
	++*(unsigned *)ctx;
	return 0;
}

struct rs_check {
	unsigned images, bad;
	uint64_t bytes;
	bool failed;                  /* an image could not be verified (said) */
};

static void rs__bad_chunk(void *ctx, const struct store_image *img, uint32_t index, const uint8_t digest[32])
{
	char hex[65];

	(void)ctx;
	sky_format_hex(digest, 32, hex);
	RS_ERR("image %s (%s): chunk %" PRIu32 " does not hash to %s\n", img->name, img->id, index, hex);
}

static void rs__verdict(void *ctx, const struct store_verdict *v)
{
	struct rs_check *c = ctx;
	const struct store_image *img = v->img;

	c->images++;
	if (v->err < 0) {
		RS_ERR("cannot verify image %s (%s): %s\n", img->name, img->id, strerror(-v->err));
		c->failed = true;
	} else if (!v->ok) {
		RS_ERR("image %s (%s) is damaged: %d of %" PRIu32 " chunks bad%s%s\n", img->name, img->id, v->bad_chunks,
		       img->chunks, v->why[0] ? "; " : "", v->why);
		c->bad++;
	} else {
		c->bytes += img->size;
		printf("  image %-24s %s  %" PRIu32 " chunks and signed manifest verified\n", img->name, img->id,
		       v->chunks);
	}
}

/* 0 when the state loads and every image verifies; says what is wrong. */
static int rs_verify(const char *staging)
{
	static const struct store_verify_ops ops = { .bad_chunk = rs__bad_chunk, .verdict = rs__verdict };
	struct controller ctl = { .opt = { .state_dir = staging } };
	struct rs_check c = { 0 };
	unsigned boards = 0, tokens = 0;
	int r = ctl_state_load(&ctl);

	if (r < 0)
		return r; /* ctl_state_load said why */
	r = db_check(ctl.db);
	if (r < 0)
		RS_ERR("the database fails SQLite's integrity check: the backup is not usable\n");
	if (r == 0 && ((r = db_board_list(ctl.db, rs__count_board, &boards)) < 0 ||
		       (r = db_token_list(ctl.db, rs__count_token, &tokens)) < 0))
		RS_ERR("cannot read the restored database: %s\n", strerror(-r));
	if (r == 0) {
		r = store_verify_all(ctl.store, ctl.db_path, &ops, &c);
		if (r == -EBADMSG)
			RS_ERR("%u of %u images did not verify; nothing was restored\n", c.bad, c.images);
		else if (r < 0 && !c.failed)
			RS_ERR("cannot read the restored database: %s\n", strerror(-r));
	}
	if (r == 0)
		printf("  %u boards, %u enrollment tokens, %u images (%.1f MiB), CA %s\n", boards, tokens, c.images,
		       (double)c.bytes / (1 << 20), ctl.ca_pin_str);
	/* Every connection closed before the folder is renamed. */
	store_reader_close();
	ctl_state_unload(&ctl);
	return r;
}

int ctl_restore_main(int argc, char **argv)
{
	struct rs *s;
	int r = ctl_cmdline_parse("restore", restore_opts, 2, argc, argv, ctl_restore_usage);

	if (r)
		return r < 0 ? 0 : r;
	umask(077);
	r = rs_target_free(opt_state);
	if (r < 0) {
		RS_ERR("%s %s; refusing to overwrite it (restore into a new folder)\n", opt_state,
		       r == -EEXIST ? "already exists and is not an empty folder" : strerror(-r));
		return 1;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->buf = malloc(BACKUP_COPY_BUF))) {
		RS_ERR("out of memory\n");
		goto fail_mem;
	}
	if (snprintf(s->staging, sizeof(s->staging), "%s.restore-XXXXXX", opt_state) >= (int)sizeof(s->staging) ||
	    !mkdtemp(s->staging) || chmod(s->staging, 0700) < 0) {
		RS_ERR("cannot create a folder beside %s: %s\n", opt_state, strerror(errno));
		s->staging[0] = '\0';
		goto fail;
	}
	printf("Restoring %s into %s\n", opt_from, opt_state);
	if (rs_unpack(s) < 0 || rs_check_manifest(s) < 0)
		goto fail;
	printf("  %u files match the archive's manifest\n", s->n);
	if (sky_fsync_dir_of(s->staging) < 0 || rs_verify(s->staging) < 0)
		goto fail;
	if (rename(s->staging, opt_state) < 0) {
		RS_ERR("cannot move the restored state to %s: %s%s\n", opt_state, strerror(errno),
		       errno == ENOTEMPTY || errno == EEXIST ? " (something was put there meanwhile)" : "");
		goto fail;
	}
	sky_fsync_dir_of(opt_state);
	printf("Restored. Start the controller:  skyrootd run --state %s\n"
	       "Boards reconnect with the certificates they have (the CA is the same); skyctl.conf\n"
	       "still names the old controller's API address: edit it if this one listens elsewhere.\n",
	       opt_state);
	free(s->manifest);
	free(s->buf);
	free(s);
	return 0;

fail:
	if (s->staging[0])
		rs_remove_staging(s);
	RS_ERR("nothing was restored; %s is untouched\n", opt_state);
fail_mem:
	if (s) {
		free(s->manifest);
		free(s->buf);
	}
	free(s);
	return 1;
}
