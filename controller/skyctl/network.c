/* skyctl network: the networks guests' NICs join (create, list, show,
 * delete); 'guest create --nic NETWORK' (guest.c) puts a guest on one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

/* "100", or "untagged" for a network without a VLAN. */
static const char *network__vlan(json_t *n, char *buf, size_t len)
{
	json_t *v = json_object_get(n, "vlan");

	if (json_is_null(v))
		return "untagged";
	return skyctl_jint(n, "vlan", buf, len);
}

static void network__print(json_t *n)
{
	char vlan[32];

	skyctl_field("ID", skyctl_jstr(n, "id", "-"));
	skyctl_field("Name", skyctl_jstr(n, "name", "-"));
	skyctl_field("VLAN", network__vlan(n, vlan, sizeof(vlan)));
	skyctl_field("Created", skyctl_jstr(n, "created_at", "-"));
}

static int network__check(json_t *n)
{
	return json_is_string(json_object_get(n, "id")) ? 0 : skyctl_answer_lacks("network id");
}

static void network__created(json_t *n)
{
	network__print(n);
	fputs("Put a guest on it with 'skyctl guest create ... --nic ", stderr);
	skyctl_put_clean(stderr, skyctl_jstr(n, "name", "NETWORK"));
	fputs("'.\n", stderr);
}

static int network__create(struct skyctl *ctl, const char *arg)
{
	static const struct skyctl_member members[] = {
		{ "vlan", FLAG_VLAN, SKYCTL_INT_AT(vlan) }, { NULL, 0, 0 },
	};
	static const struct skyctl_create create = {
		.path = "/v1/networks", .arg_key = "name", .members = members, .check = network__check,
		.print = network__created,
	};

	return skyctl_verb_create(ctl, &create, arg);
}

static void network__row(json_t *n, const char **cells, char (*scratch)[SKYCTL_CELL_MAX])
{
	cells[0] = skyctl_jstr(n, "id", "-");
	cells[1] = skyctl_jstr(n, "name", "-");
	cells[2] = network__vlan(n, scratch[2], SKYCTL_CELL_MAX);
	cells[3] = skyctl_jstr(n, "created_at", "-");
}

static int network__list(struct skyctl *ctl, const char *arg)
{
	static const char *const header[] = { "ID", "NAME", "VLAN", "CREATED" };
	static const struct skyctl_list list = {
		.path = "/v1/networks", .key = "networks", .header = header, .ncols = 4, .row = network__row,
		.empty = "No networks; create one with 'skyctl network create NAME --vlan 100'.",
	};

	(void)arg;
	return skyctl_verb_list(ctl, &list);
}

static int network__show(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_show(ctl, "/v1/networks", arg, network__print, network__check);
}

static int network__delete(struct skyctl *ctl, const char *arg)
{
	return skyctl_verb_delete(ctl, "/v1/networks", arg, "deleted", "network");
}

const struct skyctl_command skyctl_network_commands[] = {
	{
		.noun = "network", .verb = "create", .arg = "NAME",
		.flags = FLAG_BIT(FLAG_VLAN),
		.summary = "create a network guests' NICs can join: untagged, or on a VLAN of the boards' bridge",
		.example = "skyctl network create prod --vlan 100",
		.run = network__create,
	},
	{
		.noun = "network", .verb = "list",
		.flags = FLAGS_LIST,
		.summary = "list the networks and their VLANs",
		.example = "skyctl network list",
		.run = network__list,
	},
	{
		.noun = "network", .verb = "show", .arg = "ID|NAME",
		.summary = "show a network",
		.example = "skyctl network show prod",
		.run = network__show,
	},
	{
		.noun = "network", .verb = "delete", .arg = "ID|NAME",
		.summary = "delete a network no guest uses",
		.example = "skyctl network delete prod",
		.run = network__delete,
	},
	{ 0 },
};
