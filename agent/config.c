/* skyagent configuration: flags first, then the kernel command line.
 *
 * The flags are a table that also produces the usage text.  A value given as
 * a flag always wins; skyroot.controller=, skyroot.token= and skyroot.ca= on
 * the kernel command line fill only what the flags left out.  Every error
 * names the flag or kernel parameter at fault and says what to do. */
#include "agent/config.h"

#include "agent/dhcp.h"
#include "agent/srv.h"
#include "common/args.h"
#include "common/log.h"
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson adds -DSKY_VERSION=...)"
#endif

#define AGENT_DEFAULT_PORT 7443
#define AGENT_DEFAULT_HEARTBEAT_MS 10000
#define AGENT_MIN_HEARTBEAT_MS 100
#define AGENT_MAX_HEARTBEAT_MS 600000
#define AGENT_MAX_CMDLINE 65536 /* far above any architecture's COMMAND_LINE_SIZE */

/* What the flags said, before it is checked and copied into the config. */
struct config_flags {
	const char *controller, *controller_dhcp, *token, *ca, *sysfs_root, *procfs_root, *devfs_root, *cmdline, *qemu,
		*skyvmm, *identity_dir, *bridge, *tpm;
	uint64_t heartbeat_ms, cache_max;
	bool once, allow_kexec, allow_reboot, version, controller_srv, no_tpm;
	const char *reboot_command;
	int log_level;
};

/* The flags, in the order usage shows them. */
enum {
	CONFIG_CONTROLLER,
	CONFIG_CONTROLLER_DHCP,
	CONFIG_CONTROLLER_SRV,
	CONFIG_TOKEN,
	CONFIG_CA,
	CONFIG_SYSFS_ROOT,
	CONFIG_PROCFS_ROOT,
	CONFIG_DEVFS_ROOT,
	CONFIG_CMDLINE,
	CONFIG_LOG_LEVEL,
	CONFIG_HEARTBEAT,
	CONFIG_CACHE_MAX,
	CONFIG_QEMU,
	CONFIG_SKYVMM,
	CONFIG_BRIDGE,
	CONFIG_ALLOW_KEXEC,
	CONFIG_ALLOW_REBOOT,
	CONFIG_REBOOT_COMMAND,
	CONFIG_IDENTITY_DIR,
	CONFIG_TPM,
	CONFIG_NO_TPM,
	CONFIG_ONCE,
	CONFIG_VERSION,
	CONFIG_NOPTS, /* the table's end */
};

static int config__log_level(void *ctx, const char *value, char *err, size_t errlen)
{
	int level = sky_log_parse_level(value);
	if (level < 0) {
		snprintf(err, errlen, "unknown --log-level '%.40s': use error, warn, info or debug", value);
		return -EINVAL;
	}
	*(int *)ctx = level;
	return 0;
}

