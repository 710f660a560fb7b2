/* libFuzzer target: the lists' query strings and page tokens
 * (controller/skyrootd/api_query.c).  The first byte picks: 0 a query
 * string (the second byte: which filters the list takes), 1 a page token,
 * 2 an id made into a token and back, 3 a PATCH body (api_meta_parse.c),
 * 4 a query string of GET /v1/events (api_query_parse_events).
 *
 * An accepted query gives a limit in 1..1000, NUL-terminated fields and a
 * page token's id of the list's form; a refused one gives a message and
 * leaves the output untouched.  A token is accepted only when the key made
 * it for this list, and then its id makes a token that gives it again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyrootd/api_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MARK 0x5a

/* Also in tests/fuzz/corpus/api_query's seeds: tokens made with it. */
static const uint8_t fz_key[API_PAGE_KEY_LEN] = "skyroot fuzz page key, 32 bytes";

static bool fz_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static bool fz_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n <= 4 || n >= DB_ID_MAX || strncmp(id, "tok-", 4) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
			return false;
	return true;
}

static void fz_query(const uint8_t *data, size_t size)
{
	struct api_list_query q, untouched;
	char err[API_QUERY_ERR_MAX];
	unsigned allowed;
	int r;

	if (size == 0)
		return;
	allowed = data[0] & (API_QUERY_STATE | API_QUERY_BOARD | API_QUERY_LABEL);
	memset(&q, FZ_MARK, sizeof(q));
	memset(&untouched, FZ_MARK, sizeof(untouched));
	err[0] = '\0';
	r = api_query_parse_list(size > 1 ? (const char *)data + 1 : NULL, size - 1, fz_key, "tokens", "tok-",
				 allowed, &q, err, sizeof(err));
	if (r < 0) {
		if (r != -EINVAL || !err[0] || !fz_terminated(err, sizeof(err)) || memcmp(&q, &untouched, sizeof(q)) != 0)
			abort();
		return;
	}
	if (q.limit < 1 || q.limit > API_LIST_LIMIT_MAX || !fz_terminated(q.after, sizeof(q.after)) ||
	    !fz_terminated(q.state, sizeof(q.state)) || !fz_terminated(q.board, sizeof(q.board)))
		abort();
	if ((q.after[0] && !fz_id_ok(q.after)) || (!(allowed & API_QUERY_STATE) && q.state[0]) ||
	    (!(allowed & API_QUERY_BOARD) && q.board[0]) || (!(allowed & API_QUERY_LABEL) && q.label_key[0]))
		abort();
	if (q.label_key[0] && (!api_label_key_ok(q.label_key) || !api_label_value_ok(q.label_value)))
		abort();
}

static void fz_token(const uint8_t *data, size_t size)
{
	char *tok = malloc(size + 1), after[DB_ID_MAX], again[API_PAGE_TOKEN_MAX + 1], after2[DB_ID_MAX];

	if (!tok)
		return;
	memcpy(tok, data, size);
	tok[size] = '\0';
	if (api_page_token_decode(fz_key, tok, "tokens", "tok-", after) == 0) {
		if (!fz_id_ok(after) || api_page_token_encode(fz_key, "tokens", after, again, sizeof(again)) < 0 ||
		    api_page_token_decode(fz_key, again, "tokens", "tok-", after2) < 0 || strcmp(after, after2) != 0)
			abort();
		/* Another list or another key never takes it. */
		if (api_page_token_decode(fz_key, tok, "boards", "tok-", after2) == 0)
			abort();
	}
	free(tok);
}

static void fz_round_trip(const uint8_t *data, size_t size)
{
	char id[DB_ID_MAX + 8], tok[API_PAGE_TOKEN_MAX + 1], after[DB_ID_MAX];
	int r;

	if (size >= sizeof(id) || memchr(data, '\0', size))
		return;
	memcpy(id, data, size);
	id[size] = '\0';
	if (api_page_token_encode(fz_key, "tokens", id, tok, sizeof(tok)) < 0)
		return;
	r = api_page_token_decode(fz_key, tok, "tokens", "tok-", after);
	if ((r == 0) != fz_id_ok(id) || (r == 0 && strcmp(after, id) != 0))
		abort();
}

