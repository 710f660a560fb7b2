/* skyctl's flags: the catalogue every command picks its own from, read by
 * the shared option layer (common/args.h) into struct skyctl_opts: sizes,
 * durations and counts are parsed and range-checked there, with the
 * shared limits (common/limits.h); what is skyctl's own is checked here. */
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <string.h>

#include "common/limits.h"
#include "common/parse.h"
#include "controller/skyctl/output.h"
#include "controller/skyctl/skyctl.h"

/* The values of the flags that take one of a fixed set, in the order
 * enum skyctl_output has them for --output. */
static const char *const args__outputs[] = { "table", "wide", "json", "yaml", NULL };
/* An image's kinds, then the kinds of object events tell of. */
static const char *const args__kinds[] = { "kernel", "initrd", "disk", "board", "guest", "image", "token", "credential",
					   NULL };
static const char *const args__backends[] = { "qemu", "libvirt", "skyvmm", NULL };
static const char *const args__roles[] = { "reader", "operator", "admin", NULL };

const struct skyctl_flag skyctl_flags[FLAG__COUNT] = {
	[FLAG_OUTPUT] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_OUTPUT]),
		.name = "output", .short_name = 'o', .metavar = "table|wide|json|yaml", .choices = args__outputs,
		.help = "output format (default table); wide: lists with more columns; json: the API's "
			"answer; yaml: the same answer in YAML",
	},
	[FLAG_CONFIG] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_CONFIG]),
		.name = "config", .metavar = "FILE",
		.help = "client config (default $SKYROOT_CONFIG, then ~/.config/skyroot/skyctl.conf)",
	},
	[FLAG_CONTROLLER] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_CONTROLLER]),
		.name = "controller", .metavar = "URL",
		.help = "controller API URL, e.g. https://127.0.0.1:7444 (overrides the config)",
	},
	[FLAG_CA] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_CA]),
		.name = "ca", .metavar = "FILE",
		.help = "CA certificate to check the controller against (overrides the config)",
	},
	[FLAG_TOKEN] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_TOKEN]),
		.name = "token", .metavar = "TOKEN",
		.help = "admin API token (overrides the config; other users can see it in ps)",
	},
	[FLAG_HELP] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_HELP]),
		.name = "help", .short_name = 'h',
		.help = "show help; after a command, the help of that command",
	},
	[FLAG_VERSION] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_VERSION]),
		.name = "version",
		.help = "print the version",
	},
	[FLAG_TTL] = {
		.kind = SKY_ARG_DURATION, .off = offsetof(struct skyctl_opts, ttl),
		.name = "ttl", .metavar = "DURATION",
		.help = "how long the token can be used: 90s, 10m, 1h, 2d or seconds (default 1h; 60s to 30d)",
	},
	[FLAG_USES] = {
		.kind = SKY_ARG_UINT, .off = offsetof(struct skyctl_opts, uses), .min = 1, .max = SKY_TOKEN_USES_MAX,
		.name = "uses", .metavar = "N",
		.help = "how many boards may enroll with the token (default 1; 1 to 10000)",
	},
	[FLAG_NAME] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_NAME]),
		.name = "name", .metavar = "NAME",
		.help = "the name of the new image (must not be taken)",
	},
	[FLAG_KIND] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_KIND]),
		.name = "kind", .metavar = "KIND", .choices = args__kinds,
		.help = "what the image is: kernel, initrd or disk (default disk)",
	},
	[FLAG_BOARD] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_BOARD]),
		.name = "board", .metavar = "BOARD",
		.help = "the board (id or name) that loads the image into its RAM",
	},
	[FLAG_NO_WAIT] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_NO_WAIT]),
		.name = "no-wait",
		.help = "return once the board has been told, without waiting for the fetch",
	},
	[FLAG_TIMEOUT] = {
		.kind = SKY_ARG_DURATION, .off = offsetof(struct skyctl_opts, timeout), .min = 1, .max = SKYCTL_FETCH_TIMEOUT_MAX,
		.name = "timeout", .metavar = "DURATION",
		.help = "how long to wait for the fetch: 30s, 10m, 1h or seconds (default 10m)",
	},
	[FLAG_KERNEL] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_KERNEL]),
		.name = "kernel", .metavar = "IMAGE",
		.help = "the kernel image to boot (id or name; see 'skyctl image list')",
	},
	[FLAG_INITRD] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_INITRD]),
		.name = "initrd", .metavar = "IMAGE",
		.help = "an initrd image to boot with the kernel (id or name)",
	},
	[FLAG_DISK] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_DISK]),
		.name = "disk", .metavar = "IMAGE",
		.help = "a disk image for the guest (id or name)",
	},
	[FLAG_CMDLINE] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_CMDLINE]),
		.name = "cmdline", .metavar = "STRING",
		.help = "the kernel command line",
	},
	[FLAG_VCPUS] = {
		.kind = SKY_ARG_UINT, .off = offsetof(struct skyctl_opts, vcpus), .min = 1, .max = SKY_GUEST_VCPUS_MAX,
		.name = "vcpus", .metavar = "N",
		.help = "virtual CPUs of the guest (default 1; at most 64)",
	},
	[FLAG_MEMORY] = {
		.kind = SKY_ARG_SIZE, .off = offsetof(struct skyctl_opts, memory), .min = SKY_GUEST_MEMORY_MIN, .max = SKY_GUEST_MEMORY_MAX,
		.name = "memory", .metavar = "SIZE",
		.help = "memory of the guest: 256M, 2G (powers of 1024) or bytes (default 256M; 16M to 1T)",
	},
	[FLAG_DEVICE] = {
		.kind = SKY_ARG_LIST, .off = offsetof(struct skyctl_opts, devices),
		.name = "device", .metavar = "PCI_ADDRESS",
		.help = "a PCI device of the board to pass through, e.g. 0000:00:03.0 (see 'skyctl board show'); "
			"up to 8 times",
	},
	[FLAG_BACKEND] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_BACKEND]),
		.name = "backend", .metavar = "qemu|libvirt|skyvmm", .choices = args__backends,
		.help = "the VMM that runs the guest on the board (default the board's: qemu where its "
			"firmware carries QEMU, else skyvmm)",
	},
	[FLAG_FOLLOW] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_FOLLOW]),
		.name = "follow",
		.help = "keep printing new output as it comes, until the controller ends it or Ctrl-C",
	},
	[FLAG_ROLE] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_ROLE]),
		.name = "role", .metavar = "reader|operator|admin", .choices = args__roles,
		.help = "what the credential may do: reader (GET only), operator (all but credentials and the "
			"audit log) or admin (all)",
	},
	[FLAG_GRACE] = {
		.kind = SKY_ARG_DURATION, .off = offsetof(struct skyctl_opts, grace), .max = 7 * 86400,
		.name = "grace", .metavar = "DURATION",
		.help = "how long the old token keeps working after a rotation: 0, 90s, 10m, 1h, 2d (default 0: "
			"invalid at once; at most 7d)",
	},
	[FLAG_NO_HEADERS] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_NO_HEADERS]),
		.name = "no-headers",
		.help = "print lists without their header line (for scripts)",
	},
	[FLAG_LIMIT] = {
		.kind = SKY_ARG_UINT, .off = offsetof(struct skyctl_opts, limit), .min = 1, .max = SKYCTL_LIMIT_MAX,
		.name = "limit", .metavar = "N",
		.help = "print at most N items: of a list, one page (1 to 1000) and the --page-token of the next "
			"(without it, every page); of the audit log, the newest N (1 to 10000, default 100)",
	},
	[FLAG_PAGE_TOKEN] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_PAGE_TOKEN]),
		.name = "page-token", .metavar = "TOKEN",
		.help = "print the page after the one that said this next page token (one page, as --limit)",
	},
	[FLAG_STATE] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_STATE]),
		.name = "state", .metavar = "STATE",
		.help = "list only the items in this state",
	},
	[FLAG_LABEL] = {
		.kind = SKY_ARG_LIST, .off = offsetof(struct skyctl_opts, labels),
		.name = "label", .metavar = "KEY=VALUE",
		.help = "set a label (KEY- removes it); up to 16 times",
	},
	[FLAG_DESCRIPTION] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_DESCRIPTION]),
		.name = "description", .metavar = "TEXT",
		.help = "the description (at most 1024 bytes; \"\" clears it)",
	},
	[FLAG_IF_MATCH] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_IF_MATCH]),
		.name = "if-match", .metavar = "ETAG",
		.help = "change it only if its etag is still this one (from 'show -o json'); else nothing changes",
	},
	[FLAG_PENDING] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_PENDING]),
		.name = "pending",
		.help = "list the boards that enrolled with no token and wait for an operator (or were decided)",
	},
	[FLAG_SERIAL] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_SERIAL]),
		.name = "serial", .metavar = "SERIAL",
		.help = "a DMI serial number, as the board claims it",
	},
	[FLAG_UUID] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_UUID]),
		.name = "uuid", .metavar = "UUID",
		.help = "a DMI product UUID, as the board claims it",
	},
	[FLAG_TYPE] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_TYPE]),
		.name = "type", .metavar = "TYPE",
		.help = "only events of this type, e.g. guest.state (docs/api.md lists them)",
	},
	[FLAG_ID] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_ID]),
		.name = "id", .metavar = "ID",
		.help = "only events of the object with this id (a credential: its name)",
	},
	[FLAG_SINCE] = {
		.kind = SKY_ARG_UINT, .off = offsetof(struct skyctl_opts, since), .min = 0, .max = INT64_MAX,
		.name = "since", .metavar = "RV",
		.help = "only events after this resource version (an event's, or a list's resource_version)",
	},
	[FLAG_WAIT] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_WAIT]),
		.name = "wait",
		.help = "wait for the outcome (through the controller's events); the exit status says it",
	},
	[FLAG_NIC] = {
		.kind = SKY_ARG_LIST, .off = offsetof(struct skyctl_opts, nics),
		.name = "nic", .metavar = "NETWORK[,mac=MAC]",
		.help = "a network interface on a network (id or name; see 'skyctl network list'), with a MAC of "
			"your own or one the controller picks; up to 8 times",
	},
	[FLAG_VLAN] = {
		.kind = SKY_ARG_UINT, .off = offsetof(struct skyctl_opts, vlan), .min = SKY_VLAN_MIN, .max = SKY_VLAN_MAX,
		.name = "vlan", .metavar = "N",
		.help = "the network's 802.1Q VLAN id, 1 to 4094 (default: untagged)",
	},
	[FLAG_PCR11] = {
		.kind = SKY_ARG_STR, .off = offsetof(struct skyctl_opts, value[FLAG_PCR11]),
		.name = "pcr11", .metavar = "HEX",
		.help = "the PCR 11 (SHA-256 bank, 64 hex digits) the firmware's UKI measures, as fwimage/build.sh "
			"prints it",
	},
	[FLAG_SCDOC] = {
		.kind = SKY_ARG_FLAG, .off = offsetof(struct skyctl_opts, on[FLAG_SCDOC]),
		.name = "scdoc",
		.help = "print the OPTIONS and COMMANDS sections of skyctl(1) in scdoc (the build makes the man page with it)",
	},
};

