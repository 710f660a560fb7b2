/* skyctl's flags: the catalogue every command picks its own from, and
 * argv read into struct skyctl_opts with each value checked. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"

const struct skyctl_flag skyctl_flags[FLAG__COUNT] = {
	[FLAG_OUTPUT] = {
		.name = "output", .short_name = 'o', .metavar = "table|json",
		.help = "output format (default table); json prints the API's JSON",
	},
	[FLAG_CONFIG] = {
		.name = "config", .metavar = "FILE",
		.help = "client config (default $SKYROOT_CONFIG, then ~/.config/skyroot/skyctl.conf)",
	},
	[FLAG_CONTROLLER] = {
		.name = "controller", .metavar = "URL",
		.help = "controller API URL, e.g. https://127.0.0.1:7444 (overrides the config)",
	},
	[FLAG_CA] = {
		.name = "ca", .metavar = "FILE",
		.help = "CA certificate to check the controller against (overrides the config)",
	},
	[FLAG_TOKEN] = {
		.name = "token", .metavar = "TOKEN",
		.help = "admin API token (overrides the config; other users can see it in ps)",
	},
	[FLAG_HELP] = {
		.name = "help", .short_name = 'h',
		.help = "show help; after a command, the help of that command",
	},
	[FLAG_VERSION] = {
		.name = "version",
		.help = "print the version",
	},
	[FLAG_TTL] = {
		.name = "ttl", .metavar = "DURATION",
		.help = "how long the token can be used: 90s, 10m, 1h, 2d or seconds (default 1h; 60s to 30d)",
	},
	[FLAG_USES] = {
		.name = "uses", .metavar = "N",
		.help = "how many boards may enroll with the token (default 1; 1 to 10000)",
	},
	[FLAG_NAME] = {
		.name = "name", .metavar = "NAME",
		.help = "the name of the new image (must not be taken)",
	},
	[FLAG_KIND] = {
		.name = "kind", .metavar = "KIND",
		.help = "what the image is: kernel, initrd or disk (default disk)",
	},
	[FLAG_BOARD] = {
		.name = "board", .metavar = "BOARD",
		.help = "the board (id or name) that loads the image into its RAM",
	},
	[FLAG_NO_WAIT] = {
		.name = "no-wait",
		.help = "return once the board has been told, without waiting for the fetch",
	},
	[FLAG_TIMEOUT] = {
		.name = "timeout", .metavar = "DURATION",
		.help = "how long to wait for the fetch: 30s, 10m, 1h or seconds (default 10m)",
	},
	[FLAG_KERNEL] = {
		.name = "kernel", .metavar = "IMAGE",
		.help = "the kernel image to boot (id or name; see 'skyctl image list')",
	},
	[FLAG_INITRD] = {
		.name = "initrd", .metavar = "IMAGE",
		.help = "an initrd image to boot with the kernel (id or name)",
	},
	[FLAG_DISK] = {
		.name = "disk", .metavar = "IMAGE",
		.help = "a disk image for the guest (id or name)",
	},
	[FLAG_CMDLINE] = {
		.name = "cmdline", .metavar = "STRING",
		.help = "the kernel command line",
	},
	[FLAG_VCPUS] = {
		.name = "vcpus", .metavar = "N",
		.help = "virtual CPUs of the guest (default 1)",
	},
	[FLAG_MEMORY] = {
		.name = "memory", .metavar = "SIZE",
		.help = "memory of the guest: 256M, 2G (powers of 1024) or bytes (default 256M)",
	},
	[FLAG_DEVICE] = {
		.name = "device", .metavar = "PCI_ADDRESS", .repeat = SKYCTL_MAX_DEVICES,
		.help = "a PCI device of the board to pass through, e.g. 0000:00:03.0 (see 'skyctl board show'); "
			"up to 8 times",
	},
	[FLAG_BACKEND] = {
		.name = "backend", .metavar = "qemu|libvirt",
		.help = "the VMM that runs the guest on the board (default qemu)",
	},
	[FLAG_FOLLOW] = {
		.name = "follow",
		.help = "keep printing new output as it comes, until the controller ends it or Ctrl-C",
	},
};


static int args__find_flag(const char *name, size_t len, char short_name)
{
	for (int i = 0; i < FLAG__COUNT; i++) {
		if (short_name != 0) {
			if (skyctl_flags[i].short_name == short_name)
				return i;
		} else if (strlen(skyctl_flags[i].name) == len && strncmp(skyctl_flags[i].name, name, len) == 0) {
			return i;
		}
	}
	return -1;
}

/* Split argv into flags (anywhere, "--flag VALUE", "--flag=VALUE", "-o
 * VALUE", "-oVALUE"; the last of a repeated flag wins, except --device,
 * whose values are all kept) and words; "--" ends the flags.  Prints what
 * is wrong and returns -EINVAL. */
