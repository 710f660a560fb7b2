/* The REST API's JSON: what skyctl and IaaS clients read (docs/api.md), and
 * the validation of what they send. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/skyrootd/api_json.h"
#include "skyroot.pb-c.h"

/* 2026-11-25T12:00:00Z */
#define T0 INT64_C(1795608000)

static const char *str_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static json_int_t int_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	assert_non_null(v);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void assert_null_field(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	assert_non_null(v); /* present, so every BOARD has the same keys */
	assert_true(json_is_null(v));
}

static void board_init(struct db_board *b)
{
	memset(b, 0, sizeof(*b));
	strcpy(b->id, "brd-3f9a0c1d2e4b");
	strcpy(b->name, "node-a");
	strcpy(b->uuid, "4c4c4544-0037-3010-8052-b4c04f4e3732");
	b->enrolled_at = T0;
	b->cert_not_after = T0 + 86400;
}

/* A packed inventory like the agent sends. */
static uint8_t *hello_packed(const char *hostname, size_t *len)
{
	Skyroot__Hello h = SKYROOT__HELLO__INIT;
	Skyroot__Dmi dmi = SKYROOT__DMI__INIT;
	Skyroot__PciDevice dev = SKYROOT__PCI_DEVICE__INIT;
	Skyroot__PciDevice *devs[1] = { &dev };
	Skyroot__IommuGroup grp = SKYROOT__IOMMU_GROUP__INIT;
	Skyroot__IommuGroup *grps[1] = { &grp };
	Skyroot__Nic nic0 = SKYROOT__NIC__INIT, nic1 = SKYROOT__NIC__INIT;
	Skyroot__Nic *nics[2] = { &nic0, &nic1 };
	char *flags[2] = { "svm", "npt" };
	uint8_t *buf;

	h.cpu_model = "AMD EPYC 7302";
	h.cpus = 8;
	h.n_virt_flags = 2;
	h.virt_flags = flags;
	h.memory_bytes = UINT64_C(17179869184);
	h.numa_nodes = 1;
	dmi.vendor = "QEMU";
	dmi.product = "Standard PC (Q35 + ICH9, 2009)";
	dmi.serial = "SN1";
	h.dmi = &dmi;
	h.firmware = SKYROOT__FIRMWARE__FIRMWARE_UEFI;
	h.kvm = 1;
	dev.address = "0000:00:03.0";
	dev.vendor = 0x1234;
	dev.device = 0x11e8;
	dev.class_code = 0x00ff00;
	dev.driver = "vfio-pci";
	grp.id = 3;
	grp.n_devices = 1;
	grp.devices = devs;
	h.n_iommu_groups = 1;
	h.iommu_groups = grps;
	nic0.name = "eth0";
	nic0.mac = "52:54:00:12:34:56";
	nic0.link = 1;
	nic0.speed_mbps = 1000;
	nic1.name = "eth1";
	nic1.mac = "52:54:00:12:34:57";
	nic1.speed_mbps = -1;
	h.n_nics = 2;
	h.nics = nics;
	h.kernel_version = "6.1.0-28-cloud-amd64";
	h.hostname = (char *)hostname;
	h.agent_version = "0.1.0";

	*len = skyroot__hello__get_packed_size(&h);
	buf = malloc(*len);
	assert_non_null(buf);
	skyroot__hello__pack(&h, buf);
	return buf;
}

