/* skyctl's command table: every noun's commands, found by their words,
 * and the usage and help text made from them (as vmctl's table does).  The
 * same table can make shell completion and man pages. */
#include <string.h>

#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"

#define CMD_SYNOPSIS_MAX 512
#define CMD_SYNOPSIS_COLUMN 44 /* a longer synopsis has its summary on the next line */
#define CMD_TEXT_COLUMNS 79    /* a synopsis is wrapped to this */

static const struct skyctl_command cmd_help[] = {
	{
		.noun = "help", .arg = "[COMMAND]",
		.summary = "show this help, or the help of one command",
	},
	{ 0 },
};

/* The tables in the order usage shows them. */
static const struct skyctl_command *const cmd_tables[] = {
	skyctl_token_commands, skyctl_board_commands, skyctl_image_commands, skyctl_guest_commands, cmd_help,
};

#define CMD_NTABLES (sizeof(cmd_tables) / sizeof(cmd_tables[0]))

static const struct skyctl_command *cmd__first(void)
{
	return &cmd_tables[0][0];
}

/* The command after c in usage order, or NULL. */
static const struct skyctl_command *cmd__next(const struct skyctl_command *c)
{
	if (c[1].noun != NULL)
		return c + 1;
	for (size_t t = 0; t + 1 < CMD_NTABLES; t++) {
		const struct skyctl_command *e = cmd_tables[t];
		while (e->noun != NULL)
			e++;
		if (e == c + 1)
			return cmd_tables[t + 1]; /* no table is empty */
	}
	return NULL;
}

static const struct skyctl_flag_note *cmd__flag_note(const struct skyctl_command *c, int f)
{
	if (c == NULL || c->notes == NULL)
		return NULL;
	for (const struct skyctl_flag_note *n = c->notes; n->flag != FLAG__COUNT; n++)
		if (n->flag == f)
			return n;
	return NULL;
}

/* The flag's metavar and help for command c (NULL: no command). */
static const char *cmd__flag_metavar(const struct skyctl_command *c, int f)
{
	const struct skyctl_flag_note *n = cmd__flag_note(c, f);

	return n != NULL && n->metavar != NULL ? n->metavar : skyctl_flags[f].metavar;
}

static const char *cmd__flag_help(const struct skyctl_command *c, int f)
{
	const struct skyctl_flag_note *n = cmd__flag_note(c, f);

	return n != NULL && n->help != NULL ? n->help : skyctl_flags[f].help;
}

/* "image push FILE --name NAME [--kind KIND]": the argument, the required
 * flags, then the optional ones in brackets; "[--device PCI_ADDRESS ...]"
 * for a flag that may be repeated. */
static void cmd__command_synopsis(const struct skyctl_command *c, char *buf, size_t len)
{
	size_t n = 0;
	int w;

	w = snprintf(buf, len, "%s%s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "");
	n = w < 0 ? 0 : (size_t)w;
	if (c->arg != NULL && n < len) {
		w = snprintf(buf + n, len - n, " %s", c->arg);
		n += w < 0 ? 0 : (size_t)w;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int f = 0; f < FLAG__COUNT && n < len; f++) {
			int required = (c->required & FLAG_BIT(f)) != 0;
			const char *metavar = cmd__flag_metavar(c, f);
			if (!(c->flags & FLAG_BIT(f)) || required != (pass == 0))
				continue;
			w = snprintf(buf + n, len - n, " %s--%s%s%s%s%s", required ? "" : "[", skyctl_flags[f].name,
				     metavar ? " " : "", metavar ? metavar : "", skyctl_flags[f].kind == SKY_ARG_LIST ? " ..." : "",
				     required ? "" : "]");
			n += w < 0 ? 0 : (size_t)w;
		}
	}
}


/* text on the current line (at column col), wrapped before a " [" or a
 * " -" when a line would pass CMD_TEXT_COLUMNS; a new line starts with
 * indent blanks.  Ends with a newline. */
static void cmd__print_wrapped(FILE *f, const char *text, size_t col, size_t indent)
{
	const char *p = text;

	while (*p != '\0') {
		/* The next piece runs to the next break point. */
		const char *e = p + 1;
		while (*e != '\0' && !(e[0] == ' ' && (e[1] == '[' || e[1] == '-')))
			e++;
		size_t n = (size_t)(e - p);
		if (p != text && col + n > CMD_TEXT_COLUMNS && col > indent) {
			fputc('\n', f);
			skyctl_pad(f, indent);
			col = indent;
			p++; /* the blank */
			n--;
		}
		fwrite(p, 1, n, f);
		col += n;
		p = e;
	}
	fputc('\n', f);
}

