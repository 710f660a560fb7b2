/* skyctl events: the controller's event log (docs/api.md "Events"), and
 * the watch other commands' --wait use: GET /v1/events?watch=true, one
 * JSON object a line, resumed from the last resource version after a
 * dropped connection, with backoff. */
#ifndef SKY_SKYCTL_EVENTS_H
#define SKY_SKYCTL_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "controller/skyctl/skyctl.h"

/* What a watch asks for: filters (NULL: any) and where it starts. */
struct skyctl_watch {
	const char *type, *kind, *id;
	int64_t since;                /* events after this; < 0: from now */
	uint64_t deadline_ms;         /* skyctl_now_ms() at which to give up; 0: never */
	/* Each event (its "type" does not begin with "watch."): 0 goes on,
	 * > 0 ends the watch with that value, < 0 fails it. */
	int (*event)(void *ud, json_t *ev);
	void *ud;
	int64_t last;                 /* out: the resource version to resume from */
	int timed_out;                /* out: the deadline passed */
	int interrupted;              /* out: Ctrl-C ended it */
};

/* Watch until w->event ends it (its value), Ctrl-C or the deadline (0),
 * or a failure that retrying cannot mend (a negative errno, said on
 * stderr: a 410 Gone, a refused credential, ...; with a deadline, also a
 * controller that cannot be reached).  A connection that drops is made
 * again after a backoff (1 s doubling to 30 s, with jitter) from the last
 * resource version. */
int skyctl_events_watch(struct skyctl *ctl, struct skyctl_watch *w);

/* The newest resource version: a watch from it sees what happens after
 * this call.  0 or a negative errno (said). */
int skyctl_events_now(struct skyctl *ctl, int64_t *rv);

#endif
