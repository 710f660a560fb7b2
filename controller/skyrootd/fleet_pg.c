/* The fleet's bus on PostgreSQL (fleet_pg.h).
 *
 * One connection of its own, not the store's: LISTEN holds for the life of
 * a session, and the advisory locks of fleet-wide jobs must go when this
 * controller goes, whatever the store's connection does.  Its socket is
 * polled on the main loop; what arrives is read with PQconsumeInput and
 * handed out one notification at a time.  A lost connection is logged
 * once, retried with exponential backoff (0.5 s to 30 s, jittered so that
 * a fleet does not reconnect in step), and its recovery logged once.
 *
 * Connecting blocks the main loop for at most connect_timeout (2 s): the
 * store's own connection blocks it the same way when the server is
 * away. */
#include "controller/skyrootd/fleet_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define BUS_BACKOFF_MIN_MS 500
#define BUS_BACKOFF_MAX_MS 30000
#define BUS_PAYLOAD_MAX 256 /* what is longer is no message of ours */

struct fleet_pg {
	uv_loop_t *loop;
	char *uri;
	const struct fleet_pg_ops *ops;
	void *ctx;
	PGconn *h;            /* NULL: down */
	uv_poll_t *poll;      /* of h's socket; its own allocation, closed with h */
	uv_timer_t retry;     /* the next connection attempt */
	uv_timer_t drain;     /* notifications read during a query, handed out next turn */
	unsigned tries;       /* failed attempts since the loss */
	bool lost_logged;     /* the loss was logged; the recovery will be */
	bool stopping;
	int closing;          /* handles still to close before the free */
	bool held[FLEET_PG_LOCKS];
};

static void bus_lost(struct fleet_pg *b, const char *why);

static void bus_poll_closed(uv_handle_t *h)
{
	free(h);
}

static void bus_drop(struct fleet_pg *b)
{
	if (b->poll) {
		uv_poll_stop(b->poll);
		uv_close((uv_handle_t *)b->poll, bus_poll_closed);
		b->poll = NULL;
	}
	if (b->h) {
		PQfinish(b->h);
		b->h = NULL;
	}
	memset(b->held, 0, sizeof(b->held));
}

