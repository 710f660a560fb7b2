/* skyrootd: the Skyroot controller.  `init` makes a state folder; `run`
 * serves the agent port (mTLS) and the HTTPS API from the main libuv loop,
 * with board sessions' transport spread over more loops (--threads; the
 * threading model: loops.c). */
#include <errno.h>
#include <malloc.h>
#include <openssl/crypto.h>
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
#include "controller/skyrootd/loops.h"
#include "controller/skyrootd/backup.h"
#include "controller/skyrootd/boots.h"
#include "controller/skyrootd/chunk_cache.h"
#include "controller/skyrootd/cmdline.h"
#include "controller/skyrootd/config.h"
#include "controller/skyrootd/consoles.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/migrate.h"
#include "controller/skyrootd/notify.h"
#include "controller/skyrootd/pending.h"
#include "controller/skyrootd/scrub.h"
#include "controller/skyrootd/sql.h"
#include "controller/skyrootd/store.h"
#include "controller/skyrootd/tpm_ca.h"
#include "controller/skyrootd/tpm_verify.h"

/* The options of each command: they parse argv and make the usage. */
static const char *opt_state, *opt_api_listen = CTL_DEFAULT_API_LISTEN, *opt_db;
static struct sky_arg_list opt_sans = { .max = 32 };
static struct sky_opt init_opts[] = {
	{ .name = "state", .kind = SKY_ARG_STR, .dest = &opt_state, .metavar = "DIR",
	  .help = "the state folder to create (required)" },
	{ .name = "san", .kind = SKY_ARG_LIST, .dest = &opt_sans, .metavar = "HOST_OR_IP",
	  .help = "another name of the server certificate besides localhost and\n127.0.0.1 (repeatable, up to 32)" },
	{ .name = "api-listen", .kind = SKY_ARG_CALLBACK, .cb = ctl_config_check_listen, .ctx = &opt_api_listen,
	  .metavar = "ADDR:PORT", .help = "only sets the URL written to skyctl.conf (default " CTL_DEFAULT_API_LISTEN ")" },
	{ .name = "db", .kind = SKY_ARG_STR, .dest = &opt_db, .metavar = "URI",
	  .help = "keep the store in PostgreSQL (postgresql://USER@HOST[:PORT]/DB, an\nempty database; the password from ~/.pgpass or PGPASSFILE)\ninstead of DIR/" CTL_DB_FILE
		  "; the URI goes to DIR/" CTL_DB_URL ".  More\ncontrollers: copy DIR to them (docs/ha.md)" },
	{ 0 }
};

static struct sky_opt reader_opts[] = {
	{ .name = "state", .kind = SKY_ARG_STR, .dest = &opt_state, .metavar = "DIR",
	  .help = "the state folder 'skyrootd init' made (required)" },
	{ 0 }
};

static void usage(FILE *f)
{
	fprintf(f, "usage: skyrootd init --state DIR [OPTIONS]\n"
		   "       skyrootd run --state DIR [OPTIONS]\n"
		   "       skyrootd backup --state DIR --to FILE\n"
		   "       skyrootd restore --from FILE --state DIR\n"
		   "       skyrootd migrate --from DIR --to postgresql://...\n"
		   "       skyrootd reader-token --state DIR\n"
		   "       skyrootd tpm-ca add|list --state DIR [FILE]\n"
		   "       skyrootd --version\n"
		   "\n"
		   "init   create the state folder: CA (ECDSA P-256), server certificate, image-signing\n"
		   "       key (Ed25519), admin API token and reader token (printed once), the store\n"
		   "       and DIR/skyctl.conf.\n");
	sky_args_usage(f, init_opts);
	fprintf(f, "\nreader-token  a new read-only token for GET /metrics (printed once), replacing the\n"
		   "       earlier one; a running controller takes it on SIGHUP.\n");
	sky_args_usage(f, reader_opts);
	fprintf(f, "\nrun    serve boards on the agent port and the REST API; SIGHUP re-reads the\n"
		   "       admin token hash, the config file and the server certificate,\n"
		   "       SIGTERM/SIGINT stop it.\n");
	ctl_config_usage(f);
	ctl_backup_usage(f);
	ctl_restore_usage(f);
	ctl_migrate_usage(f);
	ctl_tpm_ca_usage(f);
}

