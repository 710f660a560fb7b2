/* Domain XML: the values land where they belong, hostile strings stay text
 * (the document is parsed back with libxml2 and queried with XPath), text
 * XML cannot carry is refused, hostdev elements, memory and vCPUs. */
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/lv_xml.h"

struct doc {
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
};

static void doc_parse(struct doc *d, const char *xml)
{
	d->doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	if (!d->doc)
		fail_msg("not well-formed XML:\n%s", xml);
	d->ctx = xmlXPathNewContext(d->doc);
	assert_non_null(d->ctx);
}

static void doc_free(struct doc *d)
{
	xmlXPathFreeContext(d->ctx);
	xmlFreeDoc(d->doc);
}

static int count(struct doc *d, const char *xpath)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST xpath, d->ctx);
	int n;
	assert_non_null(o);
	n = o->nodesetval ? o->nodesetval->nodeNr : 0;
	xmlXPathFreeObject(o);
	return n;
}

/* The string value of the only node xpath selects. */
static void value(struct doc *d, const char *xpath, const char *want)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST xpath, d->ctx);
	xmlChar *s;
	assert_non_null(o);
	if (!o->nodesetval || o->nodesetval->nodeNr != 1)
		fail_msg("%s: %d nodes", xpath, o->nodesetval ? o->nodesetval->nodeNr : 0);
	s = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
	if (strcmp((const char *)s, want) != 0)
		fail_msg("%s: \"%s\", want \"%s\"", xpath, s, want);
	xmlFree(s);
	xmlXPathFreeObject(o);
}

static void spec_base(struct vmm_guest_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->name = "web-1";
	s->vcpus = 4;
	s->memory = 256ull << 20;
	s->kernel_fd = 5;
	s->initrd_fd = 6;
	s->disk_fd = -1;
	s->cmdline = "console=ttyS0 quiet";
}

static char *gen(const struct vmm_guest_spec *s, const char *type, const char *disk, struct vmm_error *err,
		 int *r)
{
	struct lv_xml_in in = {
		.spec = s,
		.domain_type = type,
		.kernel_path = "/proc/42/fd/5",
		.initrd_path = "/proc/42/fd/6",
		.disk_path = disk,
		.dac_label = "+0:+0",
	};
	char *xml = NULL;
	*r = lv_domain_xml(&in, &xml, err);
	return xml;
}

static void test_basic(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	struct doc d;
	char *xml;
	int r;
	(void)state;

	spec_base(&s);
	xml = gen(&s, "qemu", NULL, &err, &r);
	assert_int_equal(r, 0);
	doc_parse(&d, xml);
	value(&d, "/domain/@type", "qemu");
	value(&d, "/domain/name", "web-1");
	value(&d, "/domain/memory[@unit='KiB']", "262144");
	value(&d, "/domain/vcpu", "4");
	value(&d, "/domain/os/type[@arch='x86_64'][@machine='q35']", "hvm");
	value(&d, "/domain/os/kernel", "/proc/42/fd/5");
	value(&d, "/domain/os/initrd", "/proc/42/fd/6");
	value(&d, "/domain/os/cmdline", "console=ttyS0 quiet");
	value(&d, "/domain/cpu/@mode", "maximum");
	assert_int_equal(count(&d, "/domain/features/acpi"), 1);
	value(&d, "/domain/on_poweroff", "destroy");
	value(&d, "/domain/on_reboot", "destroy");
	value(&d, "/domain/on_crash", "destroy");
	assert_int_equal(count(&d, "/domain/devices/serial[@type='pty']/target[@port='0']"), 1);
	assert_int_equal(count(&d, "/domain/devices/console[@type='pty']/target[@type='serial']"), 1);
	assert_int_equal(count(&d, "/domain/devices/panic[@model='isa']"), 1);
	assert_int_equal(count(&d, "/domain/devices/disk"), 0);
	assert_int_equal(count(&d, "/domain/devices/hostdev"), 0);
	value(&d, "/domain/seclabel[@type='static'][@model='dac'][@relabel='no']/label", "+0:+0");
	doc_free(&d);
	free(xml);

	/* kvm; 1 vCPU; 16 GiB; no initrd, no cmdline */
	s.vcpus = 1;
	s.memory = 16ull << 30;
	s.cmdline = NULL;
	{
		struct lv_xml_in in = { .spec = &s, .domain_type = "kvm", .kernel_path = "/k" };
		assert_int_equal(lv_domain_xml(&in, &xml, &err), 0);
	}
	doc_parse(&d, xml);
	value(&d, "/domain/@type", "kvm");
	value(&d, "/domain/memory", "16777216");
	value(&d, "/domain/vcpu", "1");
	value(&d, "/domain/cpu/@mode", "host-passthrough");
	assert_int_equal(count(&d, "/domain/os/initrd"), 0);
	assert_int_equal(count(&d, "/domain/os/cmdline"), 0);
	assert_int_equal(count(&d, "/domain/seclabel"), 0);
	doc_free(&d);
	free(xml);
}

static void test_disk(void **state)
{
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	struct doc d;
	char *xml;
	int r;
	(void)state;

	spec_base(&s);
	s.disk_format = VMM_DISK_QCOW2;
	s.disk_readonly = true;
	xml = gen(&s, "qemu", "/proc/42/fd/7", &err, &r);
	assert_int_equal(r, 0);
	doc_parse(&d, xml);
	value(&d, "/domain/devices/disk[@type='file'][@device='disk']/source/@file", "/proc/42/fd/7");
	value(&d, "/domain/devices/disk/driver[@name='qemu']/@type", "qcow2");
	value(&d, "/domain/devices/disk/target[@bus='virtio']/@dev", "vda");
	assert_int_equal(count(&d, "/domain/devices/disk/readonly"), 1);
	doc_free(&d);
	free(xml);

	s.disk_format = VMM_DISK_RAW;
	s.disk_readonly = false;
	xml = gen(&s, "qemu", "/proc/42/fd/7", &err, &r);
	assert_int_equal(r, 0);
	doc_parse(&d, xml);
	value(&d, "/domain/devices/disk/driver/@type", "raw");
	assert_int_equal(count(&d, "/domain/devices/disk/readonly"), 0);
	doc_free(&d);
	free(xml);
}

