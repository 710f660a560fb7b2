#include "common/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

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
	put_be32(p, (uint32_t)n);
	skyroot__envelope__pack(env, p + SKY_FRAME_HEADER);
	out->len += SKY_FRAME_HEADER + n;
	return 0;
}

int sky_frame_encode_tail_prefix(const Skyroot__Envelope *hdr, size_t tail_len, size_t max_frame, uint8_t *out,
				 size_t cap)
{
	size_t h;

	if (hdr->body_case != SKYROOT__ENVELOPE__BODY_CHUNK_DATA || !hdr->chunk_data || hdr->chunk_data->data.len)
		return -EINVAL;
	h = skyroot__envelope__get_packed_size(hdr);
	if (h == 0 || h > SKY_FRAME_TAIL_HDR_MAX || SKY_FRAME_HEADER + 2 + h > cap)
		return -ENOBUFS;
	/* The whole frame within the limit, and its length within 31 bits. */
	if (tail_len > ~SKY_FRAME_TAIL_FLAG || 2 + h + tail_len > max_frame || 2 + h + tail_len > ~SKY_FRAME_TAIL_FLAG)
		return -ENOBUFS;
	put_be32(out, (uint32_t)(2 + h + tail_len) | SKY_FRAME_TAIL_FLAG);
	out[4] = (uint8_t)(h >> 8);
	out[5] = (uint8_t)h;
	skyroot__envelope__pack(hdr, out + SKY_FRAME_HEADER + 2);
	return (int)(SKY_FRAME_HEADER + 2 + h);
}

void sky_frame_decoder_init(struct sky_frame_decoder *d, size_t max_frame)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame;
	d->hdr_need = SKY_FRAME_HEADER;
	sky_buf_init(&d->body, max_frame);
}