/* The cache of verified chunks (chunk_cache.h), on by default on a store in
 * PostgreSQL (the store is known once the state is loaded). */
static int main__chunk_cache(struct controller *ctl)
{
	bool pg = sql_target_is_pg(ctl->db_path);
	uint64_t bound = chunk_cache_bound(ctl->opt.chunk_cache, pg);
	char size[32];
	int r = chunk_cache_new(bound, &ctl->chunk_cache);

	if (r < 0) {
		log_error("cannot make the chunk cache: %s", strerror(-r));
		return r;
	}
	sky_format_size_exact(bound, size, sizeof(size));
	log_info("chunk cache: %s%s", bound ? size : "off",
		 ctl->opt.chunk_cache != CHUNK_CACHE_AUTO ? " (set by chunk-cache)"
		 : pg ? " (the default on PostgreSQL)" : " (the default on SQLite)");
	return 0;
}

/* The TPM manufacturer CAs of the state (tpm_ca.h): at start, and again on
 * SIGHUP (a set that does not load keeps the earlier one then). */
static int main__tpm_cas(struct controller *ctl)
{
	struct tpmv_cas *cas = NULL;
	size_t n = 0;
	char why[512] = "";
	int r = ctl_tpm_cas_load(ctl->opt.state_dir, &cas, &n, why, sizeof(why));

	if (r < 0) {
		log_error("TPM manufacturer CAs: %s", why);
		return r;
	}
	tpmv_cas_free(ctl->tpm_cas);
	ctl->tpm_cas = cas;
	ctl->tpm_ca_files = n;
	if (n)
		log_info("TPM manufacturer CAs: %zu file%s from %s/%s; boards' TPMs are checked against them", n,
			 n == 1 ? "" : "s", ctl->opt.state_dir, CTL_TPM_CA_DIR);
	else
		log_info("no TPM manufacturer CA configured ('skyrootd tpm-ca add'): boards' TPMs are not used");
	return 0;
}

static int reader_token_print(int sighup);

static int cmd_init(int argc, char **argv)
{
	const char *sans[SKY_ARG_LIST_MAX + 1] = { 0 };
	char token[128];
	int r = ctl_cmdline_parse("init", init_opts, 1, argc, argv, usage);

	if (r)
		return r < 0 ? 0 : r;
	for (unsigned i = 0; i < opt_sans.n; i++)
		sans[i] = opt_sans.v[i];
	/* Nobody else reads the state: the folder 0700, every file 0600. */
	umask(077);
	if (opt_db && !sql_target_is_pg(opt_db)) {
		fprintf(stderr, "skyrootd init: --db takes a PostgreSQL URI (postgresql://USER@HOST[:PORT]/DB); "
				"leave it out for a SQLite store in the state folder\n");
		return 2;
	}
	if (opt_db && !sql_engine(opt_db)) {
		fprintf(stderr, "skyrootd init: this skyrootd was built without PostgreSQL (libpq), so --db cannot "
				"be used; leave it out for a SQLite store in the state folder\n");
		return 1;
	}
	r = ctl_state_init(opt_state, sans, opt_api_listen, opt_db, token, sizeof(token));
	if (r == -EADDRINUSE) {
		fprintf(stderr, "skyrootd init: the database of --db already holds a Skyroot store; to add a controller "
				"to its fleet, copy the first controller's state folder (docs/ha.md)\n");
		return 1;
	}
	if (r == -ENOTCONN) {
		fprintf(stderr, "skyrootd init: cannot reach the PostgreSQL server of --db\n");
		return 1;
	}
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
	return reader_token_print(0);
}

/* A new read-only token for GET /metrics, printed once. */
static int reader_token_print(int sighup)
{
	char token[128];
	int r = ctl_state_reader_token(opt_state, token, sizeof(token));

	if (r < 0) {
		fprintf(stderr, "skyrootd: cannot make a reader token in %s: %s%s\n", opt_state, strerror(-r),
			r == -ENOENT ? " (run 'skyrootd init --state DIR' first)" : "");
		return 1;
	}
	printf("Reader token for GET /metrics (shown only now; only its hash is kept):\n  %s\n%s", token,
	       sighup ? "A running skyrootd takes it on SIGHUP; the earlier reader token no longer works then.\n" : "");
	OPENSSL_cleanse(token, sizeof(token));
	return 0;
}

