/* bench_agents: many simulated boards in one process, each a real agent
 * (agent/agent.h) with its own machine identity, against a real skyrootd
 * over real TLS.
 *
 *   --mode enroll   N boards enroll (at most --concurrency in flight):
 *                   enrollments/s and start -> ENROLLED latency; with
 *                   --stop-at online also start -> SESSION_UP.
 *   --mode idle     N boards enroll and keep their mTLS sessions with
 *                   heartbeats for --hold seconds: the controller's RSS per
 *                   session (from /proc/PID/status of --ctl-pid) and the
 *                   heartbeat round trip.
 *
 * Figures are printed one a line as "figure NAME VALUE UNIT (note)"; see
 * bench_util.h.  Run it through tests/bench/run.sh, which starts the
 * controller and makes the token. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "bench_board.h"
#include "bench_util.h"
#include "common/log.h"
#include "common/util.h"

#define TICK_MS 50
#define SETTLE_MS 2000       /* after the last session came up, before RSS is read */
#define PROGRESS_MS 5000
#define MAX_BOARDS 20000u
#define DEFAULT_WARMUP 32u

enum bench_mode { MODE_ENROLL, MODE_IDLE };
enum stop_at { STOP_ENROLLED, STOP_ONLINE };

enum phase {
	PH_WARMUP,     /* idle: the first --warmup sessions come up */
	PH_SETTLE_W,   /* idle: waiting before the baseline RSS */
	PH_RAMP,       /* the (rest of the) boards enroll */
	PH_SETTLE,     /* idle: every session is up; waiting before RSS */
	PH_HOLD,       /* idle: sessions idle with heartbeats */
	PH_DONE,
};

enum board_state { B_NEW, B_ENROLLING, B_ENROLLED, B_UP, B_FAILED };

struct bench;

struct board {
	struct bench *b;
	struct agent *a;           /* NULL once stopped */
	struct inventory inv;
	uint64_t t_start, t_enrolled, t_up;
	enum board_state st;
	bool in_flight;            /* counts against --concurrency */
	bool stop_queued;
	struct board *next_stop;
	unsigned hold_beats;
};

struct bench {
	/* options */
	enum bench_mode mode;
	enum stop_at stop_at;
	struct agent_config cfg;
	unsigned n, concurrency, warmup;
	uint64_t hold_ms, timeout_ms;
	pid_t ctl_pid;
	uint32_t tag;
	const char *name;          /* prefix of the figures */

	uv_loop_t loop;
	uv_timer_t tick;
	uv_signal_t sigint;
	uv_check_t stopper;        /* stops queued agents after this poll */
	struct board *stop_head;
	struct board *boards;
	enum phase phase;
	unsigned next;             /* next board to start */
	unsigned in_flight;
	unsigned n_enrolled, n_up, n_failed;
	unsigned downs_in_hold, reconnects;
	uint64_t t_phase, t_progress, t_begin;
	int64_t ctl_cpu0, self_cpu0, ctl_cpu_ramp_end, self_cpu_ramp_end;
	int64_t ctl_cpu_hold0, self_cpu_hold0, ctl_cpu_hold1, self_cpu_hold1;
	long rss_start, rss_warm, rss_up, rss_hold;
	uint64_t t_ramp0;          /* when the measured boards started */
	unsigned ramp_first;       /* first measured board (after the warm-up) */
	struct bench_samples rtt;
	struct bench_samples lag;   /* this process's own loop lateness in the hold */
	uint64_t t_last_tick;
	char first_error[512];
	bool interrupted;
	int exit_code;
};

static void launch_more(struct bench *b);

/* "<--name>.<suffix>": the figure names (one at a time: a static buffer). */
static const char *fname(const struct bench *b, const char *suffix)
{
	static char buf[96];
	snprintf(buf, sizeof(buf), "%s.%s", b->name, suffix);
	return buf;
}

/* ---- simulated boards ---- */

static void note_error(struct bench *b, const char *what, const char *detail)
{
	if (!b->first_error[0])
		snprintf(b->first_error, sizeof(b->first_error), "%s%s%s", what, detail && *detail ? ": " : "",
			 detail ? detail : "");
}

static void board_release(struct board *bd)
{
	if (bd->in_flight) {
		bd->in_flight = false;
		bd->b->in_flight--;
	}
}

