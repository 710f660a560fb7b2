/* The controller's Reboot order (Redfish's ComputerSystem.Reset): carried
 * out only by an agent started with --allow-reboot (the firmware's init
 * passes it); with --reboot-command the command runs instead of reboot(2). */
#pragma once
#include <stdint.h>

#include "agent/answer.h"
#include "agent/config.h"
#include "proto/skyroot.pb-c.h"

/* Answer the order req with a RebootResult through send, then reboot
 * (or run the command).  On a real reboot this does not return. */
void agent_reboot(const struct agent_config *cfg, uint64_t req, const Skyroot__Reboot *rb, agent_answer_send send,
		  void *ctx);
