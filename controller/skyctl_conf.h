/* skyctl client configuration: the file written by `skyrootd init`, the
 * flags that override it, and the small value parsers and formatters the
 * CLI needs (durations, sizes, PCI addresses, progress lines).
 *
 * The file is lines `key = value`; keys are `controller` (an https:// URL),
 * `ca` (a path; relative paths are relative to the file's folder) and
 * `token`.  Lines whose first non-blank character is `#` are comments; blank
 * lines are ignored.  Unknown keys, repeated keys and empty values are errors
 * that name the line.
 *
 * Library code: nothing here prints.  Functions return 0 or a negative errno
 * and, on failure, leave their out-parameters untouched and write a message
 * saying what is wrong into err (bounded by errlen; err may be NULL). */
#ifndef SKY_CONTROLLER_SKYCTL_CONF_H
#define SKY_CONTROLLER_SKYCTL_CONF_H

#include <stddef.h>
#include <stdint.h>

#define SKYCTL_CONF_MAX_FILE (64 * 1024) /* bytes in a config file */
#define SKYCTL_CONF_MAX_LINE 4096        /* bytes in one line, without '\n' */
#define SKYCTL_CONF_URL_MAX 2048         /* sizes of the fields, with the NUL */
#define SKYCTL_CONF_PATH_MAX 4096
#define SKYCTL_CONF_TOKEN_MAX 512

struct skyctl_conf {
	char controller[SKYCTL_CONF_URL_MAX]; /* "" when unset; never ends in '/' */
	char ca[SKYCTL_CONF_PATH_MAX];         /* "" when unset */
	char token[SKYCTL_CONF_TOKEN_MAX];     /* "" when unset; printable ASCII, no blanks */
};

/* Every field unset. */
void skyctl_conf_init(struct skyctl_conf *conf);

/* Set one key ("controller", "ca", "token") after checking the value.  A
 * relative `ca` is joined to base_dir when base_dir is not NULL (the config
 * file's folder); with NULL it is kept as given (flags: relative to the
 * working directory).  -EINVAL for an unknown key or a bad value,
 * -ENAMETOOLONG when the value does not fit. */
int skyctl_conf_set(struct skyctl_conf *conf, const char *key, const char *value,
		    const char *base_dir, char *err, size_t errlen);

/* Parse a whole config text of len bytes (at most SKYCTL_CONF_MAX_FILE) into
 * *conf, which is replaced: keys absent from the text end up unset.
 * Messages start with "line N: ". */
int skyctl_conf_parse(struct skyctl_conf *conf, const char *text, size_t len,
		      const char *base_dir, char *err, size_t errlen);

/* Read and parse the file at path; relative `ca` paths are taken relative to
 * the file's folder.  -ENOENT (and the other open(2) errors) when it cannot
 * be opened, -EFBIG when over SKYCTL_CONF_MAX_FILE.  Messages start with
 * the path. */
int skyctl_conf_load(struct skyctl_conf *conf, const char *path, char *err, size_t errlen);

/* The config path to use when --config is not given: env_config (the value
 * of $SKYROOT_CONFIG) when set and not empty, else
 * HOME/.config/skyroot/skyctl.conf.  -ENOENT when neither is available,
 * -ENAMETOOLONG when it does not fit in buf. */
int skyctl_conf_default_path(const char *env_config, const char *home, char *buf, size_t len);

/* "30s", "10m", "1h", "2d" or a plain number of seconds -> seconds.
 * No signs, blanks or fractions.  -EINVAL for bad syntax, -ERANGE when the
 * result would exceed INT64_MAX. */
int skyctl_conf_parse_duration(const char *s, uint64_t *seconds);

/* "256M", "2G", "512K", "1T" (powers of 1024; the letter K, M, G, T, P or
 * E in either case, optionally followed by "iB": "256MiB"), "512B" or a
 * plain number of bytes -> bytes.  No signs, blanks or fractions; "2GB" is
 * refused (it could mean 10^9).  -EINVAL for bad syntax, -ERANGE when the
 * result would exceed INT64_MAX. */
int skyctl_conf_parse_size(const char *s, uint64_t *bytes);

#define SKYCTL_CONF_PCI_ADDRESS_LEN 13 /* "0000:00:03.0" and the NUL */

/* A PCI address as a board reports it: "DDDD:BB:DD.F" (domain, bus,
 * device 00-1f, function 0-7, in hex of either case) or the short
 * "BB:DD.F" that lspci prints, which means domain 0000.  Writes the full
 * form in lower case ("0000:00:03.0") to buf.  -EINVAL for anything else,
 * -ENOBUFS when len < SKYCTL_CONF_PCI_ADDRESS_LEN. */
int skyctl_conf_parse_pci_address(const char *s, char *buf, size_t len);

/* 512 -> "512 B", 8388608 -> "8.0 MiB" (powers of 1024, one decimal, up to
 * EiB).  -ENOBUFS when it does not fit in len bytes (16 always do). */
int skyctl_conf_format_size(uint64_t bytes, char *buf, size_t len);

/* Seconds as a clock: 42 -> "0:42", 725 -> "12:05", 3723 -> "1:02:03".
 * -ENOBUFS when it does not fit in len bytes (32 always do). */
int skyctl_conf_format_duration(uint64_t seconds, char *buf, size_t len);

/* One line of a progress display. */
struct skyctl_conf_progress {
	const char *label;   /* printed first, e.g. "img-5e0c9a1b2c3d"; NULL for none */
	const char *unit;    /* NULL: done and total are bytes (sizes, rate, ETA);
			      * else the plural of what is counted, e.g. "chunks" */
	uint64_t done;
	uint64_t total;      /* 0 when unknown (a stream): no percentage, bar or ETA */
	uint64_t elapsed_ms; /* since the transfer began */
};

#define SKYCTL_CONF_PROGRESS_MIN_WIDTH 20
#define SKYCTL_CONF_PROGRESS_MAX_WIDTH 200

/* Format p as one line of at most width - 1 columns (the last column of a
 * terminal is left free so that the line never wraps), e.g.
 *   "123.4 MiB / 300.0 MiB   41% [#####-------]  85.2 MiB/s  ETA 0:02"
 *   "12.0 MiB  4.0 MiB/s  0:03 elapsed"               (total unknown)
 *   "img-5e0c9a1b2c3d   12/257 chunks    4% [-------]  ETA 1:02"
 * The bar shrinks with width and is left out when there is no room; a label
 * that does not fit is cut.  width is taken as at least
 * SKYCTL_CONF_PROGRESS_MIN_WIDTH and at most SKYCTL_CONF_PROGRESS_MAX_WIDTH.
 * Control bytes in the label are shown as '?'.  -ENOBUFS when the line
 * does not fit in len bytes (4 * width + 1 always do: a label may hold
 * UTF-8); buf is not written then. */
int skyctl_conf_format_progress(const struct skyctl_conf_progress *p, size_t width, char *buf, size_t len);

#endif
