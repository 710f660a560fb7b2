/* skyrootd's readiness and status for the service manager (notify.h).
 * Everything here runs on the loop thread; the count of online boards is
 * read from the agent link (agentlink_online_count), which knows nothing
 * of this file. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/notify.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/controller.h"
#include "controller/skyrootd/notify.h"

struct ctl_notify {
	uv_timer_t timer;
	struct controller *ctl;
	size_t online;          /* the count STATUS= last said */
};

/* pre: what goes before STATUS= in the same datagram ("" or "READY=1\n"). */
static int notify__status(struct ctl_notify *n, const char *pre, size_t online)
{
	n->online = online;
	return sky_notifyf("%sSTATUS=%zu board%s online; agents on %s, API on %s", pre, online,
			   online == 1 ? "" : "s", n->ctl->opt.agent_listen, n->ctl->opt.api_listen);
}

static void notify__tick(uv_timer_t *t)
{
	struct ctl_notify *n = t->data;
	size_t online = agentlink_online_count(n->ctl->agents);

	if (online != n->online)
		notify__status(n, "", online);
}

static void notify__closed(uv_handle_t *h)
{
	free(h->data);
}

void ctl_notify_ready(struct controller *ctl)
{
	struct ctl_notify *n;
	int r;

	if (!sky_notify_enabled() || ctl->notify)
		return;
	n = calloc(1, sizeof(*n));
	if (!n) {
		log_warn("out of memory: the service manager gets no board count");
		sky_notify("READY=1");
		return;
	}
	n->ctl = ctl;
	uv_timer_init(ctl->loop, &n->timer);
	n->timer.data = n;
	/* The first STATUS= goes with READY=1, in the same datagram. */
	r = notify__status(n, "READY=1\n", agentlink_online_count(ctl->agents));
	if (r < 0)
		log_warn("cannot tell the service manager we are ready (NOTIFY_SOCKET): %s", strerror(-r));
	uv_timer_start(&n->timer, notify__tick, CTL_NOTIFY_STATUS_MS, CTL_NOTIFY_STATUS_MS);
	ctl->notify = n;
}

void ctl_notify_stopping(struct controller *ctl)
{
	struct ctl_notify *n = ctl->notify;

	sky_notify("STOPPING=1\nSTATUS=stopping");
	if (!n)
		return;
	uv_timer_stop(&n->timer);
	uv_close((uv_handle_t *)&n->timer, notify__closed);
	ctl->notify = NULL;
}