static void board_stop_now(struct board *bd)
{
	if (!bd->a)
		return;
	struct agent *a = bd->a;
	bd->a = NULL; /* events during the close are ignored */
	agent_stop(a);
}

/* A board is not stopped from inside its own event callback: the check
 * handle stops it right after this poll phase, before the agent's
 * reconnect timer (armed with delay 0 after an enrollment) can fire. */
static void stopper_cb(uv_check_t *h)
{
	struct bench *b = h->data;
	struct board *bd;
	uv_check_stop(h);
	while ((bd = b->stop_head)) {
		b->stop_head = bd->next_stop;
		board_stop_now(bd);
	}
}

static void board_queue_stop(struct board *bd)
{
	struct bench *b = bd->b;
	if (bd->stop_queued || !bd->a)
		return;
	bd->stop_queued = true;
	bd->next_stop = b->stop_head;
	b->stop_head = bd;
	uv_check_start(&b->stopper, stopper_cb);
}

static void on_agent_event(struct agent *a, enum agent_event ev, void *ud)
{
	struct board *bd = ud;
	struct bench *b = bd->b;
	uint64_t now = bench_now_us();

	if (!bd->a)
		return; /* stopping: SESSION_DOWN from the close */
	switch (ev) {
	case AGENT_EV_ENROLLED:
		if (bd->st != B_ENROLLING)
			break;
		bd->st = B_ENROLLED;
		bd->t_enrolled = now;
		b->n_enrolled++;
		if (b->mode == MODE_ENROLL && b->stop_at == STOP_ENROLLED) {
			board_release(bd);
			board_queue_stop(bd);
			launch_more(b);
		}
		break;
	case AGENT_EV_SESSION_UP:
		if (bd->st == B_UP) {
			b->reconnects++;
			break;
		}
		if (bd->st != B_ENROLLED)
			break;
		bd->st = B_UP;
		bd->t_up = now;
		b->n_up++;
		board_release(bd);
		if (b->mode == MODE_ENROLL)
			board_queue_stop(bd);
		launch_more(b);
		break;
	case AGENT_EV_SESSION_DOWN:
		if (b->phase == PH_HOLD)
			b->downs_in_hold++;
		break;
	case AGENT_EV_HEARTBEAT:
		if (b->phase == PH_HOLD) {
			bench_samples_add(&b->rtt, agent_last_rtt_us(a));
			bd->hold_beats++;
		}
		break;
	case AGENT_EV_REFUSED:
		if (bd->st == B_FAILED)
			break;
		note_error(b, "refused", agent_last_error(a));
		if (bd->st == B_UP)
			break; /* a live session refused later: counted by downs */
		bd->st = B_FAILED;
		b->n_failed++;
		board_release(bd);
		board_queue_stop(bd);
		launch_more(b);
		break;
	case AGENT_EV_RENEWED:
		break;
	}
}

static const struct agent_hooks bench_hooks = {.on_event = on_agent_event};

static int board_start(struct bench *b, unsigned i)
{
	struct board *bd = &b->boards[i];
	int r;

	bd->b = b;
	bench_board_inventory(b->tag, i, &bd->inv);
	r = agent_new(&b->loop, &b->cfg, &bd->inv, &bench_hooks, bd, &bd->a);
	if (r < 0)
		return r;
	bd->st = B_ENROLLING;
	bd->in_flight = true;
	b->in_flight++;
	bd->t_start = bench_now_us();
	return agent_start(bd->a);
}

static void launch_more(struct bench *b)
{
	unsigned limit = b->phase == PH_WARMUP ? b->warmup : b->phase == PH_RAMP ? b->n : 0;

	while (b->in_flight < b->concurrency && b->next < limit) {
		unsigned i = b->next++;
		int r = board_start(b, i);
		if (r < 0) {
			char msg[128];
			snprintf(msg, sizeof(msg), "board %u", i);
			note_error(b, msg, strerror(-r));
			b->boards[i].st = B_FAILED;
			b->n_failed++;
			board_release(&b->boards[i]);
			board_queue_stop(&b->boards[i]);
			if (r == -EMFILE || r == -ENFILE || r == -ENOMEM)
				break;
		}
	}
}

/* ---- figures ---- */

