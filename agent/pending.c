/* A board with no token: the controller's pending or rejected answer
 * (pending.h). */
#include "agent/pending.h"

#include <stdio.h>
#include <string.h>

#include "common/parse.h"

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void agent_pending_read(const Skyroot__EnrollResponse *er, struct agent_pending *out)
{
	char key[65] = "?";

	memset(out, 0, sizeof(*out));
	out->rejected = er->state == SKYROOT__ENROLL_STATE__ENROLL_REJECTED;
	if (er->key_sha256.len == 32)
		sky_format_hex(er->key_sha256.data, 32, key);
	snprintf(out->id, sizeof(out->id), "%s",
		 er->pending_id && er->pending_id[0] && strlen(er->pending_id) < sizeof(out->id) ? er->pending_id : "?");
	if (out->rejected) {
		out->retry_ms = clamp(er->retry_ms, AGENT_REJECTED_RETRY_MIN_MS, AGENT_REJECTED_RETRY_MAX_MS);
		snprintf(out->text, sizeof(out->text),
			 "controller rejected this board (pending %s, key sha256:%s): asking again in %llu s", out->id, key,
			 (unsigned long long)(out->retry_ms / 1000));
	} else {
		out->retry_ms = clamp(er->retry_ms, AGENT_PENDING_RETRY_MIN_MS, AGENT_PENDING_RETRY_MAX_MS);
		snprintf(out->text, sizeof(out->text),
			 "no enrollment token: pending as %s with key sha256:%s; waiting for an operator to accept it "
			 "('skyctl board accept %s')", out->id, key, out->id);
	}
}
