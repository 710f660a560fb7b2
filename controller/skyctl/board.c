/* skyctl board: the fleet (list, show, delete) and bare-metal boot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyctl/events.h"
#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

#define BOARD_BOOT_TIMEOUT 30   /* seconds 'board boot' waits for it by default */

static void board__row(json_t *b, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	json_t *seen = json_object_get(b, "last_seen_at");

	cells[0] = skyctl_jstr(b, "id", "-");
	cells[1] = skyctl_jstr(b, "name", "-");
	cells[2] = skyctl_jstr(b, "state", "-");
	if (json_is_string(json_object_get(b, "reenroll"))) { /* a re-enrollment waits for an operator */
		snprintf(scratch[2], SKYCTL_CELL_MAX, "%s, re-enroll %s", cells[2], skyctl_jstr(b, "reenroll", "-"));
		cells[2] = scratch[2];
	}
	cells[3] = skyctl_jint(b, "cpus", scratch[3], SKYCTL_CELL_MAX);
	cells[4] = skyctl_jbytes(b, "memory_bytes", scratch[4], SKYCTL_CELL_MAX);
	cells[5] = skyctl_jbool(b, "kvm", "yes", "no");
	cells[6] = skyctl_jstr(b, "firmware", "-");
	cells[7] = skyctl_jcount(b, "iommu_groups", scratch[7], SKYCTL_CELL_MAX);
	cells[8] = skyctl_jcount(b, "nics", scratch[8], SKYCTL_CELL_MAX);
	cells[9] = json_is_string(seen) ? json_string_value(seen) : "never";
	/* -o wide */
	cells[10] = skyctl_jstr(b, "uuid", "-");
	cells[11] = skyctl_jstr(b, "cpu_model", "-");
	cells[12] = skyctl_jstr(b, "kernel", "-");
	cells[13] = skyctl_jstr(b, "agent_version", "-");
	cells[14] = skyctl_jstr(b, "cert_expires_at", "-");
}

/* board list --pending: the boards that enrolled with no token. */
static void board__pending_row(json_t *p, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	json_t *macs = json_object_get(p, "macs"), *m;
	const char *key = skyctl_jstr(p, "key_sha256", "-");
	size_t i, n = 0;

	cells[0] = skyctl_jstr(p, "id", "-");
	cells[1] = skyctl_jstr(p, "state", "-");
	cells[2] = skyctl_jstr(p, "serial", "-");
	cells[3] = skyctl_jstr(p, "uuid", "-");
	scratch[4][0] = '\0';
	json_array_foreach(macs, i, m)
		if (json_is_string(m) && n < SKYCTL_CELL_MAX)
			n += (size_t)snprintf(scratch[4] + n, SKYCTL_CELL_MAX - n, "%s%s", i ? "," : "", json_string_value(m));
	cells[4] = scratch[4][0] ? scratch[4] : "-";
	/* The whole fingerprint: the operator compares it with the board's log. */
	snprintf(scratch[5], SKYCTL_CELL_MAX, "sha256:%s", key);
	cells[5] = scratch[5];
	cells[6] = skyctl_jstr(p, "last_seen_at", "-");
	/* -o wide */
	cells[7] = skyctl_jstr(p, "hostname", "-");
	cells[8] = skyctl_jstr(p, "peer", "-");
	cells[9] = skyctl_jstr(p, "first_seen_at", "-");
	cells[10] = skyctl_jstr(p, "expires_at", "-");
	cells[11] = skyctl_jstr(p, "board", "-"); /* an enrolled board claims this UUID */
}

