/* skyrootd's event loops (loops.c: the threading model is described
 * there).  Loop 0 is the main loop (ctl->loop); loops 1..n-1 run on their
 * own threads and carry board sessions. */
#ifndef SKY_CONTROLLER_LOOPS_H
#define SKY_CONTROLLER_LOOPS_H

#include <stdbool.h>
#include <uv.h>

struct loops;

typedef void (*loops_fn)(void *arg);

/* Start n loops (n >= 1): loop 0 is main, run by the caller; n - 1 threads
 * are started for the others.  0 or a negative errno. */
int loops_start(uv_loop_t *main, unsigned n, struct loops **out);
unsigned loops_count(const struct loops *l);
uv_loop_t *loops_loop(struct loops *l, unsigned k);
/* The loop the next board session goes to: round-robin over the session
 * loops (1..n-1), or 0 when there is only the main loop. */
unsigned loops_pick(struct loops *l);
/* Run fn(arg) on loop k, in the order posted from one thread.  Any thread.
 * 0, or -ENOMEM (fn is not run). */
int loops_post(struct loops *l, unsigned k, loops_fn fn, void *arg);
/* While held, the main loop's wake-up handle keeps it running: something
 * will still be posted to it (a session open on another loop). */
void loops_hold(struct loops *l, bool on);
/* Main thread, once nothing is posted any more: stop and join the session
 * loops' threads, run what was posted to them, free everything. */
void loops_stop(struct loops *l);

/* Online CPUs (at least 1). */
unsigned loops_cpus(void);

#endif
