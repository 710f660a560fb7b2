/* Network boot (/boot/ipxe, /boot/vmlinuz, /boot/initrd.img) and /healthz.
 *
 * Firmware that boots from the network (iPXE) fetches a script, then the
 * kernel and initrd.  On the plain boot listener that is HTTP: firmware
 * cannot check our CA.  The script carries the board's command line with
 * an enrollment token; the CA pin in it still protects the board from a
 * controller that is not ours.  The files are the public firmware image;
 * nothing here needs the admin token.  A script asked for over the HTTPS
 * API port points at that port over https. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"

#define API_BOOT_FILE_MAX (4ull << 30)
/* What one download holds in memory: one piece read, queued, sent. */
#define API_BOOT_PIECE (64u * 1024u)
#define API_BOOT_DEFAULT_CMDLINE "console=ttyS0 intel_iommu=on iommu=pt panic=-1"

/* A firmware file going out: read a piece only once the last one has
 * gone to the kernel, so a client that reads nothing costs one piece. */
struct api_boot_dl {
	int fd;
	uint64_t off, left;
};

static void api_boot__done(struct api *api, struct api_conn_state *st)
{
	close(st->boot->fd);
	free(st->boot);
	st->boot = NULL;
	api->ctl->boot_downloads--;
}

void api_boot_conn_gone(struct api *api, struct api_conn_state *st)
{
	if (st->boot)
		api_boot__done(api, st);
}

void api_boot_writable(struct api *api, struct http_conn *c)
{
	/* The loop is single-threaded: one buffer serves every download
	 * (the transport copies what it queues). */
	static uint8_t piece[API_BOOT_PIECE];
	struct api_conn_state *st = http_conn_user(c);
	struct api_boot_dl *dl = st ? st->boot : NULL;
	ssize_t n;

	if (!dl)
		return;
	if (dl->left == 0) {
		api_boot__done(api, st);
		http_body_end(c);
		return;
	}
	n = pread(dl->fd, piece, dl->left < sizeof(piece) ? (size_t)dl->left : sizeof(piece), (off_t)dl->off);
	if (n <= 0) {
		log_error("api: reading a firmware file for network boot failed at byte %llu: %s",
			  (unsigned long long)dl->off, n < 0 ? strerror(errno) : "it got shorter");
		api_boot__done(api, st);
		http_conn_close(c, -EIO);
		return;
	}
	dl->off += (uint64_t)n;
	dl->left -= (uint64_t)n;
	if (http_body_write(c, piece, (size_t)n) < 0) {
		api_boot__done(api, st);
		return;
	}
	if (dl->left == 0) {
		api_boot__done(api, st);
		http_body_end(c);
	}
}

static void api_boot__file(struct api_call *call, const char *name, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	const char *dir = ctl->opt.firmware_dir;
	struct api_conn_state *st;
	struct api_boot_dl *dl;
	char path[4200];
	struct stat sb;
	int fd, r;

	if (!dir) {
		api_reply_error(rep, 404, "not_found",
				"this controller serves no firmware: start skyrootd with --firmware DIR "
				"(the output of fwimage/build.sh)");
		return;
	}
	if (ctl->boot_downloads >= ctl->opt.boot_downloads_max) {
		api_reply_error(rep, 503, "busy",
				"%u firmware downloads are under way, the controller's limit "
				"(--boot-downloads-max); retry in a few seconds", ctl->boot_downloads);
		rep->headers = "Retry-After: 5\r\n";
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > API_BOOT_FILE_MAX) {
		log_error("api: cannot read %s for network boot: %s", path,
			  fd < 0 ? strerror(errno) : "not a regular file of at most 4 GiB");
		if (fd >= 0)
			close(fd);
		api_reply_error(rep, 404, "not_found", "the firmware's %s is missing on the controller; see its log",
				name);
		return;
	}
	st = api_conn_state(call->conn);
	dl = st ? calloc(1, sizeof(*dl)) : NULL;
	if (!dl) {
		close(fd);
		api_reply_internal(rep, -ENOMEM, "send a firmware file");
		return;
	}
	dl->fd = fd;
	dl->left = (uint64_t)sb.st_size;
	rep->status = 0; /* answered */
	r = http_body_begin(call->conn, 200, "application/octet-stream", dl->left, NULL);
	if (r != 0) {
		close(fd);
		free(dl);
		return;
	}
	/* The first piece goes once the head has gone (http_ops.writable). */
	st->boot = dl;
	ctl->boot_downloads++;
}