static void test_board_full(void **state)
{
	struct db_board b;
	size_t len;
	uint8_t *inv = hello_packed("node-a", &len);
	json_t *o, *dev, *nic;
	(void)state;

	board_init(&b);
	b.inventory = inv;
	b.inventory_len = len;
	o = api_json_board(&b, true, T0 + 3600);
	assert_non_null(o);

	assert_string_equal(str_of(o, "id"), "brd-3f9a0c1d2e4b");
	assert_string_equal(str_of(o, "name"), "node-a");
	assert_string_equal(str_of(o, "state"), "online");
	assert_string_equal(str_of(o, "uuid"), "4c4c4544-0037-3010-8052-b4c04f4e3732");
	assert_int_equal(int_of(o, "cpus"), 8);
	assert_string_equal(str_of(o, "cpu_model"), "AMD EPYC 7302");
	assert_int_equal(json_array_size(json_object_get(o, "virt_flags")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "virt_flags"), 1)), "npt");
	assert_true(int_of(o, "memory_bytes") == INT64_C(17179869184));
	assert_int_equal(int_of(o, "numa_nodes"), 1);
	assert_true(json_is_true(json_object_get(o, "kvm")));
	assert_string_equal(str_of(o, "firmware"), "uefi");
	assert_string_equal(str_of(json_object_get(o, "dmi"), "vendor"), "QEMU");
	assert_string_equal(str_of(json_object_get(o, "dmi"), "serial"), "SN1");

	assert_int_equal(int_of(json_array_get(json_object_get(o, "iommu_groups"), 0), "id"), 3);
	dev = json_array_get(json_object_get(json_array_get(json_object_get(o, "iommu_groups"), 0), "devices"), 0);
	assert_non_null(dev);
	assert_string_equal(str_of(dev, "address"), "0000:00:03.0");
	assert_string_equal(str_of(dev, "vendor_device"), "1234:11e8");
	assert_string_equal(str_of(dev, "class"), "0x00ff00");
	assert_string_equal(str_of(dev, "driver"), "vfio-pci");

	nic = json_array_get(json_object_get(o, "nics"), 0);
	assert_string_equal(str_of(nic, "name"), "eth0");
	assert_string_equal(str_of(nic, "mac"), "52:54:00:12:34:56");
	assert_true(json_is_true(json_object_get(nic, "link")));
	assert_int_equal(int_of(nic, "speed_mbps"), 1000);
	nic = json_array_get(json_object_get(o, "nics"), 1);
	assert_true(json_is_false(json_object_get(nic, "link")));
	assert_null_field(nic, "speed_mbps"); /* -1 on the wire: unknown */

	assert_string_equal(str_of(o, "kernel"), "6.1.0-28-cloud-amd64");
	assert_string_equal(str_of(o, "hostname"), "node-a");
	assert_string_equal(str_of(o, "agent_version"), "0.1.0");
	assert_string_equal(str_of(o, "enrolled_at"), "2026-11-25T12:00:00Z");
	assert_string_equal(str_of(o, "cert_expires_at"), "2026-11-26T12:00:00Z");
	assert_string_equal(str_of(o, "last_seen_at"), "2026-11-25T13:00:00Z");

	json_decref(o);
	free(inv);
}

static void test_board_pci_formats_pad(void **state)
{
	Skyroot__Hello h = SKYROOT__HELLO__INIT;
	Skyroot__PciDevice dev = SKYROOT__PCI_DEVICE__INIT;
	Skyroot__PciDevice *devs[1] = { &dev };
	Skyroot__IommuGroup grp = SKYROOT__IOMMU_GROUP__INIT;
	Skyroot__IommuGroup *grps[1] = { &grp };
	struct db_board b;
	uint8_t buf[256];
	json_t *o, *d;
	(void)state;

	dev.address = "0000:00:1f.2";
	dev.vendor = 0x8086;
	dev.device = 0x2922;
	dev.class_code = 0x010601;
	dev.driver = ""; /* no driver bound */
	grp.n_devices = 1;
	grp.devices = devs;
	h.n_iommu_groups = 1;
	h.iommu_groups = grps;
	assert_true(skyroot__hello__get_packed_size(&h) <= sizeof(buf));
	board_init(&b);
	b.inventory = buf;
	b.inventory_len = skyroot__hello__pack(&h, buf);

	o = api_json_board(&b, false, 0);
	assert_non_null(o);
	d = json_array_get(json_object_get(json_array_get(json_object_get(o, "iommu_groups"), 0), "devices"), 0);
	assert_string_equal(str_of(d, "vendor_device"), "8086:2922");
	assert_string_equal(str_of(d, "class"), "0x010601");
	assert_null_field(d, "driver");
	assert_string_equal(str_of(o, "firmware"), "unknown");
	assert_null_field(o, "dmi");
	json_decref(o);

	dev.vendor = 0x1;
	dev.device = 0x2;
	dev.class_code = 0x3;
	b.inventory_len = skyroot__hello__pack(&h, buf);
	o = api_json_board(&b, false, 0);
	d = json_array_get(json_object_get(json_array_get(json_object_get(o, "iommu_groups"), 0), "devices"), 0);
	assert_string_equal(str_of(d, "vendor_device"), "0001:0002");
	assert_string_equal(str_of(d, "class"), "0x000003");
	json_decref(o);
}

static const char *const inventory_keys[] = {
	"cpus", "cpu_model", "virt_flags", "memory_bytes", "numa_nodes", "kvm", "firmware",
	"dmi", "iommu_groups", "nics", "kernel", "hostname", "agent_version",
};

