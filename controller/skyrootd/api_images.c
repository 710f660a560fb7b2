/* /v1/images: uploads streamed into the store, listing, deleting and
 * verifying (in a worker thread). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/guests.h"
#include "controller/skyrootd/scrub.h"
#include "controller/skyrootd/store.h"

/* A deferred answer to POST /v1/images/{id|name}/verify. */
struct api_async {
	struct http_conn *c;        /* NULL once the client went away */
	struct controller *ctl;
	uv_work_t work;
	char db_path[4096];
	char image_id[DB_ID_MAX];
	int result;
	uint32_t chunks;
	json_t *bad;
};

/* ---- upload: POST /v1/images?name=..&kind=.. streams into the store ---- */

bool api_images_is_upload(const struct http_request *req)
{
	return req->verb == HTTP_VERB_POST && req->path_len == strlen("/v1/images") &&
	       memcmp(req->path, "/v1/images", req->path_len) == 0;
}

int api_images_upload_begin(struct api *api, struct http_conn *c, const struct http_request *req)
{
	struct controller *ctl = api->ctl;
	struct api_conn_state *st = api_conn_state(c);
	char name[STORE_NAME_MAX], kind[16] = "disk";
	uint64_t expected = UINT64_MAX;
	int r;

	if (!st)
		return http_conn_refuse(c, 500, "internal", "the controller ran out of memory; see its log");
	r = api_json_query_get(req->query, req->query_len, "name", name, sizeof(name));
	if (r < 0)
		return http_conn_refuse(c, 400, "bad_request",
					"give the image a name: POST /v1/images?name=NAME&kind=kernel|initrd|disk");
	r = api_json_query_get(req->query, req->query_len, "kind", kind, sizeof(kind));
	if (r == -EINVAL)
		return http_conn_refuse(c, 400, "bad_request", "kind must be kernel, initrd or disk");
	if (!req->chunked) {
		if (req->content_length == UINT64_MAX)
			return http_conn_refuse(c, 400, "bad_request",
						"send the image with Content-Length or chunked transfer encoding");
		expected = req->content_length;
	}
	r = store_upload_begin(ctl->store, name, kind, expected, &st->upload);
	switch (r) {
	case 0:
		log_info("api: upload of image '%s' (%s, %s) started", name, kind,
			 expected == UINT64_MAX ? "size unknown" : "size known");
		return HTTP_BODY_STREAM;
	case -EINVAL:
		return http_conn_refuse(c, 400, "bad_request",
					"bad image name '%s' or kind '%s': a name is 1-63 of A-Z a-z 0-9 . _ - "
					"(not starting with '.', '-' or 'img-'); kind is kernel, initrd or disk",
					name, kind);
	case -EEXIST:
		return http_conn_refuse(c, 409, "conflict",
					"an image named '%s' exists or is being uploaded; pick another name "
					"or delete it first", name);
	case -EFBIG:
		return http_conn_refuse(c, 413, "too_large",
					"the image is over this controller's limit of %" PRIu64 " bytes (skyrootd --image-max)",
					store_image_max(ctl->store));
	case -ENOSPC:
		return http_conn_refuse(c, 507, "insufficient_storage",
					"not enough free space in the controller's state folder: the image needs "
					"about %" PRIu64 " MiB, %" PRIu64 " MiB are free",
					(uint64_t)(expected == UINT64_MAX ? 0 : (2 * expected + STORE_SPACE_MARGIN) >> 20),
					store_free_space(ctl->store) >> 20);
	case -EBUSY:
		return http_conn_refuse(c, 503, "busy", "too many uploads at once (%d); try again shortly",
					STORE_MAX_UPLOADS);
	default:
		log_error("api: cannot start an upload: %s", strerror(-r));
		return http_conn_refuse(c, 500, "internal", "the controller could not start the upload; see its log");
	}
}

