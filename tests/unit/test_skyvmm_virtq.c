/* Unit tests for skyvmm's split virtqueues (vmm/skyvmm/dev/virtq.c) over a
 * calloc'd guest memory: well-formed chains (direct, indirect, readable
 * then writable, copied in and out, returned on the used ring), and hostile
 * ones, each of which must be refused (-EIO) without a crash or a hang:
 * loops, out-of-range and wrapping addresses, oversize lengths, chains
 * longer than the queue, indirect tables pointing to themselves or nested,
 * INDIRECT with NEXT, a head or next index past the table, an available
 * index that jumps by more than the ring, readable after writable; and the
 * ring checks when a queue starts.
 *
 * Environment: none needed.   ./test_skyvmm_virtq
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/skyvmm/dev/virtq.h"

#define RAM (1u << 20)
#define QS 16
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define BUF 0x10000

struct g {
	uint8_t *ram;
	struct sv_mem mem;
	struct sv_virtq q;
	uint16_t aidx;
	struct sv_vq_chain c;
};

static int setup(void **state)
{
	struct g *g = calloc(1, sizeof(*g));
	g->ram = calloc(1, RAM);
	g->mem.region[0] = (struct sv_mem_region){ 0, RAM, g->ram };
	g->mem.n = 1;
	assert_int_equal(sv_virtq_start(&g->q, &g->mem, QS, DESC, AVAIL, USED), 0);
	*state = g;
	return 0;
}

static int teardown(void **state)
{
	struct g *g = *state;
	free(g->ram);
	free(g);
	return 0;
}

static void desc_at(struct g *g, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	uint8_t *p = g->ram + table + 16 * i;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void desc(struct g *g, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(g, DESC, i, addr, len, flags, next);
}

static void avail(struct g *g, uint16_t head)
{
	memcpy(g->ram + AVAIL + 4 + 2 * (g->aidx % QS), &head, 2);
	g->aidx++;
	memcpy(g->ram + AVAIL + 2, &g->aidx, 2);
}

#define N SV_VQ_DESC_NEXT
#define W SV_VQ_DESC_WRITE
#define I SV_VQ_DESC_INDIRECT

static void test_good_chain(void **state)
{
	struct g *g = *state;
	uint8_t out[8], in[4] = { 1, 2, 3, 4 };
	uint32_t id, len;

	assert_int_equal(sv_virtq_pop(&g->q, &g->c), 0); /* nothing yet */
	memcpy(g->ram + BUF, "abcdefgh", 8);
	desc(g, 3, BUF, 5, N, 7);
	desc(g, 7, BUF + 5, 3, N, 1);
	desc(g, 1, BUF + 0x100, 4, W, 0);
	avail(g, 3);
	assert_true(sv_virtq_has_avail(&g->q));
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), 1);
	assert_false(sv_virtq_has_avail(&g->q));
	assert_int_equal(g->c.head, 3);
	assert_int_equal(g->c.nr, 2);
	assert_int_equal(g->c.nw, 1);
	assert_int_equal(g->c.rlen, 8);
	assert_int_equal(g->c.wlen, 4);
	/* reads cross buffers; an offset skips */
	assert_int_equal(sv_vq_read(&g->c, 3, out, 8), 5);
	assert_memory_equal(out, "defgh", 5);
	assert_int_equal(sv_vq_write(&g->c, 1, in, 4), 3);
	assert_memory_equal(g->ram + BUF + 0x101, in, 3);
	sv_virtq_push(&g->q, g->c.head, 4);
	memcpy(&id, g->ram + USED + 4, 4);
	memcpy(&len, g->ram + USED + 8, 4);
	assert_int_equal(id, 3);
	assert_int_equal(len, 4);
	assert_int_equal(g->ram[USED + 2], 1);
	assert_true(sv_virtq_want_irq(&g->q));
	g->ram[AVAIL] = SV_VQ_AVAIL_NO_INTERRUPT;
	assert_false(sv_virtq_want_irq(&g->q));
	/* unpop gives the same chain again */
	avail(g, 7);
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), 1);
	assert_int_equal(g->c.head, 7);
	sv_virtq_unpop(&g->q);
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), 1);
	assert_int_equal(g->c.head, 7);
	assert_int_equal(g->c.nr, 1); /* 7 -> 1 */
	assert_int_equal(g->c.nw, 1);
}

