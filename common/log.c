#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_ident = "skyroot";
static enum sky_log_level log_level = SKY_LOG_INFO;

static const char *const level_names[] = {
	[SKY_LOG_ERROR] = "error",
	[SKY_LOG_WARN] = "warn",
	[SKY_LOG_INFO] = "info",
	[SKY_LOG_DEBUG] = "debug",
};

void sky_log_init(const char *ident, enum sky_log_level level)
{
	log_ident = ident;
	log_level = level;
}

void sky_log_set_level(enum sky_log_level level)
{
	log_level = level;
}

enum sky_log_level sky_log_get_level(void)
{
	return log_level;
}

int sky_log_parse_level(const char *s)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void sky_log(enum sky_log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so concurrent processes do not interleave. */
	fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000L, log_ident,
		level_names[level], line);
}
