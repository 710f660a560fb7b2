/* skyctl's own interface between its files: the command line as parsed,
 * the command table, and the state a command runs with.
 *
 * Layout (one role per file; calls go down this list, never back up):
 *   main.c     the program: options, config, run one command
 *   cmd.c      the command table: lookup, usage and help made from it;
 *              the commands that are not a noun's (help, version,
 *              completion)
 *   doc.c      text made from the command table for other programs:
 *              synopses, bash and zsh completion, skyctl(1)'s sections
 *   args.c     the flags: the catalogue, argv into struct skyctl_opts
 *              through the shared option layer (common/args.h)
 *   token.c, board.c, image.c, guest.c, version.c, events.c
 *              one file per noun: its commands and its table (events.c
 *              also follows the event stream for the others' --wait)
 *   expect.c   the board noun's commands for boards with no token:
 *              accept, reject, expect, expect-list, expect-delete
 *   network.c  the network noun: networks guests' NICs join
 *   firmware.c the firmware noun: the measured-boot gate's allowed firmware
 *   http.c     the one HTTP client (libcurl): prepare, perform, report
 *   output.c   what goes to the terminal: errors, tables, JSON, fields,
 *              progress lines
 *   yamlout.c  -o yaml: a JSON value as YAML (libyaml's emitter; library)
 *   conf.c     the client config file (library: prints nothing)
 *   format.c   sizes, clocks and progress lines as text (library) */
#ifndef SKY_SKYCTL_SKYCTL_H
#define SKY_SKYCTL_SKYCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/args.h"
#include "common/limits.h"
#include "common/parse.h"
#include "controller/skyctl/conf.h"

#define SKYCTL_EXIT_OK 0
#define SKYCTL_EXIT_ERROR 1
#define SKYCTL_EXIT_USAGE 2

#define SKYCTL_MAX_WORDS 8      /* words that are not flags on the command line */
#define SKYCTL_MAX_ID 256       /* bytes of an ID or name given on the command line */
#define SKYCTL_LIMIT_MAX 10000  /* --limit: the most audit entries asked for */
#define SKYCTL_PAGE_MAX 1000    /* --limit of a list: the controller's largest page */
#define SKYCTL_MAX_PATH 4096    /* bytes of a FILE given on the command line */
#define SKYCTL_MAX_DEVICES 8    /* --device flags of one guest (the controller's limit too) */
#define SKYCTL_MAX_NICS SKY_GUEST_NICS_MAX /* --nic flags of one guest */
#define SKYCTL_MAX_CMDLINE 4096 /* bytes of --cmdline (the controller has its own, smaller limit) */
#define SKYCTL_FETCH_TIMEOUT 600 /* seconds 'image fetch' waits by default (10m) */
#define SKYCTL_FETCH_TIMEOUT_MAX (7 * 24 * 3600)

enum skyctl_output {
	SKYCTL_OUTPUT_TABLE,
	SKYCTL_OUTPUT_WIDE, /* a list's table with its extra columns */
	SKYCTL_OUTPUT_JSON,
	SKYCTL_OUTPUT_YAML, /* the same answer as JSON, in YAML */
};

enum skyctl_flag_id {
	FLAG_OUTPUT,
	FLAG_CONFIG,
	FLAG_CONTROLLER,
	FLAG_CA,
	FLAG_TOKEN,
	FLAG_HELP,
	FLAG_VERSION,
	FLAG_TTL,
	FLAG_USES,
	FLAG_NAME,
	FLAG_KIND,
	FLAG_BOARD,
	FLAG_NO_WAIT,
	FLAG_TIMEOUT,
	FLAG_KERNEL,
	FLAG_INITRD,
	FLAG_DISK,
	FLAG_CMDLINE,
	FLAG_VCPUS,
	FLAG_MEMORY,
	FLAG_DEVICE,
	FLAG_BACKEND,
	FLAG_FOLLOW,
	FLAG_ROLE,
	FLAG_GRACE,
	FLAG_NO_HEADERS,
	FLAG_SCDOC,
	FLAG_LIMIT,
	FLAG_PAGE_TOKEN,
	FLAG_STATE,
	FLAG_LABEL,
	FLAG_DESCRIPTION,
	FLAG_IF_MATCH,
	FLAG_PENDING,
	FLAG_SERIAL,
	FLAG_UUID,
	FLAG_TYPE,
	FLAG_ID,
	FLAG_SINCE,
	FLAG_WAIT,
	FLAG_NIC,
	FLAG_VLAN,
	FLAG_PCR11,
	FLAG__COUNT,
};