/* The flag table over f (a fresh one per parse: sky_args_parse counts in it). */
static void config__table(struct sky_opt opts[CONFIG_NOPTS + 1], struct config_flags *f)
{
	const struct sky_opt table[CONFIG_NOPTS + 1] = {
		[CONFIG_CONTROLLER] = { .name = "controller", .kind = SKY_ARG_STR, .dest = &f->controller,
		  .metavar = "HOST:PORT[,HOST:PORT...]",
		  .help = "controllers' agent link; port 7443 if none,\n"
			  "IPv6 as [ADDR]:PORT; up to 16, comma separated,\n"
			  "tried in order (every address of a name), the\n"
			  "next on loss of one; else skyroot.controller=" },
		[CONFIG_CONTROLLER_DHCP] = { .name = "controller-from-dhcp", .kind = SKY_ARG_STR, .dest = &f->controller_dhcp,
		  .metavar = "FILE",
		  .help = "else the controller from DHCP option 224 in\n"
			  "FILE, hex as udhcpc gives it (the firmware)" },
		[CONFIG_CONTROLLER_SRV] = { .name = "controller-from-srv", .kind = SKY_ARG_FLAG, .dest = &f->controller_srv,
		  .help = "else the controller from DNS SRV\n"
			  AGENT_SRV_NAME " in the search domains" },
		[CONFIG_TOKEN] = { .name = "token", .kind = SKY_ARG_STR, .dest = &f->token, .metavar = "TOKEN",
		  .help = "enrollment token (`skyctl token create`);\n"
			  "else skyroot.token=; without one the board enrolls as\n"
			  "pending and waits for an operator to accept it" },
		[CONFIG_CA] = { .name = "ca", .kind = SKY_ARG_STR, .dest = &f->ca, .metavar = "sha256:HEX",
		  .help = "pin of the controller's CA certificate;\n"
			  "else skyroot.ca=" },
		[CONFIG_SYSFS_ROOT] = { .name = "sysfs-root", .kind = SKY_ARG_STR, .dest = &f->sysfs_root, .metavar = "DIR",
		  .help = "where sysfs is mounted (default /sys)" },
		[CONFIG_PROCFS_ROOT] = { .name = "procfs-root", .kind = SKY_ARG_STR, .dest = &f->procfs_root, .metavar = "DIR",
		  .help = "where procfs is mounted (default /proc)" },
		[CONFIG_DEVFS_ROOT] = { .name = "devfs-root", .kind = SKY_ARG_STR, .dest = &f->devfs_root, .metavar = "DIR",
		  .help = "where devices live (default /dev)" },
		[CONFIG_CMDLINE] = { .name = "cmdline", .kind = SKY_ARG_STR, .dest = &f->cmdline, .metavar = "FILE",
		  .help = "kernel command line to read\n"
			  "(default PROCFS-ROOT/cmdline)" },
		[CONFIG_LOG_LEVEL] = { .name = "log-level", .kind = SKY_ARG_CALLBACK, .metavar = "LEVEL", .cb = config__log_level,
		  .ctx = &f->log_level, .help = "error, warn, info (default) or debug" },
		[CONFIG_HEARTBEAT] = { .name = "heartbeat-interval", .kind = SKY_ARG_UINT, .dest = &f->heartbeat_ms, .metavar = "MS",
		  .min = AGENT_MIN_HEARTBEAT_MS, .max = AGENT_MAX_HEARTBEAT_MS,
		  .help = "milliseconds between heartbeats,\n"
			  "100..600000 (default 10000)" },
		[CONFIG_CACHE_MAX] = { .name = "cache-max", .kind = SKY_ARG_SIZE, .dest = &f->cache_max, .metavar = "SIZE",
		  .min = 1, .max = INT64_MAX,
		  .help = "RAM for cached images, e.g. 4G, 512M\n"
			  "(default half of physical memory)" },
		[CONFIG_QEMU] = { .name = "qemu", .kind = SKY_ARG_STR, .dest = &f->qemu, .metavar = "PATH",
		  .help = "QEMU for guests (default\n"
			  "qemu-system-x86_64 from PATH); given or\n"
			  "found, guests that name no backend run under\n"
			  "QEMU, else under skyvmm" },
		[CONFIG_SKYVMM] = { .name = "skyvmm", .kind = SKY_ARG_STR, .dest = &f->skyvmm, .metavar = "PATH",
		  .help = "skyvmm for guests (default the build's\n"
			  "libexec/skyroot/skyvmm, else\n"
			  "/usr/libexec/skyroot/skyvmm)" },
		[CONFIG_BRIDGE] = { .name = "bridge", .kind = SKY_ARG_STR, .dest = &f->bridge, .metavar = "NAME",
		  .help = "the bridge guests' NICs join, VLAN filtering\n"
			  "on (default br0, the firmware's)" },
		[CONFIG_ALLOW_KEXEC] = { .name = "allow-kexec", .kind = SKY_ARG_FLAG, .dest = &f->allow_kexec,
		  .help = "let `skyctl board boot` replace this OS\n"
			  "(the firmware's init passes it)" },
		[CONFIG_ALLOW_REBOOT] = { .name = "allow-reboot", .kind = SKY_ARG_FLAG, .dest = &f->allow_reboot,
		  .help = "let the controller reboot this machine\n"
			  "(Redfish Reset; the firmware's init passes it)" },
		[CONFIG_REBOOT_COMMAND] = { .name = "reboot-command", .kind = SKY_ARG_STR, .dest = &f->reboot_command,
		  .metavar = "PATH", .help = "with --allow-reboot: run PATH instead of\n"
			  "reboot(2) (tests; see skyagent(8))" },
		[CONFIG_IDENTITY_DIR] = { .name = "identity-dir", .kind = SKY_ARG_STR, .dest = &f->identity_dir, .metavar = "DIR",
		  .help = "keep key and certificate across restarts\n"
			  "in DIR, which must be RAM (a tmpfs)" },
		[CONFIG_TPM] = { .name = "tpm", .kind = SKY_ARG_STR, .dest = &f->tpm, .metavar = "TCTI",
		  .help = "the TPM 2.0 to enroll with, a tpm2-tss TCTI\n"
			  "(device:/dev/tpmrm0, swtpm:host=H,port=P); default\n"
			  "DEVFS-ROOT/tpmrm0 when it exists, else none. With a\n"
			  "TPM whose EK the controller knows, no token is needed" },
		[CONFIG_NO_TPM] = { .name = "no-tpm", .kind = SKY_ARG_FLAG, .dest = &f->no_tpm,
		  .help = "enroll without the TPM even when there is one" },
		[CONFIG_ONCE] = { .name = "once", .kind = SKY_ARG_FLAG, .dest = &f->once,
		  .help = "exit after the first session is set up\n"
			  "(for tests); exit 1 when refused or left pending" },
		[CONFIG_VERSION] = { .name = "version", .kind = SKY_ARG_FLAG, .dest = &f->version, .help = "show the version and exit" },
		[CONFIG_NOPTS] = { 0 },
	};
	memcpy(opts, table, sizeof(table));
}

