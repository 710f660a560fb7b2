/* libFuzzer target: the whole REST API as a client drives it, through the
 * real HTTP layer (http.c, its default limits), routing, authentication
 * and every route's handler (api*.c), with a real store behind it.  The
 * first byte picks the port (bit 0: the plain network-boot port, which
 * serves /boot/ only) and the size of the pieces the bytes arrive in; the
 * rest is what the client sends on one connection, answered over a test
 * transport (no socket).
 *
 * The store, fresh for every input that changed it: board "node-a"
 * (brd-00000000f022), image "vmlinuz" (img-00000000f022), guest "web1"
 * (gst-00000000f022), enrollment token "skt-boot-token", firmware files
 * for network boot.  The admin token is "adm-fuzz-token", the reader
 * token "rdr-fuzz-token" (the credentials 'admin' and 'reader').  No agent link: every board is offline.
 *
 * What must hold: every answer starts with a status line; nothing in the
 * store changes unless the input carries the admin token (the audit log of
 * refused calls aside); an iPXE script
 * goes out only with the valid enrollment token in it; every firmware
 * download slot is given back when the connection goes; no leak (ASan).
 * FUZZ_REST_SHOW=1 in the environment prints the answers. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/x509.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/boots.h"
#include "controller/skyrootd/consoles.h"
#include "controller/skyrootd/creds.h"
#include "controller/skyrootd/db.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/sql.h"
#include "controller/skyrootd/store.h"
#include "tests/fuzz/fuzz_ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_ADMIN "adm-fuzz-token"
#define FZ_READER "rdr-fuzz-token"
#define FZ_BOOT_TOKEN "skt-boot-token"
#define FZ_OUT_MAX (1u << 20)

static struct {
	uv_loop_t loop;
	EVP_PKEY *ca_key, *signing_key;
	X509 *ca_cert;
	const char *tmp;              /* /dev/shm, or /tmp */
	char tpl[64];                 /* the state every input starts from */
	char fw_dir[80];              /* firmware files for network boot */
	char dir[64];                 /* the state in use */
	struct controller ctl;
	bool ready;
} fz;

static void fz_write_file(const char *dir, const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static void fz_copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;

	if (!in || !out)
		abort();
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			abort();
	if (ferror(in) || fclose(out) != 0)
		abort();
	fclose(in);
}

/* Every row the store's connection ever changed.  The harness's store is
 * always a SQLite file (fz_ctl_store_open), and the count is SQLite's alone. */
static int64_t fz_total_changes(void)
{
	sqlite3 *h = sql_sqlite_handle(db_sql(fz.ctl.db));

	if (!h)
		abort();
	return sqlite3_total_changes64(h);
}

/* The rows ever added to the audit log (none is deleted here). */
static int64_t fz_audit_rows(void)
{
	struct sql_stmt *st;
	int64_t n = 0;

	if (sql_prepare(db_sql(fz.ctl.db), "SELECT COALESCE(MAX(seq), 0) FROM audit", &st) != 0)
		abort();
	if (sql_step(st) == SQL_ROW)
		n = sql_col_int64(st, 0);
	sql_finalize(st);
	return n;
}

