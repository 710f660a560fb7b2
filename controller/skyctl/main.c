/* skyctl: the operator CLI.  It speaks skyrootd's REST API (docs/api.md)
 * over HTTPS; the layout of its files is in skyctl.h.  This file is the
 * program: read the command line, find the config, run one command.
 *
 * Exit status: 0 done, 1 error (a message on stderr says what went wrong and
 * what to do), 2 usage error (usage on stderr). */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson does it)"
#endif

static const char *main__home(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home != NULL && home[0] != '\0')
		return home;
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_dir : NULL;
}

/* Find and read the config, apply the flags over it, check that the
 * controller, CA and token are known.  Prints what is wrong. */
static int main__configure(struct skyctl *ctl)
{
	const struct skyctl_opts *o = ctl->opts;
	const struct skyctl_conf *fc = &o->flag_conf;
	const char *env = getenv("SKYROOT_CONFIG");
	int explicit_path = 0, loaded = 0, r;
	const char *how;
	char err[1024];

	skyctl_conf_init(&ctl->conf);
	if (skyctl_has(o, FLAG_CONFIG)) {
		explicit_path = 1;
		how = "--config";
		r = skyctl_conf_default_path(o->value[FLAG_CONFIG], NULL, ctl->conf_path, sizeof(ctl->conf_path));
	} else if (env != NULL && env[0] != '\0') {
		explicit_path = 1;
		how = "$SKYROOT_CONFIG";
		r = skyctl_conf_default_path(env, NULL, ctl->conf_path, sizeof(ctl->conf_path));
	} else {
		how = "the default path";
		r = skyctl_conf_default_path(NULL, main__home(), ctl->conf_path, sizeof(ctl->conf_path));
	}
	if (r == -ENAMETOOLONG) {
		skyctl_err("the config path from %s is too long", how);
		return r;
	}
	if (r < 0)
		ctl->conf_path[0] = '\0';

	int all_flags = fc->controller[0] && fc->ca[0] && fc->token[0];
	if (ctl->conf_path[0] != '\0' && (explicit_path || !all_flags)) {
		r = skyctl_conf_load(&ctl->conf, ctl->conf_path, err, sizeof(err));
		if (r == -ENOENT && !explicit_path) {
			/* no default config: fine if the flags say it all */
		} else if (r == -ENOENT) {
			skyctl_err("%s; check %s, or use the skyctl.conf that 'skyrootd init' wrote", err, how);
			return r;
		} else if (r < 0) {
			skyctl_err("%s", err);
			return r;
		} else {
			loaded = 1;
		}
	}
	if (loaded) {
		snprintf(ctl->src[SKYCTL_SRC_CONTROLLER], sizeof(ctl->src[0]), "'controller' in %s", ctl->conf_path);
		snprintf(ctl->src[SKYCTL_SRC_CA], sizeof(ctl->src[0]), "'ca' in %s", ctl->conf_path);
		snprintf(ctl->src[SKYCTL_SRC_TOKEN], sizeof(ctl->src[0]), "'token' in %s", ctl->conf_path);
	}
	if (fc->controller[0]) {
		memcpy(ctl->conf.controller, fc->controller, sizeof(fc->controller));
		snprintf(ctl->src[SKYCTL_SRC_CONTROLLER], sizeof(ctl->src[0]), "--controller");
	}
	if (fc->ca[0]) {
		memcpy(ctl->conf.ca, fc->ca, sizeof(fc->ca));
		snprintf(ctl->src[SKYCTL_SRC_CA], sizeof(ctl->src[0]), "--ca");
	}
	if (fc->token[0]) {
		memcpy(ctl->conf.token, fc->token, sizeof(fc->token));
		snprintf(ctl->src[SKYCTL_SRC_TOKEN], sizeof(ctl->src[0]), "--token");
	}

	if (!loaded && !(ctl->conf.controller[0] && ctl->conf.ca[0] && ctl->conf.token[0])) {
		if (ctl->conf_path[0] != '\0')
			skyctl_err("no client config: %s does not exist; copy the skyctl.conf that "
				"'skyrootd init' wrote there, point $SKYROOT_CONFIG or --config at it, "
				"or pass --controller, --ca and --token", ctl->conf_path);
		else
			skyctl_err("no client config: $HOME is not set; pass --config FILE (the skyctl.conf "
				"that 'skyrootd init' wrote), or --controller, --ca and --token");
		return -ENOENT;
	}
	static const struct {
		size_t off;
		const char *key, *flag, *example;
	} need[] = {
		{ offsetof(struct skyctl_conf, controller), "controller", "--controller",
		  "controller = https://127.0.0.1:7444" },
		{ offsetof(struct skyctl_conf, ca), "ca", "--ca", "ca = ca.crt" },
		{ offsetof(struct skyctl_conf, token), "token", "--token", "token = <admin token>" },
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (((const char *)&ctl->conf)[need[i].off] != '\0')
			continue;
		skyctl_err("no %s is configured: add '%s' to %s or pass %s", need[i].key, need[i].example,
			ctl->conf_path, need[i].flag);
		return -EINVAL;
	}
	if (access(ctl->conf.ca, R_OK) < 0) {
		r = -errno;
		skyctl_err("cannot read the CA file %s: %s; check %s (it is the ca.crt that 'skyrootd init' made)",
			ctl->conf.ca, strerror(-r), ctl->src[SKYCTL_SRC_CA]);
		return r;
	}
	return 0;
}

