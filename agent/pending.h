/* A board with no token: what the controller's ENROLL_PENDING or
 * ENROLL_REJECTED answer means to it (docs/api.md "Pending boards"). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/skyroot.pb-c.h"

/* Bounds on the controller's word on when to ask again. */
#define AGENT_PENDING_RETRY_MIN_MS 1000u
#define AGENT_PENDING_RETRY_MAX_MS 60000u
#define AGENT_REJECTED_RETRY_MIN_MS 60000u
#define AGENT_REJECTED_RETRY_MAX_MS (24u * 3600u * 1000u)

struct agent_pending {
	bool rejected;
	uint64_t retry_ms;             /* the controller's, within the bounds above */
	char id[64];                   /* "pnd-...", or "?" when the answer has none that fits */
	char text[512];                /* what the board says of it, one line */
};

/* The answer er (state PENDING or REJECTED) into out. */
void agent_pending_read(const Skyroot__EnrollResponse *er, struct agent_pending *out);
