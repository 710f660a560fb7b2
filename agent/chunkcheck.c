/* Chunks checked and written off the loop: see chunkcheck.h. */
#include "agent/chunkcheck.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

struct chunkcheck *chunkcheck_get(struct chunkcheck_spares *sp, uint32_t len)
{
	struct chunkcheck *ck = sp->head;
	size_t want = len ? len : 1;

	if (ck) {
		sp->head = ck->next;
		sp->n--;
	} else {
		ck = calloc(1, sizeof(*ck));
		if (!ck)
			return NULL;
	}
	if (ck->cap < want) {
		uint8_t *b = malloc(want);
		if (!b) {
			free(ck->buf);
			free(ck);
			return NULL;
		}
		free(ck->buf);
		ck->buf = b;
		ck->cap = want;
	}
	ck->next = NULL;
	ck->len = len;
	ck->got = 0;
	ck->fd = -1;
	ck->result = 0;
	return ck;
}

void chunkcheck_put(struct chunkcheck_spares *sp, struct chunkcheck *ck, unsigned keep)
{
	if (!ck)
		return;
	if (ck->fd >= 0) {
		close(ck->fd);
		ck->fd = -1;
	}
	if (sp->n >= keep) {
		free(ck->buf);
		free(ck);
		return;
	}
	ck->next = sp->head;
	sp->head = ck;
	sp->n++;
}

void chunkcheck_drop_spares(struct chunkcheck_spares *sp)
{
	while (sp->head) {
		struct chunkcheck *ck = sp->head;
		sp->head = ck->next;
		free(ck->buf);
		free(ck);
	}
	sp->n = 0;
}

bool chunkcheck_take(struct chunkcheck *ck, const uint8_t *p, size_t len)
{
	if (len > ck->len - ck->got)
		return false;
	memcpy(ck->buf + ck->got, p, len);
	ck->got += (uint32_t)len;
	return true;
}

int chunkcheck_pwrite_all(int fd, const uint8_t *p, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

void chunkcheck_run(void *arg)
{
	struct chunkcheck *ck = arg;
	uint8_t got[32];

	sky_sha256(ck->buf, ck->len, got);
	if (!sky_memeq_ct(got, ck->digest, 32)) {
		ck->result = -EBADMSG;
		return;
	}
	ck->result = ck->fd >= 0 ? chunkcheck_pwrite_all(ck->fd, ck->buf, ck->len, ck->off) : -EBADF;
}
