#include "controller/skyrootd/api_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/parse.h"
#include "common/util.h"
#include "skyroot.pb-c.h"

/* ---- strings ---- */

json_t *api_json_strn(const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n, i = 0;
	json_t *j;
	char *copy;

	if (!s)
		return json_null();
	n = strnlen(s, max);
	/* Cut at max: a character cut in two is left out whole (s[max] is
	 * not read: s may be a field of exactly max bytes). */
	if (n == max && n > 0) {
		size_t lead = n - 1;

		while (lead > 0 && n - lead < 4 && (u[lead] & 0xc0) == 0x80)
			lead--;
		if (u[lead] >= 0xc0 && sky_utf8_seq(u + lead, n - lead) == 0)
			n = lead;
	}
	j = json_stringn(s, n);
	if (j)
		return j;
	copy = malloc(n + 1);
	if (!copy)
		return NULL;
	while (i < n) {
		size_t k = sky_utf8_seq(u + i, n - i);
		if (k == 0) {
			copy[i++] = '?';
			continue;
		}
		memcpy(copy + i, s + i, k);
		i += k;
	}
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

static json_t *aj_str(const char *s)
{
	return api_json_strn(s, SIZE_MAX);
}

/* Empty strings mean "none" in the protocol: null. */
static json_t *aj_str_or_null(const char *s, size_t max)
{
	if (!s || s[0] == '\0')
		return json_null();
	return api_json_strn(s, max);
}

/* RFC 3339 UTC, or null for 0 ("never"). */
json_t *api_json_time(int64_t t)
{
	char buf[32];

	if (t <= 0)
		return json_null();
	sky_fmt_time(t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *aj_u64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* The json_*_set_new calls steal the value even on failure and treat a NULL
 * value as a failure, so a whole object is built with `bad |= ...` and
 * checked once. */
static int aj_set(json_t *o, const char *key, json_t *v)
{
	return json_object_set_new(o, key, v) == 0 ? 0 : 1;
}

json_t *api_json_error(const char *code, const char *fmt, ...)
{
	char msg[512];
	json_t *inner, *o;
	va_list ap;
	int bad = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	inner = json_object();
	o = json_object();
	if (!inner || !o) {
		json_decref(inner);
		json_decref(o);
		return NULL;
	}
	bad |= aj_set(inner, "code", json_string(code));
	bad |= aj_set(inner, "message", aj_str(msg));
	bad |= aj_set(o, "error", inner);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- boards ---- */

static const char *aj_firmware_name(Skyroot__Firmware f)
{
	switch (f) {
	case SKYROOT__FIRMWARE__FIRMWARE_UEFI:
		return "uefi";
	case SKYROOT__FIRMWARE__FIRMWARE_BIOS:
		return "bios";
	default:
		return "unknown";
	}
}

static json_t *aj_virt_flags(const Skyroot__Hello *h)
{
	json_t *a = json_array();
	int bad = 0;

	if (!a)
		return NULL;
	for (size_t i = 0; i < h->n_virt_flags; i++)
		bad |= json_array_append_new(a, aj_str(h->virt_flags[i])) ? 1 : 0;
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *aj_dmi(const Skyroot__Dmi *d)
{
	json_t *o;
	int bad = 0;

	if (!d)
		return json_null();
	o = json_object();
	if (!o)
		return NULL;
	bad |= aj_set(o, "vendor", aj_str(d->vendor));
	bad |= aj_set(o, "product", aj_str(d->product));
	bad |= aj_set(o, "serial", aj_str(d->serial));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *aj_pci_device(const Skyroot__PciDevice *d)
{
	char vd[16], cls[16];
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	snprintf(vd, sizeof(vd), "%04x:%04x", d->vendor & 0xffff, d->device & 0xffff);
	snprintf(cls, sizeof(cls), "0x%06x", d->class_code & 0xffffff);
	bad |= aj_set(o, "address", aj_str(d->address));
	bad |= aj_set(o, "vendor_device", json_string(vd));
	bad |= aj_set(o, "class", json_string(cls));
	bad |= aj_set(o, "driver", aj_str_or_null(d->driver, SIZE_MAX));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *aj_iommu_groups(const Skyroot__Hello *h)
{
	json_t *a = json_array();
	int bad = 0;

	if (!a)
		return NULL;
	for (size_t i = 0; i < h->n_iommu_groups && !bad; i++) {
		const Skyroot__IommuGroup *g = h->iommu_groups[i];
		json_t *o = json_object(), *devs = json_array();

		if (!o || !devs) {
			json_decref(o);
			json_decref(devs);
			bad = 1;
			break;
		}
		for (size_t k = 0; k < g->n_devices; k++)
			bad |= json_array_append_new(devs, aj_pci_device(g->devices[k])) ? 1 : 0;
		bad |= aj_set(o, "id", json_integer(g->id));
		bad |= aj_set(o, "devices", devs);
		bad |= json_array_append_new(a, o) ? 1 : 0;
	}
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *aj_nics(const Skyroot__Hello *h)
{
	json_t *a = json_array();
	int bad = 0;

	if (!a)
		return NULL;
	for (size_t i = 0; i < h->n_nics && !bad; i++) {
		const Skyroot__Nic *n = h->nics[i];
		json_t *o = json_object();

		if (!o) {
			bad = 1;
			break;
		}
		bad |= aj_set(o, "name", aj_str(n->name));
		bad |= aj_set(o, "mac", aj_str(n->mac));
		bad |= aj_set(o, "link", json_boolean(n->link));
		/* -1 on the wire = the kernel does not know the speed. */
		bad |= aj_set(o, "speed_mbps", n->speed_mbps < 0 ? json_null() : json_integer(n->speed_mbps));
		bad |= aj_set(o, "bridge", n->bridge && n->bridge[0] ? aj_str(n->bridge) : json_null());
		bad |= json_array_append_new(a, o) ? 1 : 0;
	}
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

json_t *api_json_board(const struct db_board *b, bool online, int64_t last_seen)
{
	Skyroot__Hello *h = NULL;
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	/* A board that enrolled but never sent its inventory, or whose stored
	 * inventory does not parse, still lists: its inventory fields are null. */
	if (b->inventory && b->inventory_len > 0)
		h = skyroot__hello__unpack(NULL, b->inventory_len, b->inventory);

	bad |= aj_set(o, "id", api_json_strn(b->id, sizeof(b->id)));
	bad |= aj_set(o, "name", api_json_strn(b->name, sizeof(b->name)));
	bad |= aj_set(o, "state", json_string(online ? "online" : b->baremetal ? "baremetal" : "offline"));
	bad |= aj_set(o, "uuid", aj_str_or_null(b->uuid, sizeof(b->uuid)));
	bad |= aj_set(o, "cpus", h ? json_integer(h->cpus) : json_null());
	bad |= aj_set(o, "cpu_model", h ? aj_str(h->cpu_model) : json_null());
	bad |= aj_set(o, "virt_flags", h ? aj_virt_flags(h) : json_null());
	bad |= aj_set(o, "memory_bytes", h ? aj_u64(h->memory_bytes) : json_null());
	bad |= aj_set(o, "numa_nodes", h ? json_integer(h->numa_nodes) : json_null());
	bad |= aj_set(o, "kvm", h ? json_boolean(h->kvm) : json_null());
	bad |= aj_set(o, "firmware", h ? json_string(aj_firmware_name(h->firmware)) : json_null());
	bad |= aj_set(o, "dmi", h ? aj_dmi(h->dmi) : json_null());
	bad |= aj_set(o, "iommu_groups", h ? aj_iommu_groups(h) : json_null());
	bad |= aj_set(o, "nics", h ? aj_nics(h) : json_null());
	/* The bridge guests' NICs join: {name, uplink, up, uplink_link, vlan_filtering}. */
	bad |= aj_set(o, "bridge", h && h->bridge ? json_pack("{s:o, s:o, s:b, s:b, s:b}", "name", aj_str(h->bridge->name),
		"uplink", aj_str(h->bridge->uplink), "up", h->bridge->up, "uplink_link", h->bridge->uplink_link,
		"vlan_filtering", h->bridge->vlan_filtering) : json_null());
	bad |= aj_set(o, "kernel", h ? aj_str(h->kernel_version) : json_null());
	bad |= aj_set(o, "hostname", h ? aj_str(h->hostname) : json_null());
	bad |= aj_set(o, "agent_version", h ? aj_str(h->agent_version) : json_null());
	bad |= aj_set(o, "enrolled_at", api_json_time(b->enrolled_at));
	bad |= aj_set(o, "cert_expires_at", api_json_time(b->cert_not_after));
	bad |= aj_set(o, "last_seen_at", api_json_time(last_seen));
	/* A known machine asked to enroll again with a general token. */
	if (b->reenroll_allowed_until > sky_unix_now()) {
		bad |= aj_set(o, "reenroll", json_string("allowed"));
		bad |= aj_set(o, "reenroll_expires_at", api_json_time(b->reenroll_allowed_until));
	} else if (b->reenroll_pending_at) {
		bad |= aj_set(o, "reenroll", json_string("pending"));
		bad |= aj_set(o, "reenroll_requested_at", api_json_time(b->reenroll_pending_at));
	}

	/* Its TPM identity (db_tpm.h): {ek_sha256, bound_at, last_quote_at,
	 * refused, refused_at, pcr11, firmware, quarantined}; the last two are
	 * the measured-boot gate's (fwgate.h), which api_boards.c fills in. */
	if (b->tpm_ek[0] || b->tpm_refused_at)
		bad |= aj_set(o, "tpm", json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:n, s:n}",
			"ek_sha256", b->tpm_ek[0] ? api_json_strn(b->tpm_ek, sizeof(b->tpm_ek)) : json_null(),
			"bound_at", b->tpm_bound_at ? api_json_time(b->tpm_bound_at) : json_null(),
			"last_quote_at", b->tpm_quote_at ? api_json_time(b->tpm_quote_at) : json_null(),
			"refused", b->tpm_refused_at ? api_json_strn(b->tpm_refused, sizeof(b->tpm_refused)) : json_null(),
			"refused_at", b->tpm_refused_at ? api_json_time(b->tpm_refused_at) : json_null(),
			"pcr11", b->tpm_pcr11[0] ? api_json_strn(b->tpm_pcr11, sizeof(b->tpm_pcr11)) : json_null(),
			"firmware", "quarantined"));
	else
		bad |= aj_set(o, "tpm", json_null());

	if (h)
		skyroot__hello__free_unpacked(h, NULL);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- tokens ---- */

const char *api_json_token_state(const struct db_token *t, int64_t now)
{
	if (t->revoked)
		return "revoked";
	if (t->uses_left == 0)
		return "used";
	if (now >= t->expires_at)
		return "expired";
	return "active";
}

json_t *api_json_token(const struct db_token *t, int64_t now)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	bad |= aj_set(o, "id", api_json_strn(t->id, sizeof(t->id)));
	bad |= aj_set(o, "state", json_string(api_json_token_state(t, now)));
	bad |= aj_set(o, "uses", json_integer(t->uses));
	bad |= aj_set(o, "uses_left", json_integer(t->uses_left));
	bad |= aj_set(o, "created_at", api_json_time(t->created_at));
	bad |= aj_set(o, "expires_at", api_json_time(t->expires_at));
	if (t->board_id[0])
		bad |= aj_set(o, "board", api_json_strn(t->board_id, sizeof(t->board_id)));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *api_json_token_created(const struct db_token *t, const char *secret,
			       const char *ca_pin, const char *controller)
{
	json_t *o, *cmd;
	char *line = NULL;
	int bad = 0;

	if (asprintf(&line, "skyroot.controller=%s skyroot.token=%s skyroot.ca=%s",
		     controller, secret, ca_pin) < 0)
		return NULL;
	cmd = aj_str(line);
	explicit_bzero(line, strlen(line));
	free(line);
	o = json_object();
	if (!o || !cmd) {
		json_decref(o);
		json_decref(cmd);
		return NULL;
	}
	bad |= aj_set(o, "id", api_json_strn(t->id, sizeof(t->id)));
	bad |= aj_set(o, "token", aj_str(secret));
	bad |= aj_set(o, "ca_pin", aj_str(ca_pin));
	bad |= aj_set(o, "controller", aj_str(controller));
	bad |= aj_set(o, "cmdline", cmd);
	bad |= aj_set(o, "uses", json_integer(t->uses));
	bad |= aj_set(o, "uses_left", json_integer(t->uses_left));
	bad |= aj_set(o, "created_at", api_json_time(t->created_at));
	bad |= aj_set(o, "expires_at", api_json_time(t->expires_at));
	if (t->board_id[0])
		bad |= aj_set(o, "board", api_json_strn(t->board_id, sizeof(t->board_id)));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

#define AJ_TOKEN_EXAMPLE "{\"ttl_seconds\": 3600, \"uses\": 1}"

bool api_json_blank(const void *body, size_t len)
{
	const char *s = body;

	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

int api_json_parse_token_request(const void *body, size_t len, struct api_token_request *out,
				 char *err, size_t errlen)
{
	struct api_token_request req = {
		.ttl_seconds = API_TOKEN_TTL_DEFAULT,
		.uses = API_TOKEN_USES_DEFAULT,
	};
	json_error_t jerr;
	const char *key;
	json_t *root, *v;
	int r = -EINVAL;

	if (len == 0 || api_json_blank(body, len)) {
		*out = req;
		return 0;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "the body is not valid JSON (%s, line %d column %d); send an object like %s",
			 jerr.text, jerr.line, jerr.column, AJ_TOKEN_EXAMPLE);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "the body must be a JSON object like %s", AJ_TOKEN_EXAMPLE);
		goto out;
	}
	json_object_foreach(root, key, v) {
		bool is_ttl = strcmp(key, "ttl_seconds") == 0;
		json_int_t n, lo, hi;

		if (!is_ttl && strcmp(key, "uses") != 0 && strcmp(key, "board") != 0) {
			snprintf(err, errlen, "unknown field '%.64s'; the fields are ttl_seconds, uses and board", key);
			goto out;
		}
		if (json_is_null(v))
			continue; /* same as leaving it out: the default */
		if (strcmp(key, "board") == 0) {
			const char *b = json_string_value(v);
			if (!b || !b[0] || strlen(b) >= sizeof(req.board)) {
				snprintf(err, errlen, "board must be the id or name of an enrolled board (1 to %zu "
					 "characters); leave it out for a token any new machine can use",
					 sizeof(req.board) - 1);
				goto out;
			}
			snprintf(req.board, sizeof(req.board), "%s", b);
			continue;
		}
		lo = is_ttl ? SKY_TOKEN_TTL_MIN : SKY_TOKEN_USES_MIN;
		hi = is_ttl ? SKY_TOKEN_TTL_MAX : SKY_TOKEN_USES_MAX;
		if (!json_is_integer(v)) {
			snprintf(err, errlen, "%s must be a whole number between %lld and %lld%s", key,
				 (long long)lo, (long long)hi, is_ttl ? " (seconds)" : "");
			goto out;
		}
		n = json_integer_value(v);
		if (n < lo || n > hi) {
			snprintf(err, errlen, "%s must be between %lld and %lld%s; got %lld", key,
				 (long long)lo, (long long)hi, is_ttl ? " seconds (30 days)" : "",
				 (long long)n);
			goto out;
		}
		if (is_ttl)
			req.ttl_seconds = (int64_t)n;
		else
			req.uses = (uint32_t)n;
	}
	*out = req;
	r = 0;
out:
	json_decref(root);
	return r;
}

/* ---- request bodies ---- */

/* The body as a JSON object, or -EINVAL with a message naming what. */
int api_json_load_object(const void *body, size_t len, const char *what, const char *example, json_t **out,
			 char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	if (len == 0 || api_json_blank(body, len)) {
		snprintf(err, errlen, "the %s body is empty; send an object like %s", what, example);
		return -EINVAL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "the %s body is not valid JSON (%s, line %d column %d); send an object like %s",
			 what, jerr.text, jerr.line, jerr.column, example);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errlen, "the %s body must be a JSON object like %s", what, example);
		return -EINVAL;
	}
	*out = root;
	return 0;
}

/* Every key of o is one of known (NULL-terminated). */
int api_json_known_keys(json_t *o, const char *what, const char *const *known, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		size_t i, n = 0;
		char list[160];

		for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
			;
		if (known[i])
			continue;
		list[0] = '\0';
		for (i = 0; known[i]; i++)
			n += (size_t)snprintf(list + n, n < sizeof(list) ? sizeof(list) - n : 0, "%s%s", i ? ", " : "",
					      known[i]);
		snprintf(err, errlen, "unknown field '%.64s' in %s; known: %s", key, what, list);
		return -EINVAL;
	}
	return 0;
}

/* Copy the string field key into out (outlen bytes incl. the NUL).  Absent
 * or null leaves out as it is and returns 0; 1 when it was set. */
static int aj_copy_str(json_t *o, const char *key, const char *what, char *out, size_t outlen, char *err,
		       size_t errlen)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s.%s must be a string", what, key);
		return -EINVAL;
	}
	n = json_string_length(v);
	if (n >= outlen || memchr(json_string_value(v), '\0', n)) {
		snprintf(err, errlen, "%s.%s is over its limit of %zu bytes (or holds a NUL)", what, key, outlen - 1);
		return -EINVAL;
	}
	memcpy(out, json_string_value(v), n + 1);
	return 1;
}

/* A whole number field in [lo, hi]: 0 (absent or null), 1 (set), -EINVAL. */
int api_json_get_uint(json_t *o, const char *key, const char *what, uint64_t lo, uint64_t hi, const char *unit,
		      uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	json_int_t n;

	if (!v || json_is_null(v))
		return 0;
	n = json_is_integer(v) ? json_integer_value(v) : -1;
	if (!json_is_integer(v) || n < 0 || (uint64_t)n < lo || (uint64_t)n > hi) {
		snprintf(err, errlen, "%s.%s must be a whole number from %" PRIu64 " to %" PRIu64 "%s", what, key, lo,
			 hi, unit);
		return -EINVAL;
	}
	*out = (uint64_t)n;
	return 1;
}

#define AJ_GUEST_EXAMPLE "{\"name\": \"web1\", \"kernel\": \"vmlinuz\", \"memory_bytes\": 268435456}"

int api_json_parse_guest_request(const void *body, size_t len, struct api_guest_body *out, char *err,
				 size_t errlen)
{
	static const char *const known[] = { "name", "board", "kernel", "initrd", "disk", "cmdline", "vcpus",
					     "memory_bytes", "devices", "backend", "nics", NULL };
	static const char what[] = "guest";
	struct api_guest_body *g;
	uint64_t v;
	json_t *root = NULL, *devs;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "the controller ran out of memory");
		return -ENOMEM;
	}
	g->vcpus = API_GUEST_VCPUS_DEFAULT;
	g->memory_bytes = API_GUEST_MEMORY_DEFAULT;
	g->backend[0] = '\0'; /* the board's default (qemu, or skyvmm without QEMU) */
	r = api_json_load_object(body, len, what, AJ_GUEST_EXAMPLE, &root, err, errlen);
	if (r == 0)
		r = api_json_known_keys(root, what, known, err, errlen);
	if (r == 0 && ((r = aj_copy_str(root, "name", what, g->name, sizeof(g->name), err, errlen)) == 0 ||
		       (r > 0 && !g->name[0]))) {
		snprintf(err, errlen, "a guest needs a name (\"name\": \"web1\")");
		r = -EINVAL;
	}
	if (r > 0 && ((r = aj_copy_str(root, "kernel", what, g->kernel, sizeof(g->kernel), err, errlen)) == 0 ||
		      (r > 0 && !g->kernel[0]))) {
		snprintf(err, errlen, "a guest needs a kernel image (\"kernel\": \"<image id or name>\")");
		r = -EINVAL;
	}
	if (r >= 0)
		r = aj_copy_str(root, "board", what, g->board, sizeof(g->board), err, errlen);
	if (r >= 0)
		r = aj_copy_str(root, "initrd", what, g->initrd, sizeof(g->initrd), err, errlen);
	if (r >= 0)
		r = aj_copy_str(root, "disk", what, g->disk, sizeof(g->disk), err, errlen);
	if (r >= 0)
		r = aj_copy_str(root, "cmdline", what, g->cmdline, sizeof(g->cmdline), err, errlen);
	if (r >= 0)
		g->has_cmdline = r > 0;
	if (r >= 0)
		r = aj_copy_str(root, "backend", what, g->backend, sizeof(g->backend), err, errlen);
	if (r >= 0 && g->backend[0] && strcmp(g->backend, "qemu") != 0 && strcmp(g->backend, "libvirt") != 0 &&
	    strcmp(g->backend, "skyvmm") != 0) {
		snprintf(err, errlen, "guest.backend must be qemu, libvirt or skyvmm (absent: the board's default)");
		r = -EINVAL;
	}
	if (r >= 0 && (r = api_json_get_uint(root, "vcpus", what, 1, SKY_GUEST_VCPUS_MAX, "", &v, err, errlen)) > 0)
		g->vcpus = (uint32_t)v;
	if (r >= 0 && (r = api_json_get_uint(root, "memory_bytes", what, SKY_GUEST_MEMORY_MIN, SKY_GUEST_MEMORY_MAX,
					     " (16 MiB to 1 TiB)", &v, err, errlen)) > 0)
		g->memory_bytes = v;
	devs = r >= 0 ? json_object_get(root, "devices") : NULL;
	if (devs && !json_is_null(devs)) {
		size_t i;
		json_t *d;

		if (!json_is_array(devs) || json_array_size(devs) > SKY_GUEST_DEVICES_MAX) {
			snprintf(err, errlen, "guest.devices must be a list of at most %u PCI addresses like 0000:00:03.0",
				 SKY_GUEST_DEVICES_MAX);
			r = -EINVAL;
		} else {
			json_array_foreach(devs, i, d) {
				/* common/parse.h: "BB:DD.F" or "DDDD:BB:DD.F", kept canonical. */
				if (!json_is_string(d) ||
				    sky_parse_pci(json_string_value(d), g->devices[i], sizeof(g->devices[i])) < 0) {
					snprintf(err, errlen, "guest.devices[%zu] is not a PCI address like 0000:00:03.0", i);
					r = -EINVAL;
					break;
				}
				g->n_devices++;
			}
		}
	}
	if (r >= 0)
		r = api_json_parse_nics(root, g->nics, &g->n_nics, err, errlen);
	json_decref(root);
	if (r >= 0)
		*out = *g;
	OPENSSL_cleanse(g, sizeof(*g));
	free(g);
	return r < 0 ? r : 0;
}

#define AJ_FETCH_EXAMPLE "{\"image\": \"<image id or name>\"}"

int api_json_parse_fetch_request(const void *body, size_t len, struct api_fetch_body *out, char *err,
				 size_t errlen)
{
	static const char *const known[] = { "image", NULL };
	struct api_fetch_body f = { "" };
	json_t *root = NULL;
	int r = api_json_load_object(body, len, "fetch", AJ_FETCH_EXAMPLE, &root, err, errlen);

	if (r == 0)
		r = api_json_known_keys(root, "fetch", known, err, errlen);
	if (r == 0 && ((r = aj_copy_str(root, "image", "fetch", f.image, sizeof(f.image), err, errlen)) == 0 ||
		       (r > 0 && !f.image[0]))) {
		snprintf(err, errlen, "say which image to fetch: %s", AJ_FETCH_EXAMPLE);
		r = -EINVAL;
	}
	json_decref(root);
	if (r < 0)
		return r;
	*out = f;
	return 0;
}

#define AJ_BOOT_EXAMPLE "{\"kernel\": \"<image>\", \"initrd\": \"<image>\", \"cmdline\": \"...\"}"

int api_json_parse_boot_request(const void *body, size_t len, struct api_boot_body *out, char *err,
				size_t errlen)
{
	static const char *const known[] = { "kernel", "initrd", "cmdline", NULL };
	struct api_boot_body *b = calloc(1, sizeof(*b));
	json_t *root = NULL;
	int r;

	if (!b) {
		snprintf(err, errlen, "the controller ran out of memory");
		return -ENOMEM;
	}
	r = api_json_load_object(body, len, "boot", AJ_BOOT_EXAMPLE, &root, err, errlen);
	if (r == 0)
		r = api_json_known_keys(root, "boot", known, err, errlen);
	if (r == 0 && ((r = aj_copy_str(root, "kernel", "boot", b->kernel, sizeof(b->kernel), err, errlen)) == 0 ||
		       (r > 0 && !b->kernel[0]))) {
		snprintf(err, errlen, "a boot needs a kernel image: %s", AJ_BOOT_EXAMPLE);
		r = -EINVAL;
	}
	if (r >= 0)
		r = aj_copy_str(root, "initrd", "boot", b->initrd, sizeof(b->initrd), err, errlen);
	if (r >= 0)
		r = aj_copy_str(root, "cmdline", "boot", b->cmdline, sizeof(b->cmdline), err, errlen);
	json_decref(root);
	if (r >= 0)
		*out = *b;
	free(b);
	return r < 0 ? r : 0;
}

/* ---- arrays ---- */

static const char *aj_field(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static int aj_cmp_name(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(aj_field(x, "name"), aj_field(y, "name"));
	return c ? c : strcmp(aj_field(x, "id"), aj_field(y, "id"));
}

int api_json_sort_by_name(json_t *array)
{
	size_t n = json_array_size(array);
	json_t **v;
	int r = 0;

	if (!json_is_array(array))
		return -EINVAL;
	if (n < 2)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(array, i));
	qsort(v, n, sizeof(*v), aj_cmp_name);
	/* Same elements, new order: overwrite slot by slot (cannot fail for
	 * an index inside the array). */
	for (size_t i = 0; i < n; i++)
		if (json_array_set(array, i, v[i]) < 0)
			r = -ENOMEM;
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
	free(v);
	return r;
}

/* ---- paths ---- */

/* One pass of the decoder: validates, counts, and writes when out != NULL. */
static int aj_decode(const char *in, size_t len, char *out, size_t *n_out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;
			if (len - i < 3)
				return -EINVAL;
			hi = sky_hex_digit(in[i + 1]);
			lo = sky_hex_digit(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || c == '/')
			return -EINVAL;
		if (out)
			out[n] = (char)c;
		n++;
	}
	*n_out = n;
	return 0;
}

