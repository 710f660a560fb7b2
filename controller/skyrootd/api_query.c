/* The query strings of the API's lists: limit, page_token, the filters,
 * and the page tokens (docs/api.md, "Lists").
 *
 * A page token is base64url (RFC 4648, no padding) of "p1:LIST:ID" and the
 * first 16 bytes of its HMAC-SHA-256 under the controller's page key, ID
 * the last item of the page before.  Opaque to clients and not secret, but
 * authenticated: a forged or altered token is a 400, never another page or
 * another list's. */
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/api_query.h"

#define API_PAGE_TOKEN_VERSION "p1"
#define API_PAGE_MAC_LEN 16
/* The longest value of any parameter, decoded. */
#define API_QUERY_VALUE_MAX (API_LABEL_KEY_MAX + API_LABEL_VALUE_MAX + 2)

static int api_query__mac(const uint8_t key[API_PAGE_KEY_LEN], const void *data, size_t len,
			  uint8_t out[API_PAGE_MAC_LEN])
{
	uint8_t full[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (!HMAC(EVP_sha256(), key, API_PAGE_KEY_LEN, data, len, full, &n) || n < API_PAGE_MAC_LEN)
		return -EIO;
	memcpy(out, full, API_PAGE_MAC_LEN);
	return 0;
}

int api_page_token_encode(const uint8_t key[API_PAGE_KEY_LEN], const char *list, const char *last_id, char *out,
			  size_t outlen)
{
	unsigned char plain[API_PAGE_TOKEN_MAX], b64[API_PAGE_TOKEN_MAX * 2];
	int n = snprintf((char *)plain, sizeof(plain), API_PAGE_TOKEN_VERSION ":%s:%s", list, last_id);
	int m;

	if (n < 0 || (size_t)n + API_PAGE_MAC_LEN > sizeof(plain))
		return -ENAMETOOLONG;
	if (api_query__mac(key, plain, (size_t)n, plain + n) < 0)
		return -EIO;
	n += API_PAGE_MAC_LEN;
	m = EVP_EncodeBlock(b64, plain, n);
	while (m > 0 && b64[m - 1] == '=')
		m--;
	if ((size_t)m >= outlen)
		return -ENAMETOOLONG;
	for (int i = 0; i < m; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	out[m] = '\0';
	return 0;
}

static bool api_query__id_ok(const char *id, size_t n, const char *id_prefix)
{
	size_t pl = strlen(id_prefix);

	if (n <= pl || n >= DB_ID_MAX || strncmp(id, id_prefix, pl) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

int api_page_token_decode(const uint8_t key[API_PAGE_KEY_LEN], const char *tok, const char *list,
			  const char *id_prefix, char after[DB_ID_MAX])
{
	unsigned char b64[API_PAGE_TOKEN_MAX + 4], plain[API_PAGE_TOKEN_MAX];
	uint8_t mac[API_PAGE_MAC_LEN];
	size_t n = strlen(tok), pad, idlen;
	char want[64];
	int m, wl;

	if (n == 0 || n > API_PAGE_TOKEN_MAX || n % 4 == 1)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = tok[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return -EINVAL;
		b64[i] = (unsigned char)c;
	}
	pad = (4 - n % 4) % 4;
	memset(b64 + n, '=', pad);
	m = EVP_DecodeBlock(plain, b64, (int)(n + pad));
	if (m < 0)
		return -EINVAL;
	m -= (int)pad; /* EVP_DecodeBlock counts the padding's zero bytes */
	if (m <= API_PAGE_MAC_LEN)
		return -EINVAL;
	m -= API_PAGE_MAC_LEN;
	if (api_query__mac(key, plain, (size_t)m, mac) < 0 || CRYPTO_memcmp(mac, plain + m, sizeof(mac)) != 0)
		return -EINVAL;
	wl = snprintf(want, sizeof(want), API_PAGE_TOKEN_VERSION ":%s:", list);
	if (wl < 0 || (size_t)wl >= sizeof(want) || m < wl || memcmp(plain, want, (size_t)wl) != 0)
		return -EINVAL;
	idlen = (size_t)(m - wl);
	if (!api_query__id_ok((const char *)plain + wl, idlen, id_prefix))
		return -EINVAL;
	memcpy(after, plain + wl, idlen);
	after[idlen] = '\0';
	return 0;
}

/* Say what is wrong in err and refuse. */
#define API_QUERY_FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

#define API_QUERY_END INT_MAX

/* The next parameter of the query string at *p (up to end): one of keys
 * (NULL-terminated, at most 32; takes says which, for the messages), its
 * value %-decoded into val.  Its index in keys, API_QUERY_END when none
 * is left, or -EINVAL with err: unknown, given twice (*seen has a bit per
 * key given), without a value, or a value that does not decode. */
static int api_query__next(const char **p, const char *end, const char *const *keys, const char *takes, unsigned *seen,
			   char *val, size_t vlen, char *err, size_t errlen)
{
	while (*p && *p < end) {
		const char *s = *p, *amp = memchr(s, '&', (size_t)(end - s));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(s, '=', (size_t)(stop - s));
		size_t kl = (size_t)((eq ? eq : stop) - s);
		char key[24];
		int k;

		*p = amp ? amp + 1 : end;
		if (stop == s) /* "a=1&&b=2", a trailing '&' */
			continue;
		if (kl >= sizeof(key) || api_json_decode_segment(s, kl, key, sizeof(key)) < 0 || !key[0])
			API_QUERY_FAIL("unknown query parameter '%.*s'; %s", (int)(kl > 40 ? 40 : kl), s, takes);
		for (k = 0; keys[k] && strcmp(keys[k], key) != 0; k++)
			;
		if (!keys[k])
			API_QUERY_FAIL("unknown query parameter '%s'; %s", key, takes);
		if (*seen & (1u << k))
			API_QUERY_FAIL("query parameter '%s' is given twice; give it once", key);
		*seen |= 1u << k;
		if (!eq)
			API_QUERY_FAIL("query parameter '%s' needs a value ('%s=...')", key, key);
		if (api_json_decode_segment(eq + 1, (size_t)(stop - eq - 1), val, vlen) < 0)
			API_QUERY_FAIL("query parameter '%s' has a bad %%-escape, a '/', a control character or is too "
				       "long", key);
		return k;
	}
	return API_QUERY_END;
}

int api_query_parse_list(const char *q, size_t qlen, const uint8_t page_key[API_PAGE_KEY_LEN], const char *list,
			 const char *id_prefix, unsigned allowed, struct api_list_query *out, char *err, size_t errlen)
{
	struct api_list_query res = { .limit = API_LIST_LIMIT_DEFAULT };
	const char *p = q, *end = q ? q + qlen : NULL, *keys[6];
	char takes[80], val[API_QUERY_VALUE_MAX];
	unsigned seen = 0;
	size_t nk = 0, n;
	int k;

	keys[nk++] = "limit";
	keys[nk++] = "page_token";
	if (allowed & API_QUERY_STATE)
		keys[nk++] = "state";
	if (allowed & API_QUERY_BOARD)
		keys[nk++] = "board";
	if (allowed & API_QUERY_LABEL)
		keys[nk++] = "label";
	keys[nk] = NULL;
	n = (size_t)snprintf(takes, sizeof(takes), "this list takes");
	for (size_t i = 0; i < nk && n < sizeof(takes); i++)
		n += (size_t)snprintf(takes + n, sizeof(takes) - n, "%s %s", i ? "," : "", keys[i]);
	while ((k = api_query__next(&p, end, keys, takes, &seen, val, sizeof(val), err, errlen)) != API_QUERY_END) {
		const char *key;

		if (k < 0)
			return k;
		key = keys[k];
		if (strcmp(key, "limit") == 0) {
			uint64_t v;
			if (sky_parse_uint(val, 1, API_LIST_LIMIT_MAX, &v) < 0)
				API_QUERY_FAIL("limit must be a whole number from 1 to %u (the default is %u)",
					       API_LIST_LIMIT_MAX, API_LIST_LIMIT_DEFAULT);
			res.limit = (uint32_t)v;
		} else if (strcmp(key, "page_token") == 0) {
			if (api_page_token_decode(page_key, val, list, id_prefix, res.after) < 0)
				API_QUERY_FAIL("page_token is not one this list gave; pass the next_page_token "
						       "of the previous page of GET /v1/%s unchanged, or none for the first page", list);
		} else if (strcmp(key, "state") == 0) {
			if (!val[0] || strlen(val) >= sizeof(res.state))
				API_QUERY_FAIL("state must be a state name of %s (1 to 31 bytes)", list);
			memcpy(res.state, val, strlen(val) + 1);
		} else if (strcmp(key, "label") == 0) {
			if (api_label_filter_parse(val, res.label_key, res.label_value, &res.label_has_value) < 0)
				API_QUERY_FAIL("label must be KEY=VALUE or KEY (%%3D for '=' in a URL is fine): a key of "
					       "1 to %u bytes of letters, digits, '.', '_', '-' and '/', a value of at most %u",
					       API_LABEL_KEY_MAX, API_LABEL_VALUE_MAX);
		} else {
			if (!val[0] || strlen(val) >= sizeof(res.board))
				API_QUERY_FAIL("board must be a board's id or name (1 to 63 bytes)");
			memcpy(res.board, val, strlen(val) + 1);
		}
	}
	*out = res;
	return 0;
}

/* ---- GET /v1/events ---- */

static bool api_query__word(const char *v, size_t max, bool dots)
{
	size_t n = strlen(v);

	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (dots ? c == '.' : c == '-')))
			return false;
	}
	return true;
}

static bool api_query__id_or_name(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

static const char *const api_query__events_keys[] = { "limit", "page_token", "since", "type", "kind", "id", "watch",
						       "heartbeat", NULL };

int api_query_parse_events(const char *q, size_t qlen, const uint8_t page_key[API_PAGE_KEY_LEN], struct api_events_query *out,
			   char *err, size_t errlen)
{
	struct api_events_query res = { .limit = API_LIST_LIMIT_DEFAULT, .heartbeat_ms = API_EVENTS_HEARTBEAT_DEFAULT_MS };
	const char *p = q, *end = q ? q + qlen : NULL;
	char val[API_PAGE_TOKEN_MAX + 1];
	unsigned seen = 0;
	int k;

	while ((k = api_query__next(&p, end, api_query__events_keys, "GET /v1/events takes limit, page_token, since, "
				    "type, kind, id, watch and heartbeat", &seen, val, sizeof(val), err, errlen)) !=
	       API_QUERY_END) {
		uint64_t v;

		if (k < 0)
			return k;
		switch (k) {
		case 0:
			if (sky_parse_uint(val, 1, API_LIST_LIMIT_MAX, &v) < 0)
				API_QUERY_FAIL("limit must be a whole number from 1 to %u (the default is %u)",
					       API_LIST_LIMIT_MAX, API_LIST_LIMIT_DEFAULT);
			res.limit = (uint32_t)v;
			break;
		case 1: {
			char after[DB_ID_MAX];
			if (api_page_token_decode(page_key, val, "events", "evt-", after) < 0 ||
			    sky_parse_uint(after + 4, 1, INT64_MAX, &v) < 0)
				API_QUERY_FAIL("page_token is not one this list gave; pass the next_page_token "
					       "of the previous page of GET /v1/events unchanged, or none for the first page");
			res.after = (int64_t)v;
			break;
		}
		case 2:
			if (sky_parse_uint(val, 0, INT64_MAX, &v) < 0)
				API_QUERY_FAIL("since must be a resource version: a whole number from 0 (the "
					       "resource_version of an event or of a list)");
			res.has_since = true;
			res.since = (int64_t)v;
			break;
		case 3:
			if (!api_query__word(val, sizeof(res.type), true))
				API_QUERY_FAIL("type must be an event type such as guest.state (a-z, 0-9, '_' and '.', "
					       "at most %zu bytes)", sizeof(res.type) - 1);
			memcpy(res.type, val, strlen(val) + 1);
			break;
		case 4:
			if (!api_query__word(val, sizeof(res.kind), false))
				API_QUERY_FAIL("kind must be a kind of object: board, guest, image, token or credential");
			memcpy(res.kind, val, strlen(val) + 1);
			break;
		case 5:
			if (!api_query__id_or_name(val, sizeof(res.id)))
				API_QUERY_FAIL("id must be an object's id such as gst-0a1b2c, or a credential's name "
					       "(A-Z, a-z, 0-9, '.', '_', '-', at most %zu bytes)", sizeof(res.id) - 1);
			memcpy(res.id, val, strlen(val) + 1);
			break;
		case 6:
			if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0)
				res.watch = true;
			else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
				res.watch = false;
			else
				API_QUERY_FAIL("watch must be true or false");
			break;
		default:
			if (sky_parse_duration_ms(val, &v) < 0 || v < API_EVENTS_HEARTBEAT_MIN_MS ||
			    v > API_EVENTS_HEARTBEAT_MAX_MS)
				API_QUERY_FAIL("heartbeat must be a duration from %ums to %us, such as 15s (the default)",
					       API_EVENTS_HEARTBEAT_MIN_MS, API_EVENTS_HEARTBEAT_MAX_MS / 1000);
			res.heartbeat_ms = v;
			break;
		}
	}
	if (res.watch && (seen & 3u))
		API_QUERY_FAIL("a watch takes no limit or page_token: it sends every event after since; list "
			       "without watch=true to page");
	if (!res.watch && (seen & (1u << 7)))
		API_QUERY_FAIL("heartbeat is for a watch (watch=true)");
	*out = res;
	return 0;
}
