/* The shapes that commands of every noun share: a list printed as a
 * table, a thing shown, a thing deleted, a request body made from flags.
 * -o json prints the controller's answer as it is (for a list, the object
 * {"boards": [...]}, not the bare array); -o yaml the same in YAML. */
#ifndef SKY_SKYCTL_VERBS_H
#define SKY_SKYCTL_VERBS_H

#include <jansson.h>
#include <stddef.h>

#include "controller/skyctl/skyctl.h"

#define SKYCTL_LIST_COLS 16    /* columns of a list's table, at most (skyctl_table_print's too) */
#define SKYCTL_CELL_MAX 192    /* bytes of a cell a row callback formats */

struct skyctl_list {
	const char *path;          /* "/v1/boards" */
	const char *key;           /* "boards": the array in the answer */
	const char *const *header;
	size_t ncols;              /* at most SKYCTL_LIST_COLS */
	size_t nwide;              /* the last nwide of them are shown only with -o wide */
	/* The cells of item; scratch has a buffer for each column to format
	 * into.  A NULL cell is shown as "-". */
	void (*row)(json_t *item, const char **cells, char (*scratch)[SKYCTL_CELL_MAX]);
	const char *empty;         /* a hint on stderr when the list is empty */
	/* A list of one page only (the audit log): its --limit's largest value
	 * and the limit without it.  0, 0: a paged list (SKYCTL_PAGE_MAX, and
	 * every page without --limit). */
	uint64_t limit_max, limit_default;
};

/* The controller's answer as -o json or -o yaml says, on stdout; says what
 * went wrong. */
int skyctl_print_answer(const struct skyctl_opts *o, json_t *answer);

/* GET the list and print it as a table (-o wide: with its extra columns;
 * --no-headers: without the header line), or its JSON or YAML. */
int skyctl_verb_list(struct skyctl *ctl, const struct skyctl_list *l);

/* PATCH path/id with --name, --label KEY=VALUE (KEY- removes it),
 * --description and --if-match; print "updated <what> ID" or the JSON. */
int skyctl_verb_set(struct skyctl *ctl, const char *path, const char *id, const char *what);

/* GET path/id and print it with print (or its JSON); check, when not NULL,
 * makes sure the answer is the kind of thing asked for. */
int skyctl_verb_show(struct skyctl *ctl, const char *path, const char *id, void (*print)(json_t *answer),
		     int (*check)(json_t *answer));

/* DELETE path/id and say "<done> <what> ID" ("revoked token tok-..."),
 * the id taken from the answer's member named done. */
int skyctl_verb_delete(struct skyctl *ctl, const char *path, const char *id, const char *done,
		       const char *what);

/* A member of a request body from a flag, when it was given: its text
 * (int_at 0) or the number the argument parser left in the options at
 * int_at (SKYCTL_INT_AT(field), e.g. SKYCTL_INT_AT(ttl)). */
struct skyctl_member {
	const char *key;
	int flag;
	size_t int_at;
};
#define SKYCTL_INT_AT(field) (offsetof(struct skyctl_opts, field) + 1)

/* What a command that makes a thing sends and shows. */
struct skyctl_create {
	const char *path;                          /* POST here */
	const char *arg_key;                       /* the command's argument as this member, or NULL */
	const struct skyctl_member *members;       /* from flags; the last has a NULL key */
	int (*check)(json_t *answer);              /* the answer is what was made (or NULL) */
	void (*print)(json_t *answer);             /* shown so, unless -o json or yaml */
};

/* A request body: arg as member arg_key (when not NULL) and the members
 * given as flags; NULL after saying what went wrong. */
json_t *skyctl_body_make(const struct skyctl_opts *o, const char *arg_key, const char *arg,
			 const struct skyctl_member *members);

/* POST the body made from arg and the flags; print the answer as -o
 * says, or with print once check passes. */
int skyctl_verb_create(struct skyctl *ctl, const struct skyctl_create *c, const char *arg);

/* obj[key] = the value of flag, when it was given (checked to be UTF-8 by
 * skyctl_args_check()).  Says "out of memory". */
int skyctl_body_set_flag(json_t *obj, const struct skyctl_opts *o, const char *key, int flag);
int skyctl_body_set_int(json_t *obj, const char *key, uint64_t v);

/* "the controller's answer has no <what>; is it a Skyroot controller of
 * the same version?": -EPROTO. */
int skyctl_answer_lacks(const char *what);

#endif