static int board__list(struct skyctl *ctl, const char *arg)
{
	static const char *const pending_header[] = {
		"ID", "STATE", "SERIAL", "UUID", "MACS", "KEY", "LAST-SEEN", "HOSTNAME", "PEER", "FIRST-SEEN", "EXPIRES",
		"BOARD",
	};
	static const struct skyctl_list pending = {
		.path = "/v1/pending", .key = "pending", .header = pending_header, .ncols = 12, .nwide = 5,
		.row = board__pending_row,
		.empty = "No boards wait: a board booted with the CA pin and no token shows up here.",
	};
	static const char *const header[] = {
		"ID", "NAME", "STATE", "CPUS", "MEMORY", "KVM", "FIRMWARE", "IOMMU-GROUPS", "NICS", "LAST-SEEN",
		"UUID", "CPU-MODEL", "KERNEL", "AGENT", "CERT-UNTIL",
	};
	static const struct skyctl_list list = {
		.path = "/v1/boards", .key = "boards", .header = header, .ncols = 15, .nwide = 5, .row = board__row,
		.empty = "No boards enrolled; make a token with 'skyctl token create' and boot a board "
			 "with its kernel command line, or boot it with the CA pin only and accept it "
			 "('skyctl board list --pending').",
	};

	if (skyctl_has(ctl->opts, FLAG_PENDING))
		return skyctl_verb_list(ctl, &pending);
	return skyctl_verb_list(ctl, &list);
}

static void board__show_groups(json_t *board)
{
	json_t *groups = json_object_get(board, "iommu_groups"), *g, *dev;
	char buf[32];
	size_t i, j;

	if (!json_is_array(groups) || json_array_size(groups) == 0) {
		skyctl_field("IOMMU groups", json_is_array(groups) ? "none (is the IOMMU on? intel_iommu=on)" : "-");
		return;
	}
	skyctl_field("IOMMU groups", skyctl_jcount(board, "iommu_groups", buf, sizeof(buf)));
	json_array_foreach(groups, i, g) {
		json_t *devices = json_object_get(g, "devices");
		printf("  group %s:\n", skyctl_jint(g, "id", buf, sizeof(buf)));
		json_array_foreach(devices, j, dev) {
			fputs("    ", stdout);
			skyctl_put_clean(stdout, skyctl_jstr(dev, "address", "-"));
			fputs("  ", stdout);
			skyctl_put_clean(stdout, skyctl_jstr(dev, "vendor_device", "-"));
			fputs("  class ", stdout);
			skyctl_put_clean(stdout, skyctl_jstr(dev, "class", "-"));
			fputs("  driver ", stdout);
			skyctl_put_clean(stdout, skyctl_jstr(dev, "driver", "(none)"));
			fputc('\n', stdout);
		}
	}
}

/* A known machine asked to enroll again with a general token. */
static void board__show_reenroll(json_t *b)
{
	const char *state = json_string_value(json_object_get(b, "reenroll"));
	char text[160];

	if (state == NULL)
		return;
	if (strcmp(state, "pending") == 0)
		snprintf(text, sizeof(text), "pending since %s: allow it once with 'skyctl board reenroll-allow'",
			 skyctl_jstr(b, "reenroll_requested_at", "-"));
	else
		snprintf(text, sizeof(text), "%s until %s", state, skyctl_jstr(b, "reenroll_expires_at", "-"));
	skyctl_field("Re-enrollment", text);
}

/* The board's TPM identity: the EK bound, the last good quote, the last
 * refusal of a TPM claiming its machine. */
static void board__show_tpm(json_t *b)
{
	json_t *t = json_object_get(b, "tpm");
	char text[400];

	if (!json_is_object(t)) {
		skyctl_field("TPM", "no TPM (the board enrolled without one, or before one was used): the "
			     "measured-boot gate does not judge it");
		return;
	}
	if (json_is_string(json_object_get(t, "ek_sha256"))) {
		snprintf(text, sizeof(text), "EK sha256:%.64s, bound %.40s", skyctl_jstr(t, "ek_sha256", "-"),
			 skyctl_jstr(t, "bound_at", "-"));
		skyctl_field("TPM", text);
		skyctl_field("Last good quote", skyctl_jstr(t, "last_quote_at", "-"));
		skyctl_field("PCR 11", skyctl_jstr(t, "pcr11", "- (none verified yet)"));
		if (json_is_string(json_object_get(t, "quarantined")))
			skyctl_field("Quarantined", skyctl_jstr(t, "quarantined", "-"));
		else
			skyctl_field("Allowed firmware",
				     skyctl_jstr(t, "firmware", "none needed (no firmware allowed: the gate is off)"));
	} else {
		skyctl_field("TPM", "none bound");
	}
	if (json_is_string(json_object_get(t, "refused"))) {
		snprintf(text, sizeof(text), "%.40s: %.300s", skyctl_jstr(t, "refused_at", "-"),
			 skyctl_jstr(t, "refused", "-"));
		skyctl_field("TPM refused", text);
	}
}

