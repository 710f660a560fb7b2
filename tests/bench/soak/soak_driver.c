/* soak_driver: N simulated boards (real agents over real mTLS, sharing one
 * loop, as in bench_agents) held on one controller for M minutes with churn:
 *
 *   - every board enrolls (one multi-use token) and keeps its session with
 *     heartbeats; its key and certificate are kept in its own folder of
 *     --identity-root (a tmpfs), as the firmware keeps them in /run;
 *   - at the start of every minute --churn percent of the boards are killed
 *     (the socket dropped, no TLS close_notify, as when the agent process
 *     dies) and started again at once: they reconnect with the kept
 *     certificate; start -> session up is each reconnect's time;
 *   - every minute one fixture board (--fixtures DIR/0, DIR/1, ...: real
 *     sysfs/procfs trees its agent reads) gets more memory; its agent
 *     notices and sends its inventory again; skyctl board show tells when
 *     the controller has it;
 *   - every minute --fetches boards are told by skyctl image fetch to load
 *     --image into their RAM; the board's image cache tells when it is there.
 *
 * At the end of every minute one line "soak: minute M: ..." and the figures
 * "figure soak.mM.NAME VALUE UNIT (note)" (bench_util.h); at the end the
 * run's figures.  tests/bench/soak/run.sh starts the controller, the flood
 * and this, and computes the verdict from the figures. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/images.h"
#include "bench_board.h"
#include "bench_util.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "soak_ctl.h"

#define TICK_MS 100
#define MINUTE_MS 60000u
#define MAX_BOARDS 20000u
#define MAX_FIXTURES 64u
#define RECONNECT_SLOW_MS 60000u  /* a churned board not back by then is an error */
#define FETCH_TIMEOUT_MS 120000u
#define INV_TIMEOUT_MS 60000u
#define INV_POLL_MS 3000u
#define CTL_TIMEOUT_MS 30000u
#define PROGRESS_MS 10000u

enum board_state { B_NEW, B_ENROLLING, B_UP, B_DOWN, B_RESTARTING, B_FAILED };

/* Errors by kind, counted per minute and for the whole run. */
enum err_kind { E_LOST, E_REFUSED, E_RECONNECT, E_API, E_FETCH, E_INVENTORY, E_KINDS };
static const char *const err_names[E_KINDS] = {
	[E_LOST] = "session_lost", [E_REFUSED] = "refused", [E_RECONNECT] = "reconnect_slow",
	[E_API] = "api", [E_FETCH] = "fetch", [E_INVENTORY] = "inventory",
};

struct soak;

struct board {
	struct soak *s;
	unsigned idx;
	struct agent *a;             /* NULL while stopped */
	struct agent_config cfg;     /* its own: the identity folder differs */
	struct inventory inv;        /* simulated facts; unused by fixture boards */
	const char *fixture;         /* the sysfs/procfs root of a fixture board, or NULL */
	enum board_state st;
	uint64_t t_start;            /* enrollment or restart */
	bool slow_counted;
	/* image fetch */
	bool fetch_asked, fetching;
	uint64_t t_fetch;
	/* inventory change (fixture boards) */
	uint64_t inv_expect;         /* bytes; 0: nothing pending */
	uint64_t t_inv, t_inv_poll;
	bool inv_polling;
	char id[64];                 /* board id, once enrolled */
};

struct minute_stats {
	struct bench_samples reconnect, hb;
	struct bench_samples lag;    /* how late this process's own tick ran */
	int64_t ctl_cpu0, self_cpu0; /* CPU ms at the start of the minute */
	unsigned errors[E_KINDS];
	unsigned churned;
};

struct soak {
	/* options */
	struct agent_config base;
	unsigned n, concurrency, minutes, churn_pct, fetches;
	pid_t ctl_pid;
	uint32_t tag;
	const char *identity_root, *fixtures, *skyctl, *skyctl_conf, *image;
	uint64_t enroll_timeout_ms;
	char fixture_roots[MAX_FIXTURES][4096];
	unsigned n_fixtures;

	uv_loop_t loop;
	uv_timer_t tick;
	uv_signal_t sigint, sigterm;
	struct board *boards;
	unsigned next, in_flight, n_enrolled, n_up, n_failed;
	bool running, done, interrupted;
	uint64_t t_begin, t_run0, t_progress;
	unsigned minute;             /* minutes begun */
	struct minute_stats cur;
	struct bench_samples reconnect_all, hb_all, fetch_all, inv_all;
	unsigned errors_all[E_KINDS];
	unsigned churned_all, fetch_done, inv_done;
	char first_error[E_KINDS][256];
	long rss_max;
	int fds_max;
	uint64_t t_last_tick;
	int exit_code;
};

