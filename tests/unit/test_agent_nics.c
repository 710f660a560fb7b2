/* The agent's taps for guests' NICs (agent/nics.c), for real, in a private
 * network namespace this program makes (root only; else each case is a
 * named skip): a tap on a VLAN-filtering bridge with the network's VLAN as
 * its only VLAN, PVID and untagged, removed after; no bridge, or a master
 * that is not a bridge, a clear error and nothing left behind.  On a kernel
 * whose bridge cannot filter VLANs the VLAN case checks the refusal instead;
 * fwimage/test_boards.sh runs this program inside a board too, where the
 * accepting path runs. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/nics.h"

static char netns_why[160]; /* "" when in a private namespace of our own */
static char bridge_why[200]; /* "" when a bridge (brt0) could be made */
static char vlan_why[200];   /* "" when it filters VLANs */

/* iproute2's ip and bridge: from $SKY_NET_TOOLS/ when set (inside a board
 * whose busybox shell would run its own ip applet first), else by PATH. */
static const char *tools(void)
{
	const char *d = getenv("SKY_NET_TOOLS");
	return d && *d ? d : "";
}

static int group_setup(void **state)
{
	char cmd[512];
	int r;
	(void)state;

	if (geteuid() != 0) {
		snprintf(netns_why, sizeof(netns_why), "not root: a private network namespace needs CAP_SYS_ADMIN");
	} else if (unshare(CLONE_NEWNET) < 0) {
		snprintf(netns_why, sizeof(netns_why), "unshare(CLONE_NEWNET): %s", strerror(errno));
	} else if (access("/dev/net/tun", R_OK | W_OK) < 0) {
		snprintf(netns_why, sizeof(netns_why), "no /dev/net/tun: %s", strerror(errno));
	}
	if (netns_why[0]) {
		snprintf(bridge_why, sizeof(bridge_why), "%s", netns_why);
		snprintf(vlan_why, sizeof(vlan_why), "%s", netns_why);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "%sip link add brt0 type bridge 2>/dev/null && %sip link set brt0 up", tools(),
		 tools());
	r = system(cmd);
	if (r != 0) {
		snprintf(bridge_why, sizeof(bridge_why),
			 "this kernel cannot make a bridge ('ip link add brt0 type bridge' failed)");
		snprintf(vlan_why, sizeof(vlan_why), "%s", bridge_why);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "%sip link set brt0 type bridge vlan_filtering 1 2>/dev/null", tools());
	r = system(cmd);
	if (r != 0)
		snprintf(vlan_why, sizeof(vlan_why),
			 "this kernel's bridge has no VLAN filtering ('ip link set brt0 type bridge vlan_filtering 1' "
			 "failed: CONFIG_BRIDGE_VLAN_FILTERING off)");
	return 0;
}

/* The VLANs of port name as 'bridge -j vlan show' gives them. */
static json_t *vlans_of(const char *name)
{
	char cmd[128], buf[4096];
	size_t n;
	FILE *p;
	json_t *all, *v = NULL, *port;
	size_t i;

	snprintf(cmd, sizeof(cmd), "%sbridge -j vlan show dev %s", tools(), name);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	pclose(p);
	buf[n] = '\0';
	all = json_loads(buf, 0, NULL);
	assert_non_null(all);
	json_array_foreach(all, i, port) {
		if (strcmp(json_string_value(json_object_get(port, "ifname")) ?: "", name) == 0)
			v = json_incref(json_object_get(port, "vlans"));
	}
	json_decref(all);
	assert_non_null(v);
	return v;
}

static bool has_flag(json_t *vlan, const char *flag)
{
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(vlan, "flags"), i, f)
		if (strcmp(json_string_value(f) ?: "", flag) == 0)
			return true;
	return false;
}

/* Port name is on bridge, and up (ip -j: this namespace's view; /sys is
 * the host's). */
static void master_is(const char *name, const char *bridge)
{
	char cmd[128], buf[8192];
	size_t n;
	FILE *p;
	json_t *all, *link;
	char *flags;

	snprintf(cmd, sizeof(cmd), "%sip -j link show dev %s", tools(), name);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	pclose(p);
	buf[n] = '\0';
	all = json_loads(buf, 0, NULL);
	link = json_array_get(all, 0);
	assert_non_null(link);
	assert_string_equal(json_string_value(json_object_get(link, "master")), bridge);
	flags = json_dumps(json_object_get(link, "flags"), 0);
	assert_non_null(flags);
	assert_non_null(strstr(flags, "\"UP\""));
	free(flags);
	json_decref(all);
}

