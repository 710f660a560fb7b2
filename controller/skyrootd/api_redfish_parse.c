/* What Redfish clients send (api_redfish.h): the Basic header, session
 * logins, reset actions and boot-override patches.  JSON through jansson;
 * every string bounded and printable before anyone uses it. */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "controller/skyrootd/api_redfish.h"

/* The Authorization header is at most 512 bytes (http.c). */
#define RF_BASIC_B64_MAX 512

static bool rf__printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

int rf_parse_basic(const char *v, size_t n, char user[RF_USER_MAX], char secret[RF_SECRET_MAX])
{
	unsigned char dec[RF_BASIC_B64_MAX];
	const char *colon;
	int dlen, r = -EINVAL;
	size_t pad = 0, ul, sl;

	while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n < 6 || strncasecmp(v, "Basic", 5) != 0 || (v[5] != ' ' && v[5] != '\t'))
		return -ENOENT;
	v += 6;
	n -= 6;
	while (n > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		n--;
	}
	if (n == 0 || n % 4 != 0 || n > RF_BASIC_B64_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			  ch == '+' || ch == '/' || (ch == '=' && i >= n - 2);
		if (!ok || (pad && ch != '='))
			return -EINVAL;
		if (ch == '=')
			pad++;
	}
	dlen = EVP_DecodeBlock(dec, (const unsigned char *)v, (int)n);
	if (dlen < 0 || (size_t)dlen < pad)
		goto out;
	dlen -= (int)pad;
	colon = memchr(dec, ':', (size_t)dlen);
	if (!colon)
		goto out;
	ul = (size_t)(colon - (const char *)dec);
	sl = (size_t)dlen - ul - 1;
	if (ul == 0 || ul >= RF_USER_MAX || sl == 0 || sl >= RF_SECRET_MAX || !rf__printable((char *)dec, (size_t)dlen) ||
	    memchr(dec, '\0', (size_t)dlen))
		goto out;
	memcpy(user, dec, ul);
	user[ul] = '\0';
	memcpy(secret, colon + 1, sl);
	secret[sl] = '\0';
	r = 0;
out:
	OPENSSL_cleanse(dec, sizeof(dec));
	return r;
}

static json_t *rf__load(const void *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o;

	if (!body || len == 0) {
		snprintf(err, errlen, "the request needs a JSON object body");
		return NULL;
	}
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		snprintf(err, errlen, "the body is not JSON: %.100s (line %d)", je.text, je.line);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(err, errlen, "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* o[key] as a bounded printable string into out; absent: "" unless required. */
static int rf__string(json_t *o, const char *key, bool required, char *out, size_t max, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	out[0] = '\0';
	if (!v) {
		if (!required)
			return 0;
		snprintf(err, errlen, "the property '%s' is missing", key);
		return -EINVAL;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "the property '%s' must be a string", key);
		return -EINVAL;
	}
	n = json_string_length(v);
	if (n == 0 || n >= max || memchr(json_string_value(v), '\0', n) || !rf__printable(json_string_value(v), n)) {
		snprintf(err, errlen, "the property '%s' must be 1 to %zu printable characters", key, max - 1);
		return -EINVAL;
	}
	memcpy(out, json_string_value(v), n + 1);
	return 0;
}

/* Every key of o is one of names (NULL-ended); else -EINVAL naming it. */
static int rf__only(json_t *o, const char *const *names, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		bool known = false;
		(void)v;
		for (size_t i = 0; names[i]; i++)
			known |= strcmp(key, names[i]) == 0;
		/* Annotations (@odata.*, @Redfish.*) are the client's business. */
		if (!known && key[0] != '@') {
			snprintf(err, errlen, "the property '%.64s' cannot be changed here", key);
			return -EINVAL;
		}
	}
	return 0;
}

int rf_parse_session(const void *body, size_t len, char user[RF_USER_MAX], char secret[RF_SECRET_MAX],
		     char *err, size_t errlen)
{
	json_t *o = rf__load(body, len, err, errlen);
	int r;

	if (!o)
		return -EINVAL;
	r = rf__string(o, "UserName", true, user, RF_USER_MAX, err, errlen);
	if (r == 0)
		r = rf__string(o, "Password", true, secret, RF_SECRET_MAX, err, errlen);
	json_decref(o);
	return r;
}

int rf_parse_reset(const void *body, size_t len, char type[RF_ENUM_MAX], char *err, size_t errlen)
{
	json_t *o = rf__load(body, len, err, errlen);
	int r;

	if (!o)
		return -EINVAL;
	r = rf__string(o, "ResetType", true, type, RF_ENUM_MAX, err, errlen);
	json_decref(o);
	return r;
}

static int rf__one_of(const char *key, const char *v, const char *const *allowed, char *err, size_t errlen)
{
	if (!v[0])
		return 0;
	for (size_t i = 0; allowed[i]; i++)
		if (strcmp(v, allowed[i]) == 0)
			return 0;
	snprintf(err, errlen, "'%s' is not an allowed value of %s", v, key);
	return -EINVAL;
}

int rf_parse_boot_patch(const void *body, size_t len, struct rf_boot_patch *out, char *err, size_t errlen)
{
	static const char *const top[] = { "Boot", NULL };
	static const char *const boot[] = { "BootSourceOverrideTarget", "BootSourceOverrideEnabled",
					    "BootSourceOverrideMode", NULL };
	static const char *const targets[] = { "None", "Pxe", NULL };
	static const char *const enabled[] = { "Disabled", "Once", "Continuous", NULL };
	static const char *const modes[] = { "UEFI", "Legacy", NULL };
	json_t *o = rf__load(body, len, err, errlen), *b;
	int r;

	memset(out, 0, sizeof(*out));
	if (!o)
		return -EINVAL;
	r = rf__only(o, top, err, errlen);
	b = json_object_get(o, "Boot");
	if (r == 0 && !json_is_object(b)) {
		snprintf(err, errlen, "the body needs a 'Boot' object");
		r = -EINVAL;
	}
	if (r == 0)
		r = rf__only(b, boot, err, errlen);
	if (r == 0)
		r = rf__string(b, "BootSourceOverrideTarget", false, out->target, RF_ENUM_MAX, err, errlen);
	if (r == 0)
		r = rf__string(b, "BootSourceOverrideEnabled", false, out->enabled, RF_ENUM_MAX, err, errlen);
	if (r == 0)
		r = rf__string(b, "BootSourceOverrideMode", false, out->mode, RF_ENUM_MAX, err, errlen);
	if (r == 0)
		r = rf__one_of("BootSourceOverrideTarget", out->target, targets, err, errlen);
	if (r == 0)
		r = rf__one_of("BootSourceOverrideEnabled", out->enabled, enabled, err, errlen);
	if (r == 0)
		r = rf__one_of("BootSourceOverrideMode", out->mode, modes, err, errlen);
	if (r == 0 && !out->target[0] && !out->enabled[0] && !out->mode[0]) {
		snprintf(err, errlen, "the 'Boot' object changes nothing");
		r = -EINVAL;
	}
	json_decref(o);
	return r;
}
