/* skyctl client configuration: the file written by `skyrootd init`, the
 * flags that override it, and the small value parsers the CLI needs
 * (durations, sizes, PCI addresses).
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
#ifndef SKY_SKYCTL_CONF_H
#define SKY_SKYCTL_CONF_H

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

#endif
