/* What the agent benchmarks share about a simulated board: its machine
 * facts (a distinct identity per board and per run) and the three options
 * that point an agent at a controller. */
#ifndef SKY_BENCH_BOARD_H
#define SKY_BENCH_BOARD_H

#include <stdint.h>

#include "agent/config.h"
#include "agent/inventory.h"

/* The facts of simulated board i of the run tagged tag: an EPYC with KVM,
 * its own DMI product UUID, serial, MAC and host name. */
void bench_board_inventory(uint32_t tag, unsigned i, struct inventory *inv);

/* Apply --controller, --ca, --token or --log-level (name without the
 * dashes) to cfg.
 * 0, or -EINVAL after a message on stderr prefixed with prog that says
 * what the value must look like. */
int bench_board_option(struct agent_config *cfg, const char *prog, const char *name, const char *value);

/* --tag: 8 hex digits.  0, or -EINVAL after a message on stderr. */
int bench_board_tag(const char *prog, const char *value, uint32_t *tag);

#endif
