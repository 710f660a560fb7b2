/* bench_tls_idle: the side-by-side for bench_agents --mode idle.  Holds N
 * idle TLS 1.3 keep-alive connections (mutual TLS when --cert is given)
 * against any HTTPS server (nginx in tests/bench/run.sh) and sends one small
 * request per connection every --interval ms, as an agent sends its
 * heartbeat.  Prints the server's RSS per connection (from /proc/PID/status
 * of --server-pid) and the request round trip, in the same "figure" lines
 * as bench_agents (see bench_util.h). */
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "bench_util.h"
#include "common/parse.h"
#include "common/tls.h"
#include "common/util.h"

#define TICK_MS 50
#define SETTLE_MS 2000
#define PROGRESS_MS 5000
#define MAX_CONNS 20000u
#define DEFAULT_WARMUP 32u

enum phase { PH_WARMUP, PH_SETTLE_W, PH_RAMP, PH_SETTLE, PH_HOLD, PH_DONE };

struct bench;

struct conn {
	struct bench *b;
	struct sky_tls *t;         /* NULL once closed */
	uv_connect_t req;
	uv_timer_t timer;          /* next request */
	http_parser parser;
	uint64_t t_start, t_up, t_sent;
	bool in_flight, up, failed, stopping, waiting, has_timer;
	unsigned hold_beats;
};

struct bench {
	/* options */
	struct sockaddr_storage server;
	char server_str[300];
	const char *name;
	unsigned n, concurrency, warmup;
	uint64_t hold_ms, interval_ms, timeout_ms;
	pid_t server_pid;
	const char *path;
	char request[512];
	size_t request_len;

	SSL_CTX *ctx;
	uv_loop_t loop;
	uv_timer_t tick;
	uv_signal_t sigint;
	struct conn *conns;
	enum phase phase;
	unsigned next, in_flight, n_up, n_failed, downs_in_hold, timers_open;
	uint64_t t_begin, t_phase, t_progress, t_ramp0;
	unsigned ramp_first;
	int64_t srv_cpu0, srv_cpu_ramp_end;
	long rss_start, rss_warm, rss_up, rss_hold;
	struct bench_samples rtt;
	struct bench_samples lag;   /* this process's own loop lateness in the hold */
	uint64_t t_last_tick;
	char first_error[512];
	bool interrupted;
	int exit_code;
};

static http_parser_settings parser_settings;

static void launch_more(struct bench *b);

static void note_error(struct bench *b, const char *what)
{
	if (!b->first_error[0])
		snprintf(b->first_error, sizeof(b->first_error), "%s", what);
}

static void conn_release(struct conn *c)
{
	if (c->in_flight) {
		c->in_flight = false;
		c->b->in_flight--;
	}
}

static void conn_fail(struct conn *c, const char *why)
{
	struct bench *b = c->b;
	note_error(b, why);
	if (!c->up && !c->failed) {
		c->failed = true;
		b->n_failed++;
		conn_release(c);
	}
}

static uint64_t jitter(uint64_t ms)
{
	uint64_t spread = ms / 5; /* +-10 %, as the agent does */
	return ms - ms / 10 + (spread ? sky_random_below(spread) : 0);
}

static void conn_send(struct conn *c)
{
	if (!c->t || c->stopping)
		return;
	c->t_sent = bench_now_us();
	c->waiting = true;
	if (sky_tls_write(c->t, c->b->request, c->b->request_len) < 0) {
		note_error(c->b, "cannot send a request");
		sky_tls_close(c->t, -EIO);
	}
}

static void timer_cb(uv_timer_t *h)
{
	conn_send(h->data);
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct bench *b = c->b;
	uint64_t now = bench_now_us();

	if (!c->waiting)
		return 0;
	c->waiting = false;
	if (p->status_code != 200) {
		note_error(b, "the server answered the request with a status other than 200");
		return 1;
	}
	if (b->phase == PH_HOLD) {
		bench_samples_add(&b->rtt, now - c->t_sent);
		c->hold_beats++;
	}
	if (!c->up) {
		/* The first answer: the connection is established and in use. */
		c->up = true;
		c->t_up = now;
		b->n_up++;
		conn_release(c);
		launch_more(b);
	}
	if (!c->stopping)
		uv_timer_start(&c->timer, timer_cb, jitter(b->interval_ms), 0);
	return 0;
}

