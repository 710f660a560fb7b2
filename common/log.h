/* Logging for the programs (daemons and CLIs).  Library code does not log:
 * it returns a negative errno and lets the caller say what happened. */
#ifndef SKY_COMMON_LOG_H
#define SKY_COMMON_LOG_H

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
/* "error", "warn", "info", "debug" -> level; -EINVAL otherwise. */
int sky_log_parse_level(const char *s);

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
