/* GET /metrics's text: what Prometheus parses (exposition format 0.0.4):
 * HELP and TYPE lines, escaped label values, histograms with cumulative
 * buckets ending in le="+Inf", and the counters the controller keeps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/skyrootd/metrics.h"

/* The text written so far, NUL-terminated (owned by the caller). */
static char *text_of(struct metrics_text *t)
{
	char *s;

	assert_int_equal(t->err, 0);
	s = malloc(t->buf.len + 1);
	assert_non_null(s);
	memcpy(s, t->buf.data, t->buf.len);
	s[t->buf.len] = '\0';
	return s;
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define assert_line(text, line)                                                                              \
	do {                                                                                                 \
		if (!has_line(text, line))                                                                   \
			fail_msg("no line '%s' in:\n%s", line, text);                                         \
	} while (0)

static void test_label_values_escaped(void **state)
{
	struct metrics_text t;
	char *s;

	(void)state;
	metrics_text_init(&t, 4096);
	metrics_text_family(&t, "x_total", "counter", "a \\ backslash\nand a newline, \"quotes\" kept");
	metrics_text_u64(&t, "x_total", (const char *const[]){ "path", "C:\\dir \"q\"\nend", "b", "2", NULL }, 7);
	metrics_text_u64(&t, "x_total", NULL, 18446744073709551615ull);
	metrics_text_u64(&t, "y", (const char *const[]){ "k", "", NULL }, 3);
	s = text_of(&t);
	assert_string_equal(s, "# HELP x_total a \\\\ backslash\\nand a newline, \"quotes\" kept\n"
			       "# TYPE x_total counter\n"
			       "x_total{path=\"C:\\\\dir \\\"q\\\"\\nend\",b=\"2\"} 7\n"
			       "x_total 18446744073709551615\n"
			       "y{k=\"\"} 3\n");
	free(s);
	metrics_text_free(&t);
}

static void test_histogram_lines(void **state)
{
	uint64_t buckets[METRICS_BUCKETS + 1] = { 0 };
	struct metrics_text t;
	char *s;

	(void)state;
	buckets[0] = 2;  /* <= 1 ms */
	buckets[3] = 1;  /* <= 10 ms */
	buckets[METRICS_BUCKETS] = 4; /* over 10 s */
	metrics_text_init(&t, 8192);
	metrics_text_histogram(&t, "h_seconds", (const char *const[]){ "route", "/v1/boards", NULL }, buckets,
			       41000123);
	s = text_of(&t);
	assert_line(s, "h_seconds_bucket{route=\"/v1/boards\",le=\"0.001\"} 2");
	assert_line(s, "h_seconds_bucket{route=\"/v1/boards\",le=\"0.005\"} 2");
	assert_line(s, "h_seconds_bucket{route=\"/v1/boards\",le=\"0.01\"} 3");
	assert_line(s, "h_seconds_bucket{route=\"/v1/boards\",le=\"10\"} 3");
	assert_line(s, "h_seconds_bucket{route=\"/v1/boards\",le=\"+Inf\"} 7");
	assert_line(s, "h_seconds_sum{route=\"/v1/boards\"} 41.000123");
	assert_line(s, "h_seconds_count{route=\"/v1/boards\"} 7");
	/* Buckets in increasing le order, then +Inf, _sum, _count. */
	assert_true(strstr(s, "le=\"0.001\"") < strstr(s, "le=\"0.0025\""));
	assert_true(strstr(s, "le=\"10\"") < strstr(s, "le=\"+Inf\""));
	assert_true(strstr(s, "le=\"+Inf\"") < strstr(s, "_sum"));
	assert_true(strstr(s, "_sum") < strstr(s, "_count"));
	free(s);
	metrics_text_free(&t);

	/* No labels: le is the only one. */
	metrics_text_init(&t, 8192);
	metrics_text_histogram(&t, "h", NULL, buckets, 0);
	s = text_of(&t);
	assert_line(s, "h_bucket{le=\"+Inf\"} 7");
	assert_line(s, "h_sum 0.000000");
	free(s);
	metrics_text_free(&t);
}

static void test_counters(void **state)
{
	struct metrics_text t;
	char *s;

	(void)state;
	metrics_reset();
	metrics_enroll_ok();
	metrics_enroll_ok();
	metrics_enroll_fail(METRICS_ENROLL_TOKEN_EXPIRED);
	metrics_enroll_fail(METRICS_ENROLL_FAIL_COUNT); /* out of range: ignored */
	metrics_chunk_sent(1u << 20);
	metrics_chunk_sent(10);
	metrics_chunk_fail(METRICS_CHUNK_NOT_GRANTED);
	metrics_api_request("/v1/boards", 200);
	metrics_api_request("/v1/boards", 200);
	metrics_api_request("/v1/boards", 401);
	metrics_api_latency("/v1/boards", 3000);     /* 3 ms */
	metrics_api_latency("/v1/boards", 20000000); /* 20 s */
	metrics_text_init(&t, 1 << 20);
	metrics_text_counters(&t, 1);
	s = text_of(&t);
	assert_line(s, "# TYPE skyroot_enrollments_total counter");
	assert_line(s, "skyroot_enrollments_total 2");
	assert_line(s, "skyroot_enrollment_failures_total{reason=\"token_expired\"} 1");
	/* Every reason is there from the start, so that rate() sees it rise. */
	assert_line(s, "skyroot_enrollment_failures_total{reason=\"token_unknown\"} 0");
	assert_line(s, "# TYPE skyroot_sessions gauge");
	assert_line(s, "skyroot_sessions 1");
	assert_line(s, "skyroot_chunks_sent_total 2");
	assert_line(s, "skyroot_chunk_bytes_sent_total 1048586");
	assert_line(s, "skyroot_chunk_errors_total{reason=\"not_granted\"} 1");
	assert_line(s, "skyroot_api_requests_total{route=\"/v1/boards\",code=\"200\"} 2");
	assert_line(s, "skyroot_api_requests_total{route=\"/v1/boards\",code=\"401\"} 1");
	assert_line(s, "# TYPE skyroot_api_request_duration_seconds histogram");
	assert_line(s, "skyroot_api_request_duration_seconds_bucket{route=\"/v1/boards\",le=\"0.0025\"} 0");
	assert_line(s, "skyroot_api_request_duration_seconds_bucket{route=\"/v1/boards\",le=\"0.005\"} 1");
	assert_line(s, "skyroot_api_request_duration_seconds_bucket{route=\"/v1/boards\",le=\"10\"} 1");
	assert_line(s, "skyroot_api_request_duration_seconds_bucket{route=\"/v1/boards\",le=\"+Inf\"} 2");
	assert_line(s, "skyroot_api_request_duration_seconds_sum{route=\"/v1/boards\"} 20.003000");
	assert_line(s, "skyroot_api_request_duration_seconds_count{route=\"/v1/boards\"} 2");
	/* One HELP and one TYPE per family, however many samples. */
	assert_null(strstr(strstr(s, "# TYPE skyroot_api_requests_total") + 1, "# TYPE skyroot_api_requests_total"));
	free(s);
	metrics_text_free(&t);
	metrics_reset();
}

/* Routes and codes are bounded: the rest fold into "other". */
static void test_bounded(void **state)
{
	struct metrics_text t;
	char name[32], *s;

	(void)state;
	metrics_reset();
	for (int i = 0; i < METRICS_ROUTES_MAX + 10; i++) {
		snprintf(name, sizeof(name), "/r%d", i);
		metrics_api_request(name, 200);
	}
	for (int c = 0; c < METRICS_CODES_MAX + 5; c++)
		metrics_api_request("/r0", 400 + c);
	metrics_text_init(&t, 1 << 20);
	metrics_text_counters(&t, 1);
	s = text_of(&t);
	assert_line(s, "skyroot_api_requests_total{route=\"/r0\",code=\"200\"} 1");
	assert_line(s, "skyroot_api_requests_total{route=\"/r0\",code=\"other\"} 7");
	assert_line(s, "skyroot_api_requests_total{route=\"other\",code=\"200\"} 11");
	assert_null(strstr(s, "route=\"/r47\""));
	free(s);
	metrics_text_free(&t);
	metrics_reset();
}

/* The text never grows past its maximum: the error sticks. */
static void test_maximum(void **state)
{
	struct metrics_text t;

	(void)state;
	metrics_text_init(&t, 64);
	metrics_text_family(&t, "a_rather_long_metric_name_total", "counter", "help text that is long enough");
	metrics_text_u64(&t, "a_rather_long_metric_name_total", NULL, 1);
	assert_int_equal(t.err, -ENOBUFS);
	assert_true(t.buf.len <= 64);
	metrics_text_free(&t);
	metrics_text_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_values_escaped),
		cmocka_unit_test(test_histogram_lines),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_maximum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
