/* Domain XML for the libvirt backend, written with libxml2's xmlTextWriter
 * (it escapes text and attribute values).  Strings from the spec are checked
 * first: valid UTF-8, no control characters (XML 1.0 cannot carry them).
 * Exported for the unit tests. */
#ifndef SKY_VMM_LV_XML_H
#define SKY_VMM_LV_XML_H

#include "vmm/vmm.h"

struct lv_xml_in {
	const struct vmm_guest_spec *spec; /* name, vcpus, memory, cmdline,
					      pci (canonical), disk format */
	const char *domain_type;           /* "kvm" or "qemu" (TCG) */
	const char *kernel_path;           /* paths QEMU opens */
	const char *initrd_path;           /* or NULL */
	const char *disk_path;             /* or NULL */
	/* DAC label QEMU runs as, e.g. "+0:+0", with relabel='no'; NULL keeps
	 * libvirt's default (the qemu.conf user, with relabelling). */
	const char *dac_label;
};

/* 0 and *out (malloc'd, NUL-terminated), or -errno with a message. */
int lv_domain_xml(const struct lv_xml_in *in, char **out, struct vmm_error *err);

#endif