int api_images_upload_body(struct api *api, struct http_conn *c, const void *data, size_t len)
{
	struct api_conn_state *st = http_conn_user(c);
	struct store *store = api->ctl->store;
	int r;

	if (!st || !st->upload)
		return 0;
	r = store_upload_write(st->upload, data, len);
	if (r == 0)
		return 0;
	if (r == -EFBIG)
		return http_conn_refuse(c, 413, "too_large",
					"the image is over this controller's limit of %" PRIu64
					" bytes (skyrootd --image-max) or longer than its Content-Length",
					store_image_max(store));
	if (r == -ENOSPC)
		return http_conn_refuse(c, 507, "insufficient_storage",
					"the controller's state folder ran out of space during the upload "
					"(%" PRIu64 " MiB free); nothing was stored",
					store_free_space(store) >> 20);
	log_error("api: upload failed: %s", strerror(-r));
	return http_conn_refuse(c, 500, "internal", "the upload failed in the store; see the controller's log");
}

void api_images_conn_gone(struct api_conn_state *st)
{
	if (st->upload) {
		log_warn("api: upload interrupted after %" PRIu64 " bytes; nothing was stored",
			 store_upload_received(st->upload));
		store_upload_abort(st->upload);
		st->upload = NULL;
	}
	if (st->async) {
		/* Its answer goes to nobody. */
		st->async->c = NULL;
		st->async = NULL;
	}
}

static void api__images_upload(struct api_call *call, struct api_reply *rep)
{
	struct api_conn_state *st = http_conn_user(call->conn);
	struct store_upload *up = st ? st->upload : NULL;
	struct store_image img;
	int r;

	if (!up) {
		api_reply_error(rep, 400, "bad_request", "POST /v1/images?name=NAME&kind=KIND with the image as the body");
		return;
	}
	st->upload = NULL;
	r = store_upload_commit(up, &img);
	if (r == -EPIPE) {
		api_reply_error(rep, 400, "bad_request", "the body ended before its Content-Length; nothing was stored");
		return;
	}
	if (r == -ENOSPC) {
		api_reply_error(rep, 507, "insufficient_storage",
				"the controller's state folder ran out of space; nothing was stored");
		return;
	}
	if (r == -EEXIST) {
		api_reply_error(rep, 409, "conflict", "an image with that name appeared meanwhile; nothing was stored");
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "store the image");
		return;
	}
	log_info("api: image %s '%s' stored: %" PRIu64 " bytes in %u chunks", img.id, img.name, img.size, img.chunks);
	events_add_kv(call->ctl->events, "image.created", "image", img.id, "name", img.name, NULL);
	api_reply_ok(rep, 201, api_json_image(&img));
}

/* ---- list, show, delete ---- */

/* Quarantined chunks listed in an image's JSON at most. */
#define API_DAMAGE_LIST_MAX 64

/* An image's JSON with its integrity at rest: "damaged" (a chunk of it is
 * quarantined: corrupt in the store, not served), "damage" (why, for the
 * first such chunk) and "quarantined_chunks" (their indexes). */
static json_t *api_image__json(struct db *db, const struct store_image *img)
{
	json_t *o = api_json_image(img), *idx;
	uint32_t n = 0, list[API_DAMAGE_LIST_MAX];
	char why[256];
	int r;

	if (!o)
		return NULL;
	r = store_image_damage(db, img->id, &n, list, API_DAMAGE_LIST_MAX, why, sizeof(why));
	if (r < 0) {
		log_error("api: cannot read the quarantine state of image %s: %s", img->id, strerror(-r));
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "damaged", json_boolean(n > 0));
	idx = json_array();
	for (uint32_t i = 0; idx && i < n && i < API_DAMAGE_LIST_MAX; i++)
		json_array_append_new(idx, json_integer(list[i]));
	json_object_set_new(o, "quarantined_chunks", idx ? idx : json_array());
	if (n > 0)
		json_object_set_new(o, "damage",
				    json_sprintf("%u of %u chunks quarantined: %s; push the same bytes again (any name) "
						 "to heal it", n, img->chunks, why));
	return o;
}

struct api_image__list {
	struct db *db;
	json_t *arr;
};