static int cmd_reader_token(int argc, char **argv)
{
	int r = ctl_cmdline_parse("reader-token", reader_opts, 1, argc, argv, usage);

	if (r)
		return r < 0 ? 0 : r;
	umask(077);
	return reader_token_print(1);
}

/* ---- wiring: the agent link reports to guests, guests reach boards
 * through the agent link; neither knows the other. */

static void wire__board_up(void *ctx, const char *board_id)
{
	struct controller *ctl = ctx;
	fleet_board_up(ctl->fleet, board_id);
	events_add_soon(ctl->events, "board.online", "board", board_id, NULL);
	guests_board_up(ctl->guests, board_id);
}

static void wire__board_down(void *ctx, const char *board_id)
{
	struct controller *ctl = ctx;
	fleet_board_down(ctl->fleet, board_id);
}

static void wire__event(void *ctx, bool in_txn, const char *type, const char *kind, const char *id,
			const char *const *detail)
{
	struct controller *ctl = ctx;

	/* In a transaction (an enrollment): part of it.  The rest is written
	 * at the end of the loop turn with the others (a rack that drops is
	 * one fsync). */
	events_add_pairs(ctl->events, !in_txn, type, kind, id, detail);
}

static void wire__guest_report(void *ctx, const char *board_id, const Skyroot__GuestReport *r)
{
	struct controller *ctl = ctx;
	guests_on_report(ctl->guests, board_id, r);
}

static void wire__console(void *ctx, const char *board_id, const Skyroot__ConsoleData *d)
{
	struct controller *ctl = ctx;
	consoles_on_data(ctl->consoles, board_id, d);
}

/* The board's answer to a boot order, on the controller holding its
 * session: the order may have been sent through another one (boots.h
 * keeps it in the store).  The answer, its event and, when the board will
 * not boot, its state (not shown as running a bare-metal OS once it goes
 * offline) commit together. */
static int wire__boot_settle(struct controller *ctl, const char *board_id, uint64_t req,
			     const Skyroot__BareMetalBootResult *res, struct boot_status *st)
{
	char reqs[24];
	int r = db_begin(ctl->db);

	if (r < 0)
		return r;
	r = boots_answer(ctl->boots, board_id, req, res->outcome, res->error, sky_unix_now(), st);
	if (r == 0) {
		snprintf(reqs, sizeof(reqs), "%llu", (unsigned long long)req);
		events_add_kv(ctl->events,
			      res->outcome == SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED ? "board.boot" :
			      res->outcome == SKYROOT__BOOT_OUTCOME__BOOT_REFUSED  ? "board.refused" :
										     "board.failed",
			      "board", board_id, "order", "boot", "request_id", reqs, "reason", st->error, NULL);
	}
	if (r == 0 && res->outcome != SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED && ctl->agents)
		r = agentlink_board_baremetal(ctl->agents, board_id, false);
	if (r == 0)
		r = db_commit(ctl->db);
	if (r < 0)
		db_rollback(ctl->db);
	return r;
}

static void wire__boot_result(void *ctx, const char *board_id, uint64_t req, const Skyroot__BareMetalBootResult *res)
{
	struct controller *ctl = ctx;
	struct boot_status st;
	int r = wire__boot_settle(ctl, board_id, req, res, &st);

	if (r == -ENOENT || r == -ESTALE || r == -EALREADY) {
		log_debug("board %s: answer to boot order %llu ignored: %s", board_id, (unsigned long long)req,
			  r == -ESTALE ? "not its last order" : r == -EALREADY ? "already settled" : "no order");
		return;
	}
	if (r < 0) {
		log_warn("board %s: its answer to boot order %llu not recorded: %s", board_id,
			 (unsigned long long)req, strerror(-r));
		return;
	}
	if (res->outcome == SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED) {
		log_info("board %s: accepted the bare-metal boot (order %llu)", board_id, (unsigned long long)req);
		return;
	}
	/* The board's words go through the logger, which escapes them. */
	log_warn("board %s: bare-metal boot %s (order %llu): %s", board_id,
		 res->outcome == SKYROOT__BOOT_OUTCOME__BOOT_REFUSED ? "refused" : "failed", (unsigned long long)req,
		 st.error);
}

