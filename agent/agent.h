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

const char *agent_board_id(const struct agent *a);
const char *agent_last_error(const struct agent *a);
uint64_t agent_last_rtt_us(const struct agent *a);
bool agent_in_session(const struct agent *a);
struct imgcache *agent_images(struct agent *a);

#endif