static void latency_figures(struct bench *b, const char *name, unsigned from, bool up)
{
	struct bench_samples s;
	char f[128];
	bench_samples_init(&s, b->n);
	for (unsigned i = from; i < b->n; i++) {
		struct board *bd = &b->boards[i];
		uint64_t t = up ? bd->t_up : bd->t_enrolled;
		if (t && bd->t_start)
			bench_samples_add(&s, t - bd->t_start);
	}
	if (s.n) {
		const char *to = up ? "start -> SESSION_UP" : "start -> ENROLLED";
		snprintf(f, sizeof(f), "%s.p50", name);
		bench_figure(f, (double)bench_samples_pct(&s, 50) / 1000.0, "ms", "%s, %zu boards, concurrency %u",
			     to, s.n, b->concurrency);
		snprintf(f, sizeof(f), "%s.p99", name);
		bench_figure(f, (double)bench_samples_pct(&s, 99) / 1000.0, "ms", "%s, %zu boards, concurrency %u",
			     to, s.n, b->concurrency);
		snprintf(f, sizeof(f), "%s.max", name);
		bench_figure(f, (double)bench_samples_max(&s) / 1000.0, "ms", "%s", to);
	}
	bench_samples_free(&s);
}

static void report_ramp(struct bench *b)
{
	unsigned measured = b->n - b->ramp_first;
	unsigned enrolled = 0, up = 0;
	uint64_t last_enrolled = 0, last_up = 0;

	for (unsigned i = b->ramp_first; i < b->n; i++) {
		struct board *bd = &b->boards[i];
		if (bd->t_enrolled) {
			enrolled++;
			if (bd->t_enrolled > last_enrolled)
				last_enrolled = bd->t_enrolled;
		}
		if (bd->t_up) {
			up++;
			if (bd->t_up > last_up)
				last_up = bd->t_up;
		}
	}
	char prefix[64], f[96];
	snprintf(prefix, sizeof(prefix), "%s%s", b->name, b->mode == MODE_ENROLL ? "" : ".enroll");
	if (enrolled && last_enrolled > b->t_ramp0) {
		double secs = (double)(last_enrolled - b->t_ramp0) / 1e6;
		snprintf(f, sizeof(f), "%s.rate", prefix);
		bench_figure(f, enrolled / secs, "enrollments/s", "%u of %u boards enrolled in %.2f s, concurrency %u%s",
			     enrolled, measured, secs, b->concurrency,
			     b->mode == MODE_ENROLL && b->stop_at == STOP_ONLINE ? ", each also opened its mTLS session" : "");
	}
	if (b->mode == MODE_ENROLL)
		latency_figures(b, fname(b, "latency"), b->ramp_first, false);
	if (up && last_up > b->t_ramp0 && (b->mode == MODE_IDLE || b->stop_at == STOP_ONLINE)) {
		double secs = (double)(last_up - b->t_ramp0) / 1e6;
		snprintf(f, sizeof(f), "%s.online_rate", prefix);
		bench_figure(f, up / secs, "boards/s", "enrollment + first mTLS session, %u boards in %.2f s", up, secs);
		if (b->mode == MODE_ENROLL)
			latency_figures(b, fname(b, "online_latency"), b->ramp_first, true);
	}
	if (b->ctl_pid > 0 && b->ctl_cpu0 >= 0 && b->ctl_cpu_ramp_end >= 0 && enrolled) {
		int64_t ms = b->ctl_cpu_ramp_end - b->ctl_cpu0;
		snprintf(f, sizeof(f), "%s.ctl_cpu", prefix);
		bench_figure(f, (double)ms * 1000.0 / enrolled, "us/enrollment",
			     "controller CPU time (user+sys) per board%s, %" PRId64 " ms for %u",
			     b->mode == MODE_ENROLL && b->stop_at == STOP_ENROLLED ? "" : " incl. its first session",
			     ms, enrolled);
		if (ms > 0) {
			snprintf(f, sizeof(f), "%s.ctl_bound", prefix);
			bench_figure(f, enrolled * 1000.0 / (double)ms, "enrollments/s",
				     "what one core of controller could do if the agents cost nothing");
		}
	}
	if (b->self_cpu0 >= 0 && enrolled) {
		int64_t ms = b->self_cpu_ramp_end - b->self_cpu0;
		snprintf(f, sizeof(f), "%s.agents_cpu", prefix);
		bench_figure(f, (double)ms * 1000.0 / enrolled, "us/enrollment",
			     "CPU of this process (the simulated agents) per board");
	}
}

