/* A growable byte buffer that never grows past its maximum. */
#ifndef SKY_COMMON_BUF_H
#define SKY_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct sky_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

void sky_buf_init(struct sky_buf *b, size_t max);
/* Make room for at least n more bytes: 0, -ENOBUFS past max, -ENOMEM. */
int sky_buf_reserve(struct sky_buf *b, size_t n);
int sky_buf_append(struct sky_buf *b, const void *data, size_t n);
/* Drop the first n bytes. */
void sky_buf_consume(struct sky_buf *b, size_t n);
void sky_buf_reset(struct sky_buf *b);
/* Free the storage; the buffer may be used again (it is empty). */
void sky_buf_free(struct sky_buf *b);

#endif
