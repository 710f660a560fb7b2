/* The result of a boot or reboot order (answer.h). */
#include "agent/answer.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"

void agent_answer_order(agent_answer_send send, void *ctx, Skyroot__Envelope__BodyCase body, uint64_t req,
			Skyroot__BootOutcome outcome, const char *fmt, ...)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__RebootResult rb = SKYROOT__REBOOT_RESULT__INIT;
	Skyroot__BareMetalBootResult bm = SKYROOT__BARE_METAL_BOOT_RESULT__INIT;
	char why[512] = "";
	const char *order;

	switch (body) {
	case SKYROOT__ENVELOPE__BODY_REBOOT_RESULT:
		order = "reboot";
		rb.outcome = outcome;
		rb.error = why;
		env.reboot_result = &rb;
		break;
	case SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT_RESULT:
		order = "bare-metal boot";
		bm.outcome = outcome;
		bm.error = why;
		env.bare_metal_boot_result = &bm;
		break;
	default:
		return;
	}
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		log_error("%s %s: %s", order, outcome == SKYROOT__BOOT_OUTCOME__BOOT_REFUSED ? "refused" : "failed", why);
	}
	env.request_id = req;
	env.body_case = body;
	send(ctx, &env);
}
