/* The JSON <-> protobuf transcoder (controller/skyrootd/pbjson.c) over
 * proto/api.proto's messages and the well-known types. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "api.pb-c.h"
#include "controller/skyrootd/pbjson.h"

#define BOARD_JSON                                                                                                    \
	"{\"id\": \"brd-3f9a0c1d2e4b\", \"name\": \"node-a\", \"state\": \"online\", \"uuid\": null, \"cpus\": 8,"    \
	" \"cpu_model\": \"EPYC\", \"virt_flags\": [\"svm\", \"npt\"], \"memory_bytes\": \"17179869184\","             \
	" \"kvm\": false, \"dmi\": {\"vendor\": \"v\", \"product\": \"p\", \"serial\": \"s\"},"                      \
	" \"iommu_groups\": [{\"id\": 3, \"devices\": [{\"address\": \"0000:00:03.0\", \"vendor_device\": \"1234:11e8\"," \
	" \"class\": \"0x00ff00\", \"driver\": null}]}],"                                                            \
	" \"nics\": [{\"name\": \"eth0\", \"mac\": \"52:54:00:12:34:56\", \"link\": true, \"speed_mbps\": null}],"   \
	" \"enrolled_at\": \"2026-11-25T12:00:00Z\", \"last_seen_at\": null, \"boot\": {\"state\": \"refused\","     \
	" \"request_id\": 1883458333835265, \"kernel\": \"img-1\", \"error\": \"no kexec\","                         \
	" \"updated_at\": \"2026-11-25T12:35:00.5+01:00\"}, \"labels\": {\"zone\": \"eu-1\"}, \"description\": \"\","         \
	" \"etag\": \"W/1\"}"

static json_t *load(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	assert_non_null(j);
	return j;
}

static void test_board_round_trip(void **state)
{
	char err[PBJSON_ERR_MAX];
	json_t *in = load(BOARD_JSON), *out, *want;
	uint8_t *buf;
	size_t len;
	Skyroot__Api__V1__Board *b;
	struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 25, .tm_hour = 12 };

	(void)state;
	assert_int_equal(pbjson_pack(&skyroot__api__v1__board__descriptor, in, &buf, &len, err, sizeof(err)), 0);
	/* protobuf-c reads what the transcoder packed */
	b = skyroot__api__v1__board__unpack(NULL, len, buf);
	assert_non_null(b);
	assert_string_equal(b->id, "brd-3f9a0c1d2e4b");
	assert_non_null(b->cpus);
	assert_int_equal(b->cpus->value, 8);
	assert_null(b->uuid);
	assert_non_null(b->kvm);
	assert_false(b->kvm->value);
	assert_int_equal(b->memory_bytes->value, 17179869184ull);
	assert_int_equal(b->n_virt_flags, 2);
	assert_string_equal(b->iommu_groups[0]->devices[0]->class_, "0x00ff00");
	assert_null(b->iommu_groups[0]->devices[0]->driver);
	assert_null(b->nics[0]->speed_mbps);
	assert_int_equal(b->enrolled_at->seconds, (int64_t)timegm(&tm));
	assert_null(b->last_seen_at);
	assert_int_equal(b->boot->request_id, 1883458333835265ull);
	/* 12:35:00.5 at +01:00 is 11:35:00.5 UTC */
	assert_int_equal(b->boot->updated_at->seconds, (int64_t)timegm(&tm) - 25 * 60);
	assert_int_equal(b->boot->updated_at->nanos, 500000000);
	assert_int_equal(b->n_labels, 1);
	assert_string_equal(b->labels[0]->key, "zone");
	assert_string_equal(b->labels[0]->value, "eu-1");
	skyroot__api__v1__board__free_unpacked(b, NULL);

	/* and back: the same data, defaults and nulls left out */
	out = pbjson_unpack(&skyroot__api__v1__board__descriptor, buf, len, err, sizeof(err));
	assert_non_null(out);
	want = load("{\"id\": \"brd-3f9a0c1d2e4b\", \"name\": \"node-a\", \"state\": \"online\", \"cpus\": 8,"
		    " \"cpu_model\": \"EPYC\", \"virt_flags\": [\"svm\", \"npt\"], \"memory_bytes\": 17179869184,"
		    " \"kvm\": false, \"dmi\": {\"vendor\": \"v\", \"product\": \"p\", \"serial\": \"s\"},"
		    " \"iommu_groups\": [{\"id\": 3, \"devices\": [{\"address\": \"0000:00:03.0\","
		    " \"vendor_device\": \"1234:11e8\", \"class\": \"0x00ff00\"}]}],"
		    " \"nics\": [{\"name\": \"eth0\", \"mac\": \"52:54:00:12:34:56\", \"link\": true}],"
		    " \"enrolled_at\": \"2026-11-25T12:00:00Z\", \"boot\": {\"state\": \"refused\","
		    " \"request_id\": 1883458333835265, \"kernel\": \"img-1\", \"error\": \"no kexec\","
		    " \"updated_at\": \"2026-11-25T11:35:00.500000000Z\"}, \"labels\": {\"zone\": \"eu-1\"},"
		    " \"etag\": \"W/1\"}");
	if (!json_equal(out, want)) {
		char *s = json_dumps(out, JSON_SORT_KEYS);
		fprintf(stderr, "got %s\n", s);
		free(s);
	}
	assert_true(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	json_decref(in);
	free(buf);
}

