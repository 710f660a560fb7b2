/* skyvmm: virtio-net (virtio 1.2 5.1) on a tap the caller hands over.
 *
 * The tap is IFF_TAP | IFF_NO_PI: whole Ethernet frames, one per read or
 * write.  skyvmm sets O_NONBLOCK on it (a full tap drops what the guest
 * sends, as a wire would).  No offloads are offered: the guest's 12-byte
 * virtio_net_hdr is all zeros on rx and ignored on tx.  A tap made with
 * IFF_VNET_HDR (the agent makes them so, for QEMU) has a header of its own
 * before each frame: skyvmm sets its size to 12 at setup, writes zeros
 * there on tx and reads past it on rx (without offloads there is nothing
 * in it to act on).
 *
 * tx (queue 1) runs on the vCPU that notifies; rx (queue 0) on a thread of
 * the device that polls the tap while the guest has buffers posted, and an
 * eventfd the vCPUs kick when it posts more (or the device is reset or
 * stopped).  A frame larger than the buffer it would go to is dropped. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm/skyvmm/dev/virtio_pci.h"

#define NET_TYPE 1
#define NET_QSIZE 256
#define RXQ 0
#define TXQ 1
#define HDR_LEN 12           /* virtio_net_hdr with num_buffers (1.x) */
#define FRAME_MAX 65550      /* 64 KiB of payload, the Ethernet header, a VLAN tag */

#define F_MAC (1ULL << 5)
#define CFG_LEN 8            /* mac[6], status (not offered: reads 0) */

struct net {
	struct sv_virtio_dev v;  /* first */
	int tap;                 /* our dup of the caller's */
	int kick;                /* eventfd: the rx thread looks again */
	pthread_t rx;
	bool rx_started, stopping;
	bool vnet_hdr;           /* the tap wants a header before each frame */
	uint8_t rx_hdr[HDR_LEN]; /* the tap's rx header, read past */
	uint8_t cfg[CFG_LEN];
	uint8_t spill[FRAME_MAX]; /* what does not fit the guest's buffer */
	struct iovec iov[SV_VQ_MAX_SIZE + 2]; /* the chain, the spill, the tap's header */
	struct sv_vq_chain rxc;  /* the rx thread's own chain */
};

static void kick(struct net *n)
{
	uint64_t one = 1;
	ssize_t r = write(n->kick, &one, sizeof(one));
	(void)r; /* the counter is full only when a kick is pending anyway */
}

/* ---- tx ---- */

static void tx_one(struct net *n, const struct sv_vq_chain *c)
{
	static const uint8_t zero_hdr[HDR_LEN];
	struct iovec iov[SV_VQ_MAX_SIZE + 1];
	unsigned k = 0;
	uint64_t skip = HDR_LEN;

	if (c->rlen < HDR_LEN || c->rlen - HDR_LEN > FRAME_MAX || c->rlen == HDR_LEN)
		return; /* no frame, or larger than any: dropped */
	if (n->vnet_hdr)
		iov[k++] = (struct iovec){ (void *)zero_hdr, HDR_LEN }; /* the tap's header */
	for (unsigned i = 0; i < c->nr; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		iov[k++] = (struct iovec){ (uint8_t *)c->iov[i].iov_base + skip, l - skip };
		skip = 0;
	}
	ssize_t r;
	do
		r = writev(n->tap, iov, (int)k);
	while (r < 0 && errno == EINTR);
	/* EAGAIN (the tap is full) and the rest: the frame is lost, as on a wire */
}

static void net_notify(struct sv_virtio_dev *v, unsigned qi)
{
	struct net *n = (struct net *)v;
	struct sv_virtq *q = sv_virtio_queue(v, qi);
	bool any = false;
	int r;

	if (qi == RXQ) {
		kick(n); /* buffers for the rx thread */
		return;
	}
	while (q && (r = sv_virtq_pop(q, &v->chain)) != 0) {
		if (r < 0) {
			sv_virtio_fail(v, qi, "bad descriptor chain");
			break;
		}
		tx_one(n, &v->chain);
		sv_virtq_push(q, v->chain.head, 0);
		any = true;
	}
	if (any)
		sv_virtio_used(v, qi);
}

/* ---- rx ---- */

/* One frame from the tap into the next rx chain, under v.lock: 1 when
 * one was taken (or dropped), 0 when there was nothing to do (no buffer, no
 * frame), -1 when the tap failed (end of file, an error). */
static int rx_one(struct net *n)
{
	struct sv_virtq *q = sv_virtio_queue(&n->v, RXQ);
	struct sv_vq_chain *c = &n->rxc;
	uint8_t hdr[HDR_LEN] = { 0 };
	uint64_t skip = HDR_LEN;
	unsigned k = 0;
	ssize_t got;
	int r;

	if (!q)
		return 0;
	r = sv_virtq_pop(q, c);
	if (r < 0) {
		sv_virtio_fail(&n->v, RXQ, "bad descriptor chain");
		return 0;
	}
	if (r == 0)
		return 0;
	if (c->nr || c->wlen < HDR_LEN) {
		/* not an rx buffer: given back empty */
		sv_virtq_push(q, c->head, 0);
		sv_virtio_used(&n->v, RXQ);
		return 1;
	}
	for (unsigned i = c->nr; i < c->nr + c->nw; i++) {
		uint64_t l = c->iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		n->iov[k++] = (struct iovec){ (uint8_t *)c->iov[i].iov_base + skip, l - skip };
		skip = 0;
	}
	n->iov[k++] = (struct iovec){ n->spill, sizeof(n->spill) };
	if (n->vnet_hdr) {
		memmove(&n->iov[1], &n->iov[0], k * sizeof(n->iov[0]));
		n->iov[0] = (struct iovec){ n->rx_hdr, HDR_LEN };
		k++;
	}
	do
		got = readv(n->tap, n->iov, (int)k);
	while (got < 0 && errno == EINTR);
	if (n->vnet_hdr && got > 0) {
		if (got <= HDR_LEN) {
			/* a header and no frame (the tap never does that): dropped */
			sv_virtq_unpop(q);
			return 1;
		}
		got -= HDR_LEN;
	}
	if (got <= 0 || (uint64_t)got > c->wlen - HDR_LEN) {
		/* no frame after all, or one the buffer cannot hold (dropped):
		 * the buffer stays the guest's */
		sv_virtq_unpop(q);
		if (got == 0 || (got < 0 && errno != EAGAIN))
			return -1;
		return got > 0;
	}
	hdr[10] = 1; /* num_buffers */
	sv_vq_write(c, 0, hdr, HDR_LEN);
	sv_virtq_push(q, c->head, (uint32_t)(HDR_LEN + got));
	sv_virtio_used(&n->v, RXQ);
	return 1;
}