void skyctl_args_opt(struct sky_opt *opt, int flag, struct skyctl_opts *o)
{
	const struct skyctl_flag *fl = &skyctl_flags[flag];

	*opt = (struct sky_opt){
		.name = fl->name, .short_name = fl->short_name, .kind = fl->kind,
		.dest = o != NULL ? (char *)o + fl->off : NULL, .metavar = fl->metavar, .help = fl->help,
		.min = fl->min, .max = fl->max,
	};
}

/* "--help" and "-h" anywhere before "--" are taken out of argv, so that
 * the words around them still say which help is asked for. */
static int args__take_help(int argc, char **argv, struct skyctl_opts *o)
{
	int w = 1, i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			o->seen |= FLAG_BIT(FLAG_HELP);
		else
			argv[w++] = argv[i];
	}
	while (i < argc)
		argv[w++] = argv[i++];
	argv[w] = NULL;
	return w;
}

int skyctl_args_parse(int argc, char **argv, struct skyctl_opts *o)
{
	struct sky_opt opts[FLAG__COUNT + 1];
	char err[512];
	int first, r;

	argc = args__take_help(argc, argv, o);
	o->timeout = SKYCTL_FETCH_TIMEOUT;
	o->devices.max = SKYCTL_MAX_DEVICES;
	o->nics.max = SKYCTL_MAX_NICS;
	/* Every flag of every command: which ones the command takes is
	 * checked once the words say which command it is. */
	for (int f = 0; f < FLAG__COUNT; f++)
		skyctl_args_opt(&opts[f], f, o);
	opts[FLAG__COUNT] = (struct sky_opt){ 0 };
	r = sky_args_parse(opts, argc, argv, &first, err, sizeof(err));
	if (r < 0) {
		skyctl_err("%s", err);
		return r;
	}
	for (int f = 0; f < FLAG__COUNT; f++)
		if (opts[f].seen > 0)
			o->seen |= FLAG_BIT(f);
	for (int i = first; i < argc; i++) {
		if (o->nwords == SKYCTL_MAX_WORDS) {
			skyctl_err("too many arguments");
			return -EINVAL;
		}
		o->words[o->nwords++] = argv[i];
	}
	return 0;
}