static void expect_error(const ProtobufCMessageDescriptor *d, const char *json, const char *needle)
{
	char err[PBJSON_ERR_MAX] = "";
	json_t *j = load(json);

	assert_int_equal(pbjson_check(d, j, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fprintf(stderr, "error '%s' lacks '%s'\n", err, needle);
	assert_non_null(strstr(err, needle));
	json_decref(j);
}

static void test_strict(void **state)
{
	const ProtobufCMessageDescriptor *list = &skyroot__api__v1__board_list__descriptor;

	(void)state;
	expect_error(list, "{\"boards\": [{\"id\": \"a\"}, {\"dmi\": {\"vendr\": \"x\"}}]}", "boards[1].dmi.vendr: unknown field of Dmi");
	expect_error(list, "{\"boards\": [], \"next\": \"x\"}", "next: unknown field of BoardList (known: boards, next_page_token)");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"cpus\": \"eight\"}", "cpus: 'eight' is not an integer");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"cpus\": -1}", "cpus: -1 is out of range");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"cpus\": 1.5}", "cpus: 1.5 is not a whole number");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"kvm\": 1}", "kvm: must be true or false");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"name\": 7}", "name: must be a string");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"virt_flags\": \"svm\"}", "virt_flags: must be a JSON array");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"virt_flags\": [\"a\", 2]}", "virt_flags[1]: must be a string");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"labels\": {\"a\": 1}}", "labels.a: must be a string");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"labels\": []}", "labels: must be a JSON object");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"labels\": {\"a\": null}}", "labels.a: must not be null");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"dmi\": \"x\"}", "dmi: must be a JSON object (Dmi)");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"enrolled_at\": \"yesterday\"}", "enrolled_at: must be an RFC 3339 time");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"enrolled_at\": \"2026-11-25T12:00:00\"}", "enrolled_at: needs a time zone");
	expect_error(&skyroot__api__v1__board__descriptor, "{\"enrolled_at\": \"2026-13-25T12:00:00Z\"}", "is not a valid RFC 3339 time");
	expect_error(&skyroot__api__v1__image__descriptor, "{\"created\": \"2026-11-25T12:00:00Z\"}", "created: unknown field of Image");
	expect_error(&skyroot__api__v1__token_request__descriptor, "{\"uses\": 4294967296}", "uses: 4294967296 is out of range");
}

