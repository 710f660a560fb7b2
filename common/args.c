/* The argument layer (see args.h): a table of options over getopt_long.
 *
 * getopt_long runs in its "return in order" mode ('-' first in the option
 * string): it hands over operands one by one instead of permuting argv
 * behind our back (and whatever POSIXLY_CORRECT says), so the indices of
 * operands are known and they are moved to the end once parsing is done.
 * It is also told to be silent (':' and opterr = 0): every message is ours.
 * getopt_long accepts unambiguous abbreviations of long names; we do not
 * ("--mem" today could mean something else tomorrow), so every long option
 * it reports is checked against the text that was written. */
#include "common/args.h"

#include "common/parse.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX_OPTS 128      /* options in one table */
#define ARGS_VAL_BASE 256      /* getopt_long's value for long option i: base + i */
#define ARGS_NAME_MAX 64       /* longest name sky_args_suggest compares */
#define ARGS_HEAD_MIN 20       /* usage: the help column starts here at least ... */
#define ARGS_HEAD_MAX 32       /* ... and at most; longer heads get their own line */

static void args__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void args__err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool args__takes_value(const struct sky_opt *o)
{
	switch (o->kind) {
	case SKY_ARG_FLAG:
		return false;
	case SKY_ARG_CALLBACK:
		return o->metavar != NULL;
	default:
		return true;
	}
}

/* ---- did you mean --------------------------------------------------------- */

/* Optimal string alignment distance (insertions, deletions, substitutions
 * and swaps of two neighbours), both strings at most ARGS_NAME_MAX bytes. */
static size_t args__distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[3][ARGS_NAME_MAX + 1];

	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t *cur = d[i % 3], *prev = d[(i - 1) % 3], *prev2 = d[(i + 1) % 3];
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1, v = prev[j - 1] + cost;
			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < v)
				v = prev2[j - 2] + 1;
			cur[j] = v;
		}
	}
	return d[la % 3][lb];
}

const char *sky_args_suggest(const char *name, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = 3, ln;

	if (!name || !candidates)
		return NULL;
	ln = strnlen(name, ARGS_NAME_MAX + 1);
	if (ln > ARGS_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t lc, d;
		if (!candidates[i])
			continue;
		lc = strnlen(candidates[i], ARGS_NAME_MAX + 1);
		if (lc > ARGS_NAME_MAX)
			continue;
		d = args__distance(name, ln, candidates[i], lc);
		/* Fewer edits than letters typed: "ab" is not a typo of "cd". */
		if (d < best_d && d < ln) {
			best = candidates[i];
			best_d = d;
		}
	}
	return best;
}

/* "unknown option '--memroy'; did you mean '--memory'?" for the long option
 * written at arg ("--NAME" or "--NAME=VALUE"). */
static int args__unknown_long(const struct sky_opt *opts, size_t n, const char *arg, char *err, size_t errlen)
{
	const char *names[ARGS_MAX_OPTS + 1];
	char name[ARGS_NAME_MAX + 1];
	const char *eq = strchr(arg + 2, '='), *hit = NULL;
	size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2), nn = 0, prefixes = 0;

	for (size_t i = 0; i < n; i++)
		names[nn++] = opts[i].name;
	names[nn++] = "help";
	if (len <= ARGS_NAME_MAX) {
		memcpy(name, arg + 2, len);
		name[len] = '\0';
		/* An abbreviation: say it is one when it has one completion. */
		for (size_t i = 0; i < nn; i++) {
			if (len > 0 && strncmp(names[i], name, len) == 0) {
				hit = names[i];
				prefixes++;
			}
		}
		if (prefixes == 1) {
			args__err(err, errlen, "unknown option '--%s': options are not abbreviated; did you mean '--%s'?",
				  name, hit);
			return -EINVAL;
		}
		hit = sky_args_suggest(name, names, nn);
	}
	if (hit)
		args__err(err, errlen, "unknown option '--%.*s'; did you mean '--%s'?", (int)(len > 100 ? 100 : len),
			  arg + 2, hit);
	else
		args__err(err, errlen, "unknown option '--%.*s'; see --help for the options",
			  (int)(len > 100 ? 100 : len), arg + 2);
	return -EINVAL;
}

/* ---- values --------------------------------------------------------------- */

static int args__range_err(const struct sky_opt *o, const char *v, char *err, size_t errlen)
{
	char lo[32], hi[32];

	if (o->kind == SKY_ARG_SIZE) {
		sky_format_size_exact(o->min, lo, sizeof(lo));
		sky_format_size_exact(o->max, hi, sizeof(hi));
	} else {
		sky_format_duration(o->min, lo, sizeof(lo));
		sky_format_duration(o->max, hi, sizeof(hi));
	}
	args__err(err, errlen, "--%s '%.100s' is out of range: give %s to %s", o->name, v, lo, hi);
	return -EINVAL;
}

