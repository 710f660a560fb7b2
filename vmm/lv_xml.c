/* Domain XML from a guest spec, with libxml2's writer. */
#include "vmm/lv_xml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vfio.h"
#include "vmm/vmm_priv.h"

#define LV_XML_MAX (256 * 1024)

/* Text XML 1.0 can carry: strict UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF; libxml2's xmlCheckUTF8 lets overlong forms
 * through) without C0 controls (tab, newline and carriage return are legal
 * XML but have no business in these fields), DEL, C1 controls, or the
 * non-characters U+FFFE and U+FFFF. */
static int xml_text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		uint32_t cp;
		int n;
		if (*p < 0x80) {
			if (*p < 0x20 || *p == 0x7f)
				return 0;
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf) {
			n = 1;
			cp = *p & 0x1f;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			n = 2;
			cp = *p & 0x0f;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			n = 3;
			cp = *p & 0x07;
		} else {
			return 0;
		}
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f) || cp == 0xfffe ||
		    cp == 0xffff)
			return 0;
		p += n + 1;
	}
	return 1;
}

#define W(call)                         \
	do {                            \
		if ((call) < 0)         \
			goto fail_write; \
	} while (0)

static int write_pci(xmlTextWriterPtr w, const char *bdf)
{
	char canon[VFIO_BDF_LEN], dom[8], bus[8], slot[8], fn[8];
	if (sky_parse_pci(bdf, canon, VFIO_BDF_LEN) < 0)
		return -EINVAL;
	snprintf(dom, sizeof(dom), "0x%.4s", canon);
	snprintf(bus, sizeof(bus), "0x%.2s", canon + 5);
	snprintf(slot, sizeof(slot), "0x%.2s", canon + 8);
	snprintf(fn, sizeof(fn), "0x%.1s", canon + 11);
	if (xmlTextWriterStartElement(w, BAD_CAST "hostdev") < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "mode", BAD_CAST "subsystem") < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "pci") < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "managed", BAD_CAST "no") < 0 ||
	    xmlTextWriterStartElement(w, BAD_CAST "driver") < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "name", BAD_CAST "vfio") < 0 ||
	    xmlTextWriterEndElement(w) < 0 ||
	    xmlTextWriterStartElement(w, BAD_CAST "source") < 0 ||
	    xmlTextWriterStartElement(w, BAD_CAST "address") < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "domain", BAD_CAST dom) < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "bus", BAD_CAST bus) < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "slot", BAD_CAST slot) < 0 ||
	    xmlTextWriterWriteAttribute(w, BAD_CAST "function", BAD_CAST fn) < 0 ||
	    xmlTextWriterEndElement(w) < 0 || xmlTextWriterEndElement(w) < 0 ||
	    xmlTextWriterEndElement(w) < 0)
		return -EIO;
	return 0;
}