static void report_idle(struct bench *b)
{
	unsigned up = 0, min_beats = UINT32_MAX, under2 = 0;
	for (unsigned i = 0; i < b->n; i++) {
		struct board *bd = &b->boards[i];
		if (bd->st != B_UP)
			continue;
		up++;
		if (bd->hold_beats < min_beats)
			min_beats = bd->hold_beats;
		if (bd->hold_beats < 2)
			under2++;
	}
	if (min_beats == UINT32_MAX)
		min_beats = 0;
	bench_figure(fname(b, "sessions"), up, "sessions", "mTLS sessions up at the end of the %.0f s hold (asked %u)",
		     (double)b->hold_ms / 1000.0, b->n);
	if (b->rss_start > 0 && b->rss_warm > 0 && b->rss_hold > 0 && up > b->warmup) {
		bench_figure(fname(b, "ctl_rss_start"), (double)b->rss_start, "KiB", "controller VmRSS before any session");
		bench_figure(fname(b, "ctl_rss_warm"), (double)b->rss_warm, "KiB", "with the %u warm-up sessions", b->warmup);
		bench_figure(fname(b, "ctl_rss_up"), (double)b->rss_up, "KiB", "%u sessions, %u ms after the last came up",
			     up, SETTLE_MS);
		bench_figure(fname(b, "ctl_rss_hold"), (double)b->rss_hold, "KiB", "%u sessions, at the end of the hold", up);
		bench_figure(fname(b, "rss_per_session"), (double)(b->rss_hold - b->rss_warm) / (double)(up - b->warmup),
			     "KiB", "(RSS at the end of the hold - RSS with %u warm-up sessions) / %u", b->warmup,
			     up - b->warmup);
		bench_figure(fname(b, "rss_per_session_all"), (double)(b->rss_hold - b->rss_start) / (double)up, "KiB",
			     "(RSS at the end of the hold - RSS before any session) / %u", up);
	}
	if (b->rtt.n) {
		/* Whole microseconds, as bench_tls_idle's request round trip: both
		 * from CLOCK_MONOTONIC (uv_hrtime here), sent to answer read. */
		bench_figure(fname(b, "hb_rtt_us.p50"), (double)bench_samples_pct(&b->rtt, 50), "us",
			     "heartbeat round trip, %zu beats in the hold, agent clock resolution 1 us", b->rtt.n);
		bench_figure(fname(b, "hb_rtt_us.p99"), (double)bench_samples_pct(&b->rtt, 99), "us",
			     "heartbeat round trip, %zu beats", b->rtt.n);
		bench_figure(fname(b, "hb_rtt_us.max"), (double)bench_samples_max(&b->rtt), "us",
			     "heartbeat round trip");
		bench_figure(fname(b, "hb_rate"), (double)b->rtt.n * 1000.0 / (double)b->hold_ms, "beats/s",
			     "heartbeats answered per second during the hold (interval %" PRIu64 " ms +-10%%)",
			     b->cfg.heartbeat_ms);
	}
	if (b->ctl_cpu_hold0 >= 0 && b->ctl_cpu_hold1 >= 0)
		bench_figure(fname(b, "ctl_cpu_hold"), (double)(b->ctl_cpu_hold1 - b->ctl_cpu_hold0) * 100.0 / (double)b->hold_ms,
			     "%", "controller CPU (of one core) while holding %u idle sessions", up);
	if (b->self_cpu_hold0 >= 0 && b->self_cpu_hold1 >= 0)
		bench_figure(fname(b, "agents_cpu_hold"),
			     (double)(b->self_cpu_hold1 - b->self_cpu_hold0) * 100.0 / (double)b->hold_ms, "%",
			     "this process's CPU (of one core) in the hold: the simulated boards' share");
	bench_figure(fname(b, "agents_lag.p99"), (double)bench_samples_pct(&b->lag, 99) / 1000.0, "ms",
		     "how late this process's own %u ms timer ran in the hold: its part of the round trip", TICK_MS);
	bench_figure(fname(b, "agents_lag.max"), (double)bench_samples_max(&b->lag) / 1000.0, "ms",
		     "worst lateness of this process's loop in the hold");
	bench_figure(fname(b, "min_beats"), min_beats, "beats", "fewest heartbeats one session had in the hold; %u sessions under 2",
		     under2);
	bench_figure(fname(b, "downs_in_hold"), b->downs_in_hold, "sessions",
		     "sessions that went down during the hold (%u came back up)", b->reconnects);
	if (b->rtt.dropped)
		fprintf(stderr, "bench_agents: %zu heartbeat samples dropped (store full)\n", b->rtt.dropped);
}

