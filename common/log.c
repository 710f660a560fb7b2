#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
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

/* The length of the well-formed UTF-8 sequence at s (n bytes left) when it
 * is printable text, else 0: overlong forms, surrogates, code points past
 * U+10FFFF and the C1 controls U+0080..U+009F (a terminal may take U+009B
 * as CSI) are not. */
static size_t utf8_text_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp <= 0x9f || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* in as one line of text (see log.h); out holds 4 * strlen(in) + 1. */
static void log_escape(const char *in, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in);

	while (n > 0) {
		size_t len = s[0] >= 0x80 ? utf8_text_len(s, n) : 0;
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
			*out++ = digits[s[0] >> 4];
			*out++ = digits[s[0] & 15];
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
	if (level > log_level)
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
	fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000L, log_ident,
		level_names[level], text);
}
