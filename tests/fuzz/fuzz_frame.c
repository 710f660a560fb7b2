/* libFuzzer target: the agent-link frame decoder (common/frame.c), which
 * both ends run on every byte that comes from the network.
 *
 * The first input byte picks how the rest is cut into reads (1..256 bytes
 * each, as a TCP stream may arrive); the second how the tail form
 * (a ChunkData header, then raw bytes) is taken: refused (as the
 * controller does), assembled into the Envelope, or handed over piece by
 * piece (as the board does).  The decoder must never crash, leak or buffer
 * past its limit, and once it fails it stays failed.  A tail handed over
 * comes between one begin and one end, as many bytes as announced, within
 * the limit, and its header with the bytes encodes again, in the tail form,
 * to a frame that decodes to the same.  Every Envelope
 * it hands out must encode again, and that encoding must decode and encode
 * to the very same bytes (the decoder drops unknown fields, which
 * protobuf-c would otherwise pack again as they came, malformed or not). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"

#define FUZZ_FRAME_MAX (64u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The second decode: re-encode into the buffer in ctx. */
static int reencode(void *ctx, Skyroot__Envelope *env)
{
	struct sky_buf *out = ctx;
	if (sky_frame_encode(env, 4 * FUZZ_FRAME_MAX, out) != 0)
		abort();
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

static int check_envelope(void *ctx, Skyroot__Envelope *env)
{
	struct sky_buf a, b;
	struct sky_frame_decoder d;
	unsigned *count = ctx;

	(*count)++;
	if (env->body_case == SKYROOT__ENVELOPE__BODY__NOT_SET)
		abort(); /* the decoder promises a body */
	sky_buf_init(&a, 4 * FUZZ_FRAME_MAX);
	sky_buf_init(&b, 4 * FUZZ_FRAME_MAX);
	if (sky_frame_encode(env, 4 * FUZZ_FRAME_MAX, &a) != 0)
		abort();
	sky_frame_decoder_init(&d, 4 * FUZZ_FRAME_MAX);
	if (sky_frame_feed(&d, a.data, a.len, reencode, &b) != 0)
		abort();
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	sky_frame_decoder_free(&d);
	sky_buf_free(&a);
	sky_buf_free(&b);
	skyroot__envelope__free_unpacked(env, NULL);
	return 0;
}

/* The tail handed over piece by piece (mode 2). */
struct tail_state {
	unsigned *count;
	Skyroot__Envelope *hdr;
	uint8_t *bytes;
	size_t announced;
	size_t got;
};

static int tail_begin(void *ctx, Skyroot__Envelope *env, size_t tail_len)
{
	struct tail_state *t = ctx;
	if (t->hdr || env->body_case != SKYROOT__ENVELOPE__BODY_CHUNK_DATA || env->chunk_data->data.len ||
	    tail_len > FUZZ_FRAME_MAX)
		abort();
	t->hdr = env;
	t->announced = tail_len;
	t->got = 0;
	t->bytes = malloc(tail_len ? tail_len : 1);
	if (!t->bytes)
		abort();
	return 0;
}

static int tail_data(void *ctx, const uint8_t *p, size_t len)
{
	struct tail_state *t = ctx;
	if (!t->hdr || len == 0 || t->got + len > t->announced)
		abort();
	memcpy(t->bytes + t->got, p, len);
	t->got += len;
	return 0;
}

static int tail_end(void *ctx)
{
	struct tail_state *t = ctx;
	uint8_t *frame;
	int n;

	if (!t->hdr || t->got != t->announced)
		abort();
	/* Encode it again in the tail form; assembled, it must be the same
	 * ChunkData as the header with these bytes. */
	frame = malloc(SKY_FRAME_TAIL_PREFIX_MAX + t->got);
	if (!frame)
		abort();
	n = sky_frame_encode_tail_prefix(t->hdr, t->got, FUZZ_FRAME_MAX, frame, SKY_FRAME_TAIL_PREFIX_MAX);
	if (n < 0)
		abort();
	memcpy(frame + n, t->bytes, t->got);
	{
		struct sky_frame_decoder d;
		struct sky_buf a, b;
		Skyroot__ChunkData *cd = t->hdr->chunk_data;
		sky_buf_init(&a, 4 * FUZZ_FRAME_MAX);
		sky_buf_init(&b, 4 * FUZZ_FRAME_MAX);
		cd->data.data = t->bytes;
		cd->data.len = t->got;
		if (sky_frame_encode(t->hdr, 4 * FUZZ_FRAME_MAX, &a) != 0)
			abort();
		cd->data.data = NULL;
		cd->data.len = 0;
		sky_frame_decoder_init(&d, FUZZ_FRAME_MAX);
		sky_frame_decoder_accept_tail(&d, NULL);
		if (sky_frame_feed(&d, frame, (size_t)n + t->got, reencode, &b) != 0)
			abort();
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
		sky_frame_decoder_free(&d);
		sky_buf_free(&a);
		sky_buf_free(&b);
	}
	free(frame);
	free(t->bytes);
	t->bytes = NULL;
	skyroot__envelope__free_unpacked(t->hdr, NULL);
	t->hdr = NULL;
	(*t->count)++;
	return 0;
}

static const struct sky_frame_tail_ops tail_ops = { tail_begin, tail_data, tail_end };

static int check_envelope_t(void *ctx, Skyroot__Envelope *env)
{
	struct tail_state *t = ctx;
	return check_envelope(t->count, env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sky_frame_decoder d;
	unsigned count = 0;
	size_t step, off;
	int r = 0;

	struct tail_state t = { .count = &count };
	unsigned mode;

	if (size < 2)
		return 0;
	step = (size_t)data[0] + 1;
	mode = data[1] % 3;
	data += 2;
	size -= 2;
	sky_frame_decoder_init(&d, FUZZ_FRAME_MAX);
	if (mode == 1)
		sky_frame_decoder_accept_tail(&d, NULL);
	else if (mode == 2)
		sky_frame_decoder_accept_tail(&d, &tail_ops);
	for (off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		r = sky_frame_feed(&d, data + off, n, check_envelope_t, &t);
		if (r != 0)
			break;
		if (d.body.len > FUZZ_FRAME_MAX)
			abort();
	}
	if (r != 0) {
		if (r != -EMSGSIZE && r != -EBADMSG && r != -ENOMEM)
			abort();
		/* sticky: nothing more is accepted */
		if (sky_frame_feed(&d, data, size, check_envelope_t, &t) == 0 && size > 0)
			abort();
	}
	/* A tail cut off by the end of input is still open: drop it. */
	if (t.hdr) {
		if (!sky_frame_decoder_partial(&d))
			abort();
		skyroot__envelope__free_unpacked(t.hdr, NULL);
		free(t.bytes);
	}
	sky_frame_decoder_free(&d);
	return 0;
}
