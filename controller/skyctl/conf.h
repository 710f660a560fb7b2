/* skyctl client configuration: the file written by `skyrootd init`, the
 * flags that override it.  (Sizes, durations and PCI addresses are read by
 * the shared parsers of common/parse.h.)
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

#endif