static void launch_more(struct soak *s);

static void count_error(struct soak *s, enum err_kind k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void count_error(struct soak *s, enum err_kind k, const char *fmt, ...)
{
	s->cur.errors[k]++;
	s->errors_all[k]++;
	if (!s->first_error[k][0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->first_error[k], sizeof(s->first_error[k]), fmt, ap);
		va_end(ap);
		fprintf(stderr, "soak_driver: first %s error: %s\n", err_names[k], s->first_error[k]);
	}
}

/* ---- the boards ---- */

static void on_agent_event(struct agent *a, enum agent_event ev, void *ud)
{
	struct board *bd = ud;
	struct soak *s = bd->s;
	uint64_t now = bench_now_us();

	if (bd->a != a)
		return; /* a killed agent closing */
	switch (ev) {
	case AGENT_EV_ENROLLED:
		if (!bd->id[0]) {
			snprintf(bd->id, sizeof(bd->id), "%s", agent_board_id(a));
			s->n_enrolled++;
		}
		break;
	case AGENT_EV_SESSION_UP:
		if (bd->st == B_ENROLLING) {
			s->in_flight--;
			launch_more(s);
		} else if (bd->st == B_RESTARTING) {
			bench_samples_add(&s->cur.reconnect, now - bd->t_start);
			bench_samples_add(&s->reconnect_all, now - bd->t_start);
		} else if (bd->st != B_DOWN) {
			break;
		}
		bd->st = B_UP;
		s->n_up++;
		break;
	case AGENT_EV_SESSION_DOWN:
		if (bd->st != B_UP)
			break;
		bd->st = B_DOWN;
		s->n_up--;
		if (s->running)
			count_error(s, E_LOST, "board %s: session went down (%s)", bd->id, agent_last_error(a));
		break;
	case AGENT_EV_HEARTBEAT:
		if (s->running) {
			bench_samples_add(&s->cur.hb, agent_last_rtt_us(a));
			bench_samples_add(&s->hb_all, agent_last_rtt_us(a));
		}
		break;
	case AGENT_EV_REFUSED:
		count_error(s, E_REFUSED, "board %u: %s", bd->idx, agent_last_error(a));
		if (bd->st == B_ENROLLING) {
			bd->st = B_FAILED;
			s->n_failed++;
			s->in_flight--;
			/* Stopped by the clock, not inside its own callback. */
		}
		break;
	case AGENT_EV_RENEWED:
		break;
	}
}

static const struct agent_hooks soak_hooks = {.on_event = on_agent_event};

static int board_start(struct board *bd)
{
	struct soak *s = bd->s;
	int r = agent_new(&s->loop, &bd->cfg, bd->fixture ? NULL : &bd->inv, &soak_hooks, bd, &bd->a);
	if (r < 0)
		return r;
	bd->t_start = bench_now_us();
	bd->slow_counted = false;
	return agent_start(bd->a);
}

static int board_setup(struct soak *s, unsigned i)
{
	struct board *bd = &s->boards[i];
	int n;

	bd->s = s;
	bd->idx = i;
	bd->cfg = s->base;
	n = snprintf(bd->cfg.identity_dir, sizeof(bd->cfg.identity_dir), "%s/%05u", s->identity_root, i);
	if (n < 0 || (size_t)n >= sizeof(bd->cfg.identity_dir))
		return -ENAMETOOLONG;
	if (i < s->n_fixtures) {
		bd->fixture = s->fixture_roots[i];
		snprintf(bd->cfg.sysfs_root, sizeof(bd->cfg.sysfs_root), "%s/sys", bd->fixture);
		snprintf(bd->cfg.procfs_root, sizeof(bd->cfg.procfs_root), "%s/proc", bd->fixture);
		snprintf(bd->cfg.devfs_root, sizeof(bd->cfg.devfs_root), "%s/dev", bd->fixture);
	} else {
		bench_board_inventory(s->tag, i, &bd->inv);
	}
	return 0;
}

static void launch_more(struct soak *s)
{
	while (s->in_flight < s->concurrency && s->next < s->n) {
		struct board *bd = &s->boards[s->next++];
		int r = board_setup(s, s->next - 1);
		if (r == 0)
			r = board_start(bd);
		if (r < 0) {
			count_error(s, E_REFUSED, "board %u cannot start: %s", bd->idx, strerror(-r));
			bd->st = B_FAILED;
			s->n_failed++;
			if (r == -EMFILE || r == -ENFILE || r == -ENOMEM)
				break;
			continue;
		}
		bd->st = B_ENROLLING;
		s->in_flight++;
	}
}

/* Kill a board as its process would die, and start it again at once. */
static void board_churn(struct board *bd)
{
	struct soak *s = bd->s;
	struct agent *a = bd->a;
	int r;

	bd->a = NULL;
	agent_kill(a);
	bd->st = B_RESTARTING;
	s->n_up--;
	r = board_start(bd);
	if (r < 0)
		count_error(s, E_RECONNECT, "board %s cannot restart: %s", bd->id, strerror(-r));
}

/* A board that is up, not a fixture board and not fetching: random. */
static struct board *pick_board(struct soak *s, bool for_fetch)
{
	for (unsigned tries = 0; tries < 64; tries++) {
		struct board *bd = &s->boards[s->n_fixtures + sky_random_below(s->n - s->n_fixtures)];
		if (bd->st == B_UP && bd->a && !bd->fetching && !(for_fetch && bd->fetch_asked))
			return bd;
	}
	return NULL;
}

/* ---- skyctl: image fetch and board show ---- */

static void fetch_asked(void *ud, int status, const char *out, const char *err)
{
	struct board *bd = ud;
	struct soak *s = bd->s;
	(void)out;
	if (status != 0) {
		bd->fetching = false;
		count_error(s, E_API, "skyctl image fetch --board %s: %s (status %d)", bd->id,
			    status == -ETIMEDOUT ? "no answer in 30 s" : err, status);
		count_error(s, E_FETCH, "board %s: the API did not take the fetch", bd->id);
	}
}

static void fetch_start(struct soak *s)
{
	for (unsigned k = 0; k < s->fetches && s->image; k++) {
		struct board *bd = pick_board(s, true);
		if (!bd)
			return;
		const char *args[] = {"image", "fetch", s->image, "--board", bd->id, "--no-wait", NULL};
		bd->fetch_asked = bd->fetching = true;
		bd->t_fetch = bench_now_us();
		if (soak_ctl_run(&s->loop, s->skyctl, s->skyctl_conf, args, CTL_TIMEOUT_MS, fetch_asked, bd) < 0) {
			bd->fetching = false;
			count_error(s, E_FETCH, "cannot run %s", s->skyctl);
		}
	}
}

static void fetch_check(struct soak *s, struct board *bd, uint64_t now)
{
	uint64_t size;
	if (!bd->fetching || !bd->a)
		return;
	if (imgcache_fd(agent_images(bd->a), s->image, &size) >= 0) {
		bd->fetching = false;
		s->fetch_done++;
		bench_samples_add(&s->fetch_all, now - bd->t_fetch);
	} else if (now - bd->t_fetch > FETCH_TIMEOUT_MS * 1000ull) {
		const char *why = imgcache_error(agent_images(bd->a), s->image);
		bd->fetching = false;
		count_error(s, E_FETCH, "board %s: image not in its RAM after %u s%s%s", bd->id,
			    FETCH_TIMEOUT_MS / 1000, why ? ": " : "", why ? why : "");
	}
}

static void inv_shown(void *ud, int status, const char *out, const char *err)
{
	struct board *bd = ud;
	struct soak *s = bd->s;
	uint64_t mem, now = bench_now_us();

	bd->inv_polling = false;
	if (!bd->inv_expect)
		return;
	if (status != 0) {
		count_error(s, E_API, "skyctl board show %s: %s (status %d)", bd->id,
			    status == -ETIMEDOUT ? "no answer in 30 s" : err, status);
		return;
	}
	if (soak_json_u64(out, "memory_bytes", &mem) == 0 && mem == bd->inv_expect) {
		bench_samples_add(&s->inv_all, now - bd->t_inv);
		s->inv_done++;
		bd->inv_expect = 0;
	}
}

static void inv_change(struct soak *s)
{
	if (!s->n_fixtures || !s->skyctl)
		return;
	struct board *bd = &s->boards[(s->minute - 1) % s->n_fixtures];
	uint64_t kib;
	int r;
	if (bd->st != B_UP || bd->inv_expect)
		return;
	r = soak_fixture_memory(bd->fixture, &kib);
	if (r == 0)
		r = soak_fixture_set_memory(bd->fixture, kib + (1u << 20));
	if (r < 0) {
		count_error(s, E_INVENTORY, "cannot change the memory of fixture %s: %s", bd->fixture, strerror(-r));
		return;
	}
	bd->inv_expect = (kib + (1u << 20)) * 1024;
	bd->t_inv = bench_now_us();
	bd->t_inv_poll = 0;
}

static void inv_check(struct soak *s, struct board *bd, uint64_t now)
{
	if (!bd->inv_expect || bd->inv_polling)
		return;
	if (now - bd->t_inv > INV_TIMEOUT_MS * 1000ull) {
		count_error(s, E_INVENTORY, "board %s: the controller does not show its new memory after %u s", bd->id,
			    INV_TIMEOUT_MS / 1000);
		bd->inv_expect = 0;
		return;
	}
	if (now - bd->t_inv_poll < INV_POLL_MS * 1000ull)
		return;
	bd->t_inv_poll = now;
	const char *args[] = {"-o", "json", "board", "show", bd->id, NULL};
	if (soak_ctl_run(&s->loop, s->skyctl, s->skyctl_conf, args, CTL_TIMEOUT_MS, inv_shown, bd) == 0)
		bd->inv_polling = true;
}

/* ---- figures ---- */

static void fig_ms(const char *name, struct bench_samples *v, double p, const char *note)
{
	bench_figure(name, (double)bench_samples_pct(v, p) / 1000.0, "ms", "%s, %zu samples", note, v->n);
}

static void minute_stats_reset(struct soak *s)
{
	struct minute_stats *m = &s->cur;
	bench_samples_free(&m->reconnect);
	bench_samples_free(&m->hb);
	bench_samples_free(&m->lag);
	memset(m, 0, sizeof(*m));
	bench_samples_init(&m->reconnect, s->n);
	bench_samples_init(&m->hb, (size_t)s->n * 60000 / (s->base.heartbeat_ms * 9 / 10) + 1024);
	bench_samples_init(&m->lag, MINUTE_MS / TICK_MS + 64);
	m->ctl_cpu0 = s->ctl_pid > 0 ? bench_cpu_ms(s->ctl_pid) : -1;
	m->self_cpu0 = bench_self_cpu_ms();
}

static void minute_report(struct soak *s)
{
	struct minute_stats *m = &s->cur;
	long rss = s->ctl_pid > 0 ? bench_rss_kib(s->ctl_pid) : -1;
	int fds = s->ctl_pid > 0 ? bench_fd_count(s->ctl_pid) : -1;
	char f[128], errs[256];
	size_t off = 0;
	unsigned total = 0;

	if (rss > s->rss_max)
		s->rss_max = rss;
	if (fds > s->fds_max)
		s->fds_max = fds;
	for (int k = 0; k < E_KINDS; k++) {
		total += m->errors[k];
		if (m->errors[k])
			off += (size_t)snprintf(errs + off, sizeof(errs) - off, " %s=%u", err_names[k], m->errors[k]);
	}
	if (!total)
		snprintf(errs, sizeof(errs), " none");
	int64_t ctl_cpu = s->ctl_pid > 0 ? bench_cpu_ms(s->ctl_pid) : -1, self_cpu = bench_self_cpu_ms();
	double ctl_pct = ctl_cpu >= 0 && m->ctl_cpu0 >= 0 ? (double)(ctl_cpu - m->ctl_cpu0) * 100.0 / MINUTE_MS : -1;
	double self_pct = (double)(self_cpu - m->self_cpu0) * 100.0 / MINUTE_MS;
	printf("soak: minute %u: sessions %u/%u, churned %u, reconnect p50/p99/max %.0f/%.0f/%.0f ms, "
	       "heartbeat p99 %.1f ms (%zu beats), controller RSS %ld KiB, fds %d, CPU %.0f%%, "
	       "boards' CPU %.0f%% and loop lag p99 %.0f ms, errors:%s\n",
	       s->minute, s->n_up, s->n, m->churned, bench_samples_pct(&m->reconnect, 50) / 1000.0,
	       bench_samples_pct(&m->reconnect, 99) / 1000.0, bench_samples_max(&m->reconnect) / 1000.0,
	       bench_samples_pct(&m->hb, 99) / 1000.0, m->hb.n, rss, fds, ctl_pct, self_pct,
	       bench_samples_pct(&m->lag, 99) / 1000.0, errs);
#define MFIG(suffix) (snprintf(f, sizeof(f), "soak.m%u.%s", s->minute, suffix), f)
	bench_figure(MFIG("sessions"), s->n_up, "sessions", "up at the end of minute %u, of %u", s->minute, s->n);
	bench_figure(MFIG("rss"), (double)rss, "KiB", "controller VmRSS at the end of minute %u", s->minute);
	bench_figure(MFIG("fds"), fds, "fds", "controller open files at the end of minute %u", s->minute);
	fig_ms(MFIG("reconnect_p50"), &m->reconnect, 50, "churned board: start -> session up");
	fig_ms(MFIG("reconnect_p99"), &m->reconnect, 99, "churned board: start -> session up");
	fig_ms(MFIG("reconnect_max"), &m->reconnect, 100, "churned board: start -> session up");
	fig_ms(MFIG("hb_p99"), &m->hb, 99, "heartbeat round trip");
	fig_ms(MFIG("boards_lag_p99"), &m->lag, 99, "how late the boards' own loop ran: its share of every round trip");
	bench_figure(MFIG("ctl_cpu"), ctl_pct, "%", "controller CPU in minute %u, of one core", s->minute);
	bench_figure(MFIG("boards_cpu"), self_pct, "%", "the simulated boards' CPU in minute %u, of one core", s->minute);
	bench_figure(MFIG("errors"), total, "errors", "%s", errs + 1);
	for (int k = 0; k < E_KINDS; k++) {
		char name[32];
		snprintf(name, sizeof(name), "errors.%s", err_names[k]);
		bench_figure(MFIG(name), m->errors[k], "errors", "in minute %u", s->minute);
	}
#undef MFIG
	minute_stats_reset(s);
}

static void final_report(struct soak *s)
{
	unsigned pending_restart = 0, total = 0;
	for (unsigned i = 0; i < s->n; i++)
		pending_restart += s->boards[i].st == B_RESTARTING;
	bench_figure("soak.boards", s->n, "boards", "asked; %u failed to enroll", s->n_failed);
	bench_figure("soak.sessions_end", s->n_up, "sessions", "up at the end; %u churned boards still reconnecting",
		     pending_restart);
	bench_figure("soak.churned", s->churned_all, "restarts", "boards killed and started again (%u%% a minute)",
		     s->churn_pct);
	fig_ms("soak.reconnect_p50", &s->reconnect_all, 50, "churned board: start -> session up, whole run");
	fig_ms("soak.reconnect_p99", &s->reconnect_all, 99, "churned board: start -> session up, whole run");
	fig_ms("soak.reconnect_max", &s->reconnect_all, 100, "churned board: start -> session up, whole run");
	fig_ms("soak.hb_p50", &s->hb_all, 50, "heartbeat round trip, whole run");
	fig_ms("soak.hb_p99", &s->hb_all, 99, "heartbeat round trip, whole run");
	fig_ms("soak.hb_max", &s->hb_all, 100, "heartbeat round trip, whole run");
	bench_figure("soak.fetches", s->fetch_done, "images", "images fetched into a board's RAM");
	if (s->fetch_all.n)
		fig_ms("soak.fetch_p50", &s->fetch_all, 50, "skyctl image fetch -> image in the board's RAM");
	bench_figure("soak.inventory_changes", s->inv_done, "changes", "inventory changes the API showed");
	if (s->inv_all.n)
		fig_ms("soak.inventory_max", &s->inv_all, 100, "fixture changed -> the API shows it");
	bench_figure("soak.ctl_rss_max", (double)s->rss_max, "KiB", "controller VmRSS, highest minute");
	bench_figure("soak.ctl_fds_max", s->fds_max, "fds", "controller open files, highest minute");
	for (int k = 0; k < E_KINDS; k++) {
		char name[64];
		total += s->errors_all[k];
		snprintf(name, sizeof(name), "soak.errors.%s", err_names[k]);
		bench_figure(name, s->errors_all[k], "errors", "whole run%s%.200s", s->first_error[k][0] ? "; first: " : "",
			     s->first_error[k]);
	}
	bench_figure("soak.errors", total, "errors", "whole run, every kind");
	if (s->hb_all.dropped || s->reconnect_all.dropped)
		fprintf(stderr, "soak_driver: samples dropped (store full): %zu heartbeats, %zu reconnects\n",
			s->hb_all.dropped, s->reconnect_all.dropped);
}

/* ---- the clock ---- */

static void stop_everything(struct soak *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct agent *a = s->boards[i].a;
		s->boards[i].a = NULL;
		agent_stop(a);
	}
	uv_timer_stop(&s->tick);
	uv_close((uv_handle_t *)&s->tick, NULL);
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	s->done = true;
}