static void test_values_and_nulls(void **state)
{
	char err[PBJSON_ERR_MAX];
	json_t *in = load("{\"name\": \"n\", \"labels\": {\"a\": \"x\", \"gone\": null, \"e\": \"\"}}"), *out;
	uint8_t *buf;
	size_t len;
	Skyroot__Api__V1__MetaPatch *p;

	(void)state;
	assert_int_equal(pbjson_pack(&skyroot__api__v1__meta_patch__descriptor, in, &buf, &len, err, sizeof(err)), 0);
	p = skyroot__api__v1__meta_patch__unpack(NULL, len, buf);
	assert_non_null(p);
	assert_string_equal(p->name->value, "n");
	assert_null(p->description);
	assert_int_equal(p->n_labels, 3);
	for (size_t i = 0; i < p->n_labels; i++)
		if (strcmp(p->labels[i]->key, "gone") == 0)
			assert_int_equal(p->labels[i]->value->kind_case, SKYROOT__API__V1__LABEL_VALUE__KIND_NULL_VALUE);
	skyroot__api__v1__meta_patch__free_unpacked(p, NULL);
	out = pbjson_unpack(&skyroot__api__v1__meta_patch__descriptor, buf, len, err, sizeof(err));
	assert_non_null(out);
	assert_true(json_equal(out, in)); /* a null label stays null: a merge patch's removal */
	json_decref(out);
	json_decref(in);
	free(buf);
	expect_error(&skyroot__api__v1__meta_patch__descriptor, "{\"labels\": {\"deep\": {\"l\": 1}}}",
		     "labels.deep: must be a string or null");
	expect_error(&skyroot__api__v1__meta_patch__descriptor, "{\"labels\": {\"n\": 1}}",
		     "labels.n: must be a string or null");
}

/* A varint into p, backwards: the bytes end at p; returns the new start. */
static uint8_t *put_varint_before(uint8_t *p, size_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	for (size_t i = n; i > 0; i--)
		*--p = tmp[i - 1];
	return p;
}

/* protobuf-c unpacks nested messages by recursion, without a bound: a
 * request message must not be able to nest (LabelValue, not Value).
 * 100000 levels of Value.list_value in a label are unknown fields of
 * LabelValue and skipped, not a stack overflow. */
static void test_wire_nesting(void **state)
{
	size_t cap = 2u << 20;
	uint8_t *buf = malloc(cap), *end = buf + cap, *p = end;
	char err[PBJSON_ERR_MAX];
	json_t *j;

	(void)state;
	assert_non_null(buf);
	for (int i = 0; i < 100000; i++) {
		size_t inner = (size_t)(end - p);
		p = put_varint_before(p, inner); /* ListValue.values (1): Value */
		*--p = 0x0a;
		inner = (size_t)(end - p);
		p = put_varint_before(p, inner); /* Value.list_value (6) */
		*--p = 0x32;
	}
	{
		size_t inner = (size_t)(end - p);
		p = put_varint_before(p, inner); /* entry.value (2) */
		*--p = 0x12;
		*--p = 'a';
		*--p = 0x01;
		*--p = 0x0a; /* entry.key (1) = "a" */
		inner = (size_t)(end - p);
		p = put_varint_before(p, inner); /* MetaPatch.labels (2) */
		*--p = 0x12;
	}
	j = pbjson_unpack(&skyroot__api__v1__meta_patch__descriptor, p, (size_t)(end - p), err, sizeof(err));
	assert_non_null(j);
	assert_true(json_is_null(json_object_get(json_object_get(j, "labels"), "a")));
	json_decref(j);
	free(buf);
}

