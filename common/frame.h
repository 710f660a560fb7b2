/* Agent-link frames.  Two forms:
 *
 *   plain: u32 BE length L (bit 31 clear, 1 <= L <= limit), then L bytes:
 *          one protobuf Envelope.
 *   tail:  u32 BE word with bit 31 set, its other bits the length L
 *          (3 <= L <= limit); then a u16 BE header length H
 *          (1 <= H <= SKY_FRAME_TAIL_HDR_MAX, H + 2 <= L); then H bytes: an
 *          Envelope whose body is a ChunkData with empty data; then the
 *          L - 2 - H raw bytes of that ChunkData's data.
 *
 * The tail form lets the controller send a chunk straight from the buffer
 * the store read it into, with no protobuf re-pack of the payload, and lets
 * the board take the payload piece by piece as it arrives (straight into
 * its place, hashed on the way).  Only a peer that asked for it gets it
 * (ChunkRequest.raw_tail); a decoder refuses the tail form unless told to
 * accept it (sky_frame_decoder_accept_tail).
 *
 * The decoder checks every length against its limit as soon as its header
 * bytes are in, before it allocates or buffers anything of the body. */
#ifndef SKY_COMMON_FRAME_H
#define SKY_COMMON_FRAME_H

#include <stdbool.h>
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

/* The tail form's header: the largest Envelope it may hold, and the most
 * bytes sky_frame_encode_tail_prefix() writes. */
#define SKY_FRAME_TAIL_HDR_MAX 1024u
#define SKY_FRAME_TAIL_FLAG 0x80000000u
#define SKY_FRAME_TAIL_PREFIX_MAX (SKY_FRAME_HEADER + 2u + SKY_FRAME_TAIL_HDR_MAX)

/* Append one frame for env to out.  0, -ENOBUFS (frame over max_frame or
 * out's own max), -ENOMEM. */
int sky_frame_encode(const Skyroot__Envelope *env, size_t max_frame, struct sky_buf *out);

/* Write the start of a tail-form frame into out (cap bytes, at least
 * SKY_FRAME_TAIL_PREFIX_MAX will do): the length words and hdr, a ChunkData
 * envelope with empty data.  The caller sends tail_len raw bytes right
 * after it.  The prefix length, or -EINVAL (hdr not such an envelope),
 * -ENOBUFS (header over SKY_FRAME_TAIL_HDR_MAX or cap, frame over
 * max_frame). */
int sky_frame_encode_tail_prefix(const Skyroot__Envelope *hdr, size_t tail_len, size_t max_frame, uint8_t *out,
				 size_t cap);

/* Called for each whole, well-formed Envelope, with its unknown fields (a
 * newer peer's, or a broken one's) dropped, so it packs again to what it
 * says; the callee owns env and frees it with
 * skyroot__envelope__free_unpacked(env, NULL).  A non-zero return
 * stops decoding and is returned by sky_frame_feed. */
typedef int (*sky_frame_cb)(void *ctx, Skyroot__Envelope *env);

/* A tail-form frame handed over as it arrives.  begin: its header (a
 * ChunkData envelope with empty data; the callee owns env) and how many raw
 * bytes follow (within the decoder's limit); then data for each piece as it
 * comes (not before begin, in order, tail_len bytes in all); then end.
 * A non-zero return from any of them stops decoding, is returned by
 * sky_frame_feed and leaves the decoder failed (the stream is mid-frame). */
struct sky_frame_tail_ops {
	int (*begin)(void *ctx, Skyroot__Envelope *env, size_t tail_len);
	int (*data)(void *ctx, const uint8_t *p, size_t len);
	int (*end)(void *ctx);
};

struct sky_frame_decoder {
	size_t max_frame;
	uint8_t hdr[SKY_FRAME_HEADER + 2];
	size_t hdr_len;
	size_t hdr_need;      /* 4, or 6 for a tail-form frame */
	uint32_t body_len;    /* the Envelope's bytes (a tail frame: its header's) */
	struct sky_buf body;
	bool tail_ok;         /* the tail form is accepted */
	const struct sky_frame_tail_ops *tail_ops; /* NULL: assembled into the Envelope */
	size_t tail_len;      /* of the current tail-form frame */
	size_t tail_left;     /* its raw bytes still to come (in_tail) */
	bool in_tail;
	Skyroot__Envelope *tail_env; /* being assembled (no tail_ops) */
	int failed;           /* sticky: once a stream is bad it stays bad */
};

void sky_frame_decoder_init(struct sky_frame_decoder *d, size_t max_frame);
/* Accept tail-form frames.  With ops, their tails go to ops piece by piece;
 * with NULL, the decoder buffers the tail (within the limit) and hands the
 * whole ChunkData, data attached, to the frame callback like a plain frame.
 * Without this call a tail-form frame is -EBADMSG. */
void sky_frame_decoder_accept_tail(struct sky_frame_decoder *d, const struct sky_frame_tail_ops *ops);
/* Feed bytes; calls cb per complete frame.  0 when all input is consumed,
 * -EMSGSIZE for a frame over the limit, -EBADMSG for a body that is not an
 * Envelope (or an empty oneof), -ENOMEM, or what cb returned. */
int sky_frame_feed(struct sky_frame_decoder *d, const uint8_t *data, size_t len,
		   sky_frame_cb cb, void *ctx);
/* 1 when a partial frame is buffered or its tail is still arriving (a truncated stream if it ends now). */
int sky_frame_decoder_partial(const struct sky_frame_decoder *d);
void sky_frame_decoder_free(struct sky_frame_decoder *d);

#endif
