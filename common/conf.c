/* The config-file syntax (see conf.h): lines become "--KEY=VALUE" for the
 * option table of args.c, so a file and the flags accept the same things. */
#include "common/conf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define CONF_OPTS_MAX 128       /* as args.c's table limit */

static bool conf__blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* [*s, *e) without the blanks around it. */
static void conf__trim(const char **s, const char **e)
{
	while (*s < *e && conf__blank(**s))
		(*s)++;
	while (*e > *s && conf__blank((*e)[-1]))
		(*e)--;
}

/* The option named exactly [key, key + len), or -1. */
static int conf__find(const struct sky_opt *opts, size_t n, const char *key, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(opts[i].name) == len && memcmp(opts[i].name, key, len) == 0)
			return (int)i;
	return -1;
}

static int conf__unknown(const struct sky_opt *opts, size_t n, const char *key, size_t len, char *msg,
			 size_t msglen)
{
	const char *names[CONF_OPTS_MAX];
	char name[65];
	const char *hit = NULL;

	for (size_t i = 0; i < n; i++)
		names[i] = opts[i].name;
	if (len < sizeof(name)) {
		memcpy(name, key, len);
		name[len] = '\0';
		hit = sky_args_suggest(name, names, n);
	}
	if (hit)
		snprintf(msg, msglen, "unknown key '%.*s'; did you mean '%s'?", (int)(len > 64 ? 64 : len), key, hit);
	else
		snprintf(msg, msglen, "unknown key '%.*s'; the keys are the long options of --help without '--'",
			  (int)(len > 64 ? 64 : len), key);
	return -EINVAL;
}

/* One line [s, e) (no newline): nothing, or "--KEY=VALUE" written at out
 * (room for e - s + 4 bytes) and parsed.  set_on[i]: the line that set
 * option i.  *used: the bytes of out kept (string values point there). */
static int conf__line(struct sky_opt *opts, size_t n, const char *s, const char *e, unsigned line,
		      unsigned *set_on, char *out, size_t *used, char *msg, size_t msglen)
{
	const char *key, *key_end, *val, *eq;
	static char prog[] = "conf";
	char *argv[3] = { prog, out, NULL };
	int i, first, r;

	*used = 0;
	for (const char *p = s; p < e; p++) /* a comment: '#' first or after a blank */
		if (*p == '#' && (p == s || conf__blank(p[-1]))) {
			e = p;
			break;
		}
	conf__trim(&s, &e);
	if (s == e)
		return 0;
	eq = memchr(s, '=', (size_t)(e - s));
	if (!eq) {
		snprintf(msg, msglen, "'%.*s' is not KEY = VALUE", (int)(e - s > 64 ? 64 : e - s), s);
		return -EINVAL;
	}
	key = s;
	key_end = eq;
	val = eq + 1;
	conf__trim(&key, &key_end);
	conf__trim(&val, &e);
	if (key == key_end) {
		snprintf(msg, msglen, "a value without a key: write KEY = VALUE");
		return -EINVAL;
	}
	i = conf__find(opts, n, key, (size_t)(key_end - key));
	if (i < 0)
		return conf__unknown(opts, n, key, (size_t)(key_end - key), msg, msglen);
	if (opts[i].kind == SKY_ARG_FLAG || opts[i].kind == SKY_ARG_LIST ||
	    (opts[i].kind == SKY_ARG_CALLBACK && !opts[i].metavar) || strcmp(opts[i].name, "help") == 0) {
		snprintf(msg, msglen, "%s cannot be set in a config file: give it as --%s", opts[i].name,
			  opts[i].name);
		return -EINVAL;
	}
	if (val == e) {
		snprintf(msg, msglen, "%s has no value: write %s = %s (or remove the line)", opts[i].name,
			  opts[i].name, opts[i].metavar);
		return -EINVAL;
	}
	if (set_on[i]) {
		snprintf(msg, msglen, "%s is set again (first on line %u): set it once", opts[i].name, set_on[i]);
		return -EINVAL;
	}
	*used = (size_t)snprintf(out, (size_t)(e - s) + 4, "--%.*s=%.*s", (int)(key_end - key), key,
				 (int)(e - val), val) + 1;
	r = sky_args_parse(opts, 2, argv, &first, msg, msglen);
	if (r != 0)
		return -EINVAL;
	set_on[i] = line;
	return 0;
}

int sky_conf_parse(struct sky_opt *opts, const char *name, const char *text, size_t len, char **store,
		   char *err, size_t errlen)
{
	char msg[512], *block = NULL;
	unsigned *set_on = NULL, line = 0;
	size_t n = 0, pos = 0, w = 0;
	int r = 0;

	if (!err || errlen == 0)
		return -EINVAL;
	err[0] = '\0';
	if (!opts || !name || (!text && len) || !store) {
		snprintf(err, errlen, "nothing to parse");
		return -EINVAL;
	}
	if (len > SKY_CONF_FILE_MAX) {
		snprintf(err, errlen, "%s: the file is larger than %u bytes", name, (unsigned)SKY_CONF_FILE_MAX);
		return -EFBIG;
	}
	while (opts[n].name)
		n++;
	if (n > CONF_OPTS_MAX) {
		snprintf(err, errlen, "the program's option table has more than %d entries", CONF_OPTS_MAX);
		return -EINVAL;
	}
	/* A KEY=VALUE line of L >= 3 bytes gives L + 3 ("--", '\0'): 3 * len
	 * covers every file. */
	block = malloc(3 * len + 16);
	set_on = calloc(n + 1, sizeof(*set_on));
	if (!block || !set_on) {
		snprintf(err, errlen, "out of memory reading %s", name);
		r = -ENOMEM;
		goto fail;
	}
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		const char *e = nl ? nl : text + len;
		size_t used;

		line++;
		pos = (size_t)(e - text) + 1;
		if (e - s > SKY_CONF_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: the line is longer than %d bytes", name, line, SKY_CONF_LINE_MAX);
			r = -EINVAL;
			goto fail;
		}
		if (memchr(s, '\0', (size_t)(e - s))) {
			snprintf(err, errlen, "%s:%u: a NUL byte: is this a text file?", name, line);
			r = -EINVAL;
			goto fail;
		}
		r = conf__line(opts, n, s, e, line, set_on, block + w, &used, msg, sizeof(msg));
		if (r < 0) {
			snprintf(err, errlen, "%s:%u: %s", name, line, msg);
			goto fail;
		}
		w += used;
	}
	free(set_on);
	*store = block;
	return 0;
fail:
	free(set_on);
	free(block);
	return r;
}

int sky_conf_load(struct sky_opt *opts, const char *path, char **store, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if (!err || errlen == 0)
		return -EINVAL;
	if (!path) {
		snprintf(err, errlen, "no config file named");
		return -EINVAL;
	}
	r = sky_read_file(path, SKY_CONF_FILE_MAX, &text, &len);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path,
			  r == -EFBIG ? "the file is too large for a config file" : strerror(-r));
		return r;
	}
	r = sky_conf_parse(opts, path, text, len, store, err, errlen);
	free(text);
	return r;
}
