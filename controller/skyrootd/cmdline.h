/* The command line of skyrootd's commands (init, run's siblings, backup,
 * restore, reader-token): one way to parse a command's option table and
 * say what is wrong. */
#ifndef SKY_CONTROLLER_CMDLINE_H
#define SKY_CONTROLLER_CMDLINE_H

#include <stdio.h>

#include "common/args.h"

/* Parse argv against opts, whose first n_required options must be given;
 * no operands.  0 to go on; -1 when --help was shown (exit 0); 2 for a
 * usage error, said on stderr as "skyrootd CMD: ...". */
int ctl_cmdline_parse(const char *cmd, struct sky_opt *opts, unsigned n_required, int argc, char **argv,
		      void (*usage)(FILE *f));

#endif