/* ---- the clock ---- */

static void stop_everything(struct bench *b)
{
	for (unsigned i = 0; i < b->n; i++)
		board_stop_now(&b->boards[i]);
	b->stop_head = NULL;
	uv_close((uv_handle_t *)&b->stopper, NULL);
	uv_timer_stop(&b->tick);
	uv_close((uv_handle_t *)&b->tick, NULL);
	uv_close((uv_handle_t *)&b->sigint, NULL);
}

static void ramp_begin(struct bench *b, uint64_t now)
{
	b->phase = PH_RAMP;
	b->t_phase = now;
	b->t_ramp0 = now;
	b->ramp_first = b->next;
	b->ctl_cpu0 = b->ctl_pid > 0 ? bench_cpu_ms(b->ctl_pid) : -1;
	b->self_cpu0 = bench_self_cpu_ms();
	launch_more(b);
}

static void progress(struct bench *b, uint64_t now)
{
	if (now - b->t_progress < PROGRESS_MS * 1000ull)
		return;
	b->t_progress = now;
	fprintf(stderr, "bench_agents: %.0f s: started %u, enrolled %u, sessions %u, failed %u, in flight %u%s\n",
		(double)(now - b->t_begin) / 1e6, b->next, b->n_enrolled, b->n_up, b->n_failed, b->in_flight,
		b->phase == PH_HOLD ? " (holding)" : "");
}

static void tick_cb(uv_timer_t *t)
{
	struct bench *b = t->data;
	uint64_t now = bench_now_us();

	/* How late this tick is: how long our own loop was busy elsewhere. */
	if (b->phase == PH_HOLD && b->t_last_tick && now > b->t_last_tick + TICK_MS * 1000ull)
		bench_samples_add(&b->lag, now - b->t_last_tick - TICK_MS * 1000ull);
	b->t_last_tick = now;
	unsigned done_target;

	progress(b, now);

	if (b->interrupted || (b->phase != PH_HOLD && now - b->t_phase > b->timeout_ms * 1000)) {
		if (!b->interrupted) {
			fprintf(stderr, "bench_agents: timed out after %" PRIu64 " s in phase %d: %u of %u boards "
					"enrolled, %u sessions, %u failed%s%s\n",
				b->timeout_ms / 1000, (int)b->phase, b->n_enrolled, b->n, b->n_up, b->n_failed,
				b->first_error[0] ? "; first error: " : "", b->first_error);
		}
		b->exit_code = 1;
		b->phase = PH_DONE;
		stop_everything(b);
		return;
	}

	switch (b->phase) {
	case PH_WARMUP:
		if (b->n_up + b->n_failed >= b->warmup) {
			b->phase = PH_SETTLE_W;
			b->t_phase = now;
		}
		break;
	case PH_SETTLE_W:
		if (now - b->t_phase >= SETTLE_MS * 1000ull) {
			b->rss_warm = b->ctl_pid > 0 ? bench_rss_kib(b->ctl_pid) : -1;
			ramp_begin(b, now);
		}
		break;
	case PH_RAMP:
		done_target = b->mode == MODE_IDLE || b->stop_at == STOP_ONLINE ? b->n_up : b->n_enrolled;
		if (done_target + b->n_failed < b->n)
			break;
		b->ctl_cpu_ramp_end = b->ctl_pid > 0 ? bench_cpu_ms(b->ctl_pid) : -1;
		b->self_cpu_ramp_end = bench_self_cpu_ms();
		report_ramp(b);
		if (b->n_failed)
			fprintf(stderr, "bench_agents: %u of %u boards failed; first error: %s\n", b->n_failed, b->n,
				b->first_error);
		if (b->mode == MODE_ENROLL) {
			bench_figure(fname(b, "failed"), b->n_failed, "boards", "refused or failed");
			b->exit_code = b->n_failed ? 1 : 0;
			b->phase = PH_DONE;
			stop_everything(b);
			return;
		}
		b->phase = PH_SETTLE;
		b->t_phase = now;
		break;
	case PH_SETTLE:
		if (now - b->t_phase >= SETTLE_MS * 1000ull) {
			b->rss_up = b->ctl_pid > 0 ? bench_rss_kib(b->ctl_pid) : -1;
			b->ctl_cpu_hold0 = b->ctl_pid > 0 ? bench_cpu_ms(b->ctl_pid) : -1;
			b->self_cpu_hold0 = bench_self_cpu_ms();
			b->phase = PH_HOLD;
			b->t_phase = now;
			fprintf(stderr, "bench_agents: %u sessions up; holding them for %.0f s\n", b->n_up,
				(double)b->hold_ms / 1000.0);
		}
		break;
	case PH_HOLD:
		if (now - b->t_phase >= b->hold_ms * 1000) {
			b->rss_hold = b->ctl_pid > 0 ? bench_rss_kib(b->ctl_pid) : -1;
			b->ctl_cpu_hold1 = b->ctl_pid > 0 ? bench_cpu_ms(b->ctl_pid) : -1;
			b->self_cpu_hold1 = bench_self_cpu_ms();
			b->phase = PH_DONE;
			report_idle(b);
			b->exit_code = b->n_failed || b->downs_in_hold ? 1 : 0;
			stop_everything(b);
		}
		break;
	case PH_DONE:
		break;
	}
}

