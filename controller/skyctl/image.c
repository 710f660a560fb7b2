/* skyctl image: the controller's images (push, list, show, delete,
 * verify) and loading one into a board's RAM (fetch). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

#define IMAGE_POLL_MS 200 /* how often 'image fetch' asks about the board */

/* The labelled lines of an IMAGE. */
static void image__print(json_t *img)
{
	json_t *size = json_object_get(img, "size_bytes");
	char buf[32], human[32], line[128];

	skyctl_field("ID", skyctl_jstr(img, "id", "-"));
	skyctl_field("Name", skyctl_jstr(img, "name", "-"));
	skyctl_field("Kind", skyctl_jstr(img, "kind", "-"));
	skyctl_field("Format", skyctl_jstr(img, "format", "-"));
	if (json_is_integer(size))
		snprintf(line, sizeof(line), "%s (%" JSON_INTEGER_FORMAT " bytes)",
			 skyctl_jbytes(img, "size_bytes", human, sizeof(human)), json_integer_value(size));
	else
		snprintf(line, sizeof(line), "-");
	skyctl_field("Size", line);
	skyctl_field("SHA-256", skyctl_jstr(img, "sha256", "-"));
	if (json_is_integer(json_object_get(img, "chunk_size")))
		snprintf(line, sizeof(line), "%s of %s", skyctl_jint(img, "chunks", buf, sizeof(buf)),
			 skyctl_jbytes(img, "chunk_size", human, sizeof(human)));
	else
		snprintf(line, sizeof(line), "%s", skyctl_jint(img, "chunks", buf, sizeof(buf)));
	skyctl_field("Chunks", line);
	skyctl_field("Created", skyctl_jstr(img, "created_at", "-"));
	/* Integrity at rest: a chunk quarantined as corrupt in the store. */
	if (json_is_true(json_object_get(img, "damaged")))
		skyctl_field("Damaged", skyctl_jstr(img, "damage", "yes"));
}

/* Open FILE ('-': stdin) and find how much of it to send. */
static int image__open(const char *arg, struct skyctl_upload *u)
{
	struct stat st;
	int r;

	if (strcmp(arg, "-") == 0) {
		u->what = "stdin";
		u->fd = STDIN_FILENO;
		if (isatty(STDIN_FILENO)) {
			skyctl_err("stdin is a terminal; pipe the image in, e.g. "
				"'xz -dc disk.img.xz | skyctl image push - --name NAME'");
			return -EINVAL;
		}
	} else {
		u->what = arg;
		u->fd = open(arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (u->fd < 0) {
			r = -errno;
			skyctl_err("cannot open %s: %s; check the path of the image file", arg, strerror(-r));
			return r;
		}
	}
	if (fstat(u->fd, &st) < 0) {
		r = -errno;
		skyctl_err("cannot stat %s: %s", u->what, strerror(-r));
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		skyctl_err("%s is a folder; give the image file", u->what);
		return -EISDIR;
	}
	/* A regular file or a block device has a size: Content-Length.  A pipe
	 * or a socket has not: chunked transfer encoding. */
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		errno = 0;
		off_t cur = lseek(u->fd, 0, SEEK_CUR);
		off_t end = S_ISREG(st.st_mode) ? st.st_size : lseek(u->fd, 0, SEEK_END);
		if (cur < 0 || end < 0 || end < cur || lseek(u->fd, cur, SEEK_SET) != cur) {
			r = errno != 0 ? -errno : -EIO;
			skyctl_err("cannot find the size of %s: %s", u->what, strerror(-r));
			return r;
		}
		u->start = cur;
		u->size = (int64_t)(end - cur);
		if (u->size == 0) {
			skyctl_err("%s is empty; there is no image to upload", u->what);
			return -EINVAL;
		}
	}
	return 0;
}

static int image__push(struct skyctl *ctl, const char *arg)
{
	const struct skyctl_opts *o = ctl->opts;
	struct skyctl_upload u = { .fd = -1, .start = -1, .size = -1 };
	const struct skyctl_query query[] = {
		{ "name", o->value[FLAG_NAME] },
		{ skyctl_has(o, FLAG_KIND) ? "kind" : NULL, o->value[FLAG_KIND] },
		{ NULL, NULL },
	};
	const struct skyctl_req req = { .method = "POST", .path = "/v1/images", .query = query, .upload = &u };
	json_t *answer = NULL;
	int r;

	r = image__open(arg, &u);
	if (r < 0)
		goto done;
	skyctl_meter_init(&u.meter);
	r = skyctl_call(ctl, &req, &answer);
	if (r < 0)
		goto done;
	if (skyctl_as_data(o)) {
		r = skyctl_print_answer(ctl->opts, answer);
		goto done;
	}
	if (!json_is_string(json_object_get(answer, "id"))) {
		r = skyctl_answer_lacks("image id");
		goto done;
	}
	image__print(answer);
done:
	json_decref(answer);
	if (u.fd > STDIN_FILENO)
		close(u.fd);
	return r;
}