static void test_indirect_chain(void **state)
{
	struct g *g = *state;
	uint64_t t = 0x8000;

	desc_at(g, t, 0, BUF, 16, N, 2);
	desc_at(g, t, 2, BUF + 16, 100, W | N, 1);
	desc_at(g, t, 1, BUF + 200, 1, W, 0);
	desc(g, 0, BUF, 8, N, 5); /* a direct one first, then the table */
	desc(g, 5, t, 3 * 16, I, 0);
	avail(g, 0);
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), 1);
	assert_int_equal(g->c.nr, 2);
	assert_int_equal(g->c.nw, 2);
	assert_int_equal(g->c.rlen, 24);
	assert_int_equal(g->c.wlen, 101);
}

/* The next pop refuses, and the chain stays where it was (nothing taken). */
static void refused(struct g *g)
{
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), -EIO);
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), -EIO);
}

static void test_loop(void **state)
{
	struct g *g = *state;
	desc(g, 0, BUF, 1, N, 1);
	desc(g, 1, BUF, 1, N, 2);
	desc(g, 2, BUF, 1, N, 0);
	avail(g, 0);
	refused(g);
}

static void test_self_loop(void **state)
{
	struct g *g = *state;
	desc(g, 4, BUF, 1, N, 4);
	avail(g, 4);
	refused(g);
}

static void test_whole_table_is_not_too_long(void **state)
{
	struct g *g = *state;
	for (unsigned i = 0; i < QS; i++)
		desc(g, i, BUF + i, 1, i + 1 < QS ? N : 0, (uint16_t)(i + 1));
	avail(g, 0);
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), 1);
	assert_int_equal(g->c.nr, QS);
}

static void test_out_of_range(void **state)
{
	struct g *g = *state;
	desc(g, 0, RAM - 4, 8, 0, 0); /* runs past the end of RAM */
	avail(g, 0);
	refused(g);
}