static void tap_flags_ok(int fd)
{
	struct ifreq ifr;

	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	memset(&ifr, 0, sizeof(ifr));
	assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
	assert_int_equal(ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
}

/* An untagged network: a tap on the bridge, up, gone with the guest. */
static void test_tap_on_bridge(void **state)
{
	char err[256] = "", name[NICS_IFNAME_MAX];
	int fd = -1;
	(void)state;

	if (bridge_why[0]) {
		printf("# SKIP: %s\n", bridge_why);
		skip();
	}
	nics_tap_name("gst-0123456789ab", 1, name);
	assert_string_equal(name, "sk23456789abn1");
	assert_int_equal(nics_tap_open(NULL, "brt0", name, 0, &fd, err, sizeof(err)), 0);
	tap_flags_ok(fd);
	master_is(name, "brt0");
	close(fd);
	assert_int_equal(nics_tap_remove(name), 0);
	assert_int_equal(if_nametoindex(name), 0);
	/* Not persistent: the last descriptor closed, the tap is gone. */
	assert_int_equal(nics_tap_open(NULL, "brt0", name, 0, &fd, err, sizeof(err)), 0);
	assert_true(if_nametoindex(name) > 0);
	close(fd);
	assert_int_equal(if_nametoindex(name), 0);
	/* A VLAN on a bridge that does not filter VLANs: said, nothing left. */
	if (vlan_why[0]) {
		assert_true(nics_tap_open(NULL, "brt0", name, 100, &fd, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, "vlan_filtering"));
		assert_int_equal(if_nametoindex(name), 0);
	}
}

static void test_tap_on_vlan(void **state)
{
	char err[256] = "", name[NICS_IFNAME_MAX];
	json_t *v;
	int fd = -1;
	(void)state;

	if (bridge_why[0]) {
		printf("# SKIP: %s\n", bridge_why);
		skip();
	}
	nics_tap_name("gst-0123456789ab", 0, name);
	assert_string_equal(name, "sk23456789abn0");
	if (vlan_why[0]) {
		/* This kernel's bridge cannot filter VLANs (firmware init then
		 * makes no br0 and guests get no NICs): a tap on a VLAN is
		 * refused, saying why, and nothing is left behind.  The
		 * accepting path runs inside a board, whose kernel filters
		 * VLANs (fwimage/test_boards.sh runs this program there). */
		printf("# %s: checking the refusal\n", vlan_why);
		assert_true(nics_tap_open(NULL, "brt0", name, 100, &fd, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, "VLAN filtering"));
		assert_int_equal(fd, -1);
		assert_int_equal(if_nametoindex(name), 0);
		return;
	}
	assert_int_equal(nics_tap_open(NULL, "brt0", name, 100, &fd, err, sizeof(err)), 0);
	tap_flags_ok(fd);
	master_is(name, "brt0");
	/* VLAN 100 only: the PVID, untagged; the bridge's default VLAN gone. */
	v = vlans_of(name);
	assert_int_equal(json_array_size(v), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "vlan")), 100);
	assert_true(has_flag(json_array_get(v, 0), "PVID"));
	assert_true(has_flag(json_array_get(v, 0), "Egress Untagged"));
	json_decref(v);
	/* Removed with the guest. */
	close(fd);
	assert_int_equal(nics_tap_remove(name), 0);
	assert_int_equal(if_nametoindex(name), 0);
	/* Untagged: the bridge's default PVID (1). */
	assert_int_equal(nics_tap_open(NULL, "brt0", name, 0, &fd, err, sizeof(err)), 0);
	v = vlans_of(name);
	assert_int_equal(json_array_size(v), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "vlan")), 1);
	assert_true(has_flag(json_array_get(v, 0), "PVID"));
	json_decref(v);
	/* Not persistent: the last descriptor closed, the tap is gone. */
	close(fd);
	assert_int_equal(if_nametoindex(name), 0);
}

static void test_no_bridge(void **state)
{
	char err[256] = "";
	int fd = -1;
	(void)state;

	if (netns_why[0]) {
		printf("# SKIP: %s\n", netns_why);
		skip();
	}
	assert_int_equal(nics_tap_open(NULL, "br0", "sktestn1", 5, &fd, err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "no bridge 'br0'"));
	assert_non_null(strstr(err, "--bridge"));
	assert_int_equal(fd, -1);
	assert_int_equal(if_nametoindex("sktestn1"), 0);
	/* A master that is no bridge: the tap made first is not left behind. */
	err[0] = '\0';
	assert_true(nics_tap_open(NULL, "lo", "sktestn2", 5, &fd, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "sktestn2"));
	assert_int_equal(fd, -1);
	assert_int_equal(if_nametoindex("sktestn2"), 0);
	/* No tun device where devnet says. */
	err[0] = '\0';
	assert_int_equal(nics_tap_open("/nonexistent", "lo", "sktestn3", 0, &fd, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/net/tun"));
	assert_int_equal(nics_tap_remove("sktestn-none"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_bridge),
		cmocka_unit_test(test_tap_on_bridge),
		cmocka_unit_test(test_tap_on_vlan),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