static const struct agentlink_ops wire_agentlink_ops = {
	.board_up = wire__board_up,
	.board_down = wire__board_down,
	.guest_report = wire__guest_report,
	.console = wire__console,
	.boot_result = wire__boot_result,
	.event = wire__event,
};

static bool wire__online(void *ctx, const char *board_id)
{
	struct controller *ctl = ctx;
	return fleet_board_online(ctl->fleet, board_id, NULL);
}

static int wire__send(void *ctx, const char *board_id, Skyroot__Envelope *env)
{
	struct controller *ctl = ctx;
	return fleet_board_send(ctl->fleet, board_id, env);
}

/* What the fleet does to boards held here: the agent link's sessions. */
static bool wire__here_online(void *ctx, const char *board_id, int64_t *last_seen)
{
	struct controller *ctl = ctx;
	return ctl->agents && agentlink_board_online(ctl->agents, board_id, last_seen);
}

static int wire__here_send(void *ctx, const char *board_id, Skyroot__Envelope *env)
{
	struct controller *ctl = ctx;
	return agentlink_board_send(ctl->agents, board_id, env);
}

static int wire__here_fetch(void *ctx, const char *board_id, const char *image_id)
{
	struct controller *ctl = ctx;
	return agentlink_board_fetch(ctl->agents, board_id, image_id);
}

static void wire__here_kick(void *ctx, const char *board_id)
{
	struct controller *ctl = ctx;
	agentlink_board_kick(ctl->agents, board_id);
}

static const struct fleet_local_ops wire_fleet_ops = {
	.online = wire__here_online,
	.send = wire__here_send,
	.fetch = wire__here_fetch,
	.kick = wire__here_kick,
};

static void wire__guest_deleted(void *ctx, const char *guest_id)
{
	struct controller *ctl = ctx;
	consoles_forget(ctl->consoles, guest_id);
}

static const struct guests_ops wire_guests_ops = {
	.online = wire__online,
	.send = wire__send,
	.deleted = wire__guest_deleted,
};

/* After the loop: nothing adds events any more. */
static void main__events_close(struct controller *ctl)
{
	if (!ctl->events)
		return;
	guests_set_events(ctl->guests, NULL);
	events_close(ctl->events);
	ctl->events = NULL;
	uv_run(ctl->loop, UV_RUN_DEFAULT);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct controller *ctl = h->data;
	log_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	ctl_notify_stopping(ctl);
	agentlink_stop(ctl->agents);
	api_stop(ctl->api);
	api_stop(ctl->boot);
	scrub_stop(ctl->scrub);
	events_set_fleet(ctl->events, NULL);
	consoles_stop(ctl->consoles); /* what waits goes to the store, before the bus */
	ctl->consoles = NULL;
	fleet_stop(ctl->fleet); /* after the sessions: its presence rows go last */
	ctl->scrub = NULL;
	ctl->fleet = NULL;
	ctl->agents = NULL;
	ctl->api = NULL;
	ctl->boot = NULL;
	uv_close((uv_handle_t *)&ctl->sigterm, NULL);
	uv_close((uv_handle_t *)&ctl->sigint, NULL);
	uv_close((uv_handle_t *)&ctl->sighup, NULL);
}

/* SIGHUP: re-read the config file and the server certificate
 * (config.c), and the admin and reader token hashes (new tokens without a
 * restart).  The log goes to stderr: nothing to reopen. */