#define FLAG_BIT(f) ((uint64_t)1 << (f))
_Static_assert(FLAG__COUNT <= 64, "FLAG_BIT() sets of flags are 64-bit masks");
/* What every list command takes (verbs.c's skyctl_verb_list). */
#define FLAGS_LIST (FLAG_BIT(FLAG_LIMIT) | FLAG_BIT(FLAG_PAGE_TOKEN))
/* What every "set" command takes (verbs.c's skyctl_verb_set). */
#define FLAGS_SET (FLAG_BIT(FLAG_NAME) | FLAG_BIT(FLAG_LABEL) | FLAG_BIT(FLAG_DESCRIPTION) | FLAG_BIT(FLAG_IF_MATCH))
/* The flags valid anywhere on the line; the others belong to commands. */
#define FLAGS_GLOBAL (FLAG_BIT(FLAG_OUTPUT) | FLAG_BIT(FLAG_CONFIG) | FLAG_BIT(FLAG_CONTROLLER) | \
		      FLAG_BIT(FLAG_CA) | FLAG_BIT(FLAG_TOKEN) | FLAG_BIT(FLAG_HELP) | FLAG_BIT(FLAG_VERSION) | \
		      FLAG_BIT(FLAG_NO_HEADERS))

/* One flag of the catalogue (args.c). */
struct skyctl_flag {
	const char *name;    /* long name, without "--" */
	char short_name;     /* 0 when none */
	const char *metavar; /* NULL when the flag takes no value */
	const char *help;
	enum sky_arg_kind kind; /* how common/args.c reads it */
	size_t off;          /* where in struct skyctl_opts it goes */
	uint64_t min, max;   /* for UINT, SIZE, DURATION (max 0: no range) */
	const char *const *choices; /* the only values allowed, NULL-ended; NULL: any */
};

extern const struct skyctl_flag skyctl_flags[FLAG__COUNT];

/* What a flag means to one command, when that differs from skyctl_flags[]. */
struct skyctl_flag_note {
	int flag;            /* FLAG__COUNT ends a list */
	const char *metavar; /* NULL: the flag's own */
	const char *help;    /* NULL: the flag's own */
};

struct skyctl;

/* Whether a command talks to the controller. */
enum skyctl_reach {
	SKYCTL_REACH_CONTROLLER, /* needs the config and the HTTP client */
	SKYCTL_REACH_NONE,       /* local: ctl->http is NULL, no config is read */
	SKYCTL_REACH_TRY,        /* runs without them too (ctl->http NULL), after saying why */
};

/* One "noun verb" of the command line; a command of one word ("version")
 * has no verb, and its argument follows the noun. */
struct skyctl_command {
	const char *noun;    /* NULL ends a table */
	const char *verb;    /* NULL for "help" */
	const char *arg;     /* the positional argument in usage; NULL when none */
	size_t arg_max;      /* bytes of arg; 0 for SKYCTL_MAX_ID */
	const char *const *arg_choices; /* the only values arg may take, NULL-ended; NULL: any */
	uint64_t flags;      /* FLAG_BIT()s of the command's own flags */
	uint64_t required;   /* those of flags that must be given */
	const char *summary;
	const char *example; /* a whole command line, "skyctl ..." */
	const struct skyctl_flag_note *notes; /* NULL when none */
	enum skyctl_reach reach;
	int (*run)(struct skyctl *ctl, const char *arg);
};

/* Each noun's table, ended by an entry whose noun is NULL. */
extern const struct skyctl_command skyctl_token_commands[];
extern const struct skyctl_command skyctl_board_commands[];
extern const struct skyctl_command skyctl_pending_commands[];
extern const struct skyctl_command skyctl_image_commands[];
extern const struct skyctl_command skyctl_guest_commands[];
extern const struct skyctl_command skyctl_version_commands[];
extern const struct skyctl_command skyctl_credential_commands[];
extern const struct skyctl_command skyctl_events_commands[];
extern const struct skyctl_command skyctl_network_commands[];
extern const struct skyctl_command skyctl_firmware_commands[];

