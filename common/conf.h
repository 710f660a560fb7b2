/* The config-file syntax of Skyroot's daemons (skyrootd.conf), over the
 * option table of args.h: a file sets the same keys as the flags, and each
 * line is checked by the very table and parsers that check the flag.
 *
 *   # a comment: from a '#' at the start of a line or after a blank
 *   cert-ttl = 12h
 *   api-listen = 0.0.0.0:7444   # the rest of a line after " #" is a comment
 *
 * A line is blank, a comment, or KEY = VALUE: KEY is a long option name
 * without its "--", VALUE the rest of the line with the blanks around it
 * removed (no quoting; it must not be empty).  Each line is given to
 * sky_args_parse as "--KEY=VALUE".  A key given twice is refused (say it
 * once); flags that take no value and repeatable options cannot be set in a
 * file.  At most SKY_CONF_FILE_MAX bytes, SKY_CONF_LINE_MAX per line, no
 * NUL byte.  docs/config.md is the user's page.
 *
 * Library code: it does not print; errors come back as "FILE:LINE: text". */
#ifndef SKY_COMMON_CONF_H
#define SKY_COMMON_CONF_H

#include <stddef.h>

#include "common/args.h"

#define SKY_CONF_FILE_MAX (256 * 1024)
#define SKY_CONF_LINE_MAX 4096

/* Parse text (len bytes, the file called name in messages) into opts'
 * destinations.  String values point into *store, a block made here that
 * the caller frees once it no longer uses them.  0; -EINVAL with
 * "NAME:LINE: what is wrong" in err (required, errlen > 0); -EFBIG;
 * -ENOMEM.
 * On failure *store is not written and whatever the destinations hold
 * must be thrown away (string values may point into freed memory). */
int sky_conf_parse(struct sky_opt *opts, const char *name, const char *text, size_t len, char **store,
		   char *err, size_t errlen);

/* Read the file at path and parse it as above.  -ENOENT (and the other
 * errors of open and read) with "PATH: reason" in err. */
int sky_conf_load(struct sky_opt *opts, const char *path, char **store, char *err, size_t errlen);

#endif