int skyctl_args_parse(int argc, char **argv, struct skyctl_opts *o)
{
	int only_words = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *inline_value = NULL;
		int f;

		if (only_words || a[0] != '-' || a[1] == '\0') {
			if (o->nwords == SKYCTL_MAX_WORDS) {
				skyctl_err("too many arguments");
				return -EINVAL;
			}
			o->words[o->nwords++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_words = 1;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			f = args__find_flag(name, eq ? (size_t)(eq - name) : strlen(name), 0);
			if (eq != NULL)
				inline_value = eq + 1;
		} else {
			f = args__find_flag(NULL, 0, a[1]);
			if (a[2] != '\0')
				inline_value = a + 2;
			if (f >= 0 && inline_value != NULL && skyctl_flags[f].metavar == NULL)
				f = -1; /* "-hx" */
		}
		if (f < 0) {
			skyctl_err("unknown option '%s'", a);
			return -EINVAL;
		}
		if (skyctl_flags[f].metavar == NULL) {
			if (inline_value != NULL) {
				skyctl_err("option --%s takes no value", skyctl_flags[f].name);
				return -EINVAL;
			}
			inline_value = "";
		} else if (inline_value == NULL) {
			if (i + 1 >= argc) {
				skyctl_err("option --%s needs a value: %s", skyctl_flags[f].name, skyctl_flags[f].metavar);
				return -EINVAL;
			}
			inline_value = argv[++i];
		}
		o->seen |= FLAG_BIT(f);
		o->value[f] = inline_value;
		if (f == FLAG_DEVICE) {
			/* Counted past the limit, for the message. */
			if (o->ndevices < SKYCTL_MAX_DEVICES)
				o->devices[o->ndevices] = inline_value;
			o->ndevices++;
		}
	}
	return 0;
}

