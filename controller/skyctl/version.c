/* skyctl version: this program's version and the controller's, from its
 * GET /healthz.  Without a config or a reachable controller it still
 * prints its own, says why the controller's is unknown and exits 1. */
#include <errno.h>
#include <stdio.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"
#include "controller/skyctl/verbs.h"

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson does it)"
#endif

static int version__run(struct skyctl *ctl, const char *arg)
{
	json_t *health = NULL, *out;
	const char *theirs;
	int r, w;

	(void)arg;
	r = ctl->http != NULL ? skyctl_request(ctl, "GET", "/healthz", NULL, NULL, &health) : -ENOTCONN;
	theirs = json_string_value(json_object_get(health, "version"));
	if (r == 0 && theirs == NULL)
		r = skyctl_answer_lacks("version");
	if (skyctl_as_data(ctl->opts)) {
		/* {"client": {"version": ...}, "controller": GET /healthz or null} */
		out = json_pack("{s:{s:s}, s:O?}", "client", "version", SKY_VERSION, "controller", health);
		if (out == NULL) {
			skyctl_err("out of memory");
			json_decref(health);
			return -ENOMEM;
		}
		w = skyctl_print_answer(ctl->opts, out);
		json_decref(out);
	} else {
		skyctl_field("Client version", SKY_VERSION);
		skyctl_field("Controller version", theirs != NULL ? theirs : "unknown");
		if (ctl->conf.controller[0] != '\0')
			skyctl_field("Controller", ctl->conf.controller);
		w = 0;
	}
	json_decref(health);
	return r < 0 ? r : w;
}

const struct skyctl_command skyctl_version_commands[] = {
	{
		.noun = "version",
		.summary = "show the version of skyctl and of the controller it talks to",
		.example = "skyctl version -o yaml",
		.reach = SKYCTL_REACH_TRY,
		.run = version__run,
	},
	{ 0 },
};
