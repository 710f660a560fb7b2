/* A board's report of a chunk that failed its check against the signed
 * manifest.  The report is a claim, not a proof: it is bounded per session
 * (AL_REPORT_BURST, then one per AL_REPORT_EVERY_MS; the rest dropped and
 * counted), checked against what the controller sent the board, and handed
 * to scrub.c, which re-hashes the chunk from the store on a worker thread
 * and quarantines it only when that check fails. */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink_priv.h"
#include "controller/skyrootd/metrics.h"
#include "controller/skyrootd/scrub.h"

/* Take one re-check from the session's bucket: false when it is empty. */
static bool report__take(struct session *s)
{
	uint64_t now = sky_now_ms();

	if (!s->report_started) {
		s->report_started = true;
		s->report_tokens = AL_REPORT_BURST;
		s->report_refill = now;
	}
	while (s->report_tokens < AL_REPORT_BURST && now - s->report_refill >= AL_REPORT_EVERY_MS) {
		s->report_tokens++;
		s->report_refill += AL_REPORT_EVERY_MS;
	}
	if (s->report_tokens == AL_REPORT_BURST)
		s->report_refill = now;
	if (s->report_tokens == 0)
		return false;
	s->report_tokens--;
	return true;
}

void al_chunk_report(struct session *s, const Skyroot__ChunkCorrupt *cc)
{
	struct controller *ctl = s->al->ctl;
	int r;

	if (!report__take(s)) {
		metrics_chunk_report(METRICS_REPORT_DROPPED);
		if (!s->report_dropped)
			log_warn("board %s reports corrupt chunks faster than %d at once and one per %d s; the rest of its "
				 "reports on this session are dropped unchecked (skyroot_chunk_reports_total)",
				 s->board_id, AL_REPORT_BURST, AL_REPORT_EVERY_MS / 1000);
		s->report_dropped = true;
		return;
	}
	if (!al_str_ok(cc->image_id, DB_ID_MAX - 1) || cc->expected_sha256.len != 32) {
		metrics_chunk_report(METRICS_REPORT_REFUSED);
		log_warn("board %s sent a malformed report of a corrupt chunk; ignored", s->board_id);
		return;
	}
	/* Only images the controller sent to this board. */
	r = db_board_image_granted(ctl->db, s->board_id, cc->image_id);
	if (r <= 0) {
		metrics_chunk_report(METRICS_REPORT_REFUSED);
		log_warn("board %s reported chunk %u of image %s as corrupt, an image not sent to it; ignored",
			 s->board_id, cc->index, cc->image_id);
		return;
	}
	r = scrub_check_report(ctl, s->board_id, cc->image_id, cc->index, cc->expected_sha256.data);
	if (r == -ENOENT) {
		metrics_chunk_report(METRICS_REPORT_REFUSED);
		log_warn("board %s reported chunk %u of image %s as corrupt; the image has no such chunk; ignored",
			 s->board_id, cc->index, cc->image_id);
	} else if (r < 0) {
		log_error("cannot re-check chunk %u of image %s that board %s reported: %s", cc->index, cc->image_id,
			  s->board_id, strerror(-r));
	}
}

/* A board's answer to a reboot order (Redfish's ComputerSystem.Reset):
 * the board's word, logged (the logger escapes it), and a refusal or a
 * failure told as an event (agentlink_ops.event). */
void al_reboot_result(struct session *s, const Skyroot__RebootResult *rr)
{
	const char *why = rr->error ? rr->error : "";

	switch (rr->outcome) {
	case SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED:
		log_info("board %s: rebooting on the controller's order", s->board_id);
		break;
	case SKYROOT__BOOT_OUTCOME__BOOT_REFUSED:
		log_warn("board %s refused to reboot: %.512s", s->board_id, why);
		break;
	default:
		log_warn("board %s could not reboot: %.512s", s->board_id, why);
		break;
	}
	if (rr->outcome != SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED && s->al->ops.event)
		s->al->ops.event(s->al->ops_ctx, false,
				 rr->outcome == SKYROOT__BOOT_OUTCOME__BOOT_REFUSED ? "board.refused" : "board.failed",
				 "board", s->board_id, (const char *const[]){ "order", "reboot", "reason", why, NULL });
}
