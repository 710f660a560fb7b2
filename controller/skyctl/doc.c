/* Text made from skyctl's command table for people and other programs:
 * each command's synopsis, the bash and zsh completion scripts, and the
 * OPTIONS and COMMANDS sections of skyctl(1) in scdoc.  Nothing here is
 * written by hand per command, so none of it can drift from what skyctl
 * accepts.  The tables come in as an argument: this file never calls back
 * into cmd.c.  It prints only to the FILE it is given. */
#include <errno.h>
#include <string.h>

#include "controller/skyctl/skyctl.h"

#define DOC_NAME_MAX 64 /* bytes of "noun verb" */

/* ---- the table --------------------------------------------------------- */

#define DOC_FOREACH(t, c) \
	for (size_t doc_t_ = 0; doc_t_ < (t)->n; doc_t_++) \
		for (const struct skyctl_command *c = (t)->v[doc_t_]; c->noun != NULL; c++)

static const struct skyctl_flag_note *doc__note(const struct skyctl_command *c, int f)
{
	if (c == NULL || c->notes == NULL)
		return NULL;
	for (const struct skyctl_flag_note *n = c->notes; n->flag != FLAG__COUNT; n++)
		if (n->flag == f)
			return n;
	return NULL;
}

const char *skyctl_doc_flag_metavar(const struct skyctl_command *c, int f)
{
	const struct skyctl_flag_note *n = doc__note(c, f);

	return n != NULL && n->metavar != NULL ? n->metavar : skyctl_flags[f].metavar;
}

const char *skyctl_doc_flag_help(const struct skyctl_command *c, int f)
{
	const struct skyctl_flag_note *n = doc__note(c, f);

	return n != NULL && n->help != NULL ? n->help : skyctl_flags[f].help;
}

/* "[--device PCI_ADDRESS ...]" for a flag that may be repeated. */
void skyctl_doc_synopsis(const struct skyctl_command *c, char *buf, size_t len)
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
			const char *metavar = skyctl_doc_flag_metavar(c, f);
			if (!(c->flags & FLAG_BIT(f)) || required != (pass == 0))
				continue;
			w = snprintf(buf + n, len - n, " %s--%s%s%s%s%s", required ? "" : "[", skyctl_flags[f].name,
				     metavar ? " " : "", metavar ? metavar : "", skyctl_flags[f].kind == SKY_ARG_LIST ? " ..." : "",
				     required ? "" : "]");
			n += w < 0 ? 0 : (size_t)w;
		}
	}
}

/* Is c the first command of its noun? */
static int doc__first_of_noun(const struct skyctl_doc_tables *t, const struct skyctl_command *c)
{
	DOC_FOREACH(t, e) {
		if (strcmp(e->noun, c->noun) == 0)
			return e == c;
	}
	return 0;
}

/* A value goes with the flag: its metavar says so. */
static int doc__takes_value(int f)
{
	return skyctl_flags[f].metavar != NULL;
}

/* " --name --board" (and " -o" for a short name): the flags of mask. */
static void doc__flag_words(FILE *f, uint64_t mask)
{
	for (int i = 0; i < FLAG__COUNT; i++) {
		if (!(mask & FLAG_BIT(i)))
			continue;
		if (skyctl_flags[i].short_name != 0)
			fprintf(f, " -%c", skyctl_flags[i].short_name);
		fprintf(f, " --%s", skyctl_flags[i].name);
	}
}

static void doc__choice_words(FILE *f, const char *const *choices)
{
	for (size_t i = 0; choices[i] != NULL; i++)
		fprintf(f, "%s%s", i ? " " : "", choices[i]);
}

/* ---- completion -------------------------------------------------------- */

/* What a value of the flag can be, as the words function prints it. */
static void doc__complete_value(FILE *f, int i)
{
	const char *metavar = skyctl_flags[i].metavar;

	if (skyctl_flags[i].choices != NULL) {
		fputs("echo \"", f);
		doc__choice_words(f, skyctl_flags[i].choices);
		fputs("\"", f);
	} else if (strcmp(metavar, "FILE") == 0) {
		fputs("echo @files", f);
	}
}

/* The shell function both scripts share, in the part of sh that bash and
 * zsh (in sh emulation) read alike: given the word being completed and the
 * words before it, it prints the candidates, or "@files" for a file. */
