/* skyrootd: the Skyroot controller.  `init` makes a state folder; `run`
 * serves the agent port (mTLS) and the HTTPS API from one libuv loop. */
#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/args.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/boots.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/notify.h"
#include "controller/skyrootd/store.h"

/* The options of each command: they parse argv and make the usage. */
static const char *opt_state, *opt_api_listen = CTL_DEFAULT_API_LISTEN;
static struct sky_arg_list opt_sans = { .max = 32 };
static const char *opt_agent_listen = CTL_DEFAULT_AGENT_LISTEN, *opt_advertise, *opt_firmware, *opt_boot_listen;
static uint64_t opt_cert_ttl = CTL_DEFAULT_CERT_TTL, opt_image_max = STORE_DEFAULT_IMAGE_MAX;
static int opt_log_level = SKY_LOG_INFO;
/* Admission on each port (listener.h); durations in seconds. */
static uint64_t opt_agent_conns = 20000, opt_agent_per_addr = 64, opt_api_conns = 512, opt_api_per_addr = 32,
		opt_boot_conns = 256, opt_boot_per_addr = 16, opt_boot_downloads = 32;
static uint64_t opt_enroll_timeout = 30, opt_handshake_timeout = 10, opt_request_timeout = 10,
		opt_keepalive_timeout = 30;

static int opt__listen(void *ctx, const char *value, char *err, size_t errlen)
{
	struct sockaddr_storage ss;

	if (sky_parse_listen(value, &ss) < 0) {
		snprintf(err, errlen, "'%s' is not ADDR:PORT with a numeric address (e.g. 127.0.0.1:7444, [::1]:7444)",
			 value);
		return -EINVAL;
	}
	*(const char **)ctx = value;
	return 0;
}

static int opt__log_level(void *ctx, const char *value, char *err, size_t errlen)
{
	int lvl = sky_log_parse_level(value);

	if (lvl < 0) {
		snprintf(err, errlen, "'%s' is not a log level: use error, warn, info or debug", value);
		return -EINVAL;
	}
	*(int *)ctx = lvl;
	return 0;
}

static struct sky_opt init_opts[] = {
	{ .name = "state", .kind = SKY_ARG_STR, .dest = &opt_state, .metavar = "DIR",
	  .help = "the state folder to create (required)" },
	{ .name = "san", .kind = SKY_ARG_LIST, .dest = &opt_sans, .metavar = "HOST_OR_IP",
	  .help = "another name of the server certificate besides localhost and\n127.0.0.1 (repeatable, up to 32)" },
	{ .name = "api-listen", .kind = SKY_ARG_CALLBACK, .cb = opt__listen, .ctx = &opt_api_listen,
	  .metavar = "ADDR:PORT", .help = "only sets the URL written to skyctl.conf (default " CTL_DEFAULT_API_LISTEN ")" },
	{ 0 }
};