/* The index of the flag's value in its choices (0 when not given), or
 * -EINVAL with "--kind must be kernel, initrd or disk, not 'x'". */
static int args__choice(const struct skyctl_opts *o, int flag)
{
	const char *const *allowed = skyctl_flags[flag].choices;
	char say[128] = "";
	size_t n = 0;

	if (!skyctl_has(o, flag))
		return 0;
	for (int i = 0; allowed[i] != NULL; i++)
		if (strcmp(o->value[flag], allowed[i]) == 0)
			return i;
	for (int i = 0; allowed[i] != NULL && n < sizeof(say); i++) {
		int w = snprintf(say + n, sizeof(say) - n, "%s%s", i == 0 ? "" : allowed[i + 1] ? ", " : " or ",
				 allowed[i]);
		n += w < 0 ? 0 : (size_t)w;
	}
	skyctl_err("--%s must be %s, not '%s'", skyctl_flags[flag].name, say, o->value[flag]);
	return -EINVAL;
}

/* Check what the option layer leaves to skyctl; prints what is wrong and
 * returns -EINVAL. */
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
	int output;

	output = args__choice(o, FLAG_OUTPUT);
	if (output < 0 || args__choice(o, FLAG_KIND) < 0 || args__choice(o, FLAG_BACKEND) < 0 ||
	    args__choice(o, FLAG_ROLE) < 0)
		return -EINVAL;
	o->output = (enum skyctl_output)output;
	if (skyctl_has(o, FLAG_TTL) && (o->ttl < SKY_TOKEN_TTL_MIN || o->ttl > SKY_TOKEN_TTL_MAX)) {
		char given[32] = "?";
		sky_format_duration(o->ttl, given, sizeof(given));
		skyctl_err("--ttl must be at least 60s and at most 30d (the controller refuses other lifetimes), "
			   "not %s; use e.g. --ttl 10m", given);
		return -EINVAL;
	}
	if (skyctl_has(o, FLAG_TIMEOUT) && skyctl_has(o, FLAG_NO_WAIT)) {
		skyctl_err("--timeout is how long to wait; it does not go with --no-wait");
		return -EINVAL;
	}
	for (size_t i = 0; i < o->devices.n; i++) {
		if (sky_parse_pci(o->devices.v[i], o->device_addr[i], sizeof(o->device_addr[i])) < 0) {
			skyctl_err("--device '%s' is not a PCI address; give one as 'skyctl board show' lists it, "
				   "e.g. 0000:00:03.0", o->devices.v[i]);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(o->device_addr[i], o->device_addr[j]) == 0) {
				skyctl_err("--device %s is given twice", o->device_addr[i]);
				return -EINVAL;
			}
		}
	}
	for (size_t i = 0; i < o->nics.n; i++) {
		uint8_t mac[6];
		bool has_mac;

		if (sky_parse_nic(o->nics.v[i], o->nic_net[i], sizeof(o->nic_net[i]), mac, &has_mac) < 0) {
			skyctl_err("--nic '%s' is not NETWORK or NETWORK,mac=MAC (e.g. --nic prod or --nic "
				   "prod,mac=02:53:4b:00:00:01)", o->nics.v[i]);
			return -EINVAL;
		}
		o->nic_mac[i][0] = '\0';
		if (has_mac)
			sky_format_mac(mac, o->nic_mac[i]);
	}
	if (skyctl_has(o, FLAG_CMDLINE) && strlen(o->value[FLAG_CMDLINE]) > SKYCTL_MAX_CMDLINE) {
		skyctl_err("--cmdline is longer than %d bytes", SKYCTL_MAX_CMDLINE);
		return -EINVAL;
	}
	static const int names[] = { FLAG_NAME, FLAG_BOARD, FLAG_KERNEL, FLAG_INITRD, FLAG_DISK };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = o->value[names[i]];
		if (skyctl_has(o, names[i]) && (v[0] == '\0' || strlen(v) > SKYCTL_MAX_ID)) {
			skyctl_err("--%s must be 1 to %d bytes long", skyctl_flags[names[i]].name, SKYCTL_MAX_ID);
			return -EINVAL;
		}
	}
	/* Values that go into a JSON request must be UTF-8: jansson takes
	 * nothing else. */
	static const int texts[] = { FLAG_NAME, FLAG_BOARD, FLAG_KERNEL, FLAG_INITRD, FLAG_DISK, FLAG_CMDLINE };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_t *v;
		if (!(skyctl_has(o, texts[i])))
			continue;
		v = json_string(o->value[texts[i]]);
		if (v == NULL) {
			skyctl_err("--%s is not valid UTF-8 text", skyctl_flags[texts[i]].name);
			return -EINVAL;
		}
		json_decref(v);
	}
	skyctl_conf_init(&o->flag_conf);
	if (skyctl_has(o, FLAG_CONFIG) && o->value[FLAG_CONFIG][0] == '\0') {
		skyctl_err("--config needs a file name");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(conf_flags) / sizeof(conf_flags[0]); i++) {
		int f = conf_flags[i].flag;
		if (!(skyctl_has(o, f)))
			continue;
		if (skyctl_conf_set(&o->flag_conf, conf_flags[i].key, o->value[f], NULL, err, sizeof(err)) < 0) {
			skyctl_err("--%s: %s", skyctl_flags[f].name, err);
			return -EINVAL;
		}
	}
	return 0;
}

