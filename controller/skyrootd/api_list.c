/* The API's lists (docs/api.md, "Lists"): one page of a resource's items,
 * in the order of their ids, filtered, with the token of the next page.
 * Each resource renders all its items; this file parses the query first
 * (a 400 before any work) and cuts the page. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "controller/skyrootd/api_priv.h"

#define API_PAGE_KEY_LABEL "skyroot page tokens v1"

int api_list_key(struct controller *ctl, uint8_t key[API_PAGE_KEY_LEN])
{
	unsigned char *der = NULL;
	int n, r;

	if (!ctl->ca_key) /* no CA (tests, fuzzing): good for this process */
		return sky_random(key, API_PAGE_KEY_LEN);
	n = i2d_PrivateKey(ctl->ca_key, &der);
	if (n <= 0)
		return -EIO;
	r = sky_sha256_pieces((const struct sky_piece[]){ { API_PAGE_KEY_LABEL, sizeof(API_PAGE_KEY_LABEL) },
							  { der, (size_t)n } },
			      2, key);
	OPENSSL_clear_free(der, (size_t)n);
	return r;
}

static bool api_list__state_known(const struct api_list_spec *spec, const char *state)
{
	for (const char *const *s = spec->states; s && *s; s++)
		if (strcmp(*s, state) == 0)
			return true;
	return false;
}

int api_list_query(struct api_call *call, struct api_reply *rep, const struct api_list_spec *spec,
		   struct api_list_query *q)
{
	char err[API_QUERY_ERR_MAX];
	char id[DB_ID_MAX], name[DB_NAME_MAX];
	int r = api_query_parse_list(call->req->query, call->req->query_len, call->api->page_key, spec->list, spec->id_prefix,
				     spec->filters, q, err, sizeof(err));

	if (r < 0) {
		api_reply_error(rep, 400, "bad_request", "%s", err);
		return r;
	}
	if (q->state[0] && !api_list__state_known(spec, q->state)) {
		char states[128] = "";
		for (const char *const *s = spec->states; s && *s; s++) {
			size_t n = strlen(states);
			snprintf(states + n, sizeof(states) - n, "%s%s", n ? ", " : "", *s);
		}
		api_reply_error(rep, 400, "bad_request", "state '%s' is not a state of %s; use one of: %s", q->state,
				spec->list, states);
		return -EINVAL;
	}
	if (q->board[0]) {
		/* By id or name; an id no board has any more still matches its
		 * old guests. */
		r = api_board_lookup(call->ctl, q->board, id, name);
		if (r == 0)
			snprintf(q->board, sizeof(q->board), "%s", id);
		else if (r != -ENOENT) {
			api_reply_internal(rep, r, "read the board");
			return r;
		}
	}
	return 0;
}

static const char *api_list__str(const json_t *item, const char *key)
{
	const char *s = json_string_value(json_object_get(item, key));

	return s ? s : "";
}

static int api_list__by_id(const void *a, const void *b)
{
	return strcmp(api_list__str(*(json_t *const *)a, "id"), api_list__str(*(json_t *const *)b, "id"));
}

void api_list_reply(struct api_call *call, struct api_reply *rep, const struct api_list_spec *spec, const struct api_list_query *q,
		    int r, json_t *arr)
{
	size_t n = 0, total = json_array_size(arr), i;
	json_t **keep = NULL, *page = NULL, *item, *o = NULL;
	char tok[API_PAGE_TOKEN_MAX + 1];

	if (r < 0) {
		json_decref(arr);
		api_reply_internal(rep, r, spec->what);
		return;
	}
	if (spec->filters & API_QUERY_LABEL) {
		r = api_meta_decorate(call->ctl, arr);
		if (r < 0) {
			json_decref(arr);
			api_reply_internal(rep, r, "read the labels");
			return;
		}
	}
	keep = calloc(total ? total : 1, sizeof(*keep));
	page = json_array();
	if (!keep || !page)
		goto oom;
	json_array_foreach(arr, i, item) {
		if (!json_is_object(item))
			goto oom; /* a renderer ran out of memory */
		if (q->after[0] && strcmp(api_list__str(item, "id"), q->after) <= 0)
			continue;
		if (q->state[0] && strcmp(api_list__str(item, "state"), q->state) != 0)
			continue;
		if (q->board[0] && strcmp(api_list__str(item, "board"), q->board) != 0)
			continue;
		if (q->label_key[0]) {
			const char *v = json_string_value(json_object_get(json_object_get(item, "labels"), q->label_key));
			if (!v || (q->label_has_value && strcmp(v, q->label_value) != 0))
				continue;
		}
		keep[n++] = item;
	}
	qsort(keep, n, sizeof(*keep), api_list__by_id);
	for (i = 0; i < n && i < q->limit; i++)
		if (json_array_append(page, keep[i]) < 0)
			goto oom;
	o = json_pack("{s:o}", spec->list, page);
	page = NULL;
	if (!o)
		goto oom;
	if (n > q->limit) {
		if (api_page_token_encode(call->api->page_key, spec->list, api_list__str(keep[q->limit - 1], "id"), tok, sizeof(tok)) < 0 ||
		    json_object_set_new(o, "next_page_token", json_string(tok)) < 0)
			goto oom;
	}
	free(keep);
	json_decref(arr);
	api_reply_ok(rep, 200, o);
	return;
oom:
	free(keep);
	json_decref(page);
	json_decref(o);
	json_decref(arr);
	api_reply_internal(rep, -ENOMEM, spec->what);
}