static int args__list(const struct sky_opt *o, const char *v, char *err, size_t errlen)
{
	struct sky_arg_list *l = o->dest;
	unsigned max;

	if (!l)
		return 0;
	max = l->max == 0 || l->max > SKY_ARG_LIST_MAX ? SKY_ARG_LIST_MAX : l->max;
	if (l->n >= max) {
		args__err(err, errlen, "--%s is given more than %u times: give it at most %u times", o->name,
			  max, max);
		return -EINVAL;
	}
	l->v[l->n++] = v;
	return 0;
}

static int args__callback(const struct sky_opt *o, const char *v, char *err, size_t errlen)
{
	int r;

	if (err && errlen > 0)
		err[0] = '\0';
	r = o->cb(o->ctx, v, err, errlen);
	if (r >= 0)
		return 0;
	if (err && errlen > 0 && err[0] == '\0') {
		if (v)
			args__err(err, errlen, "--%s '%.100s' is not valid: see --help", o->name, v);
		else
			args__err(err, errlen, "--%s cannot be used here: see --help", o->name);
	}
	return r;
}

/* Check v (NULL for an option that takes none) and store it. */
static int args__apply(const struct sky_opt *o, const char *v, char *err, size_t errlen)
{
	uint64_t n, max = o->max;
	char pci[SKY_PCI_ADDR_LEN], host[256];
	uint16_t port;
	int r;

	switch (o->kind) {
	case SKY_ARG_FLAG:
		if (o->dest)
			*(bool *)o->dest = true;
		return 0;
	case SKY_ARG_STR:
		if (o->dest)
			*(const char **)o->dest = v;
		return 0;
	case SKY_ARG_UINT:
		r = sky_parse_uint(v, o->min, max ? max : UINT64_MAX, &n);
		if (r == -EINVAL && max) {
			args__err(err, errlen, "--%s '%.100s' is not a whole number; give one between %llu and %llu",
				  o->name, v, (unsigned long long)o->min, (unsigned long long)max);
			return -EINVAL;
		}
		if (r == -EINVAL) {
			args__err(err, errlen, "--%s '%.100s' is not a whole number; use e.g. --%s %llu", o->name, v,
				  o->name, (unsigned long long)o->min);
			return -EINVAL;
		}
		if (r < 0) {
			args__err(err, errlen, "--%s '%.100s' is out of range: give a whole number between %llu and %llu",
				  o->name, v, (unsigned long long)o->min, (unsigned long long)(max ? max : UINT64_MAX));
			return -EINVAL;
		}
		break;
	case SKY_ARG_SIZE:
		r = sky_parse_size(v, &n);
		if (r == -EINVAL) {
			args__err(err, errlen, "--%s '%.100s' is not a size; use e.g. --%s 512M or 2G", o->name, v,
				  o->name);
			return -EINVAL;
		}
		if (r < 0 || (max != 0 && (n < o->min || n > max)))
			return args__range_err(o, v, err, errlen);
		break;
	case SKY_ARG_DURATION:
		r = sky_parse_duration(v, &n);
		if (r == -EINVAL) {
			args__err(err, errlen, "--%s '%.100s' is not a duration in whole seconds; use e.g. --%s 90s, 15m or 1h30m",
				  o->name, v, o->name);
			return -EINVAL;
		}
		if (r < 0 || (max != 0 && (n < o->min || n > max)))
			return args__range_err(o, v, err, errlen);
		break;
	case SKY_ARG_HOSTPORT:
		r = sky_parse_hostport(v, host, sizeof(host), &port, (uint16_t)o->min);
		if (r < 0) {
			args__err(err, errlen,
				  "--%s '%.100s' is not HOST:PORT; use e.g. --%s ctl.example.net:7443 or [2001:db8::1]:7443%s",
				  o->name, v, o->name, o->min ? "" : " (the port is required)");
			return -EINVAL;
		}
		if (o->dest)
			*(const char **)o->dest = v;
		return 0;
	case SKY_ARG_PCI:
		if (sky_parse_pci(v, pci, sizeof(pci)) < 0) {
			args__err(err, errlen,
				  "--%s '%.100s' is not a PCI address; use e.g. --%s 0000:01:00.0 or 01:00.0 (as lspci -D prints)",
				  o->name, v, o->name);
			return -EINVAL;
		}
		if (o->dest)
			memcpy(o->dest, pci, sizeof(pci));
		return 0;
	case SKY_ARG_LIST:
		if (o->cb && (r = args__callback(o, v, err, errlen)) < 0)
			return r;
		return args__list(o, v, err, errlen);
	case SKY_ARG_CALLBACK:
		return o->cb ? args__callback(o, v, err, errlen) : 0;
	default:
		args__err(err, errlen, "--%s has an unknown kind %d in the program's option table", o->name, (int)o->kind);
		return -EINVAL;
	}
	if (o->dest)
		*(uint64_t *)o->dest = n;
	return 0;
}

