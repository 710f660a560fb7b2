/* skyctl's output: error lines, tables, JSON, labelled fields and progress
 * lines; see output.h. */
#include "controller/skyctl/output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson does it)"
#endif

#define OUT_LABEL_WIDTH 22 /* the column where a field's value starts */
#define OUT_METER_MS 100   /* a progress line is redrawn at most this often */

/* One line: what it quotes (a controller's error text, a parser's message
 * about bytes that came from outside) cannot drive the terminal. */
void skyctl_err(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fputs("skyctl: ", stderr);
	skyctl_put_clean(stderr, line);
	if (n >= (int)sizeof(line))
		fputs("...", stderr);
	fputc('\n', stderr);
}

/* Bytes that could drive a terminal (C0, DEL, C1 in UTF-8) are shown as
 * '?': text from the controller is not trusted to be harmless. */
static size_t out__clean_len(const char *s, size_t i, int *bad)
{
	unsigned char c = (unsigned char)s[i];

	*bad = 0;
	if (c < 0x20 || c == 0x7f) {
		*bad = 1;
		return 1;
	}
	if (c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
		*bad = 1;
		return 2;
	}
	return 1;
}

void skyctl_put_clean(FILE *f, const char *s)
{
	for (size_t i = 0; s[i] != '\0';) {
		int bad;
		size_t n = out__clean_len(s, i, &bad);
		if (bad)
			fputc('?', f);
		else
			fputc(s[i], f);
		i += n;
	}
}

static char *out__clean_dup(const char *s)
{
	char *d = malloc(strlen(s) + 1);
	size_t o = 0;

	if (d == NULL)
		return NULL;
	for (size_t i = 0; s[i] != '\0';) {
		int bad;
		size_t n = out__clean_len(s, i, &bad);
		d[o++] = bad ? '?' : s[i];
		i += n;
	}
	d[o] = '\0';
	return d;
}

/* Columns a UTF-8 string takes, near enough for tables: one per character. */
size_t skyctl_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void skyctl_pad(FILE *f, size_t n)
{
	while (n-- > 0)
		fputc(' ', f);
}


uint64_t skyctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void skyctl_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}


void skyctl_meter_init(struct skyctl_meter *pg)
{
	struct winsize ws;

	memset(pg, 0, sizeof(*pg));
	pg->on = isatty(STDERR_FILENO);
	pg->width = 80;
	if (pg->on && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		pg->width = ws.ws_col;
	pg->start_ms = skyctl_now_ms();
}

/* Draw p, at most every OUT_METER_MS unless force; not in the first
 * OUT_METER_MS, so that a quick answer leaves no line behind. */
void skyctl_meter_draw(struct skyctl_meter *pg, struct skyctl_progress *p, int force)
{
	char line[4 * SKYCTL_PROGRESS_MAX_WIDTH + 1];
	uint64_t now = skyctl_now_ms();
	uint64_t last = pg->drawn_ms != 0 ? pg->drawn_ms : pg->start_ms;
	size_t cols;

	if (!pg->on || (!force && now - last < OUT_METER_MS))
		return;
	p->elapsed_ms = now - pg->start_ms;
	if (skyctl_format_progress(p, pg->width, line, sizeof(line)) < 0)
		return;
	cols = skyctl_width(line);
	fputc('\r', stderr);
	fputs(line, stderr);
	if (cols < pg->drawn_cols)
		skyctl_pad(stderr, pg->drawn_cols - cols); /* blank the rest of a longer line */
	fflush(stderr);
	pg->drawn_ms = now != 0 ? now : 1;
	pg->drawn_cols = cols;
}

/* Close the line, if one is open, so that what follows starts on its own. */
void skyctl_meter_end(struct skyctl_meter *pg)
{
	if (pg->drawn_cols > 0) {
		fputc('\n', stderr);
		fflush(stderr);
	}
	pg->drawn_cols = 0;
	pg->drawn_ms = 0;
}

int skyctl_print_json(json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) < 0) {
		skyctl_err("cannot write the JSON output");
		return -EIO;
	}
	fputc('\n', stdout);
	return 0;
}


int skyctl_table_init(struct skyctl_table *t, size_t ncols, size_t maxrows)
{
	char **cells = calloc(maxrows > 0 ? maxrows : 1, ncols * sizeof(char *));

	if (cells == NULL)
		return -ENOMEM;
	t->ncols = ncols;
	t->nrows = 0;
	t->maxrows = maxrows;
	t->cells = cells;
	return 0;
}

void skyctl_table_free(struct skyctl_table *t)
{
	if (t->cells == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
}

int skyctl_table_add(struct skyctl_table *t, const char *const *row)
{
	char **cells;

	if (t->nrows == t->maxrows)
		return -ENOBUFS;
	cells = t->cells + t->nrows * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		cells[c] = out__clean_dup(row[c] != NULL ? row[c] : "-");
		if (cells[c] == NULL) {
			while (c-- > 0) {
				free(cells[c]);
				cells[c] = NULL;
			}
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

void skyctl_table_print(const struct skyctl_table *t, FILE *f, size_t indent)
{
	size_t width[16] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			size_t w = skyctl_width(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		skyctl_pad(f, indent);
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			fputs(cell, f);
			if (c + 1 < t->ncols)
				skyctl_pad(f, width[c] - skyctl_width(cell) + 2);
		}
		fputc('\n', f);
	}
}

const char *skyctl_jstr(json_t *obj, const char *key, const char *missing)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : missing;
}

const char *skyctl_jint(json_t *obj, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return "-";
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return buf;
}

const char *skyctl_jbool(json_t *obj, const char *key, const char *yes, const char *no)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_boolean(v))
		return "-";
	return json_is_true(v) ? yes : no;
}