static void sigint_cb(uv_signal_t *h, int signum)
{
	struct bench *b = h->data;
	(void)signum;
	fprintf(stderr, "bench_agents: interrupted; stopping every agent\n");
	b->interrupted = true;
}

static void walk_cb(uv_handle_t *h, void *arg)
{
	unsigned *n = arg;
	(*n)++;
	if (*n <= 5)
		fprintf(stderr, "bench_agents: handle still open: %s%s\n", uv_handle_type_name(uv_handle_get_type(h)),
			uv_is_closing(h) ? " (closing)" : "");
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_agents --controller HOST:PORT --ca sha256:HEX --token TOKEN [options]\n"
		"\n"
		"  --mode enroll|idle   enroll: enrollment rate and latency (default)\n"
		"                       idle: enroll, then hold the sessions with heartbeats\n"
		"  --boards N           simulated boards, each with its own DMI UUID (default 100, max %u)\n"
		"  --concurrency C      boards enrolling at once (default 64)\n"
		"  --stop-at enrolled|online  enroll mode: a board is done when it has its\n"
		"                       certificate (default) or when its mTLS session is up\n"
		"  --hold SECONDS       idle mode: how long the sessions are held (default 30)\n"
		"  --heartbeat MS       agent heartbeat interval (default 10000, as in production)\n"
		"  --warmup W           idle mode: sessions up before the baseline RSS (default %u)\n"
		"  --ctl-pid PID        the controller's pid: its RSS and CPU are read from /proc\n"
		"  --tag HEX            8 hex digits in every board's UUID and host name (default random)\n"
		"  --timeout SECONDS    give up on a phase after this long (default 300)\n"
		"  --log-level LEVEL    the agents' log level: error (default), warn, info, debug\n"
		"  --name NAME          prefix of the figure names (default: the mode)\n"
		"\n"
		"The token needs at least N uses: skyctl token create --uses N.\n",
		MAX_BOARDS, DEFAULT_WARMUP);
}

