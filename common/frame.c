#include "common/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sky_frame_encode(const Skyroot__Envelope *env, size_t max_frame, struct sky_buf *out)
{
	size_t n = skyroot__envelope__get_packed_size(env);
	int r;

	if (n > max_frame || n > UINT32_MAX)
		return -ENOBUFS;
	r = sky_buf_reserve(out, SKY_FRAME_HEADER + n);
	if (r < 0)
		return r;
	uint8_t *p = out->data + out->len;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	skyroot__envelope__pack(env, p + SKY_FRAME_HEADER);
	out->len += SKY_FRAME_HEADER + n;
	return 0;
}

void sky_frame_decoder_init(struct sky_frame_decoder *d, size_t max_frame)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame;
	sky_buf_init(&d->body, max_frame);
}

/* Drop the unknown fields of m and of every message it holds.  protobuf-c
 * keeps them as they came, malformed or not, and packs them again; nobody
 * here reads them (they come from a newer peer, or from a broken one).
 * unpack with a NULL allocator uses malloc, so free() releases them. */
static void strip_unknown(ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	char *base = (char *)m;

	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		free(m->unknown_fields[i].data);
	free(m->unknown_fields);
	m->unknown_fields = NULL;
	m->n_unknown_fields = 0;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)(base + f->quantifier_offset);
			ProtobufCMessage **v = *(ProtobufCMessage ***)(base + f->offset);
			for (size_t k = 0; k < n; k++)
				strip_unknown(v[k]);
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		ProtobufCMessage *sub = *(ProtobufCMessage **)(base + f->offset);
		if (sub)
			strip_unknown(sub);
	}
}

static int frame_deliver(struct sky_frame_decoder *d, sky_frame_cb cb, void *ctx)
{
	Skyroot__Envelope *env;

	env = skyroot__envelope__unpack(NULL, d->body.len, d->body.data);
	d->hdr_len = 0;
	d->body_len = 0;
	/* Release the body so an idle session holds no buffer. */
	sky_buf_free(&d->body);
	if (!env)
		return -EBADMSG;
	if (env->body_case == SKYROOT__ENVELOPE__BODY__NOT_SET) {
		skyroot__envelope__free_unpacked(env, NULL);
		return -EBADMSG;
	}
	strip_unknown(&env->base);
	return cb(ctx, env);
}

int sky_frame_feed(struct sky_frame_decoder *d, const uint8_t *data, size_t len,
		   sky_frame_cb cb, void *ctx)
{
	int r;

	if (d->failed)
		return d->failed;
	while (len > 0) {
		if (d->hdr_len < SKY_FRAME_HEADER) {
			size_t take = SKY_FRAME_HEADER - d->hdr_len;
			if (take > len)
				take = len;
			memcpy(d->hdr + d->hdr_len, data, take);
			d->hdr_len += take;
			data += take;
			len -= take;
			if (d->hdr_len < SKY_FRAME_HEADER)
				break;
			d->body_len = (uint32_t)d->hdr[0] << 24 | (uint32_t)d->hdr[1] << 16 |
				      (uint32_t)d->hdr[2] << 8 | d->hdr[3];
			if (d->body_len > d->max_frame) {
				d->failed = -EMSGSIZE;
				return d->failed;
			}
			if (d->body_len == 0) {
				d->failed = -EBADMSG;
				return d->failed;
			}
			/* One allocation of exactly the announced (and bounded) size. */
			r = sky_buf_reserve(&d->body, d->body_len);
			if (r < 0) {
				d->failed = r;
				return r;
			}
		}
		size_t want = d->body_len - d->body.len;
		size_t take = want < len ? want : len;
		r = sky_buf_append(&d->body, data, take);
		if (r < 0) {
			d->failed = r;
			return r;
		}
		data += take;
		len -= take;
		if (d->body.len == d->body_len) {
			r = frame_deliver(d, cb, ctx);
			if (r == -EBADMSG)
				d->failed = r;
			if (r != 0)
				return r;
		}
	}
	return 0;
}

int sky_frame_decoder_partial(const struct sky_frame_decoder *d)
{
	return d->hdr_len > 0;
}

void sky_frame_decoder_free(struct sky_frame_decoder *d)
{
	sky_buf_free(&d->body);
	d->hdr_len = 0;
	d->body_len = 0;
}
