/* Names, labels and descriptions of boards, images and guests (docs/api.md,
 * "Names, labels and descriptions"): PATCH, the etag, and the fields every
 * answer of those resources carries.  Labels and descriptions live in the
 * table meta by id (db.c, migration 7); names in each resource's table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/sql.h"

/* The resource whose id has this prefix. */
static const struct api_meta_kind *api_meta__kind_of(const char *id)
{
	static const struct api_meta_kind kinds[] = {
		{ "boards", "brd-", "board" },
		{ "images", "img-", "image" },
		{ "guests", "gst-", "guest" },
	};

	for (size_t i = 0; id && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strncmp(id, kinds[i].id_prefix, strlen(kinds[i].id_prefix)) == 0)
			return &kinds[i];
	return NULL;
}

/* What the statements here bind lives until their last step or reset
 * (sql.h binds without a copy): ids and names of the caller or of the
 * request, the local desc and the labels' text. */
static int api_meta__prepare(struct controller *ctl, const char *sql, struct sql_stmt **s)
{
	return sql_prepare(db_sql(ctl->db), sql, s);
}

/* The description and labels of id (none: "" and {}). */
static int api_meta__read(struct sql_stmt *s, const char *id, char *desc, size_t desclen, json_t **labels)
{
	const char *l;
	int rc;

	*labels = NULL;
	desc[0] = '\0';
	sql_reset(s);
	sql_bind_text(s, 1, id);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		sql_copy_text(desc, desclen, s, 0);
		l = sql_col_text(s, 1);
		*labels = l ? json_loads(l, 0, NULL) : NULL;
	} else if (rc < 0) {
		sql_reset(s);
		return rc;
	}
	sql_reset(s);
	if (!json_is_object(*labels)) {
		json_decref(*labels);
		*labels = json_object();
	}
	return *labels ? 0 : -ENOMEM;
}

/* obj's labels (taken), description and etag. */
static int api_meta__apply(json_t *obj, const char *desc, json_t *labels)
{
	const char *name = json_string_value(json_object_get(obj, "name"));
	char etag[API_ETAG_MAX];

	api_meta_etag(name ? name : "", desc, labels, etag);
	if (json_object_set_new(obj, "labels", labels) < 0 ||
	    json_object_set_new(obj, "description", json_string(desc)) < 0 ||
	    json_object_set_new(obj, "etag", json_string(etag)) < 0)
		return -ENOMEM;
	return 0;
}

static bool api_meta__wants(json_t *obj)
{
	return api_meta__kind_of(json_string_value(json_object_get(obj, "id"))) && !json_object_get(obj, "etag");
}

static int api_meta__decorate_one(struct sql_stmt *s, json_t *obj)
{
	char desc[API_DESCRIPTION_MAX + 1];
	json_t *labels;
	int r;

	if (!api_meta__wants(obj))
		return 0;
	r = api_meta__read(s, json_string_value(json_object_get(obj, "id")), desc, sizeof(desc), &labels);
	return r < 0 ? r : api_meta__apply(obj, desc, labels);
}

/* A row of meta kept in rows by its id: [description, labels]. */
static int api_meta__keep_row(void *ctx, struct sql_stmt *s)
{
	const char *id = sql_col_text(s, 0), *d = sql_col_text(s, 1), *l = sql_col_text(s, 2);

	if (id && json_object_set_new(ctx, id, json_pack("[ss]", d ? d : "", l ? l : "{}")) < 0)
		return -ENOMEM;
	return 0;
}

/* A whole list: every row of meta in one statement (one round trip to the
 * database, not one per object), kept by id while the list is decorated. */
static int api_meta__decorate_all(struct controller *ctl, json_t *arr)
{
	struct sql_stmt *s;
	json_t *rows = json_object(), *item, *row, *labels;
	size_t i;
	int r = rows ? api_meta__prepare(ctl, "SELECT id, description, labels FROM meta", &s) : -ENOMEM;

	if (r < 0) {
		json_decref(rows);
		return r;
	}
	r = sql_once_each(s, api_meta__keep_row, rows);
	json_array_foreach(arr, i, item) {
		if (r < 0)
			break;
		if (!api_meta__wants(item))
			continue;
		row = json_object_get(rows, json_string_value(json_object_get(item, "id")));
		labels = row ? json_loads(json_string_value(json_array_get(row, 1)), 0, NULL) : NULL;
		if (!json_is_object(labels)) {
			json_decref(labels);
			labels = json_object();
		}
		r = labels ? api_meta__apply(item, row ? json_string_value(json_array_get(row, 0)) : "", labels) : -ENOMEM;
	}
	json_decref(rows);
	return r;
}

int api_meta_decorate(struct controller *ctl, json_t *obj_or_array)
{
	struct sql_stmt *s;
	int r;

	if (json_is_array(obj_or_array))
		return api_meta__decorate_all(ctl, obj_or_array);
	r = api_meta__prepare(ctl, "SELECT description, labels FROM meta WHERE id = ?", &s);
	if (r < 0)
		return r;
	r = api_meta__decorate_one(s, obj_or_array);
	sql_finalize(s);
	return r;
}

