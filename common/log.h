/* Logging for the programs (daemons and CLIs).  Library code does not log:
 * it returns a negative errno and lets the caller say what happened. */
#ifndef SKY_COMMON_LOG_H
#define SKY_COMMON_LOG_H

#include <stdbool.h>

enum sky_log_level {
	SKY_LOG_NONE = -1, /* nothing at all (fuzzers) */
	SKY_LOG_ERROR = 0,
	SKY_LOG_WARN = 1,
	SKY_LOG_INFO = 2,
	SKY_LOG_DEBUG = 3,
};

void sky_log_init(const char *ident, enum sky_log_level level);
void sky_log_set_level(enum sky_log_level level);
enum sky_log_level sky_log_get_level(void);
/* The journal's line format, for a program that systemd runs: each line is
 * "<P>MESSAGE" with its syslog priority P (error 3, warn 4, info 6, debug
 * 7) and no time or ident of its own (the journal adds both).  Off by
 * default; the program chooses at startup, e.g. with: */
void sky_log_set_journal(bool on);
/* Is stderr the journal's stream?  As sd_journal_stream_fd(3) and
 * systemd.exec(5) say: $JOURNAL_STREAM is "DEVICE:INODE" (decimal) and
 * matches stderr's st_dev and st_ino. */
bool sky_log_stderr_is_journal(void);
/* "error", "warn", "info", "debug" -> level; -EINVAL otherwise. */
int sky_log_parse_level(const char *s);

/* One line on stderr: "TIME IDENT LEVEL: MESSAGE" (or "<P>MESSAGE" for
 * the journal, see above; at most 2047 bytes of
 * message before escaping).  The message is one line of text whatever it
 * holds, so nothing from outside (a machine UUID, a guest's console, a
 * peer's error text) can forge a log line or drive a terminal: after
 * formatting, each control character (0x00-0x1f, 0x7f), each byte that is
 * not part of well-formed UTF-8, and the C1 controls U+0080-U+009F (both
 * of their bytes) are written as \xNN, lowercase hex; a backslash is
 * written as \\, so that every \x in the log is one the logger made.
 * Other UTF-8 text passes through.  Call sites log raw values: they do
 * not escape them, nor put line breaks or tabs in a message. */
void sky_log(enum sky_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) sky_log(SKY_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) sky_log(SKY_LOG_WARN, __VA_ARGS__)
#define log_info(...) sky_log(SKY_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                   \
	do {                                                             \
		if (sky_log_get_level() >= SKY_LOG_DEBUG)                \
			sky_log(SKY_LOG_DEBUG, __VA_ARGS__);             \
	} while (0)

#endif
