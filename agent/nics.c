/* Guests' taps on the board's bridge (nics.h). */
#include "agent/nics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_bridge.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NICS_NL_BUF 4096
#define NICS_NL_TIMEOUT_S 5

void nics_tap_name(const char *guest_id, unsigned index, char out[NICS_IFNAME_MAX])
{
	size_t n = strlen(guest_id);
	const char *tail = n > 10 ? guest_id + n - 10 : guest_id;

	snprintf(out, NICS_IFNAME_MAX, "sk%.10sn%u", tail, index % 10);
}

/* One rtnetlink request, its ack awaited: 0 or the kernel's -errno. */
struct nics_req {
	struct nlmsghdr nh;
	struct ifinfomsg ifi;
	char attrs[256];
};

static void nics__attr(struct nics_req *q, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)q + NLMSG_ALIGN(q->nh.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	q->nh.nlmsg_len = NLMSG_ALIGN(q->nh.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int nics__talk(struct nics_req *q)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = NICS_NL_TIMEOUT_S };
	char buf[NICS_NL_BUF];
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), r = -EPROTO;
	ssize_t n;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	q->nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	q->nh.nlmsg_seq = 1;
	if (sendto(fd, q, q->nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
			r = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			break;
		}
	}
out:
	close(fd);
	return r;
}

static void nics__init(struct nics_req *q, unsigned short type, unsigned char family, int index)
{
	memset(q, 0, sizeof(*q));
	q->nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	q->nh.nlmsg_type = type;
	q->ifi.ifi_family = family;
	q->ifi.ifi_index = index;
}

/* Add (RTM_SETLINK) or drop (RTM_DELLINK) VLAN vid on bridge port index. */
static int nics__vlan(int index, unsigned short type, uint16_t vid, uint16_t flags)
{
	struct nics_req q;
	struct bridge_vlan_info v = { .flags = flags, .vid = vid };
	struct rtattr *spec;

	nics__init(&q, type, AF_BRIDGE, index);
	spec = (struct rtattr *)((char *)&q + NLMSG_ALIGN(q.nh.nlmsg_len));
	nics__attr(&q, IFLA_AF_SPEC, NULL, 0);
	nics__attr(&q, IFLA_BRIDGE_VLAN_INFO, &v, sizeof(v));
	spec->rta_len = (unsigned short)((char *)&q + q.nh.nlmsg_len - (char *)spec);
	return nics__talk(&q);
}

/* The bridge's default PVID (the VLAN its untagged ports are on), or 1. */
static uint16_t nics__default_pvid(const char *bridge)
{
	char path[96];
	unsigned v = 1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge/default_pvid", bridge);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%u", &v) != 1 || v < 1 || v > 4094)
			v = 1;
		fclose(f);
	}
	return (uint16_t)v;
}

/* The bridge's other ports (its uplinks: not our taps, "sk...") carry
 * vlan tagged, so that the network reaches the other boards. */
static int nics__uplinks_carry(const char *bridge, uint16_t vlan, char *err, size_t errlen)
{
	char path[96];
	struct dirent *e;
	DIR *d;
	int r = 0;

	snprintf(path, sizeof(path), "/sys/class/net/%s/brif", bridge);
	d = opendir(path);
	if (!d)
		return 0; /* no ports yet: nothing to carry it */
	while (r == 0 && (e = readdir(d))) {
		unsigned idx;

		if (e->d_name[0] == '.' || strncmp(e->d_name, "sk", 2) == 0)
			continue;
		idx = if_nametoindex(e->d_name);
		if (!idx)
			continue;
		r = nics__vlan((int)idx, RTM_SETLINK, vlan, 0);
		if (r < 0)
			snprintf(err, errlen, "cannot let uplink %.32s of bridge %s carry VLAN %u: %s", e->d_name, bridge,
				 vlan, strerror(-r));
	}
	closedir(d);
	return r;
}

int nics_tap_open(const char *devnet, const char *bridge, const char *name, uint16_t vlan, int *fd, char *err,
		  size_t errlen)
{
	struct ifreq ifr;
	struct nics_req q;
	char tun[256];
	unsigned br, tap;
	uint16_t dflt;
	int t, r;

	br = if_nametoindex(bridge);
	if (!br) {
		snprintf(err, errlen,
			 "this board has no bridge '%s' for guests' NICs (the firmware's init makes br0 over the "
			 "uplink; start the agent with --bridge NAME to use another)", bridge);
		return -ENODEV;
	}
	snprintf(tun, sizeof(tun), "%s/net/tun", devnet ? devnet : "/dev");
	t = open(tun, O_RDWR | O_CLOEXEC);
	if (t < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open %s for a guest's NIC: %s", tun, strerror(-r));
		return r;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(t, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot make tap %s: %s", name, strerror(-r));
		close(t);
		return r;
	}
	tap = if_nametoindex(name);
	/* On the bridge, and up. */
	nics__init(&q, RTM_NEWLINK, AF_UNSPEC, (int)tap);
	q.ifi.ifi_flags = IFF_UP;
	q.ifi.ifi_change = IFF_UP;
	nics__attr(&q, IFLA_MASTER, &br, sizeof(br));
	r = tap ? nics__talk(&q) : -ENODEV;
	if (r < 0) {
		snprintf(err, errlen, "cannot put tap %s on bridge %s: %s", name, bridge, strerror(-r));
		goto fail;
	}
	if (vlan) {
		/* The network's VLAN as PVID, untagged; nothing else. */
		dflt = nics__default_pvid(bridge);
		r = nics__vlan((int)tap, RTM_SETLINK, vlan, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED);
		if (r == 0 && dflt != vlan) {
			r = nics__vlan((int)tap, RTM_DELLINK, dflt, 0);
			if (r == -ENOENT)
				r = 0; /* the bridge gave it no default VLAN */
		}
		if (r < 0) {
			snprintf(err, errlen,
				 "cannot set VLAN %u on tap %s (is VLAN filtering on for bridge %s? 'ip link set %s "
				 "type bridge vlan_filtering 1'): %s", vlan, name, bridge, bridge, strerror(-r));
			goto fail;
		}
		r = nics__uplinks_carry(bridge, vlan, err, errlen);
		if (r < 0)
			goto fail;
	}
	*fd = t;
	return 0;
fail:
	close(t); /* not persistent: the tap goes with its descriptor */
	nics_tap_remove(name);
	return r;
}

int nics_tap_remove(const char *name)
{
	struct nics_req q;
	unsigned idx = if_nametoindex(name);
	int r;

	if (!idx)
		return 0;
	nics__init(&q, RTM_DELLINK, AF_UNSPEC, (int)idx);
	r = nics__talk(&q);
	return r == -ENODEV ? 0 : r;
}
