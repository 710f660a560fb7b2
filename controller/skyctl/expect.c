/* skyctl board accept|reject|expect|expect-list|expect-delete: boards that
 * enrolled with no token (docs/api.md "Pending boards").  'board list
 * --pending' (board.c) shows them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

/* POST /v1/boards/ID/accept or /reject; say what it means. */
static int expect__decide(struct skyctl *ctl, const char *arg, bool accept)
{
	struct skyctl_req req = { .method = "POST", .path = "/v1/boards", .id = arg,
				  .tail = accept ? "/accept" : "/reject" };
	json_t *answer = NULL;
	int r = skyctl_call(ctl, &req, &answer);

	if (r < 0)
		return r;
	if (skyctl_as_data(ctl->opts)) {
		r = skyctl_print_answer(ctl->opts, answer);
		json_decref(answer);
		return r;
	}
	printf("%s pending board ", accept ? "accepted" : "rejected");
	skyctl_put_clean(stdout, skyctl_jstr(answer, "id", arg));
	fputs(" (serial ", stdout);
	skyctl_put_clean(stdout, skyctl_jstr(answer, "serial", "-"));
	fputs(", uuid ", stdout);
	skyctl_put_clean(stdout, skyctl_jstr(answer, "uuid", "-"));
	fputs(", key sha256:", stdout);
	skyctl_put_clean(stdout, skyctl_jstr(answer, "key_sha256", "-"));
	fputs(")\n", stdout);
	if (accept && json_is_string(json_object_get(answer, "board"))) {
		fputs("Its UUID is board ", stderr);
		skyctl_put_clean(stderr, skyctl_jstr(answer, "board", "-"));
		fputs("'s: it gets that board back when it next asks (within a few seconds), and the board's earlier "
		      "certificates are revoked.\n", stderr);
	} else if (accept) {
		fprintf(stderr, "It gets its certificate, for that key only, when it next asks (within a few seconds) "
				"and comes online; 'skyctl board list' shows it then.\n");
	}
	else
		fprintf(stderr, "It is told so when it next asks; the record stays, so that its key cannot queue "
				"again, until it expires (--pending-ttl).\n");
	json_decref(answer);
	return 0;
}

static int expect__accept(struct skyctl *ctl, const char *arg)
{
	return expect__decide(ctl, arg, true);
}

static int expect__reject(struct skyctl *ctl, const char *arg)
{
	return expect__decide(ctl, arg, false);
}

static void expect__created(json_t *answer)
{
	const char *serial = skyctl_jstr(answer, "serial", "");

	fputs("expectation ", stdout);
	skyctl_put_clean(stdout, skyctl_jstr(answer, "id", "-"));
	fputs(serial[0] ? ": the first board with no token claiming serial "
			: ": the first board with no token claiming uuid ",
	      stdout);
	skyctl_put_clean(stdout, serial[0] ? serial : skyctl_jstr(answer, "uuid", "-"));
	fputs(" is accepted with no hands (once)\n", stdout);
	fprintf(stderr, "A serial or UUID is the board's claim, not a proof: use this on a network only your "
			"boards reach.\n");
}

static int expect__create(struct skyctl *ctl, const char *arg)
{
	static const struct skyctl_member members[] = {
		{ "serial", FLAG_SERIAL, 0 }, { "uuid", FLAG_UUID, 0 }, { NULL, 0, 0 },
	};
	static const struct skyctl_create create = {
		.path = "/v1/expectations", .members = members, .print = expect__created,
	};
	const struct skyctl_opts *o = ctl->opts;

	if (skyctl_has(o, FLAG_SERIAL) == skyctl_has(o, FLAG_UUID)) {
		skyctl_err("board expect takes exactly one of --serial SERIAL and --uuid UUID (one expectation each; "
			   "run it again for another)");
		return -EINVAL;
	}
	return skyctl_verb_create(ctl, &create, arg);
}

static void expect__row(json_t *e, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	(void)scratch;
	cells[0] = skyctl_jstr(e, "id", "-");
	cells[1] = skyctl_jstr(e, "serial", "");
	cells[2] = skyctl_jstr(e, "uuid", "");
	cells[3] = skyctl_jstr(e, "created_at", "-");
	if (!cells[1][0])
		cells[1] = "-";
	if (!cells[2][0])
		cells[2] = "-";
}

static int expect__list(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = { "ID", "SERIAL", "UUID", "CREATED" };
	static const struct skyctl_list list = {
		.path = "/v1/expectations", .key = "expectations", .header = header, .ncols = 4, .row = expect__row,
		.empty = "No expectations; add one with 'skyctl board expect --serial SERIAL'.",
	};

	(void)arg;
	return skyctl_verb_list(ctl, &list);
}

static int expect__delete(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/expectations", arg, "deleted", "expectation");
}

static const struct skyctl_flag_note expect__notes[] = {
	{ FLAG_SERIAL, NULL, "accept the first board with no token that claims this DMI serial" },
	{ FLAG_UUID, NULL, "accept the first board with no token that claims this DMI product UUID" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_pending_commands[] = {
	{
		.noun = "board", .verb = "accept", .arg = "PENDING-ID",
		.summary = "issue a certificate to a pending board's key (it comes online at its next ask)",
		.example = "skyctl board accept pnd-3f9a0c1d2e4b",
		.run = expect__accept,
	},
	{
		.noun = "board", .verb = "reject", .arg = "PENDING-ID",
		.summary = "refuse a pending board; its key cannot queue again until the record expires",
		.example = "skyctl board reject pnd-3f9a0c1d2e4b",
		.run = expect__reject,
	},
	{
		.noun = "board", .verb = "expect",
		.flags = FLAG_BIT(FLAG_SERIAL) | FLAG_BIT(FLAG_UUID),
		.notes = expect__notes,
		.summary = "pre-approve a machine by its serial or UUID: it comes online with no hands (once)",
		.example = "skyctl board expect --serial SN-4711",
		.run = expect__create,
	},
	{
		.noun = "board", .verb = "expect-list",
		.flags = FLAGS_LIST,
		.summary = "list the serials and UUIDs still expected",
		.example = "skyctl board expect-list",
		.run = expect__list,
	},
	{
		.noun = "board", .verb = "expect-delete", .arg = "ID",
		.summary = "delete an expectation",
		.example = "skyctl board expect-delete exp-3f9a0c1d2e4b",
		.run = expect__delete,
	},
	{ 0 },
};
