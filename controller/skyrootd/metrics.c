/* Plain counters that the rest of skyrootd increments, and the Prometheus
 * text exposition format (0.0.4) they are written in.  Calls nothing of
 * the controller (metrics.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "controller/skyrootd/metrics.h"

static const uint64_t metrics_bounds_us[METRICS_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const metrics_bounds_le[METRICS_BUCKETS] = {
	"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

static const char *const metrics_enroll_names[METRICS_ENROLL_FAIL_COUNT] = {
	[METRICS_ENROLL_TOKEN_UNKNOWN] = "token_unknown",
	[METRICS_ENROLL_TOKEN_EXPIRED] = "token_expired",
	[METRICS_ENROLL_TOKEN_REVOKED] = "token_revoked",
	[METRICS_ENROLL_TOKEN_USED] = "token_used",
	[METRICS_ENROLL_TOKEN_OTHER_BOARD] = "token_for_other_board",
	[METRICS_ENROLL_REENROLL_PENDING] = "reenroll_pending",
	[METRICS_ENROLL_BAD_REQUEST] = "bad_request",
	[METRICS_ENROLL_INTERNAL] = "internal",
	[METRICS_ENROLL_PENDING] = "pending",
	[METRICS_ENROLL_PENDING_FULL] = "pending_full",
	[METRICS_ENROLL_PENDING_RATE] = "pending_rate_limited",
	[METRICS_ENROLL_PENDING_REJECTED] = "pending_rejected",
	[METRICS_ENROLL_TPM_REFUSED] = "tpm_refused",
};

static const char *const metrics_chunk_names[METRICS_CHUNK_FAIL_COUNT] = {
	[METRICS_CHUNK_CORRUPT] = "corrupt",
	[METRICS_CHUNK_READ] = "read_failed",
	[METRICS_CHUNK_NOT_GRANTED] = "not_granted",
	[METRICS_CHUNK_NOT_FOUND] = "not_found",
	[METRICS_CHUNK_BUSY] = "busy",
	[METRICS_CHUNK_QUARANTINED] = "quarantined",
};

static const char *const metrics_found_names[METRICS_FOUND_COUNT] = {
	[METRICS_FOUND_SCRUB] = "scrub",
	[METRICS_FOUND_BOARD] = "board_report",
	[METRICS_FOUND_SEND] = "send",
	[METRICS_FOUND_VERIFY] = "verify",
};

static const char *const metrics_report_names[METRICS_REPORT_COUNT] = {
	[METRICS_REPORT_CORRUPT] = "corrupt",
	[METRICS_REPORT_INTACT] = "intact",
	[METRICS_REPORT_KNOWN] = "known",
	[METRICS_REPORT_REFUSED] = "refused",
	[METRICS_REPORT_DROPPED] = "dropped",
};

/* One route's answers: by status code (the last slot, code 0, holds the
 * codes that did not fit) and their latency. */
struct metrics_route {
	char name[METRICS_ROUTE_LEN];
	int codes[METRICS_CODES_MAX];
	uint64_t by_code[METRICS_CODES_MAX];
	unsigned n_codes;
	uint64_t buckets[METRICS_BUCKETS + 1];
	uint64_t sum_us;
};

static struct {
	uint64_t enrollments;
	uint64_t enroll_fails[METRICS_ENROLL_FAIL_COUNT];
	uint64_t chunks, chunk_bytes;
	uint64_t chunk_fails[METRICS_CHUNK_FAIL_COUNT];
	uint64_t quarantined[METRICS_FOUND_COUNT];
	uint64_t reports[METRICS_REPORT_COUNT];
	uint64_t scrub_bytes, scrub_chunks, scrub_passes;
	/* The last slot is "other": the routes that did not fit. */
	struct metrics_route routes[METRICS_ROUTES_MAX];
	unsigned n_routes;
} metrics;

void metrics_enroll_ok(void)
{
	metrics.enrollments++;
}

void metrics_enroll_fail(enum metrics_enroll_fail why)
{
	if ((unsigned)why < METRICS_ENROLL_FAIL_COUNT)
		metrics.enroll_fails[why]++;
}

void metrics_chunk_sent(uint64_t bytes)
{
	metrics.chunks++;
	metrics.chunk_bytes += bytes;
}

void metrics_chunk_fail(enum metrics_chunk_fail why)
{
	if ((unsigned)why < METRICS_CHUNK_FAIL_COUNT)
		metrics.chunk_fails[why]++;
}

void metrics_chunk_quarantined(enum metrics_found_by by)
{
	if ((unsigned)by < METRICS_FOUND_COUNT)
		metrics.quarantined[by]++;
}

void metrics_chunk_report(enum metrics_report what)
{
	if ((unsigned)what < METRICS_REPORT_COUNT)
		metrics.reports[what]++;
}

void metrics_scrub(uint64_t bytes, uint32_t chunks)
{
	metrics.scrub_bytes += bytes;
	metrics.scrub_chunks += chunks;
}