/* The controller's state in dir: opened as it is, or (fresh) made. */
static void fz_state_open(const char *dir, bool fresh)
{
	struct db_board b = { .id = "brd-00000000f022", .name = "node-a", .uuid = "uuid-a", .enrolled_at = 1 };
	struct db_token t = { .id = "tok-00000000f022", .created_at = 1, .expires_at = INT64_MAX / 2,
			      .uses = 5, .uses_left = 5 };
	struct guest_request gr = { .name = "web1", .board = "node-a", .kernel = "vmlinuz", .vcpus = 1,
				    .memory = 64ull << 20, .backend = "qemu" };
	static const uint8_t kernel[] = "a kernel, as far as the store knows";
	struct store_image img;
	struct guest gs;
	char err[GUEST_ERROR_MAX];
	uint8_t hash[32];

	memset(&fz.ctl, 0, sizeof(fz.ctl));
	fz.ctl.loop = &fz.loop;
	fz.ctl.ca_key = fz.ca_key;
	fz.ctl.ca_cert = fz.ca_cert;
	fz.ctl.signing_key = fz.signing_key;
	fz.ctl.opt.cert_ttl = 3600;
	fz.ctl.opt.boot_downloads_max = 2;
	fz.ctl.opt.keepalive_ms = 30000;
	fz.ctl.opt.audit_keep = UINT64_MAX; /* no row deleted: fz_audit_rows counts the audit's changes */
	fz.ctl.opt.api_lim.conns_max = 4;
	fz.ctl.opt.boot_lim.conns_max = 4;
	fz.ctl.opt.firmware_dir = fz.fw_dir;
	snprintf(fz.ctl.advertise, sizeof(fz.ctl.advertise), "ctl.example:7443");
	snprintf(fz.ctl.ca_pin_str, sizeof(fz.ctl.ca_pin_str), "sha256:%064d", 0);
	sky_sha256(FZ_ADMIN, strlen(FZ_ADMIN), fz.ctl.admin_hash);
	sky_sha256(FZ_READER, strlen(FZ_READER), fz.ctl.reader_hash);
	fz.ctl.has_reader = true;
	fz_ctl_store_open(&fz.ctl, dir, fz.signing_key);
	if (fresh) {
		/* The tokens are the credentials 'admin' and 'reader' (creds.h),
		 * as skyrootd's state load makes them. */
		if (creds_import(fz.ctl.db, "admin", CREDS_ADMIN, fz.ctl.admin_hash, false, 1) != 0 ||
		    creds_import(fz.ctl.db, "reader", CREDS_READER, fz.ctl.reader_hash, false, 1) != 0)
			abort();
		/* Fixed ids (they are random) so that seeds can name them. */
		fz_ctl_image(&fz.ctl, "vmlinuz", "kernel", kernel, sizeof(kernel), "img-00000000f022", &img);
		if (db_board_insert(fz.ctl.db, &b) != 0)
			abort();
		sky_sha256(FZ_BOOT_TOKEN, strlen(FZ_BOOT_TOKEN), hash);
		if (db_token_insert(fz.ctl.db, &t, hash) != 0)
			abort();
	}
	if (guests_open(fz.ctl.db, fz.ctl.store, &fz.ctl.guests) != 0 || boots_open(fz.ctl.db, &fz.ctl.boots) != 0 ||
	    events_open(fz.ctl.db, &fz.loop, 0, &fz.ctl.events) != 0 ||
	    consoles_start(&fz.loop, fz.ctl.db, fz.ctl.guests, NULL, &fz.ctl.consoles) != 0)
		abort();
	guests_set_events(fz.ctl.guests, fz.ctl.events); /* GET /v1/events lists and watches them */
	if (fresh) {
		if (guests_create(fz.ctl.guests, &gr, &gs, err, sizeof(err)) != 0)
			abort();
		fz_ctl_rename(&fz.ctl, "UPDATE guests SET id = ?1 WHERE id = ?2", "gst-00000000f022", gs.id,
			      sizeof(gs.id));
	}
}

static void fz_state_close(void)
{
	consoles_stop(fz.ctl.consoles);
	guests_close(fz.ctl.guests);
	events_close(fz.ctl.events);
	uv_run(&fz.loop, UV_RUN_NOWAIT); /* its handles close */
	boots_free(fz.ctl.boots); /* its statements before the store's connection */
	store_close(fz.ctl.store);
	db_close(fz.ctl.db);
	memset(&fz.ctl, 0, sizeof(fz.ctl));
}

static void fz_state_free(void)
{
	if (!fz.ready)
		return;
	fz_state_close();
	fz_ctl_rm_tree(fz.dir);
	fz.ready = false;
}

/* A copy of the template: every input that changes the store is
 * followed by a fresh one, so each starts from the same state. */
static void fz_state_new(void)
{
	char from[128], to[128];

	snprintf(fz.dir, sizeof(fz.dir), "%s/fuzz-rest-XXXXXX", fz.tmp);
	if (!mkdtemp(fz.dir))
		abort();
	snprintf(from, sizeof(from), "%s/skyroot.db", fz.tpl);
	snprintf(to, sizeof(to), "%s/skyroot.db", fz.dir);
	fz_copy_file(from, to);
	fz_state_open(fz.dir, false);
	fz.ready = true;
}

static void fz_cleanup(void)
{
	fz_state_free();
	fz_ctl_rm_tree(fz.tpl);
}

static void fz_setup(void)
{
	sky_log_init("fuzz", SKY_LOG_NONE);
	fz.signing_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!fz.signing_key || uv_loop_init(&fz.loop) != 0)
		abort();
	fz_ctl_ca(&fz.ca_key, &fz.ca_cert);
	/* In memory when it can be: a fresh store is made often, and its
	 * fsyncs would take most of the time on a disk. */
	fz.tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(fz.tpl, sizeof(fz.tpl), "%s/fuzz-rest-tpl-XXXXXX", fz.tmp);
	if (!mkdtemp(fz.tpl))
		abort();
	atexit(fz_cleanup);
	snprintf(fz.fw_dir, sizeof(fz.fw_dir), "%s/fw", fz.tpl);
	if (mkdir(fz.fw_dir, 0700) != 0)
		abort();
	fz_write_file(fz.fw_dir, "vmlinuz", "firmware kernel\n");
	fz_write_file(fz.fw_dir, "initrd.img", "firmware initrd\n");
	fz_write_file(fz.fw_dir, "cmdline", "console=ttyS0 quiet\n");
	fz_state_open(fz.tpl, true);
	fz_state_close();
}