static void cmd__print_commands(FILE *f, const char *noun)
{
	char syn[CMD_SYNOPSIS_MAX];
	size_t width = 0;

	for (const struct skyctl_command *c = cmd__first(); c != NULL; c = cmd__next(c)) {
		if (noun != NULL && strcmp(c->noun, noun) != 0)
			continue;
		cmd__command_synopsis(c, syn, sizeof(syn));
		if (strlen(syn) > width && strlen(syn) <= CMD_SYNOPSIS_COLUMN)
			width = strlen(syn);
	}
	for (const struct skyctl_command *c = cmd__first(); c != NULL; c = cmd__next(c)) {
		if (noun != NULL && strcmp(c->noun, noun) != 0)
			continue;
		cmd__command_synopsis(c, syn, sizeof(syn));
		if (strlen(syn) > width) {
			fputs("  ", f);
			cmd__print_wrapped(f, syn, 2, 6);
			fprintf(f, "  %-*s  %s\n", (int)width, "", c->summary);
		} else {
			fprintf(f, "  %-*s  %s\n", (int)width, syn, c->summary);
		}
	}
}

/* The flags of mask, with what they mean to command c (NULL: in general),
 * as the shared option layer prints them. */
static void cmd__print_flags(FILE *f, unsigned mask, const struct skyctl_command *c)
{
	struct sky_opt opts[FLAG__COUNT + 1];
	size_t n = 0;

	for (int i = 0; i < FLAG__COUNT; i++) {
		if (!(mask & FLAG_BIT(i)))
			continue;
		skyctl_args_opt(&opts[n], i, NULL);
		opts[n].metavar = cmd__flag_metavar(c, i);
		opts[n].help = cmd__flag_help(c, i);
		n++;
	}
	opts[n] = (struct sky_opt){ 0 };
	sky_args_usage(f, opts);
}

/* "unknown command 'board lsit'; did you mean 'list'?": the nearest noun,
 * or verb of noun, when one is near. */
static void cmd__unknown(const char *noun, const char *verb)
{
	const char *names[64];
	const char *near;
	size_t n = 0;

	for (const struct skyctl_command *c = cmd__first(); c != NULL && n < 64; c = cmd__next(c)) {
		if (verb == NULL && (n == 0 || strcmp(names[n - 1], c->noun) != 0))
			names[n++] = c->noun;
		else if (verb != NULL && c->verb != NULL && strcmp(c->noun, noun) == 0)
			names[n++] = c->verb;
	}
	near = sky_args_suggest(verb != NULL ? verb : noun, names, n);
	if (verb == NULL)
		skyctl_err("unknown command '%s'%s%s%s", noun, near ? "; did you mean '" : "", near ? near : "",
			   near ? "'?" : "");
	else
		skyctl_err("unknown command '%s %s'%s%s%s", noun, verb, near ? "; did you mean '" : "",
			   near ? near : "", near ? "'?" : "");
}

void skyctl_cmd_usage(FILE *f)
{
	fprintf(f, "usage: skyctl [OPTIONS] COMMAND [ARGS]\n\ncommands:\n");
	cmd__print_commands(f, NULL);
	fprintf(f, "\noptions (they may go anywhere on the line):\n");
	cmd__print_flags(f, FLAGS_GLOBAL, NULL);
	fprintf(f, "\nThe controller URL, CA and token come from the skyctl.conf that "
		   "'skyrootd init' writes;\nthe flags override it.  "
		   "Run 'skyctl COMMAND --help' for the options of a command.\n");
}

static void cmd__group_usage(FILE *f, const char *noun)
{
	fprintf(f, "usage: skyctl [OPTIONS] %s COMMAND [ARGS]\n\ncommands:\n", noun);
	cmd__print_commands(f, noun);
	fprintf(f, "\nRun 'skyctl --help' for the options.\n");
}