const char *skyctl_jcount(json_t *obj, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_array(v))
		return "-";
	snprintf(buf, len, "%zu", json_array_size(v));
	return buf;
}

/* 2147483648 -> "2.0G" (powers of 1024, as free -h). */
const char *skyctl_jbytes(json_t *obj, const char *key, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	json_t *v = json_object_get(obj, key);
	json_int_t n = json_integer_value(v);
	double d;
	size_t u = 0;

	if (!json_is_integer(v) || n < 0)
		return "-";
	if (n < 1024) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT "B", n);
		return buf;
	}
	d = (double)n / 1024.0;
	while (d >= 1023.95 && u + 1 < sizeof(units) - 1) {
		d /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f%c", d, units[u]);
	return buf;
}

/* A "label:   value" line of a detail view. */
void skyctl_field(const char *label, const char *value)
{
	size_t n = strlen(label) + 1;

	fputs(label, stdout);
	fputc(':', stdout);
	skyctl_pad(stdout, n < OUT_LABEL_WIDTH ? OUT_LABEL_WIDTH - n : 1);
	skyctl_put_clean(stdout, value);
	fputc('\n', stdout);
}

/* skyctl_field() for text that may have several lines: each further line
 * starts under the first one's value. */
void skyctl_field_lines(const char *label, const char *value)
{
	const char *nl = strchr(value, '\n');
	size_t n = strlen(label) + 1;
	char *line;

	if (nl == NULL) {
		skyctl_field(label, value);
		return;
	}
	fputs(label, stdout);
	fputc(':', stdout);
	skyctl_pad(stdout, n < OUT_LABEL_WIDTH ? OUT_LABEL_WIDTH - n : 1);
	for (const char *p = value;; p = nl + 1) {
		nl = strchr(p, '\n');
		line = strndup(p, nl != NULL ? (size_t)(nl - p) : strlen(p));
		if (line == NULL) {
			skyctl_put_clean(stdout, p); /* out of memory: one line, newlines as '?' */
			nl = NULL;
		} else {
			skyctl_put_clean(stdout, line);
			free(line);
		}
		fputc('\n', stdout);
		if (nl == NULL || nl[1] == '\0')
			break;
		skyctl_pad(stdout, n < OUT_LABEL_WIDTH ? OUT_LABEL_WIDTH : n + 1);
	}
}

/* The array under key in a list answer ({"boards": [...]}). */
json_t *skyctl_list_of(json_t *answer, const char *key, const char *controller)
{
	json_t *list = json_object_get(answer, key);

	if (!json_is_array(list))
		skyctl_err("the controller at %s answered without a '%s' list; is it a Skyroot controller "
			"of the same version (%s)?", controller, key, SKY_VERSION);
	return json_is_array(list) ? list : NULL;
}


/* The first SKYCTL_SHA_PREFIX hex digits of a SHA-256, for tables. */
const char *skyctl_jsha(json_t *obj, const char *key, char *buf, size_t len)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s == NULL)
		return "-";
	snprintf(buf, len, "%.*s", SKYCTL_SHA_PREFIX, s);
	return buf;
}


/* out__clean_dup() in place. */
void skyctl_clean_inplace(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0';) {
		int bad;
		size_t n = out__clean_len(s, i, &bad);
		if (bad) {
			s[o++] = '?';
			i += n;
		} else {
			s[o++] = s[i++];
		}
	}
	s[o] = '\0';
}

/* "given (id)", or the id alone when they are the same. */
void skyctl_name_for(char *dst, size_t len, const char *given, const char *id)
{
	if (strcmp(given, id) == 0)
		snprintf(dst, len, "%s", id);
	else
		snprintf(dst, len, "%s (%s)", given, id);
}

/* A string field that may be null: "none" for null, "-" when missing. */
const char *skyctl_jopt(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v) && json_string_value(v)[0] != '\0')
		return json_string_value(v);
	return json_is_null(v) || json_is_string(v) ? "none" : "-";
}


/* s cut to at most cols columns, ending in "..." when cut, never in the
 * middle of a UTF-8 character; buf holds at least 4 * cols + 1 bytes. */
const char *skyctl_cut(const char *s, size_t cols, char *buf, size_t len)
{
	size_t n = 0, w = 0;

	if (skyctl_width(s) <= cols)
		return s;
	for (size_t i = 0; s[i] != '\0' && w + 3 < cols;) {
		size_t clen = 1;
		while (((unsigned char)s[i + clen] & 0xc0) == 0x80)
			clen++;
		if (n + clen + 4 > len)
			break;
		memcpy(buf + n, s + i, clen);
		n += clen;
		i += clen;
		w++;
	}
	memcpy(buf + n, "...", 4);
	return buf;
}
