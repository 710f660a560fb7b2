/* Guests' NICs on the board: one tap a NIC (TUNSETIFF on /dev/net/tun:
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, not persistent, so it goes when the
 * last descriptor of it closes), a port of the board's bridge (the
 * firmware's br0, VLAN filtering on; --bridge), with the network's VLAN as
 * its PVID, untagged, and no other VLAN; untagged networks keep the
 * bridge's default PVID.  The bridge's other ports (the uplink the
 * firmware's init put on it) carry each VLAN used, tagged.  Everything
 * through rtnetlink from C (no ip(8) or bridge(8) on the firmware). */
#ifndef SKY_AGENT_NICS_H
#define SKY_AGENT_NICS_H

#include <stddef.h>
#include <stdint.h>

#define NICS_IFNAME_MAX 16   /* IFNAMSIZ */

/* The tap name of NIC index of guest guest_id: "sk" + the id's last 10
 * characters + "n" + index ("skab12cd34efn0"). */
void nics_tap_name(const char *guest_id, unsigned index, char out[NICS_IFNAME_MAX]);

/* Make tap name, put it on bridge with vlan (0: untagged, the bridge's
 * default PVID) and bring it up: its descriptor into *fd (close-on-exec),
 * for the VMM.  devnet: the folder of net/tun ("/dev" when NULL).  On
 * failure nothing is left behind, and err says why and what to do:
 * -ENODEV when there is no such bridge. */
int nics_tap_open(const char *devnet, const char *bridge, const char *name, uint16_t vlan, int *fd, char *err,
		  size_t errlen);

/* Delete the link name if it is there (0 when it is gone, or was). */
int nics_tap_remove(const char *name);

#endif
