/* libFuzzer target: the agent-link frame decoder (common/frame.c), which
 * both ends run on every byte that comes from the network.
 *
 * The first input byte picks how the rest is cut into reads (1..256 bytes
 * each, as a TCP stream may arrive).  The decoder must never crash, leak or
 * buffer past its limit, and once it fails it stays failed.  Every Envelope
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sky_frame_decoder d;
	unsigned count = 0;
	size_t step, off;
	int r = 0;

	if (size < 1)
		return 0;
	step = (size_t)data[0] + 1;
	data++;
	size--;
	sky_frame_decoder_init(&d, FUZZ_FRAME_MAX);
	for (off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		r = sky_frame_feed(&d, data + off, n, check_envelope, &count);
		if (r != 0)
			break;
		if (d.body.len > FUZZ_FRAME_MAX)
			abort();
	}
	if (r != 0) {
		if (r != -EMSGSIZE && r != -EBADMSG && r != -ENOMEM)
			abort();
		/* sticky: nothing more is accepted */
		if (sky_frame_feed(&d, data, size, check_envelope, &count) == 0 && size > 0)
			abort();
	}
	sky_frame_decoder_free(&d);
	return 0;
}