void metrics_scrub_pass(void)
{
	metrics.scrub_passes++;
}

static struct metrics_route *metrics__route(const char *name)
{
	struct metrics_route *rt;

	for (unsigned i = 0; i < metrics.n_routes; i++)
		if (strcmp(metrics.routes[i].name, name) == 0)
			return &metrics.routes[i];
	if (metrics.n_routes < METRICS_ROUTES_MAX - 1) {
		rt = &metrics.routes[metrics.n_routes++];
		snprintf(rt->name, sizeof(rt->name), "%s", name);
		return rt;
	}
	rt = &metrics.routes[METRICS_ROUTES_MAX - 1];
	if (!rt->name[0])
		snprintf(rt->name, sizeof(rt->name), "other");
	return rt;
}

void metrics_api_request(const char *route, int code)
{
	struct metrics_route *rt = metrics__route(route);
	unsigned i;

	for (i = 0; i < rt->n_codes; i++)
		if (rt->codes[i] == code)
			break;
	if (i == rt->n_codes) {
		if (rt->n_codes < METRICS_CODES_MAX - 1)
			rt->codes[rt->n_codes++] = code;
		else
			i = METRICS_CODES_MAX - 1; /* code 0: "other" */
	}
	rt->by_code[i]++;
}

void metrics_api_latency(const char *route, uint64_t usec)
{
	struct metrics_route *rt = metrics__route(route);
	unsigned b = 0;

	while (b < METRICS_BUCKETS && usec > metrics_bounds_us[b])
		b++;
	rt->buckets[b]++;
	rt->sum_us += usec;
}

void metrics_reset(void)
{
	memset(&metrics, 0, sizeof(metrics));
}

/* ---- the text format ---- */

void metrics_text_init(struct metrics_text *t, size_t max)
{
	sky_buf_init(&t->buf, max);
	t->err = 0;
}

void metrics_text_free(struct metrics_text *t)
{
	if (t)
		sky_buf_free(&t->buf);
}

static void metrics__put(struct metrics_text *t, const char *s, size_t n)
{
	if (t->err == 0)
		t->err = sky_buf_append(&t->buf, s, n);
}

__attribute__((format(printf, 2, 3))) static void metrics__printf(struct metrics_text *t, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (t->err == 0)
			t->err = -EOVERFLOW;
		return;
	}
	metrics__put(t, tmp, (size_t)n);
}

/* A label value escapes \, " and newline; HELP text \ and newline. */
static void metrics__escaped(struct metrics_text *t, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			metrics__put(t, "\\\\", 2);
		else if (*s == '\n')
			metrics__put(t, "\\n", 2);
		else if (*s == '"' && quote)
			metrics__put(t, "\\\"", 2);
		else
			metrics__put(t, s, 1);
	}
}

void metrics_text_family(struct metrics_text *t, const char *name, const char *type, const char *help)
{
	metrics__printf(t, "# HELP %s ", name);
	metrics__escaped(t, help, false);
	metrics__printf(t, "\n# TYPE %s %s\n", name, type);
}

/* name{a="x",b="y",le="..."} with the last label apart (NULL: none). */
static void metrics__head(struct metrics_text *t, const char *name, const char *suffix, const char *const *labels,
			  const char *le)
{
	bool any = false;

	metrics__printf(t, "%s%s", name, suffix);
	for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
		metrics__printf(t, "%s%s=\"", any ? "," : "{", labels[i]);
		metrics__escaped(t, labels[i + 1], true);
		metrics__put(t, "\"", 1);
		any = true;
	}
	if (le) {
		metrics__printf(t, "%sle=\"%s\"", any ? "," : "{", le);
		any = true;
	}
	metrics__put(t, any ? "} " : " ", any ? 2 : 1);
}

void metrics_text_u64(struct metrics_text *t, const char *name, const char *const *labels, uint64_t v)
{
	metrics__head(t, name, "", labels, NULL);
	metrics__printf(t, "%" PRIu64 "\n", v);
}

void metrics_text_histogram(struct metrics_text *t, const char *name, const char *const *labels,
			    const uint64_t *buckets, uint64_t sum_usec)
{
	uint64_t cum = 0;

	for (unsigned b = 0; b < METRICS_BUCKETS; b++) {
		cum += buckets[b];
		metrics__head(t, name, "_bucket", labels, metrics_bounds_le[b]);
		metrics__printf(t, "%" PRIu64 "\n", cum);
	}
	cum += buckets[METRICS_BUCKETS];
	metrics__head(t, name, "_bucket", labels, "+Inf");
	metrics__printf(t, "%" PRIu64 "\n", cum);
	metrics__head(t, name, "_sum", labels, NULL);
	metrics__printf(t, "%" PRIu64 ".%06" PRIu64 "\n", sum_usec / 1000000, sum_usec % 1000000);
	metrics__head(t, name, "_count", labels, NULL);
	metrics__printf(t, "%" PRIu64 "\n", cum);
}