static void test_board_without_inventory(void **state)
{
	struct db_board b;
	json_t *o;
	(void)state;

	board_init(&b);
	o = api_json_board(&b, false, 0);
	assert_non_null(o);
	assert_string_equal(str_of(o, "state"), "offline");
	assert_string_equal(str_of(o, "name"), "node-a");
	for (size_t i = 0; i < sizeof(inventory_keys) / sizeof(inventory_keys[0]); i++)
		assert_null_field(o, inventory_keys[i]);
	assert_null_field(o, "last_seen_at"); /* never seen */
	assert_string_equal(str_of(o, "enrolled_at"), "2026-11-25T12:00:00Z");
	json_decref(o);
}

static void test_board_garbage_inventory(void **state)
{
	/* Field 1 (string) claiming 100 bytes with 2 present: does not parse. */
	static const uint8_t junk[] = { 0x0a, 0x64, 'x', 'y' };
	struct db_board b;
	json_t *o;
	(void)state;

	board_init(&b);
	b.inventory = junk;
	b.inventory_len = sizeof(junk);
	o = api_json_board(&b, false, T0);
	assert_non_null(o);
	for (size_t i = 0; i < sizeof(inventory_keys) / sizeof(inventory_keys[0]); i++)
		assert_null_field(o, inventory_keys[i]);
	assert_string_equal(str_of(o, "last_seen_at"), "2026-11-25T12:00:00Z");
	json_decref(o);
}

static void test_board_bad_utf8_is_replaced(void **state)
{
	struct db_board b;
	size_t len;
	uint8_t *inv = hello_packed("n\xff\xc3-\xc3\xa9", &len); /* bad, truncated, then é */
	json_t *o;
	char *text;
	(void)state;

	board_init(&b);
	b.inventory = inv;
	b.inventory_len = len;
	o = api_json_board(&b, false, 0);
	assert_non_null(o);
	assert_string_equal(str_of(o, "hostname"), "n?" "?-\xc3\xa9");
	text = json_dumps(o, 0);
	assert_non_null(text);
	free(text);
	json_decref(o);
	free(inv);
}

static void test_board_unterminated_name_is_bounded(void **state)
{
	struct db_board b;
	json_t *o;
	(void)state;

	board_init(&b);
	memset(b.name, 'a', sizeof(b.name)); /* no NUL */
	o = api_json_board(&b, false, 0);
	assert_non_null(o);
	assert_int_equal(strlen(str_of(o, "name")), sizeof(b.name));
	json_decref(o);
}

static struct db_token token(bool revoked, uint32_t uses_left, int64_t expires_at)
{
	struct db_token t;

	memset(&t, 0, sizeof(t));
	strcpy(t.id, "tok-1a2b3c4d");
	t.created_at = T0;
	t.expires_at = expires_at;
	t.uses = 3;
	t.uses_left = uses_left;
	t.revoked = revoked;
	return t;
}

static void test_token_state_precedence(void **state)
{
	int64_t now = T0 + 100;
	struct db_token t;
	(void)state;

	t = token(false, 1, now + 1);
	assert_string_equal(api_json_token_state(&t, now), "active");
	t = token(false, 1, now);
	assert_string_equal(api_json_token_state(&t, now), "expired");
	t = token(false, 0, now + 1);
	assert_string_equal(api_json_token_state(&t, now), "used");
	t = token(false, 0, now - 1);
	assert_string_equal(api_json_token_state(&t, now), "used"); /* used beats expired */
	t = token(true, 0, now - 1);
	assert_string_equal(api_json_token_state(&t, now), "revoked"); /* revoked beats all */
	t = token(true, 2, now + 10);
	assert_string_equal(api_json_token_state(&t, now), "revoked");
}

static void test_token_listed(void **state)
{
	struct db_token t = token(false, 2, T0 + 3600);
	json_t *o = api_json_token(&t, T0);
	(void)state;

	assert_non_null(o);
	assert_string_equal(str_of(o, "id"), "tok-1a2b3c4d");
	assert_string_equal(str_of(o, "state"), "active");
	assert_int_equal(int_of(o, "uses"), 3);
	assert_int_equal(int_of(o, "uses_left"), 2);
	assert_string_equal(str_of(o, "created_at"), "2026-11-25T12:00:00Z");
	assert_string_equal(str_of(o, "expires_at"), "2026-11-25T13:00:00Z");
	assert_null(json_object_get(o, "token")); /* never the secret */
	assert_int_equal(json_object_size(o), 6);
	json_decref(o);
}

