/* skyvmm: guest memory lookups (see sv.h). */
#include "vmm/skyvmm/sv.h"

void *sv_mem_ptr(const struct sv_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct sv_mem_region *r = &m->region[i];
		if (gpa < r->gpa || gpa - r->gpa > r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		if (len == 0 && gpa - r->gpa == r->size)
			continue; /* one past the end is not inside */
		return r->host + (gpa - r->gpa);
	}
	return NULL;
}

uint64_t sv_mem_total(const struct sv_mem *m)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < m->n; i++)
		t += m->region[i].size;
	return t;
}
