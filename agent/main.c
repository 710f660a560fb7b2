/* skyagent: the board agent.  Configuration comes from flags or the kernel
 * command line; identity lives in memory only. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "common/log.h"
#include "common/notify.h"

struct main_ctx {
	const struct agent_config *cfg;
	struct agent *agent;
	uv_signal_t sigterm, sigint;
	int exit_code;
};

static void stop_all(struct main_ctx *m)
{
	agent_stop(m->agent);
	m->agent = NULL;
	if (!uv_is_closing((uv_handle_t *)&m->sigterm)) {
		uv_close((uv_handle_t *)&m->sigterm, NULL);
		uv_close((uv_handle_t *)&m->sigint, NULL);
	}
}

static void on_event(struct agent *a, enum agent_event ev, void *ud)
{
	struct main_ctx *m = ud;

	/* What the service manager shows (systemctl status skyagent). */
	if (ev == AGENT_EV_SESSION_UP)
		sky_notifyf("STATUS=online as board %s, controller %s", agent_board_id(a), agent_controller(a));
	else if (ev == AGENT_EV_SESSION_DOWN)
		sky_notify("STATUS=offline: reconnecting to the controller");
	else if (ev == AGENT_EV_REFUSED)
		sky_notifyf("STATUS=refused by the controller: %s", agent_last_error(a));
	if (!m->cfg->once)
		return;
	if (ev == AGENT_EV_SESSION_UP) {
		printf("%s\n", agent_board_id(a));
		fflush(stdout);
		m->exit_code = 0;
		stop_all(m);
	} else if (ev == AGENT_EV_REFUSED) {
		m->exit_code = 1;
		stop_all(m);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct main_ctx *m = h->data;
	log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	sky_notify("STOPPING=1");
	stop_all(m);
}

int main(int argc, char **argv)
{
	static struct agent_config cfg;
	struct main_ctx m = {.cfg = &cfg, .exit_code = 0};
	struct agent_hooks hooks = {.on_event = on_event};
	char err[512];
	uv_loop_t loop;
	int r;

	r = agent_config_parse(&cfg, argc, argv, err, sizeof(err));
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "skyagent: %s\n", err);
		return 2;
	}
	sky_log_init("skyagent", (enum sky_log_level)cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	/* Image chunks are 1 MiB buffers, allocated and freed all the time:
	 * keep them in the heap instead of fresh mmaps, whose page faults
	 * cost more than the copies (measured: tests/bench/). */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	uv_loop_init(&loop);
	r = agent_new(&loop, &cfg, NULL, &hooks, &m, &m.agent);
	if (r < 0) {
		fprintf(stderr, "skyagent: cannot start: %s\n", strerror(-r));
		return 1;
	}
	uv_signal_init(&loop, &m.sigterm);
	uv_signal_init(&loop, &m.sigint);
	m.sigterm.data = m.sigint.data = &m;
	uv_signal_start(&m.sigterm, on_signal, SIGTERM);
	uv_signal_start(&m.sigint, on_signal, SIGINT);
	char ctls[AGENT_MAX_CONTROLLERS * (SKY_HOSTPORT_HOST_MAX + 10)];
	size_t used = 0;
	for (size_t i = 0; i < cfg.n_controllers && used < sizeof(ctls); i++) {
		const struct sky_hostport *c = &cfg.controllers[i];
		bool v6 = strchr(c->host, ':') != NULL;
		int n = snprintf(ctls + used, sizeof(ctls) - used, "%s%s%s%s:%u", i ? "," : "", v6 ? "[" : "", c->host,
				 v6 ? "]" : "", c->port);
		used += n > 0 ? (size_t)n : 0;
	}
	log_info("skyagent %s: controller%s %s, %s", SKY_VERSION, cfg.n_controllers > 1 ? "s" : "", ctls,
		 cfg.token[0] ? "will enroll with a token" : "no token given");
	agent_start(m.agent);
	/* Ready once started: the session comes and goes, STATUS= tells. */
	sky_notifyf("READY=1\nSTATUS=connecting to the controller %s", ctls);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return m.exit_code;
}