/* Everything printed must have reached stdout: a full disk is an error.
 * A command that failed has said why (its output too, when that was it). */
static int main__finish(int code)
{
	errno = 0;
	if ((fflush(stdout) != 0 || ferror(stdout)) && code == 0) {
		/* ferror() without a failing fflush: an earlier write failed (errno is gone). */
		skyctl_err("cannot write the output%s%s", errno ? ": " : "", errno ? strerror(errno) : "");
		return SKYCTL_EXIT_ERROR;
	}
	return code;
}

int main(int argc, char **argv)
{
	struct skyctl_opts opts = { 0 };
	struct skyctl ctl = { 0 };
	const struct skyctl_command *c;
	int r;

	if (skyctl_args_parse(argc, argv, &opts) < 0) {
		fprintf(stderr, "Run 'skyctl --help' for the commands and their options.\n");
		return SKYCTL_EXIT_USAGE;
	}
	if (skyctl_has(&opts, FLAG_VERSION)) {
		printf("skyctl %s\n", SKY_VERSION);
		return main__finish(SKYCTL_EXIT_OK);
	}
	if (opts.nwords > 0 && strcmp(opts.words[0], "help") == 0)
		return main__finish(skyctl_cmd_help(&opts, opts.words + 1, opts.nwords - 1));
	if (skyctl_has(&opts, FLAG_HELP) || skyctl_has(&opts, FLAG_SCDOC))
		return main__finish(skyctl_cmd_help(&opts, opts.words, opts.nwords));
	c = skyctl_cmd_resolve(&opts);
	if (c == NULL)
		return SKYCTL_EXIT_USAGE;
	if (skyctl_args_check(&opts) < 0) {
		skyctl_cmd_command_usage(stderr, c, 0);
		return SKYCTL_EXIT_USAGE;
	}

	ctl.opts = &opts;
	if (c->reach != SKYCTL_REACH_NONE) {
		r = main__configure(&ctl);
		if (r == 0)
			r = skyctl_http_open(&ctl);
		if (r < 0 && c->reach == SKYCTL_REACH_CONTROLLER)
			return SKYCTL_EXIT_ERROR;
	}
	r = c->run(&ctl, skyctl_cmd_arg(c, &opts));
	skyctl_http_close(&ctl);
	return main__finish(r < 0 ? SKYCTL_EXIT_ERROR : SKYCTL_EXIT_OK);
}