static int api_image__list_cb(void *ctx, const struct store_image *img)
{
	struct api_image__list *l = ctx;

	return json_array_append_new(l->arr, api_image__json(l->db, img)) < 0 ? -ENOMEM : 0;
}

static const struct api_list_spec api_images_list = {
	.list = "images", .id_prefix = "img-", .what = "list the images", .filters = API_QUERY_LABEL,
};

static void api__images_list(struct api_call *call, struct api_reply *rep)
{
	struct api_image__list l = { .db = call->ctl->db };
	struct api_list_query q;

	if (api_list_query(call, rep, &api_images_list, &q) < 0)
		return;
	l.arr = json_array();
	if (l.arr)
		api_list_reply(call, rep, &api_images_list, &q, store_image_list(call->ctl->store, api_image__list_cb, &l),
			       l.arr);
}

static void api__image_get(struct api_call *call, struct api_reply *rep)
{
	struct store_image img;
	int r = store_image_get(call->ctl->store, call->seg, &img);

	if (r == -ENOENT)
		api_reply_no_image(rep, call->seg);
	else if (r < 0)
		api_reply_internal(rep, r, "read the image");
	else
		api_reply_ok(rep, 200, api_image__json(call->ctl->db, &img));
}

static void api__image_delete(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct store_image img;
	int r = store_image_get(ctl->store, call->seg, &img);

	if (r == 0) {
		r = guests_image_in_use(ctl->guests, img.id);
		if (r > 0) {
			api_reply_error(rep, 409, "conflict",
					"image '%s' is used by a guest; delete the guest first (see 'skyctl guest list')",
					img.name);
			return;
		}
	}
	if (r == 0)
		r = store_image_delete(ctl->store, img.id);
	if (r == -ENOENT) {
		api_reply_no_image(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "delete the image");
		return;
	}
	log_info("api: image %s '%s' deleted", img.id, img.name);
	events_add_kv(call->ctl->events, "image.deleted", "image", img.id, "name", img.name, NULL);
	api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", img.id, "deleted", 1));
}

/* ---- verify: work in a worker thread, answer from the loop ---- */


static void api_verify__bad(void *ctx, uint32_t index, const uint8_t digest[32])
{
	struct api_async *a = ctx;
	char hex[65];

	sky_format_hex(digest, 32, hex);
	json_array_append_new(a->bad, json_pack("{s:I, s:s}", "index", (json_int_t)index, "sha256", hex));
}

static void api_verify__work(uv_work_t *w)
{
	struct api_async *a = w->data;

	a->result = store_verify(a->db_path, a->image_id, &a->chunks, api_verify__bad, a);
}

/* The answer to a verify, on the loop: what it found corrupt is
 * quarantined (the controller's own check: proof enough), and the image's
 * quarantine state is shown, chunks quarantined earlier included (a
 * quarantined chunk is not healed by reading it again). */
static void api_verify__quarantine(struct api_async *a)
{
	struct store *store = a->ctl->store;
	json_t *bad;
	size_t i;

	json_array_foreach(a->bad, i, bad) {
		uint32_t index = (uint32_t)json_integer_value(json_object_get(bad, "index"));
		uint8_t digest[32];
		int64_t rowid;
		uint32_t size;

		if (store_image_chunk(store, a->image_id, index, &rowid, digest, &size) == 0)
			scrub_quarantine(a->ctl, rowid, digest, a->image_id, index, METRICS_FOUND_VERIFY);
	}
}

static json_t *api_verify__answer(struct api_async *a)
{
	struct store *store = a->ctl->store;
	struct store_image img;
	json_t *o;

	o = json_pack("{s:s, s:b, s:I, s:O}", "id", a->image_id, "ok", a->result == 0, "chunks",
		      (json_int_t)a->chunks, "bad_chunks", a->bad);
	if (o && store_image_get(store, a->image_id, &img) == 0) {
		json_t *full = api_image__json(a->ctl->db, &img);
		if (full) {
			json_object_set(o, "damaged", json_object_get(full, "damaged"));
			json_object_set(o, "quarantined_chunks", json_object_get(full, "quarantined_chunks"));
			if (json_object_get(full, "damage"))
				json_object_set(o, "damage", json_object_get(full, "damage"));
			if (json_is_true(json_object_get(full, "damaged")))
				json_object_set_new(o, "ok", json_false());
			json_decref(full);
		}
	}
	return o;
}

