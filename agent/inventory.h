/* Board inventory read from sysfs/procfs (and /dev) under injectable roots. */
#ifndef SKY_AGENT_INVENTORY_H
#define SKY_AGENT_INVENTORY_H

#include <stdbool.h>
#include <stdint.h>

/* Limits on what a (possibly hostile or huge) machine makes us hold. */
#define INV_MAX_STR 256
#define INV_MAX_FLAGS 8
#define INV_MAX_GROUPS 256
#define INV_MAX_GROUP_DEVICES 32
#define INV_MAX_NICS 64

struct inv_roots {
	const char *sysfs;  /* default "/sys" */
	const char *procfs; /* default "/proc" */
	const char *devfs;  /* default "/dev"  (for /dev/kvm) */
};

struct inv_pci_device {
	char address[32];   /* "0000:00:03.0" */
	uint32_t vendor;    /* 0x1234 */
	uint32_t device;    /* 0x11e8 */
	uint32_t class_code;/* 0x00ff00 */
	char driver[64];    /* "" when unbound */
};

struct inv_iommu_group {
	uint32_t id;
	unsigned n_devices;
	struct inv_pci_device devices[INV_MAX_GROUP_DEVICES];
};

struct inv_nic {
	char name[32];
	char mac[64];       /* "52:54:00:12:34:56" (InfiniBand addresses are longer) */
	bool link;          /* operstate "up" (or carrier 1) */
	int32_t speed_mbps; /* -1 when unknown */
	char master[32];    /* the bridge it is a port of ("br0"), or "" */
};

/* The bridge guests' NICs join (the firmware's br0 over the uplink): the
 * first NIC that is a port of a bridge is its uplink. */
struct inv_bridge {
	char name[32];      /* "" when no NIC is on a bridge */
	char uplink[32];
	bool up;            /* the bridge's operstate is "up" */
	bool uplink_link;   /* the uplink has link */
	bool vlan_filtering;
};

enum inv_firmware { INV_FW_UNKNOWN = 0, INV_FW_BIOS = 1, INV_FW_UEFI = 2 };

struct inventory {
	char cpu_model[INV_MAX_STR];
	uint32_t cpus;                      /* logical processors */
	unsigned n_virt_flags;
	char virt_flags[INV_MAX_FLAGS][8];  /* subset of svm, vmx, npt, ept, in that order */
	uint64_t memory_bytes;              /* MemTotal */
	uint32_t numa_nodes;                /* >= 1 */
	char dmi_vendor[INV_MAX_STR];       /* sys_vendor */
	char dmi_product[INV_MAX_STR];      /* product_name */
	char dmi_serial[INV_MAX_STR];       /* product_serial */
	char dmi_uuid[64];                  /* product_uuid, lower case */
	enum inv_firmware firmware;         /* UEFI iff <sysfs>/firmware/efi exists */
	bool kvm;                           /* <devfs>/kvm exists (char device on a real board) */
	unsigned n_groups;                  /* sorted by id */
	struct inv_iommu_group *groups;     /* heap, n_groups entries */
	unsigned n_nics;                    /* sorted by name, "lo" and virtual (no device link) skipped */
	struct inv_nic nics[INV_MAX_NICS];
	struct inv_bridge bridge;
	char kernel_version[INV_MAX_STR];   /* <procfs>/sys/kernel/osrelease */
	char hostname[INV_MAX_STR];         /* <procfs>/sys/kernel/hostname */
};

/* Read the whole inventory.  Missing files leave fields empty/zero (a board
 * without DMI is still a board); returns 0, or a negative errno only when
 * nothing sensible can be read (-ENOMEM, -ENOENT for a missing procfs root).
 * On failure *out is left untouched. */
int inventory_read(const struct inv_roots *roots, struct inventory *out);

/* Free what inventory_read allocated.  Accepts a zeroed struct. */
void inventory_free(struct inventory *inv);

#endif