static int args__parse_count(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (INT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Check the values of the flags given; prints what is wrong and returns
 * -EINVAL. */
int skyctl_args_check(struct skyctl_opts *o)
{
	static const struct {
		int flag;
		const char *key;
	} conf_flags[] = {
		{ FLAG_CONTROLLER, "controller" },
		{ FLAG_CA, "ca" },
		{ FLAG_TOKEN, "token" },
	};
	char err[256];

	o->output = SKYCTL_OUTPUT_TABLE;
	if (o->seen & FLAG_BIT(FLAG_OUTPUT)) {
		if (strcmp(o->value[FLAG_OUTPUT], "json") == 0) {
			o->output = SKYCTL_OUTPUT_JSON;
		} else if (strcmp(o->value[FLAG_OUTPUT], "table") != 0) {
			skyctl_err("--output must be 'table' or 'json', not '%s'", o->value[FLAG_OUTPUT]);
			return -EINVAL;
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_TTL)) && skyctl_conf_parse_duration(o->value[FLAG_TTL], &o->ttl) < 0) {
		skyctl_err("--ttl '%s' is not a duration; use e.g. 90s, 10m, 1h, 2d or a number of seconds",
			o->value[FLAG_TTL]);
		return -EINVAL;
	}
	if ((o->seen & FLAG_BIT(FLAG_TTL)) && (o->ttl < SKYCTL_TOKEN_TTL_MIN || o->ttl > SKYCTL_TOKEN_TTL_MAX)) {
		skyctl_err("--ttl must be at least 60s and at most 30d (the controller refuses other lifetimes), "
			   "not '%s'; use e.g. --ttl 10m", o->value[FLAG_TTL]);
		return -EINVAL;
	}
	if ((o->seen & FLAG_BIT(FLAG_USES)) && args__parse_count(o->value[FLAG_USES], &o->uses) < 0) {
		skyctl_err("--uses '%s' is not a number of uses; use e.g. --uses 1", o->value[FLAG_USES]);
		return -EINVAL;
	}
	if ((o->seen & FLAG_BIT(FLAG_USES)) && (o->uses < 1 || o->uses > SKYCTL_TOKEN_USES_MAX)) {
		skyctl_err("--uses must be 1 to %d, not '%s'", SKYCTL_TOKEN_USES_MAX, o->value[FLAG_USES]);
		return -EINVAL;
	}
	o->timeout = SKYCTL_FETCH_TIMEOUT;
	if (o->seen & FLAG_BIT(FLAG_TIMEOUT)) {
		if (skyctl_conf_parse_duration(o->value[FLAG_TIMEOUT], &o->timeout) < 0) {
			skyctl_err("--timeout '%s' is not a duration; use e.g. 30s, 10m, 1h or a number of seconds",
				o->value[FLAG_TIMEOUT]);
			return -EINVAL;
		}
		if (o->timeout < 1 || o->timeout > SKYCTL_FETCH_TIMEOUT_MAX) {
			skyctl_err("--timeout must be 1s to 7d; use --no-wait not to wait at all");
			return -EINVAL;
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_TIMEOUT)) && (o->seen & FLAG_BIT(FLAG_NO_WAIT))) {
		skyctl_err("--timeout is how long to wait; it does not go with --no-wait");
		return -EINVAL;
	}
	if ((o->seen & FLAG_BIT(FLAG_KIND)) && strcmp(o->value[FLAG_KIND], "kernel") != 0 &&
	    strcmp(o->value[FLAG_KIND], "initrd") != 0 && strcmp(o->value[FLAG_KIND], "disk") != 0) {
		skyctl_err("--kind must be kernel, initrd or disk, not '%s'", o->value[FLAG_KIND]);
		return -EINVAL;
	}
	if (o->seen & FLAG_BIT(FLAG_VCPUS)) {
		int r = args__parse_count(o->value[FLAG_VCPUS], &o->vcpus);
		if (r < 0 || o->vcpus > UINT32_MAX) {
			skyctl_err("--vcpus '%s' is not a number of virtual CPUs; use e.g. --vcpus 2", o->value[FLAG_VCPUS]);
			return -EINVAL;
		}
		if (o->vcpus == 0) {
			skyctl_err("--vcpus must be at least 1");
			return -EINVAL;
		}
	}
	if (o->seen & FLAG_BIT(FLAG_MEMORY)) {
		int r = skyctl_conf_parse_size(o->value[FLAG_MEMORY], &o->memory);
		if (r == -ERANGE) {
			skyctl_err("--memory '%s' is too large", o->value[FLAG_MEMORY]);
			return -EINVAL;
		}
		if (r < 0) {
			skyctl_err("--memory '%s' is not a size; use e.g. 256M, 2G (powers of 1024) or a number of bytes",
				o->value[FLAG_MEMORY]);
			return -EINVAL;
		}
		if (o->memory == 0) {
			skyctl_err("--memory must be more than 0; use e.g. 256M");
			return -EINVAL;
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_BACKEND)) && strcmp(o->value[FLAG_BACKEND], "qemu") != 0 &&
	    strcmp(o->value[FLAG_BACKEND], "libvirt") != 0) {
		skyctl_err("--backend must be qemu or libvirt, not '%s'", o->value[FLAG_BACKEND]);
		return -EINVAL;
	}
	if (o->ndevices > SKYCTL_MAX_DEVICES) {
		skyctl_err("--device was given %zu times; a guest can have at most %d devices", o->ndevices,
			SKYCTL_MAX_DEVICES);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->ndevices; i++) {
		if (skyctl_conf_parse_pci_address(o->devices[i], o->device_addr[i], sizeof(o->device_addr[i])) < 0) {
			skyctl_err("--device '%s' is not a PCI address; give one as 'skyctl board show' lists it, "
				"e.g. 0000:00:03.0", o->devices[i]);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(o->device_addr[i], o->device_addr[j]) == 0) {
				skyctl_err("--device %s is given twice", o->device_addr[i]);
				return -EINVAL;
			}
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_CMDLINE)) && strlen(o->value[FLAG_CMDLINE]) > SKYCTL_MAX_CMDLINE) {
		skyctl_err("--cmdline is longer than %d bytes", SKYCTL_MAX_CMDLINE);
		return -EINVAL;
	}
	static const int names[] = { FLAG_NAME, FLAG_BOARD, FLAG_KERNEL, FLAG_INITRD, FLAG_DISK };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = o->value[names[i]];
		if ((o->seen & FLAG_BIT(names[i])) && (v[0] == '\0' || strlen(v) > SKYCTL_MAX_ID)) {
			skyctl_err("--%s must be 1 to %d bytes long", skyctl_flags[names[i]].name, SKYCTL_MAX_ID);
			return -EINVAL;
		}
	}
	/* Values that go into a JSON request must be UTF-8: jansson takes
	 * nothing else. */
	static const int texts[] = { FLAG_NAME, FLAG_BOARD, FLAG_KERNEL, FLAG_INITRD, FLAG_DISK, FLAG_CMDLINE };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_t *v;
		if (!(o->seen & FLAG_BIT(texts[i])))
			continue;
		v = json_string(o->value[texts[i]]);
		if (v == NULL) {
			skyctl_err("--%s is not valid UTF-8 text", skyctl_flags[texts[i]].name);
			return -EINVAL;
		}
		json_decref(v);
	}
	skyctl_conf_init(&o->flag_conf);
	if ((o->seen & FLAG_BIT(FLAG_CONFIG)) && o->value[FLAG_CONFIG][0] == '\0') {
		skyctl_err("--config needs a file name");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(conf_flags) / sizeof(conf_flags[0]); i++) {
		int f = conf_flags[i].flag;
		if (!(o->seen & FLAG_BIT(f)))
			continue;
		if (skyctl_conf_set(&o->flag_conf, conf_flags[i].key, o->value[f], NULL, err, sizeof(err)) < 0) {
			skyctl_err("--%s: %s", skyctl_flags[f].name, err);
			return -EINVAL;
		}
	}
	return 0;
}

