/* Unit tests for skyvmm's console UART (vmm/skyvmm/uart.c) and its power
 * registers (vmm/skyvmm/power.c), driven through their bus handlers as a
 * guest's driver would: LSR/THR/IER/IIR/MCR/MSR/DLAB behaviour, the IRQ
 * line, receive, and back-pressure from a console socket nobody reads (the
 * UART says "full" and keeps every byte until the reader comes back); the
 * ACPI power button, PM1 status/enable, soft-off and the reset port.
 *
 *   ./test_skyvmm_uart     (no environment needed)
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/skyvmm/power.h"
#include "vmm/skyvmm/tables.h"
#include "vmm/skyvmm/uart.h"

struct rec {
	int level;     /* the IRQ line now */
	int raised;    /* rising edges seen */
	int kicks;
};

static void rec_irq(void *ctx, int level)
{
	struct rec *r = ctx;
	if (level && !r->level)
		r->raised++;
	r->level = level;
}

static void rec_kick(void *ctx)
{
	((struct rec *)ctx)->kicks++;
}

static uint8_t in(struct sv_uart *u, unsigned reg)
{
	uint8_t v = 0x5a;
	sv_uart_io(u, reg, &v, 1, false);
	return v;
}

static void out(struct sv_uart *u, unsigned reg, uint8_t v)
{
	sv_uart_io(u, reg, &v, 1, true);
}

struct fixture {
	struct sv_uart u;
	struct rec rec;
	int sv[2]; /* [0] the UART's side, [1] the console reader */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int small = 4096;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv), 0);
	/* a small socket buffer, so that back-pressure comes soon */
	setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(f->sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(sv_uart_init(&f->u, f->sv[0], rec_irq, &f->rec, rec_kick, &f->rec), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	sv_uart_fini(&f->u);
	close(f->sv[0]);
	close(f->sv[1]);
	free(f);
	return 0;
}

static size_t drain(int fd, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = recv(fd, buf + n, cap - n, MSG_DONTWAIT);
		if (r <= 0)
			return n;
		n += (size_t)r;
	}
}