/* "br0 over eth0: up, uplink link up, VLAN filtering on" or "none". */
static void board__show_bridge(json_t *board)
{
	json_t *b = json_object_get(board, "bridge");
	char line[256];

	if (!json_is_object(b)) {
		skyctl_field("Bridge", "none (guests' NICs need the firmware's br0)");
		return;
	}
	snprintf(line, sizeof(line), "%.32s over %.32s: %s, uplink %s, VLAN filtering %s", skyctl_jstr(b, "name", "-"),
		 skyctl_jstr(b, "uplink", "-"), skyctl_jbool(b, "up", "up", "down"),
		 skyctl_jbool(b, "uplink_link", "link up", "link down"), skyctl_jbool(b, "vlan_filtering", "on", "off"));
	skyctl_field("Bridge", line);
}

static int board__show_nics(json_t *board)
{
	board__show_bridge(board);
	json_t *nics = json_object_get(board, "nics"), *nic;
	struct skyctl_table t = { 0 };
	char buf[32];
	size_t i;
	int r;

	if (!json_is_array(nics) || json_array_size(nics) == 0) {
		skyctl_field("NICs", json_is_array(nics) ? "none" : "-");
		return 0;
	}
	skyctl_field("NICs", skyctl_jcount(board, "nics", buf, sizeof(buf)));
	r = skyctl_table_init(&t, 5, json_array_size(nics));
	json_array_foreach(nics, i, nic) {
		char speed[48];
		json_t *mbps = json_object_get(nic, "speed_mbps");
		if (json_is_integer(mbps) && json_integer_value(mbps) > 0)
			snprintf(speed, sizeof(speed), "%" JSON_INTEGER_FORMAT " Mb/s", json_integer_value(mbps));
		else
			snprintf(speed, sizeof(speed), "speed unknown");
		const char *row[] = {
			skyctl_jstr(nic, "name", "-"),
			skyctl_jstr(nic, "mac", "-"),
			skyctl_jbool(nic, "link", "link up", "link down"),
			speed,
			json_is_string(json_object_get(nic, "bridge")) ? skyctl_jstr(nic, "bridge", "") : "",
		};
		if (r == 0)
			r = skyctl_table_add(&t, row);
	}
	if (r == 0)
		skyctl_table_print(&t, stdout, 2);
	else
		skyctl_err("out of memory");
	skyctl_table_free(&t);
	return r;
}

/* What the board holds in RAM, and fetches under way or failed; each part
 * only when the controller sends it. */