static void image__row(json_t *img, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	cells[0] = skyctl_jstr(img, "id", "-");
	cells[1] = skyctl_jstr(img, "name", "-");
	cells[2] = skyctl_jstr(img, "kind", "-");
	cells[3] = skyctl_jstr(img, "format", "-");
	cells[4] = skyctl_jbytes(img, "size_bytes", scratch[4], SKYCTL_CELL_MAX);
	cells[5] = skyctl_jint(img, "chunks", scratch[5], SKYCTL_CELL_MAX);
	cells[6] = skyctl_jsha(img, "sha256", scratch[6], SKYCTL_CELL_MAX);
	cells[7] = skyctl_jstr(img, "created_at", "-");
	cells[8] = json_is_true(json_object_get(img, "damaged")) ? "damaged" : "ok";
	/* -o wide */
	cells[9] = skyctl_jbytes(img, "chunk_size", scratch[9], SKYCTL_CELL_MAX);
	cells[10] = skyctl_jstr(img, "sha256", "-");
}

static int image__list(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = {
		"ID", "NAME", "KIND", "FORMAT", "SIZE", "CHUNKS", "SHA256", "CREATED", "STATE", "CHUNK-SIZE", "DIGEST",
	};
	static const struct skyctl_list list = {
		.path = "/v1/images", .key = "images", .header = header, .ncols = 11, .nwide = 2, .row = image__row,
		.empty = "No images; upload one with 'skyctl image push FILE --name NAME'.",
	};

	return skyctl_verb_list(ctl, &list);
}

static int image__show(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_show(ctl, "/v1/images", arg, image__print, NULL);
}

static int image__delete(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/images", arg, "deleted", "image");
}

static int image__verify(struct skyctl *ctl, const char *arg)
{
	const struct skyctl_req req = { .method = "POST", .path = "/v1/images", .id = arg, .tail = "/verify" };
	json_t *answer = NULL, *ok, *bad, *chunk;
	char buf[32], nbuf[32];
	const char *id;
	size_t i;
	int r;

	r = skyctl_call(ctl, &req, &answer);
	if (r < 0)
		return r;
	ok = json_object_get(answer, "ok");
	bad = json_object_get(answer, "bad_chunks");
	id = skyctl_jstr(answer, "id", arg);
	if (!json_is_boolean(ok)) {
		r = skyctl_answer_lacks("'ok'");
		goto done;
	}
	if (skyctl_as_data(ctl->opts)) {
		r = skyctl_print_answer(ctl->opts, answer);
		if (r < 0)
			goto done;
	} else if (json_is_true(ok)) {
		fputs("image ", stdout);
		skyctl_put_clean(stdout, id);
		printf(": all %s chunks verify\n", skyctl_jint(answer, "chunks", buf, sizeof(buf)));
	} else {
		json_array_foreach(bad, i, chunk) {
			printf("chunk %s: does not match its SHA-256 ", skyctl_jint(chunk, "index", buf, sizeof(buf)));
			skyctl_put_clean(stdout, skyctl_jstr(chunk, "sha256", "-"));
			fputc('\n', stdout);
		}
		if (json_is_true(json_object_get(answer, "damaged"))) {
			fputs("damaged: ", stdout);
			skyctl_put_clean(stdout, skyctl_jstr(answer, "damage", "chunks are quarantined"));
			fputc('\n', stdout);
		}
	}
	if (json_is_true(ok))
		goto done;
	fputs("skyctl: image ", stderr);
	skyctl_put_clean(stderr, id);
	snprintf(nbuf, sizeof(nbuf), "%zu", json_array_size(bad));
	fprintf(stderr, ": %s of %s chunks do not verify or are quarantined; the controller's store is damaged "
			"(check the disk of its state folder); push the same image again to heal it\n",
		json_is_array(bad) ? nbuf : "some", skyctl_jint(answer, "chunks", buf, sizeof(buf)));
	r = -EIO;
done:
	json_decref(answer);
	return r;
}

/* The entry of array key of board whose "id" is id, or NULL. */
static json_t *image__find_by_id(json_t *board, const char *key, const char *id)
{
	json_t *list = json_object_get(board, key), *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *s = json_string_value(json_object_get(e, "id"));
		if (s != NULL && strcmp(s, id) == 0)
			return e;
	}
	return NULL;
}

