/* The Hello a board sends: its inventory in the agent link's schema. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/hello.h"
#include "common/parse.h"

int hello_pack(const struct inventory *inv, uint32_t heartbeat_ms, bool allow_reboot, uint8_t **out, size_t *out_len)
{
	Skyroot__Hello h = SKYROOT__HELLO__INIT;
	Skyroot__Dmi dmi = SKYROOT__DMI__INIT;
	Skyroot__IommuGroup *groups = NULL, **gptrs = NULL;
	Skyroot__PciDevice *devs = NULL, **dptrs = NULL;
	Skyroot__Nic nics[INV_MAX_NICS], *nptrs[INV_MAX_NICS];
	Skyroot__BoardBridge bridge;
	char *flags[INV_MAX_FLAGS];
	size_t ndev = 0, di = 0;
	int r = 0;

	h.cpu_model = (char *)inv->cpu_model;
	h.cpus = inv->cpus;
	for (unsigned i = 0; i < inv->n_virt_flags && i < INV_MAX_FLAGS; i++)
		flags[i] = (char *)inv->virt_flags[i];
	h.n_virt_flags = inv->n_virt_flags;
	h.virt_flags = flags;
	h.memory_bytes = inv->memory_bytes;
	h.numa_nodes = inv->numa_nodes;
	dmi.vendor = (char *)inv->dmi_vendor;
	dmi.product = (char *)inv->dmi_product;
	dmi.serial = (char *)inv->dmi_serial;
	dmi.product_uuid = (char *)inv->dmi_uuid;
	h.dmi = &dmi;
	h.firmware = inv->firmware == INV_FW_UEFI ? SKYROOT__FIRMWARE__FIRMWARE_UEFI :
		     inv->firmware == INV_FW_BIOS ? SKYROOT__FIRMWARE__FIRMWARE_BIOS :
						    SKYROOT__FIRMWARE__FIRMWARE_UNKNOWN;
	h.kvm = inv->kvm;
	for (unsigned g = 0; g < inv->n_groups; g++)
		ndev += inv->groups[g].n_devices;
	if (inv->n_groups) {
		groups = calloc(inv->n_groups, sizeof(*groups));
		gptrs = calloc(inv->n_groups, sizeof(*gptrs));
		devs = calloc(ndev ? ndev : 1, sizeof(*devs));
		dptrs = calloc(ndev ? ndev : 1, sizeof(*dptrs));
		if (!groups || !gptrs || !devs || !dptrs) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (unsigned g = 0; g < inv->n_groups; g++) {
		const struct inv_iommu_group *ig = &inv->groups[g];
		skyroot__iommu_group__init(&groups[g]);
		groups[g].id = ig->id;
		groups[g].devices = &dptrs[di];
		groups[g].n_devices = ig->n_devices;
		for (unsigned d = 0; d < ig->n_devices; d++, di++) {
			skyroot__pci_device__init(&devs[di]);
			devs[di].address = (char *)ig->devices[d].address;
			devs[di].vendor = ig->devices[d].vendor;
			devs[di].device = ig->devices[d].device;
			devs[di].class_code = ig->devices[d].class_code;
			devs[di].driver = (char *)ig->devices[d].driver;
			dptrs[di] = &devs[di];
		}
		gptrs[g] = &groups[g];
	}
	h.n_iommu_groups = inv->n_groups;
	h.iommu_groups = gptrs;
	for (unsigned i = 0; i < inv->n_nics; i++) {
		skyroot__nic__init(&nics[i]);
		nics[i].name = (char *)inv->nics[i].name;
		nics[i].mac = (char *)inv->nics[i].mac;
		nics[i].link = inv->nics[i].link;
		nics[i].speed_mbps = inv->nics[i].speed_mbps;
		nics[i].bridge = (char *)inv->nics[i].master;
		nptrs[i] = &nics[i];
	}
	h.n_nics = inv->n_nics;
	h.nics = nptrs;
	if (inv->bridge.name[0]) {
		skyroot__board_bridge__init(&bridge);
		bridge.name = (char *)inv->bridge.name;
		bridge.uplink = (char *)inv->bridge.uplink;
		bridge.up = inv->bridge.up;
		bridge.uplink_link = inv->bridge.uplink_link;
		bridge.vlan_filtering = inv->bridge.vlan_filtering;
		h.bridge = &bridge;
	}
	h.kernel_version = (char *)inv->kernel_version;
	h.hostname = (char *)inv->hostname;
	h.agent_version = SKY_VERSION;
	h.heartbeat_ms = heartbeat_ms;
	h.allow_reboot = allow_reboot;

	size_t n = skyroot__hello__get_packed_size(&h);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	skyroot__hello__pack(&h, buf);
	*out = buf;
	*out_len = n;
out:
	free(groups);
	free(gptrs);
	free(devs);
	free(dptrs);
	return r;
}

int hello_machine_id(const struct inventory *inv, char *uuid, size_t ulen, char *host, size_t hlen)
{
	int r = 0;

	if (inv->dmi_uuid[0])
		snprintf(uuid, ulen, "%s", inv->dmi_uuid);
	else if (inv->n_nics && inv->nics[0].mac[0])
		snprintf(uuid, ulen, "mac-%s", inv->nics[0].mac); /* boards without DMI */
	else
		r = -ENODATA;
	snprintf(host, hlen, "%s", inv->hostname);
	return r;
}

void hello_claims(const struct inventory *inv, struct hello_claims *out)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	for (const char *p = inv->dmi_serial; *p && n < HELLO_SERIAL_MAX; p++, n++)
		out->serial[n] = *p >= 0x20 && *p <= 0x7e ? *p : '?';
	for (unsigned i = 0; i < inv->n_nics && out->n_macs < HELLO_MACS_MAX; i++) {
		uint8_t mac[6];
		if (sky_parse_mac(inv->nics[i].mac, mac) == 0)
			sky_format_mac(mac, out->macs[out->n_macs++]);
	}
}