static struct sky_opt run_opts[] = {
	{ .name = "state", .kind = SKY_ARG_STR, .dest = &opt_state, .metavar = "DIR",
	  .help = "the state folder 'skyrootd init' made (required)" },
	{ .name = "agent-listen", .kind = SKY_ARG_CALLBACK, .cb = opt__listen, .ctx = &opt_agent_listen,
	  .metavar = "ADDR:PORT", .help = "where boards connect, mutual TLS 1.3 (default " CTL_DEFAULT_AGENT_LISTEN ")" },
	{ .name = "api-listen", .kind = SKY_ARG_CALLBACK, .cb = opt__listen, .ctx = &opt_api_listen,
	  .metavar = "ADDR:PORT", .help = "the REST API, HTTPS (default " CTL_DEFAULT_API_LISTEN ")" },
	{ .name = "advertise", .kind = SKY_ARG_HOSTPORT, .dest = &opt_advertise, .metavar = "HOST:PORT",
	  .help = "the address boards dial, put in token command lines\n(default: the agent listen address)" },
	{ .name = "cert-ttl", .kind = SKY_ARG_DURATION, .dest = &opt_cert_ttl, .metavar = "DURATION",
	  .help = "client certificate lifetime, e.g. 24h (default), 90m, 3600", .min = 10, .max = 3650ull * 86400 },
	{ .name = "image-max", .kind = SKY_ARG_SIZE, .dest = &opt_image_max, .metavar = "SIZE",
	  .help = "largest image accepted, e.g. 64G (default), 512M", .min = 1, .max = INT64_MAX },
	{ .name = "firmware", .kind = SKY_ARG_STR, .dest = &opt_firmware, .metavar = "DIR",
	  .help = "the firmware (vmlinuz, initrd.img) network-booting boards load\n(fwimage/build.sh --out)" },
	{ .name = "boot-listen", .kind = SKY_ARG_CALLBACK, .cb = opt__listen, .ctx = &opt_boot_listen,
	  .metavar = "ADDR:PORT", .help = "plain-HTTP network boot (/boot/ipxe?token=T, /boot/vmlinuz,\n/boot/initrd.img); off by default" },
	{ .name = "agent-conns-max", .kind = SKY_ARG_UINT, .dest = &opt_agent_conns, .metavar = "N",
	  .help = "connections open at once on the agent port (default 20000)", .min = 1, .max = 1000000 },
	{ .name = "agent-conns-per-addr", .kind = SKY_ARG_UINT, .dest = &opt_agent_per_addr, .metavar = "N",
	  .help = "connections without a client certificate from one address\n(default 64; board sessions do not count)",
	  .min = 1, .max = 1000000 },
	{ .name = "enroll-timeout", .kind = SKY_ARG_DURATION, .dest = &opt_enroll_timeout, .metavar = "DURATION",
	  .help = "a connection without a client certificate is closed this long\nafter it opened, bytes or not (default 30s)",
	  .min = 1, .max = 3600 },
	{ .name = "api-conns-max", .kind = SKY_ARG_UINT, .dest = &opt_api_conns, .metavar = "N",
	  .help = "connections open at once on the API port (default 512)", .min = 1, .max = 1000000 },
	{ .name = "api-conns-per-addr", .kind = SKY_ARG_UINT, .dest = &opt_api_per_addr, .metavar = "N",
	  .help = "API connections from one address (default 32)", .min = 1, .max = 1000000 },
	{ .name = "boot-conns-max", .kind = SKY_ARG_UINT, .dest = &opt_boot_conns, .metavar = "N",
	  .help = "connections open at once on the boot port (default 256)", .min = 1, .max = 1000000 },
	{ .name = "boot-conns-per-addr", .kind = SKY_ARG_UINT, .dest = &opt_boot_per_addr, .metavar = "N",
	  .help = "boot-port connections from one address (default 16)", .min = 1, .max = 1000000 },
	{ .name = "boot-downloads-max", .kind = SKY_ARG_UINT, .dest = &opt_boot_downloads, .metavar = "N",
	  .help = "firmware files sent at once, both ports (default 32; then 503)", .min = 1, .max = 100000 },
	{ .name = "tls-handshake-timeout", .kind = SKY_ARG_DURATION, .dest = &opt_handshake_timeout,
	  .metavar = "DURATION", .help = "a TLS handshake must end this long after accept (default 10s)",
	  .min = 1, .max = 3600 },
	{ .name = "request-timeout", .kind = SKY_ARG_DURATION, .dest = &opt_request_timeout, .metavar = "DURATION",
	  .help = "an HTTP request's headers must be in this long after its\nfirst byte (the first: after accept; default 10s)",
	  .min = 1, .max = 3600 },
	{ .name = "keepalive-timeout", .kind = SKY_ARG_DURATION, .dest = &opt_keepalive_timeout, .metavar = "DURATION",
	  .help = "an HTTP connection idle this long is closed (default 30s)", .min = 1, .max = 86400 },
	{ .name = "log-level", .kind = SKY_ARG_CALLBACK, .cb = opt__log_level, .ctx = &opt_log_level,
	  .metavar = "LEVEL", .help = "error, warn, info (default) or debug" },
	{ 0 }
};