/* What 'image fetch' works with: the ids the controller answered (to poll
 * and match) and, for messages, the words the user gave with the ids. */
struct fetch {
	char board_id[SKYCTL_MAX_ID + 1];
	char image_id[SKYCTL_MAX_ID + 1];
	char board[2 * SKYCTL_MAX_ID + 8]; /* "node-a (brd-3f9a0c1d2e4b)", cleaned */
	char image[2 * SKYCTL_MAX_ID + 8];
	char label[2 * SKYCTL_MAX_ID + 8]; /* "debian-kernel -> node-a", for the progress line */
};

static void image__fetch_draw(struct skyctl_meter *pg, const struct fetch *f, json_int_t done, json_int_t all,
			      int force)
{
	struct skyctl_progress p = {
		.label = f->label, .unit = "chunks", .done = (uint64_t)done, .total = (uint64_t)all,
	};

	if (all > 0 && done >= 0)
		skyctl_meter_draw(pg, &p, force);
}

/* Ask the board about the fetch every IMAGE_POLL_MS until the image is in its
 * RAM, the fetch failed, the board went offline or the time is up.  On
 * success *entry gets the board's "images" entry. */
static int image__fetch_wait(struct skyctl *ctl, const struct fetch *f, json_t **entry)
{
	const struct skyctl_opts *o = ctl->opts;
	const char *timeout = (o->seen & FLAG_BIT(FLAG_TIMEOUT)) ? o->value[FLAG_TIMEOUT] : "10m";
	struct skyctl_meter pg;
	json_int_t done = -1, all = -1;
	uint64_t deadline;
	int r;

	skyctl_meter_init(&pg);
	deadline = pg.start_ms + o->timeout * 1000;
	for (;;) {
		json_t *b = NULL, *e;

		r = skyctl_request(ctl, "GET", "/v1/boards", f->board_id, NULL, &b);
		if (r < 0) {
			skyctl_meter_end(&pg);
			skyctl_err("could not follow the fetch; it may go on: see 'skyctl board show %s'", f->board_id);
			return r;
		}
		e = image__find_by_id(b, "images", f->image_id);
		if (e != NULL) {
			image__fetch_draw(&pg, f, all, all, 1);
			skyctl_meter_end(&pg);
			*entry = json_incref(e);
			json_decref(b);
			return 0;
		}
		e = image__find_by_id(b, "image_errors", f->image_id);
		if (e != NULL) {
			skyctl_meter_end(&pg);
			fprintf(stderr, "skyctl: board %s could not load image %s: ", f->board, f->image);
			skyctl_put_clean(stderr, skyctl_jstr(e, "error", "no reason given"));
			fprintf(stderr, "; see the controller's log, and 'skyctl image verify %s'\n", f->image_id);
			json_decref(b);
			return -EIO;
		}
		if (strcmp(skyctl_jstr(b, "state", ""), "offline") == 0) {
			skyctl_meter_end(&pg);
			skyctl_err("board %s went offline before it had image %s; fetch it again once the board is "
				"back online", f->board, f->image);
			json_decref(b);
			return -ENOTCONN;
		}
		e = image__find_by_id(b, "fetching", f->image_id);
		if (e != NULL && json_is_integer(json_object_get(e, "chunks")) &&
		    json_is_integer(json_object_get(e, "done_chunks"))) {
			done = json_integer_value(json_object_get(e, "done_chunks"));
			all = json_integer_value(json_object_get(e, "chunks"));
			image__fetch_draw(&pg, f, done, all, 0);
		}
		json_decref(b);
		if (skyctl_now_ms() >= deadline) {
			char progress[96] = "";
			skyctl_meter_end(&pg);
			if (all > 0)
				snprintf(progress, sizeof(progress), " (%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
					 " chunks)", done, all);
			skyctl_err("board %s did not load image %s within %s%s; it may go on: see 'skyctl board show "
				"%s', or wait longer with --timeout", f->board, f->image, timeout, progress, f->board_id);
			return -ETIMEDOUT;
		}
		skyctl_sleep_ms(IMAGE_POLL_MS);
	}
}

