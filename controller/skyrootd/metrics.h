/* skyrootd's counters for Prometheus (GET /metrics, docs/api.md), and the
 * text exposition format (version 0.0.4) they are written in.
 *
 * The code that counts calls in with the tiny metrics_* calls below;
 * metrics.c calls nothing of the controller, so no file is in a circle
 * with it.  api_metrics.c writes the gauges it reads at scrape time (boards,
 * guests, the store) with the metrics_text_* writer, then the counters with
 * metrics_text_counters().
 *
 * Threads: the counters belong to the loop thread (skyrootd's one loop);
 * every call here is made on it. */
#ifndef SKY_CONTROLLER_METRICS_H
#define SKY_CONTROLLER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Why an enrollment was refused (label reason of
 * skyroot_enrollment_failures_total). */
enum metrics_enroll_fail {
	METRICS_ENROLL_TOKEN_UNKNOWN,
	METRICS_ENROLL_TOKEN_EXPIRED,
	METRICS_ENROLL_TOKEN_REVOKED,
	METRICS_ENROLL_TOKEN_USED,
	METRICS_ENROLL_TOKEN_OTHER_BOARD, /* a token made for another board */
	METRICS_ENROLL_REENROLL_PENDING,  /* a known machine waits for an operator */
	METRICS_ENROLL_BAD_REQUEST,
	METRICS_ENROLL_INTERNAL,
	METRICS_ENROLL_PENDING,           /* no token: waits for an operator (pending.h) */
	METRICS_ENROLL_PENDING_FULL,      /* no token, and --pending-max boards wait already */
	METRICS_ENROLL_PENDING_RATE,      /* no token, too often from one address */
	METRICS_ENROLL_PENDING_REJECTED,  /* no token, a key an operator rejected */
	METRICS_ENROLL_TPM_REFUSED,       /* TPM evidence that did not check out (al_tpm.c) */
	METRICS_ENROLL_FAIL_COUNT
};

/* Why a chunk was not sent (label reason of skyroot_chunk_errors_total). */
enum metrics_chunk_fail {
	METRICS_CHUNK_CORRUPT,        /* it no longer hashes to its digest in the store */
	METRICS_CHUNK_READ,           /* the store could not read it */
	METRICS_CHUNK_NOT_GRANTED,    /* of an image never sent to the board */
	METRICS_CHUNK_NOT_FOUND,
	METRICS_CHUNK_BUSY,           /* over the board's window */
	METRICS_CHUNK_QUARANTINED,    /* quarantined: corrupt in the store (scrub.h) */
	METRICS_CHUNK_FAIL_COUNT
};

/* Who found a chunk corrupt in the store (label found_by of
 * skyroot_chunks_quarantined_total). */
enum metrics_found_by {
	METRICS_FOUND_SCRUB,          /* the background scrub */
	METRICS_FOUND_BOARD,          /* a board's report, checked in the store */
	METRICS_FOUND_SEND,           /* the check before a send */
	METRICS_FOUND_VERIFY,         /* an operator's image verify */
	METRICS_FOUND_COUNT
};

/* What came of a board's report of a corrupt chunk (label outcome of
 * skyroot_chunk_reports_total). */
enum metrics_report {
	METRICS_REPORT_CORRUPT,       /* checked: corrupt in the store, quarantined */
	METRICS_REPORT_INTACT,        /* checked: the stored chunk is right (the board's fault) */
	METRICS_REPORT_KNOWN,         /* the chunk was quarantined already: not checked again */
	METRICS_REPORT_REFUSED,       /* malformed, or of an image or chunk not sent to the board */
	METRICS_REPORT_DROPPED,       /* over the board's bound: not checked */
	METRICS_REPORT_COUNT
};

/* Upper bounds of the API latency histogram's buckets, in microseconds. */
#define METRICS_BUCKETS 13
/* Routes and status codes kept apart (more fold into "other"). */
#define METRICS_ROUTES_MAX 48
#define METRICS_CODES_MAX 12
#define METRICS_ROUTE_LEN 64

void metrics_enroll_ok(void);
void metrics_enroll_fail(enum metrics_enroll_fail why);
void metrics_chunk_sent(uint64_t bytes);
void metrics_chunk_fail(enum metrics_chunk_fail why);
void metrics_chunk_quarantined(enum metrics_found_by by);
void metrics_chunk_report(enum metrics_report what);
/* The scrub read and hashed this much; a pass over the whole store ended. */
void metrics_scrub(uint64_t bytes, uint32_t chunks);
void metrics_scrub_pass(void);
/* An API answer: route as the route table names it ("/v1/boards/{id|name}",
 * "unmatched" for none), its status code; the latency when it is known. */
void metrics_api_request(const char *route, int code);
void metrics_api_latency(const char *route, uint64_t usec);
/* Forget every count (tests). */
void metrics_reset(void);

/* ---- the text exposition format ---- */

/* Text being written: the first error sticks (-ENOBUFS past the
 * maximum, -ENOMEM) and later calls do nothing. */
struct metrics_text {
	struct sky_buf buf;
	int err;
};

void metrics_text_init(struct metrics_text *t, size_t max);
void metrics_text_free(struct metrics_text *t);
/* "# HELP name help" and "# TYPE name type" (gauge, counter, histogram). */
void metrics_text_family(struct metrics_text *t, const char *name, const char *type, const char *help);
/* One sample: labels is NULL or a NULL-ended list of name, value, ...;
 * values are escaped as the format wants (\\, \", \n). */
void metrics_text_u64(struct metrics_text *t, const char *name, const char *const *labels, uint64_t v);
/* A histogram's samples: name_bucket{labels..., le="..."} (cumulative,
 * ending with le="+Inf"), name_sum (seconds) and name_count.  buckets
 * holds METRICS_BUCKETS + 1 counts (the last: over the largest bound),
 * not cumulative. */
void metrics_text_histogram(struct metrics_text *t, const char *name, const char *const *labels,
			    const uint64_t *buckets, uint64_t sum_usec);
/* Every counter of this module, with its HELP and TYPE lines, and the
 * sessions gauge from the agent link's own count (agentlink_online_count:
 * kept in one place, not mirrored here). */
void metrics_text_counters(struct metrics_text *t, uint64_t sessions);

#endif
