/* The board agent's link to the controller: enrollment, the mTLS session,
 * inventory, heartbeats, in-band renewal and reconnection with backoff.
 * Several agents may share one loop (the benchmarks run thousands). */
#ifndef SKY_AGENT_AGENT_H
#define SKY_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/config.h"
#include "agent/inventory.h"

struct agent;

enum agent_event {
	AGENT_EV_ENROLLED,      /* got a certificate */
	AGENT_EV_SESSION_UP,    /* mTLS session established, Hello sent */
	AGENT_EV_SESSION_DOWN,
	AGENT_EV_REFUSED,       /* the controller refused us; see agent_last_error() */
	AGENT_EV_HEARTBEAT,     /* an echo came back; agent_last_rtt_us() */
	AGENT_EV_RENEWED,
};

struct agent_hooks {
	void (*on_event)(struct agent *a, enum agent_event ev, void *ud);
};

/* cfg must outlive the agent.  inv_override (may be NULL) replaces reading
 * sysfs/procfs: the benchmarks simulate boards with it. */
int agent_new(uv_loop_t *loop, const struct agent_config *cfg, const struct inventory *inv_override,
	      const struct agent_hooks *hooks, void *ud, struct agent **out);
int agent_start(struct agent *a);
/* Close the connection and timers; the agent is freed once they are closed. */
void agent_stop(struct agent *a);
/* The same, as when the agent's process dies: the socket goes away with no
 * TLS close_notify and nothing queued is flushed (the soak benchmark's
 * churn).  A kept identity (--identity-dir) stays for the next agent. */
void agent_kill(struct agent *a);

/* The receiving side of one connection, without the socket: what the
 * connection code does with it, callable alone (tests/fuzz/fuzz_agent_link.c
 * feeds the real handlers this way).  agent_link_begin starts a link as the
 * kept identity allows: an enrollment without a certificate, a session with
 * one (returns true); agent_link_feed hands bytes from the controller to the
 * frame decoder and every whole frame to its handler (< 0: the stream is
 * malformed and the connection must go); agent_link_end drops the link's
 * state (decoder, timers, the image cache's session).  Without a connection
 * nothing the agent sends goes out: it fails as with no session. */
bool agent_link_begin(struct agent *a);
int agent_link_feed(struct agent *a, const uint8_t *data, size_t len);
void agent_link_end(struct agent *a);

const char *agent_board_id(const struct agent *a);
const char *agent_last_error(const struct agent *a);
/* The controller dialled last or in session ("HOST:PORT (ADDR)"). */
const char *agent_controller(const struct agent *a);
uint64_t agent_last_rtt_us(const struct agent *a);
bool agent_in_session(const struct agent *a);
struct imgcache *agent_images(struct agent *a);

#endif
