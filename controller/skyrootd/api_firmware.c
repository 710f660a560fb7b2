/* /v1/firmware: the allowed firmware of the measured-boot gate (fwgate.h).
 * Admin routes (api.c), every change in the audit log.  Allowing or
 * revoking a firmware changes at once which TPM boards are quarantined:
 * each change is an event (board.quarantined, board.released). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "common/util.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/events.h"
#include "controller/skyrootd/fwgate.h"

#define API_FIRMWARE_EXAMPLE "{\"name\": \"skyroot-1.4\", \"pcr11\": \"<64 hex digits>\"}"

static json_t *api_fw__json(const struct fw_allowed *f)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "id", f->id, "name", f->name, "pcr11", f->pcr11, "created_at",
			 api_json_time(f->created_at));
}

static int api_fw__list_cb(void *ctx, const struct fw_allowed *f)
{
	return json_array_append_new(ctx, api_fw__json(f)) < 0 ? -ENOMEM : 0;
}

static const struct api_list_spec api_fw_list = {
	.list = "firmware", .id_prefix = "fw-", .what = "list the allowed firmware",
};

static void api__fw_list(struct api_call *call, struct api_reply *rep)
{
	struct api_list_query q;
	json_t *arr;

	if (api_list_query(call, rep, &api_fw_list, &q) < 0)
		return;
	arr = json_array();
	if (arr)
		api_list_reply(call, rep, &api_fw_list, &q, fwgate_list(call->ctl->db, api_fw__list_cb, arr), arr);
}

static void api_fw__none(struct api_reply *rep, const char *name)
{
	api_reply_error(rep, 404, "not_found", "no allowed firmware named '%s'; see 'skyctl firmware list'", name);
}

static void api__fw_get(struct api_call *call, struct api_reply *rep)
{
	struct fw_allowed f;
	int r = fwgate_get(call->ctl->db, call->seg, &f);

	if (r == -ENOENT)
		api_fw__none(rep, call->seg);
	else if (r < 0)
		api_reply_internal(rep, r, "read the allowed firmware");
	else
		api_reply_ok(rep, 200, api_fw__json(&f));
}

/* {"name": N, "pcr11": HEX} into f: 0, or -EINVAL with err. */
static int api_fw__parse(const struct http_request *req, struct fw_allowed *f, char *err, size_t errlen)
{
	static const char *const known[] = { "name", "pcr11", NULL };
	json_t *root, *name, *pcr;
	int r = api_json_load_object(req->body, req->body_len, "firmware", API_FIRMWARE_EXAMPLE, &root, err, errlen);

	if (r < 0)
		return r;
	r = api_json_known_keys(root, "a firmware", known, err, errlen);
	name = json_object_get(root, "name");
	pcr = json_object_get(root, "pcr11");
	if (r >= 0 && (!name || !pcr)) {
		snprintf(err, errlen, "a firmware needs a name and a pcr11, like %s", API_FIRMWARE_EXAMPLE);
		r = -EINVAL;
	} else if (r >= 0 && (!json_is_string(name) || json_string_length(name) >= sizeof(f->name) ||
			      !sky_name_ok(json_string_value(name), "fw-"))) {
		snprintf(err, errlen, "firmware.name must be a name of at most %u bytes (letters, digits, '-', '_', "
			 "'.'; not starting with 'fw-')", SKY_NAME_MAX);
		r = -EINVAL;
	} else if (r >= 0 && !json_is_string(pcr)) {
		snprintf(err, errlen, "firmware.pcr11 must be a string of 64 hex digits");
		r = -EINVAL;
	} else if (r >= 0 && !fwgate_pcr11_parse(json_string_value(pcr), f->pcr11, err, errlen)) {
		r = -EINVAL;
	}
	if (r >= 0)
		snprintf(f->name, sizeof(f->name), "%s", json_string_value(name));
	json_decref(root);
	return r < 0 ? r : 0;
}

/* The boards a change of the list quarantined or released (before: the
 * snapshot taken before it), each an event and a log line. */
static void api_fw__judge_again(struct controller *ctl, const struct fwgate_board *before, size_t n, const char *what)
{
	char why[FWGATE_WHY_MAX], fw[DB_NAME_MAX];

	for (size_t i = 0; i < n; i++) {
		int r = fwgate_board(ctl->db, before[i].id, fw, why);

		if (r < 0 || (r == 1) == before[i].quarantined)
			continue;
		if (r == 1) {
			log_warn("api: board %s quarantined (%s): %s", before[i].id, what, why);
			events_add_kv(ctl->events, "board.quarantined", "board", before[i].id, "reason", why, "pcr11",
				      before[i].pcr11, NULL);
		} else {
			log_info("api: board %s released from quarantine (%s)", before[i].id, what);
			events_add_kv(ctl->events, "board.released", "board", before[i].id, "firmware",
				      fw[0] ? fw : "(the gate is off: no firmware allowed)", "pcr11", before[i].pcr11, NULL);
		}
	}
}