static void on_ready(struct sky_tls *t)
{
	conn_send(sky_tls_data(t));
}

static void on_data(struct sky_tls *t, const uint8_t *data, size_t len)
{
	struct conn *c = sky_tls_data(t);
	size_t n = http_parser_execute(&c->parser, &parser_settings, (const char *)data, len);
	if (c->parser.http_errno != HPE_OK || n != len) {
		if (c->parser.http_errno != HPE_CB_message_complete)
			note_error(c->b, http_errno_description((enum http_errno)c->parser.http_errno));
		sky_tls_abort(t, -EPROTO);
	}
}

static void on_close(struct sky_tls *t, int err)
{
	struct conn *c = sky_tls_data(t);
	struct bench *b = c->b;
	c->t = NULL;
	if (c->stopping)
		return;
	if (!c->up) {
		char msg[160];
		snprintf(msg, sizeof(msg), "connection closed before its first answer: %s%s",
			 err ? strerror(-err) : "orderly close",
			 err == -EPROTO ? " (TLS handshake failed: client certificate or CA wrong?)" : "");
		conn_fail(c, msg);
		launch_more(b);
		return;
	}
	uv_timer_stop(&c->timer);
	if (b->phase == PH_HOLD)
		b->downs_in_hold++;
	note_error(b, "the server closed an idle connection (keepalive_timeout too short?)");
}

static const struct sky_tls_cbs conn_cbs = {
	.on_ready = on_ready,
	.on_data = on_data,
	.on_close = on_close,
};

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (!c->t)
		return;
	if (status < 0) {
		if (status != UV_ECANCELED) {
			char msg[400];
			snprintf(msg, sizeof(msg), "cannot connect to %s: %s", c->b->server_str, uv_strerror(status));
			note_error(c->b, msg);
		}
		sky_tls_abort(c->t, status);
		return;
	}
	uv_tcp_nodelay(sky_tls_tcp(c->t), 1);
	if (sky_tls_start(c->t) < 0)
		sky_tls_abort(c->t, -EIO);
}

static void timer_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->b->timers_open--;
}

static int conn_start(struct bench *b, unsigned i)
{
	struct conn *c = &b->conns[i];
	int r;

	c->b = b;
	r = sky_tls_new(&b->loop, b->ctx, SKY_TLS_CLIENT, &conn_cbs, c, &c->t);
	if (r < 0)
		return r;
	uv_timer_init(&b->loop, &c->timer);
	c->timer.data = c;
	c->has_timer = true;
	b->timers_open++;
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	c->in_flight = true;
	b->in_flight++;
	c->t_start = bench_now_us();
	c->req.data = c;
	r = uv_tcp_connect(&c->req, sky_tls_tcp(c->t), (const struct sockaddr *)&b->server, on_connect);
	if (r < 0) {
		sky_tls_abort(c->t, r);
		return r;
	}
	return 0;
}

static void launch_more(struct bench *b)
{
	unsigned limit = b->phase == PH_WARMUP ? b->warmup : b->phase == PH_RAMP ? b->n : 0;
	while (b->in_flight < b->concurrency && b->next < limit) {
		unsigned i = b->next++;
		int r = conn_start(b, i);
		if (r < 0) {
			char msg[128];
			snprintf(msg, sizeof(msg), "connection %u: %s", i, strerror(-r));
			conn_fail(&b->conns[i], msg);
			if (r == -EMFILE || r == -ENFILE || r == -ENOMEM)
				break;
		}
	}
}

/* ---- figures ---- */

