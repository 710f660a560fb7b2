/* skyvmm: the 16550A console UART (see uart.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/skyvmm/uart.h"

int sv_uart_init(struct sv_uart *u, int out_fd, void (*irq)(void *, int), void *irq_ctx, void (*kick)(void *),
		 void *kick_ctx)
{
	int fl;

	memset(u, 0, sizeof(*u));
	if (pthread_mutex_init(&u->lock, NULL) != 0)
		return -ENOMEM;
	u->out_fd = out_fd;
	u->irq = irq;
	u->irq_ctx = irq_ctx;
	u->kick = kick;
	u->kick_ctx = kick_ctx;
	u->mcr = 0x08; /* OUT2 */
	if (out_fd >= 0) {
		struct stat st;
		u->out_socket = fstat(out_fd, &st) == 0 && S_ISSOCK(st.st_mode);
		fl = fcntl(out_fd, F_GETFL);
		if (fl < 0 || fcntl(out_fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -errno;
	}
	return 0;
}

void sv_uart_fini(struct sv_uart *u)
{
	pthread_mutex_destroy(&u->lock);
}

static bool thre(const struct sv_uart *u)
{
	return u->tx_len + SV_UART_FIFO <= SV_UART_TXBUF;
}

static uint8_t iir(const struct sv_uart *u)
{
	uint8_t fifo = (u->fcr & 1) ? UART_IIR_FIFO : 0;
	if ((u->ier & UART_IER_RDI) && u->rx_len)
		return fifo | UART_IIR_RDI;
	if ((u->ier & UART_IER_THRI) && u->thri)
		return fifo | UART_IIR_THRI;
	return fifo | UART_IIR_NONE;
}

static void update_irq(struct sv_uart *u)
{
	bool level = !(iir(u) & UART_IIR_NONE);
	if (level != u->line && u->irq)
		u->irq(u->irq_ctx, level);
	u->line = level;
}

/* lock held; writes what the descriptor takes without blocking */
static void flush_locked(struct sv_uart *u)
{
	bool was = thre(u);

	while (u->tx_len && u->out_fd >= 0) {
		unsigned chunk = SV_UART_TXBUF - u->tx_head;
		ssize_t n;
		if (chunk > u->tx_len)
			chunk = u->tx_len;
		/* a socket (libskyvmm's console) never raises SIGPIPE */
		if (u->out_socket)
			n = send(u->out_fd, u->tx + u->tx_head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			n = write(u->out_fd, u->tx + u->tx_head, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			u->out_fd = -1; /* the reader went away: output is discarded from now on */
			break;
		}
		u->tx_head = (u->tx_head + (unsigned)n) % SV_UART_TXBUF;
		u->tx_len -= (unsigned)n;
	}
	if (u->out_fd < 0) {
		u->tx_len = 0;
		u->tx_head = 0;
	}
	if (!was && thre(u))
		u->thri = true;
	if (u->tx_len && u->kick)
		u->kick(u->kick_ctx);
}

static void rx_put(struct sv_uart *u, uint8_t c)
{
	if (u->rx_len < SV_UART_FIFO) {
		u->rx[(u->rx_head + u->rx_len) % SV_UART_FIFO] = c;
		u->rx_len++;
	}
}

static void thr_write(struct sv_uart *u, uint8_t c)
{
	if (u->mcr & UART_MCR_LOOP) {
		rx_put(u, c);
		u->thri = true;
		return;
	}
	u->thri = false;
	if (!thre(u) && u->out_fd >= 0) {
		flush_locked(u); /* maybe the reader took some meanwhile */
		if (u->tx_len == SV_UART_TXBUF) {
			u->lost++;
			return;
		}
	}
	u->tx[(u->tx_head + u->tx_len) % SV_UART_TXBUF] = c;
	u->tx_len++;
	flush_locked(u);
	if (thre(u))
		u->thri = true;
}

static uint8_t msr(const struct sv_uart *u)
{
	if (u->mcr & UART_MCR_LOOP) /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
		return (uint8_t)(((u->mcr & 0x01) << 5) | ((u->mcr & 0x02) << 3) | ((u->mcr & 0x04) << 4) |
				 ((u->mcr & 0x08) << 4));
	return 0xb0; /* DCD, DSR, CTS */
}

static uint8_t reg_read(struct sv_uart *u, unsigned off)
{
	uint8_t v = 0;
	bool dlab = u->lcr & UART_LCR_DLAB;

	switch (off) {
	case UART_RBR:
		if (dlab)
			return u->dll;
		if (u->rx_len) {
			bool was_full = u->rx_len == SV_UART_FIFO;
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % SV_UART_FIFO;
			u->rx_len--;
			if (was_full && u->kick)
				u->kick(u->kick_ctx);
		}
		return v;
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR:
		v = iir(u);
		if ((v & 0x0f) == UART_IIR_THRI)
			u->thri = false; /* reading IIR acknowledges THR empty */
		return v;
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = u->rx_len ? UART_LSR_DR : 0;
		if (thre(u))
			v |= UART_LSR_THRE;
		if (u->tx_len == 0)
			v |= UART_LSR_TEMT;
		return v;
	case UART_MSR:
		return msr(u);
	default:
		return u->scr;
	}
}

static void reg_write(struct sv_uart *u, unsigned off, uint8_t v)
{
	bool dlab = u->lcr & UART_LCR_DLAB;

	switch (off) {
	case UART_THR:
		if (dlab)
			u->dll = v;
		else
			thr_write(u, v);
		break;
	case UART_IER:
		if (dlab) {
			u->dlm = v;
			break;
		}
		/* enabling THRI while THR is empty raises it at once, as the 8250
		 * driver's THRE test expects */
		if (!(u->ier & UART_IER_THRI) && (v & UART_IER_THRI) && thre(u))
			u->thri = true;
		u->ier = v & 0x0f;
		break;
	case UART_FCR:
		u->fcr = v & 0xc9;
		if (v & 0x02) { /* clear RX; TX bytes already taken are kept, they are the console's */
			u->rx_len = 0;
			u->rx_head = 0;
		}
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only */
	default:
		u->scr = v;
	}
}

void sv_uart_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct sv_uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	for (uint32_t i = 0; i < len; i++) {
		unsigned r = (unsigned)(off + i) & 7;
		if (is_write)
			reg_write(u, r, data[i]);
		else
			data[i] = reg_read(u, r);
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

bool sv_uart_flush(struct sv_uart *u)
{
	bool more;
	void (*kick)(void *);

	pthread_mutex_lock(&u->lock);
	kick = u->kick;
	u->kick = NULL; /* the I/O thread itself is asking */
	flush_locked(u);
	u->kick = kick;
	more = u->tx_len != 0;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return more;
}

unsigned sv_uart_rx_room(struct sv_uart *u)
{
	unsigned room;
	pthread_mutex_lock(&u->lock);
	room = SV_UART_FIFO - u->rx_len;
	pthread_mutex_unlock(&u->lock);
	return room;
}

size_t sv_uart_rx_push(struct sv_uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&u->lock);
	while (n < len && u->rx_len < SV_UART_FIFO)
		rx_put(u, buf[n++]);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

void sv_uart_drain(struct sv_uart *u, int timeout_ms)
{
	struct timespec t0, t;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sv_uart_flush(u)) {
		long left;
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		pthread_mutex_lock(&u->lock);
		fd = u->out_fd;
		pthread_mutex_unlock(&u->lock);
		if (left <= 0 || fd < 0)
			break;
		poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, (int)left);
	}
}
