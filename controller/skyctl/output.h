/* What skyctl writes for people and scripts: error lines, tables, JSON,
 * labelled fields and progress lines.  Text from the controller is not
 * trusted to be harmless: bytes that could drive a terminal are shown as
 * '?'. */
#ifndef SKY_SKYCTL_OUTPUT_H
#define SKY_SKYCTL_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "controller/skyctl/format.h"

#define SKYCTL_SHA_PREFIX 12 /* hex digits of a SHA-256 shown in tables */

/* "skyctl: " and the message, on stderr. */
void skyctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* s with control bytes (C0, DEL, C1 in UTF-8) as '?'. */
void skyctl_put_clean(FILE *f, const char *s);
void skyctl_clean_inplace(char *s);
/* Columns a UTF-8 string takes, near enough for tables: one per character. */
size_t skyctl_width(const char *s);
void skyctl_pad(FILE *f, size_t n);
/* "given (id)", or the id alone when they are the same. */
void skyctl_name_for(char *dst, size_t len, const char *given, const char *id);
/* s cut to at most cols columns, ending in "..." when cut; buf holds at
 * least 4 * cols + 1 bytes. */
const char *skyctl_cut(const char *s, size_t cols, char *buf, size_t len);

/* v, indented, on stdout. */
int skyctl_print_json(json_t *v);

/* A table of cleaned strings, printed with columns padded to fit; at most
 * maxrows rows. */
struct skyctl_table {
	size_t ncols, nrows, maxrows;
	char **cells;
};

int skyctl_table_init(struct skyctl_table *t, size_t ncols, size_t maxrows);
void skyctl_table_free(struct skyctl_table *t);
/* A NULL cell is shown as "-".  -ENOBUFS past maxrows, -ENOMEM. */
int skyctl_table_add(struct skyctl_table *t, const char *const *row);
void skyctl_table_print(const struct skyctl_table *t, FILE *f, size_t indent);

/* A field of a JSON object as text for people; "-" (or missing) when
 * absent or of another type.  buf is where numbers are written. */
const char *skyctl_jstr(json_t *obj, const char *key, const char *missing);
const char *skyctl_jint(json_t *obj, const char *key, char *buf, size_t len);
const char *skyctl_jbool(json_t *obj, const char *key, const char *yes, const char *no);
const char *skyctl_jcount(json_t *obj, const char *key, char *buf, size_t len); /* array size */
const char *skyctl_jbytes(json_t *obj, const char *key, char *buf, size_t len);  /* "2.0G" */
const char *skyctl_jsha(json_t *obj, const char *key, char *buf, size_t len);    /* a prefix */
const char *skyctl_jopt(json_t *obj, const char *key); /* null: "none" */
/* The array under key in a list answer ({"boards": [...]}), or NULL with
 * a message naming the controller. */
json_t *skyctl_list_of(json_t *answer, const char *key, const char *controller);

/* A "label:   value" line of a detail view. */
void skyctl_field(const char *label, const char *value);
/* The same for text that may have several lines: each further line starts
 * under the first one's value. */
void skyctl_field_lines(const char *label, const char *value);

uint64_t skyctl_now_ms(void);
/* Wait ms milliseconds (between polls of the controller). */
void skyctl_sleep_ms(unsigned ms);

/* A progress line redrawn in place on stderr, only when stderr is a
 * terminal: nothing goes into logs or pipes. */
struct skyctl_meter {
	int on;
	size_t width;       /* the terminal's columns */
	uint64_t start_ms;
	uint64_t drawn_ms;  /* when the line was last drawn; 0 before */
	size_t drawn_cols;  /* its columns; 0 when no line is open */
};

void skyctl_meter_init(struct skyctl_meter *m);
/* Draw p at most every SKYCTL_METER_MS unless force; not in the first
 * SKYCTL_METER_MS, so that a quick answer leaves no line behind. */
void skyctl_meter_draw(struct skyctl_meter *m, struct skyctl_progress *p, int force);
/* Close the line, if one is open, so that what follows starts on its own. */
void skyctl_meter_end(struct skyctl_meter *m);

#endif
