/* skyrootd: the Skyroot controller.  `init` makes a state folder; `run`
 * serves the agent port (mTLS) and the HTTPS API from one libuv loop. */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/guests.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: skyrootd init --state DIR [--san HOST_OR_IP ...] [--api-listen ADDR:PORT]\n"
		"       skyrootd run --state DIR [--agent-listen ADDR:PORT] [--api-listen ADDR:PORT]\n"
		"                    [--advertise HOST:PORT] [--cert-ttl DURATION] [--image-max SIZE]\n"
		"                    [--firmware DIR] [--boot-listen ADDR:PORT] [--log-level LEVEL]\n"
		"       skyrootd --version\n"
		"\n"
		"init   create the state folder: CA (ECDSA P-256), server certificate (SANs\n"
		"       localhost, 127.0.0.1 and every --san), image-signing key (Ed25519),\n"
		"       admin API token (printed once), the store and DIR/skyctl.conf.\n"
		"       --api-listen only sets the URL written to skyctl.conf.\n"
		"run    serve boards on --agent-listen (default %s, mutual TLS 1.3)\n"
		"       and the REST API on --api-listen (default %s, HTTPS).\n"
		"       --advertise   the HOST:PORT boards dial, put in token command lines\n"
		"                     (default: the agent listen address)\n"
		"       --cert-ttl    client certificate lifetime, e.g. 24h (default), 90m, 3600\n"
		"       --image-max   largest image accepted, e.g. 64G (default), 512M\n"
		"       --firmware    folder with the firmware (vmlinuz, initrd.img) that\n"
		"                     network-booting boards load (fwimage/build.sh --out)\n"
		"       --boot-listen plain-HTTP address for network boot (/boot/ipxe?token=T,\n"
		"                     /boot/vmlinuz, /boot/initrd.img); off by default\n"
		"       --log-level   error, warn, info (default) or debug\n",
		CTL_DEFAULT_AGENT_LISTEN, CTL_DEFAULT_API_LISTEN);
}

/* "90", "90s", "15m", "24h", "7d" -> seconds; -EINVAL otherwise. */
static int64_t parse_duration(const char *s)
{
	char *end;
	long long v;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v <= 0)
		return -EINVAL;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		v *= 60;
		break;
	case 'h':
		v *= 3600;
		break;
	case 'd':
		v *= 86400;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1])
		return -EINVAL;
	return v;
}

