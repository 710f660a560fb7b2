/* The Hello a board sends: its inventory in the agent link's schema. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/inventory.h"
#include "common/parse.h"
#include "proto/skyroot.pb-c.h"

/* Packs inv into a Hello (malloc'd into *out); 0 or -errno. */
int hello_pack(const struct inventory *inv, uint32_t heartbeat_ms, bool allow_reboot, uint8_t **out, size_t *out_len);
/* The machine identity the controller keys boards by: the DMI UUID, or
 * "mac-" and the first NIC's address on boards without DMI; -ENODATA
 * when there is neither.  host gets the hostname either way. */
int hello_machine_id(const struct inventory *inv, char *uuid, size_t ulen, char *host, size_t hlen);

/* What a board with no token shows the operator (EnrollRequest's
 * dmi_serial and macs): the DMI serial, its bytes outside printable ASCII
 * as '?' and cut to HELLO_SERIAL_MAX; the MAC addresses of the NICs that
 * have one sky_parse_mac reads (aa:bb:cc:dd:ee:ff), in its canonical
 * lower case, at most HELLO_MACS_MAX. */
#define HELLO_SERIAL_MAX 64
#define HELLO_MACS_MAX 16
struct hello_claims {
	char serial[HELLO_SERIAL_MAX + 1];
	char macs[HELLO_MACS_MAX][SKY_MAC_LEN];
	size_t n_macs;
};
void hello_claims(const struct inventory *inv, struct hello_claims *out);