/* What the command line says. */
struct skyctl_opts {
	const char *value[FLAG__COUNT]; /* a text flag's value, as given */
	bool on[FLAG__COUNT];           /* a flag without a value, given */
	uint64_t seen;                  /* FLAG_BIT()s of the flags given */
	struct sky_arg_list devices;    /* every --device, as given */
	struct sky_arg_list labels;     /* every --label, as given */
	char device_addr[SKYCTL_MAX_DEVICES][SKY_PCI_ADDR_LEN]; /* checked, canonical */
	struct sky_arg_list nics;       /* every --nic, as given */
	char nic_net[SKYCTL_MAX_NICS][SKY_NAME_MAX + 1]; /* checked: its network */
	char nic_mac[SKYCTL_MAX_NICS][SKY_MAC_LEN];      /* canonical; "" = the controller picks */
	const char *words[SKYCTL_MAX_WORDS];
	size_t nwords;
	enum skyctl_output output;
	uint64_t ttl;
	uint64_t uses;
	uint64_t timeout;               /* seconds; --timeout or SKYCTL_FETCH_TIMEOUT */
	uint64_t vcpus;
	uint64_t memory;                /* bytes */
	uint64_t grace;                 /* seconds: --grace of credential rotate */
	uint64_t limit;                 /* --limit: at most this many items (a page; audit entries) */
	uint64_t since;                 /* --since: a resource version of the events */
	uint64_t vlan;                  /* --vlan of network create */
	struct skyctl_conf flag_conf;   /* --controller, --ca, --token, checked */
};

enum { SKYCTL_SRC_CONTROLLER, SKYCTL_SRC_CA, SKYCTL_SRC_TOKEN };

struct skyctl_http;

/* What a command runs with. */
struct skyctl {
	const struct skyctl_opts *opts;
	struct skyctl_conf conf;
	char conf_path[SKYCTL_CONF_PATH_MAX]; /* "" when no config file is known */
	char src[3][SKYCTL_CONF_PATH_MAX + 32]; /* where controller, ca, token came from */
	struct skyctl_http *http;
};

static inline int skyctl_has(const struct skyctl_opts *o, int flag)
{
	return (o->seen & FLAG_BIT(flag)) != 0;
}

/* -o json or -o yaml: the controller's answer is printed as data. */
static inline int skyctl_as_data(const struct skyctl_opts *o)
{
	return o->output == SKYCTL_OUTPUT_JSON || o->output == SKYCTL_OUTPUT_YAML;
}

/* ---- cmd.c ---- */

/* The command noun verb (verb NULL: the first of noun), or NULL. */
const struct skyctl_command *skyctl_cmd_find(const char *noun, const char *verb);
/* The words to a command with the right arguments and flags; prints the
 * usage error and returns NULL. */
const struct skyctl_command *skyctl_cmd_resolve(const struct skyctl_opts *o);
/* "skyctl help [NOUN [VERB]]" (with --scdoc: skyctl(1)'s generated
 * sections): an exit code. */
int skyctl_cmd_help(const struct skyctl_opts *o, const char *const *words, size_t n);
void skyctl_cmd_usage(FILE *f);
/* full: with the summary and what each flag means; else a pointer to it. */
void skyctl_cmd_command_usage(FILE *f, const struct skyctl_command *c, int full);
/* The word after the command's own: its argument, or NULL. */
const char *skyctl_cmd_arg(const struct skyctl_command *c, const struct skyctl_opts *o);

/* ---- doc.c (prints only to f; returns 0 or -errno) ---- */

/* Every command, in usage order: the tables, each ended by a NULL noun. */
struct skyctl_doc_tables {
	const struct skyctl_command *const *v;
	size_t n;
};

/* The flag's metavar and help for command c (NULL: in general). */
const char *skyctl_doc_flag_metavar(const struct skyctl_command *c, int flag);
const char *skyctl_doc_flag_help(const struct skyctl_command *c, int flag);
/* "image push FILE --name NAME [--kind KIND]": the argument, the required
 * flags, then the optional ones in brackets. */
void skyctl_doc_synopsis(const struct skyctl_command *c, char *buf, size_t len);
/* The completion script of shell ("bash" or "zsh"; -EINVAL for another). */
int skyctl_doc_completion(FILE *f, const char *shell, const struct skyctl_doc_tables *t);
/* skyctl(1)'s OPTIONS and COMMANDS sections in scdoc. */
int skyctl_doc_scdoc(FILE *f, const struct skyctl_doc_tables *t);

/* ---- args.c ---- */

/* The option of the shared layer for flag, its value going into o (NULL:
 * for usage only). */
void skyctl_args_opt(struct sky_opt *opt, int flag, struct skyctl_opts *o);
/* Read argv (flags anywhere, "--" ends them) into o with the shared
 * option layer; prints what is wrong and returns -EINVAL. */
int skyctl_args_parse(int argc, char **argv, struct skyctl_opts *o);
/* Check the values the option layer leaves to skyctl; prints what is
 * wrong and returns -EINVAL. */
int skyctl_args_check(struct skyctl_opts *o);

#endif