static int parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{"controller", required_argument, NULL, 'c'},
		{"ca", required_argument, NULL, 'a'},
		{"token", required_argument, NULL, 't'},
		{"mode", required_argument, NULL, 'm'},
		{"boards", required_argument, NULL, 'n'},
		{"concurrency", required_argument, NULL, 'C'},
		{"stop-at", required_argument, NULL, 's'},
		{"hold", required_argument, NULL, 'H'},
		{"heartbeat", required_argument, NULL, 'b'},
		{"warmup", required_argument, NULL, 'w'},
		{"ctl-pid", required_argument, NULL, 'p'},
		{"tag", required_argument, NULL, 'g'},
		{"timeout", required_argument, NULL, 'T'},
		{"log-level", required_argument, NULL, 'l'},
		{"name", required_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	uint64_t v;
	int c;
	bool have_ctl = false, warmup_set = false;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (bench_board_option(&b->cfg, "bench_agents", "controller", optarg) < 0)
				return -EINVAL;
			have_ctl = true;
			break;
		case 'a':
		case 't':
			if (bench_board_option(&b->cfg, "bench_agents", c == 'a' ? "ca" : "token", optarg) < 0)
				return -EINVAL;
			break;
		case 'm':
			if (strcmp(optarg, "enroll") == 0)
				b->mode = MODE_ENROLL;
			else if (strcmp(optarg, "idle") == 0)
				b->mode = MODE_IDLE;
			else {
				fprintf(stderr, "bench_agents: bad --mode '%s': use enroll or idle\n", optarg);
				return -EINVAL;
			}
			break;
		case 'n':
			if (bench_parse_u64(optarg, 1, MAX_BOARDS, &v) < 0) {
				fprintf(stderr, "bench_agents: bad --boards '%s': 1 .. %u\n", optarg, MAX_BOARDS);
				return -EINVAL;
			}
			b->n = (unsigned)v;
			break;
		case 'C':
			if (bench_parse_u64(optarg, 1, MAX_BOARDS, &v) < 0) {
				fprintf(stderr, "bench_agents: bad --concurrency '%s': 1 .. %u\n", optarg, MAX_BOARDS);
				return -EINVAL;
			}
			b->concurrency = (unsigned)v;
			break;
		case 's':
			if (strcmp(optarg, "enrolled") == 0)
				b->stop_at = STOP_ENROLLED;
			else if (strcmp(optarg, "online") == 0)
				b->stop_at = STOP_ONLINE;
			else {
				fprintf(stderr, "bench_agents: bad --stop-at '%s': use enrolled or online\n", optarg);
				return -EINVAL;
			}
			break;
		case 'H':
			if (bench_parse_u64(optarg, 1, 3600, &v) < 0) {
				fprintf(stderr, "bench_agents: bad --hold '%s': 1 .. 3600 seconds\n", optarg);
				return -EINVAL;
			}
			b->hold_ms = v * 1000;
			break;
		case 'b':
			if (bench_parse_u64(optarg, 100, 600000, &v) < 0) {
				fprintf(stderr, "bench_agents: bad --heartbeat '%s': 100 .. 600000 ms\n", optarg);
				return -EINVAL;
			}
			b->cfg.heartbeat_ms = v;
			break;
		case 'w':
			if (bench_parse_u64(optarg, 1, MAX_BOARDS, &v) < 0) {
				fprintf(stderr, "bench_agents: bad --warmup '%s'\n", optarg);
				return -EINVAL;
			}
			b->warmup = (unsigned)v;
			warmup_set = true;
			break;
		case 'p':
			if (bench_parse_u64(optarg, 1, INT32_MAX, &v) < 0 || kill((pid_t)v, 0) < 0) {
				fprintf(stderr, "bench_agents: bad --ctl-pid '%s': no such process\n", optarg);
				return -EINVAL;
			}
			b->ctl_pid = (pid_t)v;
			break;
		case 'g':
			if (bench_board_tag("bench_agents", optarg, &b->tag) < 0)
				return -EINVAL;
			break;
		case 'T':
			if (bench_parse_u64(optarg, 1, 86400, &v) < 0) {
				fprintf(stderr, "bench_agents: bad --timeout '%s'\n", optarg);
				return -EINVAL;
			}
			b->timeout_ms = v * 1000;
			break;
		case 'l':
			if (bench_board_option(&b->cfg, "bench_agents", "log-level", optarg) < 0)
				return -EINVAL;
			break;
		case 'N':
			if (!optarg[0] || strlen(optarg) > 20 || strpbrk(optarg, " \t.")) {
				fprintf(stderr, "bench_agents: bad --name '%s': one word without dots, at most 20 characters\n",
					optarg);
				return -EINVAL;
			}
			b->name = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "bench_agents: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!have_ctl || !b->cfg.have_ca_pin || !b->cfg.token[0]) {
		fprintf(stderr, "bench_agents: --controller, --ca and --token are required "
				"(tests/bench/run.sh starts a controller and makes them)\n");
		usage(stderr);
		return -EINVAL;
	}
	if (b->mode == MODE_IDLE) {
		if (!warmup_set)
			b->warmup = b->n / 10 < DEFAULT_WARMUP ? b->n / 10 : DEFAULT_WARMUP;
		if (b->warmup >= b->n)
			b->warmup = b->n - 1;
	} else {
		b->warmup = 0;
	}
	if (!b->name)
		b->name = b->mode == MODE_IDLE ? "idle" : "enroll";
	sky_log_init("bench_agents", (enum sky_log_level)b->cfg.log_level);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	unsigned n_handles = 0;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	b->n = 100;
	b->concurrency = 64;
	b->hold_ms = 30000;
	b->timeout_ms = 300000;
	b->cfg.heartbeat_ms = 10000;
	b->cfg.log_level = SKY_LOG_ERROR;
	b->cfg.controller_port = 7443;
	sky_random(&b->tag, sizeof(b->tag));
	r = parse_args(b, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;

	unsigned long nofile = bench_raise_nofile();
	/* One socket per board in a session, plus a few. */
	if (b->mode == MODE_IDLE && nofile < (unsigned long)b->n + 64) {
		fprintf(stderr, "bench_agents: %u sessions need about %u open files but the limit is %lu: "
				"raise the hard limit (ulimit -Hn) or use fewer --boards\n", b->n, b->n + 64, nofile);
		return 2;
	}
	b->boards = calloc(b->n, sizeof(*b->boards));
	if (!b->boards) {
		fprintf(stderr, "bench_agents: out of memory for %u boards\n", b->n);
		return 1;
	}
	/* Room for every beat of the hold, with margin for the jitter. */
	bench_samples_init(&b->rtt, (size_t)b->n * (b->hold_ms / (b->cfg.heartbeat_ms * 9 / 10) + 2));
	bench_samples_init(&b->lag, b->hold_ms / TICK_MS + 16);
	r = uv_loop_init(&b->loop);
	if (r < 0) {
		fprintf(stderr, "bench_agents: cannot make the event loop: %s\n", uv_strerror(r));
		free(b->boards);
		return 1;
	}
	uv_timer_init(&b->loop, &b->tick);
	b->tick.data = b;
	uv_check_init(&b->loop, &b->stopper);
	b->stopper.data = b;
	uv_signal_init(&b->loop, &b->sigint);
	b->sigint.data = b;
	uv_signal_start(&b->sigint, sigint_cb, SIGINT);

	printf("bench_agents: mode %s, %u boards, concurrency %u, controller %s:%u, heartbeat %" PRIu64
	       " ms, open-file limit %lu, tag %08" PRIx32 "\n",
	       b->mode == MODE_IDLE ? "idle" : b->stop_at == STOP_ONLINE ? "enroll (until online)" : "enroll",
	       b->n, b->concurrency, b->cfg.controller_host, b->cfg.controller_port, b->cfg.heartbeat_ms, nofile,
	       b->tag);
	b->t_begin = b->t_progress = bench_now_us();
	b->rss_start = b->ctl_pid > 0 ? bench_rss_kib(b->ctl_pid) : -1;
	if (b->mode == MODE_IDLE) {
		b->phase = PH_WARMUP;
		b->t_phase = b->t_begin;
		launch_more(b);
	} else {
		ramp_begin(b, b->t_begin);
	}
	uv_timer_start(&b->tick, tick_cb, TICK_MS, TICK_MS);

	uv_run(&b->loop, UV_RUN_DEFAULT);
	/* Every agent stopped and its handles closed: the loop must close clean. */
	r = uv_loop_close(&b->loop);
	if (r == UV_EBUSY) {
		uv_walk(&b->loop, walk_cb, &n_handles);
		fprintf(stderr, "bench_agents: %u handles left open after every agent was stopped\n", n_handles);
		b->exit_code = 1;
	}
	if (b->ctl_pid > 0) {
		sleep(1); /* let the controller close its side */
		long rss_after = bench_rss_kib(b->ctl_pid);
		if (rss_after > 0 && b->mode == MODE_IDLE && b->rss_hold > 0)
			bench_figure(fname(b, "ctl_rss_after"), (double)rss_after, "KiB",
				     "controller VmRSS 1 s after every session closed (was %ld with them)", b->rss_hold);
	}
	bench_samples_free(&b->rtt);
	bench_samples_free(&b->lag);
	for (unsigned i = 0; i < b->n; i++)
		inventory_free(&b->boards[i].inv);
	free(b->boards);
	return b->exit_code;
}
