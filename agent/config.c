/* skyagent configuration: flags first, then the kernel command line.
 *
 * The flags are a table that also produces the usage text.  A value given as
 * a flag always wins; skyroot.controller=, skyroot.token= and skyroot.ca= on
 * the kernel command line fill only what the flags left out.  Every error
 * names the flag or kernel parameter at fault and says what to do. */
#include "agent/config.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson adds -DSKY_VERSION=...)"
#endif

#define AGENT_DEFAULT_PORT 7443
#define AGENT_DEFAULT_HEARTBEAT_MS 10000
#define AGENT_MIN_HEARTBEAT_MS 100
#define AGENT_MAX_HEARTBEAT_MS 600000
#define AGENT_MAX_CMDLINE 65536 /* far above any architecture's COMMAND_LINE_SIZE */
#define CA_PIN_PREFIX "sha256:"

enum agent_opt {
	OPT_CONTROLLER,
	OPT_TOKEN,
	OPT_CA,
	OPT_SYSFS_ROOT,
	OPT_PROCFS_ROOT,
	OPT_DEVFS_ROOT,
	OPT_CMDLINE,
	OPT_LOG_LEVEL,
	OPT_HEARTBEAT,
	OPT_ONCE,
	OPT_CACHE_MAX,
	OPT_QEMU,
	OPT_ALLOW_KEXEC,
	OPT_IDENTITY_DIR,
	OPT_HELP,
	OPT_VERSION,
};

struct agent_option {
	const char *name;    /* long name, without "--" */
	char short_name;     /* 0 when none */
	const char *metavar; /* NULL: the flag takes no value */
	const char *help;
	enum agent_opt id;
};

static const struct agent_option agent_options[] = {
	{ .name = "controller", .metavar = "HOST:PORT", .id = OPT_CONTROLLER,
	  .help = "controller's agent link; port 7443 if none,\n"
		  "IPv6 as [ADDR]:PORT; else skyroot.controller=" },
	{ .name = "token", .metavar = "TOKEN", .id = OPT_TOKEN,
	  .help = "enrollment token (`skyctl token create`);\n"
		  "else skyroot.token=; may be left out" },
	{ .name = "ca", .metavar = "sha256:HEX", .id = OPT_CA,
	  .help = "pin of the controller's CA certificate;\n"
		  "else skyroot.ca=" },
	{ .name = "sysfs-root", .metavar = "DIR", .id = OPT_SYSFS_ROOT,
	  .help = "where sysfs is mounted (default /sys)" },
	{ .name = "procfs-root", .metavar = "DIR", .id = OPT_PROCFS_ROOT,
	  .help = "where procfs is mounted (default /proc)" },
	{ .name = "devfs-root", .metavar = "DIR", .id = OPT_DEVFS_ROOT,
	  .help = "where devices live (default /dev)" },
	{ .name = "cmdline", .metavar = "FILE", .id = OPT_CMDLINE,
	  .help = "kernel command line to read\n"
		  "(default PROCFS-ROOT/cmdline)" },
	{ .name = "log-level", .metavar = "LEVEL", .id = OPT_LOG_LEVEL,
	  .help = "error, warn, info (default) or debug" },
	{ .name = "heartbeat-interval", .metavar = "MS", .id = OPT_HEARTBEAT,
	  .help = "milliseconds between heartbeats,\n"
		  "100..600000 (default 10000)" },
	{ .name = "cache-max", .metavar = "SIZE", .id = OPT_CACHE_MAX,
	  .help = "RAM for cached images, e.g. 4G, 512M\n"
		  "(default half of physical memory)" },
	{ .name = "qemu", .metavar = "PATH", .id = OPT_QEMU,
	  .help = "QEMU for guests (default\n"
		  "qemu-system-x86_64 from PATH)" },
	{ .name = "allow-kexec", .id = OPT_ALLOW_KEXEC,
	  .help = "let `skyctl board boot` replace this OS\n"
		  "(the firmware's init passes it)" },
	{ .name = "identity-dir", .metavar = "DIR", .id = OPT_IDENTITY_DIR,
	  .help = "keep key and certificate across restarts\n"
		  "in DIR, which must be RAM (a tmpfs)" },
	{ .name = "once", .id = OPT_ONCE,
	  .help = "exit after the first session is set up\n"
		  "(for tests)" },
	{ .name = "help", .short_name = 'h', .id = OPT_HELP, .help = "show this help and exit" },
	{ .name = "version", .id = OPT_VERSION, .help = "show the version and exit" },
};