static void on_sighup(uv_signal_t *h, int signum)
{
	struct controller *ctl = h->data;
	int r;

	(void)signum;
	ctl_config_reload(ctl);
	r = ctl_state_reload(ctl);
	if (r < 0) {
		log_error("SIGHUP: cannot re-read %s/%s: %s; the admin token is unchanged", ctl->opt.state_dir,
			  CTL_ADMIN_HASH, r == -EPERM ? "it is readable by others (chmod 600 it)" : strerror(-r));
		return;
	}
	log_info("SIGHUP: reloaded the admin and reader token hashes from %s (the log goes to stderr: nothing to "
		 "reopen)", ctl->opt.state_dir);
	if (main__tpm_cas(ctl) < 0)
		log_error("SIGHUP: the TPM manufacturer CAs are unchanged");
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
	struct ctl_config cfg;
	struct sockaddr_storage agent_addr, api_addr, boot_addr;
	uv_loop_t loop;
	char err[600];
	int r = ctl_config_load(&cfg, argc, argv, err, sizeof(err));

	if (r == 1) {
		usage(stdout);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "skyrootd run: %s\n", err);
		return 2;
	}
	ctl.config = &cfg;
	ctl_config_options(&cfg, &ctl.opt);
	/* Checked by the option table (config.c) already. */
	sky_parse_listen(ctl.opt.agent_listen, &agent_addr);
	sky_parse_listen(ctl.opt.api_listen, &api_addr);
	if (ctl.opt.boot_listen)
		sky_parse_listen(ctl.opt.boot_listen, &boot_addr);
	if (ctl.opt.firmware_dir && access(ctl.opt.firmware_dir, R_OK | X_OK) < 0) {
		fprintf(stderr, "skyrootd: cannot read --firmware %s: %s (build it with fwimage/build.sh)\n",
			ctl.opt.firmware_dir, strerror(errno));
		ctl_config_free(&cfg);
		return 2;
	}
	snprintf(ctl.advertise, sizeof(ctl.advertise), "%s",
		 ctl.opt.advertise ? ctl.opt.advertise : ctl.opt.agent_listen);
	sky_log_init("skyrootd", (enum sky_log_level)cfg.log_level);
	sky_log_set_journal(sky_log_stderr_is_journal());
	/* The store holds images and hashes: nobody else reads what we write. */
	umask(077);
	/* Image chunks live in buffers allocated once and reused (al_pool.c).
	 * What else is large (an upload's chunk, the scrub's, the frame of a
	 * board that did not ask for the tail form) is mapped on its own and
	 * given back whole when freed, instead of staying in some thread's
	 * arena: the RSS stays near what is in use (measured: tests/bench/
	 * images.py, the controller's peak RSS). */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	/* No fastbins (the per-thread tcache still takes small frees): an API
	 * answer frees ~100,000 small JSON and protobuf-c objects at once,
	 * and the next large malloc or free then merged all of them in one
	 * malloc_consolidate, scattered over a heap larger than the caches:
	 * GET /v1/boards of 1,000 boards cost 2.7x more per board than of
	 * 100 (tests/bench/api_reads.py). */
	mallopt(M_MXFAST, 0);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	r = ctl_state_load(&ctl);
	if (r < 0) {
		ctl_config_free(&cfg);
		return 1;
	}
	if (main__tpm_cas(&ctl) < 0) {
		ctl_state_unload(&ctl);
		ctl_config_free(&cfg);
		return 1;
	}
	r = boots_open(ctl.db, &ctl.boots);
	if (r < 0) {
		log_error("cannot prepare the boot orders' statements: %s", strerror(-r));
		ctl_state_unload(&ctl);
		ctl_config_free(&cfg);
		return 1;
	}
	ctl.pending_rate = pending_rate_new(PENDING_RATE_BURST, PENDING_RATE_REFILL_MS, PENDING_RATE_SLOTS);
	if (!ctl.pending_rate) {
		log_error("out of memory");
		boots_free(ctl.boots);
		ctl_state_unload(&ctl);
		ctl_config_free(&cfg);
		return 1;
	}
	uv_loop_init(&loop);
	ctl.loop = &loop;
	r = loops_start(&loop, ctl.opt.threads ? ctl.opt.threads : loops_cpus(), &ctl.loops);
	if (r < 0) {
		uv_loop_close(&loop);
		boots_free(ctl.boots);
		pending_rate_free(ctl.pending_rate);
		ctl_state_unload(&ctl);
		ctl_config_free(&cfg);
		return 1;
	}

	r = main__chunk_cache(&ctl);
	if (r < 0)
		goto fail;
	r = events_open(ctl.db, &loop, ctl.opt.events_keep, &ctl.events);
	if (r < 0) {
		log_error("cannot open the event log: %s", strerror(-r));
		goto fail;
	}
	guests_set_events(ctl.guests, ctl.events);
	r = fleet_start(&ctl, &ctl.fleet);
	if (r < 0) {
		log_error("cannot start the fleet bus: %s", strerror(-r));
		goto fail;
	}
	fleet_set_local(ctl.fleet, &wire_fleet_ops, &ctl);
	events_set_fleet(ctl.events, ctl.fleet);
	r = consoles_start(&loop, ctl.db, ctl.guests, ctl.fleet, &ctl.consoles);
	if (r < 0) {
		log_error("cannot start the guests' consoles: %s", strerror(-r));
		goto fail;
	}
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
	r = scrub_start(&ctl, ctl.opt.scrub_rate, &ctl.scrub);
	if (r < 0) {
		log_error("cannot start the scrub: %s", strerror(-r));
		goto fail;
	}
	uv_signal_init(&loop, &ctl.sigterm);
	uv_signal_init(&loop, &ctl.sigint);
	uv_signal_init(&loop, &ctl.sighup);
	ctl.sigterm.data = ctl.sigint.data = ctl.sighup.data = &ctl;
	uv_signal_start(&ctl.sighup, on_sighup, SIGHUP);
	uv_signal_start(&ctl.sigterm, on_signal, SIGTERM);
	uv_signal_start(&ctl.sigint, on_signal, SIGINT);
	log_info("skyrootd %s: agents on %s (mTLS 1.3), API on https://%s, boards dial %s, CA %s, %u event loop%s",
		 SKY_VERSION, ctl.opt.agent_listen, ctl.opt.api_listen, ctl.advertise, ctl.ca_pin_str,
		 loops_count(ctl.loops), loops_count(ctl.loops) == 1 ? "" : "s");
	ctl_notify_ready(&ctl);

	uv_run(&loop, UV_RUN_DEFAULT);
	loops_stop(ctl.loops); /* every session is gone: nothing posts any more */
	main__events_close(&ctl);
	r = uv_loop_close(&loop);
	if (r < 0)
		log_warn("loop closed with handles still open: %s", uv_strerror(r));
	boots_free(ctl.boots); /* its statements before the store's connection */
	ctl_state_unload(&ctl);
	pending_rate_free(ctl.pending_rate);
	tpmv_cas_free(ctl.tpm_cas);
	chunk_cache_free(ctl.chunk_cache);
	log_info("stopped");
	ctl_config_free(&cfg);
	return 0;