/* The admission limits of the three ports from the options. */
static void run_limits(struct ctl_options *o)
{
	o->agent_lim = listener_agent_defaults;
	o->agent_lim.conns_max = (unsigned)opt_agent_conns;
	o->agent_lim.per_addr_max = (unsigned)opt_agent_per_addr;
	o->agent_lim.handshake_ms = opt_handshake_timeout * 1000;
	o->agent_lim.admit_ms = opt_enroll_timeout * 1000;
	o->api_lim = listener_api_defaults;
	o->api_lim.conns_max = (unsigned)opt_api_conns;
	o->api_lim.per_addr_max = (unsigned)opt_api_per_addr;
	o->api_lim.handshake_ms = opt_handshake_timeout * 1000;
	o->api_lim.admit_ms = opt_request_timeout * 1000;
	o->boot_lim = listener_boot_defaults;
	o->boot_lim.conns_max = (unsigned)opt_boot_conns;
	o->boot_lim.per_addr_max = (unsigned)opt_boot_per_addr;
	o->boot_lim.admit_ms = opt_request_timeout * 1000;
	o->keepalive_ms = opt_keepalive_timeout * 1000;
	o->boot_downloads_max = (unsigned)opt_boot_downloads;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: skyrootd init --state DIR [OPTIONS]\n"
		   "       skyrootd run --state DIR [OPTIONS]\n"
		   "       skyrootd --version\n"
		   "\n"
		   "init   create the state folder: CA (ECDSA P-256), server certificate, image-signing\n"
		   "       key (Ed25519), admin API token (printed once), the store and DIR/skyctl.conf.\n");
	sky_args_usage(f, init_opts);
	fprintf(f, "\nrun    serve boards on the agent port and the REST API; SIGHUP re-reads the\n"
		   "       admin token hash, SIGTERM/SIGINT stop it.\n");
	sky_args_usage(f, run_opts);
}

/* 0 to go on, else the exit status (help: 0, usage error: 2). */
static int parse_opts(const char *cmd, struct sky_opt *opts, int argc, char **argv)
{
	char err[256];
	int first, r = sky_args_parse(opts, argc, argv, &first, err, sizeof(err));

	if (r == 1) {
		usage(stdout);
		return -1;
	}
	if (r < 0) {
		fprintf(stderr, "skyrootd %s: %s\n", cmd, err);
		return 2;
	}
	if (first != argc) {
		fprintf(stderr, "skyrootd %s: unexpected argument '%s'; see 'skyrootd --help'\n", cmd, argv[first]);
		return 2;
	}
	if (!opt_state) {
		fprintf(stderr, "skyrootd %s: --state DIR is required\n", cmd);
		return 2;
	}
	return 0;
}

static int cmd_init(int argc, char **argv)
{
	const char *sans[SKY_ARG_LIST_MAX + 1] = { 0 };
	char token[128];
	int r = parse_opts("init", init_opts, argc, argv);

	if (r)
		return r < 0 ? 0 : r;
	for (unsigned i = 0; i < opt_sans.n; i++)
		sans[i] = opt_sans.v[i];
	/* Nobody else reads the state: the folder 0700, every file 0600. */
	umask(077);
	r = ctl_state_init(opt_state, sans, opt_api_listen, token, sizeof(token));
	if (r == -EEXIST) {
		fprintf(stderr, "skyrootd init: %s already holds a controller state; refusing to overwrite it "
				"(use another folder, or remove it to start a new fleet)\n", opt_state);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "skyrootd init: cannot create the state in %s: %s\n", opt_state, strerror(-r));
		return 1;
	}
	printf("Initialised controller state in %s\n"
	       "Admin API token (shown only now; also in %s/%s, mode 0600):\n  %s\n"
	       "Start the controller:  skyrootd run --state %s\n"
	       "Use the CLI:           skyctl --config %s/%s board list\n",
	       opt_state, opt_state, CTL_SKYCTL_CONF, token, opt_state, opt_state, CTL_SKYCTL_CONF);
	return 0;
}

/* ---- wiring: the agent link reports to guests, guests reach boards
 * through the agent link; neither knows the other. */

static void wire__board_up(void *ctx, const char *board_id)
{
	struct controller *ctl = ctx;
	guests_board_up(ctl->guests, board_id);
}

static void wire__guest_report(void *ctx, const char *board_id, const Skyroot__GuestReport *r)
{
	struct controller *ctl = ctx;
	guests_on_report(ctl->guests, board_id, r);
}