static void minute_begin(struct soak *s)
{
	unsigned k = s->n * s->churn_pct / 100;
	s->minute++;
	if (s->churn_pct && !k)
		k = 1;
	for (unsigned i = 0; i < k; i++) {
		struct board *bd = pick_board(s, false);
		if (!bd)
			break;
		board_churn(bd);
		s->cur.churned++;
		s->churned_all++;
	}
	fetch_start(s);
	inv_change(s);
}

static void watch_boards(struct soak *s, uint64_t now)
{
	for (unsigned i = 0; i < s->next; i++) {
		struct board *bd = &s->boards[i];
		if (bd->st == B_FAILED && bd->a) {
			struct agent *a = bd->a;
			bd->a = NULL;
			agent_stop(a);
		}
		if (bd->st == B_RESTARTING && !bd->slow_counted && now - bd->t_start > RECONNECT_SLOW_MS * 1000ull) {
			bd->slow_counted = true;
			count_error(s, E_RECONNECT, "board %s: not back %u s after its restart (%s)", bd->id,
				    RECONNECT_SLOW_MS / 1000, bd->a ? agent_last_error(bd->a) : "");
		}
		fetch_check(s, bd, now);
		inv_check(s, bd, now);
	}
}

static void tick_cb(uv_timer_t *t)
{
	struct soak *s = t->data;
	uint64_t now = bench_now_us();

	if (s->running && s->t_last_tick && now > s->t_last_tick + TICK_MS * 1000ull)
		bench_samples_add(&s->cur.lag, now - s->t_last_tick - TICK_MS * 1000ull);
	s->t_last_tick = now;
	if (s->interrupted) {
		fprintf(stderr, "soak_driver: interrupted; stopping every agent\n");
		s->exit_code = 1;
		stop_everything(s);
		return;
	}
	watch_boards(s, now);
	if (!s->running) {
		if (now - s->t_progress >= PROGRESS_MS * 1000ull) {
			s->t_progress = now;
			fprintf(stderr, "soak_driver: %.0f s: started %u, enrolled %u, sessions %u, failed %u\n",
				(double)(now - s->t_begin) / 1e6, s->next, s->n_enrolled, s->n_up, s->n_failed);
		}
		if (s->n_up + s->n_failed >= s->n && s->next >= s->n) {
			double secs = (double)(now - s->t_begin) / 1e6;
			bench_figure("soak.enroll_s", secs, "s", "%u boards enrolled and online, %u failed, concurrency %u",
				     s->n_up, s->n_failed, s->concurrency);
			bench_figure("soak.enroll_rate", s->n_up / secs, "boards/s", "enrollment + first mTLS session");
			s->running = true;
			s->t_run0 = now;
			minute_stats_reset(s);
			printf("soak: %u sessions up; running %u minutes with %u%% churn a minute\n", s->n_up, s->minutes,
			       s->churn_pct);
			minute_begin(s);
		} else if (now - s->t_begin > s->enroll_timeout_ms * 1000) {
			fprintf(stderr, "soak_driver: only %u of %u boards online after %" PRIu64 " s; first error: %s\n",
				s->n_up, s->n, s->enroll_timeout_ms / 1000,
				s->first_error[E_REFUSED][0] ? s->first_error[E_REFUSED] : "(none)");
			s->exit_code = 1;
			stop_everything(s);
		}
		return;
	}
	if (now - s->t_run0 >= (uint64_t)s->minute * MINUTE_MS * 1000) {
		minute_report(s);
		if (s->minute >= s->minutes) {
			final_report(s);
			stop_everything(s);
			return;
		}
		minute_begin(s);
	}
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct soak *s = h->data;
	(void)signum;
	s->interrupted = true;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: soak_driver --controller HOST:PORT --ca sha256:HEX --token TOKEN --identity-root DIR [options]\n"
		"\n"
		"  --boards N            simulated boards (default 10000, max %u)\n"
		"  --minutes M           how long the run lasts after every board is online (default 10)\n"
		"  --churn PCT           boards killed and restarted at the start of every minute (default 1)\n"
		"  --heartbeat MS        agent heartbeat interval (default 10000, as in production)\n"
		"  --concurrency C       boards enrolling at once (default 64)\n"
		"  --identity-root DIR   one folder per board for its kept key and certificate (a tmpfs)\n"
		"  --fixtures DIR        DIR/0, DIR/1, ...: fixture boards whose memory changes, one a minute\n"
		"  --skyctl PATH, --skyctl-config FILE   skyctl and its config: image fetch, board show\n"
		"  --image ID            the image boards fetch (skyctl image push first)\n"
		"  --fetches F           boards told to fetch it every minute (default 2)\n"
		"  --ctl-pid PID         the controller: its RSS and open files from /proc\n"
		"  --enroll-timeout S    give up when not every board is online by then (default 900)\n"
		"  --tag HEX             8 hex digits in every board's UUID (default random)\n"
		"  --log-level LEVEL     the agents' log level (default error)\n"
		"\n"
		"The token needs N uses: skyctl token create --uses N.  tests/bench/soak/run.sh runs it all.\n",
		MAX_BOARDS);
}

