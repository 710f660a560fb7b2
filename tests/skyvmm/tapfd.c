/* tapfd NAME FD PROGRAM [ARGS...]: open a tap NAME as the agent makes them
 * (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, agent/nics.c), bring it up, put it
 * on descriptor FD and exec PROGRAM with ARGS.  For tests/e2e/skyvmm.py,
 * inside an emulated board: busybox sh cannot make a tap. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct ifreq ifr;
	int tap, s, fd;
	char *end;

	if (argc < 4) {
		fprintf(stderr, "usage: tapfd NAME FD PROGRAM [ARGS...]\n");
		return 2;
	}
	fd = (int)strtol(argv[2], &end, 10);
	if (*end || fd < 3 || fd > 1000 || strlen(argv[1]) >= IFNAMSIZ) {
		fprintf(stderr, "tapfd: bad name or descriptor\n");
		return 2;
	}
	tap = open("/dev/net/tun", O_RDWR);
	if (tap < 0) {
		fprintf(stderr, "tapfd: /dev/net/tun: %s\n", strerror(errno));
		return 1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[1]);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(tap, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "tapfd: TUNSETIFF %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		fprintf(stderr, "tapfd: SIOCGIFFLAGS %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		fprintf(stderr, "tapfd: SIOCSIFFLAGS %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(s);
	if (tap != fd && (dup2(tap, fd) < 0 || close(tap) < 0)) {
		fprintf(stderr, "tapfd: dup2: %s\n", strerror(errno));
		return 1;
	}
	execv(argv[3], argv + 3);
	fprintf(stderr, "tapfd: %s: %s\n", argv[3], strerror(errno));
	return 127;
}