int lv_domain_xml(const struct lv_xml_in *in, char **out, struct vmm_error *err)
{
	const struct vmm_guest_spec *spec = in->spec;
	xmlTextWriterPtr w = NULL;
	xmlBufferPtr buf;
	char num[32];
	char *text;
	int r;

	if (!spec->name || !xml_text_ok(spec->name))
		return vmm_err(err, -EINVAL, "guest name is not valid UTF-8 text without control characters");
	if (spec->cmdline && !xml_text_ok(spec->cmdline))
		return vmm_err(err, -EINVAL,
			       "guest %s: kernel command line is not valid UTF-8 text without control characters",
			       spec->name);
	if (!in->kernel_path || !xml_text_ok(in->kernel_path) ||
	    (in->initrd_path && !xml_text_ok(in->initrd_path)) ||
	    (in->disk_path && !xml_text_ok(in->disk_path)) ||
	    (in->dac_label && !xml_text_ok(in->dac_label)))
		return vmm_err(err, -EINVAL, "guest %s: image path or label is not plain text", spec->name);
	if (!in->domain_type || (strcmp(in->domain_type, "kvm") != 0 && strcmp(in->domain_type, "qemu") != 0))
		return vmm_err(err, -EINVAL, "domain type must be kvm or qemu");
	for (size_t i = 0; i < spec->npci; i++) {
		char canon[VFIO_BDF_LEN];
		if (!spec->pci[i] || sky_parse_pci(spec->pci[i], canon, VFIO_BDF_LEN) < 0)
			return vmm_err(err, -EINVAL, "guest %s: \"%.32s\" is not a PCI address", spec->name,
				       spec->pci[i] ? spec->pci[i] : "(null)");
	}

	buf = xmlBufferCreate();
	if (!buf)
		return vmm_err(err, -ENOMEM, "out of memory");
	w = xmlNewTextWriterMemory(buf, 0);
	if (!w) {
		r = vmm_err(err, -ENOMEM, "out of memory");
		goto fail_buf;
	}
	xmlTextWriterSetIndent(w, 1);
	xmlTextWriterSetIndentString(w, BAD_CAST "  ");

	W(xmlTextWriterStartElement(w, BAD_CAST "domain"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST in->domain_type));
	W(xmlTextWriterWriteElement(w, BAD_CAST "name", BAD_CAST spec->name));
	snprintf(num, sizeof(num), "%" PRIu64, spec->memory / 1024);
	W(xmlTextWriterStartElement(w, BAD_CAST "memory"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "unit", BAD_CAST "KiB"));
	W(xmlTextWriterWriteString(w, BAD_CAST num));
	W(xmlTextWriterEndElement(w));
	snprintf(num, sizeof(num), "%u", spec->vcpus);
	W(xmlTextWriterWriteElement(w, BAD_CAST "vcpu", BAD_CAST num));

	W(xmlTextWriterStartElement(w, BAD_CAST "os"));
	W(xmlTextWriterStartElement(w, BAD_CAST "type"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "arch", BAD_CAST "x86_64"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "machine", BAD_CAST "q35"));
	W(xmlTextWriterWriteString(w, BAD_CAST "hvm"));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterWriteElement(w, BAD_CAST "kernel", BAD_CAST in->kernel_path));
	if (in->initrd_path)
		W(xmlTextWriterWriteElement(w, BAD_CAST "initrd", BAD_CAST in->initrd_path));
	if (spec->cmdline && spec->cmdline[0])
		W(xmlTextWriterWriteElement(w, BAD_CAST "cmdline", BAD_CAST spec->cmdline));
	W(xmlTextWriterEndElement(w)); /* os */

	W(xmlTextWriterStartElement(w, BAD_CAST "features"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "acpi", NULL));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterStartElement(w, BAD_CAST "cpu"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "mode",
				      BAD_CAST(strcmp(in->domain_type, "kvm") == 0 ? "host-passthrough" : "maximum")));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterWriteElement(w, BAD_CAST "on_poweroff", BAD_CAST "destroy"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "on_reboot", BAD_CAST "destroy"));
	W(xmlTextWriterWriteElement(w, BAD_CAST "on_crash", BAD_CAST "destroy"));

	W(xmlTextWriterStartElement(w, BAD_CAST "devices"));
	if (in->disk_path) {
		W(xmlTextWriterStartElement(w, BAD_CAST "disk"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "file"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "device", BAD_CAST "disk"));
		W(xmlTextWriterStartElement(w, BAD_CAST "driver"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "name", BAD_CAST "qemu"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "type",
					      BAD_CAST(spec->disk_format == VMM_DISK_QCOW2 ? "qcow2" : "raw")));
		W(xmlTextWriterEndElement(w));
		W(xmlTextWriterStartElement(w, BAD_CAST "source"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "file", BAD_CAST in->disk_path));
		W(xmlTextWriterEndElement(w));
		W(xmlTextWriterStartElement(w, BAD_CAST "target"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "dev", BAD_CAST "vda"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "bus", BAD_CAST "virtio"));
		W(xmlTextWriterEndElement(w));
		if (spec->disk_readonly)
			W(xmlTextWriterWriteElement(w, BAD_CAST "readonly", NULL));
		W(xmlTextWriterEndElement(w)); /* disk */
	}
	for (size_t i = 0; i < spec->npci; i++)
		if (write_pci(w, spec->pci[i]) < 0)
			goto fail_write;
	W(xmlTextWriterStartElement(w, BAD_CAST "serial"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "pty"));
	W(xmlTextWriterStartElement(w, BAD_CAST "target"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "port", BAD_CAST "0"));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterStartElement(w, BAD_CAST "console"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "pty"));
	W(xmlTextWriterStartElement(w, BAD_CAST "target"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "serial"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "port", BAD_CAST "0"));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterStartElement(w, BAD_CAST "controller"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "usb"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "model", BAD_CAST "none"));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterStartElement(w, BAD_CAST "memballoon"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "model", BAD_CAST "none"));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterStartElement(w, BAD_CAST "panic"));
	W(xmlTextWriterWriteAttribute(w, BAD_CAST "model", BAD_CAST "isa"));
	W(xmlTextWriterEndElement(w));
	W(xmlTextWriterEndElement(w)); /* devices */

	if (in->dac_label) {
		W(xmlTextWriterStartElement(w, BAD_CAST "seclabel"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "type", BAD_CAST "static"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "model", BAD_CAST "dac"));
		W(xmlTextWriterWriteAttribute(w, BAD_CAST "relabel", BAD_CAST "no"));
		W(xmlTextWriterWriteElement(w, BAD_CAST "label", BAD_CAST in->dac_label));
		W(xmlTextWriterEndElement(w));
	}
	W(xmlTextWriterEndElement(w)); /* domain */
	W(xmlTextWriterEndDocument(w));
	xmlFreeTextWriter(w);
	w = NULL;

	if (xmlBufferLength(buf) <= 0 || xmlBufferLength(buf) > LV_XML_MAX) {
		r = vmm_err(err, -E2BIG, "domain XML larger than %d bytes", LV_XML_MAX);
		goto fail_buf;
	}
	text = strndup((const char *)xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
	if (!text) {
		r = vmm_err(err, -ENOMEM, "out of memory");
		goto fail_buf;
	}
	xmlBufferFree(buf);
	*out = text;
	return 0;

fail_write:
	r = vmm_err(err, -EIO, "cannot write the domain XML of guest %s", spec->name);
	xmlFreeTextWriter(w);
fail_buf:
	xmlBufferFree(buf);
	return r;
}
