/* Frame codec: round trips, truncation, oversize, garbage; the tail form
 * (a ChunkData header, then raw bytes) with hostile lengths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* ---- the tail form ---- */

struct tail_got {
	int begins, ends, frames;
	uint64_t req;
	uint32_t index;
	char image_id[32];
	size_t announced;
	uint8_t bytes[8192];
	size_t len;
	size_t pieces;
};

static int tail_begin(void *ctx, Skyroot__Envelope *env, size_t tail_len)
{
	struct tail_got *t = ctx;
	assert_int_equal(env->body_case, SKYROOT__ENVELOPE__BODY_CHUNK_DATA);
	assert_int_equal(env->chunk_data->data.len, 0);
	assert_int_equal(t->begins, t->ends); /* never two at once */
	t->begins++;
	t->req = env->request_id;
	t->index = env->chunk_data->index;
	snprintf(t->image_id, sizeof(t->image_id), "%s", env->chunk_data->image_id);
	t->announced = tail_len;
	t->len = 0;
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

static int tail_data(void *ctx, const uint8_t *p, size_t len)
{
	struct tail_got *t = ctx;
	assert_int_equal(t->begins, t->ends + 1);
	assert_true(t->len + len <= t->announced);
	assert_true(t->len + len <= sizeof(t->bytes));
	memcpy(t->bytes + t->len, p, len);
	t->len += len;
	t->pieces++;
	return 0;
}

static int tail_end(void *ctx)
{
	struct tail_got *t = ctx;
	assert_int_equal(t->len, t->announced);
	t->ends++;
	return 0;
}

static const struct sky_frame_tail_ops tail_ops = { tail_begin, tail_data, tail_end };

static int tail_frame_cb(void *ctx, Skyroot__Envelope *env)
{
	struct tail_got *t = ctx;
	t->frames++;
	if (env->body_case == SKYROOT__ENVELOPE__BODY_CHUNK_DATA) {
		t->req = env->request_id;
		t->index = env->chunk_data->index;
		assert_true(env->chunk_data->data.len <= sizeof(t->bytes));
		memcpy(t->bytes, env->chunk_data->data.data, env->chunk_data->data.len);
		t->len = env->chunk_data->data.len;
	}
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

/* A tail-form frame for chunk `index` of "img-1" with n bytes of pattern. */
static size_t encode_tail(uint8_t *out, size_t cap, uint64_t req, uint32_t index, size_t n, size_t max)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__ChunkData cd = SKYROOT__CHUNK_DATA__INIT;
	int p;
	cd.image_id = "img-1";
	cd.index = index;
	env.request_id = req;
	env.body_case = SKYROOT__ENVELOPE__BODY_CHUNK_DATA;
	env.chunk_data = &cd;
	p = sky_frame_encode_tail_prefix(&env, n, max, out, cap);
	assert_true(p > 0);
	assert_true((size_t)p + n <= cap);
	for (size_t i = 0; i < n; i++)
		out[p + i] = (uint8_t)(i * 7 + index);
	return (size_t)p + n;
}

static void test_tail_roundtrip(void **state)
{
	uint8_t buf[3 * 8192];
	size_t len = 0;
	struct sky_buf hb;
	struct sky_frame_decoder d;
	struct tail_got t = {0};
	struct got g = {0};
	(void)state;
	len += encode_tail(buf + len, sizeof(buf) - len, 41, 3, 5000, SKY_FRAME_MAX_DEFAULT);
	sky_buf_init(&hb, 1024);
	encode_hb(&hb, 42, 1);
	memcpy(buf + len, hb.data, hb.len);
	len += hb.len;
	sky_buf_free(&hb);
	len += encode_tail(buf + len, sizeof(buf) - len, 43, 4, 0, SKY_FRAME_MAX_DEFAULT);

	/* Byte by byte, to the tail ops: the raw bytes come as they arrive. */
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	sky_frame_decoder_accept_tail(&d, &tail_ops);
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(sky_frame_feed(&d, buf + i, 1, tail_frame_cb, &t), 0);
		if (i == 1000) { /* mid-tail: a partial frame, bytes already handed on */
			assert_true(sky_frame_decoder_partial(&d));
			assert_int_equal(t.begins, 1);
			assert_true(t.len > 900 && t.len < 1000);
		}
	}
	assert_false(sky_frame_decoder_partial(&d));
	sky_frame_decoder_free(&d);
	/* The heartbeat between the chunks went to the frame callback, the
	 * chunks to the tail ops, one byte a piece. */
	assert_int_equal(t.frames, 1);
	assert_int_equal(t.begins, 2);
	assert_int_equal(t.ends, 2);
	assert_int_equal(t.pieces, 5000);
	assert_int_equal(t.req, 43);
	assert_int_equal(t.index, 4);
	assert_int_equal(t.len, 0);
	(void)g;

	/* In one piece: the first chunk's bytes exactly. */
	memset(&t, 0, sizeof(t));
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	sky_frame_decoder_accept_tail(&d, &tail_ops);
	size_t first = encode_tail(buf, sizeof(buf), 41, 3, 5000, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, buf, first, tail_frame_cb, &t), 0);
	assert_int_equal(t.ends, 1);
	assert_string_equal(t.image_id, "img-1");
	assert_int_equal(t.len, 5000);
	for (size_t i = 0; i < 5000; i++)
		assert_int_equal(t.bytes[i], (uint8_t)(i * 7 + 3));
	assert_false(sky_frame_decoder_partial(&d));
	sky_frame_decoder_free(&d);

	/* Without tail ops: assembled into an ordinary ChunkData. */
	memset(&t, 0, sizeof(t));
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	sky_frame_decoder_accept_tail(&d, NULL);
	for (size_t i = 0; i < first; i += 333)
		assert_int_equal(sky_frame_feed(&d, buf + i, first - i < 333 ? first - i : 333, tail_frame_cb, &t), 0);
	assert_int_equal(t.frames, 1);
	assert_int_equal(t.req, 41);
	assert_int_equal(t.len, 5000);
	assert_int_equal(t.bytes[4999], (uint8_t)(4999 * 7 + 3));
	sky_frame_decoder_free(&d);
}