static int find_fixtures(struct soak *s)
{
	struct stat st;
	for (s->n_fixtures = 0; s->n_fixtures < MAX_FIXTURES; s->n_fixtures++) {
		char *root = s->fixture_roots[s->n_fixtures];
		int n = snprintf(root, sizeof(s->fixture_roots[0]), "%s/%u", s->fixtures, s->n_fixtures);
		if (n < 0 || (size_t)n >= sizeof(s->fixture_roots[0]) - 16)
			return -ENAMETOOLONG;
		if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
			break;
	}
	if (!s->n_fixtures) {
		fprintf(stderr, "soak_driver: --fixtures %s holds no board folder 0/ (a copy of "
				"tests/fixtures/boards/a with its own product_uuid)\n", s->fixtures);
		return -ENOENT;
	}
	return 0;
}

static int parse_u(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	if (bench_parse_u64(v, min, max, out) == 0)
		return 0;
	fprintf(stderr, "soak_driver: bad --%s '%s': a number from %" PRIu64 " to %" PRIu64 "\n", opt, v, min, max);
	return -EINVAL;
}

static int parse_args(struct soak *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{"controller", required_argument, NULL, 'c'}, {"ca", required_argument, NULL, 'a'},
		{"token", required_argument, NULL, 't'}, {"boards", required_argument, NULL, 'n'},
		{"minutes", required_argument, NULL, 'M'}, {"churn", required_argument, NULL, 'x'},
		{"heartbeat", required_argument, NULL, 'b'}, {"concurrency", required_argument, NULL, 'C'},
		{"identity-root", required_argument, NULL, 'i'}, {"fixtures", required_argument, NULL, 'f'},
		{"skyctl", required_argument, NULL, 'k'}, {"skyctl-config", required_argument, NULL, 'K'},
		{"image", required_argument, NULL, 'I'}, {"fetches", required_argument, NULL, 'F'},
		{"ctl-pid", required_argument, NULL, 'p'}, {"enroll-timeout", required_argument, NULL, 'T'},
		{"tag", required_argument, NULL, 'g'}, {"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'}, {0},
	};
	/* The numbers: option, range, where it goes (u64 values times mult). */
	const struct {
		int c;
		uint64_t min, max, mult;
		unsigned *u;
		uint64_t *u64;
	} nums[] = {
		{'n', 1, MAX_BOARDS, 1, &s->n, NULL},
		{'M', 1, 1440, 1, &s->minutes, NULL},
		{'x', 0, 50, 1, &s->churn_pct, NULL},
		{'C', 1, MAX_BOARDS, 1, &s->concurrency, NULL},
		{'F', 0, 100, 1, &s->fetches, NULL},
		{'b', 100, 600000, 1, NULL, &s->base.heartbeat_ms},
		{'T', 1, 86400, 1000, NULL, &s->enroll_timeout_ms},
	};
	uint64_t v;
	int c, idx;

	while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (c == 'h' || c == '?') {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 1 : -EINVAL;
		}
		const char *name = opts[idx].name;
		size_t k;
		for (k = 0; k < SKY_ARRAY_SIZE(nums) && nums[k].c != c; k++)
			;
		if (k < SKY_ARRAY_SIZE(nums)) {
			if (parse_u(name, optarg, nums[k].min, nums[k].max, &v) < 0)
				return -EINVAL;
			if (nums[k].u)
				*nums[k].u = (unsigned)v;
			else
				*nums[k].u64 = v * nums[k].mult;
			continue;
		}
		switch (c) {
		case 'c':
		case 'a':
		case 't':
			if (bench_board_option(&s->base, "soak_driver", name, optarg) < 0)
				return -EINVAL;
			break;
		case 'p':
			if (parse_u(name, optarg, 1, INT32_MAX, &v) < 0)
				return -EINVAL;
			s->ctl_pid = (pid_t)v;
			break;
		case 'i':
			s->identity_root = optarg;
			break;
		case 'f':
			s->fixtures = optarg;
			break;
		case 'k':
			s->skyctl = optarg;
			break;
		case 'K':
			s->skyctl_conf = optarg;
			break;
		case 'I':
			s->image = optarg;
			break;
		case 'g':
			if (bench_board_tag("soak_driver", optarg, &s->tag) < 0)
				return -EINVAL;
			break;
		case 'l':
			if (bench_board_option(&s->base, "soak_driver", "log-level", optarg) < 0)
				return -EINVAL;
			break;
		default:
			break;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "soak_driver: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (!s->base.controller_host[0] || !s->base.have_ca_pin || !s->base.token[0] || !s->identity_root) {
		fprintf(stderr, "soak_driver: --controller, --ca, --token and --identity-root are required "
				"(tests/bench/soak/run.sh makes them)\n");
		return -EINVAL;
	}
	if ((s->image || s->fixtures) && (!s->skyctl || !s->skyctl_conf)) {
		fprintf(stderr, "soak_driver: --image and --fixtures need --skyctl and --skyctl-config\n");
		return -EINVAL;
	}
	if (s->fixtures && find_fixtures(s) < 0)
		return -EINVAL;
	if (s->n_fixtures >= s->n) {
		fprintf(stderr, "soak_driver: %u fixture boards but only %u boards: use more --boards\n", s->n_fixtures,
			s->n);
		return -EINVAL;
	}
	sky_log_init("soak_driver", (enum sky_log_level)s->base.log_level);
	return 0;
}

