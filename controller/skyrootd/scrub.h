/* Integrity at rest on the controller: the background scrub, the re-check
 * of a chunk a board reports as corrupt, and the quarantine both lead to.
 *
 * The scrub re-hashes every chunk of the store in row order, a batch at a
 * time on a worker thread, at most --scrub-rate bytes a second (0: off),
 * resuming where it stopped (kept in the store across restarts) and
 * starting over at the end.  A board's report is never trusted: the chunk
 * is re-hashed from the store on a worker thread, and only a failed check
 * quarantines it.  The loop never hashes.  Loop thread only. */
#ifndef SKY_CONTROLLER_SCRUB_H
#define SKY_CONTROLLER_SCRUB_H

#include <stdint.h>

#include "controller/skyrootd/metrics.h"

#define SCRUB_DEFAULT_RATE (16ull << 20)

struct controller;
struct scrub;

int scrub_start(struct controller *ctl, uint64_t rate, struct scrub **out);
/* A new rate (SIGHUP); 0 pauses the scrub where it is. */
void scrub_set_rate(struct scrub *sc, uint64_t rate);
/* Stop (on shutdown): frees sc once its batch in flight is done.  NULL ok. */
void scrub_stop(struct scrub *sc);

/* Chunk `index` of image `image_id` (row rowid, digest) was found corrupt
 * by `by`: quarantine it, log it and count it.  1 newly quarantined. */
int scrub_quarantine(struct controller *ctl, int64_t rowid, const uint8_t digest[32], const char *image_id,
		     uint32_t index, enum metrics_found_by by);

/* Board board_id says chunk `index` of image_id did not hash to expected:
 * check that chunk in the store on a worker thread, then quarantine it
 * (corrupt) or log the report as the board's fault (intact).  The caller
 * has checked the image was sent to the board and bounded the reports.
 * 0, or -ENOENT (no such chunk), -ENOMEM. */
int scrub_check_report(struct controller *ctl, const char *board_id, const char *image_id, uint32_t index,
		       const uint8_t expected[32]);

#endif
