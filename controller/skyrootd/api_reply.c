/* Answers and lookups that every resource of the API uses. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/skyrootd/api_priv.h"

void api_reply_error(struct api_reply *rep, int status, const char *code, const char *fmt, ...)
{
	char msg[API_JSON_ERR_MAX * 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(rep->body);
	rep->status = status;
	rep->body = api_json_error(code, "%s", msg);
}

void api_reply_internal(struct api_reply *rep, int err, const char *what)
{
	log_error("api: cannot %s: %s", what, strerror(-err));
	api_reply_error(rep, 500, "internal", "the controller could not %s; see its log", what);
}

void api_reply_ok(struct api_reply *rep, int status, json_t *body)
{
	json_decref(rep->body);
	rep->status = status;
	rep->body = body;
}

void api_reply_list(struct api_reply *rep, const char *key, const char *what, int r, json_t *arr)
{
	if (r < 0) {
		json_decref(arr);
		api_reply_internal(rep, r, what);
		return;
	}
	api_reply_ok(rep, 200, json_pack("{s:o}", key, arr));
}

void api_reply_no_board(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no board named '%s'; see 'skyctl board list'", name);
}

void api_reply_no_image(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no image named '%s'; see 'skyctl image list'", name);
}

void api_reply_no_guest(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no guest named '%s'; see 'skyctl guest list'", name);
}

struct api_conn_state *api_conn_state(struct http_conn *c)
{
	struct api_conn_state *st = http_conn_user(c);

	if (!st) {
		st = calloc(1, sizeof(*st));
		http_conn_set_user(c, st);
	}
	return st;
}

struct api_board_ids {
	char *id, *name;
};

static int api_board__ids_cb(void *ctx, const struct db_board *b)
{
	struct api_board_ids *x = ctx;

	snprintf(x->id, DB_ID_MAX, "%.*s", (int)strnlen(b->id, sizeof(b->id)), b->id);
	snprintf(x->name, DB_NAME_MAX, "%.*s", (int)strnlen(b->name, sizeof(b->name)), b->name);
	return 0;
}

int api_board_lookup(struct controller *ctl, const char *id_or_name, char id[DB_ID_MAX], char name[DB_NAME_MAX])
{
	char i[DB_ID_MAX], n[DB_NAME_MAX];
	struct api_board_ids x = { i, n };
	int r = db_board_get(ctl->db, id_or_name, api_board__ids_cb, &x);

	if (r < 0)
		return r;
	memcpy(id, i, sizeof(i));
	memcpy(name, n, sizeof(n));
	return 0;
}