void sky_frame_decoder_accept_tail(struct sky_frame_decoder *d, const struct sky_frame_tail_ops *ops)
{
	d->tail_ok = true;
	d->tail_ops = ops;
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

/* The body that was buffered, as an Envelope; the buffer is released so
 * an idle session holds none.  NULL when it does not parse or has no body. */
static Skyroot__Envelope *body_unpack(struct sky_frame_decoder *d)
{
	Skyroot__Envelope *env = skyroot__envelope__unpack(NULL, d->body.len, d->body.data);

	d->hdr_len = 0;
	d->hdr_need = SKY_FRAME_HEADER;
	d->body_len = 0;
	sky_buf_free(&d->body);
	if (env && env->body_case == SKYROOT__ENVELOPE__BODY__NOT_SET) {
		skyroot__envelope__free_unpacked(env, NULL);
		env = NULL;
	}
	if (env)
		strip_unknown(&env->base);
	return env;
}

static int frame_deliver(struct sky_frame_decoder *d, sky_frame_cb cb, void *ctx)
{
	Skyroot__Envelope *env = body_unpack(d);

	if (!env)
		return -EBADMSG;
	return cb(ctx, env);
}

/* A tail-form frame's raw bytes are all in: hand it over.  Non-zero from
 * the tail ops leaves the stream failed; from cb, as for a plain frame. */
static int tail_finish(struct sky_frame_decoder *d, sky_frame_cb cb, void *ctx)
{
	Skyroot__Envelope *env = d->tail_env;
	int r;

	d->in_tail = false;
	if (d->tail_ops) {
		r = d->tail_ops->end(ctx);
		if (r != 0)
			d->failed = r;
		return r;
	}
	d->tail_env = NULL;
	return cb(ctx, env);
}

/* A tail-form frame's header is in: check it is a ChunkData without data,
 * then hand it over (or get room for its tail, which is within the limit). */
static int tail_start(struct sky_frame_decoder *d, sky_frame_cb cb, void *ctx)
{
	Skyroot__Envelope *env = body_unpack(d);
	int r;

	if (!env || env->body_case != SKYROOT__ENVELOPE__BODY_CHUNK_DATA || env->chunk_data->data.len) {
		if (env)
			skyroot__envelope__free_unpacked(env, NULL);
		d->failed = -EBADMSG;
		return d->failed;
	}
	d->tail_left = d->tail_len;
	d->in_tail = true;
	if (d->tail_ops) {
		r = d->tail_ops->begin(ctx, env, d->tail_len);
		if (r != 0) {
			d->in_tail = false;
			d->failed = r;
			return r;
		}
	} else {
		/* free_unpacked frees the data with the rest of env. */
		env->chunk_data->data.data = malloc(d->tail_len ? d->tail_len : 1);
		if (!env->chunk_data->data.data) {
			skyroot__envelope__free_unpacked(env, NULL);
			d->in_tail = false;
			d->failed = -ENOMEM;
			return d->failed;
		}
		d->tail_env = env;
	}
	if (d->tail_left == 0)
		return tail_finish(d, cb, ctx);
	return 0;
}

static int tail_piece(struct sky_frame_decoder *d, const uint8_t *data, size_t len, void *ctx)
{
	ProtobufCBinaryData *b;
	int r;

	if (d->tail_ops) {
		r = d->tail_ops->data(ctx, data, len);
		if (r != 0)
			d->failed = r;
		return r;
	}
	b = &d->tail_env->chunk_data->data;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

/* The length words are in: check them against the limit. */
static int frame_lengths(struct sky_frame_decoder *d)
{
	uint32_t w;

	if (d->hdr_len == SKY_FRAME_HEADER + 2) { /* a tail frame's header length */
		uint32_t h = (uint32_t)d->hdr[4] << 8 | d->hdr[5];
		if (h == 0 || h > SKY_FRAME_TAIL_HDR_MAX || h + 2 > d->tail_len)
			return -EBADMSG;
		d->body_len = h;
		d->tail_len -= 2 + h;
		return 0;
	}
	w = (uint32_t)d->hdr[0] << 24 | (uint32_t)d->hdr[1] << 16 | (uint32_t)d->hdr[2] << 8 | d->hdr[3];
	if (w & SKY_FRAME_TAIL_FLAG) {
		w &= ~SKY_FRAME_TAIL_FLAG;
		if (!d->tail_ok)
			return -EBADMSG;
		if (w > d->max_frame)
			return -EMSGSIZE;
		if (w < 3)
			return -EBADMSG;
		d->tail_len = w;
		d->hdr_need = SKY_FRAME_HEADER + 2;
		return 0;
	}
	if (w > d->max_frame)
		return -EMSGSIZE;
	if (w == 0)
		return -EBADMSG;
	d->body_len = w;
	return 0;
}

int sky_frame_feed(struct sky_frame_decoder *d, const uint8_t *data, size_t len,
		   sky_frame_cb cb, void *ctx)
{
	int r;

	if (d->failed)
		return d->failed;
	while (len > 0) {
		if (d->in_tail) {
			size_t take = d->tail_left < len ? d->tail_left : len;
			r = tail_piece(d, data, take, ctx);
			if (r != 0)
				return r;
			data += take;
			len -= take;
			d->tail_left -= take;
			if (d->tail_left == 0) {
				r = tail_finish(d, cb, ctx);
				if (r != 0)
					return r;
			}
			continue;
		}
		if (d->hdr_len < d->hdr_need) {
			size_t take = d->hdr_need - d->hdr_len;
			if (take > len)
				take = len;
			memcpy(d->hdr + d->hdr_len, data, take);
			d->hdr_len += take;
			data += take;
			len -= take;
			if (d->hdr_len < d->hdr_need)
				break;
			r = frame_lengths(d);
			if (r < 0) {
				d->failed = r;
				return r;
			}
			if (d->hdr_len < d->hdr_need)
				continue; /* a tail frame: its header length comes next */
			/* One allocation of exactly the announced (and bounded) size. */
			r = sky_buf_reserve(&d->body, d->body_len);
			if (r < 0) {
				d->failed = r;
				return r;
			}
			if (len == 0)
				break;
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
			if (d->hdr_need == SKY_FRAME_HEADER + 2) {
				r = tail_start(d, cb, ctx);
			} else {
				r = frame_deliver(d, cb, ctx);
				if (r == -EBADMSG)
					d->failed = r;
			}
			if (r != 0)
				return r;
		}
	}
	return 0;
}

int sky_frame_decoder_partial(const struct sky_frame_decoder *d)
{
	return d->hdr_len > 0 || d->in_tail;
}

void sky_frame_decoder_free(struct sky_frame_decoder *d)
{
	sky_buf_free(&d->body);
	if (d->tail_env)
		skyroot__envelope__free_unpacked(d->tail_env, NULL);
	d->tail_env = NULL;
	d->in_tail = false;
	d->hdr_len = 0;
	d->hdr_need = SKY_FRAME_HEADER;
	d->body_len = 0;
}