static int image__fetch(struct skyctl *ctl, const char *arg)
{
	const struct skyctl_opts *o = ctl->opts;
	const char *given_board = o->value[FLAG_BOARD];
	struct skyctl_req req = { .method = "POST", .path = "/v1/boards", .id = given_board, .tail = "/fetch" };
	json_t *request, *answer = NULL, *entry = NULL;
	char size[32], sha[SKYCTL_SHA_PREFIX + 1];
	struct fetch f;
	const char *s;
	int r;

	request = json_pack("{s:s}", "image", arg);
	if (request == NULL) {
		skyctl_err("out of memory");
		return -ENOMEM;
	}
	req.body = request;
	r = skyctl_call(ctl, &req, &answer);
	json_decref(request);
	if (r < 0)
		return r;
	/* From here on the ids, not the names, which could change meanwhile. */
	s = json_string_value(json_object_get(answer, "board"));
	snprintf(f.board_id, sizeof(f.board_id), "%s", s != NULL && s[0] != '\0' ? s : given_board);
	s = json_string_value(json_object_get(answer, "image"));
	snprintf(f.image_id, sizeof(f.image_id), "%s", s != NULL && s[0] != '\0' ? s : arg);
	/* They go into messages and to the terminal. */
	skyctl_clean_inplace(f.board_id);
	skyctl_clean_inplace(f.image_id);
	skyctl_name_for(f.board, sizeof(f.board), given_board, f.board_id);
	skyctl_name_for(f.image, sizeof(f.image), arg, f.image_id);
	snprintf(f.label, sizeof(f.label), "%s -> %s", arg, given_board);

	if (o->seen & FLAG_BIT(FLAG_NO_WAIT)) {
		if (skyctl_as_data(o))
			r = skyctl_print_answer(ctl->opts, answer);
		else
			printf("board %s is loading image %s; follow it with 'skyctl board show %s'\n", f.board,
			       f.image, f.board_id);
		goto done;
	}
	r = image__fetch_wait(ctl, &f, &entry);
	if (r < 0)
		goto done;
	if (skyctl_as_data(o)) {
		r = skyctl_print_answer(ctl->opts, entry);
		goto done;
	}
	printf("board %s has image %s in its RAM (", f.board, f.image);
	skyctl_put_clean(stdout, skyctl_jbytes(entry, "size_bytes", size, sizeof(size)));
	fputs(", sha256 ", stdout);
	skyctl_put_clean(stdout, skyctl_jsha(entry, "sha256", sha, sizeof(sha)));
	fputs(")\n", stdout);
done:
	json_decref(entry);
	json_decref(answer);
	return r;
}

static int image__set(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_set(ctl, "/v1/images", arg, "image");
}

static const struct skyctl_flag_note image__set_notes[] = {
	{ FLAG_NAME, NULL, "the image's new name (must not be taken)" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_image_commands[] = {
	{
		.noun = "image", .verb = "push", .arg = "FILE", .arg_max = SKYCTL_MAX_PATH,
		.flags = FLAG_BIT(FLAG_NAME) | FLAG_BIT(FLAG_KIND),
		.required = FLAG_BIT(FLAG_NAME),
		.summary = "upload an image file to the controller (FILE '-' reads stdin)",
		.example = "skyctl image push vmlinuz --name vmlinuz --kind kernel",
		.run = image__push,
	},
	{
		.noun = "image", .verb = "list",
		.flags = FLAGS_LIST,
		.summary = "list the controller's images",
		.example = "skyctl image list -o yaml",
		.run = image__list,
	},
	{
		.noun = "image", .verb = "set", .arg = "ID|NAME",
		.flags = FLAGS_SET,
		.notes = image__set_notes,
		.summary = "rename, label or describe a image",
		.example = "skyctl image set debian-13 --label zone=eu-1 --description \"...\"",
		.run = image__set,
	},
	{
		.noun = "image", .verb = "show", .arg = "ID|NAME",
		.summary = "show an image: kind, format, size, SHA-256, chunks",
		.example = "skyctl image show vmlinuz",
		.run = image__show,
	},
	{
		.noun = "image", .verb = "delete", .arg = "ID|NAME",
		.summary = "delete an image (refused while a guest uses it)",
		.example = "skyctl image delete vmlinuz",
		.run = image__delete,
	},
	{
		.noun = "image", .verb = "verify", .arg = "ID|NAME",
		.summary = "read back every chunk of an image and check its SHA-256",
		.example = "skyctl image verify vmlinuz",
		.run = image__verify,
	},
	{
		.noun = "image", .verb = "fetch", .arg = "ID|NAME",
		.flags = FLAG_BIT(FLAG_BOARD) | FLAG_BIT(FLAG_NO_WAIT) | FLAG_BIT(FLAG_TIMEOUT),
		.required = FLAG_BIT(FLAG_BOARD),
		.summary = "load an image into a board's RAM and wait until it is there",
		.example = "skyctl image fetch vmlinuz --board rack1-07 --timeout 5m",
		.run = image__fetch,
	},
	{ 0 },
};
