/* skyctl token: enrollment tokens (create, list, revoke). */
#include <errno.h>
#include <stdio.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

static int token__check(json_t *answer)
{
	return json_is_string(json_object_get(answer, "token")) ? 0 : skyctl_answer_lacks("token");
}

static void token__made(json_t *answer)
{
	char buf[32];

	skyctl_field("Token", skyctl_jstr(answer, "token", "-"));
	skyctl_field("ID", skyctl_jstr(answer, "id", "-"));
	skyctl_field("CA pin", skyctl_jstr(answer, "ca_pin", "-"));
	skyctl_field("Controller", skyctl_jstr(answer, "controller", "-"));
	skyctl_field("Uses", skyctl_jint(answer, "uses", buf, sizeof(buf)));
	if (json_is_string(json_object_get(answer, "board")))
		skyctl_field("Re-enrolls board", skyctl_jstr(answer, "board", "-"));
	skyctl_field("Expires", skyctl_jstr(answer, "expires_at", "-"));
	skyctl_field("Kernel command line", skyctl_jstr(answer, "cmdline", "-"));
	fprintf(stderr, "The token is shown only now.  Boot a board with the kernel command line above "
			"to enroll it.\n");
}

static int token__create(struct skyctl *ctl, const char *arg)
{
	static const struct skyctl_member members[] = {
		{ "ttl_seconds", FLAG_TTL, SKYCTL_INT_AT(ttl) },
		{ "uses", FLAG_USES, SKYCTL_INT_AT(uses) },
		{ "board", FLAG_BOARD, 0 },
		{ NULL, 0, 0 },
	};
	static const struct skyctl_create create = {
		.path = "/v1/tokens", .members = members, .check = token__check, .print = token__made,
	};

	return skyctl_verb_create(ctl, &create, arg);
}

static void token__row(json_t *tok, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	cells[0] = skyctl_jstr(tok, "id", "-");
	cells[1] = skyctl_jstr(tok, "state", "-");
	cells[2] = skyctl_jint(tok, "uses_left", scratch[2], SKYCTL_CELL_MAX);
	cells[3] = skyctl_jstr(tok, "expires_at", "-");
	/* -o wide */
	cells[4] = skyctl_jint(tok, "uses", scratch[4], SKYCTL_CELL_MAX);
	cells[5] = skyctl_jstr(tok, "board", "any");
	cells[6] = skyctl_jstr(tok, "created_at", "-");
}

static int token__list(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = { "ID", "STATE", "USES-LEFT", "EXPIRES", "USES", "BOARD", "CREATED" };
	static const struct skyctl_list list = {
		.path = "/v1/tokens", .key = "tokens", .header = header, .ncols = 7, .nwide = 3, .row = token__row,
		.empty = "No enrollment tokens; make one with 'skyctl token create'.",
	};

	return skyctl_verb_list(ctl, &list);
}

static int token__revoke(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/tokens", arg, "revoked", "token");
}

static const struct skyctl_flag_note token__create_notes[] = {
	{ FLAG_BOARD, "ID|NAME", "a token that re-enrolls only this enrolled board (a known machine with a "
				 "general token waits for 'skyctl board reenroll-allow')" },
	{ FLAG__COUNT, NULL, NULL },
};

static const struct skyctl_flag_note token__list_notes[] = {
	{ FLAG_STATE, "active|expired|used|revoked", "list only the tokens in this state" },
	{ FLAG_BOARD, "ID|NAME", "list only the tokens that re-enroll this board" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_token_commands[] = {
	{
		.noun = "token", .verb = "create",
		.flags = FLAG_BIT(FLAG_TTL) | FLAG_BIT(FLAG_USES) | FLAG_BIT(FLAG_BOARD),
		.summary = "create an enrollment token and the kernel command line that uses it",
		.notes = token__create_notes,
		.example = "skyctl token create --ttl 1h --uses 3",
		.run = token__create,
	},
	{
		.noun = "token", .verb = "list",
		.flags = FLAGS_LIST | FLAG_BIT(FLAG_STATE) | FLAG_BIT(FLAG_BOARD),
		.notes = token__list_notes,
		.summary = "list enrollment tokens",
		.example = "skyctl token list -o wide",
		.run = token__list,
	},
	{
		.noun = "token", .verb = "revoke", .arg = "ID",
		.summary = "revoke an enrollment token",
		.example = "skyctl token revoke tok-3f2a9c",
		.run = token__revoke,
	},
	{ 0 },
};