static void wire__console(void *ctx, const char *board_id, const Skyroot__ConsoleData *d)
{
	struct controller *ctl = ctx;
	guests_on_console(ctl->guests, board_id, d);
}

/* The board's answer to a boot order; a board that will not boot is not
 * shown as running a bare-metal OS once it goes offline. */
static void wire__boot_result(void *ctx, const char *board_id, uint64_t req, const Skyroot__BareMetalBootResult *res)
{
	struct controller *ctl = ctx;
	int r = boots_answer(ctl->boots, board_id, req, res->outcome, res->error, sky_unix_now());

	if (r < 0) {
		log_debug("board %s: answer to boot order %llu ignored: %s", board_id, (unsigned long long)req,
			  r == -ESTALE ? "not its last order" : r == -EALREADY ? "already settled" : "no order");
		return;
	}
	if (res->outcome == SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED) {
		log_info("board %s: accepted the bare-metal boot", board_id);
		return;
	}
	/* The board's words go through the logger, which escapes them. */
	log_warn("board %s: bare-metal boot %s: %s", board_id,
		 res->outcome == SKYROOT__BOOT_OUTCOME__BOOT_REFUSED ? "refused" : "failed",
		 boots_get(ctl->boots, board_id)->error);
	if (ctl->agents)
		agentlink_board_baremetal(ctl->agents, board_id, false);
}

static const struct agentlink_ops wire_agentlink_ops = {
	.board_up = wire__board_up,
	.guest_report = wire__guest_report,
	.console = wire__console,
	.boot_result = wire__boot_result,
};

static bool wire__online(void *ctx, const char *board_id)
{
	struct controller *ctl = ctx;
	return agentlink_board_online(ctl->agents, board_id, NULL);
}

static int wire__send(void *ctx, const char *board_id, Skyroot__Envelope *env)
{
	struct controller *ctl = ctx;
	return agentlink_board_send(ctl->agents, board_id, env);
}

static const struct guests_ops wire_guests_ops = {
	.online = wire__online,
	.send = wire__send,
};

static void on_signal(uv_signal_t *h, int signum)
{
	struct controller *ctl = h->data;
	log_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	ctl_notify_stopping(ctl);
	agentlink_stop(ctl->agents);
	api_stop(ctl->api);
	api_stop(ctl->boot);
	ctl->agents = NULL;
	ctl->api = NULL;
	ctl->boot = NULL;
	uv_close((uv_handle_t *)&ctl->sigterm, NULL);
	uv_close((uv_handle_t *)&ctl->sigint, NULL);
	uv_close((uv_handle_t *)&ctl->sighup, NULL);
}

/* SIGHUP: re-read the admin token hash (a new admin token without a
 * restart).  The log goes to stderr: nothing to reopen. */