static void api__boot_vmlinuz(struct api_call *call, struct api_reply *rep)
{
	api_boot__file(call, "vmlinuz", rep);
}

static void api__boot_initrd(struct api_call *call, struct api_reply *rep)
{
	api_boot__file(call, "initrd.img", rep);
}

static void api__boot_ipxe(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	const struct http_request *req = call->req;
	/* Over TLS the files come from the same port, over https. */
	const char *scheme = req->tls ? "https" : "http";
	char token[160], host[256], cmdline[1024] = API_BOOT_DEFAULT_CMDLINE, script[4096];
	char path[4200], *extra = NULL;
	uint8_t hash[32];
	int n, r;

	if (api_json_query_get(req->query, req->query_len, "token", token, sizeof(token)) < 0) {
		api_reply_error(rep, 400, "bad_request",
				"GET /boot/ipxe?token=TOKEN with an enrollment token from 'skyctl token create'");
		return;
	}
	sky_sha256(token, strlen(token), hash);
	r = db_token_check(ctl->db, hash, sky_unix_now());
	if (r < 0) {
		api_reply_error(rep, 403, "forbidden",
				"the enrollment token is unknown, expired, revoked or used up; create one with "
				"'skyctl token create'");
		return;
	}
	/* The board reached us by the Host it asked for. */
	if (!req->host || req->host_len >= sizeof(host) || memchr(req->host, ' ', req->host_len) ||
	    memchr(req->host, '\0', req->host_len)) {
		api_reply_error(rep, 400, "bad_request", "the request has no usable Host header");
		return;
	}
	snprintf(host, sizeof(host), "%.*s", (int)req->host_len, req->host);
	if (ctl->opt.firmware_dir) {
		snprintf(path, sizeof(path), "%s/cmdline", ctl->opt.firmware_dir);
		if (sky_read_file(path, 900, &extra, NULL) == 0) {
			extra[strcspn(extra, "\r\n")] = '\0';
			if (extra[0])
				snprintf(cmdline, sizeof(cmdline), "%s", extra);
			free(extra);
		}
	}
	n = snprintf(script, sizeof(script),
		     "#!ipxe\n"
		     "echo Skyroot: network boot from %s://%s\n"
		     "kernel %s://%s/boot/vmlinuz initrd=initrd.img %s skyroot.controller=%s skyroot.token=%s skyroot.ca=%s\n"
		     "initrd %s://%s/boot/initrd.img\n"
		     "boot\n",
		     scheme, host, scheme, host, cmdline, ctl->advertise, token, ctl->ca_pin_str, scheme, host);
	if (n < 0 || (size_t)n >= sizeof(script)) {
		api_reply_internal(rep, -ENAMETOOLONG, "write the boot script");
		return;
	}
	log_info("boot: iPXE script for a board at %s (%s)", host, scheme);
	http_respond_raw(call->conn, 200, "text/plain", script, (size_t)n);
	OPENSSL_cleanse(script, sizeof(script));
	OPENSSL_cleanse(token, sizeof(token));
	rep->status = 0;
}

static void api__healthz(struct api_call *call, struct api_reply *rep)
{
	(void)call;
	api_reply_ok(rep, 200, json_pack("{s:s, s:s}", "status", "ok", "version", SKY_VERSION));
}

const struct api_route api_boot_routes[] = {
	{ .path = "/healthz", API_ALLOW("GET"), .get = api__healthz, .get_s = { .request = NULL, .answer = API_MSG(health) },
	  .summary = "Liveness (no token)" },
	{ .path = "/boot/ipxe", API_ALLOW("GET"), .get = api__boot_ipxe,
	  .get_s = { .media = "text/plain" }, .summary = "iPXE script for network boot (no token; text)" },
	{ .path = "/boot/vmlinuz", API_ALLOW("GET"), .get = api__boot_vmlinuz,
	  .get_s = { .media = "application/octet-stream" }, .summary = "Firmware kernel (no token; bytes)" },
	{ .path = "/boot/initrd.img", API_ALLOW("GET"), .get = api__boot_initrd,
	  .get_s = { .media = "application/octet-stream" }, .summary = "Firmware initrd (no token; bytes)" },
	{ .path = NULL },
};