#define N_OPTIONS (sizeof(agent_options) / sizeof(agent_options[0]))

/* What the flags said, so the kernel command line fills only the rest. */
struct seen {
	bool controller, token, ca, cmdline;
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

/* ---- value parsers (interfaces) ---------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int agent_parse_ca_pin(const char *s, uint8_t out[32])
{
	size_t plen = strlen(CA_PIN_PREFIX);
	if (!s || strncasecmp(s, CA_PIN_PREFIX, plen) != 0)
		return -EINVAL;
	s += plen;
	if (strlen(s) != 64)
		return -EINVAL;
	uint8_t pin[32];
	for (size_t i = 0; i < 32; i++) {
		int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		pin[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out, pin, sizeof(pin));
	return 0;
}

static bool valid_ipv6(const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 16];
	struct in6_addr a;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	/* A zone ("fe80::1%eth0") names an interface: letters, digits, . _ - */
	char *zone = strchr(buf, '%');
	if (zone) {
		*zone++ = '\0';
		if (*zone == '\0')
			return false;
		for (const char *z = zone; *z != '\0'; z++)
			if (!isalnum((unsigned char)*z) && *z != '.' && *z != '_' && *z != '-')
				return false;
	}
	return inet_pton(AF_INET6, buf, &a) == 1;
}

static bool valid_hostname(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static int parse_port(const char *s, uint16_t *out)
{
	unsigned v = 0;
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 5)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (n == 0 || v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int agent_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, uint16_t default_port)
{
	const char *h, *p = NULL;
	size_t hlen;
	if (!s || !host || !port)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		if (close[1] == ':')
			p = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
		if (!valid_ipv6(h, hlen))
			return -EINVAL;
	} else {
		const char *colon = strchr(s, ':');
		h = s;
		if (colon && strchr(colon + 1, ':')) {
			/* Two colons or more: a bare IPv6 address, no port. */
			hlen = strlen(s);
			if (!valid_ipv6(h, hlen))
				return -EINVAL;
		} else {
			hlen = colon ? (size_t)(colon - s) : strlen(s);
			if (colon)
				p = colon + 1;
			if (!valid_hostname(h, hlen))
				return -EINVAL;
		}
	}
	if (hlen >= hostlen)
		return -EINVAL;
	uint16_t portv = default_port;
	if (p && parse_port(p, &portv) < 0)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = portv;
	return 0;
}

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

