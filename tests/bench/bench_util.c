#include "bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Read a small /proc file whole (NUL-terminated). */
static int read_proc(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((size_t)got < len - 1 && (n = read(fd, buf + got, len - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	if (got <= 0)
		return -EIO;
	buf[got] = '\0';
	return 0;
}

long bench_rss_kib(pid_t pid)
{
	char buf[4096];
	int r = read_proc(pid, "status", buf, sizeof(buf));
	if (r < 0)
		return r;
	const char *p = strstr(buf, "\nVmRSS:");
	if (!p)
		return -ENODATA; /* a zombie has no VmRSS */
	return strtol(p + 7, NULL, 10);
}

int64_t bench_cpu_ms(pid_t pid)
{
	char buf[1024];
	unsigned long long ut, st;
	int r = read_proc(pid, "stat", buf, sizeof(buf));
	if (r < 0)
		return r;
	/* The command name may hold spaces and parentheses: count from the last ')'. */
	const char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EBADMSG;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	return (int64_t)((ut + st) * 1000u / (unsigned long long)hz);
}

int bench_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int64_t bench_self_cpu_ms(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -errno;
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

unsigned long bench_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}

int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

void bench_samples_init(struct bench_samples *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

void bench_samples_add(struct bench_samples *s, uint64_t value)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		uint32_t *nv;
		if (ncap > s->max)
			ncap = s->max;
		if (ncap <= s->n || !(nv = realloc(s->v, ncap * sizeof(*nv)))) {
			s->dropped++;
			return;
		}
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = value > UINT32_MAX ? UINT32_MAX : (uint32_t)value;
	s->sorted = 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t bench_samples_pct(struct bench_samples *s, double p)
{
	if (!s->n)
		return 0;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
		s->sorted = 1;
	}
	/* nearest rank: ceil(p/100 * n), 1-based */
	double rank = p / 100.0 * (double)s->n;
	size_t k = (size_t)rank;
	if ((double)k < rank)
		k++;
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

uint64_t bench_samples_max(struct bench_samples *s)
{
	return bench_samples_pct(s, 100.0);
}

double bench_samples_mean(const struct bench_samples *s)
{
	double sum = 0;
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	return s->n ? sum / (double)s->n : 0;
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void bench_figure(const char *name, double value, const char *unit, const char *note_fmt, ...)
{
	char note[512];
	va_list ap;
	va_start(ap, note_fmt);
	vsnprintf(note, sizeof(note), note_fmt, ap);
	va_end(ap);
	/* Integers print as integers, the rest with enough digits to read. */
	double mag = value < 0 ? -value : value;
	if (mag < 1e15 && value == (double)(int64_t)value)
		printf("figure %-26s %" PRId64 " %s  (%s)\n", name, (int64_t)value, unit, note);
	else if (mag >= 100)
		printf("figure %-26s %.0f %s  (%s)\n", name, value, unit, note);
	else if (mag >= 1)
		printf("figure %-26s %.2f %s  (%s)\n", name, value, unit, note);
	else
		printf("figure %-26s %.3g %s  (%s)\n", name, value, unit, note);
	fflush(stdout);
}