/* ---- parsing -------------------------------------------------------------- */

/* The option written at argv[at] must be opts[i]'s name in full. */
static int args__exact(const struct sky_opt *opts, size_t n, size_t i, const char *arg, char *err, size_t errlen)
{
	size_t len = strcspn(arg + 2, "=");
	const char *name = i < n ? opts[i].name : "help";

	if (strlen(name) == len && strncmp(arg + 2, name, len) == 0)
		return 0;
	return args__unknown_long(opts, n, arg, err, errlen);
}

/* Move the operands (marked in is_operand) after the rest, each group in
 * its order; returns the index of the first operand. */
static int args__operands_last(int argc, char **argv, const char *is_operand, char **tmp)
{
	int w = 0, first;

	for (int i = 1; i < argc; i++)
		if (!is_operand[i])
			tmp[w++] = argv[i];
	first = w + 1;
	for (int i = 1; i < argc; i++)
		if (is_operand[i])
			tmp[w++] = argv[i];
	memcpy(argv + 1, tmp, (size_t)w * sizeof(*argv));
	return first;
}

static int args__table(struct sky_opt *opts, size_t *n, bool *own_help, char *err, size_t errlen)
{
	*n = 0;
	*own_help = false;
	for (; opts[*n].name; (*n)++) {
		struct sky_opt *o = &opts[*n];
		if (*n >= ARGS_MAX_OPTS || o->name[0] == '\0' || strlen(o->name) > ARGS_NAME_MAX ||
		    (o->kind == SKY_ARG_CALLBACK && !o->cb) || o->short_name == ':' || o->short_name == '-' ||
		    o->short_name == '?' || o->short_name < 0) {
			args__err(err, errlen, "the program's option table is wrong at entry %zu", *n);
			return -EINVAL;
		}
		if (strcmp(o->name, "help") == 0)
			*own_help = true;
		o->seen = 0;
		if (o->kind == SKY_ARG_LIST && o->dest)
			((struct sky_arg_list *)o->dest)->n = 0;
	}
	return 0;
}

