/* One argument-parsing layer over getopt_long for every program (skyrootd,
 * skyctl, skyagent, skyvmm).  A program describes its options in a table;
 * the same table parses argv, checks each value with the shared parsers of
 * common/parse.h and generates the usage text, so usage never drifts from
 * what is accepted.
 *
 *   static uint64_t mem;
 *   static const char *name;
 *   static bool force;
 *   static const struct sky_opt opts[] = {
 *       { "memory", 'm', SKY_ARG_SIZE, &mem, "SIZE", "guest memory (e.g. 512M)",
 *         .min = SKY_GUEST_MEMORY_MIN, .max = SKY_GUEST_MEMORY_MAX },
 *       { "name", 0, SKY_ARG_STR, &name, "NAME", "a name" },
 *       { "force", 'f', SKY_ARG_FLAG, &force, NULL, "do not ask" },
 *       { 0 }
 *   };
 *   int first;
 *   r = sky_args_parse(opts, argc, argv, &first, err, sizeof(err));
 *
 * Library code: it does not print or exit; errors come back as text. */
#ifndef SKY_COMMON_ARGS_H
#define SKY_COMMON_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sky_arg_kind {
	SKY_ARG_FLAG,       /* bool *: set to true; takes no value */
	SKY_ARG_STR,        /* const char **: the value as given (argv memory) */
	SKY_ARG_UINT,       /* uint64_t *: sky_parse_uint in [min, max] */
	SKY_ARG_SIZE,       /* uint64_t *: sky_parse_size, in [min, max] when max != 0 */
	SKY_ARG_DURATION,   /* uint64_t *: sky_parse_duration (seconds), in [min, max] when max != 0 */
	SKY_ARG_HOSTPORT,   /* const char **: checked with sky_parse_hostport, kept as given */
	SKY_ARG_PCI,        /* char (*)[SKY_PCI_ADDR_LEN]: canonical form */
	SKY_ARG_LIST,       /* struct sky_arg_list *: repeatable; each value appended */
	SKY_ARG_CALLBACK,   /* cb(ctx, value, err, errlen): the program checks it */
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
	void *dest;
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
 * operands may be mixed, operands are moved to the end).  *first is the
 * index of the first operand.  "--help"/"-h" is always known: it returns 1
 * and parses nothing further.  Returns 0, 1 for help, or -EINVAL with a
 * message in err that names the option, says what is wrong and what to do,
 * and suggests the nearest known option for an unknown one ("unknown option
 * '--memroy'; did you mean '--memory'?").  Resets getopt's state itself. */
int sky_args_parse(struct sky_opt *opts, int argc, char **argv, int *first, char *err, size_t errlen);

/* Print the options part of a usage text: one line per option, aligned:
 *   "  -m, --memory SIZE     guest memory (e.g. 512M)" */
void sky_args_usage(FILE *f, const struct sky_opt *opts);

/* The option in opts nearest to name by edit distance (at most 2 edits),
 * or NULL.  Also used for sub-command names. */
const char *sky_args_suggest(const char *name, const char *const *candidates, size_t n);

#endif
