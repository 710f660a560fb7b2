/* The query strings of the API's lists: limit, page_token, the filters,
 * and the page tokens (docs/api.md, "Lists").
 *
 * A page token is base64url (RFC 4648, no padding) of "p1:LIST:ID", ID
 * the last item of the page before.  It is opaque to clients but not
 * secret: it is validated (the list it came from, the id's form), so a
 * forged or altered token is a 400 and never another list's page. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "controller/skyrootd/api_json.h"
#include "controller/skyrootd/api_query.h"

#define API_PAGE_TOKEN_VERSION "p1"
/* The longest value of any parameter, decoded. */
#define API_QUERY_VALUE_MAX 128

int api_page_token_encode(const char *list, const char *last_id, char *out, size_t outlen)
{
	char plain[API_PAGE_TOKEN_MAX];
	unsigned char b64[API_PAGE_TOKEN_MAX * 2];
	int n = snprintf(plain, sizeof(plain), API_PAGE_TOKEN_VERSION ":%s:%s", list, last_id);
	int m;

	if (n < 0 || (size_t)n >= sizeof(plain) || (size_t)(n + 2) / 3 * 4 >= sizeof(b64))
		return -ENAMETOOLONG;
	m = EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
	while (m > 0 && b64[m - 1] == '=')
		m--;
	if ((size_t)m >= outlen)
		return -ENAMETOOLONG;
	for (int i = 0; i < m; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	out[m] = '\0';
	return 0;
}

static bool api_query__id_ok(const char *id, const char *id_prefix)
{
	size_t pl = strlen(id_prefix), n = strlen(id);

	if (n <= pl || n >= DB_ID_MAX || strncmp(id, id_prefix, pl) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

int api_page_token_decode(const char *tok, const char *list, const char *id_prefix, char after[DB_ID_MAX])
{
	unsigned char b64[API_PAGE_TOKEN_MAX + 4], plain[API_PAGE_TOKEN_MAX];
	size_t n = strlen(tok), pad;
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
	if (m <= 0 || (size_t)m >= sizeof(plain))
		return -EINVAL;
	plain[m] = '\0';
	if (memchr(plain, '\0', (size_t)m))
		return -EINVAL;
	wl = snprintf(want, sizeof(want), API_PAGE_TOKEN_VERSION ":%s:", list);
	if (wl < 0 || (size_t)wl >= sizeof(want) || strncmp((const char *)plain, want, (size_t)wl) != 0)
		return -EINVAL;
	if (!api_query__id_ok((const char *)plain + wl, id_prefix))
		return -EINVAL;
	/* Re-encoding must give the same token: one token per page, no aliases. */
	{
		char again[API_PAGE_TOKEN_MAX + 1];
		if (api_page_token_encode(list, (const char *)plain + wl, again, sizeof(again)) < 0 ||
		    strcmp(again, tok) != 0)
			return -EINVAL;
	}
	snprintf(after, DB_ID_MAX, "%s", (const char *)plain + wl);
	return 0;
}

#define API_Q_SEEN_LIMIT (1u << 8)
#define API_Q_SEEN_TOKEN (1u << 9)

/* Say what is wrong in err and refuse. */
#define API_QUERY_FAIL(...) return (snprintf(err, errlen, __VA_ARGS__), -EINVAL)

int api_query_parse_list(const char *q, size_t qlen, const char *list, const char *id_prefix, unsigned allowed,
			 struct api_list_query *out, char *err, size_t errlen)
{
	struct api_list_query res = { .limit = API_LIST_LIMIT_DEFAULT };
	unsigned seen = 0;
	const char *p = q, *end = q ? q + qlen : NULL;
	char filters[64];

	snprintf(filters, sizeof(filters), "limit, page_token%s%s", (allowed & API_QUERY_STATE) ? ", state" : "",
		 (allowed & API_QUERY_BOARD) ? ", board" : "");
	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		char key[24], val[API_QUERY_VALUE_MAX];
		size_t kl = (size_t)((eq ? eq : stop) - p);
		unsigned bit;

		if (stop == p) { /* "a=1&&b=2", a trailing '&' */
			p = amp ? amp + 1 : end;
			continue;
		}
		if (kl >= sizeof(key) || api_json_decode_segment(p, kl, key, sizeof(key)) < 0 || !key[0])
			API_QUERY_FAIL("unknown query parameter '%.*s'; this list takes %s", (int)(kl > 40 ? 40 : kl), p,
				       filters);
		if (!eq)
			API_QUERY_FAIL("query parameter '%s' needs a value ('%s=...')", key, key);
		if (api_json_decode_segment(eq + 1, (size_t)(stop - eq - 1), val, sizeof(val)) < 0)
			API_QUERY_FAIL("query parameter '%s' has a bad %%-escape, a '/', a control character "
					       "or is too long", key);
		if (strcmp(key, "limit") == 0)
			bit = API_Q_SEEN_LIMIT;
		else if (strcmp(key, "page_token") == 0)
			bit = API_Q_SEEN_TOKEN;
		else if (strcmp(key, "state") == 0 && (allowed & API_QUERY_STATE))
			bit = API_QUERY_STATE;
		else if (strcmp(key, "board") == 0 && (allowed & API_QUERY_BOARD))
			bit = API_QUERY_BOARD;
		else
			API_QUERY_FAIL("unknown query parameter '%s'; this list takes %s", key, filters);
		if (seen & bit)
			API_QUERY_FAIL("query parameter '%s' is given twice; give it once", key);
		seen |= bit;
		if (bit == API_Q_SEEN_LIMIT) {
			uint64_t v;
			if (sky_parse_uint(val, 1, API_LIST_LIMIT_MAX, &v) < 0) {
				snprintf(err, errlen, "limit must be a whole number from 1 to %u (the default is %u)",
					 API_LIST_LIMIT_MAX, API_LIST_LIMIT_DEFAULT);
				return -EINVAL;
			}
			res.limit = (uint32_t)v;
		} else if (bit == API_Q_SEEN_TOKEN) {
			if (api_page_token_decode(val, list, id_prefix, res.after) < 0)
				API_QUERY_FAIL("page_token is not one this list gave; pass the next_page_token "
						       "of the previous page of GET /v1/%s unchanged, or none for the first page", list);
		} else if (bit == API_QUERY_STATE) {
			if (!val[0] || strlen(val) >= sizeof(res.state))
				API_QUERY_FAIL("state must be a state name of %s (1 to 31 bytes)", list);
			snprintf(res.state, sizeof(res.state), "%s", val);
		} else {
			if (!val[0] || strlen(val) >= sizeof(res.board))
				API_QUERY_FAIL("board must be a board's id or name (1 to 63 bytes)");
			snprintf(res.board, sizeof(res.board), "%s", val);
		}
		p = amp ? amp + 1 : end;
	}
	*out = res;
	return 0;
}