static int board__show_images(json_t *board)
{
	json_t *images = json_object_get(board, "images");
	json_t *fetching = json_object_get(board, "fetching");
	json_t *errors = json_object_get(board, "image_errors");
	struct skyctl_table t = { 0 };
	json_t *e;
	char buf[32];
	size_t i;
	int r = 0;

	if (json_is_array(images) && json_array_size(images) == 0)
		skyctl_field("Images", "none");
	if (json_is_array(images) && json_array_size(images) > 0) {
		skyctl_field("Images", skyctl_jcount(board, "images", buf, sizeof(buf)));
		r = skyctl_table_init(&t, 3, json_array_size(images));
		json_array_foreach(images, i, e) {
			char size[32], sha[SKYCTL_SHA_PREFIX + 16];
			snprintf(sha, sizeof(sha), "sha256 %.*s", SKYCTL_SHA_PREFIX, skyctl_jstr(e, "sha256", "-"));
			const char *row[] = {
				skyctl_jstr(e, "id", "-"),
				skyctl_jbytes(e, "size_bytes", size, sizeof(size)),
				sha,
			};
			if (r == 0)
				r = skyctl_table_add(&t, row);
		}
		if (r == 0)
			skyctl_table_print(&t, stdout, 2);
		skyctl_table_free(&t);
	}
	if (r == 0 && json_is_array(fetching) && json_array_size(fetching) > 0) {
		skyctl_field("Fetching", skyctl_jcount(board, "fetching", buf, sizeof(buf)));
		r = skyctl_table_init(&t, 2, json_array_size(fetching));
		json_array_foreach(fetching, i, e) {
			char done[32], all[32], line[80];
			snprintf(line, sizeof(line), "%s/%s chunks", skyctl_jint(e, "done_chunks", done, sizeof(done)),
				 skyctl_jint(e, "chunks", all, sizeof(all)));
			const char *row[] = { skyctl_jstr(e, "id", "-"), line };
			if (r == 0)
				r = skyctl_table_add(&t, row);
		}
		if (r == 0)
			skyctl_table_print(&t, stdout, 2);
		skyctl_table_free(&t);
	}
	if (r == 0 && json_is_array(errors) && json_array_size(errors) > 0) {
		skyctl_field("Failed fetches", skyctl_jcount(board, "image_errors", buf, sizeof(buf)));
		json_array_foreach(errors, i, e) {
			fputs("  ", stdout);
			skyctl_put_clean(stdout, skyctl_jstr(e, "id", "-"));
			fputs("  ", stdout);
			skyctl_put_clean(stdout, skyctl_jstr(e, "error", "no reason given"));
			fputc('\n', stdout);
		}
	}
	if (r < 0)
		skyctl_err("out of memory");
	return r;
}

/* The last bare-metal boot order and the board's answer, when there is one. */
static void board__show_boot(json_t *board)
{
	json_t *boot = json_object_get(board, "boot");
	char line[1024];

	if (!json_is_object(boot))
		return;
	snprintf(line, sizeof(line), "%s (kernel %s, %s)%s%s", skyctl_jstr(boot, "state", "-"),
		 skyctl_jstr(boot, "kernel", "-"), skyctl_jstr(boot, "updated_at", "-"),
		 json_is_string(json_object_get(boot, "error")) ? ": " : "", skyctl_jstr(boot, "error", ""));
	skyctl_field("Bare-metal boot", line);
}