static void test_tail_refused_unless_accepted(void **state)
{
	uint8_t buf[256];
	size_t n = encode_tail(buf, sizeof(buf), 1, 0, 16, SKY_FRAME_MAX_DEFAULT);
	struct sky_frame_decoder d;
	struct got g = {0};
	(void)state;
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	assert_int_equal(sky_frame_feed(&d, buf, n, collect, &g), -EBADMSG);
	assert_int_equal(g.n, 0);
	assert_null(d.body.data);
	sky_frame_decoder_free(&d);
}

/* Feed bytes to a tail-accepting decoder (limit 1024) and return what feed
 * returned; nothing may reach the callbacks. */
static int feed_hostile(const uint8_t *bytes, size_t n, bool ops)
{
	struct sky_frame_decoder d;
	struct tail_got t = {0};
	int r;
	sky_frame_decoder_init(&d, 1024);
	sky_frame_decoder_accept_tail(&d, ops ? &tail_ops : NULL);
	r = sky_frame_feed(&d, bytes, n, tail_frame_cb, &t);
	assert_int_equal(t.begins + t.frames, 0);
	if (r != 0) /* sticky */
		assert_int_equal(sky_frame_feed(&d, bytes, 1, tail_frame_cb, &t), r);
	sky_frame_decoder_free(&d);
	return r;
}

static void test_tail_hostile_lengths(void **state)
{
	/* heartbeat envelope, to stand for a header that is not a ChunkData */
	uint8_t hb_hdr[] = {0x80, 0, 0, 8, 0, 6, 0x08, 0x07, 0x6a, 0x02, 0x08, 0x01};
	/* a ChunkData header that carries data itself (data = "x") */
	uint8_t with_data[] = {0x80, 0, 0, 8, 0, 6, 0xb2, 0x01, 0x03, 0x1a, 0x01, 'x'};
	(void)state;
	for (int ops = 0; ops < 2; ops++) {
		/* The whole length over the limit, up to the 31-bit maximum:
		 * refused on the length word, before any allocation. */
		uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0, 1};
		uint8_t over[] = {0x80, 0, 4, 1, 0, 1};
		assert_int_equal(feed_hostile(huge, sizeof(huge), ops), -EMSGSIZE);
		assert_int_equal(feed_hostile(over, sizeof(over), ops), -EMSGSIZE);
		/* Too short to hold the header length and a header. */
		uint8_t tiny[] = {0x80, 0, 0, 2, 0, 0};
		assert_int_equal(feed_hostile(tiny, sizeof(tiny), ops), -EBADMSG);
		/* Header length 0, over SKY_FRAME_TAIL_HDR_MAX, or past the frame. */
		uint8_t h0[] = {0x80, 0, 0, 10, 0, 0};
		uint8_t hbig[] = {0x80, 0, 0x04, 0, 0x04, 0x01};
		uint8_t hpast[] = {0x80, 0, 0, 10, 0, 9};
		assert_int_equal(feed_hostile(h0, sizeof(h0), ops), -EBADMSG);
		assert_int_equal(feed_hostile(hbig, sizeof(hbig), ops), -EBADMSG);
		assert_int_equal(feed_hostile(hpast, sizeof(hpast), ops), -EBADMSG);
		/* A header that is not a ChunkData, or one carrying data. */
		assert_int_equal(feed_hostile(hb_hdr, sizeof(hb_hdr), ops), -EBADMSG);
		assert_int_equal(feed_hostile(with_data, sizeof(with_data), ops), -EBADMSG);
	}
	/* The largest allowed header at the limit is fine up to its header. */
	uint8_t at_limit[] = {0x80, 0, 4, 0, 0x03, 0xfe};
	assert_int_equal(feed_hostile(at_limit, sizeof(at_limit), true), 0);
}

