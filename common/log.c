#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/parse.h"
#include "common/util.h"

static const char *log_ident = "skyroot";
static enum sky_log_level log_level = SKY_LOG_INFO;
static bool log_journal;

/* syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int level_priorities[] = {
	[SKY_LOG_ERROR] = 3,
	[SKY_LOG_WARN] = 4,
	[SKY_LOG_INFO] = 6,
	[SKY_LOG_DEBUG] = 7,
};

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

void sky_log_set_journal(bool on)
{
	log_journal = on;
}

bool sky_log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM"), *colon;
	char dev[32];
	uint64_t d, i;
	struct stat sb;

	if (!env || !(colon = strchr(env, ':')) || (size_t)(colon - env) >= sizeof(dev))
		return false;
	memcpy(dev, env, (size_t)(colon - env));
	dev[colon - env] = '\0';
	if (sky_parse_uint(dev, 0, UINT64_MAX, &d) < 0 || sky_parse_uint(colon + 1, 0, UINT64_MAX, &i) < 0)
		return false;
	if (fstat(STDERR_FILENO, &sb) < 0)
		return false;
	return (uint64_t)sb.st_dev == d && (uint64_t)sb.st_ino == i;
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

/* The length of the UTF-8 text sequence at s (n bytes left), else 0: not
 * well-formed, or a C1 control U+0080..U+009F (a terminal may take U+009B
 * as CSI). */
static size_t log_text_seq(const unsigned char *s, size_t n)
{
	size_t len = sky_utf8_seq(s, n);
	if (len == 2 && s[0] == 0xc2 && s[1] <= 0x9f)
		return 0;
	return len;
}

/* in as one line of text (see log.h); out holds 4 * strlen(in) + 1. */
static void log_escape(const char *in, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in);

	while (n > 0) {
		size_t len = s[0] >= 0x80 ? log_text_seq(s, n) : 0;
		if (len) {
			memcpy(out, s, len);
			out += len;
			s += len;
			n -= len;
			continue;
		}
		if (s[0] == '\\') {
			*out++ = '\\';
			*out++ = '\\';
		} else if (s[0] < 0x20 || s[0] >= 0x7f) {
			*out++ = '\\';
			*out++ = 'x';
			sky_format_hex(s, 1, out);
			out += 2;
		} else {
			*out++ = (char)s[0];
		}
		s++;
		n--;
	}
	*out = '\0';
}

void sky_log(enum sky_log_level level, const char *fmt, ...)
{
	if (level > log_level || level < SKY_LOG_ERROR)
		return;
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	char line[2048], text[4 * sizeof(line)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Whatever the message holds, it stays one line of text. */
	log_escape(line, text);
	/* One write per line so concurrent processes do not interleave. */
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", level_priorities[level], text);
		return;
	}
	fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000L, log_ident,
		level_names[level], text);
}
