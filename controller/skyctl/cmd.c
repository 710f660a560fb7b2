/* skyctl's command table: every noun's commands, found by their words,
 * and the usage and help text made from them (as vmctl's table does).  The
 * same table makes the shell completion and skyctl(1) (doc.c). */
#include <errno.h>
#include <string.h>

#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"

#define CMD_SYNOPSIS_MAX 512
#define CMD_SYNOPSIS_COLUMN 44 /* a longer synopsis has its summary on the next line */
#define CMD_TEXT_COLUMNS 79    /* a synopsis is wrapped to this */
#define CMD_NAME_MAX 64        /* bytes of "noun verb" */

static int cmd__completion(struct skyctl *ctl, const char *arg);

static const char *const cmd_shells[] = { "bash", "zsh", NULL };

/* The commands that are not a noun's. */
static const struct skyctl_command cmd_builtin[] = {
	{
		.noun = "completion", .arg = "bash|zsh", .arg_choices = cmd_shells,
		.summary = "print the shell completion script of bash or zsh, made from this command table",
		.example = "source <(skyctl completion bash)",
		.reach = SKYCTL_REACH_NONE,
		.run = cmd__completion,
	},
	{
		.noun = "help", .arg = "[COMMAND]",
		.flags = FLAG_BIT(FLAG_SCDOC),
		.summary = "show this help, or the help of one command",
		.example = "skyctl help guest create",
		.reach = SKYCTL_REACH_NONE,
	},
	{ 0 },
};

/* The tables in the order usage shows them. */
static const struct skyctl_command *const cmd_tables[] = {
	skyctl_token_commands, skyctl_board_commands, skyctl_pending_commands, skyctl_image_commands, skyctl_guest_commands,
	skyctl_network_commands, skyctl_firmware_commands, skyctl_credential_commands, skyctl_events_commands, skyctl_version_commands, cmd_builtin,
};

#define CMD_NTABLES (sizeof(cmd_tables) / sizeof(cmd_tables[0]))

static const struct skyctl_doc_tables cmd_all = { .v = cmd_tables, .n = CMD_NTABLES };

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

/* "guest create", or "version" for a command of one word. */
static const char *cmd__name(const struct skyctl_command *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "");
	return buf;
}