void skyctl_cmd_command_usage(FILE *f, const struct skyctl_command *c, int full)
{
	static const char prefix[] = "usage: skyctl [OPTIONS] ";
	char syn[CMD_SYNOPSIS_MAX];

	cmd__command_synopsis(c, syn, sizeof(syn));
	fputs(prefix, f);
	cmd__print_wrapped(f, syn, sizeof(prefix) - 1, sizeof(prefix) - 1);
	if (!full) {
		fprintf(f, "Run 'skyctl %s%s%s --help' for more.\n", c->noun, c->verb ? " " : "",
			c->verb ? c->verb : "");
		return;
	}
	fprintf(f, "\n%s\n", c->summary);
	if (c->flags != 0) {
		fprintf(f, "\noptions:\n");
		cmd__print_flags(f, c->flags, c);
	}
	fprintf(f, "\nRun 'skyctl --help' for the options of all commands (-o json, --config, ...).\n");
}


const struct skyctl_command *skyctl_cmd_find(const char *noun, const char *verb)
{
	for (const struct skyctl_command *c = cmd__first(); c != NULL; c = cmd__next(c)) {
		if (strcmp(c->noun, noun) != 0)
			continue;
		if (verb == NULL || (c->verb != NULL && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

/* "skyctl help [GROUP [VERB]]" and "--help" anywhere. */
int skyctl_cmd_help(const char *const *words, size_t n)
{
	const struct skyctl_command *c;

	if (n == 0 || strcmp(words[0], "help") == 0) {
		skyctl_cmd_usage(stdout);
		return SKYCTL_EXIT_OK;
	}
	c = skyctl_cmd_find(words[0], NULL);
	if (c == NULL) {
		cmd__unknown(words[0], NULL);
		skyctl_cmd_usage(stderr);
		return SKYCTL_EXIT_USAGE;
	}
	if (n == 1) {
		cmd__group_usage(stdout, words[0]);
		return SKYCTL_EXIT_OK;
	}
	c = skyctl_cmd_find(words[0], words[1]);
	if (c == NULL) {
		cmd__unknown(words[0], words[1]);
		cmd__group_usage(stderr, words[0]);
		return SKYCTL_EXIT_USAGE;
	}
	skyctl_cmd_command_usage(stdout, c, 1);
	return SKYCTL_EXIT_OK;
}


const struct skyctl_command *skyctl_cmd_resolve(const struct skyctl_opts *o)
{
	const struct skyctl_command *c;
	size_t nargs;

	if (o->nwords == 0) {
		skyctl_err("no command given");
		skyctl_cmd_usage(stderr);
		return NULL;
	}
	if (skyctl_cmd_find(o->words[0], NULL) == NULL) {
		cmd__unknown(o->words[0], NULL);
		skyctl_cmd_usage(stderr);
		return NULL;
	}
	if (o->nwords == 1) {
		skyctl_err("'%s' needs a command", o->words[0]);
		cmd__group_usage(stderr, o->words[0]);
		return NULL;
	}
	c = skyctl_cmd_find(o->words[0], o->words[1]);
	if (c == NULL) {
		cmd__unknown(o->words[0], o->words[1]);
		cmd__group_usage(stderr, o->words[0]);
		return NULL;
	}
	nargs = o->nwords - 2;
	if (c->arg == NULL && nargs > 0) {
		skyctl_err("'%s %s' takes no argument, but '%s' was given", c->noun, c->verb, o->words[2]);
		goto fail;
	}
	if (c->arg != NULL && nargs != 1) {
		if (nargs == 0)
			skyctl_err("'%s %s' needs %s", c->noun, c->verb, c->arg);
		else
			skyctl_err("'%s %s' takes one %s, but %zu were given", c->noun, c->verb, c->arg, nargs);
		goto fail;
	}
	size_t arg_max = c->arg_max ? c->arg_max : SKYCTL_MAX_ID;
	if (c->arg != NULL && (o->words[2][0] == '\0' || strlen(o->words[2]) > arg_max)) {
		skyctl_err("%s must be 1 to %zu bytes long", c->arg, arg_max);
		goto fail;
	}
	unsigned stray = o->seen & ~FLAGS_GLOBAL & ~c->flags;
	unsigned missing = c->required & ~o->seen;
	for (int f = 0; f < FLAG__COUNT; f++) {
		if (stray & FLAG_BIT(f)) {
			skyctl_err("--%s is not an option of '%s %s'", skyctl_flags[f].name, c->noun, c->verb);
			goto fail;
		}
		if (missing & FLAG_BIT(f)) {
			skyctl_err("'%s %s' needs --%s %s", c->noun, c->verb, skyctl_flags[f].name, cmd__flag_metavar(c, f));
			goto fail;
		}
	}
	return c;
fail:
	skyctl_cmd_command_usage(stderr, c, 0);
	return NULL;
}