static void test_address_wraps(void **state)
{
	struct g *g = *state;
	desc(g, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	avail(g, 0);
	refused(g);
}

static void test_oversize_length(void **state)
{
	struct g *g = *state;
	desc(g, 0, BUF, 0xffffffffu, W, 0);
	avail(g, 0);
	refused(g);
}

static void test_chain_bytes_bounded(void **state)
{
	/* RAM large enough that each buffer is valid, but together they pass
	 * the per-chain bound */
	struct sv_mem mem;
	struct sv_virtq q;
	struct sv_vq_chain *c = malloc(sizeof(*c));
	uint64_t size = 2ULL * SV_VQ_MAX_BYTES + 0x100000;
	uint8_t *ram = calloc(1, size);
	uint32_t half = SV_VQ_MAX_BYTES / 2 + 1;
	uint16_t one = 1;

	assert_non_null(ram);
	mem.region[0] = (struct sv_mem_region){ 0, size, ram };
	mem.n = 1;
	assert_int_equal(sv_virtq_start(&q, &mem, QS, DESC, AVAIL, USED), 0);
	for (unsigned i = 0; i < 2; i++) {
		uint64_t addr = 0x100000 + (uint64_t)i * half;
		uint16_t fl = i == 0 ? N : 0, next = 1;
		memcpy(ram + DESC + 16 * i, &addr, 8);
		memcpy(ram + DESC + 16 * i + 8, &half, 4);
		memcpy(ram + DESC + 16 * i + 12, &fl, 2);
		memcpy(ram + DESC + 16 * i + 14, &next, 2);
	}
	memcpy(ram + AVAIL + 2, &one, 2);
	assert_int_equal(sv_virtq_pop(&q, c), -EIO);
	free(ram);
	free(c);
}

static void test_indirect_to_itself(void **state)
{
	struct g *g = *state;
	uint64_t t = 0x8000;
	/* the table's one entry is an indirect descriptor for the table */
	desc_at(g, t, 0, t, 16, I, 0);
	desc(g, 0, t, 16, I, 0);
	avail(g, 0);
	refused(g);
}

static void test_indirect_loop_and_length(void **state)
{
	struct g *g = *state;
	uint64_t t = 0x8000;
	/* a loop inside the table */
	desc_at(g, t, 0, BUF, 1, N, 1);
	desc_at(g, t, 1, BUF, 1, N, 0);
	desc(g, 0, t, 2 * 16, I, 0);
	avail(g, 0);
	refused(g);
}

static void test_indirect_longer_than_queue(void **state)
{
	struct g *g = *state;
	uint64_t t = 0x8000;
	for (unsigned i = 0; i < QS + 4; i++)
		desc_at(g, t, i, BUF, 1, i + 1 < QS + 4 ? N : 0, (uint16_t)(i + 1));
	desc(g, 0, t, (QS + 4) * 16, I, 0);
	avail(g, 0);
	refused(g);
}

static void test_indirect_full_table(void **state)
{
	/* a queue-size table behind one indirect descriptor: what Linux's
	 * virtio-blk sends with seg_max = size - 2 */
	struct g *g = *state;
	uint64_t t = 0x8000;
	for (unsigned i = 0; i < QS; i++)
		desc_at(g, t, i, BUF + i, 1, (i + 1 < QS ? N : 0) | (i ? W : 0), (uint16_t)(i + 1));
	desc(g, 0, t, QS * 16, I, 0);
	avail(g, 0);
	assert_int_equal(sv_virtq_pop(&g->q, &g->c), 1);
	assert_int_equal(g->c.nr, 1);
	assert_int_equal(g->c.nw, QS - 1);
}

static void test_indirect_bad_tables(void **state)
{
	struct g *g = *state;
	/* INDIRECT and NEXT together */
	desc(g, 0, 0x8000, 16, I | N, 1);
	avail(g, 0);
	refused(g);
}

static void test_indirect_not_multiple(void **state)
{
	struct g *g = *state;
	desc(g, 0, 0x8000, 20, I, 0);
	avail(g, 0);
	refused(g);
}

static void test_indirect_outside_ram(void **state)
{
	struct g *g = *state;
	desc(g, 0, RAM - 16, 32, I, 0);
	avail(g, 0);
	refused(g);
}

static void test_indirect_next_past_table(void **state)
{
	struct g *g = *state;
	uint64_t t = 0x8000;
	desc_at(g, t, 0, BUF, 1, N, 1); /* the table has one entry */
	desc_at(g, t, 1, BUF, 1, 0, 0);
	desc(g, 0, t, 16, I, 0);
	avail(g, 0);
	refused(g);
}

static void test_bad_head_and_next(void **state)
{
	struct g *g = *state;
	avail(g, QS); /* head past the table */
	refused(g);
}

static void test_next_past_table(void **state)
{
	struct g *g = *state;
	desc(g, 0, BUF, 1, N, QS);
	avail(g, 0);
	refused(g);
}

static void test_avail_index_jump(void **state)
{
	struct g *g = *state;
	uint16_t idx = QS + 1;
	desc(g, 0, BUF, 1, 0, 0);
	memcpy(g->ram + AVAIL + 2, &idx, 2);
	refused(g);
}

static void test_read_after_write(void **state)
{
	struct g *g = *state;
	desc(g, 0, BUF, 1, W | N, 1);
	desc(g, 1, BUF, 1, 0, 0);
	avail(g, 0);
	refused(g);
}

static void test_start_checks(void **state)
{
	struct g *g = *state;
	struct sv_virtq q;
	assert_int_equal(sv_virtq_start(&q, &g->mem, 0, DESC, AVAIL, USED), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, 12, DESC, AVAIL, USED), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, 512, DESC, AVAIL, USED), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, QS, DESC + 8, AVAIL, USED), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, QS, DESC, AVAIL + 1, USED), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, QS, DESC, AVAIL, USED + 2), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, QS, RAM - 16, AVAIL, USED), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, QS, DESC, RAM - 8, USED), -EINVAL);
	assert_int_equal(sv_virtq_start(&q, &g->mem, QS, DESC, AVAIL, 0xfffffffffffffff0ULL), -EINVAL);
	assert_false(q.ready);
	assert_int_equal(sv_virtq_pop(&q, &g->c), 0); /* a queue that did not start */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_good_chain),
		T(test_indirect_chain),
		T(test_loop),
		T(test_self_loop),
		T(test_whole_table_is_not_too_long),
		T(test_out_of_range),
		T(test_address_wraps),
		T(test_oversize_length),
		cmocka_unit_test(test_chain_bytes_bounded),
		T(test_indirect_to_itself),
		T(test_indirect_loop_and_length),
		T(test_indirect_longer_than_queue),
		T(test_indirect_full_table),
		T(test_indirect_bad_tables),
		T(test_indirect_not_multiple),
		T(test_indirect_outside_ram),
		T(test_indirect_next_past_table),
		T(test_bad_head_and_next),
		T(test_next_past_table),
		T(test_avail_index_jump),
		T(test_read_after_write),
		T(test_start_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
