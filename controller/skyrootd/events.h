/* The event log (docs/api.md "Events"): every state change an integrator
 * watches (a board enrolled, online, offline, a refusal; a guest's state
 * and its reason; an image made or deleted; a token used...) is a row of
 * the store (migration 8) with a resource version (rv) that only grows,
 * a type, the kind and id of the object, a time and a small JSON detail.
 *
 * An event is added in the caller's transaction when one is open (so it is
 * durable exactly when its change is), else on its own, synchronous=FULL,
 * before the caller answers anybody.  Watchers hear of events only once
 * they are committed: after the loop callback that added them, the new
 * rows are read back from the store and handed to every watcher in rv
 * order.  Only the newest `keep` rows are kept.
 *
 * Main loop only; knows nothing of HTTP (api_events.c serves it). */
#ifndef SKY_CONTROLLER_EVENTS_H
#define SKY_CONTROLLER_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "controller/skyrootd/db.h"

#define EVENTS_KEEP_DEFAULT 10000u
#define EVENTS_TYPE_MAX 32            /* "guest.state": [a-z_.] */
#define EVENTS_KIND_MAX 16            /* "board", "guest", "image", "token", "credential" */
#define EVENTS_DETAIL_MAX 2048        /* bytes of a detail's JSON text (longer strings are cut) */
#define EVENTS_REASON_MAX 512         /* bytes of a reason kept in a detail */
/* Watchers of GET /v1/events at once, and the bytes one may leave untaken
 * before it is cut (--events-watchers, --events-watch-buffer). */
#define EVENTS_WATCHERS_DEFAULT 128u
#define EVENTS_BUFFER_DEFAULT (1024u * 1024u)

struct event {
	int64_t rv;
	int64_t at_ms;                /* unix ms */
	char type[EVENTS_TYPE_MAX];
	char kind[EVENTS_KIND_MAX];
	char id[DB_NAME_MAX];         /* the object's id (a credential: its name) */
	const char *detail;           /* a JSON object's text, valid during the callback */
};

/* Which events a list or a watcher wants: rv in (after, upto], and the
 * fields that are given (NULL or "": any). */
struct events_filter {
	int64_t after;
	int64_t upto;                 /* 0: no bound */
	const char *type, *kind, *id;
	uint32_t limit;               /* 0: no bound */
};

struct events;
struct events_watcher;

/* loop NULL: nothing is handed to watchers (tests).  keep: rows kept (0:
 * EVENTS_KEEP_DEFAULT). */
int events_open(struct db *db, uv_loop_t *loop, uint64_t keep, struct events **out);
/* Its handle is closed on the loop; accepts NULL. */
void events_close(struct events *ev);
void events_set_keep(struct events *ev, uint64_t keep);
/* Several controllers on one store (fleet.h; NULL: none, before the
 * fleet stops): each insert takes the fleet's events lock inside its
 * transaction, so that rvs are given out in commit order and a watcher's
 * cursor never passes a row still to commit, and publishes "events RV";
 * the watchers here are handed the rows other controllers wrote when
 * their wake-up is heard. */
struct fleet;
void events_set_fleet(struct events *ev, struct fleet *f);

/* Add an event (detail: a JSON object of strings, consumed, NULL: {}; a
 * value that is not a string is kept as its JSON text).  ev NULL: does
 * nothing.  0 or a negative errno (logged: an event that cannot be stored
 * never fails the change it tells of). */
int events_add(struct events *ev, const char *type, const char *kind, const char *id, json_t *detail);
/* An event that tells of no stored change (a board's session up or
 * down): kept in memory and written with the others noted in this loop
 * turn, in one transaction, at its end (one fsync for a rack that comes
 * back, not one per board); events_add flushes them first.  Without a
 * loop: events_add. */
int events_add_soon(struct events *ev, const char *type, const char *kind, const char *id, json_t *detail);
/* The same with a detail of string pairs: key, value, ..., NULL (a NULL
 * or "" value leaves its key out). */
int events_add_kv(struct events *ev, const char *type, const char *kind, const char *id, ...)
	__attribute__((sentinel));
/* The same with the pairs in an array ended by NULL; soon: as
 * events_add_soon. */
int events_add_pairs(struct events *ev, bool soon, const char *type, const char *kind, const char *id,
		     const char *const *kv);

/* The events f asks for, oldest first, through cb (non-zero stops: its
 * value is returned). */
typedef int (*events_cb)(void *ctx, const struct event *e);
int events_list(struct events *ev, const struct events_filter *f, events_cb cb, void *ctx);
/* The oldest rv still held (0: none held), and the newest committed one
 * watchers have been told of (0: none ever). */
int events_oldest(struct events *ev, int64_t *rv);
int64_t events_newest(const struct events *ev);

/* Each committed event, in order, through cb until events_unwatch (which
 * cb may call).  -EUSERS past max watchers. */
typedef void (*events_watch_cb)(void *ctx, const struct event *e);
int events_watch(struct events *ev, unsigned max, events_watch_cb cb, void *ctx, struct events_watcher **out);
void events_unwatch(struct events *ev, struct events_watcher *w);
unsigned events_watchers(const struct events *ev);

/* An event as the API shows it: {"resource_version", "type", "kind",
 * "object_id", "created_at", "detail"}.  NULL when out of memory. */
json_t *events_json(const struct event *e);
/* Is type a well-formed type name ([a-z0-9_.], 1..EVENTS_TYPE_MAX-1)? */
bool events_type_ok(const char *type);

#endif
