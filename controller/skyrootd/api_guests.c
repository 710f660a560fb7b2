/* /v1/guests: guests and their desired state; their consoles. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/skyrootd/api_priv.h"
#include "controller/skyrootd/consoles.h"
#include "controller/skyrootd/guests.h"

static void api__guests_create(struct api_call *call, struct api_reply *rep)
{
	struct guests *g = call->ctl->guests;
	struct api_guest_body *body = malloc(sizeof(*body));
	struct guest_request req;
	struct guest *gs = malloc(sizeof(*gs));
	char err[API_JSON_ERR_MAX];
	int r;

	if (!body || !gs) {
		api_reply_internal(rep, -ENOMEM, "create the guest");
		goto out;
	}
	r = api_json_parse_guest_request(call->req->body, call->req->body_len, body, err, sizeof(err));
	if (r < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.name = body->name;
	req.board = body->board[0] ? body->board : NULL;
	req.kernel = body->kernel;
	req.initrd = body->initrd[0] ? body->initrd : NULL;
	req.disk = body->disk[0] ? body->disk : NULL;
	req.cmdline = body->has_cmdline ? body->cmdline : NULL;
	req.vcpus = body->vcpus;
	req.memory = body->memory_bytes;
	req.backend = body->backend;
	for (unsigned i = 0; i < body->n_devices; i++)
		req.devices[i] = body->devices[i];
	req.n_devices = body->n_devices;
	for (unsigned i = 0; i < body->n_nics; i++)
		req.nics[i] = (struct nic_request){ .network = body->nics[i].network, .mac = body->nics[i].mac };
	req.n_nics = body->n_nics;
	req.mac_prefix = call->ctl->opt.mac_prefix;
	err[0] = '\0';
	r = guests_create(g, &req, gs, err, sizeof(err));
	switch (r) {
	case 0:
		api_reply_ok(rep, 201, api_json_guest(gs));
		break;
	case -EINVAL:
		api_reply_error(rep, 400, "bad_request", "%s", err);
		break;
	case -ENOENT:
		api_reply_error(rep, 404, "not_found", "%s", err);
		break;
	case -EEXIST:
	case -ENOSPC:
	case -EBUSY:
		api_reply_error(rep, 409, "conflict", "%s", err);
		break;
	default:
		api_reply_internal(rep, r, "create the guest");
	}
out:
	free(body);
	free(gs);
}

static int api_guest__list_cb(void *ctx, const struct guest *gs)
{
	return json_array_append_new(ctx, api_json_guest(gs)) < 0 ? -ENOMEM : 0;
}

static const char *const api_guest_states[] = { "pending", "fetching", "running", "stopped", "failed", NULL };
static const struct api_list_spec api_guests_list = {
	.list = "guests", .id_prefix = "gst-", .what = "list the guests", .filters = API_QUERY_STATE | API_QUERY_BOARD | API_QUERY_LABEL,
	.states = api_guest_states,
};

static void api__guests_list(struct api_call *call, struct api_reply *rep)
{
	struct api_list_query q;
	json_t *arr;

	if (api_list_query(call, rep, &api_guests_list, &q) < 0)
		return;
	arr = json_array();
	if (arr)
		api_list_reply(call, rep, &api_guests_list, &q, guests_list(call->ctl->guests, api_guest__list_cb, arr), arr);
}

static void api__guest_get(struct api_call *call, struct api_reply *rep)
{
	struct guest gs;
	int r = guests_get(call->ctl->guests, call->seg, &gs);

	if (r == -ENOENT)
		api_reply_no_guest(rep, call->seg);
	else if (r < 0)
		api_reply_internal(rep, r, "read the guest");
	else
		api_reply_ok(rep, 200, api_json_guest(&gs));
}

static void api_guest__desired(struct api_call *call, const char *desired, struct api_reply *rep)
{
	struct guests *g = call->ctl->guests;
	struct guest gs;
	int r = guests_get(g, call->seg, &gs);

	if (r == 0)
		r = guests_set_desired(g, gs.id, desired, &gs);
	if (r == -ENOENT)
		api_reply_no_guest(rep, call->seg);
	else if (r < 0)
		api_reply_internal(rep, r, "change the guest");
	else
		api_reply_ok(rep, 200, api_json_guest(&gs));
}

static void api__guest_start(struct api_call *call, struct api_reply *rep)
{
	api_guest__desired(call, "running", rep);
}

static void api__guest_stop(struct api_call *call, struct api_reply *rep)
{
	api_guest__desired(call, "stopped", rep);
}

static void api__guest_delete(struct api_call *call, struct api_reply *rep)
{
	struct guests *g = call->ctl->guests;
	struct guest gs;
	int r = guests_get(g, call->seg, &gs);

	if (r == 0)
		r = guests_delete(g, gs.id);
	if (r == -ENOENT) {
		api_reply_no_guest(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "delete the guest");
		return;
	}
	log_info("api: guest %s '%s' deleted", gs.id, gs.name);
	api_reply_ok(rep, 200, json_pack("{s:s, s:b}", "id", gs.id, "deleted", 1));
}

/* ---- console ---- */