static void test_bytes_enum_int64(void **state)
{
	char err[PBJSON_ERR_MAX];
	json_t *in = load("{\"value\": \"aGVsbG8_-w\"}"), *out;
	ProtobufCMessage *m;

	(void)state;
	assert_int_equal(pbjson_decode(&google__protobuf__bytes_value__descriptor, in, &m, err, sizeof(err)), 0);
	assert_int_equal(((Google__Protobuf__BytesValue *)m)->value.len, 7);
	assert_memory_equal(((Google__Protobuf__BytesValue *)m)->value.data, "hello?\xfb", 7);
	out = pbjson_encode(m);
	assert_string_equal(json_string_value(json_object_get(out, "value")), "aGVsbG8/+w==");
	json_decref(out);
	protobuf_c_message_free_unpacked(m, NULL);
	json_decref(in);
	expect_error(&google__protobuf__bytes_value__descriptor, "{\"value\": \"a%b\"}", "value: is not valid base64");

	in = load("{\"null_value\": \"NULL_VALUE\"}");
	assert_int_equal(pbjson_decode(&google__protobuf__value__descriptor, in, &m, err, sizeof(err)), 0);
	assert_int_equal(((Google__Protobuf__Value *)m)->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
	protobuf_c_message_free_unpacked(m, NULL);
	json_decref(in);
	expect_error(&google__protobuf__value__descriptor, "{\"null_value\": \"NOPE\"}", "null_value: is not a value of google.protobuf.NullValue");

	in = load("{\"value\": \"-9223372036854775808\"}");
	assert_int_equal(pbjson_decode(&google__protobuf__int64_value__descriptor, in, &m, err, sizeof(err)), 0);
	assert_true(((Google__Protobuf__Int64Value *)m)->value == INT64_MIN);
	protobuf_c_message_free_unpacked(m, NULL);
	json_decref(in);
	in = load("{\"value\": \"18446744073709551615\"}");
	assert_int_equal(pbjson_decode(&google__protobuf__uint64_value__descriptor, in, &m, err, sizeof(err)), 0);
	out = pbjson_encode(m);
	assert_string_equal(json_string_value(json_object_get(out, "value")), "18446744073709551615");
	json_decref(out);
	protobuf_c_message_free_unpacked(m, NULL);
	json_decref(in);
}

static void test_hostile(void **state)
{
	char err[PBJSON_ERR_MAX];
	char deep[4096];
	size_t n = 0;
	json_t *j;
	static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01 };

	(void)state;
	/* a Value nested past the bound */
	n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"labels\": {\"a\": ");
	for (int i = 0; i < PBJSON_DEPTH_MAX + 2; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "[");
	for (int i = 0; i < PBJSON_DEPTH_MAX + 2; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "]");
	snprintf(deep + n, sizeof(deep) - n, "}}");
	expect_error(&google__protobuf__struct__descriptor, deep, "nested too deeply");
	/* a list's elements are named by their index alone */
	expect_error(&google__protobuf__struct__descriptor, deep, "labels.a[0][0][0]");
	/* a ListValue at the top is a message like any (its field values):
	 * decoding it leaves the caller's JSON alone */
	j = load("{\"values\": [1, \"a\", [true]]}");
	{
		ProtobufCMessage *m;
		json_t *out;

		assert_int_equal(pbjson_decode(&google__protobuf__list_value__descriptor, j, &m, err, sizeof(err)), 0);
		assert_int_equal(j->refcount, 1);
		assert_int_equal(((Google__Protobuf__ListValue *)m)->n_values, 3);
		out = pbjson_encode(m);
		assert_true(json_equal(out, j));
		json_decref(out);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	json_decref(j);
	/* bytes that are not a message */
	j = pbjson_unpack(&skyroot__api__v1__board_list__descriptor, junk, sizeof(junk), err, sizeof(err));
	assert_null(j);
	assert_non_null(strstr(err, "not a valid protobuf message skyroot.api.v1.BoardList"));
	/* not an object at the top */
	j = load("[1]");
	assert_int_equal(pbjson_check(&skyroot__api__v1__board__descriptor, j, err, sizeof(err)), -EINVAL);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_board_round_trip),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_values_and_nulls),
		cmocka_unit_test(test_wire_nesting),
		cmocka_unit_test(test_bytes_enum_int64),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
