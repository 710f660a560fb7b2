/* skyctl credential: API credentials with roles (create, list, show,
 * rotate, revoke), and skyctl audit: the controller's audit log.  Both
 * need the admin role. */
#include <errno.h>
#include <stdio.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

static void credential__print(json_t *c)
{
	skyctl_field("Name", skyctl_jstr(c, "name", "-"));
	skyctl_field("Role", skyctl_jstr(c, "role", "-"));
	skyctl_field("State", skyctl_jstr(c, "state", "-"));
	skyctl_field("Created", skyctl_jstr(c, "created_at", "-"));
	skyctl_field("Expires", skyctl_jstr(c, "expires_at", "never"));
	skyctl_field("Rotated", skyctl_jstr(c, "rotated_at", "never"));
	if (json_is_string(json_object_get(c, "old_secret_expires_at")))
		skyctl_field("Old token until", skyctl_jstr(c, "old_secret_expires_at", "-"));
	if (json_is_string(json_object_get(c, "revoked_at")))
		skyctl_field("Revoked", skyctl_jstr(c, "revoked_at", "-"));
}

static int credential__check(json_t *answer)
{
	return json_is_string(json_object_get(answer, "token")) ? 0 : skyctl_answer_lacks("token");
}

/* An answer with a new token: printed, with the warning that it is shown once. */
static void credential__secret_print(json_t *answer)
{
	skyctl_field("Token", skyctl_jstr(answer, "token", "-"));
	credential__print(answer);
	fprintf(stderr, "The token is shown only now.  Use it as 'token' in a skyctl config or as "
			"'Authorization: Bearer <token>'.\n");
}

static int credential__secret(struct skyctl *ctl, json_t *answer)
{
	int r;

	if (skyctl_as_data(ctl->opts))
		return skyctl_print_answer(ctl->opts, answer);
	r = credential__check(answer);
	if (r == 0)
		credential__secret_print(answer);
	return r;
}

static int credential__create(struct skyctl *ctl, const char *arg)
{
	static const struct skyctl_member members[] = {
		{ "role", FLAG_ROLE, 0 }, { "ttl_seconds", FLAG_TTL, SKYCTL_INT_AT(ttl) }, { NULL, 0, 0 },
	};
	static const struct skyctl_create create = {
		.path = "/v1/credentials", .arg_key = "name", .members = members, .check = credential__check,
		.print = credential__secret_print,
	};

	return skyctl_verb_create(ctl, &create, arg);
}

static void credential__row(json_t *c, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	(void)scratch;
	cells[0] = skyctl_jstr(c, "name", "-");
	cells[1] = skyctl_jstr(c, "role", "-");
	cells[2] = skyctl_jstr(c, "state", "-");
	cells[3] = skyctl_jstr(c, "expires_at", "never");
	/* -o wide */
	cells[4] = skyctl_jstr(c, "created_at", "-");
	cells[5] = skyctl_jstr(c, "rotated_at", "never");
}

static int credential__list(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = { "NAME", "ROLE", "STATE", "EXPIRES", "CREATED", "ROTATED" };
	static const struct skyctl_list list = {
		.path = "/v1/credentials", .key = "credentials", .header = header, .ncols = 6, .nwide = 2,
		.row = credential__row, .empty = "No credentials; make one with 'skyctl credential create'.",
	};

	(void)arg;
	return skyctl_verb_list(ctl, &list);
}

static int credential__show(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_show(ctl, "/v1/credentials", arg, credential__print, NULL);
}

static int credential__rotate(struct skyctl *ctl, const char *arg)
{
	const struct skyctl_opts *o = ctl->opts;
	struct skyctl_req req = { .method = "POST", .path = "/v1/credentials", .id = arg, .tail = "/rotate" };
	json_t *body = json_object(), *answer = NULL;
	int r = body ? 0 : -ENOMEM;

	if (r == 0 && skyctl_has(o, FLAG_GRACE))
		r = skyctl_body_set_int(body, "grace_seconds", o->grace);
	req.body = body;
	if (r == 0)
		r = skyctl_call(ctl, &req, &answer);
	else
		skyctl_err("out of memory");
	json_decref(body);
	if (r == 0)
		r = credential__secret(ctl, answer);
	json_decref(answer);
	return r;
}

static int credential__revoke(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/credentials", arg, "revoked", "credential");
}

static void audit__row(json_t *e, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	cells[0] = skyctl_jstr(e, "created_at", "-");
	cells[1] = skyctl_jstr(e, "credential", "-");
	cells[2] = skyctl_jstr(e, "method", "-");
	cells[3] = skyctl_jstr(e, "path", "-");
	cells[4] = skyctl_jint(e, "status", scratch[4], SKYCTL_CELL_MAX);
	/* -o wide */
	cells[5] = skyctl_jstr(e, "peer", "-");
	cells[6] = skyctl_jstr(e, "request_id", "-");
}

static int audit__run(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = { "TIME", "CREDENTIAL", "METHOD", "PATH", "STATUS", "FROM", "REQUEST" };
	/* One page, the newest entries: --limit (the shared flag) is how many. */
	const struct skyctl_list list = {
		.path = "/v1/audit", .key = "entries", .header = header, .ncols = 7, .nwide = 2, .row = audit__row,
		.empty = "The audit log is empty.", .limit_max = SKYCTL_LIMIT_MAX, .limit_default = 100,
	};

	(void)arg;
	return skyctl_verb_list(ctl, &list);
}

static const struct skyctl_flag_note credential__create_notes[] = {
	{ FLAG_TTL, NULL, "how long the credential works: 90s, 10m, 1h, 2d (60s to 30d; default: it never expires)" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_credential_commands[] = {
	{
		.noun = "credential", .verb = "create", .arg = "NAME",
		.flags = FLAG_BIT(FLAG_ROLE) | FLAG_BIT(FLAG_TTL), .required = FLAG_BIT(FLAG_ROLE),
		.summary = "create an API credential with a role; its token is shown once (admin only)",
		.notes = credential__create_notes,
		.example = "skyctl credential create ci --role operator --ttl 30d",
		.run = credential__create,
	},
	{
		.noun = "credential", .verb = "list",
		.summary = "list the API credentials, revoked and expired ones too (admin only)",
		.example = "skyctl credential list -o wide",
		.run = credential__list,
	},
	{
		.noun = "credential", .verb = "show", .arg = "NAME",
		.summary = "show an API credential (admin only)",
		.example = "skyctl credential show admin",
		.run = credential__show,
	},
	{
		.noun = "credential", .verb = "rotate", .arg = "NAME",
		.flags = FLAG_BIT(FLAG_GRACE),
		.summary = "give a credential a new token, shown once; the old one stops working at once or after "
			   "--grace (admin only)",
		.example = "skyctl credential rotate admin --grace 10m",
		.run = credential__rotate,
	},
	{
		.noun = "credential", .verb = "revoke", .arg = "NAME",
		.summary = "revoke an API credential for good (admin only)",
		.example = "skyctl credential revoke ci",
		.run = credential__revoke,
	},
	{
		.noun = "audit",
		.flags = FLAG_BIT(FLAG_LIMIT),
		.summary = "show the audit log, newest first: every change and every refused call (admin only)",
		.example = "skyctl audit --limit 20 -o wide",
		.run = audit__run,
	},
	{ 0 },
};
