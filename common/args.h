/* One argument-parsing layer over getopt_long for every program (skyrootd,
 * skyctl, skyagent, skyvmm).  A program describes its options in a table;
 * the same table parses argv, checks each value with the shared parsers of
 * common/parse.h and generates the usage text, so usage never drifts from
 * what is accepted.
 *
 *   static uint64_t mem;
 *   static const char *name;
 *   static bool force;
 *   static struct sky_opt opts[] = {
 *       { .name = "memory", .short_name = 'm', .kind = SKY_ARG_SIZE, .dest = &mem,
 *         .metavar = "SIZE", .help = "guest memory (e.g. 512M)",
 *         .min = SKY_GUEST_MEMORY_MIN, .max = SKY_GUEST_MEMORY_MAX },
 *       { .name = "name", .kind = SKY_ARG_STR, .dest = &name, .metavar = "NAME", .help = "a name" },
 *       { .name = "force", .short_name = 'f', .kind = SKY_ARG_FLAG, .dest = &force,
 *         .help = "do not ask" },
 *       { 0 }
 *   };
 *   int first;
 *   r = sky_args_parse(opts, argc, argv, &first, err, sizeof(err));
 *
 * Fill tables with designated initializers as above: positional ones that
 * stop before the last member draw -Wmissing-field-initializers (-Wextra).
 *
 * Library code: it does not print or exit; errors come back as text. */
#ifndef SKY_COMMON_ARGS_H
#define SKY_COMMON_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/parse.h" /* SKY_PCI_ADDR_LEN */

enum sky_arg_kind {
	SKY_ARG_FLAG,       /* bool *: set to true; takes no value */
	SKY_ARG_STR,        /* const char **: the value as given (argv memory) */
	SKY_ARG_UINT,       /* uint64_t *: sky_parse_uint in [min, max] (max 0: no upper bound) */
	SKY_ARG_SIZE,       /* uint64_t *: sky_parse_size, in [min, max] when max != 0 */
	SKY_ARG_DURATION,   /* uint64_t *: sky_parse_duration (seconds), in [min, max] when max != 0 */
	SKY_ARG_HOSTPORT,   /* const char **: checked with sky_parse_hostport, kept as given;
			     * min is the default port (0: the port is required) */
	SKY_ARG_PCI,        /* char (*)[SKY_PCI_ADDR_LEN]: canonical form */
	SKY_ARG_LIST,       /* struct sky_arg_list *: emptied, then each value appended
			     * (checked first by cb when cb is set); more than max: error */
	SKY_ARG_CALLBACK,   /* cb(ctx, value, err, errlen): the program checks it; with
			     * metavar NULL it takes no value and value is NULL.  A
			     * negative return is returned, with cb's message (or a
			     * generic one when cb wrote none) */
};

#define SKY_ARG_LIST_MAX 16
struct sky_arg_list {
	const char *v[SKY_ARG_LIST_MAX];
	unsigned n;
	unsigned max;       /* 0: SKY_ARG_LIST_MAX */
};

struct sky_opt {
	const char *name;        /* long name without "--"; NULL ends the table */
	char short_name;         /* 0: none */
	enum sky_arg_kind kind;
	void *dest;              /* NULL: checked and counted in seen, not stored */
	const char *metavar;     /* "SIZE"; NULL for SKY_ARG_FLAG */
	const char *help;        /* one line; "\n" starts an indented continuation */
	uint64_t min, max;       /* for UINT, SIZE, DURATION */
	int (*cb)(void *ctx, const char *value, char *err, size_t errlen);
	void *ctx;
	bool hidden;             /* parsed but left out of usage */
	unsigned seen;           /* out: how many times it was given (table must be writable) */
};

/* Parse argv[1..] against opts (GNU style: --name VALUE, --name=VALUE, -n
 * VALUE, -nVALUE, bundled short flags, "--" ends options; options and
 * operands may be mixed, operands are moved to the end, each group keeping
 * its order; POSIXLY_CORRECT changes nothing).  *first is the index of the
 * first operand (argc when there is none).  Long names are never
 * abbreviated ("--mem" is not "--memory").  An option given twice: the
 * last value wins (LIST: appended), seen counts both.  "--help"/"-h" is
 * always known ("-h" unless the table gives 'h' to another option; a table
 * entry named "help" gives its help line): it returns 1 and parses nothing
 * further.  Returns 0, 1 for help, or -EINVAL with a message in err (err
 * may be NULL) that names the option, says what is wrong and what to do,
 * and suggests the nearest known option for an unknown one ("unknown option
 * '--memroy'; did you mean '--memory'?").  Values already stored stay
 * stored on failure.  Resets getopt's state itself, before and after
 * (optind = 0, opterr = 0); not thread-safe (getopt's state is global). */
int sky_args_parse(struct sky_opt *opts, int argc, char **argv, int *first, char *err, size_t errlen);

/* Print the options part of a usage text: one line per option, aligned:
 *   "  -m, --memory SIZE     guest memory (e.g. 512M)" */
void sky_args_usage(FILE *f, const struct sky_opt *opts);

/* The option in opts nearest to name by edit distance (at most 2 edits),
 * or NULL.  Also used for sub-command names. */
const char *sky_args_suggest(const char *name, const char *const *candidates, size_t n);

#endif
