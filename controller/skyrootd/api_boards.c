/* /v1/boards: the fleet; a board's image fetch and bare-metal boot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "controller/skyrootd/agentlink.h"
#include "controller/skyrootd/fleet.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/fwgate.h"
#include "controller/skyrootd/boots.h"
#include "controller/skyrootd/store.h"

/* The measured-boot gate's word on a TPM board (fwgate.h): the firmware
 * it matched, or its state "quarantined" and why. */
static int api_board__gate(struct controller *ctl, const struct db_board *b, json_t *o)
{
	char fw[DB_NAME_MAX], why[FWGATE_WHY_MAX];
	json_t *tpm = json_object_get(o, "tpm");
	int r;

	if (!b->tpm_ek[0] || !json_is_object(tpm))
		return 0;
	r = fwgate_judge(ctl->db, b->tpm_ek, b->tpm_pcr11, b->tpm_quote_fail, fw, why);
	if (r < 0)
		return r;
	if (r == 1 && (json_object_set_new(o, "state", json_string("quarantined")) < 0 ||
		       json_object_set_new(tpm, "quarantined", json_string(why)) < 0))
		return -ENOMEM;
	if (fw[0] && json_object_set_new(tpm, "firmware", json_string(fw)) < 0)
		return -ENOMEM;
	return 0;
}

/* The board as the API shows it, into *out: 0, or the error of a read
 * (-ENOMEM, the store's).  all: every board's last boot order read at
 * once (a list), or NULL to read this board's. */