static void report(struct bench *b)
{
	unsigned up = 0, under2 = 0, min_beats = UINT32_MAX;
	uint64_t last_up = 0;
	char f[64];

	for (unsigned i = 0; i < b->n; i++) {
		struct conn *c = &b->conns[i];
		if (!c->up || !c->t)
			continue;
		up++;
		if (c->hold_beats < min_beats)
			min_beats = c->hold_beats;
		if (c->hold_beats < 2)
			under2++;
	}
	for (unsigned i = b->ramp_first; i < b->n; i++)
		if (b->conns[i].t_up > last_up)
			last_up = b->conns[i].t_up;
	if (min_beats == UINT32_MAX)
		min_beats = 0;
	snprintf(f, sizeof(f), "%s.sessions", b->name);
	bench_figure(f, up, "connections", "TLS 1.3 keep-alive connections open at the end of the %.0f s hold (asked %u)",
		     (double)b->hold_ms / 1000.0, b->n);
	if (last_up > b->t_ramp0) {
		double secs = (double)(last_up - b->t_ramp0) / 1e6;
		unsigned ramp_n = b->n - b->ramp_first;
		snprintf(f, sizeof(f), "%s.connect_rate", b->name);
		bench_figure(f, ramp_n / secs, "connections/s", "handshake + first request, %u connections in %.2f s, "
			     "concurrency %u", ramp_n, secs, b->concurrency);
		if (b->srv_cpu0 >= 0 && b->srv_cpu_ramp_end >= 0) {
			snprintf(f, sizeof(f), "%s.srv_cpu", b->name);
			bench_figure(f, (double)(b->srv_cpu_ramp_end - b->srv_cpu0) * 1000.0 / ramp_n, "us/connection",
				     "server CPU time (user+sys) per connection set up");
		}
	}
	if (b->rss_start > 0 && b->rss_warm > 0 && b->rss_hold > 0 && up > b->warmup) {
		snprintf(f, sizeof(f), "%s.rss_start", b->name);
		bench_figure(f, (double)b->rss_start, "KiB", "server VmRSS before any connection");
		snprintf(f, sizeof(f), "%s.rss_warm", b->name);
		bench_figure(f, (double)b->rss_warm, "KiB", "with the %u warm-up connections", b->warmup);
		snprintf(f, sizeof(f), "%s.rss_hold", b->name);
		bench_figure(f, (double)b->rss_hold, "KiB", "%u connections, at the end of the hold", up);
		snprintf(f, sizeof(f), "%s.rss_per_conn", b->name);
		bench_figure(f, (double)(b->rss_hold - b->rss_warm) / (double)(up - b->warmup), "KiB",
			     "(RSS at the end of the hold - RSS with %u warm-up connections) / %u", b->warmup, up - b->warmup);
		snprintf(f, sizeof(f), "%s.rss_per_conn_all", b->name);
		bench_figure(f, (double)(b->rss_hold - b->rss_start) / (double)up, "KiB",
			     "(RSS at the end of the hold - RSS before any connection) / %u", up);
	}
	if (b->rtt.n) {
		/* Whole microseconds, as bench_agents' heartbeat round trip. */
		snprintf(f, sizeof(f), "%s.req_rtt_us.p50", b->name);
		bench_figure(f, (double)bench_samples_pct(&b->rtt, 50), "us",
			     "request round trip, %zu requests in the hold, clock resolution 1 us", b->rtt.n);
		snprintf(f, sizeof(f), "%s.req_rtt_us.p99", b->name);
		bench_figure(f, (double)bench_samples_pct(&b->rtt, 99), "us", "request round trip, %zu requests",
			     b->rtt.n);
		snprintf(f, sizeof(f), "%s.req_rtt_us.max", b->name);
		bench_figure(f, (double)bench_samples_max(&b->rtt), "us", "request round trip");
	}
	snprintf(f, sizeof(f), "%s.client_lag.p99", b->name);
	bench_figure(f, (double)bench_samples_pct(&b->lag, 99) / 1000.0, "ms",
		     "how late this process's own %u ms timer ran in the hold: its part of the round trip", TICK_MS);
	snprintf(f, sizeof(f), "%s.client_lag.max", b->name);
	bench_figure(f, (double)bench_samples_max(&b->lag) / 1000.0, "ms", "worst lateness of this process's loop");
	snprintf(f, sizeof(f), "%s.min_beats", b->name);
	bench_figure(f, min_beats, "requests", "fewest requests one connection had in the hold; %u under 2", under2);
	snprintf(f, sizeof(f), "%s.downs_in_hold", b->name);
	bench_figure(f, b->downs_in_hold, "connections", "connections the server closed during the hold");
}

