/* skyvmm: the I/O bus, port and MMIO ranges with a handler each (sv.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/skyvmm/sv.h"

int sv_bus_init(struct sv_bus *b)
{
	pthread_rwlock_t *l = malloc(sizeof(*l));
	memset(b, 0, sizeof(*b));
	if (!l)
		return -ENOMEM;
	if (pthread_rwlock_init(l, NULL) != 0) {
		free(l);
		return -ENOMEM;
	}
	b->lock = l;
	return 0;
}

void sv_bus_fini(struct sv_bus *b)
{
	if (b->lock) {
		pthread_rwlock_destroy(b->lock);
		free(b->lock);
	}
	memset(b, 0, sizeof(*b));
}

int sv_bus_add(struct sv_bus *b, enum sv_space sp, uint64_t base, uint64_t len, sv_io_fn fn, void *opaque)
{
	struct sv_bus_range *r = b->r[sp];
	unsigned i, n;
	int err = 0;

	if (len == 0 || base + len < base || !fn)
		return -EINVAL;
	pthread_rwlock_wrlock(b->lock);
	n = b->n[sp];
	for (i = 0; i < n && r[i].base < base; i++)
		;
	if (n == SV_BUS_MAX)
		err = -ENOSPC;
	else if ((i > 0 && r[i - 1].base + r[i - 1].len > base) || (i < n && base + len > r[i].base))
		err = -EEXIST;
	if (!err) {
		memmove(&r[i + 1], &r[i], (n - i) * sizeof(*r));
		r[i] = (struct sv_bus_range){ base, len, fn, opaque };
		b->n[sp] = n + 1;
	}
	pthread_rwlock_unlock(b->lock);
	return err;
}

int sv_bus_del(struct sv_bus *b, enum sv_space sp, uint64_t base, void *opaque)
{
	struct sv_bus_range *r = b->r[sp];
	int err = -ENOENT;

	pthread_rwlock_wrlock(b->lock);
	for (unsigned i = 0; i < b->n[sp]; i++) {
		if (r[i].base == base && r[i].opaque == opaque) {
			memmove(&r[i], &r[i + 1], (b->n[sp] - i - 1) * sizeof(*r));
			b->n[sp]--;
			err = 0;
			break;
		}
	}
	pthread_rwlock_unlock(b->lock);
	return err;
}

bool sv_bus_access(struct sv_bus *b, enum sv_space sp, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct sv_bus_range *r = b->r[sp];
	unsigned lo = 0, hi;
	sv_io_fn fn = NULL;
	void *opaque = NULL;
	uint64_t off = 0;

	pthread_rwlock_rdlock(b->lock);
	hi = b->n[sp];
	while (lo < hi) { /* the last range whose base <= addr */
		unsigned mid = (lo + hi) / 2;
		if (r[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0) {
		const struct sv_bus_range *x = &r[lo - 1];
		off = addr - x->base;
		if (off < x->len && len <= x->len - off) {
			fn = x->fn;
			opaque = x->opaque;
		}
	}
	pthread_rwlock_unlock(b->lock);
	/* The handler runs outside the lock: a BAR write may move ranges.
	 * Devices outlive the bus's use of them (removed only at teardown,
	 * after the vCPUs stopped). */
	if (!fn) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	fn(opaque, off, data, len, is_write);
	return true;
}