fail:
	scrub_stop(ctl.scrub);
	agentlink_stop(ctl.agents);
	events_set_fleet(ctl.events, NULL);
	consoles_stop(ctl.consoles);
	ctl.consoles = NULL;
	fleet_stop(ctl.fleet);
	ctl.fleet = NULL;
	api_stop(ctl.api);
	api_stop(ctl.boot);
	uv_run(&loop, UV_RUN_DEFAULT);
	loops_stop(ctl.loops);
	main__events_close(&ctl);
	uv_loop_close(&loop);
	boots_free(ctl.boots); /* its statements before the store's connection */
	ctl_state_unload(&ctl);
	pending_rate_free(ctl.pending_rate);
	tpmv_cas_free(ctl.tpm_cas);
	chunk_cache_free(ctl.chunk_cache);
	ctl_config_free(&cfg);
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
	if (strcmp(argv[1], "backup") == 0)
		return ctl_backup_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "restore") == 0)
		return ctl_restore_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "migrate") == 0)
		return ctl_migrate_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "reader-token") == 0)
		return cmd_reader_token(argc - 1, argv + 1);
	if (strcmp(argv[1], "tpm-ca") == 0)
		return ctl_tpm_ca_main(argc - 1, argv + 1);
	fprintf(stderr, "skyrootd: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