static void test_hostdev(void **state)
{
	const char *pci[] = { "0000:01:00.0", "02:1f.7", "ABCD:ff:00.1" };
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	struct doc d;
	char *xml;
	int r;
	(void)state;

	spec_base(&s);
	s.pci = pci;
	s.npci = 3;
	xml = gen(&s, "kvm", NULL, &err, &r);
	assert_int_equal(r, 0);
	doc_parse(&d, xml);
	assert_int_equal(count(&d, "/domain/devices/hostdev[@mode='subsystem'][@type='pci'][@managed='no']"), 3);
	assert_int_equal(count(&d, "/domain/devices/hostdev/driver[@name='vfio']"), 3);
	assert_int_equal(count(&d, "/domain/devices/hostdev[1]/source/address[@domain='0x0000'][@bus='0x01']"
				   "[@slot='0x00'][@function='0x0']"), 1);
	assert_int_equal(count(&d, "/domain/devices/hostdev[2]/source/address[@domain='0x0000'][@bus='0x02']"
				   "[@slot='0x1f'][@function='0x7']"), 1);
	assert_int_equal(count(&d, "/domain/devices/hostdev[3]/source/address[@domain='0xabcd'][@bus='0xff']"
				   "[@slot='0x00'][@function='0x1']"), 1);
	doc_free(&d);
	free(xml);

	pci[1] = "02:20.0'/><hostdev";
	xml = (char *)&s;
	assert_int_equal(lv_domain_xml(&(struct lv_xml_in){ .spec = &s, .domain_type = "kvm",
							     .kernel_path = "/k" }, &xml, &err), -EINVAL);
	assert_ptr_equal(xml, (char *)&s);
	assert_non_null(strstr(err.msg, "is not a PCI address"));
}

/* Markup in the name or the command line stays text. */
static void test_hostile_strings(void **state)
{
	static const char name[] = "x</name><devices><hostdev mode='subsystem'/></devices><name>'\"&amp;";
	static const char cmdline[] =
		"console=ttyS0 a=\"</cmdline><kernel>/etc/shadow</kernel><cmdline>\" b='<' c=& d=]]> e=&lt; "
		"f=\xc3\xa9\xe2\x82\xac\xf0\x9f\x96\xa5";
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	struct doc d;
	char *xml;
	int r;
	(void)state;

	spec_base(&s);
	s.name = name;
	s.cmdline = cmdline;
	xml = gen(&s, "qemu", "/proc/1/fd/7'><source file='/etc/passwd", &err, &r);
	assert_int_equal(r, 0);
	doc_parse(&d, xml);
	value(&d, "/domain/name", name);
	value(&d, "/domain/os/cmdline", cmdline);
	assert_int_equal(count(&d, "//hostdev"), 0);
	assert_int_equal(count(&d, "//kernel"), 1);
	value(&d, "/domain/os/kernel", "/proc/42/fd/5");
	assert_int_equal(count(&d, "//source"), 1);
	value(&d, "/domain/devices/disk/source/@file", "/proc/1/fd/7'><source file='/etc/passwd");
	assert_int_equal(count(&d, "/domain/*"), count(&d, "/domain/name|/domain/memory|/domain/vcpu|/domain/os|"
						     "/domain/features|/domain/cpu|/domain/on_poweroff|"
						     "/domain/on_reboot|/domain/on_crash|/domain/devices|"
						     "/domain/seclabel"));
	doc_free(&d);
	free(xml);
}

/* What XML 1.0 cannot carry is refused, not mangled. */
static void test_unrepresentable(void **state)
{
	static const char *const bad[] = {
		"a\x01" "b", "tab\there", "line\nbreak", "cr\rhere", "del\x7f", "c1\xc2\x85",
		"bad utf8 \xff", "truncated \xe2\x82", "overlong \xc0\xaf", "overlong \xe0\x80\xaf",
		"surrogate \xed\xa0\x80", "past U+10FFFF \xf4\x90\x80\x80", "noncharacter \xef\xbf\xbf",
	};
	struct vmm_guest_spec s;
	struct vmm_error err = { "" };
	char *xml = NULL;
	int r;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		spec_base(&s);
		s.name = bad[i];
		xml = gen(&s, "qemu", NULL, &err, &r);
		if (r != -EINVAL)
			fail_msg("name \"%s\": %d", bad[i], r);
		assert_null(xml);
		spec_base(&s);
		s.cmdline = bad[i];
		xml = gen(&s, "qemu", NULL, &err, &r);
		if (r != -EINVAL)
			fail_msg("cmdline \"%s\": %d", bad[i], r);
		assert_non_null(strstr(err.msg, "command line"));
	}
	spec_base(&s);
	xml = gen(&s, "xen", NULL, &err, &r);
	assert_int_equal(r, -EINVAL);
	spec_base(&s);
	{
		struct lv_xml_in in = { .spec = &s, .domain_type = "qemu", .kernel_path = NULL };
		assert_int_equal(lv_domain_xml(&in, &xml, &err), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_hostdev),
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_unrepresentable),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	xmlCleanupParser();
	return r;
}
