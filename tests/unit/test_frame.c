/* Frame codec: round trips, truncation, oversize, garbage. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/frame.h"

struct got {
	int n;
	uint64_t ids[16];
	int cases[16];
};

static int collect(void *ctx, Skyroot__Envelope *env)
{
	struct got *g = ctx;
	if (g->n < 16) {
		g->ids[g->n] = env->request_id;
		g->cases[g->n] = env->body_case;
	}
	g->n++;
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

static void encode_hb(struct sky_buf *b, uint64_t id, uint64_t seq)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__Heartbeat hb = SKYROOT__HEARTBEAT__INIT;
	hb.seq = seq;
	env.request_id = id;
	env.body_case = SKYROOT__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	assert_int_equal(sky_frame_encode(&env, SKY_FRAME_MAX_DEFAULT, b), 0);
}

static void test_roundtrip_byte_by_byte(void **state)
{
	struct sky_buf b;
	struct sky_frame_decoder d;
	struct got g = {0};
	(void)state;
	sky_buf_init(&b, 1 << 20);
	encode_hb(&b, 7, 1);
	encode_hb(&b, 8, 2);
	encode_hb(&b, 9, 3);
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	for (size_t i = 0; i < b.len; i++)
		assert_int_equal(sky_frame_feed(&d, b.data + i, 1, collect, &g), 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.ids[0], 7);
	assert_int_equal(g.ids[2], 9);
	assert_int_equal(g.cases[1], SKYROOT__ENVELOPE__BODY_HEARTBEAT);
	assert_false(sky_frame_decoder_partial(&d));
	sky_frame_decoder_free(&d);
	sky_buf_free(&b);
}

static void test_truncated(void **state)
{
	struct sky_buf b;
	struct sky_frame_decoder d;
	struct got g = {0};
	(void)state;
	sky_buf_init(&b, 1 << 20);
	encode_hb(&b, 1, 1);
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	/* Everything but the last byte: nothing delivered, a partial frame held. */
	assert_int_equal(sky_frame_feed(&d, b.data, b.len - 1, collect, &g), 0);
	assert_int_equal(g.n, 0);
	assert_true(sky_frame_decoder_partial(&d));
	/* Header only, truncated. */
	sky_frame_decoder_free(&d);
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, b.data, 2, collect, &g), 0);
	assert_true(sky_frame_decoder_partial(&d));
	assert_int_equal(g.n, 0);
	sky_frame_decoder_free(&d);
	sky_buf_free(&b);
}

static void test_oversize_rejected_before_allocation(void **state)
{
	struct sky_frame_decoder d;
	struct got g = {0};
	uint8_t hdr[4] = {0x7f, 0xff, 0xff, 0xff};
	(void)state;
	sky_frame_decoder_init(&d, 1024);
	assert_int_equal(sky_frame_feed(&d, hdr, 4, collect, &g), -EMSGSIZE);
	/* Nothing was buffered for the body. */
	assert_null(d.body.data);
	/* Sticky: the stream stays refused. */
	assert_int_equal(sky_frame_feed(&d, hdr, 1, collect, &g), -EMSGSIZE);
	sky_frame_decoder_free(&d);

	/* Exactly at the limit is fine, one over is not. */
	sky_frame_decoder_init(&d, 1024);
	uint8_t over[4] = {0, 0, 4, 1};
	assert_int_equal(sky_frame_feed(&d, over, 4, collect, &g), -EMSGSIZE);
	sky_frame_decoder_free(&d);
}

static void test_garbage_and_empty(void **state)
{
	struct sky_frame_decoder d;
	struct got g = {0};
	uint8_t garbage[] = {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t empty[] = {0, 0, 0, 0};
	uint8_t no_body[] = {0, 0, 0, 2, 0x08, 0x05}; /* request_id only: oneof unset */
	(void)state;
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, garbage, sizeof(garbage), collect, &g), -EBADMSG);
	sky_frame_decoder_free(&d);
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, empty, sizeof(empty), collect, &g), -EBADMSG);
	sky_frame_decoder_free(&d);
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, no_body, sizeof(no_body), collect, &g), -EBADMSG);
	sky_frame_decoder_free(&d);
	assert_int_equal(g.n, 0);
}

static void test_encode_limits(void **state)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__Error err = SKYROOT__ERROR__INIT;
	struct sky_buf b;
	char *big = malloc(4096);
	(void)state;
	memset(big, 'x', 4095);
	big[4095] = '\0';
	err.message = big;
	env.body_case = SKYROOT__ENVELOPE__BODY_ERROR;
	env.error = &err;
	sky_buf_init(&b, 1 << 20);
	assert_int_equal(sky_frame_encode(&env, 1024, &b), -ENOBUFS);
	assert_int_equal(b.len, 0);
	sky_buf_free(&b);
	/* The output buffer's own maximum holds too. */
	sky_buf_init(&b, 100);
	assert_int_equal(sky_frame_encode(&env, SKY_FRAME_MAX_DEFAULT, &b), -ENOBUFS);
	sky_buf_free(&b);
	free(big);
}

static int stop_after_one(void *ctx, Skyroot__Envelope *env)
{
	(void)ctx;
	skyroot__envelope__free_unpacked(env, NULL);
	return -ECANCELED;
}

static void test_callback_error_propagates(void **state)
{
	struct sky_buf b;
	struct sky_frame_decoder d;
	(void)state;
	sky_buf_init(&b, 1 << 20);
	encode_hb(&b, 1, 1);
	encode_hb(&b, 2, 2);
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, b.data, b.len, stop_after_one, NULL), -ECANCELED);
	sky_frame_decoder_free(&d);
	sky_buf_free(&b);
}

static int check_no_unknown(void *ctx, Skyroot__Envelope *env)
{
	uint8_t *out = ctx;
	assert_int_equal(env->body_case, SKYROOT__ENVELOPE__BODY_HEARTBEAT);
	assert_int_equal(env->base.n_unknown_fields, 0);
	assert_int_equal(env->heartbeat->base.n_unknown_fields, 0);
	assert_int_equal(env->heartbeat->seq, 1);
	/* packs to just what it says: request_id 7, heartbeat { seq 1 } */
	assert_int_equal(skyroot__envelope__get_packed_size(env), 6);
	skyroot__envelope__pack(env, out);
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

/* Unknown fields - a newer peer's, or malformed ones protobuf-c would
 * pack again as they came - are dropped before the envelope is handed out. */
static void test_unknown_fields_dropped(void **state)
{
	/* request_id=7, heartbeat{seq=1, field 15 = 5}, field 98 = "xx" */
	static const uint8_t body[] = { 0x08, 0x07, 0x6a, 0x04, 0x08, 0x01, 0x78, 0x05,
					0x92, 0x06, 0x02, 'x', 'x' };
	static const uint8_t want[] = { 0x08, 0x07, 0x6a, 0x02, 0x08, 0x01 };
	uint8_t frame[4 + sizeof(body)], out[16] = { 0 };
	struct sky_frame_decoder d;
	(void)state;
	frame[0] = frame[1] = frame[2] = 0;
	frame[3] = sizeof(body);
	memcpy(frame + 4, body, sizeof(body));
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, frame, sizeof(frame), check_no_unknown, out), 0);
	assert_memory_equal(out, want, sizeof(want));
	sky_frame_decoder_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_byte_by_byte),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversize_rejected_before_allocation),
		cmocka_unit_test(test_garbage_and_empty),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_callback_error_propagates),
		cmocka_unit_test(test_unknown_fields_dropped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