/* "512M", "64G", "1T", plain bytes -> bytes; 0 on error. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return 0;
	unsigned shift = 0;
	switch (*end) {
	case '\0':
		break;
	case 'K': case 'k':
		shift = 10;
		break;
	case 'M': case 'm':
		shift = 20;
		break;
	case 'G': case 'g':
		shift = 30;
		break;
	case 'T': case 't':
		shift = 40;
		break;
	default:
		return 0;
	}
	if (*end && end[1])
		return 0;
	if (shift && v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

static int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"san", required_argument, NULL, 'n'},
		{"api-listen", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *state = NULL, *api = CTL_DEFAULT_API_LISTEN;
	const char *sans[33] = {0};
	size_t nsans = 0;
	char token[128];
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			state = optarg;
			break;
		case 'n':
			if (nsans == SKY_ARRAY_SIZE(sans) - 1) {
				fprintf(stderr, "skyrootd: at most %zu --san\n", nsans);
				return 2;
			}
			sans[nsans++] = optarg;
			break;
		case 'a':
			api = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!state || optind != argc) {
		fprintf(stderr, "skyrootd init: --state DIR is required\n");
		usage(stderr);
		return 2;
	}
	struct sockaddr_storage ss;
	if (sky_parse_listen(api, &ss) < 0) {
		fprintf(stderr, "skyrootd init: bad --api-listen '%s': expected ADDR:PORT\n", api);
		return 2;
	}
	r = ctl_state_init(state, sans, api, token, sizeof(token));
	if (r == -EEXIST) {
		fprintf(stderr, "skyrootd init: %s already holds a controller state; refusing to overwrite it "
				"(use another folder, or remove it to start a new fleet)\n", state);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "skyrootd init: cannot create the state in %s: %s\n", state, strerror(-r));
		return 1;
	}
	printf("Initialised controller state in %s\n"
	       "Admin API token (shown only now; also in %s/%s, mode 0600):\n  %s\n"
	       "Start the controller:  skyrootd run --state %s\n"
	       "Use the CLI:           skyctl --config %s/%s board list\n",
	       state, state, CTL_SKYCTL_CONF, token, state, state, CTL_SKYCTL_CONF);
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

static const struct agentlink_ops wire_agentlink_ops = {
	.board_up = wire__board_up,
	.guest_report = wire__guest_report,
	.console = wire__console,
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
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"agent-listen", required_argument, NULL, 'g'},
		{"api-listen", required_argument, NULL, 'a'},
		{"advertise", required_argument, NULL, 'v'},
		{"cert-ttl", required_argument, NULL, 't'},
		{"log-level", required_argument, NULL, 'l'},
		{"image-max", required_argument, NULL, 'm'},
		{"firmware", required_argument, NULL, 'f'},
		{"boot-listen", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct controller ctl = {0};
	struct sockaddr_storage agent_addr, api_addr;
	uv_loop_t loop;
	int c, r, lvl = SKY_LOG_INFO;

	ctl.opt.agent_listen = CTL_DEFAULT_AGENT_LISTEN;
	ctl.opt.api_listen = CTL_DEFAULT_API_LISTEN;
	ctl.opt.cert_ttl = CTL_DEFAULT_CERT_TTL;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			ctl.opt.state_dir = optarg;
			break;
		case 'g':
			ctl.opt.agent_listen = optarg;
			break;
		case 'a':
			ctl.opt.api_listen = optarg;
			break;
		case 'v':
			ctl.opt.advertise = optarg;
			break;
		case 't':
			ctl.opt.cert_ttl = parse_duration(optarg);
			if (ctl.opt.cert_ttl < 10) {
				fprintf(stderr, "skyrootd: bad --cert-ttl '%s': use e.g. 24h, 90m or seconds (at least 10)\n", optarg);
				return 2;
			}
			break;
		case 'f':
			ctl.opt.firmware_dir = optarg;
			break;
		case 'b':
			ctl.opt.boot_listen = optarg;
			break;
		case 'm':
			ctl.opt.image_max = parse_size(optarg);
			if (ctl.opt.image_max == 0) {
				fprintf(stderr, "skyrootd: bad --image-max '%s': use e.g. 64G, 512M or bytes\n", optarg);
				return 2;
			}
			break;
		case 'l':
			lvl = sky_log_parse_level(optarg);
			if (lvl < 0) {
				fprintf(stderr, "skyrootd: bad --log-level '%s': use error, warn, info or debug\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!ctl.opt.state_dir || optind != argc) {
		fprintf(stderr, "skyrootd run: --state DIR is required\n");
		usage(stderr);
		return 2;
	}
	if (sky_parse_listen(ctl.opt.agent_listen, &agent_addr) < 0) {
		fprintf(stderr, "skyrootd: bad --agent-listen '%s': expected ADDR:PORT\n", ctl.opt.agent_listen);
		return 2;
	}
	struct sockaddr_storage boot_addr;
	if (ctl.opt.boot_listen && sky_parse_listen(ctl.opt.boot_listen, &boot_addr) < 0) {
		fprintf(stderr, "skyrootd: bad --boot-listen '%s': expected ADDR:PORT\n", ctl.opt.boot_listen);
		return 2;
	}
	if (ctl.opt.firmware_dir && access(ctl.opt.firmware_dir, R_OK | X_OK) < 0) {
		fprintf(stderr, "skyrootd: cannot read --firmware %s: %s (build it with fwimage/build.sh)\n",
			ctl.opt.firmware_dir, strerror(errno));
		return 2;
	}
	if (sky_parse_listen(ctl.opt.api_listen, &api_addr) < 0) {
		fprintf(stderr, "skyrootd: bad --api-listen '%s': expected ADDR:PORT\n", ctl.opt.api_listen);
		return 2;
	}
	snprintf(ctl.advertise, sizeof(ctl.advertise), "%s",
		 ctl.opt.advertise ? ctl.opt.advertise : ctl.opt.agent_listen);
	sky_log_init("skyrootd", (enum sky_log_level)lvl);
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
	uv_loop_init(&loop);
	ctl.loop = &loop;

	guests_set_ops(ctl.guests, &wire_guests_ops, &ctl);
	r = agentlink_start(&ctl, (struct sockaddr *)&agent_addr, &wire_agentlink_ops, &ctl);
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

	uv_run(&loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&loop);
	if (r < 0)
		log_warn("loop closed with handles still open: %s", uv_strerror(r));
	ctl_state_unload(&ctl);
	log_info("stopped");
	return 0;

fail:
	agentlink_stop(ctl.agents);
	api_stop(ctl.api);
	api_stop(ctl.boot);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	ctl_state_unload(&ctl);
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