/* ---- the transport: keeps what is written ---- */

struct fz_transport {
	uint8_t *out;
	size_t len;
	size_t writes;
	bool closed;
	bool full;
};

static int fz_write(void *t, const void *data, size_t len)
{
	struct fz_transport *x = t;

	if (x->closed)
		return -ENOTCONN;
	if (x->writes == 0 && (len < 9 || memcmp(data, "HTTP/1.1 ", 9) != 0))
		abort(); /* the first bytes sent are a status line */
	x->writes++;
	/* Beyond the buffer nothing is kept, not even a later short write:
	 * what is kept is a whole prefix of the answers. */
	if (!x->full && x->len + len <= FZ_OUT_MAX) {
		memcpy(x->out + x->len, data, len);
		x->len += len;
	} else {
		x->full = true;
	}
	return 0;
}

static size_t fz_queued(void *t)
{
	(void)t;
	return 0;
}

static void fz_close(void *t, int err)
{
	(void)err;
	((struct fz_transport *)t)->closed = true;
}

static void fz_set_idle(void *t, uint64_t ms)
{
	(void)t;
	(void)ms;
}

static const struct http_transport fz_tp = {
	.write = fz_write, .queued = fz_queued, .close = fz_close, .abort = fz_close, .set_idle = fz_set_idle,
};

/* Every iPXE script in the answers carries the valid enrollment token
 * ("#!ipxe" is written nowhere else: JSON escapes its newline). */
static bool fz_scripts_ok(const uint8_t *out, size_t n)
{
	static const char start[] = "#!ipxe\n", end[] = "\nboot\n",
			  token[] = " skyroot.token=" FZ_BOOT_TOKEN " skyroot.ca=";
	const uint8_t *p = out, *stop = out + n, *e;

	while ((p = memmem(p, (size_t)(stop - p), start, sizeof(start) - 1)) != NULL) {
		e = memmem(p, (size_t)(stop - p), end, sizeof(end) - 1);
		if (!e || !memmem(p, (size_t)(e - p), token, sizeof(token) - 1))
			return false;
		p = e;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[FZ_OUT_MAX];
	struct fz_transport t = { .out = out };
	struct api *api;
	struct http_conn *c;
	bool boot_only, admin;
	size_t piece;
	int64_t changes;

	if (!fz.signing_key)
		fz_setup();
	if (size == 0)
		return 0;
	if (!fz.ready)
		fz_state_new();
	boot_only = data[0] & 1;
	piece = (size_t)(data[0] >> 1) * 13 + 1;
	data++;
	size--;
	admin = memmem(data, size, FZ_ADMIN, strlen(FZ_ADMIN)) != NULL;
	changes = fz_total_changes() - fz_audit_rows();

	/* A new API each time: wrong-token delays are per address. */
	if (api_open(&fz.ctl, boot_only, NULL, &api) != 0)
		abort();
	if (http_conn_new(api->http, &fz_tp, &t, &c) != 0)
		abort();
	for (size_t off = 0; off < size && !t.closed; off += piece) {
		size_t n = size - off < piece ? size - off : piece;
		http_conn_feed(c, data + off, n);
		http_conn_drained(c); /* everything was written at once */
		uv_run(&fz.loop, UV_RUN_NOWAIT);
	}
	for (int i = 0; i < 64 && !t.closed; i++) {
		http_conn_drained(c); /* firmware files go as the client takes them */
		uv_run(&fz.loop, UV_RUN_NOWAIT);
	}
	http_conn_closed(c, t.closed ? 0 : -ECONNRESET);
	api_stop(api);
	uv_run(&fz.loop, UV_RUN_NOWAIT); /* the API's timer handle closes */

	if (getenv("FUZZ_REST_SHOW"))
		fwrite(out, 1, t.len, stderr); /* to see what a seed reaches */
	if (fz.ctl.boot_downloads != 0)
		abort(); /* a slot kept by a connection that is gone */
	/* A script carries the token it was asked with, only a valid one. */
	if (!fz_scripts_ok(out, t.len))
		abort();
	/* The audit log grows with refused calls: that is no change. */
	if (fz_total_changes() - fz_audit_rows() != changes) {
		if (!admin)
			abort(); /* the store changed without the admin token */
		fz_state_free(); /* the next input starts from the same store */
	}
	return 0;
}
