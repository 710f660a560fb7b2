/* skyrootd's event loops and how work crosses between them.
 *
 * THE THREADING MODEL
 *
 * `--threads N` (default: the online CPUs) runs N libuv loops.  Loop 0 is
 * the main loop (ctl->loop, main.c); with N > 1 loops 1..N-1 each run on a
 * thread of their own.  With N = 1 there is only the main loop and
 * everything runs on it, as before (the same code paths: what crosses
 * between loops is posted to the main loop itself).
 *
 * What each loop owns:
 *   - main loop: the store (the one SQLite writer connection: acknowledged
 *     writes durable, single-use tokens decided in one transaction by
 *     enrollment's group commit), guests, boots, tokens, the API and boot
 *     ports, metrics, signals and reload, the agent port's listener (accept
 *     and admission: per-address caps, the connection cap and the fd
 *     reserve are counted here, once for all loops), and every board
 *     session's logic and state (struct session: the board table, hello,
 *     heartbeats, renewal, chunk jobs and the chunk budget, image status).
 *     The chunk reads run in libuv's thread pool, started from main and
 *     finished on main, as before; so do the signatures of enrolled
 *     boards' certificates, once the group commit that decided them is
 *     durable (al_enroll.c), with references to the CA's key and
 *     certificate, which nothing changes while skyrootd runs.
 *   - session loops: the transport of the board sessions placed on them
 *     (al_conn.c): the socket, TLS (handshakes, the client-certificate
 *     check, record encryption and decryption), frame decoding, the
 *     handshake and enrollment deadlines and the idle timeout, and the
 *     CSR's signature check of an enrollment.  No store access and no
 *     shared state there, but for the chunk buffer pool (al_pool.c, a
 *     mutex): a chunk's buffer is read into on a worker thread, posted with
 *     its frame to the session loop, sealed there into a second buffer of
 *     the pool, and both go back to the pool from that loop.
 *
 * How work crosses: each loop has a queue (a mutex-guarded list: many
 * producers, one consumer) and a uv_async_t that wakes it; loops_post(k,
 * fn, arg) appends and wakes loop k, which runs fn(arg) on its thread, in
 * the order one thread posted.  Nothing else touches another loop's
 * handles.  The agent link posts:
 *   main -> session loop: open (an accepted socket, as a descriptor: the
 *     listener accepts on main and passes the descriptor, round-robin),
 *     send (a frame, already encoded: its buffer changes hands, no copy),
 *     close/abort, idle timeout, admit (deadline off, board frame size),
 *     release (free the connection once main is done with it);
 *   session loop -> main: ready (with the peer certificate), frame
 *     (decoded envelope), enroll (a checked request), drained (bytes
 *     written so far: the chunk budget and back-pressure), closed.
 * So an order from the API to a board (agentlink_board_send, on main) finds
 * the board's session in main's table and posts the encoded frame to the
 * loop of its connection.
 *
 * Which calls may be made from any thread: loops_post() only (and what
 * common/ calls are thread-safe: logging, hashing, OpenSSL).  Everything
 * else in skyrootd is main-loop only, as before; metrics are counted on
 * main only (the session loops report through posted messages), so they
 * need no atomics.
 *
 * Shutdown drains: main closes every session (posted close), the session
 * loops close the sockets and post `closed`; main releases them, and the
 * main loop keeps running (loops_hold) until the last session is gone;
 * then loops_stop() posts a stop to each session loop, which closes its
 * wake-up handle, runs what is left and ends; its thread is joined. */
#include "controller/skyrootd/loops.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"

#define LOOPS_MAX 256

struct loops_msg {
	struct loops_msg *next;
	loops_fn fn;
	void *arg;
};

struct loops_one {
	struct loops *l;
	uv_loop_t *loop;
	uv_loop_t own;                /* session loops */
	uv_async_t wake;
	uv_mutex_t mu;
	struct loops_msg *head, **tail;
	uv_thread_t thread;
	bool started;
};

struct loops {
	unsigned n;
	unsigned next;                /* round-robin */
	unsigned holds;               /* main thread only */
	struct loops_one one[];
};

unsigned loops_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > LOOPS_MAX ? LOOPS_MAX : (unsigned)n;
}

