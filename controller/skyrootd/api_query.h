/* The query strings of the API's lists (docs/api.md, "Lists"): limit,
 * page_token and the filters, and the opaque page tokens.  Pure functions,
 * without the loop or the database, for the unit tests and the fuzzer. */
#ifndef SKY_CONTROLLER_API_QUERY_H
#define SKY_CONTROLLER_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/skyrootd/api_meta.h"
#include "controller/skyrootd/db.h"

#define API_LIST_LIMIT_DEFAULT 100u
#define API_LIST_LIMIT_MAX 1000u
#define API_QUERY_ERR_MAX 192
#define API_QUERY_STATE_MAX 32
/* base64url of "p1:" LIST ":" ID and its MAC, no padding. */
#define API_PAGE_TOKEN_MAX 128
#define API_PAGE_KEY_LEN 32

/* The filters a list takes beside limit and page_token. */
enum {
	API_QUERY_STATE = 1u << 0,
	API_QUERY_BOARD = 1u << 1,
	API_QUERY_LABEL = 1u << 2,
};

struct api_list_query {
	uint32_t limit;                  /* 1..API_LIST_LIMIT_MAX */
	char after[DB_ID_MAX];           /* from page_token: the last id of the page before; "" = first page */
	char state[API_QUERY_STATE_MAX]; /* "" = any */
	char board[DB_NAME_MAX];         /* a board's id or name; "" = any */
	char label_key[API_LABEL_KEY_MAX + 1]; /* "" = any */
	char label_value[API_LABEL_VALUE_MAX + 1];
	bool label_has_value;            /* label=key=value; else label=key: has the label */
};

/* Parse q (raw, after '?', may be NULL) for the list named list (e.g.
 * "tokens") whose ids begin with id_prefix (e.g. "tok-"), taking the
 * filters in allowed.  0, or -EINVAL with a message in err saying what to
 * do: an unknown or repeated parameter, a limit outside 1..1000, a page
 * token that is not one this list gave, a bad %-escape. */
int api_query_parse_list(const char *q, size_t qlen, const uint8_t key[API_PAGE_KEY_LEN], const char *list,
			 const char *id_prefix, unsigned allowed, struct api_list_query *out, char *err, size_t errlen);

/* The page token after the item last_id of list, authenticated with key:
 * 0, or -ENAMETOOLONG, -EIO (no MAC). */
int api_page_token_encode(const uint8_t key[API_PAGE_KEY_LEN], const char *list, const char *last_id, char *out,
			  size_t outlen);
/* Its inverse: the id into after (DB_ID_MAX), or -EINVAL when tok is not a
 * token that key made for list, whose id begins with id_prefix and is
 * [a-z0-9-] only. */
int api_page_token_decode(const uint8_t key[API_PAGE_KEY_LEN], const char *tok, const char *list,
			  const char *id_prefix, char after[DB_ID_MAX]);

/* GET /v1/events (docs/api.md "Events"): the list's limit and page_token,
 * and since, type, kind, id, watch and heartbeat. */
#define API_EVENTS_TYPE_MAX 32
#define API_EVENTS_KIND_MAX 16
#define API_EVENTS_HEARTBEAT_DEFAULT_MS 15000u
#define API_EVENTS_HEARTBEAT_MIN_MS 100u
#define API_EVENTS_HEARTBEAT_MAX_MS 300000u
struct api_events_query {
	uint32_t limit;                  /* 1..API_LIST_LIMIT_MAX (lists only) */
	int64_t after;                   /* from page_token: the last rv of the page before; 0 = none */
	bool has_since;
	int64_t since;                   /* events after this resource version */
	char type[API_EVENTS_TYPE_MAX];  /* "" = any */
	char kind[API_EVENTS_KIND_MAX];
	char id[DB_NAME_MAX];            /* an object id, or a credential's name */
	bool watch;                      /* stream (watch=true) */
	uint64_t heartbeat_ms;           /* between heartbeat lines of a watch */
};
/* Parse q (raw, may be NULL) for GET /v1/events: 0, or -EINVAL with a
 * message in err: an unknown or repeated parameter, a bad value, a
 * page_token this list did not give, limit or page_token with watch. */
int api_query_parse_events(const char *q, size_t qlen, const uint8_t key[API_PAGE_KEY_LEN], struct api_events_query *out,
			   char *err, size_t errlen);

#endif