enum api_fw_change { API_FW_ALLOW, API_FW_REVOKE };

/* Allow f, or revoke the firmware key names (read into f), in one
 * transaction with the snapshot of the boards before; then the boards the
 * change quarantined or released, each an event.  0, or the change's error
 * (rolled back): -EEXIST with the name held (allow), -ENOSPC, -ENOENT. */
static int api_fw__change(struct controller *ctl, enum api_fw_change how, const char *key, struct fw_allowed *f,
			  char held[DB_NAME_MAX])
{
	struct fwgate_board *before = NULL;
	size_t n = 0;
	const char *verb = how == API_FW_ALLOW ? "allowed" : "revoked";
	char what[160];
	int r = db_begin(ctl->db);

	if (r == 0 && how == API_FW_REVOKE)
		r = fwgate_get(ctl->db, key, f);
	if (r == 0)
		r = fwgate_snapshot(ctl->db, &before, &n);
	if (r == 0 && how == API_FW_ALLOW) {
		r = db_new_id("fw-", 6, f->id, sizeof(f->id));
		if (r == 0)
			r = fwgate_allow(ctl->db, f, held);
	} else if (r == 0) {
		r = fwgate_revoke(ctl->db, f->id);
	}
	if (r == 0)
		r = db_commit(ctl->db);
	if (r < 0) {
		db_rollback(ctl->db);
		free(before);
		return r;
	}
	log_info("api: firmware %s '%s' (PCR 11 %s) %s", f->id, f->name, f->pcr11, verb);
	snprintf(what, sizeof(what), "firmware '%s' %s", f->name, verb);
	api_fw__judge_again(ctl, before, n, what);
	free(before);
	return 0;
}

static void api__fw_allow(struct api_call *call, struct api_reply *rep)
{
	struct fw_allowed f;
	char err[API_JSON_ERR_MAX], held[DB_NAME_MAX] = "";
	int r;

	memset(&f, 0, sizeof(f));
	if (api_fw__parse(call->req, &f, err, sizeof(err)) < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return;
	}
	f.created_at = sky_unix_now();
	r = api_fw__change(call->ctl, API_FW_ALLOW, NULL, &f, held);
	if (r == -EEXIST && strcmp(held, f.name) == 0)
		api_reply_error(rep, 409, "conflict", "a firmware named '%s' is allowed already; pick another name or "
				"revoke it", f.name);
	else if (r == -EEXIST)
		api_reply_error(rep, 409, "conflict", "PCR 11 %s is allowed already as '%s'", f.pcr11, held);
	else if (r == -ENOSPC)
		api_reply_error(rep, 409, "conflict", "%d firmware are allowed, the most the list keeps; revoke one "
				"first", FWGATE_MAX);
	else if (r < 0)
		api_reply_internal(rep, r, "store the allowed firmware");
	else
		api_reply_ok(rep, 201, api_fw__json(&f));
}

static void api__fw_revoke(struct api_call *call, struct api_reply *rep)
{
	struct fw_allowed f;
	int r = api_fw__change(call->ctl, API_FW_REVOKE, call->seg, &f, NULL);

	if (r == -ENOENT)
		api_fw__none(rep, call->seg);
	else if (r < 0)
		api_reply_internal(rep, r, "revoke the firmware");
	else
		api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", f.id, "deleted", 1));
}

bool api_board_quarantined(struct controller *ctl, struct api_reply *rep, const char *id, const char *name,
			   const char *what)
{
	char why[FWGATE_WHY_MAX];
	int r = fwgate_board(ctl->db, id, NULL, why);

	if (r == 0 || r == -ENOENT)
		return false;
	if (r < 0)
		api_reply_internal(rep, r, "read the board's measured-boot gate");
	else
		api_reply_error(rep, 409, "conflict", "board '%s' is quarantined: %s; it gets no %s until its firmware "
				"is allowed ('skyctl firmware allow --pcr11 HEX --name NAME')", name, why, what);
	return true;
}

const struct api_route api_firmware_routes[] = {
	{ .path = "/v1/firmware", .admin = true, API_ALLOW("GET, POST"), .get = api__fw_list, .post = api__fw_allow,
	  .get_s = { .request = NULL, .answer = API_MSG(firmware_list) },
	  .post_s = { .request = API_MSG(firmware_request), .answer = API_MSG(firmware) },
	  .summary = "Allowed firmware of the measured-boot gate (admin): list (a page), allow" },
	{ .path = "/v1/firmware/", .segment = true, .segment_max = DB_NAME_MAX, .noun = "a firmware id or name",
	  .placeholder = "{id|name}", .admin = true, API_ALLOW("GET, DELETE"), .get = api__fw_get,
	  .del = api__fw_revoke,
	  .get_s = { .request = NULL, .answer = API_MSG(firmware) }, .del_s = { .request = NULL, .answer = API_MSG(deleted) },
	  .summary = "An allowed firmware (admin); DELETE revokes it" },
	{ .path = NULL },
};