static void test_token_created(void **state)
{
	struct db_token t = token(false, 3, T0 + 3600);
	const char *secret = "skt-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	const char *pin = "sha256:abababababababababababababababababababababababababababababab";
	json_t *o = api_json_token_created(&t, secret, pin, "10.0.2.2:7443");
	(void)state;

	assert_non_null(o);
	assert_string_equal(str_of(o, "id"), "tok-1a2b3c4d");
	assert_string_equal(str_of(o, "token"), secret);
	assert_string_equal(str_of(o, "ca_pin"), pin);
	assert_string_equal(str_of(o, "controller"), "10.0.2.2:7443");
	assert_string_equal(str_of(o, "cmdline"),
			    "skyroot.controller=10.0.2.2:7443 "
			    "skyroot.token=skt-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "
			    "skyroot.ca=sha256:abababababababababababababababababababababababababababababab");
	assert_int_equal(int_of(o, "uses"), 3);
	assert_int_equal(int_of(o, "uses_left"), 3);
	assert_string_equal(str_of(o, "created_at"), "2026-11-25T12:00:00Z");
	assert_string_equal(str_of(o, "expires_at"), "2026-11-25T13:00:00Z");
	json_decref(o);
}

static int parse(const char *body, struct api_token_request *req, char *err)
{
	err[0] = '\0';
	return api_json_parse_token_request(body, strlen(body), req, err, API_JSON_ERR_MAX);
}

static void test_token_request_defaults_and_values(void **state)
{
	struct api_token_request req;
	char err[API_JSON_ERR_MAX];
	(void)state;

	assert_int_equal(api_json_parse_token_request(NULL, 0, &req, err, sizeof(err)), 0);
	assert_int_equal(req.ttl_seconds, 3600);
	assert_int_equal(req.uses, 1);
	assert_int_equal(parse(" \r\n", &req, err), 0);
	assert_int_equal(req.ttl_seconds, 3600);
	assert_int_equal(parse("{}", &req, err), 0);
	assert_int_equal(req.ttl_seconds, 3600);
	assert_int_equal(req.uses, 1);
	assert_int_equal(parse("{\"ttl_seconds\": 60, \"uses\": 10000}", &req, err), 0);
	assert_int_equal(req.ttl_seconds, 60);
	assert_int_equal(req.uses, 10000);
	assert_int_equal(parse("{\"ttl_seconds\": 2592000, \"uses\": 1}", &req, err), 0);
	assert_int_equal(req.ttl_seconds, 2592000);
	assert_int_equal(parse("{\"uses\": 5, \"ttl_seconds\": null}", &req, err), 0);
	assert_int_equal(req.ttl_seconds, 3600);
	assert_int_equal(req.uses, 5);
}

static void test_token_request_rejects(void **state)
{
	static const struct {
		const char *body;
		const char *says;
	} bad[] = {
		{ "{\"ttl_seconds\": 59}", "ttl_seconds must be between 60 and 2592000" },
		{ "{\"ttl_seconds\": 2592001}", "got 2592001" },
		{ "{\"ttl_seconds\": -5}", "ttl_seconds" },
		{ "{\"ttl_seconds\": \"3600\"}", "ttl_seconds must be a whole number" },
		{ "{\"ttl_seconds\": 3600.5}", "ttl_seconds must be a whole number" },
		{ "{\"uses\": 0}", "uses must be between 1 and 10000" },
		{ "{\"uses\": 10001}", "uses must be between 1 and 10000" },
		{ "{\"uses\": 99999999999999999}", "uses" },
		{ "{\"uses\": true}", "uses must be a whole number" },
		{ "{\"ttl\": 60}", "unknown field 'ttl'" },
		{ "{\"uses\": 1, \"uses\": 2}", "not valid JSON" },
		{ "[1, 2]", "must be a JSON object" },
		{ "{\"uses\": ", "not valid JSON" },
		{ "{} {}", "not valid JSON" },
	};
	struct api_token_request req = { .ttl_seconds = -42, .uses = 42 };
	char err[API_JSON_ERR_MAX];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i].body, &req, err);
		if (r != -EINVAL || !strstr(err, bad[i].says))
			fail_msg("body %s: r=%d err='%s', wanted '%s'", bad[i].body, r, err, bad[i].says);
		/* Never written on failure. */
		assert_int_equal(req.ttl_seconds, -42);
		assert_int_equal(req.uses, 42);
	}
}

/* A string cut at its bound loses a character cut in two whole (not a
 * '?'), and a field of exactly max bytes is not read past. */
