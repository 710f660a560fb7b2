#include "common/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sky_buf_init(struct sky_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int sky_buf_reserve(struct sky_buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *nd;

	if (n > b->max || b->len > b->max - n)
		return -ENOBUFS;
	need = b->len + n;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	nd = realloc(b->data, cap);
	if (!nd)
		return -ENOMEM;
	b->data = nd;
	b->cap = cap;
	return 0;
}

int sky_buf_append(struct sky_buf *b, const void *data, size_t n)
{
	int r;
	if (n == 0)
		return 0;
	r = sky_buf_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

void sky_buf_consume(struct sky_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void sky_buf_reset(struct sky_buf *b)
{
	b->len = 0;
}

void sky_buf_free(struct sky_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
