/* The lists' query strings and page tokens (controller/skyrootd/api_query.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controller/skyrootd/api_query.h"

static const uint8_t key[API_PAGE_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
static const uint8_t other_key[API_PAGE_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 11 };

static int parse(const char *q, unsigned allowed, struct api_list_query *out, char *err)
{
	return api_query_parse_list(q, q ? strlen(q) : 0, key, "tokens", "tok-", allowed, out, err, API_QUERY_ERR_MAX);
}

static void refused(const char *q, unsigned allowed, const char *needle)
{
	struct api_list_query out;
	char err[API_QUERY_ERR_MAX] = "";

	memset(&out, 0x5a, sizeof(out));
	assert_int_equal(parse(q, allowed, &out, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("'%s': message '%s' lacks '%s'", q, err, needle);
	assert_int_equal(out.limit, 0x5a5a5a5a); /* untouched */
}

static void test_defaults(void **state)
{
	struct api_list_query q;
	char err[API_QUERY_ERR_MAX];

	(void)state;
	assert_int_equal(parse(NULL, 0, &q, err), 0);
	assert_int_equal(q.limit, API_LIST_LIMIT_DEFAULT);
	assert_string_equal(q.after, "");
	assert_string_equal(q.state, "");
	assert_string_equal(q.board, "");
	assert_int_equal(parse("", 0, &q, err), 0);
	assert_int_equal(parse("&", 0, &q, err), 0);
	assert_int_equal(q.limit, API_LIST_LIMIT_DEFAULT);
}

static void test_values(void **state)
{
	struct api_list_query q;
	char err[API_QUERY_ERR_MAX], tok[API_PAGE_TOKEN_MAX + 1], query[256];

	(void)state;
	assert_int_equal(api_page_token_encode(key, "tokens", "tok-0a1b2c3d", tok, sizeof(tok)), 0);
	snprintf(query, sizeof(query), "limit=1000&page_token=%s&state=revoked&board=rack%%201", tok);
	assert_int_equal(parse(query, API_QUERY_STATE | API_QUERY_BOARD, &q, err), 0);
	assert_int_equal(q.limit, 1000);
	assert_string_equal(q.after, "tok-0a1b2c3d");
	assert_string_equal(q.state, "revoked");
	assert_string_equal(q.board, "rack 1");
	assert_int_equal(parse("limit=1", 0, &q, err), 0);
	assert_int_equal(q.limit, 1);
}

static void test_refused(void **state)
{
	(void)state;
	refused("limit=0", 0, "limit must be");
	refused("limit=1001", 0, "limit must be");
	refused("limit=-1", 0, "limit must be");
	refused("limit=1x", 0, "limit must be");
	refused("limit=", 0, "limit must be");
	refused("limit", 0, "'limit' needs a value");
	refused("limit=1&limit=2", 0, "given twice");
	refused("state=offline", 0, "unknown query parameter 'state'");
	refused("board=x", API_QUERY_STATE, "unknown query parameter 'board'");
	refused("sort=id", API_QUERY_STATE | API_QUERY_BOARD, "unknown query parameter 'sort'");
	refused("sort=id", API_QUERY_STATE | API_QUERY_LABEL, "this list takes limit, page_token, state, label");
	refused("sort", API_QUERY_STATE, "unknown query parameter 'sort'"); /* unknown before valueless */
	refused("limit=5&&limit=6&", 0, "given twice");
	refused("a-very-long-parameter-name-indeed=1", 0, "unknown query parameter 'a-very-long-parameter");
	refused("%zz=1", 0, "unknown query parameter");
	refused("state=%0a", API_QUERY_STATE, "bad %-escape");
	refused("state=", API_QUERY_STATE, "state must be");
	refused("board=", API_QUERY_BOARD, "board must be");
	refused("page_token=", 0, "page_token");
	refused("page_token=!!", 0, "page_token");
}

static void test_token_round_trip(void **state)
{
	char tok[API_PAGE_TOKEN_MAX + 1], after[DB_ID_MAX];

	(void)state;
	assert_int_equal(api_page_token_encode(key, "boards", "brd-00ff", tok, sizeof(tok)), 0);
	for (const char *c = tok; *c; c++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c));
	assert_int_equal(api_page_token_decode(key, tok, "boards", "brd-", after), 0);
	assert_string_equal(after, "brd-00ff");
	/* Another list's, or another id prefix. */
	assert_int_equal(api_page_token_decode(key, tok, "tokens", "brd-", after), -EINVAL);
	assert_int_equal(api_page_token_decode(key, tok, "boards", "tok-", after), -EINVAL);
	assert_int_equal(api_page_token_encode(key, "boards", "brd-00ff", tok, 4), -ENAMETOOLONG);
}