static int set_controller(struct agent_config *cfg, const char *v, const char *from, char *err,
			  size_t errlen)
{
	if (agent_parse_hostport(v, cfg->controller_host, sizeof(cfg->controller_host),
				 &cfg->controller_port, AGENT_DEFAULT_PORT) < 0) {
		set_err(err, errlen,
			"bad controller address '%.300s' from %s: give HOST:PORT, HOST (port %d), "
			"[IPv6]:PORT or [IPv6], with a port between 1 and 65535",
			v, from, AGENT_DEFAULT_PORT);
		return -EINVAL;
	}
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
	if (agent_parse_ca_pin(v, cfg->ca_pin) < 0) {
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

static int set_heartbeat(struct agent_config *cfg, const char *v, char *err, size_t errlen)
{
	uint64_t ms = 0;
	size_t n = 0;
	for (; v[n] != '\0'; n++) {
		if (v[n] < '0' || v[n] > '9' || n >= 7)
			break;
		ms = ms * 10 + (uint64_t)(v[n] - '0');
	}
	if (n == 0 || v[n] != '\0' || ms < AGENT_MIN_HEARTBEAT_MS || ms > AGENT_MAX_HEARTBEAT_MS) {
		set_err(err, errlen,
			"bad --heartbeat-interval '%.40s': give whole milliseconds between %d and %d",
			v, AGENT_MIN_HEARTBEAT_MS, AGENT_MAX_HEARTBEAT_MS);
		return -EINVAL;
	}
	cfg->heartbeat_ms = ms;
	return 0;
}

/* "512M", "4G", bytes. */
static int set_cache_max(struct agent_config *cfg, const char *v, char *err, size_t errlen)
{
	char *end;
	unsigned long long n;
	unsigned shift = 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (!errno && end != v && v[0] != '-') {
		switch (*end) {
		case 'K': case 'k': shift = 10; end++; break;
		case 'M': case 'm': shift = 20; end++; break;
		case 'G': case 'g': shift = 30; end++; break;
		case 'T': case 't': shift = 40; end++; break;
		default: break;
		}
	}
	if (errno || end == v || *end != '\0' || v[0] == '-' || n == 0 || (shift && n > (UINT64_MAX >> shift))) {
		set_err(err, errlen, "bad --cache-max '%.40s': give a size such as 4G, 512M or bytes", v);
		return -EINVAL;
	}
	cfg->cache_max = (uint64_t)n << shift;
	return 0;
}

static int apply_option(struct agent_config *cfg, const struct agent_option *o, const char *v,
			struct seen *seen, char *err, size_t errlen)
{
	int level;
	switch (o->id) {
	case OPT_CONTROLLER:
		seen->controller = true;
		return set_controller(cfg, v, "--controller", err, errlen);
	case OPT_TOKEN:
		/* An explicit empty --token means "no token", whatever the kernel says. */
		seen->token = true;
		return set_token(cfg, v, "--token", err, errlen);
	case OPT_CA:
		seen->ca = true;
		return set_ca(cfg, v, "--ca", err, errlen);
	case OPT_SYSFS_ROOT:
		return set_path(cfg->sysfs_root, sizeof(cfg->sysfs_root), v, o->name, err, errlen);
	case OPT_PROCFS_ROOT:
		return set_path(cfg->procfs_root, sizeof(cfg->procfs_root), v, o->name, err, errlen);
	case OPT_DEVFS_ROOT:
		return set_path(cfg->devfs_root, sizeof(cfg->devfs_root), v, o->name, err, errlen);
	case OPT_CMDLINE:
		seen->cmdline = true;
		return set_path(cfg->cmdline_path, sizeof(cfg->cmdline_path), v, o->name, err, errlen);
	case OPT_LOG_LEVEL:
		level = sky_log_parse_level(v);
		if (level < 0) {
			set_err(err, errlen,
				"unknown --log-level '%.40s': use error, warn, info or debug", v);
			return -EINVAL;
		}
		cfg->log_level = level;
		return 0;
	case OPT_HEARTBEAT:
		return set_heartbeat(cfg, v, err, errlen);
	case OPT_ONCE:
		cfg->once = 1;
		return 0;
	case OPT_CACHE_MAX:
		return set_cache_max(cfg, v, err, errlen);
	case OPT_QEMU:
		return set_path(cfg->qemu_path, sizeof(cfg->qemu_path), v, o->name, err, errlen);
	case OPT_ALLOW_KEXEC:
		cfg->allow_kexec = 1;
		return 0;
	case OPT_IDENTITY_DIR:
		return set_path(cfg->identity_dir, sizeof(cfg->identity_dir), v, o->name, err, errlen);
	case OPT_HELP:
		agent_usage(stdout);
		return 1;
	case OPT_VERSION:
		printf("skyagent %s\n", SKY_VERSION);
		return 1;
	}
	return -EINVAL;
}

static const struct agent_option *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (strlen(agent_options[i].name) == len && memcmp(agent_options[i].name, name, len) == 0)
			return &agent_options[i];
	return NULL;
}

static const struct agent_option *find_short(char c)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (agent_options[i].short_name != 0 && agent_options[i].short_name == c)
			return &agent_options[i];
	return NULL;
}