static void test_tail_encode_limits(void **state)
{
	Skyroot__Envelope env = SKYROOT__ENVELOPE__INIT;
	Skyroot__ChunkData cd = SKYROOT__CHUNK_DATA__INIT;
	Skyroot__Heartbeat hb = SKYROOT__HEARTBEAT__INIT;
	uint8_t out[SKY_FRAME_TAIL_PREFIX_MAX];
	char id[2048];
	(void)state;
	cd.image_id = "img";
	env.body_case = SKYROOT__ENVELOPE__BODY_CHUNK_DATA;
	env.chunk_data = &cd;
	/* The frame within the limit: header + tail, exactly. */
	int p = sky_frame_encode_tail_prefix(&env, 1000, SKY_FRAME_MAX_BULK, out, sizeof(out));
	assert_true(p > 6);
	size_t h = (size_t)p - 6;
	assert_true(sky_frame_encode_tail_prefix(&env, 1024 - 2 - h, 1024, out, sizeof(out)) > 0);
	assert_int_equal(sky_frame_encode_tail_prefix(&env, 1024 - 1 - h, 1024, out, sizeof(out)), -ENOBUFS);
	assert_int_equal(sky_frame_encode_tail_prefix(&env, SIZE_MAX, SIZE_MAX, out, sizeof(out)), -ENOBUFS);
	/* Room for the prefix. */
	assert_int_equal(sky_frame_encode_tail_prefix(&env, 10, 1024, out, 6), -ENOBUFS);
	/* A header over SKY_FRAME_TAIL_HDR_MAX. */
	memset(id, 'i', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	cd.image_id = id;
	assert_int_equal(sky_frame_encode_tail_prefix(&env, 10, SKY_FRAME_MAX_BULK, out, sizeof(out)), -ENOBUFS);
	/* Only a ChunkData without data. */
	cd.image_id = "img";
	cd.data.data = (uint8_t *)"x";
	cd.data.len = 1;
	assert_int_equal(sky_frame_encode_tail_prefix(&env, 10, 1024, out, sizeof(out)), -EINVAL);
	env.body_case = SKYROOT__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	assert_int_equal(sky_frame_encode_tail_prefix(&env, 10, 1024, out, sizeof(out)), -EINVAL);
}

static int refuse_begin(void *ctx, Skyroot__Envelope *env, size_t tail_len)
{
	(void)ctx;
	(void)tail_len;
	skyroot__envelope__free_unpacked(env, NULL);
	return -ECANCELED;
}

static void test_tail_ops_error_is_sticky(void **state)
{
	static const struct sky_frame_tail_ops refuse = { refuse_begin, tail_data, tail_end };
	uint8_t buf[256];
	size_t n = encode_tail(buf, sizeof(buf), 1, 0, 16, SKY_FRAME_MAX_DEFAULT);
	struct sky_frame_decoder d;
	struct tail_got t = {0};
	(void)state;
	sky_frame_decoder_init(&d, SKY_FRAME_MAX_DEFAULT);
	sky_frame_decoder_accept_tail(&d, &refuse);
	assert_int_equal(sky_frame_feed(&d, buf, n, tail_frame_cb, &t), -ECANCELED);
	assert_int_equal(sky_frame_feed(&d, buf, n, tail_frame_cb, &t), -ECANCELED);
	assert_int_equal(t.len, 0);
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
		cmocka_unit_test(test_tail_roundtrip),
		cmocka_unit_test(test_tail_refused_unless_accepted),
		cmocka_unit_test(test_tail_hostile_lengths),
		cmocka_unit_test(test_tail_encode_limits),
		cmocka_unit_test(test_tail_ops_error_is_sticky),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
