/* Agent-link frames: a u32 big-endian length, then one protobuf Envelope.
 * The decoder checks the length against its limit as soon as the 4 header
 * bytes are in, before it allocates or buffers anything of the body. */
#ifndef SKY_COMMON_FRAME_H
#define SKY_COMMON_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "skyroot.pb-c.h"

#define SKY_FRAME_HEADER 4
/* Default limit for control messages (certificates, inventory). */
#define SKY_FRAME_MAX_DEFAULT (256u * 1024u)
/* Frames the controller sends to agents: image chunks (1 MiB) and signed
 * manifests (34 bytes a chunk: 4 MiB covers a 64 GiB image). */
#define SKY_FRAME_MAX_BULK (4u * 1024u * 1024u + 64u * 1024u)

/* Append one frame for env to out.  0, -ENOBUFS (frame over max_frame or
 * out's own max), -ENOMEM. */
int sky_frame_encode(const Skyroot__Envelope *env, size_t max_frame, struct sky_buf *out);

/* Called for each whole, well-formed Envelope, with its unknown fields (a
 * newer peer's, or a broken one's) dropped, so it packs again to what it
 * says; the callee owns env and frees it with
 * skyroot__envelope__free_unpacked(env, NULL).  A non-zero return
 * stops decoding and is returned by sky_frame_feed. */
typedef int (*sky_frame_cb)(void *ctx, Skyroot__Envelope *env);

struct sky_frame_decoder {
	size_t max_frame;
	uint8_t hdr[SKY_FRAME_HEADER];
	size_t hdr_len;
	uint32_t body_len;
	struct sky_buf body;
	int failed;           /* sticky: once a stream is bad it stays bad */
};

void sky_frame_decoder_init(struct sky_frame_decoder *d, size_t max_frame);
/* Feed bytes; calls cb per complete frame.  0 when all input is consumed,
 * -EMSGSIZE for a frame over the limit, -EBADMSG for a body that is not an
 * Envelope (or an empty oneof), -ENOMEM, or what cb returned. */
int sky_frame_feed(struct sky_frame_decoder *d, const uint8_t *data, size_t len,
		   sky_frame_cb cb, void *ctx);
/* 1 when a partial frame is buffered (a truncated stream if it ends now). */
int sky_frame_decoder_partial(const struct sky_frame_decoder *d);
void sky_frame_decoder_free(struct sky_frame_decoder *d);

#endif