static void test_strn_cut(void **state)
{
	const char field[5] = { 'a', 'b', 'c', '\xc3', '\xa9' }; /* no NUL */
	json_t *j;
	(void)state;

	j = api_json_strn("abc\xc3\xa9", 4);
	assert_string_equal(json_string_value(j), "abc");
	json_decref(j);
	j = api_json_strn("ab\xe2\x82\xac!", 4); /* a 3-byte character cut after 2 */
	assert_string_equal(json_string_value(j), "ab");
	json_decref(j);
	j = api_json_strn(field, sizeof(field));
	assert_string_equal(json_string_value(j), "abc\xc3\xa9");
	json_decref(j);
	j = api_json_strn("a\xff" "b\x80", 4); /* not UTF-8, not a cut: '?' */
	assert_string_equal(json_string_value(j), "a?b?");
	json_decref(j);
	j = api_json_strn(NULL, 4);
	assert_true(json_is_null(j));
	json_decref(j);
}

static void test_token_request_error_is_valid_json(void **state)
{
	/* A long multi-byte key cut in the middle of a character must still
	 * give an error body that renders. */
	char body[300], err[API_JSON_ERR_MAX];
	struct api_token_request req;
	json_t *e;
	char *text;
	size_t n = 0;
	(void)state;

	n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"x");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\xc3\xa9");
	snprintf(body + n, sizeof(body) - n, "\": 1}");
	assert_int_equal(parse(body, &req, err), -EINVAL);
	e = api_json_error("bad_request", "%s", err);
	assert_non_null(e);
	text = json_dumps(e, 0);
	assert_non_null(text);
	free(text);
	json_decref(e);
}

static void test_error_shape(void **state)
{
	json_t *e = api_json_error("not_found", "no board named '%s'; see 'skyctl board list'", "x");
	json_t *inner;
	(void)state;

	assert_non_null(e);
	assert_int_equal(json_object_size(e), 1);
	inner = json_object_get(e, "error");
	assert_true(json_is_object(inner));
	assert_string_equal(str_of(inner, "code"), "not_found");
	assert_string_equal(str_of(inner, "message"), "no board named 'x'; see 'skyctl board list'");
	json_decref(e);
}

static void test_sort_by_name(void **state)
{
	json_t *a = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s}]",
			      "name", "node-c", "id", "brd-1",
			      "name", "node-a", "id", "brd-3",
			      "name", "node-a", "id", "brd-2",
			      "id", "brd-0");
	(void)state;

	assert_non_null(a);
	assert_int_equal(api_json_sort_by_name(a), 0);
	assert_int_equal(json_array_size(a), 4);
	assert_string_equal(str_of(json_array_get(a, 0), "id"), "brd-0"); /* no name sorts first */
	assert_string_equal(str_of(json_array_get(a, 1), "id"), "brd-2");
	assert_string_equal(str_of(json_array_get(a, 2), "id"), "brd-3");
	assert_string_equal(str_of(json_array_get(a, 3), "id"), "brd-1");
	json_decref(a);
	assert_int_equal(api_json_sort_by_name(NULL), -EINVAL);
}

