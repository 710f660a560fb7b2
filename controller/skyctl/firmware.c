/* skyctl firmware: the allowed firmware of the measured-boot gate (allow,
 * list, show, revoke).  A TPM board whose quoted PCR 11 matches no allowed
 * firmware is quarantined; with none allowed the gate is off. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

static void firmware__print(json_t *f)
{
	skyctl_field("ID", skyctl_jstr(f, "id", "-"));
	skyctl_field("Name", skyctl_jstr(f, "name", "-"));
	skyctl_field("PCR 11", skyctl_jstr(f, "pcr11", "-"));
	skyctl_field("Allowed", skyctl_jstr(f, "created_at", "-"));
}

static int firmware__check(json_t *f)
{
	return json_is_string(json_object_get(f, "id")) ? 0 : skyctl_answer_lacks("firmware id");
}

static void firmware__allowed(json_t *f)
{
	firmware__print(f);
	fputs("TPM boards whose PCR 11 is this one pass the measured-boot gate; boards it held are released now.\n",
	      stderr);
}

static int firmware__allow(struct skyctl *ctl, const char *arg)
{
	static const struct skyctl_member members[] = {
		{ "name", FLAG_NAME, 0 }, { "pcr11", FLAG_PCR11, 0 }, { NULL, 0, 0 },
	};
	static const struct skyctl_create create = {
		.path = "/v1/firmware", .members = members, .check = firmware__check, .print = firmware__allowed,
	};

	return skyctl_verb_create(ctl, &create, arg);
}

static void firmware__row(json_t *f, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	(void)scratch;
	cells[0] = skyctl_jstr(f, "id", "-");
	cells[1] = skyctl_jstr(f, "name", "-");
	cells[2] = skyctl_jstr(f, "pcr11", "-");
	cells[3] = skyctl_jstr(f, "created_at", "-");
}

static int firmware__list(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = { "ID", "NAME", "PCR11", "ALLOWED" };
	static const struct skyctl_list list = {
		.path = "/v1/firmware", .key = "firmware", .header = header, .ncols = 4, .row = firmware__row,
		.empty = "No firmware allowed: the measured-boot gate is off, every TPM board passes. It is on as "
			 "soon as one is allowed ('skyctl firmware allow --pcr11 HEX --name NAME'); then a TPM board "
			 "whose PCR 11 matches none is quarantined.",
	};

	(void)arg;
	return skyctl_verb_list(ctl, &list);
}

static int firmware__show(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_show(ctl, "/v1/firmware", arg, firmware__print, firmware__check);
}

static int firmware__revoke(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/firmware", arg, "deleted", "firmware");
}

static const struct skyctl_flag_note firmware__allow_notes[] = {
	{ FLAG_NAME, NULL, "the firmware's name (must not be taken)" },
	{ FLAG__COUNT, NULL, NULL },
};

const struct skyctl_command skyctl_firmware_commands[] = {
	{
		.noun = "firmware", .verb = "allow",
		.flags = FLAG_BIT(FLAG_PCR11) | FLAG_BIT(FLAG_NAME),
		.required = FLAG_BIT(FLAG_PCR11) | FLAG_BIT(FLAG_NAME),
		.notes = firmware__allow_notes,
		.summary = "allow a firmware by the PCR 11 its UKI measures (fwimage/build.sh prints it): TPM boards "
			   "quoting it pass the measured-boot gate (admin)",
		.example = "skyctl firmware allow --name skyroot-1.4 --pcr11 "
			   "5f0b8a1d3c2e4f60718293a4b5c6d7e8f90112233445566778899aabbccddeef",
		.run = firmware__allow,
	},
	{
		.noun = "firmware", .verb = "list",
		.flags = FLAGS_LIST,
		.summary = "list the allowed firmware (none: the measured-boot gate is off) (admin)",
		.example = "skyctl firmware list",
		.run = firmware__list,
	},
	{
		.noun = "firmware", .verb = "show", .arg = "ID|NAME",
		.summary = "show an allowed firmware (admin)",
		.example = "skyctl firmware show skyroot-1.4",
		.run = firmware__show,
	},
	{
		.noun = "firmware", .verb = "revoke", .arg = "ID|NAME",
		.summary = "revoke an allowed firmware: TPM boards quoting it are quarantined at once (admin)",
		.example = "skyctl firmware revoke skyroot-1.4",
		.run = firmware__revoke,
	},
	{ 0 },
};