/* The server's words, one line, for the log (which escapes them). */
static const char *bus_err(PGconn *h, char *buf, size_t n)
{
	snprintf(buf, n, "%s", h ? PQerrorMessage(h) : "out of memory");
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

static void bus_hand_out(struct fleet_pg *b)
{
	PGnotify *n;
	char payload[BUS_PAYLOAD_MAX + 1];

	/* b->h may go inside a callback (a lock query that finds the link
	 * lost): checked each time round. */
	while (b->h && !b->stopping && (n = PQnotifies(b->h))) {
		bool ours = strcmp(n->relname, FLEET_PG_CHANNEL) == 0 && strlen(n->extra) <= BUS_PAYLOAD_MAX;
		if (ours)
			memcpy(payload, n->extra, strlen(n->extra) + 1);
		PQfreemem(n);
		if (ours && b->ops->note)
			b->ops->note(b->ctx, payload);
	}
}

static void bus_on_drain(uv_timer_t *t)
{
	bus_hand_out(t->data);
}

static void bus_on_readable(uv_poll_t *p, int status, int events)
{
	struct fleet_pg *b = p->data;
	char err[300];

	(void)events;
	if (status < 0) {
		bus_lost(b, uv_strerror(status));
		return;
	}
	if (!PQconsumeInput(b->h) || PQstatus(b->h) != CONNECTION_OK) {
		bus_lost(b, bus_err(b->h, err, sizeof(err)));
		return;
	}
	bus_hand_out(b);
}

static int bus_connect(struct fleet_pg *b, char *err, size_t errlen)
{
	const char *const keys[] = {"connect_timeout", "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
				    "keepalives_count", "dbname", "application_name", NULL};
	const char *const vals[] = {"2", "30000", "10", "5", "3", b->uri, "skyrootd-bus", NULL};
	PGresult *res;
	int fd;

	b->h = PQconnectdbParams(keys, vals, 1);
	if (!b->h || PQstatus(b->h) != CONNECTION_OK)
		goto fail;
	res = PQexec(b->h, "LISTEN " FLEET_PG_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	fd = PQsocket(b->h);
	b->poll = malloc(sizeof(*b->poll));
	if (fd < 0 || !b->poll || uv_poll_init(b->loop, b->poll, fd) < 0) {
		free(b->poll);
		b->poll = NULL;
		snprintf(err, errlen, "cannot poll its socket");
		bus_drop(b);
		return -EIO;
	}
	b->poll->data = b;
	uv_poll_start(b->poll, UV_READABLE, bus_on_readable);
	return 0;
fail:
	bus_err(b->h, err, errlen);
	bus_drop(b);
	return -ENOTCONN;
}

static void bus_on_retry(uv_timer_t *t);

static void bus_schedule(struct fleet_pg *b)
{
	uint64_t d = BUS_BACKOFF_MIN_MS;

	for (unsigned i = 0; i < b->tries && d < BUS_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > BUS_BACKOFF_MAX_MS)
		d = BUS_BACKOFF_MAX_MS;
	/* between half and all of it */
	d = d / 2 + sky_random_below(d / 2 + 1);
	uv_timer_start(&b->retry, bus_on_retry, d, 0);
}

static void bus_try(struct fleet_pg *b)
{
	char err[300];

	if (bus_connect(b, err, sizeof(err)) == 0) {
		if (b->lost_logged)
			log_info("fleet bus: listening again after %u attempt%s", b->tries + 1, b->tries ? "s" : "");
		b->lost_logged = false;
		b->tries = 0;
		if (b->ops->resumed)
			b->ops->resumed(b->ctx);
		return;
	}
	if (!b->lost_logged) {
		log_warn("fleet bus: cannot reach the store's database: %s (retrying with backoff)", err);
		b->lost_logged = true;
	} else {
		log_debug("fleet bus: attempt %u failed: %s", b->tries + 1, err);
	}
	b->tries++;
	bus_schedule(b);
}

static void bus_on_retry(uv_timer_t *t)
{
	struct fleet_pg *b = t->data;
	if (!b->stopping && !b->h)
		bus_try(b);
}

static void bus_lost(struct fleet_pg *b, const char *why)
{
	if (!b->lost_logged) {
		log_warn("fleet bus: connection lost: %s (reconnecting; jobs held here are released)", why);
		b->lost_logged = true;
	}
	bus_drop(b);
	b->tries = 0;
	if (!b->stopping)
		uv_timer_start(&b->retry, bus_on_retry, BUS_BACKOFF_MIN_MS / 2 + sky_random_below(BUS_BACKOFF_MIN_MS), 0);
}

int fleet_pg_start(uv_loop_t *loop, const char *uri, const struct fleet_pg_ops *ops, void *ctx,
		   struct fleet_pg **out)
{
	struct fleet_pg *b = calloc(1, sizeof(*b));

	if (!b || !(b->uri = strdup(uri))) {
		free(b);
		return -ENOMEM;
	}
	b->loop = loop;
	b->ops = ops;
	b->ctx = ctx;
	uv_timer_init(loop, &b->retry);
	uv_timer_init(loop, &b->drain);
	b->retry.data = b->drain.data = b;
	bus_try(b);
	*out = b;
	return 0;
}

static void bus_timer_closed(uv_handle_t *h)
{
	struct fleet_pg *b = h->data;

	if (--b->closing > 0)
		return;
	/* the URI may carry a password */
	explicit_bzero(b->uri, strlen(b->uri));
	free(b->uri);
	free(b);
}

void fleet_pg_stop(struct fleet_pg *b)
{
	if (!b)
		return;
	b->stopping = true;
	bus_drop(b);
	b->closing = 2;
	uv_close((uv_handle_t *)&b->retry, bus_timer_closed);
	uv_close((uv_handle_t *)&b->drain, bus_timer_closed);
}

bool fleet_pg_lock(struct fleet_pg *b, unsigned slot, int64_t key)
{
	char keys[24], err[300];
	const char *params[1] = {keys};
	PGresult *res;
	bool got;

	if (!b || !b->h || slot >= FLEET_PG_LOCKS)
		return false;
	if (b->held[slot])
		return true; /* session-level: taking it again would stack it */
	snprintf(keys, sizeof(keys), "%" PRId64, key);
	res = PQexecParams(b->h, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		PQclear(res);
		if (PQstatus(b->h) != CONNECTION_OK)
			bus_lost(b, bus_err(b->h, err, sizeof(err)));
		else
			log_warn("fleet bus: lock %" PRId64 ": %s", key, bus_err(b->h, err, sizeof(err)));
		return false;
	}
	got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	b->held[slot] = got;
	/* what came in with the answer is handed out on the next turn, not
	 * inside the caller */
	if (b->h && !uv_is_active((uv_handle_t *)&b->drain))
		uv_timer_start(&b->drain, bus_on_drain, 0, 0);
	return got;
}