static void metrics__api(struct metrics_text *t)
{
	metrics_text_family(t, "skyroot_api_requests_total", "counter",
			    "API answers by route (as docs/api.md writes it) and status code");
	for (unsigned i = 0; i < METRICS_ROUTES_MAX; i++) {
		const struct metrics_route *rt = &metrics.routes[i];
		for (unsigned c = 0; rt->name[0] && c < METRICS_CODES_MAX; c++) {
			char code[16];
			if (!rt->by_code[c])
				continue;
			snprintf(code, sizeof(code), "%d", rt->codes[c]);
			metrics_text_u64(t, "skyroot_api_requests_total",
					 (const char *const[]){ "route", rt->name, "code", rt->codes[c] ? code : "other",
								NULL },
					 rt->by_code[c]);
		}
	}
	metrics_text_family(t, "skyroot_api_request_duration_seconds", "histogram",
			    "API latency by route, from a request's headers to its answer's head");
	for (unsigned i = 0; i < METRICS_ROUTES_MAX; i++) {
		const struct metrics_route *rt = &metrics.routes[i];
		uint64_t n = 0;
		for (unsigned b = 0; b <= METRICS_BUCKETS; b++)
			n += rt->buckets[b];
		if (rt->name[0] && n)
			metrics_text_histogram(t, "skyroot_api_request_duration_seconds",
					       (const char *const[]){ "route", rt->name, NULL }, rt->buckets, rt->sum_us);
	}
}

void metrics_text_counters(struct metrics_text *t, uint64_t sessions)
{
	metrics_text_family(t, "skyroot_enrollments_total", "counter", "boards enrolled (a certificate issued)");
	metrics_text_u64(t, "skyroot_enrollments_total", NULL, metrics.enrollments);
	metrics_text_family(t, "skyroot_enrollment_failures_total", "counter", "enrollments refused, by reason");
	for (unsigned i = 0; i < METRICS_ENROLL_FAIL_COUNT; i++)
		metrics_text_u64(t, "skyroot_enrollment_failures_total",
				 (const char *const[]){ "reason", metrics_enroll_names[i], NULL }, metrics.enroll_fails[i]);
	metrics_text_family(t, "skyroot_sessions", "gauge", "boards in a live session on the agent port");
	metrics_text_u64(t, "skyroot_sessions", NULL, sessions);
	metrics_text_family(t, "skyroot_chunks_sent_total", "counter", "image chunks streamed to boards");
	metrics_text_u64(t, "skyroot_chunks_sent_total", NULL, metrics.chunks);
	metrics_text_family(t, "skyroot_chunk_bytes_sent_total", "counter", "bytes of image chunks streamed to boards");
	metrics_text_u64(t, "skyroot_chunk_bytes_sent_total", NULL, metrics.chunk_bytes);
	metrics_text_family(t, "skyroot_chunk_errors_total", "counter", "chunk requests not served, by reason");
	for (unsigned i = 0; i < METRICS_CHUNK_FAIL_COUNT; i++)
		metrics_text_u64(t, "skyroot_chunk_errors_total",
				 (const char *const[]){ "reason", metrics_chunk_names[i], NULL }, metrics.chunk_fails[i]);
	metrics_text_family(t, "skyroot_chunks_quarantined_total", "counter",
			    "chunks found corrupt in the store and quarantined, by who found them");
	for (unsigned i = 0; i < METRICS_FOUND_COUNT; i++)
		metrics_text_u64(t, "skyroot_chunks_quarantined_total",
				 (const char *const[]){ "found_by", metrics_found_names[i], NULL }, metrics.quarantined[i]);
	metrics_text_family(t, "skyroot_chunk_reports_total", "counter",
			    "boards' reports of a chunk that failed its check, by what came of them");
	for (unsigned i = 0; i < METRICS_REPORT_COUNT; i++)
		metrics_text_u64(t, "skyroot_chunk_reports_total",
				 (const char *const[]){ "outcome", metrics_report_names[i], NULL }, metrics.reports[i]);
	metrics_text_family(t, "skyroot_scrub_bytes_total", "counter",
			    "bytes of the store re-read and re-hashed by the scrub");
	metrics_text_u64(t, "skyroot_scrub_bytes_total", NULL, metrics.scrub_bytes);
	metrics_text_family(t, "skyroot_scrub_chunks_total", "counter", "chunks re-hashed by the scrub");
	metrics_text_u64(t, "skyroot_scrub_chunks_total", NULL, metrics.scrub_chunks);
	metrics_text_family(t, "skyroot_scrub_passes_total", "counter", "passes of the scrub over the whole store");
	metrics_text_u64(t, "skyroot_scrub_passes_total", NULL, metrics.scrub_passes);
	metrics__api(t);
}