int api_json_decode_segment(const char *in, size_t len, char *out, size_t outlen)
{
	size_t n;
	int r = aj_decode(in, len, NULL, &n);

	if (r < 0)
		return r;
	if (n >= outlen)
		return -ENAMETOOLONG;
	aj_decode(in, len, out, &n);
	out[n] = '\0';
	return 0;
}

/* ---- images ---- */

int api_json_query_get(const char *q, size_t qlen, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);
	const char *end;

	if (!q)
		return -ENOENT; /* no query at all (NULL + 0 is undefined in C) */
	end = q + qlen;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - q) > klen && memcmp(q, key, klen) == 0 && q[klen] == '=')
			return api_json_decode_segment(q + klen + 1, (size_t)(stop - q - klen - 1), out, outlen) < 0 ?
				       -EINVAL : 0;
		q = amp ? amp + 1 : end;
	}
	return -ENOENT;
}

json_t *api_json_image(const struct store_image *img)
{
	char hex[65];
	json_t *o = json_object();

	if (!o)
		return NULL;
	sky_format_hex(img->sha256, 32, hex);
	if (json_object_set_new(o, "id", aj_str(img->id)) < 0 ||
	    json_object_set_new(o, "name", aj_str(img->name)) < 0 ||
	    json_object_set_new(o, "kind", aj_str(img->kind)) < 0 ||
	    json_object_set_new(o, "format", aj_str(img->format)) < 0 ||
	    json_object_set_new(o, "size_bytes", aj_u64(img->size)) < 0 ||
	    json_object_set_new(o, "sha256", aj_str(hex)) < 0 ||
	    json_object_set_new(o, "chunks", json_integer(img->chunks)) < 0 ||
	    json_object_set_new(o, "chunk_size", json_integer(img->chunk_size)) < 0 ||
	    json_object_set_new(o, "created_at", api_json_time(img->created)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int api_json_board_images(json_t *board, const Skyroot__ImageStatus *st)
{
	json_t *images = json_array(), *fetching = json_array(), *errors = json_array();
	char hex[65];

	if (!images || !fetching || !errors)
		goto fail;
	for (size_t i = 0; st && i < st->n_images; i++) {
		const Skyroot__CachedImage *ci = st->images[i];
		if (ci->sha256.len == 32)
			sky_format_hex(ci->sha256.data, 32, hex);
		else
			hex[0] = '\0';
		if (json_array_append_new(images, json_pack("{s:o, s:s, s:o}", "id", api_json_strn(ci->id, DB_ID_MAX),
							    "sha256", hex, "size_bytes", aj_u64(ci->size))) < 0)
			goto fail;
	}
	for (size_t i = 0; st && i < st->n_fetching; i++) {
		const Skyroot__ImageProgress *p = st->fetching[i];
		if (json_array_append_new(fetching, json_pack("{s:o, s:I, s:I}", "id", api_json_strn(p->id, DB_ID_MAX),
							      "done_chunks", (json_int_t)p->done_chunks,
							      "chunks", (json_int_t)p->chunks)) < 0)
			goto fail;
	}
	for (size_t i = 0; st && i < st->n_errors; i++) {
		const Skyroot__ImageError *e = st->errors[i];
		if (json_array_append_new(errors, json_pack("{s:o, s:o}", "id", api_json_strn(e->id, DB_ID_MAX),
							    "error", api_json_strn(e->error, 512))) < 0)
			goto fail;
	}
	if (json_object_set_new(board, "images", images) < 0 ||
	    json_object_set_new(board, "fetching", fetching) < 0 ||
	    json_object_set_new(board, "image_errors", errors) < 0)
		return -ENOMEM;
	return 0;
fail:
	json_decref(images);
	json_decref(fetching);
	json_decref(errors);
	return -ENOMEM;
}

int api_json_board_boot(json_t *board, const struct boot_status *st)
{
	json_t *o;

	if (!st)
		return json_object_set_new(board, "boot", json_null()) < 0 ? -ENOMEM : 0;
	o = json_pack("{s:s, s:o, s:o, s:o, s:o}", "state", boots_state_name(st->state),
		      "request_id", aj_u64(st->request_id), "kernel", api_json_strn(st->kernel, sizeof(st->kernel)),
		      "error", aj_str_or_null(st->error, sizeof(st->error)), "updated_at", api_json_time(st->at));
	if (!o || json_object_set_new(board, "boot", o) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- guests ---- */

json_t *api_json_guest(const struct guest *g)
{
	json_t *o = json_object(), *devs = json_array();
	int bad = 0;

	if (!o || !devs) {
		json_decref(o);
		json_decref(devs);
		return NULL;
	}
	for (unsigned i = 0; i < g->n_devices; i++)
		bad |= json_array_append_new(devs, aj_str(g->devices[i]));
	bad |= json_object_set_new(o, "id", aj_str(g->id));
	bad |= json_object_set_new(o, "name", aj_str(g->name));
	bad |= json_object_set_new(o, "board", aj_str(g->board_id));
	bad |= json_object_set_new(o, "state", aj_str(g->state));
	bad |= json_object_set_new(o, "desired", aj_str(g->desired));
	bad |= json_object_set_new(o, "backend", aj_str(g->backend));
	bad |= json_object_set_new(o, "vcpus", json_integer(g->vcpus));
	bad |= json_object_set_new(o, "memory_bytes", aj_u64(g->memory));
	bad |= json_object_set_new(o, "kernel", aj_str(g->kernel));
	bad |= json_object_set_new(o, "initrd", aj_str_or_null(g->initrd, sizeof(g->initrd)));
	bad |= json_object_set_new(o, "disk", aj_str_or_null(g->disk, sizeof(g->disk)));
	bad |= json_object_set_new(o, "cmdline", aj_str(g->cmdline));
	bad |= json_object_set_new(o, "devices", devs);
	bad |= json_object_set_new(o, "nics", api_json_nics(g));
	bad |= json_object_set_new(o, "error", aj_str_or_null(g->error, sizeof(g->error)));
	bad |= json_object_set_new(o, "created_at", api_json_time(g->created));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