static void on_sighup(uv_signal_t *h, int signum)
{
	struct controller *ctl = h->data;
	int r = ctl_state_reload(ctl);

	(void)signum;
	if (r < 0) {
		log_error("SIGHUP: cannot re-read %s/%s: %s; the admin token is unchanged", ctl->opt.state_dir,
			  CTL_ADMIN_HASH, r == -EPERM ? "it is readable by others (chmod 600 it)" : strerror(-r));
		return;
	}
	log_info("SIGHUP: reloaded the admin token hash from %s/%s (the log goes to stderr: nothing to reopen)",
		 ctl->opt.state_dir, CTL_ADMIN_HASH);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int cmd_run(int argc, char **argv)
{
	struct controller ctl = {0};
	struct sockaddr_storage agent_addr, api_addr, boot_addr;
	uv_loop_t loop;
	int r = parse_opts("run", run_opts, argc, argv);

	if (r)
		return r < 0 ? 0 : r;
	ctl.opt.state_dir = opt_state;
	ctl.opt.agent_listen = opt_agent_listen;
	ctl.opt.api_listen = opt_api_listen;
	ctl.opt.advertise = opt_advertise;
	ctl.opt.cert_ttl = (int64_t)opt_cert_ttl;
	ctl.opt.image_max = opt_image_max;
	ctl.opt.firmware_dir = opt_firmware;
	ctl.opt.boot_listen = opt_boot_listen;
	run_limits(&ctl.opt);
	/* Checked by opt__listen already. */
	sky_parse_listen(ctl.opt.agent_listen, &agent_addr);
	sky_parse_listen(ctl.opt.api_listen, &api_addr);
	if (ctl.opt.boot_listen)
		sky_parse_listen(ctl.opt.boot_listen, &boot_addr);
	if (ctl.opt.firmware_dir && access(ctl.opt.firmware_dir, R_OK | X_OK) < 0) {
		fprintf(stderr, "skyrootd: cannot read --firmware %s: %s (build it with fwimage/build.sh)\n",
			ctl.opt.firmware_dir, strerror(errno));
		return 2;
	}
	snprintf(ctl.advertise, sizeof(ctl.advertise), "%s",
		 ctl.opt.advertise ? ctl.opt.advertise : ctl.opt.agent_listen);
	sky_log_init("skyrootd", (enum sky_log_level)opt_log_level);
	/* The store holds images and hashes: nobody else reads what we write. */
	umask(077);
	/* Image chunks are 1 MiB buffers, allocated and freed all the time:
	 * keep them in the heap instead of fresh mmaps, whose page faults
	 * cost more than the copies (measured: tests/bench/). */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	r = ctl_state_load(&ctl);
	if (r < 0)
		return 1;
	r = boots_new(&ctl.boots);
	if (r < 0) {
		log_error("out of memory");
		ctl_state_unload(&ctl);
		return 1;
	}
	uv_loop_init(&loop);
	ctl.loop = &loop;

	guests_set_ops(ctl.guests, &wire_guests_ops, &ctl);
	r = agentlink_start(&ctl, (struct sockaddr *)&agent_addr, &ctl.opt.agent_lim, &wire_agentlink_ops, &ctl);
	if (r < 0) {
		log_error("cannot listen on agent address %s: %s", ctl.opt.agent_listen, uv_strerror(r));
		goto fail;
	}
	r = api_start(&ctl, (struct sockaddr *)&api_addr);
	if (r < 0) {
		log_error("cannot listen on API address %s: %s", ctl.opt.api_listen, uv_strerror(r));
		goto fail;
	}
	if (ctl.opt.boot_listen) {
		r = api_start_boot(&ctl, (struct sockaddr *)&boot_addr);
		if (r < 0) {
			log_error("cannot listen on boot address %s: %s", ctl.opt.boot_listen, uv_strerror(r));
			goto fail;
		}
		log_info("network boot on http://%s/boot/ipxe?token=TOKEN%s", ctl.opt.boot_listen,
			 ctl.opt.firmware_dir ? "" : " (no --firmware given: the script works, the files are missing)");
	}
	uv_signal_init(&loop, &ctl.sigterm);
	uv_signal_init(&loop, &ctl.sigint);
	uv_signal_init(&loop, &ctl.sighup);
	ctl.sigterm.data = ctl.sigint.data = ctl.sighup.data = &ctl;
	uv_signal_start(&ctl.sighup, on_sighup, SIGHUP);
	uv_signal_start(&ctl.sigterm, on_signal, SIGTERM);
	uv_signal_start(&ctl.sigint, on_signal, SIGINT);
	log_info("skyrootd %s: agents on %s (mTLS 1.3), API on https://%s, boards dial %s, CA %s",
		 SKY_VERSION, ctl.opt.agent_listen, ctl.opt.api_listen, ctl.advertise, ctl.ca_pin_str);
	ctl_notify_ready(&ctl);

	uv_run(&loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&loop);
	if (r < 0)
		log_warn("loop closed with handles still open: %s", uv_strerror(r));
	ctl_state_unload(&ctl);
	boots_free(ctl.boots);
	log_info("stopped");
	return 0;

fail:
	agentlink_stop(ctl.agents);
	api_stop(ctl.api);
	api_stop(ctl.boot);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	ctl_state_unload(&ctl);
	boots_free(ctl.boots);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("skyrootd %s\n", SKY_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "init") == 0)
		return cmd_init(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	fprintf(stderr, "skyrootd: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