int sky_args_parse(struct sky_opt *opts, int argc, char **argv, int *first, char *err, size_t errlen)
{
	struct option longopts[ARGS_MAX_OPTS + 2];
	char shorts[3 + 2 * (ARGS_MAX_OPTS + 1) + 1], *is_operand = NULL, **tmp = NULL;
	size_t n, ns = 0;
	bool own_help, help_short = false;
	int c, r;

	if (err && errlen > 0)
		err[0] = '\0';
	if (!opts || !argv || argc < 1 || !first) {
		args__err(err, errlen, "no arguments to parse");
		return -EINVAL;
	}
	r = args__table(opts, &n, &own_help, err, errlen);
	if (r < 0)
		return r;

	/* '-': operands come back in order (as value 1); ':': a missing
	 * value is ':', not '?'. */
	shorts[ns++] = '-';
	shorts[ns++] = ':';
	for (size_t i = 0; i < n; i++) {
		longopts[i] = (struct option){ opts[i].name, args__takes_value(&opts[i]) ? required_argument : no_argument,
					       NULL, ARGS_VAL_BASE + (int)i };
		if (opts[i].short_name) {
			shorts[ns++] = opts[i].short_name;
			if (args__takes_value(&opts[i]))
				shorts[ns++] = ':';
			help_short |= opts[i].short_name == 'h';
		}
	}
	if (!own_help) {
		longopts[n] = (struct option){ "help", no_argument, NULL, ARGS_VAL_BASE + (int)n };
		if (!help_short)
			shorts[ns++] = 'h';
	}
	longopts[n + !own_help] = (struct option){ 0 };
	shorts[ns] = '\0';

	is_operand = calloc((size_t)argc, 1);
	tmp = calloc((size_t)argc, sizeof(*tmp));
	if (!is_operand || !tmp) {
		args__err(err, errlen, "out of memory parsing the arguments");
		r = -ENOMEM;
		goto out;
	}

	optind = 0; /* GNU: start again from scratch, whatever a previous parse left */
	opterr = 0;
	for (;;) {
		size_t i;
		const char *arg;

		c = getopt_long(argc, argv, shorts, longopts, NULL);
		if (c == -1)
			break;
		if (c == 1) {
			is_operand[optind - 1] = 1;
			continue;
		}
		if (c == ':') {
			i = optopt >= ARGS_VAL_BASE ? (size_t)(optopt - ARGS_VAL_BASE) : n;
			for (size_t k = 0; optopt < ARGS_VAL_BASE && k < n; k++)
				if (opts[k].short_name == optopt)
					i = k;
			if (i < n)
				args__err(err, errlen, "--%s needs a value: --%s %s", opts[i].name, opts[i].name,
					  opts[i].metavar ? opts[i].metavar : "VALUE");
			else
				args__err(err, errlen, "-%c needs a value", optopt);
			r = -EINVAL;
			goto out;
		}
		if (c == '?') {
			arg = argv[optind - 1];
			if (optopt >= ARGS_VAL_BASE) {
				i = (size_t)(optopt - ARGS_VAL_BASE);
				const char *name = i < n ? opts[i].name : "help";
				/* Known, but written with "=VALUE" or abbreviated. */
				r = args__exact(opts, n, i, arg, err, errlen);
				if (r == 0)
					args__err(err, errlen, "--%s takes no value: write just --%s", name, name);
			} else if (optopt != 0) {
				args__err(err, errlen, "unknown option '-%c'; see --help for the options", optopt);
			} else {
				args__unknown_long(opts, n, arg, err, errlen);
			}
			r = -EINVAL;
			goto out;
		}
		if (c >= ARGS_VAL_BASE) {
			i = (size_t)(c - ARGS_VAL_BASE);
			/* The option is argv[optind - 1], or the one before
			 * when its value was the next argument. */
			arg = optarg && optind >= 2 && argv[optind - 1] == optarg ? argv[optind - 2] : argv[optind - 1];
			r = args__exact(opts, n, i, arg, err, errlen);
			if (r < 0)
				goto out;
		} else {
			i = n;
			for (size_t k = 0; k < n; k++)
				if (opts[k].short_name == c)
					i = k;
		}
		if (i >= n) { /* --help or -h */
			r = 1;
			goto out;
		}
		r = args__apply(&opts[i], args__takes_value(&opts[i]) ? optarg : NULL, err, errlen);
		if (r < 0)
			goto out;
		opts[i].seen++;
		if (strcmp(opts[i].name, "help") == 0) { /* the table's own --help */
			r = 1;
			goto out;
		}
	}
	for (int k = optind; k < argc; k++)
		is_operand[k] = 1;
	*first = args__operands_last(argc, argv, is_operand, tmp);
	r = 0;
out:
	free(tmp);
	free(is_operand);
	optind = 0;
	return r;
}

/* ---- usage ---------------------------------------------------------------- */

static int args__head(const struct sky_opt *o, char *buf, size_t len)
{
	bool v = args__takes_value(o);

	if (o->short_name)
		return snprintf(buf, len, "-%c, --%s%s%s", o->short_name, o->name, v ? " " : "",
				v ? (o->metavar ? o->metavar : "VALUE") : "");
	return snprintf(buf, len, "    --%s%s%s", o->name, v ? " " : "", v ? (o->metavar ? o->metavar : "VALUE") : "");
}

static void args__line(FILE *f, const char *head, int width, const char *help)
{
	int hl = (int)strlen(head);

	if (hl > width - 2)
		fprintf(f, "  %s\n  %-*s", head, width, "");
	else
		fprintf(f, "  %-*s", width, head);
	/* Continuation lines line up under the first. */
	for (const char *h = help ? help : ""; *h != '\0'; h++) {
		fputc(*h, f);
		if (*h == '\n')
			fprintf(f, "  %-*s", width, "");
	}
	fputc('\n', f);
}

void sky_args_usage(FILE *f, const struct sky_opt *opts)
{
	char head[ARGS_NAME_MAX + 64];
	int width = ARGS_HEAD_MIN;
	bool own_help = false;

	if (!f || !opts)
		return;
	for (const struct sky_opt *o = opts; o->name; o++) {
		int hl = args__head(o, head, sizeof(head));
		if (!o->hidden && hl + 2 > width)
			width = hl + 2 > ARGS_HEAD_MAX ? ARGS_HEAD_MAX : hl + 2;
		own_help |= strcmp(o->name, "help") == 0;
	}
	for (const struct sky_opt *o = opts; o->name; o++) {
		if (o->hidden)
			continue;
		args__head(o, head, sizeof(head));
		args__line(f, head, width, o->help);
	}
	if (!own_help) {
		bool h_taken = false;
		for (const struct sky_opt *o = opts; o->name; o++)
			h_taken |= o->short_name == 'h';
		args__line(f, h_taken ? "    --help" : "-h, --help", width, "show this help and exit");
	}
}