static void *rx_thread(void *arg)
{
	struct net *n = arg;

	for (;;) {
		struct pollfd pf[2] = { { n->kick, POLLIN, 0 }, { n->tap, POLLIN, 0 } };
		bool want;

		pthread_mutex_lock(&n->v.lock);
		if (n->stopping) {
			pthread_mutex_unlock(&n->v.lock);
			return NULL;
		}
		want = sv_virtio_queue(&n->v, RXQ) && sv_virtq_has_avail(&n->v.q[RXQ].vq);
		pthread_mutex_unlock(&n->v.lock);
		/* the tap is only watched while the guest has buffers: frames
		 * wait in the tap's queue (which drops when full) meanwhile */
		if (poll(pf, want ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents & POLLIN) {
			uint64_t x;
			ssize_t r = read(n->kick, &x, sizeof(x));
			(void)r;
		}
		if (want && (pf[1].revents & (POLLERR | POLLHUP | POLLNVAL)) && !(pf[1].revents & POLLIN))
			break; /* the tap is gone */
		if (want && (pf[1].revents & POLLIN)) {
			int r = 1;
			pthread_mutex_lock(&n->v.lock);
			for (int i = 0; i < 64 && !n->stopping && r > 0; i++)
				r = rx_one(n);
			pthread_mutex_unlock(&n->v.lock);
			if (r < 0)
				break;
		}
	}
	/* no more rx (tx goes on failing quietly); the thread is joined at
	 * sv_pci_fini */
	fprintf(stderr, "skyvmm: virtio-net: the tap failed or closed: rx stopped\n");
	return NULL;
}

static void net_changed(struct sv_virtio_dev *v)
{
	kick((struct net *)v);
}

static void net_config(struct sv_virtio_dev *v, uint32_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct net *n = (struct net *)v;
	if (!is_write)
		memcpy(data, n->cfg + off, len);
}

static void net_stop(struct sv_virtio_dev *v)
{
	struct net *n = (struct net *)v;

	if (!n->rx_started)
		return;
	pthread_mutex_lock(&v->lock);
	n->stopping = true;
	pthread_mutex_unlock(&v->lock);
	kick(n);
	pthread_join(n->rx, NULL);
	n->rx_started = false;
}

static void net_destroy(struct sv_virtio_dev *v)
{
	struct net *n = (struct net *)v;

	net_stop(v);
	if (n->kick >= 0)
		close(n->kick);
	if (n->tap >= 0)
		close(n->tap);
	free(n);
}

static const struct sv_virtio_ops net_ops = {
	.config = net_config,
	.notify = net_notify,
	.changed = net_changed,
	.stop = net_stop,
	.destroy = net_destroy,
};

/* A tap with IFF_VNET_HDR: its header 12 bytes (our HDR_LEN).  Not a tap
 * (a socket in the tests, say): frames as they are. */
static int tap_header(struct net *n)
{
	struct ifreq ifr;
	int sz = HDR_LEN;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(n->tap, TUNGETIFF, &ifr) < 0)
		return 0;
	if (!(ifr.ifr_flags & IFF_VNET_HDR))
		return 0;
	if (ioctl(n->tap, TUNSETVNETHDRSZ, &sz) < 0)
		return -errno;
	n->vnet_hdr = true;
	return 0;
}

int sv_virtio_net_add(struct sv_pci *p, int tap_fd, const uint8_t mac[6])
{
	struct net *n;
	int err, fl;

	if (tap_fd < 0)
		return -EBADF;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->kick = -1;
	n->tap = fcntl(tap_fd, F_DUPFD_CLOEXEC, 3);
	if (n->tap < 0 || (fl = fcntl(n->tap, F_GETFL)) < 0 || fcntl(n->tap, F_SETFL, fl | O_NONBLOCK) < 0) {
		err = -errno;
		net_destroy(&n->v);
		return err;
	}
	err = tap_header(n);
	if (err < 0) {
		net_destroy(&n->v);
		return err;
	}
	n->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->kick < 0) {
		err = -errno;
		net_destroy(&n->v);
		return err;
	}
	memcpy(n->cfg, mac, 6);
	err = sv_virtio_init(&n->v, &net_ops, NET_TYPE, 0x020000, 2, NET_QSIZE, F_MAC, CFG_LEN);
	if (err) {
		net_destroy(&n->v);
		return err;
	}
	err = pthread_create(&n->rx, NULL, rx_thread, n);
	if (err) {
		sv_virtio_release(&n->v);
		net_destroy(&n->v);
		return -err;
	}
	n->rx_started = true;
	err = sv_virtio_add(p, &n->v);
	if (err < 0) {
		net_stop(&n->v);
		sv_virtio_release(&n->v);
		net_destroy(&n->v);
		return err;
	}
	return err;
}