static void test_decode_segment(void **state)
{
	char out[DB_ID_MAX];
	char big[200];
	(void)state;

	assert_int_equal(api_json_decode_segment("node-a", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "node-a");
	assert_int_equal(api_json_decode_segment("node%2Da%20b", 12, out, sizeof(out)), 0);
	assert_string_equal(out, "node-a b");
	assert_int_equal(api_json_decode_segment("%c3%A9", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "\xc3\xa9");
	/* Only the given length is read. */
	assert_int_equal(api_json_decode_segment("abc/def", 3, out, sizeof(out)), 0);
	assert_string_equal(out, "abc");

	strcpy(out, "untouched");
	assert_int_equal(api_json_decode_segment("%zz", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_json_decode_segment("ab%4", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_json_decode_segment("ab%", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_json_decode_segment("a%00b", 5, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_json_decode_segment("a%0ab", 5, out, sizeof(out)), -EINVAL);
	assert_int_equal(api_json_decode_segment("a%2Fb", 5, out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "untouched");

	/* 31 bytes fit a DB_ID_MAX buffer, 32 do not; %-escapes count decoded. */
	memset(big, 'a', sizeof(big));
	assert_int_equal(api_json_decode_segment(big, DB_ID_MAX - 1, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), DB_ID_MAX - 1);
	strcpy(out, "untouched");
	assert_int_equal(api_json_decode_segment(big, DB_ID_MAX, out, sizeof(out)), -ENAMETOOLONG);
	assert_string_equal(out, "untouched");
	assert_int_equal(api_json_decode_segment(big, sizeof(big), out, sizeof(out)), -ENAMETOOLONG);
	memcpy(big, "%41%41", 6);
	assert_int_equal(api_json_decode_segment(big, DB_ID_MAX + 3, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), DB_ID_MAX - 1);
}

/* ---- the other request bodies ---- */

static int guest_parse(const char *body, struct api_guest_body *g, char *err)
{
	err[0] = '\0';
	return api_json_parse_guest_request(body, strlen(body), g, err, API_JSON_ERR_MAX);
}

static void test_guest_request_accepted(void **state)
{
	struct api_guest_body *g = calloc(1, sizeof(*g));
	char err[API_JSON_ERR_MAX];
	(void)state;

	assert_int_equal(guest_parse("{\"name\": \"web1\", \"kernel\": \"vmlinuz\"}", g, err), 0);
	assert_string_equal(g->name, "web1");
	assert_string_equal(g->kernel, "vmlinuz");
	assert_string_equal(g->board, "");
	assert_string_equal(g->backend, ""); /* the board's default */
	assert_int_equal(g->vcpus, API_GUEST_VCPUS_DEFAULT);
	assert_true(g->memory_bytes == API_GUEST_MEMORY_DEFAULT);
	assert_false(g->has_cmdline);

	assert_int_equal(guest_parse("{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\", \"disk\": null, "
				     "\"board\": \"auto\", \"cmdline\": \"console=ttyS0\", \"vcpus\": 64, "
				     "\"memory_bytes\": 16777216, \"backend\": \"libvirt\", "
				     "\"devices\": [\"0000:00:03.0\", \"00:04.0\"]}", g, err), 0);
	assert_int_equal(g->vcpus, SKY_GUEST_VCPUS_MAX);
	assert_true(g->memory_bytes == SKY_GUEST_MEMORY_MIN);
	assert_string_equal(g->backend, "libvirt");
	assert_string_equal(g->disk, "");
	assert_true(g->has_cmdline);
	assert_int_equal(g->n_devices, 2);
	assert_string_equal(g->devices[1], "0000:00:04.0");
	free(g);
}

static void test_guest_request_refused(void **state)
{
	static const struct {
		const char *body;
		const char *says;
	} bad[] = {
		{ "", "empty" },
		{ "[]", "must be a JSON object" },
		{ "{\"name\": ", "not valid JSON" },
		{ "{\"kernel\": \"k\"}", "needs a name" },
		{ "{\"name\": \"a\"}", "needs a kernel" },
		{ "{\"name\": \"a\", \"kernel\": \"\"}", "needs a kernel" }, /* found by fuzz_api_bodies */
		{ "{\"name\": \"\", \"kernel\": \"k\"}", "needs a name" },
		{ "{\"name\": 5, \"kernel\": \"k\"}", "guest.name must be a string" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"vcpus\": 0}", "from 1 to 64" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"vcpus\": 65}", "from 1 to 64" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"vcpus\": 1.5}", "vcpus must be a whole number" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"memory_bytes\": 1024}", "16 MiB to 1 TiB" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"memory_bytes\": -1}", "memory_bytes" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"backend\": \"xen\"}", "qemu, libvirt or skyvmm" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"devices\": \"0000:00:03.0\"}", "at most 8" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"devices\": [1]}", "devices[0]" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"devices\": [\"0000:00:20.0\"]}", "devices[0] is not a PCI address" },
		{ "{\"name\": \"a\", \"kernel\": \"k\", \"devices\": [\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]}",
		  "at most 8" },
		{ "{\"name\": \"a-name-that-is-much-longer-than-sixty-three-bytes-which-is-the-limit-x\", "
		  "\"kernel\": \"k\"}", "guest.name is over its limit of 63 bytes" },
	};
	struct api_guest_body *g = calloc(1, sizeof(*g));
	char err[API_JSON_ERR_MAX];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(g, 0x5a, sizeof(*g));
		int r = guest_parse(bad[i].body, g, err);
		if (r != -EINVAL || !strstr(err, bad[i].says))
			fail_msg("body %s: r=%d err='%s', wanted '%s'", bad[i].body, r, err, bad[i].says);
		/* Never written on failure. */
		for (size_t k = 0; k < sizeof(*g); k++)
			assert_int_equal(((unsigned char *)g)[k], 0x5a);
	}
	free(g);
}

/* guest.nics: networks by id or name, an operator's MAC canonical; what
 * is not a NIC list refused, saying which. */
static void test_guest_nics(void **state)
{
	struct api_guest_body *g = calloc(1, sizeof(*g));
	char err[API_JSON_ERR_MAX];
	static const struct {
		const char *nics, *says;
	} bad[] = {
		{ "\"prod\"", "guest.nics must be a list" },
		{ "[\"prod\"]", "guest.nics[0] must be an object" },
		{ "[{}]", "guest.nics[0].network" },
		{ "[{\"network\": \"\"}]", "guest.nics[0].network" },
		{ "[{\"network\": 5}]", "guest.nics[0].network" },
		{ "[{\"network\": \"p\", \"mac\": \"02:00:00:00:00\"}]", "guest.nics[0].mac" },
		{ "[{\"network\": \"p\", \"mac\": 7}]", "guest.nics[0].mac" },
		{ "[{\"network\": \"p\"}, {\"network\": \"p\", \"vlan\": 5}]", "unknown field 'vlan' in guest.nics[1]" },
		{ "[{},{},{},{},{},{},{},{},{}]", "at most 8" },
	};
	char body[256];
	(void)state;

	assert_non_null(g);
	assert_int_equal(guest_parse("{\"name\": \"a\", \"kernel\": \"k\", \"nics\": [{\"network\": \"prod\"}, "
				     "{\"network\": \"net-01\", \"mac\": \"02:AB:00:00:00:01\"}, {\"network\": \"x\", \"mac\": null}]}",
				     g, err),
			 0);
	assert_int_equal(g->n_nics, 3);
	assert_string_equal(g->nics[0].network, "prod");
	assert_string_equal(g->nics[0].mac, "");
	assert_string_equal(g->nics[1].network, "net-01");
	assert_string_equal(g->nics[1].mac, "02:ab:00:00:00:01");
	assert_string_equal(g->nics[2].mac, "");
	assert_int_equal(guest_parse("{\"name\": \"a\", \"kernel\": \"k\", \"nics\": null}", g, err), 0);
	assert_int_equal(g->n_nics, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"name\": \"a\", \"kernel\": \"k\", \"nics\": %s}", bad[i].nics);
		assert_int_equal(guest_parse(body, g, err), -EINVAL);
		if (!strstr(err, bad[i].says))
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].nics, err, bad[i].says);
	}
	free(g);
}

static void test_unknown_fields_refused(void **state)
{
	struct api_guest_body *g = calloc(1, sizeof(*g));
	struct api_fetch_body fb;
	struct api_boot_body *bb = calloc(1, sizeof(*bb));
	char err[API_JSON_ERR_MAX];
	const char *body;
	(void)state;

	assert_int_equal(guest_parse("{\"name\": \"a\", \"kernel\": \"k\", \"foo\": 1}", g, err), -EINVAL);
	assert_string_equal(err, "unknown field 'foo' in guest; known: name, board, kernel, initrd, disk, cmdline, "
				 "vcpus, memory_bytes, devices, backend, nics");
	body = "{\"image\": \"i\", \"board\": \"b\"}";
	assert_int_equal(api_json_parse_fetch_request(body, strlen(body), &fb, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown field 'board' in fetch; known: image");
	body = "{\"kernel\": \"k\", \"append\": \"quiet\"}";
	assert_int_equal(api_json_parse_boot_request(body, strlen(body), bb, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown field 'append' in boot; known: kernel, initrd, cmdline");
	free(g);
	free(bb);
}

static void test_fetch_request(void **state)
{
	struct api_fetch_body fb = { "untouched" };
	char err[API_JSON_ERR_MAX];
	const char *ok = "{\"image\": \"img-0a1b2c\"}";
	(void)state;

	assert_int_equal(api_json_parse_fetch_request("{}", 2, &fb, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "say which image"));
	assert_string_equal(fb.image, "untouched");
	assert_int_equal(api_json_parse_fetch_request("{\"image\": 3}", 12, &fb, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "fetch.image must be a string"));
	assert_int_equal(api_json_parse_fetch_request("", 0, &fb, err, sizeof(err)), -EINVAL);
	assert_int_equal(api_json_parse_fetch_request(ok, strlen(ok), &fb, err, sizeof(err)), 0);
	assert_string_equal(fb.image, "img-0a1b2c");
}

static void test_boot_request(void **state)
{
	struct api_boot_body *b = calloc(1, sizeof(*b));
	char err[API_JSON_ERR_MAX], big[SKY_GUEST_CMDLINE_MAX + 64];
	const char *ok = "{\"kernel\": \"k\", \"initrd\": \"i\", \"cmdline\": \"quiet\"}";
	(void)state;

	assert_int_equal(api_json_parse_boot_request(ok, strlen(ok), b, err, sizeof(err)), 0);
	assert_string_equal(b->kernel, "k");
	assert_string_equal(b->initrd, "i");
	assert_string_equal(b->cmdline, "quiet");
	ok = "{\"kernel\": \"k\"}";
	assert_int_equal(api_json_parse_boot_request(ok, strlen(ok), b, err, sizeof(err)), 0);
	assert_string_equal(b->initrd, "");
	assert_string_equal(b->cmdline, "");
	ok = "{\"initrd\": \"i\"}";
	assert_int_equal(api_json_parse_boot_request(ok, strlen(ok), b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "needs a kernel"));
	/* A command line over the shared limit. */
	int n = snprintf(big, sizeof(big), "{\"kernel\": \"k\", \"cmdline\": \"");
	memset(big + n, 'x', SKY_GUEST_CMDLINE_MAX + 1);
	snprintf(big + n + SKY_GUEST_CMDLINE_MAX + 1, sizeof(big) - (size_t)n - SKY_GUEST_CMDLINE_MAX - 1, "\"}");
	assert_int_equal(api_json_parse_boot_request(big, strlen(big), b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "boot.cmdline is over its limit of 1023 bytes"));
	free(b);
}

/* A board's last boot order in the board object, as docs/api.md says (what
 * the answers do to it: test_boots.c). */
static void test_board_boot_answers(void **state)
{
	struct boot_status st = { .state = BOOT_STATE_REFUSED, .request_id = ((uint64_t)1 << 53) - 1, .at = T0 + 3 };
	json_t *o, *b;
	(void)state;

	o = json_object();
	assert_int_equal(api_json_board_boot(o, NULL), 0);
	assert_true(json_is_null(json_object_get(o, "boot")));
	snprintf(st.kernel, sizeof(st.kernel), "img-k");
	memset(st.error, 'r', BOOTS_ERROR_MAX);
	assert_int_equal(api_json_board_boot(o, &st), 0);
	b = json_object_get(o, "boot");
	assert_string_equal(str_of(b, "state"), "refused");
	assert_string_equal(str_of(b, "kernel"), "img-k");
	assert_string_equal(str_of(b, "updated_at"), "2026-11-25T12:00:03Z");
	assert_int_equal(int_of(b, "request_id"), (json_int_t)st.request_id);
	assert_int_equal(strlen(str_of(b, "error")), BOOTS_ERROR_MAX);

	/* Accepted: no error. */
	st.state = BOOT_STATE_ACCEPTED;
	st.error[0] = '\0';
	assert_int_equal(api_json_board_boot(o, &st), 0);
	b = json_object_get(o, "boot");
	assert_string_equal(str_of(b, "state"), "accepted");
	assert_true(json_is_null(json_object_get(b, "error")));
	json_decref(o);
}

static void test_query_get(void **state)
{
	char out[16];
	const char *q = "name=a%20b&kind=disk&follow";
	(void)state;

	assert_int_equal(api_json_query_get(q, strlen(q), "name", out, sizeof(out)), 0);
	assert_string_equal(out, "a b");
	assert_int_equal(api_json_query_get(q, strlen(q), "kind", out, sizeof(out)), 0);
	assert_string_equal(out, "disk");
	assert_int_equal(api_json_query_get(q, strlen(q), "follow", out, sizeof(out)), -ENOENT);
	assert_int_equal(api_json_query_get(q, strlen(q), "nam", out, sizeof(out)), -ENOENT);
	assert_int_equal(api_json_query_get(NULL, 0, "name", out, sizeof(out)), -ENOENT);
	q = "name=%zz";
	assert_int_equal(api_json_query_get(q, strlen(q), "name", out, sizeof(out)), -EINVAL);
	q = "name=0123456789abcdefXYZ";
	assert_int_equal(api_json_query_get(q, strlen(q), "name", out, sizeof(out)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_board_full),
		cmocka_unit_test(test_board_pci_formats_pad),
		cmocka_unit_test(test_board_without_inventory),
		cmocka_unit_test(test_board_garbage_inventory),
		cmocka_unit_test(test_board_bad_utf8_is_replaced),
		cmocka_unit_test(test_strn_cut),
		cmocka_unit_test(test_board_unterminated_name_is_bounded),
		cmocka_unit_test(test_token_state_precedence),
		cmocka_unit_test(test_token_listed),
		cmocka_unit_test(test_token_created),
		cmocka_unit_test(test_token_request_defaults_and_values),
		cmocka_unit_test(test_token_request_rejects),
		cmocka_unit_test(test_token_request_error_is_valid_json),
		cmocka_unit_test(test_error_shape),
		cmocka_unit_test(test_sort_by_name),
		cmocka_unit_test(test_decode_segment),
		cmocka_unit_test(test_guest_request_accepted),
		cmocka_unit_test(test_guest_request_refused),
		cmocka_unit_test(test_guest_nics),
		cmocka_unit_test(test_unknown_fields_refused),
		cmocka_unit_test(test_fetch_request),
		cmocka_unit_test(test_boot_request),
		cmocka_unit_test(test_query_get),
		cmocka_unit_test(test_board_boot_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
