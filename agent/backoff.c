/* Reconnect backoff with full jitter (agent/backoff.h). */
#include "agent/backoff.h"

#include "common/util.h"

uint64_t agent_backoff_cap_ms(unsigned attempt)
{
	/* 1 s << 6 is already past the 60 s ceiling: no shift can overflow. */
	uint64_t cap = (uint64_t)AGENT_BACKOFF_MIN_MS << (attempt < 6 ? attempt : 6);
	return cap > AGENT_BACKOFF_MAX_MS ? AGENT_BACKOFF_MAX_MS : cap;
}

uint64_t agent_backoff_ms(unsigned attempt)
{
	return sky_random_below(agent_backoff_cap_ms(attempt) + 1);
}