static int board__show(struct skyctl *ctl, const char *arg)
{
	json_t *answer = NULL, *b, *flags, *dmi, *f;
	char buf[64], mem[32], line[512];
	size_t i, n;
	int r;

	r = skyctl_request(ctl, "GET", "/v1/boards", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (skyctl_as_data(ctl->opts)) {
		r = skyctl_print_answer(ctl->opts, answer);
		goto done;
	}
	b = answer;
	skyctl_field("ID", skyctl_jstr(b, "id", "-"));
	skyctl_field("Name", skyctl_jstr(b, "name", "-"));
	skyctl_field("State", skyctl_jstr(b, "state", "-"));
	skyctl_field("Hostname", skyctl_jstr(b, "hostname", "-"));
	skyctl_field("UUID", skyctl_jstr(b, "uuid", "-"));
	/* Before the board's first inventory most fields are null: "-". */
	if (json_is_integer(json_object_get(b, "cpus")))
		snprintf(line, sizeof(line), "%s (%s)", skyctl_jint(b, "cpus", buf, sizeof(buf)),
			 skyctl_jstr(b, "cpu_model", "unknown model"));
	else
		snprintf(line, sizeof(line), "-");
	skyctl_field("CPUs", line);

	flags = json_object_get(b, "virt_flags");
	n = 0;
	line[0] = '\0';
	json_array_foreach(flags, i, f) {
		const char *s = json_string_value(f);
		int w;
		if (s == NULL)
			continue;
		w = snprintf(line + n, sizeof(line) - n, "%s%s", n ? " " : "", s);
		if (w < 0 || (size_t)w >= sizeof(line) - n)
			break;
		n += (size_t)w;
	}
	skyctl_field("Virtualization", json_is_array(flags) ? (n ? line : "none") : "-");

	json_t *mv = json_object_get(b, "memory_bytes");
	if (json_is_integer(mv))
		snprintf(line, sizeof(line), "%s (%" JSON_INTEGER_FORMAT " bytes)",
			 skyctl_jbytes(b, "memory_bytes", mem, sizeof(mem)), json_integer_value(mv));
	else
		snprintf(line, sizeof(line), "-");
	skyctl_field("Memory", line);
	skyctl_field("NUMA nodes", skyctl_jint(b, "numa_nodes", buf, sizeof(buf)));
	skyctl_field("KVM", skyctl_jbool(b, "kvm", "yes", "no (no /dev/kvm on the board)"));
	skyctl_field("Firmware", skyctl_jstr(b, "firmware", "-"));
	dmi = json_object_get(b, "dmi");
	skyctl_field("DMI vendor", skyctl_jstr(dmi, "vendor", "-"));
	skyctl_field("DMI product", skyctl_jstr(dmi, "product", "-"));
	skyctl_field("DMI serial", skyctl_jstr(dmi, "serial", "-"));
	skyctl_field("Kernel", skyctl_jstr(b, "kernel", "-"));
	skyctl_field("Agent version", skyctl_jstr(b, "agent_version", "-"));
	skyctl_field("Enrolled", skyctl_jstr(b, "enrolled_at", "-"));
	skyctl_field("Certificate until", skyctl_jstr(b, "cert_expires_at", "-"));
	board__show_reenroll(b);
	board__show_tpm(b);
	skyctl_field("Last seen", skyctl_jstr(b, "last_seen_at", "never"));
	skyctl_field("Controller", skyctl_jstr(b, "controller", "-"));
	board__show_boot(b);
	board__show_groups(b);
	r = board__show_nics(b);
	if (r == 0)
		r = board__show_images(b);
done:
	json_decref(answer);
	return r;
}

static int board__delete(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/boards", arg, "deleted", "board");
}

static int board__reenroll_allow(struct skyctl *ctl, const char *arg)
{
	struct skyctl_req req = { .method = "POST", .path = "/v1/boards", .id = arg, .tail = "/reenroll-allow" };
	json_t *answer = NULL;
	int r = skyctl_call(ctl, &req, &answer);

	if (r < 0)
		return r;
	if (skyctl_as_data(ctl->opts)) {
		r = skyctl_print_answer(ctl->opts, answer);
	} else {
		fputs("board ", stdout);
		skyctl_put_clean(stdout, skyctl_jstr(answer, "board", arg));
		fputs(" may enroll again with a general token, once, until ", stdout);
		skyctl_put_clean(stdout, skyctl_jstr(answer, "reenroll_expires_at", "-"));
		fputs("\n", stdout);
		fprintf(stderr, "Its current certificates are revoked when it does.\n");
	}
	json_decref(answer);
	return r;
}

/* What 'board boot' follows: the board's id and words for messages, and
 * the controller's id of the order (the board's answer carries it). */
struct boot_wait {
	char board_id[SKYCTL_MAX_ID + 1];
	char board[2 * SKYCTL_MAX_ID + 8]; /* "node-a (brd-3f9a0c1d2e4b)", cleaned */
	const char *kernel;                 /* as given */
	json_int_t order;
};

/* "skyctl: board B <what> KERNEL: <the board's reason>; <hint>" on stderr. */
static void board__boot_say(const struct boot_wait *w, const char *what, json_t *boot, const char *hint)
{
	fprintf(stderr, "skyctl: board %s %s ", w->board, what);
	skyctl_put_clean(stderr, w->kernel);
	fputs(": ", stderr);
	skyctl_put_clean(stderr, skyctl_jstr(boot, "error", "no reason given"));
	fprintf(stderr, "; %s\n", hint);
}

/* What the board's events said of the order (board__boot_wait). */
struct boot_seen {
	const struct boot_wait *w;
	char state[16];               /* accepted, refused, failed, replaced, offline; "" */
	char reason[512];
};

static int board__boot_event(void *ud, json_t *e)
{
	struct boot_seen *b = ud;
	const char *type = skyctl_jstr(e, "type", ""), *req;
	json_t *d = json_object_get(e, "detail");

	if (strcmp(type, "board.offline") == 0) {
		snprintf(b->state, sizeof(b->state), "offline");
		return 1;
	}
	if (strncmp(type, "board.", 6) != 0 || strcmp(skyctl_jstr(d, "order", ""), "boot") != 0)
		return 0;
	req = skyctl_jstr(d, "request_id", "");
	if (strtoll(req, NULL, 10) != (long long)b->w->order) {
		/* Another order after this one replaced it. */
		if (strcmp(type, "board.boot_sent") == 0) {
			snprintf(b->state, sizeof(b->state), "replaced");
			return 1;
		}
		return 0;
	}
	if (strcmp(type, "board.boot") == 0)
		snprintf(b->state, sizeof(b->state), "accepted");
	else if (strcmp(type, "board.refused") == 0)
		snprintf(b->state, sizeof(b->state), "refused");
	else if (strcmp(type, "board.failed") == 0)
		snprintf(b->state, sizeof(b->state), "failed");
	else
		return 0; /* its own board.boot_sent */
	snprintf(b->reason, sizeof(b->reason), "%s", skyctl_jstr(d, "reason", "no reason given"));
	return 1;
}

/* Follow the board's events (from since, before the order) until it
 * accepted the order, refused it, failed it, went offline, or the time is
 * up.  On acceptance *out gets the board's "boot" object. */
static int board__boot_wait(struct skyctl *ctl, const struct boot_wait *w, int64_t since, json_t **out)
{
	const struct skyctl_opts *o = ctl->opts;
	char timeout[32];
	struct boot_seen b = { .w = w };
	struct skyctl_watch watch = {
		.kind = "board", .id = w->board_id, .since = since,
		.deadline_ms = skyctl_now_ms() + (skyctl_has(o, FLAG_TIMEOUT) ? o->timeout : BOARD_BOOT_TIMEOUT) * 1000,
		.event = board__boot_event, .ud = &b,
	};
	json_t *why, *board = NULL;
	int r;

	sky_format_duration(skyctl_has(o, FLAG_TIMEOUT) ? o->timeout : BOARD_BOOT_TIMEOUT, timeout, sizeof(timeout));
	r = skyctl_events_watch(ctl, &watch);
	if (r < 0) {
		skyctl_err("could not follow the boot; see 'skyctl board show %s'", w->board_id);
		return r;
	}
	if (watch.interrupted)
		return -EINTR;
	why = json_pack("{s:s}", "error", b.reason);
	if (strcmp(b.state, "accepted") == 0) {
		r = skyctl_request(ctl, "GET", "/v1/boards", w->board_id, NULL, &board);
		if (r < 0)
			skyctl_err("the board accepted the boot, but its state cannot be read; see 'skyctl board show %s'",
				   w->board_id);
		else
			*out = json_incref(json_object_get(board, "boot"));
	} else if (strcmp(b.state, "replaced") == 0) {
		skyctl_err("another boot order replaced this one on board %s; see 'skyctl board show %s'", w->board,
			   w->board_id);
		r = -ECANCELED;
	} else if (strcmp(b.state, "refused") == 0) {
		board__boot_say(w, "refused to boot", why,
				"nothing changed on the board (a board's agent kexecs only with --allow-kexec, "
				"which the firmware's init passes)");
		r = -EPERM;
	} else if (strcmp(b.state, "failed") == 0) {
		board__boot_say(w, "could not boot", why, "see the board's log and 'skyctl image verify'");
		r = -EIO;
	} else if (strcmp(b.state, "offline") == 0) {
		skyctl_err("board %s went offline before it answered the boot order; see 'skyctl board show "
			   "%s'", w->board, w->board_id);
		r = -ENOTCONN;
	} else {
		skyctl_err("board %s did not answer the boot order within %s (an agent older than this "
			   "skyctl does not answer); see 'skyctl board show %s', or wait longer with --timeout",
			   w->board, timeout, w->board_id);
		r = -ETIMEDOUT;
	}
	json_decref(why);
	json_decref(board);
	return r;
}

static int board__boot(struct skyctl *ctl, const char *arg)
{
	const struct skyctl_opts *o = ctl->opts;
	struct skyctl_req req = { .method = "POST", .path = "/v1/boards", .id = arg, .tail = "/boot" };
	static const struct skyctl_member members[] = {
		{ "kernel", FLAG_KERNEL, 0 }, { "initrd", FLAG_INITRD, 0 }, { "cmdline", FLAG_CMDLINE, 0 }, { NULL, 0, 0 },
	};
	json_t *request, *answer = NULL, *boot = NULL;
	struct boot_wait w = { .kernel = o->value[FLAG_KERNEL] };
	const char *s;
	int64_t since = 0;
	int r;

	if (skyctl_has(o, FLAG_WAIT) && skyctl_has(o, FLAG_NO_WAIT)) {
		skyctl_err("--wait (the default) and --no-wait contradict each other; give one");
		return -EINVAL;
	}
	/* What happens after now: the board's answer to this order. */
	if (!skyctl_has(o, FLAG_NO_WAIT) && (r = skyctl_events_now(ctl, &since)) < 0)
		return r;
	request = skyctl_body_make(o, NULL, arg, members);
	if (request == NULL)
		return -ENOMEM; /* said why */
	req.body = request;
	r = skyctl_call(ctl, &req, &answer);
	json_decref(request);
	if (r < 0)
		return r;
	s = json_string_value(json_object_get(answer, "board"));
	snprintf(w.board_id, sizeof(w.board_id), "%s", s != NULL && s[0] != '\0' ? s : arg);
	skyctl_clean_inplace(w.board_id);
	skyctl_name_for(w.board, sizeof(w.board), arg, w.board_id);
	if (skyctl_has(o, FLAG_NO_WAIT)) {
		if (skyctl_as_data(o)) {
			r = skyctl_print_answer(ctl->opts, answer);
			goto done;
		}
		printf("board %s was told to boot ", w.board);
		skyctl_put_clean(stdout, w.kernel);
		printf(" on bare metal; its answer shows in 'skyctl board show %s'\n", w.board_id);
		goto done;
	}
	if (!json_is_integer(json_object_get(json_object_get(answer, "boot"), "request_id"))) {
		r = skyctl_answer_lacks("boot order id");
		goto done;
	}
	w.order = json_integer_value(json_object_get(json_object_get(answer, "boot"), "request_id"));
	r = board__boot_wait(ctl, &w, since, &boot);
	if (r < 0)
		goto done;
	if (skyctl_as_data(o)) {
		r = skyctl_print_answer(ctl->opts, boot);
		goto done;
	}
	printf("board %s is booting ", w.board);
	skyctl_put_clean(stdout, w.kernel);
	fputs(" on bare metal (it accepted: it loads the images into RAM and kexecs)\n", stdout);
	fprintf(stderr, "Its state is 'baremetal' until its firmware comes back; a failure before the kexec "
			"shows in 'skyctl board show %s'.\n", w.board_id);
done:
	json_decref(boot);
	json_decref(answer);
	return r;
}

static const struct skyctl_flag_note board__boot_notes[] = {
	{ FLAG_KERNEL, NULL, "the kernel image the board streams into RAM and kexecs (id or name)" },
	{ FLAG_INITRD, NULL, "an initrd image for that kernel (id or name)" },
	{ FLAG_CMDLINE, NULL, "the new kernel's command line" },
	{ FLAG_NO_WAIT, NULL, "return once the board has been told, without waiting for its answer" },
	{ FLAG_WAIT, NULL,
	  "wait for the board's answer through the controller's events (the default): exit 0 when it accepts, 1 "
	  "with its reason when it refuses or fails" },
	{ FLAG_TIMEOUT, NULL, "how long to wait for the board's answer: 30s, 10m or seconds (default 30s)" },
	{ FLAG__COUNT, NULL, NULL },
};

static const struct skyctl_flag_note board__list_notes[] = {
	{ FLAG_STATE, "online|offline|baremetal|quarantined", "list only the boards in this state (with --pending: "
					      "pending|accepted|rejected)" },
	{ FLAG_PENDING, NULL, "list the boards that enrolled with no token instead: their claimed serial, UUID, "
			      "MACs and the fingerprint of their key" },
	{ FLAG__COUNT, NULL, NULL },
};

static int board__set(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_set(ctl, "/v1/boards", arg, "board");
}

static const struct skyctl_flag_note board__set_notes[] = {
	{ FLAG_NAME, NULL, "the board's new name (must not be taken)" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_board_commands[] = {
	{
		.noun = "board", .verb = "list",
		.flags = FLAGS_LIST | FLAG_BIT(FLAG_STATE) | FLAG_BIT(FLAG_PENDING),
		.notes = board__list_notes,
		.summary = "list enrolled boards (--pending: boards with no token waiting for an operator)",
		.example = "skyctl board list --no-headers",
		.run = board__list,
	},
	{
		.noun = "board", .verb = "set", .arg = "ID|NAME",
		.flags = FLAGS_SET,
		.notes = board__set_notes,
		.summary = "rename, label or describe a board",
		.example = "skyctl board set rack1-07 --label zone=eu-1 --description \"...\"",
		.run = board__set,
	},
	{
		.noun = "board", .verb = "show", .arg = "ID|NAME",
		.summary = "show a board: CPUs, memory, IOMMU groups, NICs, images in its RAM",
		.example = "skyctl board show rack1-07",
		.run = board__show,
	},
	{
		.noun = "board", .verb = "delete", .arg = "ID|NAME",
		.summary = "delete a board, revoke its certificate, close its session",
		.example = "skyctl board delete rack1-07",
		.run = board__delete,
	},
	{
		.noun = "board", .verb = "reenroll-allow", .arg = "ID|NAME",
		.summary = "let a known machine enroll again with a general token (once, within 15 minutes)",
		.example = "skyctl board reenroll-allow rack1-07",
		.run = board__reenroll_allow,
	},
	{
		.noun = "board", .verb = "boot", .arg = "ID|NAME",
		.flags = FLAG_BIT(FLAG_KERNEL) | FLAG_BIT(FLAG_INITRD) | FLAG_BIT(FLAG_CMDLINE) |
			 FLAG_BIT(FLAG_NO_WAIT) | FLAG_BIT(FLAG_WAIT) | FLAG_BIT(FLAG_TIMEOUT),
		.required = FLAG_BIT(FLAG_KERNEL),
		.summary = "kexec a board into another OS streamed to its RAM and wait for the board's answer "
			   "(bare metal; no disk touched)",
		.notes = board__boot_notes,
		.example = "skyctl board boot rack1-07 --kernel vmlinuz --initrd initrd --cmdline \"console=ttyS0\"",
		.run = board__boot,
	},
	{ 0 },
};