static void test_token_forged(void **state)
{
	char tok[256], after[DB_ID_MAX], good[API_PAGE_TOKEN_MAX + 1];
	size_t n;

	(void)state;
	assert_int_equal(api_page_token_encode(key, "tokens", "tok-1", good, sizeof(good)), 0);
	assert_int_equal(api_page_token_decode(key, good, "tokens", "tok-", after), 0);
	assert_string_equal(after, "tok-1");
	/* Another key's token. */
	assert_int_equal(api_page_token_decode(other_key, good, "tokens", "tok-", after), -EINVAL);
	/* Any character changed (each to every other base64url one) is refused. */
	n = strlen(good);
	for (size_t i = 0; i < n; i++) {
		static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		for (const char *c = abc; *c; c++) {
			if (*c == good[i])
				continue;
			memcpy(tok, good, n + 1);
			tok[i] = *c;
			/* The last character's low bits may carry no data. */
			if (i == n - 1 && api_page_token_decode(key, tok, "tokens", "tok-", after) == 0) {
				assert_string_equal(after, "tok-1");
				continue;
			}
			if (api_page_token_decode(key, tok, "tokens", "tok-", after) != -EINVAL)
				fail_msg("'%s' (changed at %zu) was taken: %s", tok, i, after);
		}
	}
	/* Cut, lengthened, padded, not base64url. */
	for (size_t cut = 0; cut < n; cut++) {
		memcpy(tok, good, cut);
		tok[cut] = '\0';
		assert_int_equal(api_page_token_decode(key, tok, "tokens", "tok-", after), -EINVAL);
	}
	snprintf(tok, sizeof(tok), "%sAAAA", good);
	assert_int_equal(api_page_token_decode(key, tok, "tokens", "tok-", after), -EINVAL);
	snprintf(tok, sizeof(tok), "%s=", good);
	assert_int_equal(api_page_token_decode(key, tok, "tokens", "tok-", after), -EINVAL);
	assert_int_equal(api_page_token_decode(key, "a+b/", "tokens", "tok-", after), -EINVAL);
	memset(tok, 'A', 200);
	tok[200] = '\0';
	assert_int_equal(api_page_token_decode(key, tok, "tokens", "tok-", after), -EINVAL);
	/* A well-made token of an id this list does not have the form of. */
	assert_int_equal(api_page_token_encode(key, "tokens", "brd-1", tok, sizeof(tok)), 0);
	assert_int_equal(api_page_token_decode(key, tok, "tokens", "tok-", after), -EINVAL);
	assert_int_equal(api_page_token_encode(key, "tokens", "tok-A'", tok, sizeof(tok)), 0);
	assert_int_equal(api_page_token_decode(key, tok, "tokens", "tok-", after), -EINVAL);
}

/* GET /v1/events: its parameters, and a page token of the events list. */
static int parse_events(const char *q, struct api_events_query *out, char *err)
{
	return api_query_parse_events(q, q ? strlen(q) : 0, key, out, err, API_QUERY_ERR_MAX);
}

static void events_refused(const char *q, const char *needle)
{
	struct api_events_query out;
	char err[API_QUERY_ERR_MAX] = "";

	memset(&out, 0x5a, sizeof(out));
	assert_int_equal(parse_events(q, &out, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("'%s': message '%s' lacks '%s'", q, err, needle);
	assert_int_equal(out.limit, 0x5a5a5a5a); /* untouched */
}

static void test_events(void **state)
{
	struct api_events_query q;
	char err[API_QUERY_ERR_MAX], tok[API_PAGE_TOKEN_MAX + 1], query[API_PAGE_TOKEN_MAX + 32];

	(void)state;
	assert_int_equal(parse_events(NULL, &q, err), 0);
	assert_int_equal(q.limit, API_LIST_LIMIT_DEFAULT);
	assert_false(q.has_since);
	assert_false(q.watch);
	assert_int_equal(q.after, 0);
	assert_int_equal(q.heartbeat_ms, API_EVENTS_HEARTBEAT_DEFAULT_MS);
	assert_int_equal(parse_events("since=0&type=guest.state&kind=guest&id=gst-0a1b&limit=7", &q, err), 0);
	assert_true(q.has_since);
	assert_int_equal(q.since, 0);
	assert_string_equal(q.type, "guest.state");
	assert_string_equal(q.kind, "guest");
	assert_string_equal(q.id, "gst-0a1b");
	assert_int_equal(q.limit, 7);
	assert_int_equal(parse_events("watch=true&since=42&heartbeat=250ms&id=My.Cred_1", &q, err), 0);
	assert_true(q.watch);
	assert_int_equal(q.since, 42);
	assert_int_equal(q.heartbeat_ms, 250);
	assert_string_equal(q.id, "My.Cred_1");
	/* A page token of the events list gives its resource version back. */
	assert_int_equal(api_page_token_encode(key, "events", "evt-1234", tok, sizeof(tok)), 0);
	snprintf(query, sizeof(query), "page_token=%s", tok);
	assert_int_equal(parse_events(query, &q, err), 0);
	assert_int_equal(q.after, 1234);
	/* ... and another list's token, or another key's, is refused. */
	assert_int_equal(api_page_token_encode(key, "tokens", "evt-1234", tok, sizeof(tok)), 0);
	snprintf(query, sizeof(query), "page_token=%s", tok);
	events_refused(query, "page_token");
	assert_int_equal(api_page_token_encode(other_key, "events", "evt-1234", tok, sizeof(tok)), 0);
	snprintf(query, sizeof(query), "page_token=%s", tok);
	events_refused(query, "page_token");
	events_refused("since=-1", "since");
	events_refused("since=99999999999999999999", "since");
	events_refused("type=Guest", "type");
	events_refused("type=", "type");
	events_refused("kind=gu/est", "kind");
	events_refused("id=a%20b", "id");
	events_refused("watch=yes", "watch");
	events_refused("watch=true&limit=3", "watch");
	events_refused("watch=1&page_token=x", "page_token");
	events_refused("heartbeat=1s", "heartbeat");
	events_refused("watch=true&heartbeat=10ms", "heartbeat");
	events_refused("watch=true&heartbeat=1h", "heartbeat");
	events_refused("since=1&since=2", "twice");
	events_refused("state=running", "unknown");
	events_refused("since", "needs a value");
	events_refused("nope", "unknown query parameter 'nope'; GET /v1/events takes limit, page_token, since");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_token_round_trip),
		cmocka_unit_test(test_token_forged),
		cmocka_unit_test(test_events),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
