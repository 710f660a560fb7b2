/* The agent's reconnect delay: exponential backoff with full jitter, 1 s
 * doubling to 60 s (README.md), so that a rack that lost its controller
 * together does not come back in step. */
#ifndef SKY_AGENT_BACKOFF_H
#define SKY_AGENT_BACKOFF_H

#include <stdint.h>

#define AGENT_BACKOFF_MIN_MS 1000u
#define AGENT_BACKOFF_MAX_MS 60000u

/* The ceiling of the attempt-th retry (0 for the first): min(60 s, 1 s << attempt). */
uint64_t agent_backoff_cap_ms(unsigned attempt);
/* A delay drawn uniformly from [0, agent_backoff_cap_ms(attempt)]. */
uint64_t agent_backoff_ms(unsigned attempt);

#endif