static int cmd__completion(struct skyctl *ctl, const char *arg)
{
	(void)ctl;
	return skyctl_doc_completion(stdout, arg, &cmd_all); /* arg is one of cmd_shells */
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
		skyctl_doc_synopsis(c, syn, sizeof(syn));
		if (strlen(syn) > width && strlen(syn) <= CMD_SYNOPSIS_COLUMN)
			width = strlen(syn);
	}
	for (const struct skyctl_command *c = cmd__first(); c != NULL; c = cmd__next(c)) {
		if (noun != NULL && strcmp(c->noun, noun) != 0)
			continue;
		skyctl_doc_synopsis(c, syn, sizeof(syn));
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
static void cmd__print_flags(FILE *f, uint64_t mask, const struct skyctl_command *c)
{
	struct sky_opt opts[FLAG__COUNT + 1];
	size_t n = 0;

	for (int i = 0; i < FLAG__COUNT; i++) {
		if (!(mask & FLAG_BIT(i)))
			continue;
		skyctl_args_opt(&opts[n], i, NULL);
		opts[n].metavar = skyctl_doc_flag_metavar(c, i);
		opts[n].help = skyctl_doc_flag_help(c, i);
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
	char syn[CMD_SYNOPSIS_MAX], name[CMD_NAME_MAX];

	skyctl_doc_synopsis(c, syn, sizeof(syn));
	fputs(prefix, f);
	cmd__print_wrapped(f, syn, sizeof(prefix) - 1, sizeof(prefix) - 1);
	if (!full) {
		fprintf(f, "Run 'skyctl %s --help' for more.\n", cmd__name(c, name, sizeof(name)));
		return;
	}
	fprintf(f, "\n%s\n", c->summary);
	if (c->flags != 0) {
		fprintf(f, "\noptions:\n");
		cmd__print_flags(f, c->flags, c);
	}
	if (c->example != NULL)
		fprintf(f, "\nexample:\n  %s\n", c->example);
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
int skyctl_cmd_help(const struct skyctl_opts *o, const char *const *words, size_t n)
{
	const struct skyctl_command *c;

	if (skyctl_has(o, FLAG_SCDOC))
		return skyctl_doc_scdoc(stdout, &cmd_all) < 0 ? SKYCTL_EXIT_ERROR : SKYCTL_EXIT_OK;
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
	if (c->verb == NULL) {
		skyctl_cmd_command_usage(stdout, c, 1);
		return SKYCTL_EXIT_OK;
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

const char *skyctl_cmd_arg(const struct skyctl_command *c, const struct skyctl_opts *o)
{
	size_t at = c->verb != NULL ? 2 : 1;

	return o->nwords > at ? o->words[at] : NULL;
}

/* The argument is one of c->arg_choices: "'completion' takes bash or zsh,
 * not 'fish'". */
static int cmd__check_choice(const struct skyctl_command *c, const char *name, const char *arg)
{
	const char *near;
	size_t n = 0;

	if (c->arg_choices == NULL)
		return 0;
	for (; c->arg_choices[n] != NULL; n++)
		if (strcmp(arg, c->arg_choices[n]) == 0)
			return 0;
	near = sky_args_suggest(arg, c->arg_choices, n);
	skyctl_err("'%s' takes %s, not '%s'%s%s%s", name, c->arg, arg, near ? "; did you mean '" : "",
		   near ? near : "", near ? "'?" : "");
	return -EINVAL;
}

const struct skyctl_command *skyctl_cmd_resolve(const struct skyctl_opts *o)
{
	const struct skyctl_command *c;
	char name[CMD_NAME_MAX];
	const char *arg;
	size_t nargs;

	if (o->nwords == 0) {
		skyctl_err("no command given");
		skyctl_cmd_usage(stderr);
		return NULL;
	}
	c = skyctl_cmd_find(o->words[0], NULL);
	if (c == NULL) {
		cmd__unknown(o->words[0], NULL);
		skyctl_cmd_usage(stderr);
		return NULL;
	}
	if (c->verb != NULL && o->nwords == 1) {
		skyctl_err("'%s' needs a command", o->words[0]);
		cmd__group_usage(stderr, o->words[0]);
		return NULL;
	}
	if (c->verb != NULL)
		c = skyctl_cmd_find(o->words[0], o->words[1]);
	if (c == NULL) {
		cmd__unknown(o->words[0], o->words[1]);
		cmd__group_usage(stderr, o->words[0]);
		return NULL;
	}
	cmd__name(c, name, sizeof(name));
	nargs = o->nwords - (c->verb != NULL ? 2 : 1);
	arg = skyctl_cmd_arg(c, o);
	if (c->arg == NULL && nargs > 0) {
		skyctl_err("'%s' takes no argument, but '%s' was given", name, arg);
		goto fail;
	}
	if (c->arg != NULL && nargs != 1) {
		if (nargs == 0)
			skyctl_err("'%s' needs %s", name, c->arg);
		else
			skyctl_err("'%s' takes one %s, but %zu were given", name, c->arg, nargs);
		goto fail;
	}
	size_t arg_max = c->arg_max ? c->arg_max : SKYCTL_MAX_ID;
	if (c->arg != NULL && (arg[0] == '\0' || strlen(arg) > arg_max)) {
		skyctl_err("%s must be 1 to %zu bytes long", c->arg, arg_max);
		goto fail;
	}
	if (c->arg != NULL && cmd__check_choice(c, name, arg) < 0)
		goto fail;
	uint64_t stray = o->seen & ~FLAGS_GLOBAL & ~c->flags;
	uint64_t missing = c->required & ~o->seen;
	for (int f = 0; f < FLAG__COUNT; f++) {
		if (stray & FLAG_BIT(f)) {
			skyctl_err("--%s is not an option of '%s'", skyctl_flags[f].name, name);
			goto fail;
		}
		if (missing & FLAG_BIT(f)) {
			skyctl_err("'%s' needs --%s %s", name, skyctl_flags[f].name, skyctl_doc_flag_metavar(c, f));
			goto fail;
		}
	}
	return c;
fail:
	skyctl_cmd_command_usage(stderr, c, 0);
	return NULL;
}
