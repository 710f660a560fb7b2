/* skyctl guest: KVM guests on boards (create, list, show, start, stop,
 * delete) and their serial consoles. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "controller/skyctl/events.h"
#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

#define GUEST_ERROR_COLUMNS 40 /* columns of a guest's error in 'guest list' */

/* "0000:00:03.0, 0000:00:04.0", "none" or "-". */
/* The guest's backend; "" is the board's default (qemu where its firmware
 * carries QEMU, else skyvmm). */
static const char *backend_words(json_t *g)
{
	const char *b = skyctl_jstr(g, "backend", "-");
	return b[0] ? b : "default";
}

static const char *guest__devices(json_t *obj, char *buf, size_t len)
{
	json_t *list = json_object_get(obj, "devices"), *d;
	size_t i, n = 0;

	if (!json_is_array(list))
		return "-";
	if (json_array_size(list) == 0)
		return "none";
	buf[0] = '\0';
	json_array_foreach(list, i, d) {
		int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", json_is_string(d) ? json_string_value(d) : "?");
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

/* For a table: the first device and how many more, "0000:00:03.0+2". */
static const char *guest__devices_short(json_t *obj, char *buf, size_t len)
{
	json_t *list = json_object_get(obj, "devices");
	const char *first = json_string_value(json_array_get(list, 0));

	if (!json_is_array(list))
		return "-";
	if (json_array_size(list) == 0)
		return "none";
	if (json_array_size(list) == 1)
		snprintf(buf, len, "%.64s", first ? first : "?");
	else
		snprintf(buf, len, "%.64s+%zu", first ? first : "?", json_array_size(list) - 1);
	return buf;
}



/* One line a NIC: "02:53:4b:0a:1b:2c on prod (VLAN 100)". */
static void guest__nics(json_t *g)
{
	json_t *list = json_object_get(g, "nics"), *n;
	char line[256], vlan[32];
	size_t i;

	if (!json_is_array(list) || json_array_size(list) == 0) {
		skyctl_field("NICs", json_is_array(list) ? "none" : "-");
		return;
	}
	json_array_foreach(list, i, n) {
		if (json_is_integer(json_object_get(n, "vlan")))
			snprintf(vlan, sizeof(vlan), "VLAN %" JSON_INTEGER_FORMAT,
				 json_integer_value(json_object_get(n, "vlan")));
		else
			snprintf(vlan, sizeof(vlan), "untagged");
		snprintf(line, sizeof(line), "%.17s on %.64s (%s)", skyctl_jstr(n, "mac", "-"),
			 skyctl_jstr(n, "network", "-"), vlan);
		skyctl_field(i == 0 ? "NICs" : "", line);
	}
}

/* The labelled lines of a GUEST. */
static void guest__print(json_t *g)
{
	json_t *mv = json_object_get(g, "memory_bytes");
	char buf[32], mem[32], line[256], devices[SKYCTL_MAX_DEVICES * 24];

	skyctl_field("ID", skyctl_jstr(g, "id", "-"));
	skyctl_field("Name", skyctl_jstr(g, "name", "-"));
	skyctl_field("Board", skyctl_jstr(g, "board", "-"));
	skyctl_field("State", skyctl_jstr(g, "state", "-"));
	skyctl_field("Desired", skyctl_jstr(g, "desired", "-"));
	skyctl_field("Backend", backend_words(g));
	skyctl_field("vCPUs", skyctl_jint(g, "vcpus", buf, sizeof(buf)));
	if (json_is_integer(mv))
		snprintf(line, sizeof(line), "%s (%" JSON_INTEGER_FORMAT " bytes)",
			 skyctl_jbytes(g, "memory_bytes", mem, sizeof(mem)), json_integer_value(mv));
	else
		snprintf(line, sizeof(line), "-");
	skyctl_field("Memory", line);
	skyctl_field("Kernel", skyctl_jopt(g, "kernel"));
	skyctl_field("Initrd", skyctl_jopt(g, "initrd"));
	skyctl_field("Disk", skyctl_jopt(g, "disk"));
	skyctl_field("Command line", skyctl_jopt(g, "cmdline"));
	skyctl_field("Devices", guest__devices(g, devices, sizeof(devices)));
	guest__nics(g);
	skyctl_field_lines("Error", skyctl_jopt(g, "error"));
	skyctl_field("Created", skyctl_jstr(g, "created_at", "-"));
}

/* A GUEST answer must have an id; anything else is not our controller. */
static int guest__check(json_t *g)
{
	return json_is_string(json_object_get(g, "id")) ? 0 : skyctl_answer_lacks("guest id");
}

/* What --wait saw of the new guest's events. */
struct guest_wait {
	char state[16];               /* the last state it reached: running, failed, stopped; "" */
	char reason[512];
	int deleted;
};

static int guest__wait_event(void *ud, json_t *e)
{
	struct guest_wait *gw = ud;
	const char *type = skyctl_jstr(e, "type", ""), *now;
	json_t *d = json_object_get(e, "detail");

	if (strcmp(type, "guest.deleted") == 0) {
		gw->deleted = 1;
		return 1;
	}
	if (strcmp(type, "guest.state") != 0)
		return 0;
	now = skyctl_jstr(d, "new", "");
	if (strcmp(now, "running") != 0 && strcmp(now, "failed") != 0 && strcmp(now, "stopped") != 0)
		return 0;
	snprintf(gw->state, sizeof(gw->state), "%s", now);
	snprintf(gw->reason, sizeof(gw->reason), "%s", skyctl_jstr(d, "reason", "no reason given"));
	skyctl_clean_inplace(gw->reason);
	return 1;
}

/* Follow the new guest's events until it runs (0) or cannot (-EIO,
 * said), or --timeout passes (-ETIMEDOUT). */
static int guest__wait(struct skyctl *ctl, json_t *answer, int64_t since)
{
	const struct skyctl_opts *o = ctl->opts;
	const char *id = skyctl_jstr(answer, "id", "");
	char who[2 * SKYCTL_MAX_ID + 8], waited[32];
	struct guest_wait gw = { .state = "" };
	struct skyctl_watch w = {
		.kind = "guest", .id = id, .since = since, .deadline_ms = skyctl_now_ms() + o->timeout * 1000,
		.event = guest__wait_event, .ud = &gw,
	};
	int r;

	skyctl_name_for(who, sizeof(who), skyctl_jstr(answer, "name", id), id);
	r = skyctl_events_watch(ctl, &w);
	if (r < 0)
		return r;
	if (w.interrupted)
		return -EINTR;
	if (strcmp(gw.state, "running") == 0)
		return 0;
	if (gw.deleted) {
		skyctl_err("guest %s was deleted before it ran", who);
		return -ENOENT;
	}
	if (gw.state[0]) {
		fprintf(stderr, "skyctl: guest %s %s instead of running: %s; see 'skyctl guest show %s'\n", who,
			strcmp(gw.state, "failed") == 0 ? "failed" : "stopped", gw.reason, id);
		return -EIO;
	}
	sky_format_duration(o->timeout, waited, sizeof(waited));
	skyctl_err("guest %s is not running after %s; it may still start: see 'skyctl guest show %s', or wait "
		   "longer with --timeout", who, waited, id);
	return -ETIMEDOUT;
}

static int guest__create(struct skyctl *ctl, const char *arg)
{
	static const struct {
		const char *key;
		int flag;
	} texts[] = {
		{ "name", FLAG_NAME }, { "board", FLAG_BOARD }, { "kernel", FLAG_KERNEL }, { "initrd", FLAG_INITRD },
		{ "disk", FLAG_DISK }, { "cmdline", FLAG_CMDLINE }, { "backend", FLAG_BACKEND },
	};
	const struct skyctl_opts *o = ctl->opts;
	json_t *request, *devices = NULL, *nics = NULL, *answer = NULL;
	int64_t since = 0;
	int r = 0;

	request = json_object();
	if (request == NULL)
		goto fail_oom;
	for (size_t i = 0; r == 0 && i < sizeof(texts) / sizeof(texts[0]); i++)
		r = skyctl_body_set_flag(request, o, texts[i].key, texts[i].flag);
	/* What is not given is the controller's default. */
	if (r == 0 && skyctl_has(o, FLAG_VCPUS))
		r = skyctl_body_set_int(request, "vcpus", o->vcpus);
	if (r == 0 && skyctl_has(o, FLAG_MEMORY))
		r = skyctl_body_set_int(request, "memory_bytes", o->memory);
	if (r < 0)
		goto done;
	if (o->devices.n > 0) {
		devices = json_array();
		if (devices == NULL)
			goto fail_oom;
		for (size_t i = 0; i < o->devices.n; i++)
			if (json_array_append_new(devices, json_string(o->device_addr[i])) < 0)
				goto fail_oom;
		if (json_object_set(request, "devices", devices) < 0)
			goto fail_oom;
	}
	if (o->nics.n > 0) {
		nics = json_array();
		if (nics == NULL || json_object_set(request, "nics", nics) < 0)
			goto fail_oom;
		for (size_t i = 0; i < o->nics.n; i++) {
			json_t *nic = json_pack("{s:s}", "network", o->nic_net[i]);

			if (nic && o->nic_mac[i][0] && json_object_set_new(nic, "mac", json_string(o->nic_mac[i])) < 0) {
				json_decref(nic);
				nic = NULL;
			}
			if (json_array_append_new(nics, nic) < 0)
				goto fail_oom;
		}
	}
	if (skyctl_has(o, FLAG_TIMEOUT) && !skyctl_has(o, FLAG_WAIT)) {
		skyctl_err("--timeout is how long --wait waits; give --wait too");
		r = -EINVAL;
		goto done;
	}
	/* What happens after now: the new guest's events. */
	if (skyctl_has(o, FLAG_WAIT) && (r = skyctl_events_now(ctl, &since)) < 0)
		goto done;
	r = skyctl_request(ctl, "POST", "/v1/guests", NULL, request, &answer);
	if (r < 0)
		goto done;
	if (skyctl_has(o, FLAG_WAIT)) {
		json_t *now = NULL;

		r = guest__check(answer);
		if (r == 0)
			r = guest__wait(ctl, answer, since);
		if (r < 0)
			goto done;
		/* Show it as it is now, running. */
		if (skyctl_request(ctl, "GET", "/v1/guests", skyctl_jstr(answer, "id", ""), NULL, &now) == 0) {
			json_decref(answer);
			answer = now;
		}
	}
	if (skyctl_as_data(o)) {
		r = skyctl_print_answer(ctl->opts, answer);
		goto done;
	}
	r = guest__check(answer);
	if (r < 0)
		goto done;
	guest__print(answer);
	fputs("Follow its console with 'skyctl guest console ", stderr);
	skyctl_put_clean(stderr, skyctl_jstr(answer, "name", o->value[FLAG_NAME]));
	fputs(" --follow'.\n", stderr);
	goto done;

fail_oom:
	r = -ENOMEM;
	skyctl_err("out of memory");
done:
	json_decref(answer);
	json_decref(devices);
	json_decref(nics);
	json_decref(request);
	return r;
}

static void guest__row(json_t *g, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	json_t *e = json_object_get(g, "error");

	cells[0] = skyctl_jstr(g, "id", "-");
	cells[1] = skyctl_jstr(g, "name", "-");
	cells[2] = skyctl_jstr(g, "board", "-");
	cells[3] = skyctl_jstr(g, "state", "-");
	cells[4] = skyctl_jstr(g, "desired", "-");
	cells[5] = backend_words(g);
	cells[6] = skyctl_jint(g, "vcpus", scratch[6], SKYCTL_CELL_MAX);
	cells[7] = skyctl_jbytes(g, "memory_bytes", scratch[7], SKYCTL_CELL_MAX);
	cells[8] = guest__devices_short(g, scratch[8], SKYCTL_CELL_MAX);
	cells[9] = json_is_string(e) && json_string_value(e)[0] != '\0'
			   ? skyctl_cut(json_string_value(e), GUEST_ERROR_COLUMNS, scratch[9], SKYCTL_CELL_MAX)
			   : "-";
	/* -o wide */
	cells[10] = skyctl_jopt(g, "kernel");
	cells[11] = skyctl_jopt(g, "initrd");
	cells[12] = skyctl_jopt(g, "disk");
	cells[13] = skyctl_jstr(g, "created_at", "-");
}

static int guest__list(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = {
		"ID", "NAME", "BOARD", "STATE", "DESIRED", "BACKEND", "VCPUS", "MEMORY", "DEVICES", "ERROR",
		"KERNEL", "INITRD", "DISK", "CREATED",
	};
	static const struct skyctl_list list = {
		.path = "/v1/guests", .key = "guests", .header = header, .ncols = 14, .nwide = 4, .row = guest__row,
		.empty = "No guests; create one with 'skyctl guest create --name NAME --board auto --kernel IMAGE'.",
	};

	return skyctl_verb_list(ctl, &list);
}

static int guest__show(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_show(ctl, "/v1/guests", arg, guest__print, guest__check);
}

/* POST /v1/guests/{id}/start or /stop: the desired state changes, the
 * board follows. */
static int guest__set_desired(struct skyctl *ctl, const char *arg, const char *verb)
{
	char tail[16];
	struct skyctl_req req = { .method = "POST", .path = "/v1/guests", .id = arg, .tail = tail };
	json_t *answer = NULL;
	char who[2 * SKYCTL_MAX_ID + 8];
	int r;

	snprintf(tail, sizeof(tail), "/%s", verb);
	r = skyctl_call(ctl, &req, &answer);
	if (r < 0)
		return r;
	if (skyctl_as_data(ctl->opts)) {
		r = skyctl_print_answer(ctl->opts, answer);
		goto done;
	}
	r = guest__check(answer);
	if (r < 0)
		goto done;
	skyctl_name_for(who, sizeof(who), skyctl_jstr(answer, "name", arg), skyctl_jstr(answer, "id", arg));
	fputs("guest ", stdout);
	skyctl_put_clean(stdout, who);
	fputs(": desired state ", stdout);
	skyctl_put_clean(stdout, skyctl_jstr(answer, "desired", "-"));
	fputs(", state now ", stdout);
	skyctl_put_clean(stdout, skyctl_jstr(answer, "state", "-"));
	fputc('\n', stdout);
done:
	json_decref(answer);
	return r;
}

static int guest__start(struct skyctl *ctl, const char *arg)
{
	return guest__set_desired(ctl, arg, "start");
}

static int guest__stop(struct skyctl *ctl, const char *arg)
{
	return guest__set_desired(ctl, arg, "stop");
}

static int guest__delete(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/guests", arg, "deleted", "guest");
}

/* The console's bytes go to stdout as they are: it is a serial console,
 * its escape sequences are meant for a terminal. */
static int guest__console(struct skyctl *ctl, const char *arg)
{
	int follow = skyctl_has(ctl->opts, FLAG_FOLLOW);
	struct skyctl_sink sink = { .fd = STDOUT_FILENO, .follow = follow, .what = "the console" };
	const struct skyctl_query query[] = { { "follow", "1" }, { NULL, NULL } };
	const struct skyctl_req req = {
		.method = "GET", .path = "/v1/guests", .id = arg, .tail = "/console",
		.query = follow ? query : NULL, .sink = &sink,
	};
	int r;

	/* Nothing may sit in stdio's buffer in front of the bytes. */
	fflush(stdout);
	r = skyctl_call(ctl, &req, NULL);
	if (r == 0 && !follow && sink.written == 0 && isatty(STDERR_FILENO)) {
		fputs("(guest ", stderr);
		skyctl_put_clean(stderr, arg);
		fputs(" has written nothing to its console yet)\n", stderr);
	}
	return r;
}

static const struct skyctl_flag_note guest__create_notes[] = {
	{ FLAG_NAME, NULL, "the name of the new guest: 1 to 63 of A-Z a-z 0-9 . _ - (must not be taken)" },
	{ FLAG_BOARD, "BOARD|auto",
	  "the board (id or name) that runs the guest, or 'auto': an online board with KVM and room for it" },
	{ FLAG_KERNEL, NULL, "the kernel image the guest boots (id or name; see 'skyctl image list')" },
	{ FLAG_CMDLINE, NULL, "the guest kernel's command line (default \"console=ttyS0\")" },
	{ FLAG_WAIT, NULL,
	  "wait until the guest runs (exit 0), or fails or stops first (exit 1 with the board's reason)" },
	{ FLAG_TIMEOUT, NULL, "how long --wait waits: 30s, 10m, 1h or seconds (default 10m)" },
	{ FLAG__COUNT, NULL, NULL },
};

static const struct skyctl_flag_note guest__list_notes[] = {
	{ FLAG_STATE, "pending|fetching|running|stopped|failed", "list only the guests in this state" },
	{ FLAG_BOARD, "ID|NAME", "list only the guests of this board" },
	{ FLAG__COUNT, NULL, NULL },
};

static int guest__set(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_set(ctl, "/v1/guests", arg, "guest");
}

static const struct skyctl_flag_note guest__set_notes[] = {
	{ FLAG_NAME, NULL, "the guest's new name (must not be taken)" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_guest_commands[] = {
	{
		.noun = "guest", .verb = "create",
		.flags = FLAG_BIT(FLAG_NAME) | FLAG_BIT(FLAG_BOARD) | FLAG_BIT(FLAG_KERNEL) | FLAG_BIT(FLAG_INITRD) |
			 FLAG_BIT(FLAG_DISK) | FLAG_BIT(FLAG_CMDLINE) | FLAG_BIT(FLAG_VCPUS) | FLAG_BIT(FLAG_MEMORY) |
			 FLAG_BIT(FLAG_DEVICE) | FLAG_BIT(FLAG_BACKEND) | FLAG_BIT(FLAG_NIC) | FLAG_BIT(FLAG_WAIT) |
			 FLAG_BIT(FLAG_TIMEOUT),
		.required = FLAG_BIT(FLAG_NAME) | FLAG_BIT(FLAG_BOARD) | FLAG_BIT(FLAG_KERNEL),
		.summary = "create a guest (a KVM virtual machine on a board) and start it",
		.notes = guest__create_notes,
		.example = "skyctl guest create --name web --board auto --kernel vmlinuz --memory 1G --nic prod",
		.run = guest__create,
	},
	{
		.noun = "guest", .verb = "list",
		.flags = FLAGS_LIST | FLAG_BIT(FLAG_STATE) | FLAG_BIT(FLAG_BOARD),
		.notes = guest__list_notes,
		.summary = "list guests: where they run, their state, what they were given",
		.example = "skyctl guest list -o wide",
		.run = guest__list,
	},
	{
		.noun = "guest", .verb = "set", .arg = "ID|NAME",
		.flags = FLAGS_SET,
		.notes = guest__set_notes,
		.summary = "rename, label or describe a guest",
		.example = "skyctl guest set web1 --label zone=eu-1 --description \"...\"",
		.run = guest__set,
	},
	{
		.noun = "guest", .verb = "show", .arg = "ID|NAME",
		.summary = "show a guest, with its images, command line and why it failed",
		.example = "skyctl guest show web",
		.run = guest__show,
	},
	{
		.noun = "guest", .verb = "start", .arg = "ID|NAME",
		.summary = "start a guest (its board starts it, now or when it is back online)",
		.example = "skyctl guest start web",
		.run = guest__start,
	},
	{
		.noun = "guest", .verb = "stop", .arg = "ID|NAME",
		.summary = "stop a guest; it is kept and can be started again",
		.example = "skyctl guest stop web",
		.run = guest__stop,
	},
	{
		.noun = "guest", .verb = "delete", .arg = "ID|NAME",
		.summary = "stop a guest and delete it; its images are no longer held",
		.example = "skyctl guest delete web",
		.run = guest__delete,
	},
	{
		.noun = "guest", .verb = "console", .arg = "ID|NAME",
		.flags = FLAG_BIT(FLAG_FOLLOW),
		.summary = "print a guest's serial console (the last 64 KiB), or --follow it",
		.example = "skyctl guest console web --follow",
		.run = guest__console,
	},
	{ 0 },
};