/* The id and name of the resource named seg (its id, or else its name). */
static int api_meta__find(struct controller *ctl, const struct api_meta_kind *k, const char *seg,
			  char id[DB_ID_MAX], char name[DB_NAME_MAX])
{
	char sql[160];
	struct sql_stmt *s;
	int rc, r;

	snprintf(sql, sizeof(sql), "SELECT id, name FROM %s WHERE id = ?1 UNION ALL SELECT id, name FROM %s WHERE name = ?1",
		 k->table, k->table);
	r = api_meta__prepare(ctl, sql, &s);
	if (r < 0)
		return r;
	sql_bind_text(s, 1, seg);
	rc = sql_step(s);
	if (rc == SQL_ROW) {
		sql_copy_text(id, DB_ID_MAX, s, 0);
		sql_copy_text(name, DB_NAME_MAX, s, 1);
		r = 0;
	} else {
		r = rc == SQL_DONE ? -ENOENT : rc;
	}
	sql_finalize(s);
	return r;
}

static int api_meta__write(struct controller *ctl, const struct api_meta_kind *k, const char *id,
			   const struct api_patch *p, const char *desc, const json_t *labels)
{
	char sql[96];
	char *text = json_dumps(labels, JSON_SORT_KEYS | JSON_COMPACT);
	struct sql_stmt *s = NULL;
	int r;

	if (!text)
		return -ENOMEM;
	if (p->has_name) {
		snprintf(sql, sizeof(sql), "UPDATE %s SET name = ? WHERE id = ?", k->table);
		r = api_meta__prepare(ctl, sql, &s);
		if (r < 0)
			goto out;
		sql_bind_text(s, 1, p->name);
		sql_bind_text(s, 2, id);
		r = sql_once_done(s); /* a name taken: -EEXIST, the constraint */
		s = NULL;
		if (r < 0)
			goto out;
	}
	r = api_meta__prepare(ctl,
			      "INSERT INTO meta (id, description, labels) VALUES (?1, ?2, ?3) ON CONFLICT (id) "
			      "DO UPDATE SET description = excluded.description, labels = excluded.labels",
			      &s);
	if (r < 0)
		goto out;
	sql_bind_text(s, 1, id);
	sql_bind_text(s, 2, desc);
	sql_bind_text(s, 3, text);
	r = sql_step(s);
	r = r == SQL_DONE ? 0 : r < 0 ? r : -EIO;
out:
	sql_finalize(s);
	free(text);
	return r;
}

void api_meta_patch(struct api_call *call, struct api_reply *rep, const struct api_meta_kind *k, api_handler get)
{
	struct controller *ctl = call->ctl;
	struct api_patch p;
	char err[API_META_ERR_MAX], id[DB_ID_MAX], name[DB_NAME_MAX], desc[API_DESCRIPTION_MAX + 1];
	char etag[API_ETAG_MAX];
	const char *if_match = call->req->if_match;
	json_t *labels = NULL;
	struct sql_stmt *s = NULL;
	int r;

	if (call->req->if_match_bad) {
		api_reply_error(rep, 400, "bad_request", "give one If-Match header with the etag the %s had when you read it",
				k->noun);
		return;
	}
	if (api_patch_parse(call->req->body, call->req->body_len, k->id_prefix, &p, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	r = db_begin(ctl->db);
	if (r < 0) {
		api_patch_free(&p);
		api_reply_internal(rep, r, "begin a transaction");
		return;
	}
	r = api_meta__find(ctl, k, call->seg, id, name);
	if (r == 0)
		r = api_meta__prepare(ctl, "SELECT description, labels FROM meta WHERE id = ?", &s);
	if (r == 0)
		r = api_meta__read(s, id, desc, sizeof(desc), &labels);
	sql_finalize(s);
	if (r == -ENOENT) {
		api_reply_error(rep, 404, "not_found", "no %s named '%s'; see 'skyctl %s list'", k->noun, call->seg,
				k->noun);
		goto fail;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "read what PATCH changes");
		goto fail;
	}
	api_meta_etag(name, desc, labels, etag);
	if (if_match && strcmp(if_match, "*") != 0 && strcmp(if_match, etag) != 0) {
		api_reply_error(rep, 412, "precondition_failed",
				"the %s changed since you read it (its etag is now %s, not %.40s); GET it again and "
				"apply your change to what it is now",
				k->noun, etag, if_match);
		goto fail;
	}
	if (p.labels && api_labels_merge(labels, p.labels, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		goto fail;
	}
	if (p.has_description)
		snprintf(desc, sizeof(desc), "%s", p.description);
	r = api_meta__write(ctl, k, id, &p, desc, labels);
	if (r == -EEXIST) {
		api_reply_error(rep, 409, "conflict", "the name '%s' is taken by another %s; choose another", p.name,
				k->noun);
		goto fail;
	}
	if (r == 0)
		r = db_commit(ctl->db);
	if (r < 0) {
		api_reply_internal(rep, r, "store the change");
		goto fail;
	}
	log_info("api: %s %s changed%s%s%s%s", k->noun, id, p.has_name ? ": renamed to " : "",
		 p.has_name ? p.name : "", p.labels ? ", labels" : "", p.has_description ? ", description" : "");
	json_decref(labels);
	api_patch_free(&p);
	/* Answer what GET answers now. */
	call->seg = id;
	get(call, rep);
	return;
fail:
	db_rollback(ctl->db);
	json_decref(labels);
	api_patch_free(&p);
}

void api_meta_forget(struct controller *ctl, const char *id)
{
	struct sql_stmt *s;
	int r;

	if (!api_meta__kind_of(id) || api_meta__prepare(ctl, "DELETE FROM meta WHERE id = ?", &s) < 0)
		return;
	sql_bind_text(s, 1, id);
	r = sql_once_done(s);
	if (r < 0)
		log_warn("api: cannot forget the labels of %s: %s", id, strerror(-r));
}