/* ---- the clock ---- */

static void stop_everything(struct bench *b)
{
	for (unsigned i = 0; i < b->next; i++) {
		struct conn *c = &b->conns[i];
		if (c->stopping || !c->b)
			continue;
		c->stopping = true;
		if (c->t)
			sky_tls_close(c->t, 0);
		if (c->has_timer)
			uv_close((uv_handle_t *)&c->timer, timer_closed);
	}
	uv_close((uv_handle_t *)&b->tick, NULL);
	uv_close((uv_handle_t *)&b->sigint, NULL);
}

static void ramp_begin(struct bench *b, uint64_t now)
{
	b->phase = PH_RAMP;
	b->t_phase = now;
	b->t_ramp0 = now;
	b->ramp_first = b->next;
	b->srv_cpu0 = b->server_pid > 0 ? bench_cpu_ms(b->server_pid) : -1;
	launch_more(b);
}

static void tick_cb(uv_timer_t *t)
{
	struct bench *b = t->data;
	uint64_t now = bench_now_us();

	/* How late this tick is: how long our own loop was busy elsewhere. */
	if (b->phase == PH_HOLD && b->t_last_tick && now > b->t_last_tick + TICK_MS * 1000ull)
		bench_samples_add(&b->lag, now - b->t_last_tick - TICK_MS * 1000ull);
	b->t_last_tick = now;

	if (now - b->t_progress >= PROGRESS_MS * 1000ull) {
		b->t_progress = now;
		fprintf(stderr, "bench_tls_idle: %.0f s: started %u, up %u, failed %u, in flight %u%s\n",
			(double)(now - b->t_begin) / 1e6, b->next, b->n_up, b->n_failed, b->in_flight,
			b->phase == PH_HOLD ? " (holding)" : "");
	}
	if (b->interrupted || (b->phase != PH_HOLD && now - b->t_phase > b->timeout_ms * 1000)) {
		if (!b->interrupted)
			fprintf(stderr, "bench_tls_idle: timed out after %" PRIu64 " s: %u of %u connections up, %u failed%s%s\n",
				b->timeout_ms / 1000, b->n_up, b->n, b->n_failed,
				b->first_error[0] ? "; first error: " : "", b->first_error);
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
			b->rss_warm = b->server_pid > 0 ? bench_rss_kib(b->server_pid) : -1;
			ramp_begin(b, now);
		}
		break;
	case PH_RAMP:
		if (b->n_up + b->n_failed < b->n)
			break;
		b->srv_cpu_ramp_end = b->server_pid > 0 ? bench_cpu_ms(b->server_pid) : -1;
		if (b->n_failed)
			fprintf(stderr, "bench_tls_idle: %u of %u connections failed; first error: %s\n", b->n_failed, b->n,
				b->first_error);
		b->phase = PH_SETTLE;
		b->t_phase = now;
		break;
	case PH_SETTLE:
		if (now - b->t_phase >= SETTLE_MS * 1000ull) {
			b->rss_up = b->server_pid > 0 ? bench_rss_kib(b->server_pid) : -1;
			b->phase = PH_HOLD;
			b->t_phase = now;
			fprintf(stderr, "bench_tls_idle: %u connections up; holding them for %.0f s\n", b->n_up,
				(double)b->hold_ms / 1000.0);
		}
		break;
	case PH_HOLD:
		if (now - b->t_phase >= b->hold_ms * 1000) {
			b->rss_hold = b->server_pid > 0 ? bench_rss_kib(b->server_pid) : -1;
			b->phase = PH_DONE;
			report(b);
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
	fprintf(stderr, "bench_tls_idle: interrupted; closing every connection\n");
	b->interrupted = true;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_tls_idle --server ADDR:PORT --ca-file PEM [options]\n"
		"\n"
		"  --cert PEM --key PEM  client certificate and key (mutual TLS)\n"
		"  --conns N             connections (default 100, max %u)\n"
		"  --concurrency C       connections being set up at once (default 64)\n"
		"  --hold SECONDS        how long the connections are held (default 30)\n"
		"  --interval MS         one request per connection this often, +-10%% (default 10000)\n"
		"  --path PATH           what is requested (default /hb)\n"
		"  --warmup W            connections up before the baseline RSS (default %u)\n"
		"  --server-pid PID      the serving process (nginx's worker): RSS and CPU from /proc\n"
		"  --name NAME           prefix of the figures (default tls)\n"
		"  --timeout SECONDS     give up on a phase after this long (default 300)\n",
		MAX_CONNS, DEFAULT_WARMUP);
}