/* What the flags said, so the kernel command line fills only the rest. */
struct seen {
	bool controller, token, ca, cmdline, no_tpm;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int copy_str(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(dst, src, len + 1);
	return 0;
}

/* ---- the kernel command line's syntax ---------------------------------- */

/* The kernel's own rules (lib/cmdline.c next_arg): parameters are separated
 * by white space outside double quotes; a value may be quoted as key="a b",
 * or the whole parameter as "key=a b"; the quotes are not part of the value.
 * When a key is given twice the last one wins, as for kernel parameters. */
int agent_cmdline_get(const char *cmdline, const char *key, char *out, size_t outlen)
{
	size_t keylen = strlen(key);
	const char *found = NULL;
	size_t found_len = 0;
	const char *p = cmdline;

	for (;;) {
		while (*p != '\0' && isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		bool in_quote = false, quoted = false;
		if (*p == '"') {
			p++;
			in_quote = quoted = true;
		}
		size_t i, equals = 0;
		bool has_equals = false;
		for (i = 0; p[i] != '\0'; i++) {
			if (isspace((unsigned char)p[i]) && !in_quote)
				break;
			if (!has_equals && p[i] == '=') {
				has_equals = true;
				equals = i;
			}
			if (p[i] == '"')
				in_quote = !in_quote;
		}
		if (has_equals && equals == keylen && memcmp(p, key, keylen) == 0) {
			const char *v = p + equals + 1;
			size_t vlen = i - equals - 1;
			bool strip_end = quoted;
			if (vlen > 0 && v[0] == '"') {
				v++;
				vlen--;
				strip_end = true;
			}
			if (strip_end && vlen > 0 && v[vlen - 1] == '"')
				vlen--;
			found = v;
			found_len = vlen;
		}
		p += i;
	}
	if (!found)
		return -ENOENT;
	if (found_len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, found, found_len);
	out[found_len] = '\0';
	return 0;
}

/* ---- applying values --------------------------------------------------- */

/* The first controller also in controller_host/port (what the log shows first). */
static void first_controller(struct agent_config *cfg)
{
	memcpy(cfg->controller_host, cfg->controllers[0].host, sizeof(cfg->controller_host));
	cfg->controller_port = cfg->controllers[0].port;
}

static int set_controller(struct agent_config *cfg, const char *v, const char *from, char *err,
			  size_t errlen)
{
	size_t bad = 0;
	int r = sky_parse_hostport_list(v, cfg->controllers, AGENT_MAX_CONTROLLERS, &cfg->n_controllers,
					AGENT_DEFAULT_PORT, &bad);

	if (r == -E2BIG) {
		set_err(err, errlen, "too many controllers in '%.300s' from %s: at most %d different ones", v, from,
			AGENT_MAX_CONTROLLERS);
		return -EINVAL;
	}
	if (r < 0) {
		cfg->n_controllers = 0;
		set_err(err, errlen,
			"bad controller address '%.300s' from %s (item %zu): give HOST:PORT, HOST (port %d), "
			"[IPv6]:PORT or [IPv6], with a port between 1 and 65535, several separated by commas "
			"with no empty item",
			v, from, bad, AGENT_DEFAULT_PORT);
		return -EINVAL;
	}
	first_controller(cfg);
	return 0;
}

static int set_token(struct agent_config *cfg, const char *v, const char *from, char *err,
		     size_t errlen)
{
	size_t len = strlen(v);
	if (len >= sizeof(cfg->token)) {
		set_err(err, errlen,
			"token from %s is %zu bytes, longer than the %zu allowed: "
			"copy the token exactly as `skyctl token create` printed it",
			from, len, sizeof(cfg->token) - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= 0x20 || c >= 0x7f) {
			set_err(err, errlen,
				"token from %s has a space or a non-printable character at byte %zu: "
				"copy the token exactly as `skyctl token create` printed it",
				from, i + 1);
			return -EINVAL;
		}
	}
	memcpy(cfg->token, v, len + 1);
	return 0;
}

static int set_ca(struct agent_config *cfg, const char *v, const char *from, char *err,
		  size_t errlen)
{
	if (sky_parse_ca_pin(v, cfg->ca_pin) < 0) {
		set_err(err, errlen,
			"bad CA pin '%.100s' from %s: expected sha256: followed by 64 hex digits, "
			"as printed by `skyctl token create`",
			v, from);
		return -EINVAL;
	}
	cfg->have_ca_pin = 1;
	return 0;
}

static int set_path(char *dst, size_t size, const char *v, const char *flag, char *err,
		    size_t errlen)
{
	if (v[0] == '\0') {
		set_err(err, errlen, "--%s needs a path, not an empty string", flag);
		return -EINVAL;
	}
	if (copy_str(dst, size, v) < 0) {
		set_err(err, errlen, "--%s path is %zu bytes, longer than the %zu allowed: use a shorter path",
			flag, strlen(v), size - 1);
		return -EINVAL;
	}
	return 0;
}

/* Check what the flags said and copy it into cfg. */
static int apply_flags(struct agent_config *cfg, const struct sky_opt *opts, const struct config_flags *f,
		       struct seen *seen, char *err, size_t errlen)
{
	const struct {
		const char *value;
		char *dst;
		size_t size;
		int opt;
	} paths[] = {
		{ f->sysfs_root, cfg->sysfs_root, sizeof(cfg->sysfs_root), CONFIG_SYSFS_ROOT },
		{ f->procfs_root, cfg->procfs_root, sizeof(cfg->procfs_root), CONFIG_PROCFS_ROOT },
		{ f->devfs_root, cfg->devfs_root, sizeof(cfg->devfs_root), CONFIG_DEVFS_ROOT },
		{ f->cmdline, cfg->cmdline_path, sizeof(cfg->cmdline_path), CONFIG_CMDLINE },
		{ f->controller_dhcp, cfg->controller_dhcp, sizeof(cfg->controller_dhcp), CONFIG_CONTROLLER_DHCP },
		{ f->qemu, cfg->qemu_path, sizeof(cfg->qemu_path), CONFIG_QEMU },
		{ f->skyvmm, cfg->skyvmm_path, sizeof(cfg->skyvmm_path), CONFIG_SKYVMM },
		{ f->bridge, cfg->bridge, sizeof(cfg->bridge), CONFIG_BRIDGE },
		{ f->identity_dir, cfg->identity_dir, sizeof(cfg->identity_dir), CONFIG_IDENTITY_DIR },
		{ f->reboot_command, cfg->reboot_command, sizeof(cfg->reboot_command), CONFIG_REBOOT_COMMAND },
	};
	int r;

	seen->controller = opts[CONFIG_CONTROLLER].seen > 0;
	/* An explicit empty --token means "no token", whatever the kernel says. */
	seen->token = opts[CONFIG_TOKEN].seen > 0;
	seen->ca = opts[CONFIG_CA].seen > 0;
	seen->cmdline = opts[CONFIG_CMDLINE].seen > 0;
	if (f->controller && (r = set_controller(cfg, f->controller, "--controller", err, errlen)) < 0)
		return r;
	if (f->token && (r = set_token(cfg, f->token, "--token", err, errlen)) < 0)
		return r;
	if (f->ca && (r = set_ca(cfg, f->ca, "--ca", err, errlen)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!paths[i].value)
			continue;
		r = set_path(paths[i].dst, paths[i].size, paths[i].value, opts[paths[i].opt].name, err, errlen);
		if (r < 0)
			return r;
	}
	cfg->log_level = f->log_level;
	cfg->heartbeat_ms = f->heartbeat_ms;
	cfg->cache_max = f->cache_max;
	cfg->once = f->once;
	cfg->allow_kexec = f->allow_kexec;
	cfg->allow_reboot = f->allow_reboot;
	cfg->controller_srv = f->controller_srv;
	if (f->tpm && f->no_tpm) {
		snprintf(err, errlen, "--tpm names a TPM and --no-tpm says to use none: give one of them");
		return -EINVAL;
	}
	if (f->tpm && (!f->tpm[0] || strlen(f->tpm) >= sizeof(cfg->tpm_tcti))) {
		snprintf(err, errlen, "--tpm needs a TCTI string of at most %zu bytes, such as device:/dev/tpmrm0 "
			 "or swtpm:host=127.0.0.1,port=2321", sizeof(cfg->tpm_tcti) - 1);
		return -EINVAL;
	}
	if (f->tpm) {
		snprintf(cfg->tpm_tcti, sizeof(cfg->tpm_tcti), "%s", f->tpm);
		cfg->tpm_explicit = 1;
	}
	seen->no_tpm = f->no_tpm;
	if (cfg->reboot_command[0] && !cfg->allow_reboot) {
		snprintf(err, errlen, "--reboot-command is run only on a reboot order, which needs --allow-reboot; "
			 "give both or neither");
		return -EINVAL;
	}
	return 0;
}

static int parse_flags(struct agent_config *cfg, int argc, char **argv, struct seen *seen, char *err,
		       size_t errlen)
{
	struct sky_opt opts[CONFIG_NOPTS + 1];
	struct config_flags f = {
		.log_level = cfg->log_level, .heartbeat_ms = cfg->heartbeat_ms, .cache_max = cfg->cache_max,
	};
	int first, r;

	config__table(opts, &f);
	r = sky_args_parse(opts, argc, argv, &first, err, errlen);
	if (r == 1) {
		agent_usage(stdout);
		return 1;
	}
	if (r < 0)
		return r;
	if (f.version) {
		printf("skyagent %s\n", SKY_VERSION);
		return 1;
	}
	if (first < argc) {
		set_err(err, errlen, "unexpected argument '%.100s': skyagent takes only flags, see skyagent --help",
			argv[first]);
		return -EINVAL;
	}
	return apply_flags(cfg, opts, &f, seen, err, errlen);
}

/* ---- the kernel command line ------------------------------------------- */

/* Read the whole file into a fresh NUL-terminated buffer (at most
 * AGENT_MAX_CMDLINE bytes; -E2BIG beyond). */
static int read_cmdline(const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	char *buf = malloc(AGENT_MAX_CMDLINE + 1);
	int r = 0;
	if (!buf) {
		r = -ENOMEM;
		goto fail_alloc;
	}
	size_t len = 0;
	for (;;) {
		if (len > AGENT_MAX_CMDLINE) {
			r = -E2BIG;
			goto fail_read;
		}
		ssize_t n = read(fd, buf + len, AGENT_MAX_CMDLINE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail_read;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	close(fd);
	return 0;

fail_read:
	free(buf);
fail_alloc:
	close(fd);
	return r;
}

/* The controller the rack's network names, when neither a flag nor the
 * kernel command line does: DHCP option 224 (--controller-from-dhcp
 * FILE), else DNS SRV (--controller-from-srv). */
static int fill_from_network(struct agent_config *cfg, char *err, size_t errlen)
{
	int r;

	if (cfg->controller_dhcp[0]) {
		r = agent_dhcp_controllers_file(cfg->controller_dhcp, cfg->controllers, AGENT_MAX_CONTROLLERS,
						&cfg->n_controllers, AGENT_DEFAULT_PORT);
		if (r == 0) {
			first_controller(cfg);
			return 0;
		}
		if (r != -ENOENT) {
			set_err(err, errlen,
				"bad controller address from DHCP option %d in %.4000s (%s): the DHCP server "
				"must send HOST:PORT, HOST or [IPv6]:PORT (at most %d, comma separated) as a "
				"string of at most %d bytes",
				AGENT_DHCP_OPTION, cfg->controller_dhcp,
				r == -E2BIG ? "too long"
				: r == -EINVAL || r == -ENAMETOOLONG ? "not a list of at most 16 HOST:PORT" : strerror(-r),
				AGENT_MAX_CONTROLLERS, AGENT_DHCP_VALUE_MAX);
			return -EINVAL;
		}
	}
	if (cfg->controller_srv) {
		r = agent_srv_lookup(cfg->controllers, AGENT_MAX_CONTROLLERS, &cfg->n_controllers);
		if (r == 0) {
			first_controller(cfg);
			return 0;
		}
		if (r != -ENOENT) {
			set_err(err, errlen,
				"the DNS answer for SRV " AGENT_SRV_NAME " is malformed: fix the rack's DNS server "
				"or boot with skyroot.controller=HOST:PORT");
			return -EINVAL;
		}
	}
	char dhcp[4200] = "", srv[200] = "";
	if (cfg->controller_dhcp[0])
		snprintf(dhcp, sizeof(dhcp), ", no DHCP option %d (%.4000s is missing)", AGENT_DHCP_OPTION,
			 cfg->controller_dhcp);
	if (cfg->controller_srv)
		snprintf(srv, sizeof(srv), ", no usable DNS SRV record " AGENT_SRV_NAME " in the search domains");
	set_err(err, errlen,
		"no controller given: none on the kernel command line%s%s: configure the rack's DHCP or DNS "
		"server to name it or boot with skyroot.controller=HOST:PORT",
		dhcp, srv);
	return -EINVAL;
}

/* Fill what the flags left out.  `why` says why the command line could not
 * be read ("" when it was read), to be added to a "missing" error. */
static int fill_from_cmdline(struct agent_config *cfg, const char *cmdline, const struct seen *seen,
			     const char *why, char *err, size_t errlen)
{
	char from[4200];
	char ctl[AGENT_MAX_CONTROLLERS * (SKY_HOSTPORT_ITEM_MAX + 1)];
	char v[512];
	int r;

	snprintf(from, sizeof(from), "the kernel command line (%s)", cfg->cmdline_path);

	if (!seen->controller) {
		r = cmdline ? agent_cmdline_get(cmdline, "skyroot.controller", ctl, sizeof(ctl)) : -ENOENT;
		if (r == -ENOENT && (cfg->controller_dhcp[0] || cfg->controller_srv)) {
			r = fill_from_network(cfg, err, errlen);
		} else if (r == -ENOENT) {
			set_err(err, errlen,
				"no controller given: pass --controller HOST:PORT or boot with "
				"skyroot.controller=HOST:PORT%s",
				why);
			return -EINVAL;
		} else if (r == -ENAMETOOLONG) {
			set_err(err, errlen,
				"skyroot.controller= on %s is too long for a HOST:PORT list: fix the boot entry",
				from);
			return -EINVAL;
		} else {
			r = set_controller(cfg, ctl, from, err, errlen);
		}
		if (r < 0)
			return r;
	}
	if (!seen->ca) {
		r = cmdline ? agent_cmdline_get(cmdline, "skyroot.ca", v, sizeof(v)) : -ENOENT;
		if (r == -ENOENT) {
			set_err(err, errlen,
				"no CA pin given: pass --ca sha256:HEX or boot with skyroot.ca=sha256:HEX "
				"(`skyctl token create` prints it)%s",
				why);
			return -EINVAL;
		}
		if (r == -ENAMETOOLONG) {
			set_err(err, errlen,
				"skyroot.ca= on %s is too long: expected sha256: followed by 64 hex digits",
				from);
			return -EINVAL;
		}
		r = set_ca(cfg, v, from, err, errlen);
		if (r < 0)
			return r;
	}
	if (!seen->token && cmdline) {
		r = agent_cmdline_get(cmdline, "skyroot.token", v, sizeof(v));
		if (r == -ENAMETOOLONG) {
			set_err(err, errlen,
				"token from %s is longer than the %zu bytes allowed: "
				"copy the token exactly as `skyctl token create` printed it",
				from, sizeof(cfg->token) - 1);
			return -EINVAL;
		}
		if (r == 0) {
			r = set_token(cfg, v, from, err, errlen);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int agent_config_parse(struct agent_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	struct seen seen = { false, false, false, false, false };
	int r;

	if (err && errlen > 0)
		err[0] = '\0';
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->sysfs_root, "/sys");
	strcpy(cfg->procfs_root, "/proc");
	strcpy(cfg->devfs_root, "/dev");
	cfg->controller_port = AGENT_DEFAULT_PORT;
	cfg->log_level = SKY_LOG_INFO;
	cfg->heartbeat_ms = AGENT_DEFAULT_HEARTBEAT_MS;

	r = parse_flags(cfg, argc, argv, &seen, err, errlen);
	if (r != 0)
		return r;
	/* The TPM by default: the kernel's resource manager device, if any. */
	if (!cfg->tpm_explicit && !seen.no_tpm) {
		char dev[sizeof(cfg->devfs_root) + 8];
		snprintf(dev, sizeof(dev), "%s/tpmrm0", cfg->devfs_root);
		if (access(dev, R_OK | W_OK) == 0)
			snprintf(cfg->tpm_tcti, sizeof(cfg->tpm_tcti), "device:%s", dev);
	}

	if (!seen.cmdline) {
		int n = snprintf(cfg->cmdline_path, sizeof(cfg->cmdline_path), "%s/cmdline",
				 cfg->procfs_root);
		if (n < 0 || (size_t)n >= sizeof(cfg->cmdline_path)) {
			set_err(err, errlen,
				"--procfs-root is too long to hold cmdline: use a shorter path or pass --cmdline FILE");
			return -EINVAL;
		}
	}
	if (seen.controller && seen.ca && seen.token)
		return 0;

	char *cmdline = NULL;
	char why[4200] = "";
	r = read_cmdline(cfg->cmdline_path, &cmdline);
	if (r == -E2BIG) {
		set_err(err, errlen, "kernel command line %.4000s is larger than %d bytes: is it the right file?",
			cfg->cmdline_path, AGENT_MAX_CMDLINE);
		return -EINVAL;
	}
	if (r == -ENOMEM) {
		set_err(err, errlen, "out of memory reading the kernel command line");
		return -EINVAL;
	}
	if (r < 0) {
		if (seen.cmdline) {
			/* The user named this file: not finding it is an error. */
			set_err(err, errlen, "cannot read kernel command line %.4000s: %s: check --cmdline",
				cfg->cmdline_path, strerror(-r));
			return -EINVAL;
		}
		snprintf(why, sizeof(why), " (could not read %.4000s: %s)", cfg->cmdline_path,
			 strerror(-r));
	}
	r = fill_from_cmdline(cfg, cmdline, &seen, why, err, errlen);
	free(cmdline);
	return r;
}

void agent_usage(FILE *f)
{
	struct sky_opt opts[CONFIG_NOPTS + 1];
	struct config_flags unused;

	config__table(opts, &unused);
	fprintf(f, "usage: skyagent [flags]\n\n"
		   "The Skyroot board agent.  Without flags it takes skyroot.controller=,\n"
		   "skyroot.token= and skyroot.ca= from the kernel command line.\n\n");
	sky_args_usage(f, opts);
}
