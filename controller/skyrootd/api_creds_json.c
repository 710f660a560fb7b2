/* The bodies of /v1/credentials and /v1/audit (api_creds_json.h). */
#include "controller/skyrootd/api_creds_json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "common/util.h"

#define ACJ_CREATE_EXAMPLE "{\"name\": \"ci\", \"role\": \"operator\", \"ttl_seconds\": 86400}"
#define ACJ_ROTATE_EXAMPLE "{\"grace_seconds\": 300}"

static bool acj_blank(const void *body, size_t len)
{
	const char *s = body;

	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* The body as a JSON object, or NULL with err set. */
static json_t *acj_object(const void *body, size_t len, const char *example, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!root) {
		snprintf(err, errlen, "the body is not valid JSON (%.80s, line %d column %d); send an object like %s",
			 jerr.text, jerr.line, jerr.column, example);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "the body must be a JSON object like %s", example);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* A whole number field in lo..hi. */
static int acj_int(json_t *v, const char *key, json_int_t lo, json_int_t hi, int64_t *out, char *err, size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v)) {
		snprintf(err, errlen, "%s must be a whole number of seconds between %lld and %lld", key, (long long)lo,
			 (long long)hi);
		return -EINVAL;
	}
	n = json_integer_value(v);
	if (n < lo || n > hi) {
		snprintf(err, errlen, "%s must be between %lld and %lld seconds; got %lld", key, (long long)lo,
			 (long long)hi, (long long)n);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

int api_creds_parse_create(const void *body, size_t len, struct api_cred_request *out, char *err, size_t errlen)
{
	struct api_cred_request req = { .role = CREDS_NONE };
	const char *key;
	json_t *root, *v;
	int r = -EINVAL;

	if (len == 0 || acj_blank(body, len)) {
		snprintf(err, errlen, "the body must name the credential and its role, like %s", ACJ_CREATE_EXAMPLE);
		return -EINVAL;
	}
	root = acj_object(body, len, ACJ_CREATE_EXAMPLE, err, errlen);
	if (!root)
		return -EINVAL;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "name") == 0) {
			const char *s = json_string_value(v);
			if (!s || !creds_name_ok(s)) {
				snprintf(err, errlen, "name must be 1 to %d letters, digits, '.', '_' or '-' (not first)",
					 CREDS_NAME_MAX - 1);
				goto out;
			}
			snprintf(req.name, sizeof(req.name), "%s", s);
		} else if (strcmp(key, "role") == 0) {
			if (creds_role_parse(json_string_value(v), &req.role) < 0) {
				snprintf(err, errlen, "role must be reader, operator or admin");
				goto out;
			}
		} else if (strcmp(key, "ttl_seconds") == 0) {
			if (!json_is_null(v) && acj_int(v, key, 60, API_CRED_TTL_MAX, &req.ttl_seconds, err, errlen) < 0)
				goto out;
		} else {
			snprintf(err, errlen, "unknown field '%.64s'; the fields are name, role and ttl_seconds", key);
			goto out;
		}
	}
	if (!req.name[0] || req.role == CREDS_NONE) {
		snprintf(err, errlen, "the body must have a name and a role, like %s", ACJ_CREATE_EXAMPLE);
		goto out;
	}
	*out = req;
	r = 0;
out:
	json_decref(root);
	return r;
}

int api_creds_parse_rotate(const void *body, size_t len, int64_t *grace, char *err, size_t errlen)
{
	const char *key;
	json_t *root, *v;
	int64_t g = 0;
	int r = -EINVAL;

	if (len == 0 || acj_blank(body, len)) {
		*grace = 0;
		return 0;
	}
	root = acj_object(body, len, ACJ_ROTATE_EXAMPLE, err, errlen);
	if (!root)
		return -EINVAL;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "grace_seconds") != 0) {
			snprintf(err, errlen, "unknown field '%.64s'; the only field is grace_seconds", key);
			goto out;
		}
		if (!json_is_null(v) && acj_int(v, key, 0, CREDS_GRACE_MAX, &g, err, errlen) < 0)
			goto out;
	}
	*grace = g;
	r = 0;
out:
	json_decref(root);
	return r;
}

int api_creds_parse_limit(const char *query, size_t len, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	char val[24];
	size_t i = 0;

	*out = max < AUDIT_LIMIT_DEFAULT ? max : AUDIT_LIMIT_DEFAULT;
	while (query && i < len) {
		size_t end = i, vl;
		while (end < len && query[end] != '&')
			end++;
		if (end - i > 6 && memcmp(query + i, "limit=", 6) == 0) {
			uint64_t n;
			vl = end - i - 6;
			if (vl >= sizeof(val))
				goto bad;
			memcpy(val, query + i + 6, vl);
			val[vl] = '\0';
			if (sky_parse_uint(val, 1, max, &n) < 0)
				goto bad;
			*out = n;
		}
		i = end + 1;
	}
	return 0;
bad:
	snprintf(err, errlen, "limit must be a whole number from 1 to %llu", (unsigned long long)max);
	return -EINVAL;
}

/* RFC 3339 UTC, or null for 0 ("never"). */
static json_t *acj_time(int64_t t)
{
	char buf[32];

	if (t <= 0)
		return json_null();
	sky_fmt_time(t, buf, sizeof(buf));
	return json_string(buf);
}

json_t *api_creds_json(const struct creds_row *c, int64_t now)
{
	static const char *const states[] = { "active", "expired", "revoked" };
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	bad |= json_object_set_new(o, "name", json_string(c->name));
	bad |= json_object_set_new(o, "role", json_string(creds_role_name(c->role)));
	bad |= json_object_set_new(o, "state", json_string(states[creds_state(c, now)]));
	bad |= json_object_set_new(o, "created_at", acj_time(c->created_at));
	bad |= json_object_set_new(o, "expires_at", acj_time(c->expires_at));
	bad |= json_object_set_new(o, "rotated_at", acj_time(c->rotated_at));
	bad |= json_object_set_new(o, "old_secret_until", acj_time(c->old_until > now ? c->old_until : 0));
	bad |= json_object_set_new(o, "revoked_at", acj_time(c->revoked_at));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *api_creds_audit_json(const struct audit_entry *e)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	bad |= json_object_set_new(o, "seq", json_integer(e->seq));
	bad |= json_object_set_new(o, "at", acj_time(e->at));
	bad |= json_object_set_new(o, "credential", json_string(e->credential));
	bad |= json_object_set_new(o, "peer", json_string(e->peer));
	bad |= json_object_set_new(o, "method", json_string(e->method));
	bad |= json_object_set_new(o, "path", json_string(e->path));
	bad |= json_object_set_new(o, "status", json_integer(e->status));
	bad |= json_object_set_new(o, "request_id", json_string(e->request_id));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
