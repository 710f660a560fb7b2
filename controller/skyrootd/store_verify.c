/* A whole store verified (store.h store_verify_all): every image's chunks
 * re-hashed and its signed manifest checked, for a restore or a migrate
 * that must not keep a damaged store.  Over store.c; calls nothing back. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "controller/skyrootd/store.h"

struct check_images {
	struct store_image *v;
	size_t n, cap;
};

static int check__image(void *ctx, const struct store_image *img)
{
	struct check_images *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct store_image *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *img;
	return 0;
}

struct check_bad {
	const struct store_verify_ops *ops;
	void *ctx;
	const struct store_image *img;
};

static void check__bad_chunk(void *ctx, uint32_t index, const uint8_t digest[32])
{
	struct check_bad *b = ctx;

	if (b->ops->bad_chunk)
		b->ops->bad_chunk(b->ctx, b->img, index, digest);
}

int store_verify_all(struct store *st, const char *db_path, const struct store_verify_ops *ops, void *ctx)
{
	struct check_images imgs = { 0 };
	char why[160];
	bool bad = false;
	int r = store_image_list(st, check__image, &imgs);

	for (size_t i = 0; r == 0 && i < imgs.n; i++) {
		struct check_bad b = { ops, ctx, &imgs.v[i] };
		struct store_verdict v = { .img = &imgs.v[i], .why = "" };
		int sig;

		why[0] = '\0';
		v.bad_chunks = store_verify(db_path, v.img->id, &v.chunks, check__bad_chunk, &b);
		sig = v.bad_chunks < 0 ? 0 : store_image_check_manifest(st, v.img->id, why, sizeof(why));
		if (v.bad_chunks < 0 || (sig < 0 && sig != -EBADMSG)) {
			v.err = r = v.bad_chunks < 0 ? v.bad_chunks : sig;
			v.bad_chunks = 0;
		} else {
			v.why = sig < 0 ? why : "";
			v.ok = v.bad_chunks == 0 && sig == 0 && v.chunks == v.img->chunks;
			bad |= !v.ok;
		}
		ops->verdict(ctx, &v);
	}
	free(imgs.v);
	return r < 0 ? r : bad ? -EBADMSG : 0;
}
