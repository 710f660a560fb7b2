/* The command line of skyrootd's commands: see cmdline.h. */
#include "controller/skyrootd/cmdline.h"

int ctl_cmdline_parse(const char *cmd, struct sky_opt *opts, unsigned n_required, int argc, char **argv,
		      void (*usage)(FILE *f))
{
	char err[256];
	int first, r = sky_args_parse(opts, argc, argv, &first, err, sizeof(err));

	if (r == 1) {
		usage(stdout);
		return -1;
	}
	if (r < 0) {
		fprintf(stderr, "skyrootd %s: %s\n", cmd, err);
		return 2;
	}
	if (first != argc) {
		fprintf(stderr, "skyrootd %s: unexpected argument '%s'; see 'skyrootd --help'\n", cmd, argv[first]);
		return 2;
	}
	for (unsigned i = 0; i < n_required; i++) {
		if (!opts[i].seen) {
			fprintf(stderr, "skyrootd %s: --%s %s is required\n", cmd, opts[i].name, opts[i].metavar);
			return 2;
		}
	}
	return 0;
}