static void doc__words_function(FILE *f, const struct skyctl_doc_tables *t)
{
	int first;

	fputs("__skyctl_words() {\n"
	      "\t[ -n \"${ZSH_VERSION-}\" ] && emulate -L sh\n"
	      "\tlocal cur=\"$1\" noun= verb= arg= skip= w\n"
	      "\tshift\n"
	      "\t# Which command it is: the words that are neither flags nor their values.\n"
	      "\tfor w in \"$@\"; do\n"
	      "\t\tif [ -n \"$skip\" ]; then\n"
	      "\t\t\t[ \"$w\" = \"=\" ] || skip=\n"
	      "\t\t\tcontinue\n"
	      "\t\tfi\n"
	      "\t\tcase \"$w\" in\n"
	      "\t\t", f);
	const char *sep = "";
	for (int i = 0; i < FLAG__COUNT; i++) {
		if (!doc__takes_value(i))
			continue;
		if (skyctl_flags[i].short_name != 0) {
			fprintf(f, "%s-%c", sep, skyctl_flags[i].short_name);
			sep = "|";
		}
		fprintf(f, "%s--%s", sep, skyctl_flags[i].name);
		sep = "|";
	}
	fputs(") skip=\"$w\" ;;\n"
	      "\t\t-*) ;;\n"
	      "\t\t*)\n"
	      "\t\t\tif [ -z \"$noun\" ]; then noun=\"$w\"\n"
	      "\t\t\telif [ -z \"$verb\" ]; then verb=\"$w\"\n"
	      "\t\t\telif [ -z \"$arg\" ]; then arg=\"$w\"\n"
	      "\t\t\tfi ;;\n"
	      "\t\tesac\n"
	      "\tdone\n"
	      "\t# The value of a flag.\n"
	      "\tif [ -n \"$skip\" ]; then\n"
	      "\t\tcase \"$skip\" in\n", f);
	for (int i = 0; i < FLAG__COUNT; i++) {
		/* Free text (names, sizes, URLs): nothing to offer. */
		if (!doc__takes_value(i) || (skyctl_flags[i].choices == NULL && strcmp(skyctl_flags[i].metavar, "FILE") != 0))
			continue;
		fputs("\t\t", f);
		if (skyctl_flags[i].short_name != 0)
			fprintf(f, "-%c|", skyctl_flags[i].short_name);
		fprintf(f, "--%s) ", skyctl_flags[i].name);
		doc__complete_value(f, i);
		fputs(" ;;\n", f);
	}
	fputs("\t\tesac\n"
	      "\t\treturn 0\n"
	      "\tfi\n"
	      "\t# A flag: the ones valid anywhere and the command's own.\n"
	      "\tcase \"$cur\" in\n"
	      "\t-*)\n"
	      "\t\tcase \"$noun $verb\" in\n", f);
	DOC_FOREACH(t, c) {
		if (c->flags == 0)
			continue;
		if (c->verb != NULL)
			fprintf(f, "\t\t\"%s %s\") echo \"", c->noun, c->verb);
		else
			fprintf(f, "\t\t\"%s \"*) echo \"", c->noun);
		doc__flag_words(f, FLAGS_GLOBAL | c->flags);
		fputs("\" ;;\n", f);
	}
	fputs("\t\t*) echo \"", f);
	doc__flag_words(f, FLAGS_GLOBAL);
	fputs("\" ;;\n"
	      "\t\tesac\n"
	      "\t\treturn 0 ;;\n"
	      "\tesac\n"
	      "\t# A noun, a verb, an argument.\n"
	      "\tcase \"$noun\" in\n"
	      "\t\"\") echo \"", f);
	first = 1;
	DOC_FOREACH(t, c) {
		if (doc__first_of_noun(t, c)) {
			fprintf(f, "%s%s", first ? "" : " ", c->noun);
			first = 0;
		}
	}
	fputs("\" ;;\n", f);
	DOC_FOREACH(t, c) {
		if (!doc__first_of_noun(t, c))
			continue;
		if (strcmp(c->noun, "help") == 0) {
			/* help NOUN VERB: the nouns, then the verbs of the noun. */
			fputs("\thelp)\n"
			      "\t\tif [ -z \"$verb\" ]; then __skyctl_words \"\"\n"
			      "\t\telif [ -z \"$arg\" ]; then __skyctl_words \"\" \"$verb\"\n"
			      "\t\tfi ;;\n", f);
			continue;
		}
		if (c->verb == NULL) {
			if (c->arg_choices != NULL) {
				fprintf(f, "\t%s) [ -z \"$verb\" ] && echo \"", c->noun);
				doc__choice_words(f, c->arg_choices);
				fputs("\" ;;\n", f);
			}
			continue;
		}
		fprintf(f, "\t%s)\n\t\tcase \"$verb\" in\n\t\t\"\") echo \"", c->noun);
		for (const struct skyctl_command *v = c; v->noun != NULL && strcmp(v->noun, c->noun) == 0; v++)
			fprintf(f, "%s%s", v == c ? "" : " ", v->verb);
		fputs("\" ;;\n", f);
		for (const struct skyctl_command *v = c; v->noun != NULL && strcmp(v->noun, c->noun) == 0; v++) {
			if (v->arg != NULL && strcmp(v->arg, "FILE") == 0)
				fprintf(f, "\t\t%s) [ -z \"$arg\" ] && echo @files ;;\n", v->verb);
			else if (v->arg_choices != NULL) {
				fprintf(f, "\t\t%s) [ -z \"$arg\" ] && echo \"", v->verb);
				doc__choice_words(f, v->arg_choices);
				fputs("\" ;;\n", f);
			}
		}
		fputs("\t\tesac ;;\n", f);
	}
	fputs("\tesac\n"
	      "\treturn 0\n"
	      "}\n", f);
}