int main(int argc, char **argv)
{
	static struct soak soak;
	struct soak *s = &soak;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* As skyagent does: a write to a socket the controller reset is an
	 * error to handle, not a signal that ends all 10,000 boards. */
	signal(SIGPIPE, SIG_IGN);
	s->n = 10000;
	s->minutes = 10;
	s->churn_pct = 1;
	s->concurrency = 64;
	s->fetches = 2;
	s->enroll_timeout_ms = 900000;
	s->base.heartbeat_ms = 10000;
	s->base.log_level = SKY_LOG_ERROR;
	sky_random(&s->tag, sizeof(s->tag));
	r = parse_args(s, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	if (mkdir(s->identity_root, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "soak_driver: cannot make --identity-root %s: %s\n", s->identity_root, strerror(errno));
		return 2;
	}
	unsigned long nofile = bench_raise_nofile();
	if (nofile < (unsigned long)s->n + 256) {
		fprintf(stderr, "soak_driver: %u boards need about %u open files but the limit is %lu: raise the "
				"hard limit (ulimit -Hn) or use fewer --boards\n", s->n, s->n + 256, nofile);
		return 2;
	}
	s->boards = calloc(s->n, sizeof(*s->boards));
	if (!s->boards) {
		fprintf(stderr, "soak_driver: out of memory for %u boards\n", s->n);
		return 1;
	}
	size_t beats = (size_t)s->n * 60000 / (s->base.heartbeat_ms * 9 / 10) + 1024;
	bench_samples_init(&s->reconnect_all, (size_t)s->n * s->minutes);
	bench_samples_init(&s->hb_all, beats * s->minutes);
	bench_samples_init(&s->fetch_all, 100000);
	bench_samples_init(&s->inv_all, 100000);
	uv_loop_init(&s->loop);
	uv_timer_init(&s->loop, &s->tick);
	uv_signal_init(&s->loop, &s->sigint);
	uv_signal_init(&s->loop, &s->sigterm);
	s->tick.data = s->sigint.data = s->sigterm.data = s;
	uv_signal_start(&s->sigint, signal_cb, SIGINT);
	uv_signal_start(&s->sigterm, signal_cb, SIGTERM);

	printf("soak_driver: %u boards (%u fixture boards), %u minutes, churn %u%% a minute, heartbeat %" PRIu64
	       " ms, %u image fetches a minute, controller %s:%u, open-file limit %lu, tag %08" PRIx32 "\n",
	       s->n, s->n_fixtures, s->minutes, s->churn_pct, s->base.heartbeat_ms, s->image ? s->fetches : 0,
	       s->base.controller_host, s->base.controller_port, nofile, s->tag);
	s->t_begin = s->t_progress = bench_now_us();
	launch_more(s);
	uv_timer_start(&s->tick, tick_cb, TICK_MS, TICK_MS);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&s->loop);
	if (r == UV_EBUSY) {
		fprintf(stderr, "soak_driver: handles left open after every agent was stopped\n");
		s->exit_code = 1;
	}
	bench_samples_free(&s->cur.reconnect);
	bench_samples_free(&s->cur.hb);
	bench_samples_free(&s->cur.lag);
	bench_samples_free(&s->reconnect_all);
	bench_samples_free(&s->hb_all);
	bench_samples_free(&s->fetch_all);
	bench_samples_free(&s->inv_all);
	for (unsigned i = 0; i < s->n; i++)
		inventory_free(&s->boards[i].inv);
	free(s->boards);
	return s->exit_code;
}
