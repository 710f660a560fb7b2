/* skyvmm: a 16550A UART (ttyS0: ports 0x3f8-0x3ff, ISA IRQ 4), the
 * guest's console.
 *
 * Output goes to a descriptor made non-blocking.  Bytes the descriptor does
 * not take at once wait in a buffer of SV_UART_TXBUF bytes, and the UART
 * says so: LSR's THRE (room for a FIFO's worth, 16 bytes) and TEMT (all
 * written) clear, and the THR-empty interrupt comes only once the reader
 * has taken enough.  So an unread console slows the guest's serial driver
 * down instead of losing its output or stopping a vCPU.  A byte the guest
 * writes while THRE is clear (ignoring LSR, as a real 16550 would overrun)
 * is counted in sv_uart.lost and dropped: the vCPU never waits.
 *
 * Input: the I/O thread reads the console descriptor when the 16-byte
 * receive FIFO has room (sv_uart_rx_room) and feeds it (sv_uart_rx_push).
 * Loopback (MCR bit 4) and the modem lines are emulated for the guest's
 * autoconfig; the divisor latch is kept but the baud rate is not used. */
#ifndef SKY_SKYVMM_UART_H
#define SKY_SKYVMM_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SV_UART_PORT   0x3f8
#define SV_UART_IRQ    4
#define SV_UART_TXBUF  4096
#define SV_UART_FIFO   16

struct sv_uart {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thri;   /* a THR-empty interrupt is pending (until IIR read or THR write) */
	bool line;   /* the level last given to the IRQ line */
	uint8_t rx[SV_UART_FIFO];
	unsigned rx_head, rx_len;
	uint8_t tx[SV_UART_TXBUF];
	unsigned tx_head, tx_len;
	int out_fd;      /* -1: output discarded (the reader went away) */
	bool out_socket; /* send(MSG_NOSIGNAL) rather than write */
	uint64_t lost;   /* bytes written while THRE was clear */
	/* the IRQ line (edge on the IOAPIC: the level is raised while an
	 * interrupt is pending); called with lock held */
	void (*irq)(void *ctx, int level);
	void *irq_ctx;
	/* wakes the I/O thread: output is waiting, or the RX FIFO has room
	 * again; called with lock held, must not call back into the UART */
	void (*kick)(void *ctx);
	void *kick_ctx;
};

/* out_fd is made non-blocking (O_NONBLOCK on its open file description). */
int sv_uart_init(struct sv_uart *u, int out_fd, void (*irq)(void *, int), void *irq_ctx, void (*kick)(void *),
		 void *kick_ctx);
void sv_uart_fini(struct sv_uart *u);

/* The bus handler for the 8 ports (an sv_io_fn; opaque is the sv_uart). */
void sv_uart_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

/* Writes out what waits; true while some is still waiting (poll the
 * descriptor for POLLOUT and call again). */
bool sv_uart_flush(struct sv_uart *u);
/* Bytes the receive FIFO takes now. */
unsigned sv_uart_rx_room(struct sv_uart *u);
/* Feeds console input; returns the bytes taken (at most the room). */
size_t sv_uart_rx_push(struct sv_uart *u, const uint8_t *buf, size_t len);
/* Waits up to timeout_ms for the output to be written (at exit). */
void sv_uart_drain(struct sv_uart *u, int timeout_ms);

/* register offsets and bits */
#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI  0x01
#define UART_IER_THRI 0x02
#define UART_IIR_NONE 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI  0x04
#define UART_IIR_FIFO 0xc0
#define UART_LCR_DLAB 0x80
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR   0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#endif