static int api_board__render(struct controller *ctl, const struct boots_all *all, const struct db_board *b,
			     json_t **out)
{
	char holder[FLEET_ID_MAX];
	int64_t seen = 0;
	bool online = fleet_board_where(ctl->fleet, b->id, &seen, holder);
	struct boot_status one;
	const struct boot_status *boot = all ? boots_all_find(all, b->id) : &one;
	json_t *o = api_json_board(b, online, online ? seen : b->last_seen);
	int r = all ? 0 : boots_get(ctl->boots, b->id, &one);

	if (r == -ENOENT)
		boot = NULL;
	else if (r < 0) {
		json_decref(o);
		return r;
	}
	if (!o || json_object_set_new(o, "controller", online ? json_string(holder) : json_null()) < 0 ||
	    api_board__gate(ctl, b, o) < 0 ||
	    api_json_board_images(o, online ? agentlink_board_images(ctl->agents, b->id) : NULL) < 0 ||
	    api_json_board_boot(o, boot) < 0) {
		json_decref(o);
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

struct api_board_ctx {
	struct controller *ctl;
	json_t *json;               /* the array (list) or the object (get) */
	struct boots_all *boots;    /* a list's: every board's last boot order */
};

static int api_board__list_cb(void *ctx, const struct db_board *b)
{
	struct api_board_ctx *x = ctx;
	json_t *o = NULL;
	int r = api_board__render(x->ctl, x->boots, b, &o);

	if (r < 0)
		return r;
	if (json_array_append_new(x->json, o) < 0)
		return -ENOMEM;
	return 0;
}

static const char *const api_board_states[] = { "online", "offline", "baremetal", "quarantined", NULL };
static const struct api_list_spec api_boards_list = {
	.list = "boards", .id_prefix = "brd-", .what = "list the boards", .filters = API_QUERY_STATE | API_QUERY_LABEL,
	.states = api_board_states,
};

static void api__boards_list(struct api_call *call, struct api_reply *rep)
{
	struct api_board_ctx x = { .ctl = call->ctl };
	struct api_list_query q;
	int r;

	if (api_list_query(call, rep, &api_boards_list, &q) < 0)
		return;
	x.json = json_array();
	if (!x.json)
		return;
	r = boots_all(x.ctl->boots, &x.boots);
	if (r == 0)
		r = db_board_list(x.ctl->db, api_board__list_cb, &x);
	boots_all_free(x.boots);
	api_list_reply(call, rep, &api_boards_list, &q, r, x.json);
}

static int api_board__get_cb(void *ctx, const struct db_board *b)
{
	struct api_board_ctx *x = ctx;

	return api_board__render(x->ctl, NULL, b, &x->json);
}

static void api__board_get(struct api_call *call, struct api_reply *rep)
{
	struct api_board_ctx x = { .ctl = call->ctl };
	int r = db_board_get(x.ctl->db, call->seg, api_board__get_cb, &x);

	if (r == -ENOENT) {
		json_decref(x.json);
		api_reply_no_board(rep, call->seg);
		return;
	}
	if (r < 0) {
		json_decref(x.json);
		api_reply_internal(rep, r, "read the board");
		return;
	}
	api_reply_ok(rep, 200, x.json);
}

static void api__board_delete(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	char id[DB_ID_MAX], name[DB_NAME_MAX];
	int r = api_board_lookup(ctl, call->seg, id, name);

	if (r == 0)
		r = db_board_delete(ctl->db, id);
	if (r == -ENOENT) {
		api_reply_no_board(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "delete the board");
		return;
	}
	/* The delete is committed: the board's certificates are revoked.  Now
	 * end its session so it cannot keep talking on the old one. */
	fleet_board_kick(ctl->fleet, id);
	r = boots_forget(ctl->boots, id);
	if (r < 0) /* an order of a board that is gone: shown nowhere, its id never given again */
		log_warn("api: board %s: its last boot order not forgotten: %s", id, strerror(-r));
	log_info("api: board %s ('%s') deleted; its certificates are revoked", id, name);
	events_add_kv(call->ctl->events, "board.deleted", "board", id, "name", name, NULL);
	api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", id, "deleted", 1));
}

static void api__board_fetch(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct api_fetch_body body;
	struct store_image img;
	char id[DB_ID_MAX], name[DB_NAME_MAX], err[API_JSON_ERR_MAX];
	int r;

	if (api_json_parse_fetch_request(call->req->body, call->req->body_len, &body, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	r = api_board_lookup(ctl, call->seg, id, name);
	if (r == -ENOENT) {
		api_reply_no_board(rep, call->seg);
		return;
	}
	if (r == 0 && api_board_quarantined(ctl, rep, id, name, "images"))
		return;
	r = r < 0 ? r : store_image_get(ctl->store, body.image, &img);
	if (r == -ENOENT) {
		api_reply_no_image(rep, body.image);
		return;
	}
	if (r == 0)
		r = fleet_board_fetch(ctl->fleet, id, img.id);
	if (r == -ENOTCONN) {
		api_reply_error(rep, 409, "conflict", "board '%s' is offline; it can fetch once it is back", name);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "ask the board to fetch the image");
		return;
	}
	api_reply_ok(rep, 202, json_pack("{s:s, s:s}", "board", id, "image", img.id));
}

/* The signed manifest of an image, for a command to a board. */
static int api_board__manifest(struct controller *ctl, const char *board_id, const char *image_id,
			       Skyroot__SignedManifest *sm)
{
	return store_image_manifest(ctl->store, board_id, image_id, &sm->manifest.data, &sm->manifest.len,
				    &sm->signature.data, &sm->signature.len);
}

/* The order to the board wherever its session is (relayed by the
 * controller that holds it), with its row (sent), the board's state
 * 'baremetal' and the event in one transaction: the holder, which settles
 * the row when the board answers, never sees the order before the row, and
 * the answer's event comes after this one.  -EHOSTDOWN when nobody holds
 * the board (-ENOTCONN is the store's: unreachable). */
static int api_board__boot_send(struct controller *ctl, const char *id, uint64_t order, const char *kernel,
				Skyroot__Envelope *env)
{
	char order_s[24];
	int r = db_begin(ctl->db);

	if (r < 0)
		return r;
	r = boots_sent(ctl->boots, id, order, kernel, sky_unix_now());
	if (r == 0 && (r = fleet_board_send(ctl->fleet, id, env)) == -ENOTCONN)
		r = -EHOSTDOWN;
	if (r == 0)
		r = agentlink_board_baremetal(ctl->agents, id, true);
	if (r == 0) {
		snprintf(order_s, sizeof(order_s), "%llu", (unsigned long long)order);
		events_add_kv(ctl->events, "board.boot_sent", "board", id, "order", "boot", "request_id", order_s,
			      "kernel", kernel, NULL);
		r = db_commit(ctl->db);
	}
	if (r < 0)
		db_rollback(ctl->db);
	return r;
}

static void api__board_boot(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	struct api_boot_body *body;
	struct store_image kernel, initrd;
	struct boot_status boot;
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__BareMetalBoot bm = SKYROOT__BARE_METAL_BOOT__INIT;
	Skyroot__SignedManifest km = SKYROOT__SIGNED_MANIFEST__INIT, im = SKYROOT__SIGNED_MANIFEST__INIT;
	char id[DB_ID_MAX], name[DB_NAME_MAX], err[API_JSON_ERR_MAX];
	json_t *rep_json;
	uint64_t order = 0;
	int r;

	body = malloc(sizeof(*body));
	if (!body) {
		api_reply_internal(rep, -ENOMEM, "read the boot request");
		return;
	}
	r = api_json_parse_boot_request(call->req->body, call->req->body_len, body, err, sizeof(err));
	if (r == -EINVAL) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		goto out;
	}
	if (r == 0)
		r = api_board_lookup(ctl, call->seg, id, name);
	if (r == -ENOENT) {
		api_reply_no_board(rep, call->seg);
		goto out;
	}
	if (r == 0 && api_board_quarantined(ctl, rep, id, name, "boot orders"))
		goto out;
	if (r == 0 && (r = store_image_get(ctl->store, body->kernel, &kernel)) == -ENOENT) {
		api_reply_no_image(rep, body->kernel);
		goto out;
	}
	if (r == 0 && body->initrd[0] && (r = store_image_get(ctl->store, body->initrd, &initrd)) == -ENOENT) {
		api_reply_no_image(rep, body->initrd);
		goto out;
	}
	if (r == 0)
		r = api_board__manifest(ctl, id, kernel.id, &km);
	if (r == 0 && body->initrd[0])
		r = api_board__manifest(ctl, id, initrd.id, &im);
	if (r == 0)
		r = boots_next_request(ctl->boots, &order);
	if (r == 0) {
		bm.kernel = &km;
		bm.initrd = body->initrd[0] ? &im : NULL;
		bm.cmdline = body->cmdline[0] ? body->cmdline : "console=ttyS0";
		env.request_id = order; /* the board's answer echoes it */
		env.body_case = SKYROOT__ENVELOPE__BODY_BARE_METAL_BOOT;
		env.bare_metal_boot = &bm;
		r = api_board__boot_send(ctl, id, order, kernel.id, &env);
	}
	if (r == -EHOSTDOWN) {
		api_reply_error(rep, 409, "conflict", "board '%s' is offline; it can boot once it is back", name);
		goto out;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "send the boot command");
		goto out;
	}
	log_info("api: board %s told to kexec image %s on bare metal (order %llu)", id, kernel.id,
		 (unsigned long long)order);
	/* The board answers on its own time: GET /v1/boards/{id} shows it
	 * (here the order as sent: the answer may be in the store already). */
	memset(&boot, 0, sizeof(boot));
	boot.state = BOOT_STATE_SENT;
	boot.request_id = order;
	boot.at = sky_unix_now();
	snprintf(boot.kernel, sizeof(boot.kernel), "%s", kernel.id);
	rep_json = json_pack("{s:s}", "board", id);
	if (rep_json && api_json_board_boot(rep_json, &boot) < 0) {
		json_decref(rep_json);
		rep_json = NULL;
	}
	api_reply_ok(rep, 202, rep_json);
out:
	free(km.manifest.data);
	free(km.signature.data);
	free(im.manifest.data);
	free(im.signature.data);
	free(body);
}

/* A known machine may enroll again with a general token, once, for
 * API_REENROLL_WINDOW seconds (al_enroll.c takes the allowance). */
#define API_REENROLL_WINDOW 900

static void api__board_reenroll_allow(struct api_call *call, struct api_reply *rep)
{
	struct controller *ctl = call->ctl;
	char id[DB_ID_MAX], name[DB_NAME_MAX], until_s[32];
	int64_t until = sky_unix_now() + API_REENROLL_WINDOW;
	int r = api_board_lookup(ctl, call->seg, id, name);

	if (r == 0)
		r = db_board_reenroll_allow(ctl->db, id, until);
	if (r == -ENOENT) {
		api_reply_no_board(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "allow the re-enrollment");
		return;
	}
	sky_fmt_time(until, until_s, sizeof(until_s));
	log_warn("api: board %s ('%s') may enroll again with a general token, once, until %s; its current "
		 "certificates are revoked when it does", id, name, until_s);
	api_reply_ok(rep, 200, json_pack("{s:s, s:s, s:s}", "board", id, "reenroll", "allowed",
					 "reenroll_expires_at", until_s));
}

static void api__board_patch(struct api_call *call, struct api_reply *rep)
{
	static const struct api_meta_kind kind = { "boards", "brd-", "board" };

	api_meta_patch(call, rep, &kind, api__board_get);
}

const struct api_route api_boards_routes[] = {
	{ .path = "/v1/boards", API_ALLOW("GET"), .get = api__boards_list,
	  .get_s = { .request = NULL, .answer = API_MSG(board_list) }, .summary = "List the boards (a page)" },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_NAME_MAX, .noun = "a board id or name",
	  .placeholder = "{id|name}", API_ALLOW("GET, PATCH, DELETE"), .get = api__board_get, .del = api__board_delete,
	  .patch = api__board_patch, .get_s = { .request = NULL, .answer = API_MSG(board) }, .del_s = { .request = NULL, .answer = API_MSG(deleted) },
	  .patch_s = { .request = API_MSG(meta_patch), .answer = API_MSG(board) }, .summary = "A board" },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_NAME_MAX, .suffix = "/fetch",
	  .noun = "a board id or name", .placeholder = "{id|name}/fetch", API_ALLOW("POST"),
	  .post = api__board_fetch, .post_s = { .request = API_MSG(fetch_request), .answer = API_MSG(fetch_answer) },
	  .summary = "Load an image into the board's RAM cache" },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_NAME_MAX, .suffix = "/boot",
	  .noun = "a board id or name", .placeholder = "{id|name}/boot", API_ALLOW("POST"),
	  .post = api__board_boot, .post_s = { .request = API_MSG(boot_request), .answer = API_MSG(boot_answer) },
	  .summary = "Boot an OS on the bare board (kexec)" },
	{ .path = "/v1/boards/", .segment = true, .segment_max = DB_NAME_MAX, .suffix = "/reenroll-allow",
	  .noun = "a board id or name", .placeholder = "{id|name}/reenroll-allow", API_ALLOW("POST"),
	  .post = api__board_reenroll_allow, .post_s = { .request = NULL, .answer = API_MSG(reenroll_answer) },
	  .summary = "Let the board enroll again with a general token, once" },
	{ .path = NULL },
};
