/* Helpers shared by the benchmarks: clocks, readings of another process
 * from /proc, samples with percentiles, flag parsing and the one output
 * format every figure uses:
 *
 *   figure NAME VALUE UNIT  (what was measured, under which conditions)
 *
 * so tests/bench/run.sh can pick the figures out of the output with awk. */
#ifndef SKY_BENCH_UTIL_H
#define SKY_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Monotonic microseconds. */
uint64_t bench_now_us(void);

/* VmRSS of pid in KiB; negative errno (-ESRCH when the process is gone). */
long bench_rss_kib(pid_t pid);
/* User + system CPU time of pid (all its threads) in milliseconds; negative
 * errno on failure. */
int64_t bench_cpu_ms(pid_t pid);
/* Open files of pid (entries of /proc/PID/fd); negative errno. */
int bench_fd_count(pid_t pid);
/* Our own CPU time (user + system) in milliseconds. */
int64_t bench_self_cpu_ms(void);

/* Raise RLIMIT_NOFILE to its hard limit; returns the soft limit now in force. */
unsigned long bench_raise_nofile(void);

/* Parse a decimal in [min, max]; 0 or -EINVAL. */
int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Bounded sample store (microsecond values).  Samples past max are
 * counted in dropped, never stored. */
struct bench_samples {
	uint32_t *v;
	size_t n, cap, max;
	size_t dropped;
	int sorted;
};
void bench_samples_init(struct bench_samples *s, size_t max);
void bench_samples_add(struct bench_samples *s, uint64_t value);
/* Nearest-rank percentile (0 < p <= 100) of what was added; 0 when empty. */
uint64_t bench_samples_pct(struct bench_samples *s, double p);
uint64_t bench_samples_max(struct bench_samples *s);
double bench_samples_mean(const struct bench_samples *s);
void bench_samples_free(struct bench_samples *s);

/* "figure NAME VALUE UNIT  (note)" on stdout, flushed. */
void bench_figure(const char *name, double value, const char *unit, const char *note_fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