static void loops__drain(uv_async_t *h)
{
	struct loops_one *o = h->data;
	struct loops_msg *m;

	uv_mutex_lock(&o->mu);
	m = o->head;
	o->head = NULL;
	o->tail = &o->head;
	uv_mutex_unlock(&o->mu);
	while (m) {
		struct loops_msg *next = m->next;
		m->fn(m->arg);
		free(m);
		m = next;
	}
}

static void loops__thread(void *arg)
{
	struct loops_one *o = arg;

	uv_run(o->loop, UV_RUN_DEFAULT);
}

static void loops__stop_one(void *arg)
{
	struct loops_one *o = arg;

	uv_close((uv_handle_t *)&o->wake, NULL);
}

int loops_start(uv_loop_t *main, unsigned n, struct loops **out)
{
	struct loops *l;
	int r;

	if (n < 1)
		n = 1;
	if (n > LOOPS_MAX)
		n = LOOPS_MAX;
	l = calloc(1, sizeof(*l) + n * sizeof(l->one[0]));
	if (!l)
		return -ENOMEM;
	l->n = n;
	for (unsigned k = 0; k < n; k++) {
		struct loops_one *o = &l->one[k];

		o->l = l;
		o->tail = &o->head;
		o->loop = k == 0 ? main : &o->own;
		r = k == 0 ? 0 : uv_loop_init(o->loop);
		if (r == 0)
			r = uv_mutex_init(&o->mu);
		if (r == 0)
			r = uv_async_init(o->loop, &o->wake, loops__drain);
		if (r < 0) {
			log_error("cannot set up event loop %u: %s", k, uv_strerror(r));
			l->n = k; /* the ones before are whole */
			loops_stop(l);
			return r;
		}
		o->wake.data = o;
		if (k == 0)
			uv_unref((uv_handle_t *)&o->wake); /* loops_hold() */
	}
	for (unsigned k = 1; k < n; k++) {
		r = uv_thread_create(&l->one[k].thread, loops__thread, &l->one[k]);
		if (r < 0) {
			log_error("cannot start the thread of event loop %u: %s", k, uv_strerror(r));
			loops_stop(l);
			return r;
		}
		l->one[k].started = true;
	}
	*out = l;
	return 0;
}

unsigned loops_count(const struct loops *l)
{
	return l->n;
}

uv_loop_t *loops_loop(struct loops *l, unsigned k)
{
	return l->one[k].loop;
}

unsigned loops_pick(struct loops *l)
{
	if (l->n == 1)
		return 0;
	l->next = l->next % (l->n - 1) + 1;
	return l->next;
}

int loops_post(struct loops *l, unsigned k, loops_fn fn, void *arg)
{
	struct loops_one *o = &l->one[k];
	struct loops_msg *m = malloc(sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->fn = fn;
	m->arg = arg;
	uv_mutex_lock(&o->mu);
	*o->tail = m;
	o->tail = &m->next;
	uv_mutex_unlock(&o->mu);
	uv_async_send(&o->wake);
	return 0;
}

void loops_hold(struct loops *l, bool on)
{
	if (on) {
		if (l->holds++ == 0)
			uv_ref((uv_handle_t *)&l->one[0].wake);
	} else if (l->holds > 0 && --l->holds == 0) {
		uv_unref((uv_handle_t *)&l->one[0].wake);
	}
}

void loops_stop(struct loops *l)
{
	if (!l)
		return;
	for (unsigned k = 1; k < l->n; k++) {
		struct loops_one *o = &l->one[k];

		if (o->started) {
			loops_post(l, k, loops__stop_one, o);
			uv_thread_join(&o->thread);
		} else {
			uv_close((uv_handle_t *)&o->wake, NULL);
			uv_run(o->loop, UV_RUN_DEFAULT);
		}
		loops__drain(&o->wake); /* nothing should be left; run it if so */
		if (uv_loop_close(o->loop) < 0)
			log_warn("event loop %u closed with handles still open", k);
		uv_mutex_destroy(&o->mu);
	}
	if (l->n > 0) {
		uv_close((uv_handle_t *)&l->one[0].wake, NULL);
		uv_run(l->one[0].loop, UV_RUN_NOWAIT);
		loops__drain(&l->one[0].wake);
		uv_mutex_destroy(&l->one[0].mu);
	}
	free(l);
}
