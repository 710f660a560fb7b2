/* The board's answer to a controller's boot order: a BootOutcome and a
 * reason in the order's result message (RebootResult for Reboot,
 * BareMetalBootResult for BareMetalBoot; both carry the same two fields),
 * the reason logged too.  Used by reboot.c and guests.c; calls nothing of
 * theirs. */
#ifndef SKY_AGENT_ANSWER_H
#define SKY_AGENT_ANSWER_H

#include <stdint.h>

#include "proto/skyroot.pb-c.h"

/* Hands one envelope to the controller link (offline: dropped, the
 * controller shows the order as unanswered). */
typedef int (*agent_answer_send)(void *ctx, Skyroot__Envelope *env);

/* Answer the order req: body is SKYROOT__ENVELOPE__BODY_REBOOT_RESULT or
 * SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT (anything else sends
 * nothing).  fmt, when not NULL, is the reason (at most 511 bytes are
 * kept), logged as an error naming the order and whether it was refused or
 * failed. */
void agent_answer_order(agent_answer_send send, void *ctx, Skyroot__Envelope__BodyCase body, uint64_t req,
			Skyroot__BootOutcome outcome, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