static bool fz_word(const char *s, size_t max, const char *extra)
{
	size_t n = strnlen(s, max);

	if (n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      strchr(extra, s[i])))
			return false;
	return true;
}

/* GET /v1/events: an accepted query holds a limit in range, a page
 * token's resource version, words of the right alphabet and a heartbeat in
 * range; no limit or page_token with a watch; a refused one says why and
 * leaves the output untouched.  A page token made for "evt-N" gives N. */
static void fz_events(const uint8_t *data, size_t size)
{
	struct api_events_query q, untouched;
	char err[API_QUERY_ERR_MAX], tok[API_PAGE_TOKEN_MAX + 1], q2[API_PAGE_TOKEN_MAX + 16];
	int r;

	memset(&q, FZ_MARK, sizeof(q));
	memset(&untouched, FZ_MARK, sizeof(untouched));
	err[0] = '\0';
	r = api_query_parse_events(size ? (const char *)data : NULL, size, fz_key, &q, err, sizeof(err));
	if (r < 0) {
		if (r != -EINVAL || !err[0] || !fz_terminated(err, sizeof(err)) || memcmp(&q, &untouched, sizeof(q)) != 0)
			abort();
		return;
	}
	if (q.limit < 1 || q.limit > API_LIST_LIMIT_MAX || q.after < 0 || (q.has_since && q.since < 0) ||
	    !fz_word(q.type, sizeof(q.type), "_.") || !fz_word(q.kind, sizeof(q.kind), "_-") ||
	    !fz_word(q.id, sizeof(q.id), "._-") || q.heartbeat_ms < API_EVENTS_HEARTBEAT_MIN_MS ||
	    q.heartbeat_ms > API_EVENTS_HEARTBEAT_MAX_MS)
		abort();
	if (q.watch && (q.after || q.limit != API_LIST_LIMIT_DEFAULT))
		abort();
	/* The page token after the last event of this page reads back. */
	if (q.after > 0 && q.after < INT64_MAX) {
		char id[DB_ID_MAX];
		struct api_events_query q3;

		snprintf(id, sizeof(id), "evt-%lld", (long long)q.after + 1);
		if (api_page_token_encode(fz_key, "events", id, tok, sizeof(tok)) < 0)
			abort();
		snprintf(q2, sizeof(q2), "page_token=%s", tok);
		if (api_query_parse_events(q2, strlen(q2), fz_key, &q3, err, sizeof(err)) < 0 || q3.after != q.after + 1)
			abort();
	}
}

/* A PATCH body: accepted ones hold only valid fields; refused ones say why. */
static void fz_patch(const uint8_t *data, size_t size)
{
	struct api_patch p;
	char err[API_META_ERR_MAX] = "", etag[API_ETAG_MAX];
	json_t *labels;
	const char *k;
	json_t *v;

	memset(&p, FZ_MARK, sizeof(p));
	if (api_patch_parse(data, size, "brd-", &p, err, sizeof(err)) < 0) {
		if (!err[0] || !fz_terminated(err, sizeof(err)))
			abort();
		return;
	}
	if (!p.has_name && !p.has_description && !p.labels)
		abort();
	if ((p.has_name && (!fz_terminated(p.name, sizeof(p.name)) || !p.name[0] || strncmp(p.name, "brd-", 4) == 0)) ||
	    (p.has_description && !fz_terminated(p.description, sizeof(p.description))))
		abort();
	labels = json_object();
	if (p.labels) {
		json_object_foreach(p.labels, k, v)
			if (!api_label_key_ok(k) || (!json_is_null(v) && !api_label_value_ok(json_string_value(v))))
				abort();
		if (labels && api_labels_merge(labels, p.labels, err, sizeof(err)) == 0 &&
		    json_object_size(labels) > API_LABELS_MAX)
			abort();
	}
	api_meta_etag(p.has_name ? p.name : "", p.has_description ? p.description : "", labels, etag);
	if (strlen(etag) != 18)
		abort();
	json_decref(labels);
	api_patch_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 5) {
	case 0:
		fz_query(data + 1, size - 1);
		break;
	case 1:
		fz_token(data + 1, size - 1);
		break;
	case 2:
		fz_round_trip(data + 1, size - 1);
		break;
	case 3:
		fz_patch(data + 1, size - 1);
		break;
	default:
		fz_events(data + 1, size - 1);
		break;
	}
	return 0;
}