static int parse_flags(struct agent_config *cfg, int argc, char **argv, struct seen *seen, char *err,
		       size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct agent_option *o = NULL;
		const char *v = NULL;

		if (strcmp(a, "--") == 0) {
			if (i + 1 < argc) {
				set_err(err, errlen,
					"unexpected argument '%.100s': skyagent takes only flags, see skyagent --help",
					argv[i + 1]);
				return -EINVAL;
			}
			break;
		}
		if (a[0] == '-' && a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			o = find_long(name, len);
			if (eq)
				v = eq + 1;
		} else if (a[0] == '-' && a[1] != '\0' && a[2] == '\0') {
			o = find_short(a[1]);
		} else {
			set_err(err, errlen,
				"unexpected argument '%.100s': skyagent takes only flags, see skyagent --help", a);
			return -EINVAL;
		}
		if (!o) {
			set_err(err, errlen, "unknown flag '%.100s': see skyagent --help for the flags", a);
			return -EINVAL;
		}
		if (o->metavar && !v) {
			if (i + 1 >= argc) {
				set_err(err, errlen, "--%s needs a value: --%s %s", o->name, o->name, o->metavar);
				return -EINVAL;
			}
			v = argv[++i];
		} else if (!o->metavar && v) {
			set_err(err, errlen, "--%s takes no value: write just --%s", o->name, o->name);
			return -EINVAL;
		}
		int r = apply_option(cfg, o, v, seen, err, errlen);
		if (r != 0)
			return r;
	}
	return 0;
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

/* Fill what the flags left out.  `why` says why the command line could not
 * be read ("" when it was read), to be added to a "missing" error. */
static int fill_from_cmdline(struct agent_config *cfg, const char *cmdline, const struct seen *seen,
			     const char *why, char *err, size_t errlen)
{
	char from[4200];
	char v[512];
	int r;

	snprintf(from, sizeof(from), "the kernel command line (%s)", cfg->cmdline_path);

	if (!seen->controller) {
		r = cmdline ? agent_cmdline_get(cmdline, "skyroot.controller", v, sizeof(v)) : -ENOENT;
		if (r == -ENOENT) {
			set_err(err, errlen,
				"no controller given: pass --controller HOST:PORT or boot with "
				"skyroot.controller=HOST:PORT%s",
				why);
			return -EINVAL;
		}
		if (r == -ENAMETOOLONG) {
			set_err(err, errlen,
				"skyroot.controller= on %s is too long for a HOST:PORT: fix the boot entry",
				from);
			return -EINVAL;
		}
		r = set_controller(cfg, v, from, err, errlen);
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
	struct seen seen = { false, false, false, false };
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
	fprintf(f, "usage: skyagent [flags]\n\n"
		   "The Skyroot board agent.  Without flags it takes skyroot.controller=,\n"
		   "skyroot.token= and skyroot.ca= from the kernel command line.\n\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct agent_option *o = &agent_options[i];
		char head[64];
		if (o->short_name)
			snprintf(head, sizeof(head), "-%c, --%s%s%s", o->short_name, o->name,
				 o->metavar ? " " : "", o->metavar ? o->metavar : "");
		else
			snprintf(head, sizeof(head), "    --%s%s%s", o->name, o->metavar ? " " : "",
				 o->metavar ? o->metavar : "");
		fprintf(f, "  %-29s", head);
		/* Continuation lines of the help text line up under the first. */
		for (const char *h = o->help; *h != '\0'; h++) {
			fputc(*h, f);
			if (*h == '\n')
				fprintf(f, "  %-29s", "");
		}
		fputc('\n', f);
	}
}