static void api_console__chunk(void *ctx, const uint8_t *data, size_t len)
{
	http_stream_write(ctx, data, len);
}

void api_guests_conn_gone(struct api *api, struct http_conn *c, struct api_conn_state *st)
{
	if (st->follow[0])
		consoles_unfollow(api->ctl->consoles, st->follow, c);
	st->follow[0] = '\0';
}

static void api__guest_console(struct api_call *call, struct api_reply *rep)
{
	struct consoles *cs = call->ctl->consoles;
	struct http_conn *c = call->conn;
	struct api_conn_state *st;
	struct guest gs;
	char flag[8] = "";
	char *ring;
	size_t n = 0;
	bool follow;
	int r = guests_get(call->ctl->guests, call->seg, &gs);

	if (r == -ENOENT) {
		api_reply_no_guest(rep, call->seg);
		return;
	}
	if (r < 0) {
		api_reply_internal(rep, r, "read the guest");
		return;
	}
	api_json_query_get(call->req->query, call->req->query_len, "follow", flag, sizeof(flag));
	follow = strcmp(flag, "1") == 0 || strcmp(flag, "true") == 0;
	ring = malloc(GUEST_CONSOLE_RING);
	st = api_conn_state(c);
	if (!ring || !st || !cs) {
		free(ring);
		api_reply_internal(rep, -ENOMEM, "read the console");
		return;
	}
	/* On a shared store: what the store has (consoles.h). */
	r = follow ? consoles_follow(cs, gs.id, api_console__chunk, c, ring, GUEST_CONSOLE_RING, &n) :
		     consoles_read(cs, gs.id, ring, GUEST_CONSOLE_RING, &n);
	if (r < 0) {
		free(ring);
		api_reply_internal(rep, r, "read the console");
		return;
	}
	rep->status = 0; /* answered here */
	if (!follow) {
		http_respond_raw(c, 200, "text/plain; charset=utf-8", ring, n);
		free(ring);
		return;
	}
	/* Follow: a chunked answer that stays open. */
	snprintf(st->follow, sizeof(st->follow), "%s", gs.id);
	r = http_stream_begin(c, 200, "text/plain; charset=utf-8");
	if (r == 0)
		r = http_stream_write(c, ring, n);
	free(ring);
	if (r < 0)
		http_conn_close(c, r); /* its follower goes with it (api_guests_conn_gone) */
}

static void api__guest_patch(struct api_call *call, struct api_reply *rep)
{
	static const struct api_meta_kind kind = { "guests", "gst-", "guest" };

	api_meta_patch(call, rep, &kind, api__guest_get);
}

const struct api_route api_guests_routes[] = {
	{ .path = "/v1/guests", API_ALLOW("GET, POST"), .get = api__guests_list, .post = api__guests_create,
	  .get_s = { .request = NULL, .answer = API_MSG(guest_list) }, .post_s = { .request = API_MSG(guest_request), .answer = API_MSG(guest) },
	  .summary = "Guests: list (a page), create" },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX, .noun = "a guest id or name",
	  .placeholder = "{id|name}", API_ALLOW("GET, PATCH, DELETE"), .get = api__guest_get, .del = api__guest_delete,
	  .patch = api__guest_patch, .get_s = { .request = NULL, .answer = API_MSG(guest) }, .del_s = { .request = NULL, .answer = API_MSG(deleted) },
	  .patch_s = { .request = API_MSG(meta_patch), .answer = API_MSG(guest) }, .summary = "A guest" },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX, .suffix = "/start",
	  .noun = "a guest id or name", .placeholder = "{id|name}/start", API_ALLOW("POST"),
	  .post = api__guest_start, .post_s = { .request = NULL, .answer = API_MSG(guest) }, .summary = "Start the guest" },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX, .suffix = "/stop",
	  .noun = "a guest id or name", .placeholder = "{id|name}/stop", API_ALLOW("POST"),
	  .post = api__guest_stop, .post_s = { .request = NULL, .answer = API_MSG(guest) }, .summary = "Stop the guest" },
	{ .path = "/v1/guests/", .segment = true, .segment_max = GUEST_NAME_MAX, .suffix = "/console",
	  .noun = "a guest id or name", .placeholder = "{id|name}/console", API_ALLOW("GET"),
	  .get = api__guest_console, .get_s = { .media = "text/plain" },
	  .summary = "The guest's serial console (text; ?follow=1 streams)" },
	{ .path = NULL },
};