static const char doc_bash[] =
	"_skyctl() {\n"
	"\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" out\n"
	"\tout=$(__skyctl_words \"$cur\" \"${COMP_WORDS[@]:1:COMP_CWORD-1}\")\n"
	"\tif [ \"$out\" = @files ]; then\n"
	"\t\tcompopt -o filenames 2>/dev/null\n"
	"\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
	"\telse\n"
	"\t\tCOMPREPLY=($(compgen -W \"$out\" -- \"$cur\"))\n"
	"\tfi\n"
	"}\n"
	"complete -F _skyctl skyctl\n";

static const char doc_zsh[] =
	"_skyctl() {\n"
	"\tlocal out\n"
	"\tout=$(__skyctl_words \"${words[CURRENT]}\" \"${(@)words[2,CURRENT-1]}\")\n"
	"\tif [[ \"$out\" == @files ]]; then\n"
	"\t\t_files\n"
	"\telse\n"
	"\t\tcompadd -- ${=out}\n"
	"\tfi\n"
	"}\n"
	"# Autoloaded from $fpath as _skyctl, or sourced.\n"
	"if [ \"${funcstack[1]-}\" = \"_skyctl\" ]; then\n"
	"\t_skyctl \"$@\"\n"
	"else\n"
	"\tcompdef _skyctl skyctl\n"
	"fi\n";

int skyctl_doc_completion(FILE *f, const char *shell, const struct skyctl_doc_tables *t)
{
	int zsh = strcmp(shell, "zsh") == 0;

	if (!zsh && strcmp(shell, "bash") != 0)
		return -EINVAL;
	if (zsh)
		fputs("#compdef skyctl\n", f);
	fprintf(f, "# skyctl completion for %s, made by 'skyctl completion %s' from skyctl's command table.\n"
		   "# Load it in a shell with:  source <(skyctl completion %s)\n",
		shell, shell, shell);
	if (zsh)
		fputs("# or save it as _skyctl in a folder of $fpath, before compinit.\n", f);
	doc__words_function(f, t);
	fputs(zsh ? doc_zsh : doc_bash, f);
	return 0;
}

/* ---- skyctl(1) --------------------------------------------------------- */

/* Text as scdoc shows it: its markup characters escaped, on one line. */
static void doc__scd_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '*' || *s == '_' || *s == '`')
			fputc('\\', f);
		fputc(*s == '\n' || *s == '\t' ? ' ' : *s, f);
	}
}

/* "*-o, --output* _table|wide|json|yaml_" and the help under it. */
static void doc__scd_flag(FILE *f, const struct skyctl_command *c, int i)
{
	const char *metavar = skyctl_doc_flag_metavar(c, i);

	fputs("*", f);
	if (skyctl_flags[i].short_name != 0)
		fprintf(f, "-%c, ", skyctl_flags[i].short_name);
	fputs("--", f);
	doc__scd_text(f, skyctl_flags[i].name);
	fputs("*", f);
	if (metavar != NULL) {
		fputs(" _", f);
		doc__scd_text(f, metavar);
		fputs("_", f);
	}
	if (skyctl_flags[i].kind == SKY_ARG_LIST)
		fputs(" ...", f);
	fputs("\n\t", f);
	doc__scd_text(f, skyctl_doc_flag_help(c, i));
	fputs("\n\n", f);
}

int skyctl_doc_scdoc(FILE *f, const struct skyctl_doc_tables *t)
{
	char syn[512];

	fputs("# OPTIONS\n\nThese options may go anywhere on the command line.\n\n", f);
	for (int i = 0; i < FLAG__COUNT; i++)
		if (FLAGS_GLOBAL & FLAG_BIT(i))
			doc__scd_flag(f, NULL, i);
	fputs("# COMMANDS\n\n", f);
	DOC_FOREACH(t, c) {
		skyctl_doc_synopsis(c, syn, sizeof(syn));
		fputs("## ", f);
		doc__scd_text(f, syn);
		fputs("\n\n", f);
		doc__scd_text(f, c->summary);
		fputs(".\n\n", f);
		for (int i = 0; i < FLAG__COUNT; i++)
			if (c->flags & FLAG_BIT(i))
				doc__scd_flag(f, c, i);
		if (c->example != NULL) {
			fputs("Example:\n\n\t", f);
			doc__scd_text(f, c->example);
			fputs("\n\n", f);
		}
	}
	return ferror(f) ? -EIO : 0;
}