static int parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"ca-file", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"conns", required_argument, NULL, 'n'},
		{"concurrency", required_argument, NULL, 'C'},
		{"hold", required_argument, NULL, 'H'},
		{"interval", required_argument, NULL, 'i'},
		{"path", required_argument, NULL, 'P'},
		{"warmup", required_argument, NULL, 'w'},
		{"server-pid", required_argument, NULL, 'p'},
		{"name", required_argument, NULL, 'N'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *ca = NULL, *cert = NULL, *key = NULL;
	bool have_server = false, warmup_set = false;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (sky_parse_listen(optarg, &b->server) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --server '%s': expected ADDR:PORT (an IP address)\n",
					optarg);
				return -EINVAL;
			}
			snprintf(b->server_str, sizeof(b->server_str), "%s", optarg);
			have_server = true;
			break;
		case 'a':
			ca = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'n':
			if (bench_parse_u64(optarg, 1, MAX_CONNS, &v) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --conns '%s': 1 .. %u\n", optarg, MAX_CONNS);
				return -EINVAL;
			}
			b->n = (unsigned)v;
			break;
		case 'C':
			if (bench_parse_u64(optarg, 1, MAX_CONNS, &v) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --concurrency '%s'\n", optarg);
				return -EINVAL;
			}
			b->concurrency = (unsigned)v;
			break;
		case 'H':
			if (bench_parse_u64(optarg, 1, 3600, &v) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --hold '%s': 1 .. 3600 seconds\n", optarg);
				return -EINVAL;
			}
			b->hold_ms = v * 1000;
			break;
		case 'i':
			if (bench_parse_u64(optarg, 100, 600000, &v) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --interval '%s': 100 .. 600000 ms\n", optarg);
				return -EINVAL;
			}
			b->interval_ms = v;
			break;
		case 'P':
			if (optarg[0] != '/' || strlen(optarg) > 200 || strpbrk(optarg, " \r\n")) {
				fprintf(stderr, "bench_tls_idle: bad --path '%s': an absolute path without spaces\n", optarg);
				return -EINVAL;
			}
			b->path = optarg;
			break;
		case 'w':
			if (bench_parse_u64(optarg, 1, MAX_CONNS, &v) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --warmup '%s'\n", optarg);
				return -EINVAL;
			}
			b->warmup = (unsigned)v;
			warmup_set = true;
			break;
		case 'p':
			if (bench_parse_u64(optarg, 1, INT32_MAX, &v) < 0 || kill((pid_t)v, 0) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --server-pid '%s': no such process\n", optarg);
				return -EINVAL;
			}
			b->server_pid = (pid_t)v;
			break;
		case 'N':
			if (!optarg[0] || strlen(optarg) > 20 || strpbrk(optarg, " \t")) {
				fprintf(stderr, "bench_tls_idle: bad --name '%s': one word, at most 20 characters\n", optarg);
				return -EINVAL;
			}
			b->name = optarg;
			break;
		case 'T':
			if (bench_parse_u64(optarg, 1, 86400, &v) < 0) {
				fprintf(stderr, "bench_tls_idle: bad --timeout '%s'\n", optarg);
				return -EINVAL;
			}
			b->timeout_ms = v * 1000;
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
		fprintf(stderr, "bench_tls_idle: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!have_server || !ca) {
		fprintf(stderr, "bench_tls_idle: --server and --ca-file are required\n");
		usage(stderr);
		return -EINVAL;
	}
	if (!cert != !key) {
		fprintf(stderr, "bench_tls_idle: --cert and --key go together\n");
		return -EINVAL;
	}
	if (!warmup_set)
		b->warmup = b->n / 10 < DEFAULT_WARMUP ? b->n / 10 : DEFAULT_WARMUP;
	if (b->warmup >= b->n)
		b->warmup = b->n - 1;

	b->ctx = sky_tls_ctx_new(SKY_TLS_CLIENT, TLS1_3_VERSION);
	if (!b->ctx) {
		fprintf(stderr, "bench_tls_idle: cannot make a TLS context\n");
		return -ENOMEM;
	}
	SSL_CTX_set_max_proto_version(b->ctx, TLS1_3_VERSION);
	if (SSL_CTX_load_verify_locations(b->ctx, ca, NULL) != 1) {
		fprintf(stderr, "bench_tls_idle: cannot read the CA certificate %s\n", ca);
		goto fail;
	}
	SSL_CTX_set_verify(b->ctx, SSL_VERIFY_PEER, NULL);
	if (cert && (SSL_CTX_use_certificate_chain_file(b->ctx, cert) != 1 ||
		     SSL_CTX_use_PrivateKey_file(b->ctx, key, SSL_FILETYPE_PEM) != 1 ||
		     SSL_CTX_check_private_key(b->ctx) != 1)) {
		fprintf(stderr, "bench_tls_idle: cannot use the client certificate %s with key %s\n", cert, key);
		goto fail;
	}
	int n = snprintf(b->request, sizeof(b->request), "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench_tls_idle\r\n\r\n",
			 b->path);
	b->request_len = (size_t)n;
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(b->ctx);
	b->ctx = NULL;
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	b->name = "tls";
	b->n = 100;
	b->concurrency = 64;
	b->hold_ms = 30000;
	b->interval_ms = 10000;
	b->timeout_ms = 300000;
	b->path = "/hb";
	r = parse_args(b, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	parser_settings.on_message_complete = on_message_complete;

	unsigned long nofile = bench_raise_nofile();
	if (nofile < (unsigned long)b->n + 64) {
		fprintf(stderr, "bench_tls_idle: %u connections need about %u open files but the limit is %lu: "
				"raise the hard limit (ulimit -Hn) or use fewer --conns\n", b->n, b->n + 64, nofile);
		SSL_CTX_free(b->ctx);
		return 2;
	}
	b->conns = calloc(b->n, sizeof(*b->conns));
	if (!b->conns) {
		fprintf(stderr, "bench_tls_idle: out of memory for %u connections\n", b->n);
		SSL_CTX_free(b->ctx);
		return 1;
	}
	bench_samples_init(&b->rtt, (size_t)b->n * (b->hold_ms / (b->interval_ms * 9 / 10) + 2));
	bench_samples_init(&b->lag, b->hold_ms / TICK_MS + 16);
	uv_loop_init(&b->loop);
	uv_timer_init(&b->loop, &b->tick);
	b->tick.data = b;
	uv_signal_init(&b->loop, &b->sigint);
	b->sigint.data = b;
	uv_signal_start(&b->sigint, sigint_cb, SIGINT);

	printf("bench_tls_idle: %u connections to %s, concurrency %u, one request every %" PRIu64
	       " ms, open-file limit %lu\n",
	       b->n, b->server_str, b->concurrency, b->interval_ms, nofile);
	b->t_begin = b->t_progress = b->t_phase = bench_now_us();
	b->rss_start = b->server_pid > 0 ? bench_rss_kib(b->server_pid) : -1;
	b->phase = PH_WARMUP;
	launch_more(b);
	uv_timer_start(&b->tick, tick_cb, TICK_MS, TICK_MS);

	uv_run(&b->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&b->loop) == UV_EBUSY) {
		fprintf(stderr, "bench_tls_idle: handles left open after every connection was closed\n");
		b->exit_code = 1;
	}
	bench_samples_free(&b->rtt);
	bench_samples_free(&b->lag);
	free(b->conns);
	SSL_CTX_free(b->ctx);
	return b->exit_code;
}