static void api_verify__done(uv_work_t *w, int status)
{
	struct api_async *a = w->data;
	struct http_conn *c = a->c;

	if (status == 0 && a->result > 0)
		api_verify__quarantine(a);
	if (c) {
		struct api_conn_state *st = http_conn_user(c);

		if (st)
			st->async = NULL;
		if (status < 0 || a->result < 0) {
			log_error("api: verify of image %s failed: %s", a->image_id,
				  strerror(status < 0 ? -status : -a->result));
			http_respond_error(c, 500, "internal", "the controller could not verify the image; see its log",
					   NULL);
		} else {
			if (a->result > 0)
				log_error("api: image %s: %d of %u chunks are corrupt in the store", a->image_id,
					  a->result, a->chunks);
			api_reply_send(c, 200, api_verify__answer(a), NULL);
		}
	}
	json_decref(a->bad);
	free(a);
}

static void api__image_verify(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct api_conn_state *st = api_conn_state(call->conn);
	struct store_image img;
	struct api_async *a;
	int r = store_image_get(ctl->store, call->seg, &img);

	if (r == -ENOENT) {
		api_reply_no_image(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "read the image");
		return;
	}
	a = st ? calloc(1, sizeof(*a)) : NULL;
	if (!a || !(a->bad = json_array())) {
		free(a);
		api_reply_internal(rep, -ENOMEM, "verify the image");
		return;
	}
	a->c = call->conn;
	a->ctl = ctl;
	snprintf(a->db_path, sizeof(a->db_path), "%s", ctl->db_path);
	snprintf(a->image_id, sizeof(a->image_id), "%s", img.id);
	a->work.data = a;
	r = uv_queue_work(ctl->loop, &a->work, api_verify__work, api_verify__done);
	if (r < 0) {
		json_decref(a->bad);
		free(a);
		api_reply_internal(rep, r, "verify the image");
		return;
	}
	st->async = a;
	http_defer(call->conn);
	rep->status = 0; /* answered by api_verify__done */
}

static void api__image_patch(struct api_call *call, struct api_reply *rep)
{
	static const struct api_meta_kind kind = { "images", "img-", "image" };

	api_meta_patch(call, rep, &kind, api__image_get);
}

const struct api_route api_images_routes[] = {
	{ .path = "/v1/images", API_ALLOW("GET, POST"), .get = api__images_list, .post = api__images_upload,
	  .get_s = { .request = NULL, .answer = API_MSG(image_list) }, .post_s = { .request = NULL, .answer = API_MSG(image) },
	  .summary = "Images: list (a page), upload (?name=&kind=, the bytes as the body)" },
	{ .path = "/v1/images/", .segment = true, .segment_max = STORE_NAME_MAX, .noun = "an image id or name",
	  .placeholder = "{id|name}", API_ALLOW("GET, PATCH, DELETE"), .get = api__image_get, .del = api__image_delete,
	  .patch = api__image_patch, .get_s = { .request = NULL, .answer = API_MSG(image) }, .del_s = { .request = NULL, .answer = API_MSG(deleted) },
	  .patch_s = { .request = API_MSG(meta_patch), .answer = API_MSG(image) }, .summary = "An image" },
	{ .path = "/v1/images/", .segment = true, .segment_max = STORE_NAME_MAX, .suffix = "/verify",
	  .noun = "an image id or name", .placeholder = "{id|name}/verify", API_ALLOW("POST"),
	  .post = api__image_verify, .post_s = { .request = NULL, .answer = API_MSG(image_verify) },
	  .summary = "Re-hash every chunk of the image" },
	{ .path = NULL },
};
