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
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"

#define API_BOOT_FILE_MAX (256u << 20)
#define API_BOOT_DEFAULT_CMDLINE "console=ttyS0 intel_iommu=on iommu=pt panic=-1"

static void api_boot__file(struct api_call *call, const char *name, struct api_reply *rep)
{
	const char *dir = call->ctl->opt.firmware_dir;
	char path[4200];
	char *data = NULL;
	size_t len = 0;
	int r;

	if (!dir) {
		api_reply_error(rep, 404, "not_found",
				"this controller serves no firmware: start skyrootd with --firmware DIR "
				"(the output of fwimage/build.sh)");
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	r = sky_read_file(path, API_BOOT_FILE_MAX, &data, &len);
	if (r < 0) {
		log_error("api: cannot read %s for network boot: %s", path, strerror(-r));
		api_reply_error(rep, 404, "not_found", "the firmware's %s is missing on the controller; see its log",
				name);
		return;
	}
	http_respond_raw(call->conn, 200, "application/octet-stream", data, len);
	free(data);
	rep->status = 0; /* answered */
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
	{ .path = "/healthz", API_ALLOW("GET"), .get = api__healthz },
	{ .path = "/boot/ipxe", API_ALLOW("GET"), .get = api__boot_ipxe },
	{ .path = "/boot/vmlinuz", API_ALLOW("GET"), .get = api__boot_vmlinuz },
	{ .path = "/boot/initrd.img", API_ALLOW("GET"), .get = api__boot_initrd },
	{ .path = NULL },
};