static void test_registers(void **state)
{
	struct fixture *f = *state;
	struct sv_uart *u = &f->u;
	uint8_t buf[16];

	/* idle: THR and transmitter empty, no data, no interrupt */
	assert_int_equal(in(u, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(in(u, UART_IIR) & 0x0f, UART_IIR_NONE);
	/* a byte to THR reaches the console at once */
	out(u, UART_THR, 'A');
	out(u, UART_THR, 'B');
	assert_int_equal(drain(f->sv[1], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "AB", 2);
	/* DLAB: offsets 0 and 1 are the divisor latch, THR/IER untouched */
	out(u, UART_LCR, UART_LCR_DLAB | 3);
	out(u, UART_RBR, 0x01);
	out(u, UART_IER, 0x00);
	assert_int_equal(in(u, UART_RBR), 0x01);
	assert_int_equal(in(u, UART_IER), 0x00);
	assert_int_equal(drain(f->sv[1], buf, sizeof(buf)), 0);
	out(u, UART_LCR, 3);
	assert_int_equal(in(u, UART_LCR), 3);
	/* scratch */
	out(u, UART_SCR, 0xa5);
	assert_int_equal(in(u, UART_SCR), 0xa5);
	/* FIFO enabled shows in IIR's top bits */
	out(u, UART_FCR, 0x07);
	assert_int_equal(in(u, UART_IIR), 0xc1);
	/* modem status: carrier, DSR, CTS; in loopback it mirrors MCR */
	assert_int_equal(in(u, UART_MSR), 0xb0);
	out(u, UART_MCR, UART_MCR_LOOP | 0x0a);
	assert_int_equal(in(u, UART_MSR) & 0xf0, 0x90);
	out(u, UART_MCR, UART_MCR_LOOP | 0x05);
	assert_int_equal(in(u, UART_MSR) & 0xf0, 0x60);
	/* loopback: THR comes back in RBR and nothing goes out */
	out(u, UART_THR, 'L');
	assert_int_equal(in(u, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
	assert_int_equal(in(u, UART_RBR), 'L');
	assert_int_equal(in(u, UART_LSR) & UART_LSR_DR, 0);
	assert_int_equal(drain(f->sv[1], buf, sizeof(buf)), 0);
	out(u, UART_MCR, 0x0b);
	assert_int_equal(f->u.lost, 0);
}

static void test_thr_interrupt(void **state)
{
	struct fixture *f = *state;
	struct sv_uart *u = &f->u;
	uint8_t buf[16];

	/* enabling THRI with THR empty raises the line at once */
	out(u, UART_IER, UART_IER_THRI);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.raised, 1);
	/* reading IIR says THRI and acknowledges it: the line drops */
	assert_int_equal(in(u, UART_IIR) & 0x0f, UART_IIR_THRI);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(in(u, UART_IIR) & 0x0f, UART_IIR_NONE);
	/* a byte written (and taken by the console) raises it again */
	out(u, UART_THR, 'x');
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(f->rec.raised, 2);
	/* disabling THRI drops the line */
	out(u, UART_IER, 0);
	assert_int_equal(f->rec.level, 0);
	drain(f->sv[1], buf, sizeof(buf));
}

static void test_receive(void **state)
{
	struct fixture *f = *state;
	struct sv_uart *u = &f->u;
	uint8_t many[40];
	size_t taken;

	out(u, UART_IER, UART_IER_RDI);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(sv_uart_rx_room(u), SV_UART_FIFO);
	assert_int_equal(sv_uart_rx_push(u, (const uint8_t *)"hi", 2), 2);
	assert_int_equal(f->rec.level, 1);
	assert_int_equal(in(u, UART_IIR) & 0x0f, UART_IIR_RDI);
	assert_int_equal(in(u, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
	assert_int_equal(in(u, UART_RBR), 'h');
	assert_int_equal(in(u, UART_RBR), 'i');
	assert_int_equal(in(u, UART_LSR) & UART_LSR_DR, 0);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(in(u, UART_RBR), 0); /* empty FIFO reads 0 */
	/* the FIFO takes 16 and no more; draining a full FIFO kicks the I/O
	 * thread to read on */
	memset(many, 'm', sizeof(many));
	taken = sv_uart_rx_push(u, many, sizeof(many));
	assert_int_equal(taken, SV_UART_FIFO);
	assert_int_equal(sv_uart_rx_room(u), 0);
	f->rec.kicks = 0;
	assert_int_equal(in(u, UART_RBR), 'm');
	assert_int_equal(f->rec.kicks, 1);
	assert_int_equal(sv_uart_rx_room(u), 1);
	/* FCR clears the receive FIFO */
	out(u, UART_FCR, 0x03);
	assert_int_equal(sv_uart_rx_room(u), SV_UART_FIFO);
	assert_int_equal(f->rec.level, 0);
}

/* The console reader stops reading: the UART's LSR says full instead of
 * losing bytes or blocking; when the reader comes back, every byte arrives
 * in order and THR-empty is raised again. */
static void test_back_pressure(void **state)
{
	struct fixture *f = *state;
	struct sv_uart *u = &f->u;
	size_t cap = 4 * 1024 * 1024, got = 0, sent = 0;
	uint8_t *buf = malloc(cap);
	unsigned rounds = 0;

	out(u, UART_IER, UART_IER_THRI);
	assert_int_equal(in(u, UART_IIR) & 0x0f, UART_IIR_THRI);
	/* write as a driver does: while THRE says there is room */
	while (in(u, UART_LSR) & UART_LSR_THRE) {
		out(u, UART_THR, (uint8_t)(sent * 31 + 7));
		sent++;
		assert_true(sent < cap);
	}
	/* full: THRE and TEMT clear, no THR-empty interrupt pending, nothing lost */
	assert_int_equal(in(u, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), 0);
	assert_int_equal(in(u, UART_IIR) & 0x0f, UART_IIR_NONE);
	assert_int_equal(f->rec.level, 0);
	assert_int_equal(u->lost, 0);
	assert_true(sent > SV_UART_TXBUF - SV_UART_FIFO); /* the buffer filled, beyond the socket's */
	assert_true(f->rec.kicks > 0);                     /* the I/O thread was told to wait for POLLOUT */
	/* the reader comes back: the I/O thread flushes until all is written */
	while (got < sent) {
		got += drain(f->sv[1], buf + got, cap - got);
		sv_uart_flush(u);
		assert_true(++rounds < 100000);
	}
	assert_int_equal(got, sent);
	for (size_t i = 0; i < got; i++)
		if (buf[i] != (uint8_t)(i * 31 + 7))
			fail_msg("byte %zu: %u, not %u", i, buf[i], (uint8_t)(i * 31 + 7));
	assert_int_equal(in(u, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(f->rec.level, 1); /* THR empty again: the driver writes on */
	assert_int_equal(in(u, UART_IIR) & 0x0f, UART_IIR_THRI);
	free(buf);
}

/* A guest that ignores LSR: bytes beyond the buffer are counted as lost;
 * the vCPU is never blocked (this test would hang if it were). */
static void test_overrun(void **state)
{
	struct fixture *f = *state;
	struct sv_uart *u = &f->u;
	uint8_t *buf = malloc(1 << 22);
	size_t got = 0;

	for (unsigned i = 0; i < 1 << 20; i++)
		out(u, UART_THR, 'o');
	assert_true(u->lost > 0);
	got = drain(f->sv[1], buf, 1 << 22);
	while (sv_uart_flush(u))
		got += drain(f->sv[1], buf + got, (1 << 22) - got);
	got += drain(f->sv[1], buf + got, (1 << 22) - got);
	assert_int_equal(got + u->lost, 1 << 20);
	free(buf);
}

/* The reader went away: output is dropped, the guest runs on. */
static void test_reader_gone(void **state)
{
	struct fixture *f = *state;
	struct sv_uart *u = &f->u;

	close(f->sv[1]);
	f->sv[1] = -1;
	for (unsigned i = 0; i < 3 * SV_UART_TXBUF; i++)
		out(u, UART_THR, 'g');
	assert_int_equal(in(u, UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(u->out_fd, -1);
	assert_false(sv_uart_flush(u));
	f->sv[1] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* for teardown */
}

/* ---- power ---- */

struct prec {
	int sci, edges;
	enum sv_outcome outcome;
	int outcomes;
};

static int prec_level(void *ctx, uint32_t gsi, int level)
{
	struct prec *p = ctx;
	assert_int_equal(gsi, SV_SCI_IRQ);
	if (level && !p->sci)
		p->edges++;
	p->sci = level;
	return 0;
}

static void prec_done(void *ctx, enum sv_outcome o)
{
	struct prec *p = ctx;
	p->outcome = o;
	p->outcomes++;
}

static uint16_t pin16(struct sv_power *p, sv_io_fn fn, unsigned off)
{
	uint8_t d[2] = { 0x5a, 0x5a };
	fn(p, off, d, 2, false);
	return (uint16_t)(d[0] | d[1] << 8);
}

static void pout16(struct sv_power *p, sv_io_fn fn, unsigned off, uint16_t v)
{
	uint8_t d[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	fn(p, off, d, 2, true);
}

static void test_power(void **state)
{
	struct prec rec = { 0 };
	struct sv_irq_ops ops = { .set_level = prec_level, .ctx = &rec };
	struct sv_power p;
	struct sv_bus bus;
	uint8_t b;
	(void)state;

	assert_int_equal(sv_power_init(&p, &ops, prec_done, &rec), 0);
	/* SCI_EN reads set: ACPI mode from the start */
	assert_int_equal(pin16(&p, sv_power_io_cnt, 0) & SV_PM1_SCI_EN, SV_PM1_SCI_EN);
	/* the button pressed before the guest enabled it: status, no SCI */
	sv_power_button(&p);
	assert_int_equal(pin16(&p, sv_power_io_evt, 0) & SV_PM1_PWRBTN, SV_PM1_PWRBTN);
	assert_int_equal(rec.sci, 0);
	/* enabling it raises the SCI; enable bits read back (GBL_EN too) */
	pout16(&p, sv_power_io_evt, 2, SV_PM1_PWRBTN | 0x0020);
	assert_int_equal(pin16(&p, sv_power_io_evt, 2), SV_PM1_PWRBTN | 0x0020);
	assert_int_equal(rec.sci, 1);
	/* status is write-1-to-clear: writing 0 leaves it, 1 clears it */
	pout16(&p, sv_power_io_evt, 0, 0);
	assert_int_equal(rec.sci, 1);
	pout16(&p, sv_power_io_evt, 0, SV_PM1_PWRBTN);
	assert_int_equal(pin16(&p, sv_power_io_evt, 0) & SV_PM1_PWRBTN, 0);
	assert_int_equal(rec.sci, 0);
	/* pressed again while enabled: a new edge */
	sv_power_button(&p);
	assert_int_equal(rec.sci, 1);
	assert_int_equal(rec.edges, 2);
	/* byte access to the status register's high byte clears it too */
	b = SV_PM1_PWRBTN >> 8;
	sv_power_io_evt(&p, 1, &b, 1, true);
	assert_int_equal(rec.sci, 0);

	/* sleep types other than S5, or SLP_TYP without SLP_EN: nothing */
	pout16(&p, sv_power_io_cnt, 0, (uint16_t)(SV_SLP_TYP_S5 << 10));
	pout16(&p, sv_power_io_cnt, 0, (uint16_t)(3 << 10 | SV_PM1_SLP_EN));
	assert_int_equal(rec.outcomes, 0);
	/* SLP_EN is write-only */
	assert_int_equal(pin16(&p, sv_power_io_cnt, 0) & SV_PM1_SLP_EN, 0);
	/* S5 with SLP_EN: power-off */
	pout16(&p, sv_power_io_cnt, 0, (uint16_t)(SV_SLP_TYP_S5 << 10 | SV_PM1_SLP_EN));
	assert_int_equal(rec.outcomes, 1);
	assert_int_equal(rec.outcome, SV_OUT_POWEROFF);
	/* the same in two byte writes (high byte last) */
	b = 0;
	sv_power_io_cnt(&p, 0, &b, 1, true);
	b = (uint8_t)((SV_SLP_TYP_S5 << 10 | SV_PM1_SLP_EN) >> 8);
	sv_power_io_cnt(&p, 1, &b, 1, true);
	assert_int_equal(rec.outcomes, 2);

	/* port 0x64: reads 0 (input buffer empty); 0xFE resets, others do not */
	b = 0xff;
	sv_power_io_reset(&p, 0, &b, 1, false);
	assert_int_equal(b, 0);
	b = 0xd1;
	sv_power_io_reset(&p, 0, &b, 1, true);
	assert_int_equal(rec.outcomes, 2);
	b = SV_RESET_VALUE;
	sv_power_io_reset(&p, 0, &b, 1, true);
	assert_int_equal(rec.outcomes, 3);
	assert_int_equal(rec.outcome, SV_OUT_RESET);

	/* the PM timer advances (3.58 MHz, 24 bits) */
	{
		uint8_t t1[4], t2[4];
		uint32_t a, c;
		sv_power_io_tmr(&p, 0, t1, 4, false);
		usleep(2000);
		sv_power_io_tmr(&p, 0, t2, 4, false);
		a = (uint32_t)t1[0] | (uint32_t)t1[1] << 8 | (uint32_t)t1[2] << 16 | (uint32_t)t1[3] << 24;
		c = (uint32_t)t2[0] | (uint32_t)t2[1] << 8 | (uint32_t)t2[2] << 16 | (uint32_t)t2[3] << 24;
		assert_true(a <= 0xffffff && c <= 0xffffff);
		assert_true(((c - a) & 0xffffff) >= 7000); /* 2 ms is 7159 ticks */
	}

	/* on the bus, at the ports the FADT names */
	assert_int_equal(sv_bus_init(&bus), 0);
	assert_int_equal(sv_power_attach(&p, &bus), 0);
	b = SV_RESET_VALUE;
	assert_true(sv_bus_access(&bus, SV_PIO, SV_RESET_PORT, &b, 1, true));
	assert_int_equal(rec.outcomes, 4);
	{
		uint8_t d[2];
		assert_true(sv_bus_access(&bus, SV_PIO, SV_PM1_CNT_PORT, d, 2, false));
		assert_int_equal(d[0] & 1, 1);
	}
	sv_bus_fini(&bus);
	sv_power_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thr_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_back_pressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_gone, setup, teardown),
		cmocka_unit_test(test_power),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
