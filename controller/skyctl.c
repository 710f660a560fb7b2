/* skyctl: the operator CLI.  It speaks skyrootd's REST API (docs/api.md)
 * over HTTPS with libcurl, checking the controller's certificate against
 * the CA file of the client config, and reads the answers with jansson.
 *
 * As in OpenBSD's vmctl, the commands are a table (ctl_commands) that also
 * produces the usage text, and so are the flags (ctl_flags).
 *
 * Exit status: 0 done, 1 error (a message on stderr says what went wrong and
 * what to do), 2 usage error (usage on stderr). */
#include "controller/skyctl_conf.h"

#include <curl/curl.h>
#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SKY_VERSION
#error "SKY_VERSION must be defined by the build (meson does it)"
#endif

#define CTL_EXIT_OK 0
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_USAGE 2

#define CTL_MAX_RESPONSE ((size_t)64 * 1024 * 1024) /* bytes of one API answer */
#define CTL_MAX_WORDS 8    /* words that are not flags on the command line */
#define CTL_MAX_ID 256     /* bytes of an ID or name given on the command line */
#define CTL_CONNECT_TIMEOUT 10L /* seconds */
#define CTL_STALL_TIMEOUT 30L   /* seconds without a byte before giving up */
#define CTL_LABEL_WIDTH 22
#define CTL_MAX_PATH 4096       /* bytes of a FILE given on the command line */
#define CTL_UPLOAD_LOW_SPEED 1024L /* an upload slower than this (bytes/s)... */
#define CTL_UPLOAD_LOW_TIME 60L    /* ...for this many seconds is given up */
#define CTL_UPLOAD_BUFFER (512L * 1024) /* bytes curl reads from the file at a time */
#define CTL_PROGRESS_MS 100     /* a progress line is redrawn at most this often */
#define CTL_POLL_MS 200         /* how often 'image fetch' asks about the board */
#define CTL_FETCH_TIMEOUT 600   /* seconds 'image fetch' waits by default (10m) */
#define CTL_FETCH_TIMEOUT_MAX (7 * 24 * 3600)
#define CTL_SHA_PREFIX 12       /* hex digits of a SHA-256 shown in tables */
#define CTL_MAX_DEVICES 8       /* --device flags of one guest (the controller's limit too) */
#define CTL_MAX_CMDLINE 4096    /* bytes of --cmdline (the controller has its own, smaller limit) */
#define CTL_ERROR_COLUMNS 40    /* columns of a guest's error in 'guest list' */
#define CTL_KEEPALIVE_IDLE 30L  /* seconds before a quiet followed stream is probed */
#define CTL_KEEPALIVE_INTVL 15L

enum ctl_output {
	CTL_OUTPUT_TABLE,
	CTL_OUTPUT_JSON,
};

enum ctl_flag_id {
	FLAG_OUTPUT,
	FLAG_CONFIG,
	FLAG_CONTROLLER,
	FLAG_CA,
	FLAG_TOKEN,
	FLAG_HELP,
	FLAG_VERSION,
	FLAG_TTL,
	FLAG_USES,
	FLAG_NAME,
	FLAG_KIND,
	FLAG_BOARD,
	FLAG_NO_WAIT,
	FLAG_TIMEOUT,
	FLAG_KERNEL,
	FLAG_INITRD,
	FLAG_DISK,
	FLAG_CMDLINE,
	FLAG_VCPUS,
	FLAG_MEMORY,
	FLAG_DEVICE,
	FLAG_BACKEND,
	FLAG_FOLLOW,
	FLAG__COUNT,
};

#define FLAG_BIT(f) (1u << (f))
/* Flags that belong to one command; the others are valid anywhere. */
#define FLAGS_COMMAND (FLAG_BIT(FLAG_TTL) | FLAG_BIT(FLAG_USES) | FLAG_BIT(FLAG_NAME) | \
		       FLAG_BIT(FLAG_KIND) | FLAG_BIT(FLAG_BOARD) | FLAG_BIT(FLAG_NO_WAIT) | \
		       FLAG_BIT(FLAG_TIMEOUT) | FLAG_BIT(FLAG_KERNEL) | FLAG_BIT(FLAG_INITRD) | \
		       FLAG_BIT(FLAG_DISK) | FLAG_BIT(FLAG_CMDLINE) | FLAG_BIT(FLAG_VCPUS) | \
		       FLAG_BIT(FLAG_MEMORY) | FLAG_BIT(FLAG_DEVICE) | FLAG_BIT(FLAG_BACKEND) | \
		       FLAG_BIT(FLAG_FOLLOW))

struct ctl_flag {
	const char *name;    /* long name, without "--" */
	char short_name;     /* 0 when none */
	const char *metavar; /* NULL when the flag takes no value */
	const char *help;
	size_t repeat;       /* 0: the last one given wins; else it may be given this many times */
};

static const struct ctl_flag ctl_flags[FLAG__COUNT] = {
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
		.help = "how long the token can be used: 30s, 10m, 1h, 2d or seconds (default 1h; 60s to 30d)",
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
		.name = "device", .metavar = "PCI_ADDRESS", .repeat = CTL_MAX_DEVICES,
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

/* What the command line says. */
struct ctl_opts {
	const char *value[FLAG__COUNT]; /* the flag's value, "" for flags without one */
	unsigned seen;                  /* FLAG_BIT()s of the flags given */
	const char *devices[CTL_MAX_DEVICES]; /* every --device, as given */
	size_t ndevices;                /* how many were given, even past CTL_MAX_DEVICES */
	char device_addr[CTL_MAX_DEVICES][SKYCTL_CONF_PCI_ADDRESS_LEN]; /* checked, full form */
	const char *words[CTL_MAX_WORDS];
	size_t nwords;
	enum ctl_output output;
	uint64_t ttl;
	uint64_t uses;
	uint64_t timeout;               /* seconds; --timeout or CTL_FETCH_TIMEOUT */
	uint64_t vcpus;
	uint64_t memory;                /* bytes */
	struct skyctl_conf flag_conf;   /* --controller, --ca, --token, checked */
};

struct ctl {
	const struct ctl_opts *opts;
	struct skyctl_conf conf;
	char conf_path[SKYCTL_CONF_PATH_MAX]; /* "" when no config file is known */
	char src[3][SKYCTL_CONF_PATH_MAX + 32]; /* where controller, ca, token came from */
	CURL *curl;
};

enum { SRC_CONTROLLER, SRC_CA, SRC_TOKEN };

/* What a flag means to one command, when that differs from ctl_flags[]. */
struct ctl_flag_note {
	int flag;            /* FLAG__COUNT ends a list */
	const char *metavar; /* NULL: the flag's own */
	const char *help;    /* NULL: the flag's own */
};

struct ctl_command {
	const char *group;
	const char *verb;    /* NULL for "help" */
	const char *arg;     /* the positional argument in usage; NULL when none */
	size_t arg_max;      /* bytes of arg; 0 for CTL_MAX_ID */
	unsigned flags;      /* FLAG_BIT()s of the command's own flags */
	unsigned required;   /* those of flags that must be given */
	const char *summary;
	const struct ctl_flag_note *notes; /* NULL when none */
	int (*run)(struct ctl *ctl, const char *arg);
};

static int token__create(struct ctl *ctl, const char *arg);
static int token__list(struct ctl *ctl, const char *arg);
static int token__revoke(struct ctl *ctl, const char *arg);
static int board__list(struct ctl *ctl, const char *arg);
static int board__show(struct ctl *ctl, const char *arg);
static int board__delete(struct ctl *ctl, const char *arg);
static int image__push(struct ctl *ctl, const char *arg);
static int image__list(struct ctl *ctl, const char *arg);
static int image__show(struct ctl *ctl, const char *arg);
static int image__delete(struct ctl *ctl, const char *arg);
static int image__verify(struct ctl *ctl, const char *arg);
static int image__fetch(struct ctl *ctl, const char *arg);
static int board__boot(struct ctl *ctl, const char *arg);
static int guest__create(struct ctl *ctl, const char *arg);
static int guest__list(struct ctl *ctl, const char *arg);
static int guest__show(struct ctl *ctl, const char *arg);
static int guest__start(struct ctl *ctl, const char *arg);
static int guest__stop(struct ctl *ctl, const char *arg);
static int guest__delete(struct ctl *ctl, const char *arg);
static int guest__console(struct ctl *ctl, const char *arg);

static const struct ctl_flag_note board_boot_notes[] = {
	{ FLAG_KERNEL, NULL, "the kernel image the board streams into RAM and kexecs (id or name)" },
	{ FLAG_INITRD, NULL, "an initrd image for that kernel (id or name)" },
	{ FLAG_CMDLINE, NULL, "the new kernel's command line" },
	{ FLAG__COUNT, NULL, NULL },
};

static const struct ctl_flag_note guest_create_notes[] = {
	{ FLAG_NAME, NULL, "the name of the new guest: 1 to 63 of A-Z a-z 0-9 . _ - (must not be taken)" },
	{ FLAG_BOARD, "BOARD|auto",
	  "the board (id or name) that runs the guest, or 'auto': an online board with KVM and room for it" },
	{ FLAG_KERNEL, NULL, "the kernel image the guest boots (id or name; see 'skyctl image list')" },
	{ FLAG_CMDLINE, NULL, "the guest kernel's command line (default \"console=ttyS0\")" },
	{ FLAG__COUNT, NULL, NULL },
};

static const struct ctl_command ctl_commands[] = {
	{
		.group = "token", .verb = "create",
		.flags = FLAG_BIT(FLAG_TTL) | FLAG_BIT(FLAG_USES),
		.summary = "create an enrollment token and the kernel command line that uses it",
		.run = token__create,
	},
	{
		.group = "token", .verb = "list",
		.summary = "list enrollment tokens",
		.run = token__list,
	},
	{
		.group = "token", .verb = "revoke", .arg = "ID",
		.summary = "revoke an enrollment token",
		.run = token__revoke,
	},
	{
		.group = "board", .verb = "list",
		.summary = "list enrolled boards",
		.run = board__list,
	},
	{
		.group = "board", .verb = "show", .arg = "ID|NAME",
		.summary = "show a board: CPUs, memory, IOMMU groups, NICs, images in its RAM",
		.run = board__show,
	},
	{
		.group = "board", .verb = "delete", .arg = "ID|NAME",
		.summary = "delete a board, revoke its certificate, close its session",
		.run = board__delete,
	},
	{
		.group = "board", .verb = "boot", .arg = "ID|NAME",
		.flags = FLAG_BIT(FLAG_KERNEL) | FLAG_BIT(FLAG_INITRD) | FLAG_BIT(FLAG_CMDLINE),
		.required = FLAG_BIT(FLAG_KERNEL),
		.summary = "kexec a board into another OS streamed to its RAM (bare metal; no disk touched)",
		.notes = board_boot_notes,
		.run = board__boot,
	},
	{
		.group = "image", .verb = "push", .arg = "FILE", .arg_max = CTL_MAX_PATH,
		.flags = FLAG_BIT(FLAG_NAME) | FLAG_BIT(FLAG_KIND),
		.required = FLAG_BIT(FLAG_NAME),
		.summary = "upload an image file to the controller (FILE '-' reads stdin)",
		.run = image__push,
	},
	{
		.group = "image", .verb = "list",
		.summary = "list the controller's images",
		.run = image__list,
	},
	{
		.group = "image", .verb = "show", .arg = "ID|NAME",
		.summary = "show an image: kind, format, size, SHA-256, chunks",
		.run = image__show,
	},
	{
		.group = "image", .verb = "delete", .arg = "ID|NAME",
		.summary = "delete an image (refused while a guest uses it)",
		.run = image__delete,
	},
	{
		.group = "image", .verb = "verify", .arg = "ID|NAME",
		.summary = "read back every chunk of an image and check its SHA-256",
		.run = image__verify,
	},
	{
		.group = "image", .verb = "fetch", .arg = "ID|NAME",
		.flags = FLAG_BIT(FLAG_BOARD) | FLAG_BIT(FLAG_NO_WAIT) | FLAG_BIT(FLAG_TIMEOUT),
		.required = FLAG_BIT(FLAG_BOARD),
		.summary = "load an image into a board's RAM and wait until it is there",
		.run = image__fetch,
	},
	{
		.group = "guest", .verb = "create",
		.flags = FLAG_BIT(FLAG_NAME) | FLAG_BIT(FLAG_BOARD) | FLAG_BIT(FLAG_KERNEL) | FLAG_BIT(FLAG_INITRD) |
			 FLAG_BIT(FLAG_DISK) | FLAG_BIT(FLAG_CMDLINE) | FLAG_BIT(FLAG_VCPUS) | FLAG_BIT(FLAG_MEMORY) |
			 FLAG_BIT(FLAG_DEVICE) | FLAG_BIT(FLAG_BACKEND),
		.required = FLAG_BIT(FLAG_NAME) | FLAG_BIT(FLAG_BOARD) | FLAG_BIT(FLAG_KERNEL),
		.summary = "create a guest (a KVM virtual machine on a board) and start it",
		.notes = guest_create_notes,
		.run = guest__create,
	},
	{
		.group = "guest", .verb = "list",
		.summary = "list guests: where they run, their state, what they were given",
		.run = guest__list,
	},
	{
		.group = "guest", .verb = "show", .arg = "ID|NAME",
		.summary = "show a guest, with its images, command line and why it failed",
		.run = guest__show,
	},
	{
		.group = "guest", .verb = "start", .arg = "ID|NAME",
		.summary = "start a guest (its board starts it, now or when it is back online)",
		.run = guest__start,
	},
	{
		.group = "guest", .verb = "stop", .arg = "ID|NAME",
		.summary = "stop a guest; it is kept and can be started again",
		.run = guest__stop,
	},
	{
		.group = "guest", .verb = "delete", .arg = "ID|NAME",
		.summary = "stop a guest and delete it; its images are no longer held",
		.run = guest__delete,
	},
	{
		.group = "guest", .verb = "console", .arg = "ID|NAME",
		.flags = FLAG_BIT(FLAG_FOLLOW),
		.summary = "print a guest's serial console (the last 64 KiB), or --follow it",
		.run = guest__console,
	},
	{
		.group = "help", .arg = "[COMMAND]",
		.summary = "show this help, or the help of one command",
	},
};

#define CTL_NCOMMANDS (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

/* ---- text helpers ------------------------------------------------------ */

__attribute__((format(printf, 1, 2)))
static void ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("skyctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Bytes that could drive a terminal (C0, DEL, C1 in UTF-8) are shown as
 * '?': text from the controller is not trusted to be harmless. */
static size_t ctl_clean_len(const char *s, size_t i, int *bad)
{
	unsigned char c = (unsigned char)s[i];

	*bad = 0;
	if (c < 0x20 || c == 0x7f) {
		*bad = 1;
		return 1;
	}
	if (c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
		*bad = 1;
		return 2;
	}
	return 1;
}

static void ctl_put_clean(FILE *f, const char *s)
{
	for (size_t i = 0; s[i] != '\0';) {
		int bad;
		size_t n = ctl_clean_len(s, i, &bad);
		if (bad)
			fputc('?', f);
		else
			fputc(s[i], f);
		i += n;
	}
}

static char *ctl_clean_dup(const char *s)
{
	char *d = malloc(strlen(s) + 1);
	size_t o = 0;

	if (d == NULL)
		return NULL;
	for (size_t i = 0; s[i] != '\0';) {
		int bad;
		size_t n = ctl_clean_len(s, i, &bad);
		d[o++] = bad ? '?' : s[i];
		i += n;
	}
	d[o] = '\0';
	return d;
}

/* Columns a UTF-8 string takes, near enough for tables: one per character. */
static size_t ctl_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void ctl_pad(FILE *f, size_t n)
{
	while (n-- > 0)
		fputc(' ', f);
}

/* ---- usage, from the tables -------------------------------------------- */

static const struct ctl_flag_note *ctl_flag_note(const struct ctl_command *c, int f)
{
	if (c == NULL || c->notes == NULL)
		return NULL;
	for (const struct ctl_flag_note *n = c->notes; n->flag != FLAG__COUNT; n++)
		if (n->flag == f)
			return n;
	return NULL;
}

/* The flag's metavar and help for command c (NULL: no command). */
static const char *ctl_flag_metavar(const struct ctl_command *c, int f)
{
	const struct ctl_flag_note *n = ctl_flag_note(c, f);

	return n != NULL && n->metavar != NULL ? n->metavar : ctl_flags[f].metavar;
}

static const char *ctl_flag_help(const struct ctl_command *c, int f)
{
	const struct ctl_flag_note *n = ctl_flag_note(c, f);

	return n != NULL && n->help != NULL ? n->help : ctl_flags[f].help;
}

static void ctl_flag_synopsis(const struct ctl_command *c, int f, char *buf, size_t len)
{
	const struct ctl_flag *fl = &ctl_flags[f];
	const char *metavar = ctl_flag_metavar(c, f);

	if (fl->short_name != 0 && metavar != NULL)
		snprintf(buf, len, "-%c, --%s %s", fl->short_name, fl->name, metavar);
	else if (fl->short_name != 0)
		snprintf(buf, len, "-%c, --%s", fl->short_name, fl->name);
	else if (metavar != NULL)
		snprintf(buf, len, "--%s %s", fl->name, metavar);
	else
		snprintf(buf, len, "--%s", fl->name);
}

#define CTL_SYNOPSIS_MAX 512

/* "image push FILE --name NAME [--kind KIND]": the argument, the required
 * flags, then the optional ones in brackets; "[--device PCI_ADDRESS ...]"
 * for a flag that may be repeated. */
static void ctl_command_synopsis(const struct ctl_command *c, char *buf, size_t len)
{
	size_t n = 0;
	int w;

	w = snprintf(buf, len, "%s%s%s", c->group, c->verb ? " " : "", c->verb ? c->verb : "");
	n = w < 0 ? 0 : (size_t)w;
	if (c->arg != NULL && n < len) {
		w = snprintf(buf + n, len - n, " %s", c->arg);
		n += w < 0 ? 0 : (size_t)w;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int f = 0; f < FLAG__COUNT && n < len; f++) {
			int required = (c->required & FLAG_BIT(f)) != 0;
			const char *metavar = ctl_flag_metavar(c, f);
			if (!(c->flags & FLAG_BIT(f)) || required != (pass == 0))
				continue;
			w = snprintf(buf + n, len - n, " %s--%s%s%s%s%s", required ? "" : "[", ctl_flags[f].name,
				     metavar ? " " : "", metavar ? metavar : "", ctl_flags[f].repeat ? " ..." : "",
				     required ? "" : "]");
			n += w < 0 ? 0 : (size_t)w;
		}
	}
}

#define CTL_SYNOPSIS_COLUMN 44 /* a longer synopsis has its summary on the next line */
#define CTL_TEXT_COLUMNS 79    /* a synopsis is wrapped to this */

/* text on the current line (at column col), wrapped before a " [" or a
 * " -" when a line would pass CTL_TEXT_COLUMNS; a new line starts with
 * indent blanks.  Ends with a newline. */
static void ctl_print_wrapped(FILE *f, const char *text, size_t col, size_t indent)
{
	const char *p = text;

	while (*p != '\0') {
		/* The next piece runs to the next break point. */
		const char *e = p + 1;
		while (*e != '\0' && !(e[0] == ' ' && (e[1] == '[' || e[1] == '-')))
			e++;
		size_t n = (size_t)(e - p);
		if (p != text && col + n > CTL_TEXT_COLUMNS && col > indent) {
			fputc('\n', f);
			ctl_pad(f, indent);
			col = indent;
			p++; /* the blank */
			n--;
		}
		fwrite(p, 1, n, f);
		col += n;
		p = e;
	}
	fputc('\n', f);
}

static void ctl_print_commands(FILE *f, const char *group)
{
	char syn[CTL_SYNOPSIS_MAX];
	size_t width = 0;

	for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
		if (group != NULL && strcmp(ctl_commands[i].group, group) != 0)
			continue;
		ctl_command_synopsis(&ctl_commands[i], syn, sizeof(syn));
		if (strlen(syn) > width && strlen(syn) <= CTL_SYNOPSIS_COLUMN)
			width = strlen(syn);
	}
	for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
		if (group != NULL && strcmp(ctl_commands[i].group, group) != 0)
			continue;
		ctl_command_synopsis(&ctl_commands[i], syn, sizeof(syn));
		if (strlen(syn) > width) {
			fputs("  ", f);
			ctl_print_wrapped(f, syn, 2, 6);
			fprintf(f, "  %-*s  %s\n", (int)width, "", ctl_commands[i].summary);
		} else
			fprintf(f, "  %-*s  %s\n", (int)width, syn, ctl_commands[i].summary);
	}
}

/* The flags of mask, with what they mean to command c (NULL: in general). */
static void ctl_print_flags(FILE *f, unsigned mask, const struct ctl_command *c)
{
	char syn[64];
	size_t width = 0;

	for (int i = 0; i < FLAG__COUNT; i++) {
		if (!(mask & FLAG_BIT(i)))
			continue;
		ctl_flag_synopsis(c, i, syn, sizeof(syn));
		if (strlen(syn) > width)
			width = strlen(syn);
	}
	for (int i = 0; i < FLAG__COUNT; i++) {
		if (!(mask & FLAG_BIT(i)))
			continue;
		ctl_flag_synopsis(c, i, syn, sizeof(syn));
		fprintf(f, "  %-*s  %s\n", (int)width, syn, ctl_flag_help(c, i));
	}
}

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: skyctl [OPTIONS] COMMAND [ARGS]\n\ncommands:\n");
	ctl_print_commands(f, NULL);
	fprintf(f, "\noptions (they may go anywhere on the line):\n");
	ctl_print_flags(f, ~FLAGS_COMMAND & (FLAG_BIT(FLAG__COUNT) - 1), NULL);
	fprintf(f, "\nThe controller URL, CA and token come from the skyctl.conf that "
		   "'skyrootd init' writes;\nthe flags override it.  "
		   "Run 'skyctl COMMAND --help' for the options of a command.\n");
}

static void ctl_group_usage(FILE *f, const char *group)
{
	fprintf(f, "usage: skyctl [OPTIONS] %s COMMAND [ARGS]\n\ncommands:\n", group);
	ctl_print_commands(f, group);
	fprintf(f, "\nRun 'skyctl --help' for the options.\n");
}

static void ctl_command_usage(FILE *f, const struct ctl_command *c, int full)
{
	static const char prefix[] = "usage: skyctl [OPTIONS] ";
	char syn[CTL_SYNOPSIS_MAX];

	ctl_command_synopsis(c, syn, sizeof(syn));
	fputs(prefix, f);
	ctl_print_wrapped(f, syn, sizeof(prefix) - 1, sizeof(prefix) - 1);
	if (!full) {
		fprintf(f, "Run 'skyctl %s%s%s --help' for more.\n", c->group, c->verb ? " " : "",
			c->verb ? c->verb : "");
		return;
	}
	fprintf(f, "\n%s\n", c->summary);
	if (c->flags != 0) {
		fprintf(f, "\noptions:\n");
		ctl_print_flags(f, c->flags, c);
	}
	fprintf(f, "\nRun 'skyctl --help' for the options of all commands (-o json, --config, ...).\n");
}

/* ---- the command line -------------------------------------------------- */

static int ctl_find_flag(const char *name, size_t len, char short_name)
{
	for (int i = 0; i < FLAG__COUNT; i++) {
		if (short_name != 0) {
			if (ctl_flags[i].short_name == short_name)
				return i;
		} else if (strlen(ctl_flags[i].name) == len && strncmp(ctl_flags[i].name, name, len) == 0) {
			return i;
		}
	}
	return -1;
}

/* Split argv into flags (anywhere, "--flag VALUE", "--flag=VALUE", "-o
 * VALUE", "-oVALUE"; the last of a repeated flag wins, except --device,
 * whose values are all kept) and words; "--" ends the flags.  Prints what
 * is wrong and returns -EINVAL. */
static int ctl_parse_argv(int argc, char **argv, struct ctl_opts *o)
{
	int only_words = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *inline_value = NULL;
		int f;

		if (only_words || a[0] != '-' || a[1] == '\0') {
			if (o->nwords == CTL_MAX_WORDS) {
				ctl_err("too many arguments");
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
			f = ctl_find_flag(name, eq ? (size_t)(eq - name) : strlen(name), 0);
			if (eq != NULL)
				inline_value = eq + 1;
		} else {
			f = ctl_find_flag(NULL, 0, a[1]);
			if (a[2] != '\0')
				inline_value = a + 2;
			if (f >= 0 && inline_value != NULL && ctl_flags[f].metavar == NULL)
				f = -1; /* "-hx" */
		}
		if (f < 0) {
			ctl_err("unknown option '%s'", a);
			return -EINVAL;
		}
		if (ctl_flags[f].metavar == NULL) {
			if (inline_value != NULL) {
				ctl_err("option --%s takes no value", ctl_flags[f].name);
				return -EINVAL;
			}
			inline_value = "";
		} else if (inline_value == NULL) {
			if (i + 1 >= argc) {
				ctl_err("option --%s needs a value: %s", ctl_flags[f].name, ctl_flags[f].metavar);
				return -EINVAL;
			}
			inline_value = argv[++i];
		}
		o->seen |= FLAG_BIT(f);
		o->value[f] = inline_value;
		if (f == FLAG_DEVICE) {
			/* Counted past the limit, for the message. */
			if (o->ndevices < CTL_MAX_DEVICES)
				o->devices[o->ndevices] = inline_value;
			o->ndevices++;
		}
	}
	return 0;
}

static int ctl_parse_count(const char *s, uint64_t *out)
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
static int ctl_check_flag_values(struct ctl_opts *o)
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

	o->output = CTL_OUTPUT_TABLE;
	if (o->seen & FLAG_BIT(FLAG_OUTPUT)) {
		if (strcmp(o->value[FLAG_OUTPUT], "json") == 0) {
			o->output = CTL_OUTPUT_JSON;
		} else if (strcmp(o->value[FLAG_OUTPUT], "table") != 0) {
			ctl_err("--output must be 'table' or 'json', not '%s'", o->value[FLAG_OUTPUT]);
			return -EINVAL;
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_TTL)) && skyctl_conf_parse_duration(o->value[FLAG_TTL], &o->ttl) < 0) {
		ctl_err("--ttl '%s' is not a duration; use e.g. 30s, 10m, 1h, 2d or a number of seconds",
			o->value[FLAG_TTL]);
		return -EINVAL;
	}
	if ((o->seen & FLAG_BIT(FLAG_USES)) && ctl_parse_count(o->value[FLAG_USES], &o->uses) < 0) {
		ctl_err("--uses '%s' is not a number of uses; use e.g. --uses 1", o->value[FLAG_USES]);
		return -EINVAL;
	}
	o->timeout = CTL_FETCH_TIMEOUT;
	if (o->seen & FLAG_BIT(FLAG_TIMEOUT)) {
		if (skyctl_conf_parse_duration(o->value[FLAG_TIMEOUT], &o->timeout) < 0) {
			ctl_err("--timeout '%s' is not a duration; use e.g. 30s, 10m, 1h or a number of seconds",
				o->value[FLAG_TIMEOUT]);
			return -EINVAL;
		}
		if (o->timeout < 1 || o->timeout > CTL_FETCH_TIMEOUT_MAX) {
			ctl_err("--timeout must be 1s to 7d; use --no-wait not to wait at all");
			return -EINVAL;
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_TIMEOUT)) && (o->seen & FLAG_BIT(FLAG_NO_WAIT))) {
		ctl_err("--timeout is how long to wait; it does not go with --no-wait");
		return -EINVAL;
	}
	if ((o->seen & FLAG_BIT(FLAG_KIND)) && strcmp(o->value[FLAG_KIND], "kernel") != 0 &&
	    strcmp(o->value[FLAG_KIND], "initrd") != 0 && strcmp(o->value[FLAG_KIND], "disk") != 0) {
		ctl_err("--kind must be kernel, initrd or disk, not '%s'", o->value[FLAG_KIND]);
		return -EINVAL;
	}
	if (o->seen & FLAG_BIT(FLAG_VCPUS)) {
		int r = ctl_parse_count(o->value[FLAG_VCPUS], &o->vcpus);
		if (r < 0 || o->vcpus > UINT32_MAX) {
			ctl_err("--vcpus '%s' is not a number of virtual CPUs; use e.g. --vcpus 2", o->value[FLAG_VCPUS]);
			return -EINVAL;
		}
		if (o->vcpus == 0) {
			ctl_err("--vcpus must be at least 1");
			return -EINVAL;
		}
	}
	if (o->seen & FLAG_BIT(FLAG_MEMORY)) {
		int r = skyctl_conf_parse_size(o->value[FLAG_MEMORY], &o->memory);
		if (r == -ERANGE) {
			ctl_err("--memory '%s' is too large", o->value[FLAG_MEMORY]);
			return -EINVAL;
		}
		if (r < 0) {
			ctl_err("--memory '%s' is not a size; use e.g. 256M, 2G (powers of 1024) or a number of bytes",
				o->value[FLAG_MEMORY]);
			return -EINVAL;
		}
		if (o->memory == 0) {
			ctl_err("--memory must be more than 0; use e.g. 256M");
			return -EINVAL;
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_BACKEND)) && strcmp(o->value[FLAG_BACKEND], "qemu") != 0 &&
	    strcmp(o->value[FLAG_BACKEND], "libvirt") != 0) {
		ctl_err("--backend must be qemu or libvirt, not '%s'", o->value[FLAG_BACKEND]);
		return -EINVAL;
	}
	if (o->ndevices > CTL_MAX_DEVICES) {
		ctl_err("--device was given %zu times; a guest can have at most %d devices", o->ndevices,
			CTL_MAX_DEVICES);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->ndevices; i++) {
		if (skyctl_conf_parse_pci_address(o->devices[i], o->device_addr[i], sizeof(o->device_addr[i])) < 0) {
			ctl_err("--device '%s' is not a PCI address; give one as 'skyctl board show' lists it, "
				"e.g. 0000:00:03.0", o->devices[i]);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(o->device_addr[i], o->device_addr[j]) == 0) {
				ctl_err("--device %s is given twice", o->device_addr[i]);
				return -EINVAL;
			}
		}
	}
	if ((o->seen & FLAG_BIT(FLAG_CMDLINE)) && strlen(o->value[FLAG_CMDLINE]) > CTL_MAX_CMDLINE) {
		ctl_err("--cmdline is longer than %d bytes", CTL_MAX_CMDLINE);
		return -EINVAL;
	}
	static const int names[] = { FLAG_NAME, FLAG_BOARD, FLAG_KERNEL, FLAG_INITRD, FLAG_DISK };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = o->value[names[i]];
		if ((o->seen & FLAG_BIT(names[i])) && (v[0] == '\0' || strlen(v) > CTL_MAX_ID)) {
			ctl_err("--%s must be 1 to %d bytes long", ctl_flags[names[i]].name, CTL_MAX_ID);
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
			ctl_err("--%s is not valid UTF-8 text", ctl_flags[texts[i]].name);
			return -EINVAL;
		}
		json_decref(v);
	}
	skyctl_conf_init(&o->flag_conf);
	if ((o->seen & FLAG_BIT(FLAG_CONFIG)) && o->value[FLAG_CONFIG][0] == '\0') {
		ctl_err("--config needs a file name");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(conf_flags) / sizeof(conf_flags[0]); i++) {
		int f = conf_flags[i].flag;
		if (!(o->seen & FLAG_BIT(f)))
			continue;
		if (skyctl_conf_set(&o->flag_conf, conf_flags[i].key, o->value[f], NULL, err, sizeof(err)) < 0) {
			ctl_err("--%s: %s", ctl_flags[f].name, err);
			return -EINVAL;
		}
	}
	return 0;
}

static const struct ctl_command *ctl_find_command(const char *group, const char *verb)
{
	for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
		const struct ctl_command *c = &ctl_commands[i];
		if (strcmp(c->group, group) != 0)
			continue;
		if (verb == NULL || (c->verb != NULL && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

/* "skyctl help [GROUP [VERB]]" and "--help" anywhere. */
static int ctl_help(const char *const *words, size_t n)
{
	const struct ctl_command *c;

	if (n == 0 || strcmp(words[0], "help") == 0) {
		ctl_usage(stdout);
		return CTL_EXIT_OK;
	}
	c = ctl_find_command(words[0], NULL);
	if (c == NULL) {
		ctl_err("unknown command '%s'", words[0]);
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (n == 1) {
		ctl_group_usage(stdout, words[0]);
		return CTL_EXIT_OK;
	}
	c = ctl_find_command(words[0], words[1]);
	if (c == NULL) {
		ctl_err("unknown command '%s %s'", words[0], words[1]);
		ctl_group_usage(stderr, words[0]);
		return CTL_EXIT_USAGE;
	}
	ctl_command_usage(stdout, c, 1);
	return CTL_EXIT_OK;
}

/* ---- configuration ----------------------------------------------------- */

static const char *ctl_home(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home != NULL && home[0] != '\0')
		return home;
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_dir : NULL;
}

/* Find and read the config, apply the flags over it, check that the
 * controller, CA and token are known.  Prints what is wrong. */
static int ctl_configure(struct ctl *ctl)
{
	const struct ctl_opts *o = ctl->opts;
	const struct skyctl_conf *fc = &o->flag_conf;
	const char *env = getenv("SKYROOT_CONFIG");
	int explicit_path = 0, loaded = 0, r;
	const char *how;
	char err[1024];

	skyctl_conf_init(&ctl->conf);
	if (o->seen & FLAG_BIT(FLAG_CONFIG)) {
		explicit_path = 1;
		how = "--config";
		r = skyctl_conf_default_path(o->value[FLAG_CONFIG], NULL, ctl->conf_path, sizeof(ctl->conf_path));
	} else if (env != NULL && env[0] != '\0') {
		explicit_path = 1;
		how = "$SKYROOT_CONFIG";
		r = skyctl_conf_default_path(env, NULL, ctl->conf_path, sizeof(ctl->conf_path));
	} else {
		how = "the default path";
		r = skyctl_conf_default_path(NULL, ctl_home(), ctl->conf_path, sizeof(ctl->conf_path));
	}
	if (r == -ENAMETOOLONG) {
		ctl_err("the config path from %s is too long", how);
		return r;
	}
	if (r < 0)
		ctl->conf_path[0] = '\0';

	int all_flags = fc->controller[0] && fc->ca[0] && fc->token[0];
	if (ctl->conf_path[0] != '\0' && (explicit_path || !all_flags)) {
		r = skyctl_conf_load(&ctl->conf, ctl->conf_path, err, sizeof(err));
		if (r == -ENOENT && !explicit_path) {
			/* no default config: fine if the flags say it all */
		} else if (r == -ENOENT) {
			ctl_err("%s; check %s, or use the skyctl.conf that 'skyrootd init' wrote", err, how);
			return r;
		} else if (r < 0) {
			ctl_err("%s", err);
			return r;
		} else {
			loaded = 1;
		}
	}
	if (loaded) {
		snprintf(ctl->src[SRC_CONTROLLER], sizeof(ctl->src[0]), "'controller' in %s", ctl->conf_path);
		snprintf(ctl->src[SRC_CA], sizeof(ctl->src[0]), "'ca' in %s", ctl->conf_path);
		snprintf(ctl->src[SRC_TOKEN], sizeof(ctl->src[0]), "'token' in %s", ctl->conf_path);
	}
	if (fc->controller[0]) {
		memcpy(ctl->conf.controller, fc->controller, sizeof(fc->controller));
		snprintf(ctl->src[SRC_CONTROLLER], sizeof(ctl->src[0]), "--controller");
	}
	if (fc->ca[0]) {
		memcpy(ctl->conf.ca, fc->ca, sizeof(fc->ca));
		snprintf(ctl->src[SRC_CA], sizeof(ctl->src[0]), "--ca");
	}
	if (fc->token[0]) {
		memcpy(ctl->conf.token, fc->token, sizeof(fc->token));
		snprintf(ctl->src[SRC_TOKEN], sizeof(ctl->src[0]), "--token");
	}

	if (!loaded && !(ctl->conf.controller[0] && ctl->conf.ca[0] && ctl->conf.token[0])) {
		if (ctl->conf_path[0] != '\0')
			ctl_err("no client config: %s does not exist; copy the skyctl.conf that "
				"'skyrootd init' wrote there, point $SKYROOT_CONFIG or --config at it, "
				"or pass --controller, --ca and --token", ctl->conf_path);
		else
			ctl_err("no client config: $HOME is not set; pass --config FILE (the skyctl.conf "
				"that 'skyrootd init' wrote), or --controller, --ca and --token");
		return -ENOENT;
	}
	static const struct {
		size_t off;
		const char *key, *flag, *example;
	} need[] = {
		{ offsetof(struct skyctl_conf, controller), "controller", "--controller",
		  "controller = https://127.0.0.1:7444" },
		{ offsetof(struct skyctl_conf, ca), "ca", "--ca", "ca = ca.crt" },
		{ offsetof(struct skyctl_conf, token), "token", "--token", "token = <admin token>" },
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (((const char *)&ctl->conf)[need[i].off] != '\0')
			continue;
		ctl_err("no %s is configured: add '%s' to %s or pass %s", need[i].key, need[i].example,
			ctl->conf_path, need[i].flag);
		return -EINVAL;
	}
	if (access(ctl->conf.ca, R_OK) < 0) {
		r = -errno;
		ctl_err("cannot read the CA file %s: %s; check %s (it is the ca.crt that 'skyrootd init' made)",
			ctl->conf.ca, strerror(-r), ctl->src[SRC_CA]);
		return r;
	}
	return 0;
}

/* ---- HTTP -------------------------------------------------------------- */

struct ctl_body {
	char *data;
	size_t len, cap;
	int too_large;
	int no_memory;
};

static size_t ctl_body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct ctl_body *b = userdata;
	size_t n = size * nmemb; /* curl: size is always 1 */

	if (n > CTL_MAX_RESPONSE - b->len) {
		b->too_large = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > CTL_MAX_RESPONSE + 1)
			cap = CTL_MAX_RESPONSE + 1;
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			b->no_memory = 1;
			return 0;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static void ctl_report_curl(struct ctl *ctl, CURLcode cc, const char *errbuf, const struct ctl_body *b)
{
	const char *url = ctl->conf.controller;
	const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);

	if (b->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
		ctl_err("the controller's answer is larger than %zu MiB; skyctl does not read more",
			CTL_MAX_RESPONSE >> 20);
		return;
	}
	if (b->no_memory) {
		ctl_err("out of memory reading the controller's answer");
		return;
	}
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		ctl_err("cannot reach controller at %s: %s (is skyrootd running?)", url, why);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		ctl_err("cannot resolve the host of %s: %s; check %s", url, why, ctl->src[SRC_CONTROLLER]);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		ctl_err("the controller at %s did not answer in time: %s (is skyrootd running, and %s reachable?)",
			url, why, url);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		ctl_err("cannot verify the controller at %s: %s; check that %s (%s) is this controller's CA "
			"and that the URL's host is a name in its certificate (skyrootd init --san)",
			url, why, ctl->conf.ca, ctl->src[SRC_CA]);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		ctl_err("cannot use %s as CA: %s; %s must name the PEM ca.crt that 'skyrootd init' made",
			ctl->conf.ca, why, ctl->src[SRC_CA]);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		ctl_err("TLS with the controller at %s failed: %s; is it the controller's API port "
			"(default 7444)?", url, why);
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
		ctl_err("the controller at %s did not answer properly: %s; is it the controller's API port "
			"(default 7444)?", url, why);
		break;
	default:
		ctl_err("request to the controller at %s failed: %s", url, why);
		break;
	}
}

static void ctl_report_http(struct ctl *ctl, long status, json_t *answer)
{
	json_t *e = json_object_get(answer, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *message = json_string_value(json_object_get(e, "message"));

	fputs("skyctl: ", stderr);
	if (status == 401) {
		fprintf(stderr, "the controller at %s refused the API token (HTTP 401", ctl->conf.controller);
		if (message != NULL) {
			fputs(": ", stderr);
			ctl_put_clean(stderr, message);
		}
		fprintf(stderr, "); check %s: it must be the admin token that 'skyrootd init' wrote "
				"into skyctl.conf\n", ctl->src[SRC_TOKEN]);
		return;
	}
	if (message == NULL) {
		fprintf(stderr, "the controller at %s answered HTTP %ld without an error message; "
				"is it the controller's API port? See the controller's log\n",
			ctl->conf.controller, status);
		return;
	}
	ctl_put_clean(stderr, message);
	fprintf(stderr, " (HTTP %ld", status);
	if (code != NULL) {
		fputc(' ', stderr);
		ctl_put_clean(stderr, code);
	}
	fputs(")\n", stderr);
}

/* ---- progress lines and streamed uploads -------------------------------- */

static uint64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A progress line redrawn in place on stderr, only when stderr is a
 * terminal: nothing goes into logs or pipes. */
struct ctl_progress {
	int on;
	size_t width;       /* the terminal's columns */
	uint64_t start_ms;
	uint64_t drawn_ms;  /* when the line was last drawn; 0 before */
	size_t drawn_cols;  /* its columns; 0 when no line is open */
};

static void ctl_progress_init(struct ctl_progress *pg)
{
	struct winsize ws;

	memset(pg, 0, sizeof(*pg));
	pg->on = isatty(STDERR_FILENO);
	pg->width = 80;
	if (pg->on && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		pg->width = ws.ws_col;
	pg->start_ms = ctl_now_ms();
}

/* Draw p, at most every CTL_PROGRESS_MS unless force; not in the first
 * CTL_PROGRESS_MS, so that a quick answer leaves no line behind. */
static void ctl_progress_draw(struct ctl_progress *pg, struct skyctl_conf_progress *p, int force)
{
	char line[4 * SKYCTL_CONF_PROGRESS_MAX_WIDTH + 1];
	uint64_t now = ctl_now_ms();
	uint64_t last = pg->drawn_ms != 0 ? pg->drawn_ms : pg->start_ms;
	size_t cols;

	if (!pg->on || (!force && now - last < CTL_PROGRESS_MS))
		return;
	p->elapsed_ms = now - pg->start_ms;
	if (skyctl_conf_format_progress(p, pg->width, line, sizeof(line)) < 0)
		return;
	cols = ctl_width(line);
	fputc('\r', stderr);
	fputs(line, stderr);
	if (cols < pg->drawn_cols)
		ctl_pad(stderr, pg->drawn_cols - cols); /* blank the rest of a longer line */
	fflush(stderr);
	pg->drawn_ms = now != 0 ? now : 1;
	pg->drawn_cols = cols;
}

/* Close the line, if one is open, so that what follows starts on its own. */
static void ctl_progress_end(struct ctl_progress *pg)
{
	if (pg->drawn_cols > 0) {
		fputc('\n', stderr);
		fflush(stderr);
	}
	pg->drawn_cols = 0;
	pg->drawn_ms = 0;
}

/* A request body read from a file descriptor as curl sends it: never more
 * than curl's upload buffer in memory. */
struct ctl_upload {
	const char *what;    /* the file's name for messages ("stdin" for '-') */
	int fd;
	off_t start;         /* where the body starts in fd; -1 when fd cannot seek */
	int64_t size;        /* bytes to send; -1 when unknown (chunked encoding) */
	uint64_t sent;       /* bytes read from fd and handed to curl */
	int read_errno;      /* read() failed with this */
	int shrunk;          /* the file ended before size bytes */
	struct ctl_progress progress;
};

static size_t ctl_upload_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct ctl_upload *u = userdata;
	size_t want = size * nitems;
	ssize_t n;

	if (u->size >= 0) {
		/* A file that grows while it is sent is cut at the size announced. */
		if (u->sent >= (uint64_t)u->size)
			return 0;
		if (want > (uint64_t)u->size - u->sent)
			want = (size_t)((uint64_t)u->size - u->sent);
	}
	do
		n = read(u->fd, buf, want);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		u->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (n == 0 && u->size >= 0) {
		u->shrunk = 1;
		return CURL_READFUNC_ABORT;
	}
	u->sent += (uint64_t)n;
	return (size_t)n;
}

/* curl rewinds the body when it has to send it again (e.g. after a 417). */
static int ctl_upload_seek(void *userdata, curl_off_t offset, int origin)
{
	struct ctl_upload *u = userdata;

	if (origin != SEEK_SET || u->start < 0 || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (lseek(u->fd, u->start + (off_t)offset, SEEK_SET) < 0)
		return CURL_SEEKFUNC_FAIL;
	u->sent = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static void ctl_upload_draw(struct ctl_upload *u, uint64_t ulnow, int force)
{
	struct skyctl_conf_progress p = {
		/* With chunked encoding curl's count may include the chunk framing. */
		.done = u->size >= 0 ? ulnow : u->sent,
		.total = u->size > 0 ? (uint64_t)u->size : 0,
	};

	ctl_progress_draw(&u->progress, &p, force);
}

static int ctl_upload_xferinfo(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	ctl_upload_draw(clientp, ulnow > 0 ? (uint64_t)ulnow : 0, 0);
	return 0;
}

/* ---- API calls ----------------------------------------------------------- */

struct ctl_req {
	const char *method;
	const char *path;          /* "/v1/images" */
	const char *id;            /* escaped into one more path segment; NULL for none */
	const char *tail;          /* after the id, as is: "/verify"; NULL for none */
	const char *query;         /* after '?', escaped by the caller; NULL for none */
	json_t *body;              /* a JSON body, or NULL */
	struct ctl_upload *upload; /* a streamed application/octet-stream body, or NULL */
	struct ctl_sink *sink;     /* a 2xx answer's body goes here as it is, not as JSON; or NULL */
};

/* Where the body of a raw answer goes (a guest's console): its bytes are
 * written to fd as they come, nothing is held.  An error answer's JSON
 * body is read as usual.  With follow, the answer may last for ever: no
 * stall timeout, and SIGINT ends it (the call then succeeds). */
struct ctl_sink {
	int fd;
	int follow;
	const char *what;          /* for messages: "the console" */
	CURL *curl;                /* set by ctl_call */
	struct ctl_body *errors;   /* set by ctl_call: where a non-2xx body goes */
	uint64_t written;          /* bytes written to fd */
	int write_errno;           /* writing to fd failed with this */
	int interrupted;           /* SIGINT ended it */
};

static size_t ctl_sink_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct ctl_sink *k = userdata;
	size_t n = size * nmemb, done = 0;
	long status = 0;

	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299)
		return ctl_body_write(ptr, size, nmemb, k->errors);
	while (done < n) {
		ssize_t w = write(k->fd, ptr + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			k->write_errno = errno;
			return 0; /* curl stops with CURLE_WRITE_ERROR */
		}
		done += (size_t)w;
		k->written += (uint64_t)w;
	}
	return n;
}

/* SIGINT while a followed answer is read: a byte in a pipe that the
 * transfer loop polls with curl's sockets. */
static int ctl_sigint_pipe[2] = { -1, -1 };

static void ctl_on_sigint(int sig)
{
	int saved = errno;
	ssize_t w;

	(void)sig;
	w = write(ctl_sigint_pipe[1], "", 1);
	(void)w; /* the pipe is full: a byte is already there */
	errno = saved;
}

/* curl_easy_perform(), but SIGINT ends the transfer at once and sets
 * *interrupted. */
static CURLcode ctl_perform_interruptible(struct ctl *ctl, int *interrupted)
{
	struct sigaction sa = { .sa_handler = ctl_on_sigint }, old;
	CURLcode result = CURLE_OK;
	CURLMcode mc;
	CURLM *multi;
	int running = 1;

	*interrupted = 0;
	multi = curl_multi_init();
	if (multi == NULL)
		return CURLE_OUT_OF_MEMORY;
	if (pipe2(ctl_sigint_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		curl_multi_cleanup(multi);
		return CURLE_OUT_OF_MEMORY;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	mc = curl_multi_add_handle(multi, ctl->curl);
	while (mc == CURLM_OK) {
		struct curl_waitfd wfd = { .fd = ctl_sigint_pipe[0], .events = CURL_WAIT_POLLIN };
		CURLMsg *msg;
		int left;

		mc = curl_multi_perform(multi, &running);
		if (mc != CURLM_OK)
			break;
		if (running == 0) {
			while ((msg = curl_multi_info_read(multi, &left)) != NULL)
				if (msg->msg == CURLMSG_DONE)
					result = msg->data.result;
			break;
		}
		mc = curl_multi_poll(multi, &wfd, 1, 1000, NULL);
		if (mc == CURLM_OK && (wfd.revents & CURL_WAIT_POLLIN)) {
			*interrupted = 1;
			break;
		}
	}
	if (mc != CURLM_OK)
		result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_RECV_ERROR;
	curl_multi_remove_handle(multi, ctl->curl);
	curl_multi_cleanup(multi);
	sigaction(SIGINT, &old, NULL);
	close(ctl_sigint_pipe[0]);
	close(ctl_sigint_pipe[1]);
	ctl_sigint_pipe[0] = ctl_sigint_pipe[1] = -1;
	return result;
}

static int ctl_add_header(struct curl_slist **headers, const char *h)
{
	struct curl_slist *l = curl_slist_append(*headers, h);

	if (l == NULL)
		return -ENOMEM;
	*headers = l;
	return 0;
}

static int ctl_setup_upload(struct ctl *ctl, struct ctl_upload *u)
{
	CURL *c = ctl->curl;

	/* POST with a read callback; curl sends "Expect: 100-continue" for a
	 * body over 1 MiB and waits for the controller's "100 Continue", so a
	 * refused upload (name taken, too large, no space) costs no bytes. */
	if (curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_READFUNCTION, ctl_upload_read) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_READDATA, u) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, ctl_upload_seek) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SEEKDATA, u) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)u->size) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, CTL_UPLOAD_BUFFER) != CURLE_OK ||
	    /* No overall timeout, for large images; but not a stalled one. */
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, CTL_UPLOAD_LOW_SPEED) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, CTL_UPLOAD_LOW_TIME) != CURLE_OK)
		return -ENOTSUP;
	if (u->progress.on &&
	    (curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, ctl_upload_xferinfo) != CURLE_OK ||
	     curl_easy_setopt(c, CURLOPT_XFERINFODATA, u) != CURLE_OK ||
	     curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK))
		return -ENOTSUP;
	return 0;
}

/* Why an upload failed, when it was the file's fault or a stall; 0 when
 * it was something else. */
static int ctl_report_upload(struct ctl *ctl, CURLcode cc, const struct ctl_upload *u)
{
	if (u->read_errno != 0) {
		ctl_err("cannot read %s: %s (after %llu bytes); nothing was stored", u->what,
			strerror(u->read_errno), (unsigned long long)u->sent);
		return -u->read_errno;
	}
	if (u->shrunk) {
		ctl_err("%s ended after %llu of its %lld bytes: it changed while it was sent; nothing was "
			"stored, push it again once nothing writes to it", u->what, (unsigned long long)u->sent,
			(long long)u->size);
		return -EIO;
	}
	curl_off_t up = 0;

	/* What curl sent, not what it read ahead from the file. */
	curl_easy_getinfo(ctl->curl, CURLINFO_SIZE_UPLOAD_T, &up);
	if (cc == CURLE_OPERATION_TIMEDOUT && u->size > 0 && up >= (curl_off_t)u->size) {
		ctl_err("the controller at %s did not answer within %ld s of receiving the whole image; "
			"see its log, and 'skyctl image list' for whether the image was stored",
			ctl->conf.controller, CTL_UPLOAD_LOW_TIME);
		return -ETIMEDOUT;
	}
	if ((cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR) && up > 0) {
		char of[48] = "";
		if (u->size >= 0)
			snprintf(of, sizeof(of), " of %lld", (long long)u->size);
		ctl_err("the controller at %s closed the connection after %lld%s bytes of the upload, "
			"without an answer; it may have refused the image (over its --image-max, or no space "
			"left in its state folder): see its log; nothing was stored", ctl->conf.controller,
			(long long)up, of);
		return -ECONNRESET;
	}
	if (cc == CURLE_OPERATION_TIMEDOUT && up > 0) {
		ctl_err("the upload to the controller at %s stalled (under %ld bytes/s for %ld s) after %lld "
			"bytes; nothing was stored; check the network and the controller's log, then push again",
			ctl->conf.controller, CTL_UPLOAD_LOW_SPEED, CTL_UPLOAD_LOW_TIME, (long long)up);
		return -ETIMEDOUT;
	}
	return 0;
}

/* One API call: METHOD base+path[/escaped id][tail][?query] with an optional
 * JSON or streamed body.  On a 2xx answer with a JSON body, *out gets it
 * (the caller owns it).  Everything else is reported on stderr and gives a
 * negative errno. */
static int ctl_call(struct ctl *ctl, const struct ctl_req *req, json_t **out)
{
	char errbuf[CURL_ERROR_SIZE];
	char auth[SKYCTL_CONF_TOKEN_MAX + 32];
	struct ctl_body body = { 0 };
	struct curl_slist *headers = NULL;
	struct ctl_upload *u = req->upload;
	struct ctl_sink *k = req->sink;
	char *escaped = NULL, *url = NULL, *payload = NULL;
	const char *tail = req->tail != NULL ? req->tail : "";
	json_t *answer = NULL;
	json_error_t jerr;
	long status = 0;
	CURLcode cc;
	size_t len;
	int r;

	curl_easy_reset(ctl->curl);
	if (req->id != NULL) {
		escaped = curl_easy_escape(ctl->curl, req->id, 0);
		if (escaped == NULL) {
			r = -ENOMEM;
			goto fail_oom;
		}
	}
	len = strlen(ctl->conf.controller) + strlen(req->path) + (escaped ? strlen(escaped) + 1 : 0) +
	      strlen(tail) + (req->query ? strlen(req->query) + 1 : 0) + 1;
	url = malloc(len);
	if (url == NULL) {
		r = -ENOMEM;
		goto fail_oom;
	}
	snprintf(url, len, "%s%s%s%s%s%s%s", ctl->conf.controller, req->path, escaped ? "/" : "",
		 escaped ? escaped : "", tail, req->query ? "?" : "", req->query ? req->query : "");

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctl->conf.token);
	if (ctl_add_header(&headers, auth) < 0 ||
	    ctl_add_header(&headers, k != NULL ? "Accept: text/plain, application/json" : "Accept: application/json") < 0) {
		r = -ENOMEM;
		goto fail_oom;
	}
	if (req->body != NULL) {
		payload = json_dumps(req->body, JSON_COMPACT);
		if (payload == NULL || ctl_add_header(&headers, "Content-Type: application/json") < 0) {
			r = -ENOMEM;
			goto fail_oom;
		}
	}
	if (u != NULL && (ctl_add_header(&headers, "Content-Type: application/octet-stream") < 0 ||
			  (u->size < 0 && ctl_add_header(&headers, "Transfer-Encoding: chunked") < 0))) {
		r = -ENOMEM;
		goto fail_oom;
	}

	errbuf[0] = '\0';
	if (curl_easy_setopt(ctl->curl, CURLOPT_URL, url) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    curl_easy_setopt(ctl->curl, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
#else
	    curl_easy_setopt(ctl->curl, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS) != CURLE_OK ||
#endif
	    /* Only the configured CA: no system CA directory as well. */
	    curl_easy_setopt(ctl->curl, CURLOPT_CAINFO, ctl->conf.ca) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_CAPATH, (char *)NULL) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_CONNECTTIMEOUT, CTL_CONNECT_TIMEOUT) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_USERAGENT, "skyctl/" SKY_VERSION) != CURLE_OK ||
	    curl_easy_setopt(ctl->curl, CURLOPT_CUSTOMREQUEST, req->method) != CURLE_OK) {
		ctl_err("cannot set up the HTTPS request: %s; is libcurl built with HTTPS support?",
			errbuf[0] ? errbuf : "an option was refused");
		r = -ENOTSUP;
		goto fail;
	}
	if (k == NULL) {
		/* Answers are held whole: bounded, and never slow. */
		if (curl_easy_setopt(ctl->curl, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
		    curl_easy_setopt(ctl->curl, CURLOPT_LOW_SPEED_TIME, CTL_STALL_TIMEOUT) != CURLE_OK ||
		    curl_easy_setopt(ctl->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CTL_MAX_RESPONSE) != CURLE_OK ||
		    curl_easy_setopt(ctl->curl, CURLOPT_WRITEFUNCTION, ctl_body_write) != CURLE_OK ||
		    curl_easy_setopt(ctl->curl, CURLOPT_WRITEDATA, &body) != CURLE_OK)
			r = -ENOTSUP;
		else
			r = 0;
	} else {
		/* A raw answer is passed on as it comes, so not held: no size
		 * limit.  A followed one may be quiet for hours: no stall
		 * timeout, but TCP keepalive notices a dead controller. */
		k->curl = ctl->curl;
		k->errors = &body;
		if (curl_easy_setopt(ctl->curl, CURLOPT_WRITEFUNCTION, ctl_sink_write) != CURLE_OK ||
		    curl_easy_setopt(ctl->curl, CURLOPT_WRITEDATA, k) != CURLE_OK ||
		    (!k->follow &&
		     (curl_easy_setopt(ctl->curl, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
		      curl_easy_setopt(ctl->curl, CURLOPT_LOW_SPEED_TIME, CTL_STALL_TIMEOUT) != CURLE_OK)) ||
		    (k->follow &&
		     (curl_easy_setopt(ctl->curl, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
		      curl_easy_setopt(ctl->curl, CURLOPT_TCP_KEEPIDLE, CTL_KEEPALIVE_IDLE) != CURLE_OK ||
		      curl_easy_setopt(ctl->curl, CURLOPT_TCP_KEEPINTVL, CTL_KEEPALIVE_INTVL) != CURLE_OK)))
			r = -ENOTSUP;
		else
			r = 0;
	}
	if (r < 0) {
		ctl_err("cannot set up the HTTPS request: this libcurl refused an option");
		goto fail;
	}
	if (payload != NULL &&
	    (curl_easy_setopt(ctl->curl, CURLOPT_POSTFIELDS, payload) != CURLE_OK ||
	     curl_easy_setopt(ctl->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload)) != CURLE_OK)) {
		ctl_err("cannot set up the HTTPS request body");
		r = -ENOTSUP;
		goto fail;
	}
	if (u != NULL && ctl_setup_upload(ctl, u) < 0) {
		ctl_err("cannot set up the upload: this libcurl refused an option; skyctl needs libcurl 7.62 "
			"or later");
		r = -ENOTSUP;
		goto fail;
	}

	if (k != NULL && k->follow)
		cc = ctl_perform_interruptible(ctl, &k->interrupted);
	else
		cc = curl_easy_perform(ctl->curl);
	curl_easy_getinfo(ctl->curl, CURLINFO_RESPONSE_CODE, &status);
	if (k != NULL && k->interrupted) {
		/* Ctrl-C: what the user asked for, not an error. */
		r = 0;
		goto done;
	}
	if (k != NULL && k->write_errno != 0) {
		ctl_err("cannot write %s to the output: %s", k->what, strerror(k->write_errno));
		r = -k->write_errno;
		goto fail;
	}
	if (k != NULL && cc != CURLE_OK && status >= 200 && status <= 299) {
		ctl_err("the controller at %s broke off %s after %llu bytes: %s; is it still running? "
			"Run the command again", ctl->conf.controller, k->what, (unsigned long long)k->written,
			errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		r = -EIO;
		goto fail;
	}
	if (u != NULL) {
		if (cc == CURLE_OK && status >= 200 && status <= 299)
			ctl_upload_draw(u, u->sent, 1);
		ctl_progress_end(&u->progress);
	}
	if (body.len > 0 && !body.too_large)
		answer = json_loadb(body.data, body.len, 0, &jerr);
	if (cc != CURLE_OK) {
		if (u != NULL && (r = ctl_report_upload(ctl, cc, u)) < 0)
			goto fail;
		/* A controller that refuses an upload answers before it has read
		 * the body and may then close: its answer beats curl's send error. */
		if (!(status >= 300 && json_is_object(json_object_get(answer, "error")))) {
			ctl_report_curl(ctl, cc, errbuf, &body);
			r = -EIO;
			goto fail;
		}
	}
	if (status < 200 || status > 299) {
		ctl_report_http(ctl, status, answer);
		r = status == 401 ? -EACCES : status == 404 ? -ENOENT : -EIO;
		goto fail;
	}
	if (k != NULL) {
		r = 0;
		goto done;
	}
	if (answer == NULL) {
		if (body.len == 0)
			ctl_err("the controller at %s answered HTTP %ld with an empty body; "
				"is it the controller's API port?", ctl->conf.controller, status);
		else
			ctl_err("the controller at %s answered HTTP %ld with a body that is not JSON (%s); "
				"is it the controller's API port?", ctl->conf.controller, status, jerr.text);
		r = -EPROTO;
		goto fail;
	}
	*out = answer;
	answer = NULL;
	r = 0;
	goto done;

fail_oom:
	ctl_err("out of memory");
fail:
done:
	json_decref(answer);
	free(body.data);
	free(payload);
	free(url);
	curl_free(escaped);
	curl_slist_free_all(headers);
	return r;
}

/* The common case: METHOD path[/id] with an optional JSON body. */
static int ctl_request(struct ctl *ctl, const char *method, const char *path, const char *id,
		       json_t *request, json_t **out)
{
	const struct ctl_req req = { .method = method, .path = path, .id = id, .body = request };

	return ctl_call(ctl, &req, out);
}

/* ---- output ------------------------------------------------------------ */

static int ctl_print_json(json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) < 0) {
		ctl_err("cannot write the JSON output");
		return -EIO;
	}
	fputc('\n', stdout);
	return 0;
}

/* A table of cleaned strings, printed with columns padded to fit; at most
 * maxrows rows (the caller knows how many there will be). */
struct ctl_table {
	size_t ncols, nrows, maxrows;
	char **cells;
};

static int ctl_table_init(struct ctl_table *t, size_t ncols, size_t maxrows)
{
	char **cells = calloc(maxrows > 0 ? maxrows : 1, ncols * sizeof(char *));

	if (cells == NULL)
		return -ENOMEM;
	t->ncols = ncols;
	t->nrows = 0;
	t->maxrows = maxrows;
	t->cells = cells;
	return 0;
}

static void ctl_table_free(struct ctl_table *t)
{
	if (t->cells == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
}

static int ctl_table_add(struct ctl_table *t, const char *const *row)
{
	char **cells;

	if (t->nrows == t->maxrows)
		return -ENOBUFS;
	cells = t->cells + t->nrows * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		cells[c] = ctl_clean_dup(row[c] != NULL ? row[c] : "-");
		if (cells[c] == NULL) {
			while (c-- > 0) {
				free(cells[c]);
				cells[c] = NULL;
			}
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

static void ctl_table_print(const struct ctl_table *t, FILE *f, size_t indent)
{
	size_t width[16] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			size_t w = ctl_width(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		ctl_pad(f, indent);
		for (size_t c = 0; c < t->ncols && c < 16; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			fputs(cell, f);
			if (c + 1 < t->ncols)
				ctl_pad(f, width[c] - ctl_width(cell) + 2);
		}
		fputc('\n', f);
	}
}

static const char *ctl_jstr(json_t *obj, const char *key, const char *missing)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : missing;
}

static const char *ctl_jint(json_t *obj, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return "-";
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return buf;
}

static const char *ctl_jbool(json_t *obj, const char *key, const char *yes, const char *no)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_boolean(v))
		return "-";
	return json_is_true(v) ? yes : no;
}

static const char *ctl_jcount(json_t *obj, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_array(v))
		return "-";
	snprintf(buf, len, "%zu", json_array_size(v));
	return buf;
}

/* 2147483648 -> "2.0G" (powers of 1024, as free -h). */
static const char *ctl_jbytes(json_t *obj, const char *key, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	json_t *v = json_object_get(obj, key);
	json_int_t n = json_integer_value(v);
	double d;
	size_t u = 0;

	if (!json_is_integer(v) || n < 0)
		return "-";
	if (n < 1024) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT "B", n);
		return buf;
	}
	d = (double)n / 1024.0;
	while (d >= 1023.95 && u + 1 < sizeof(units) - 1) {
		d /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f%c", d, units[u]);
	return buf;
}

/* A "label:   value" line of a detail view. */
static void ctl_field(const char *label, const char *value)
{
	size_t n = strlen(label) + 1;

	fputs(label, stdout);
	fputc(':', stdout);
	ctl_pad(stdout, n < CTL_LABEL_WIDTH ? CTL_LABEL_WIDTH - n : 1);
	ctl_put_clean(stdout, value);
	fputc('\n', stdout);
}

/* ctl_field() for text that may have several lines: each further line
 * starts under the first one's value. */
static void ctl_field_lines(const char *label, const char *value)
{
	const char *nl = strchr(value, '\n');
	size_t n = strlen(label) + 1;
	char *line;

	if (nl == NULL) {
		ctl_field(label, value);
		return;
	}
	fputs(label, stdout);
	fputc(':', stdout);
	ctl_pad(stdout, n < CTL_LABEL_WIDTH ? CTL_LABEL_WIDTH - n : 1);
	for (const char *p = value;; p = nl + 1) {
		nl = strchr(p, '\n');
		line = strndup(p, nl != NULL ? (size_t)(nl - p) : strlen(p));
		if (line == NULL) {
			ctl_put_clean(stdout, p); /* out of memory: one line, newlines as '?' */
			nl = NULL;
		} else {
			ctl_put_clean(stdout, line);
			free(line);
		}
		fputc('\n', stdout);
		if (nl == NULL || nl[1] == '\0')
			break;
		ctl_pad(stdout, n < CTL_LABEL_WIDTH ? CTL_LABEL_WIDTH : n + 1);
	}
}

/* The array under key in a list answer ({"boards": [...]}). */
static json_t *ctl_list_of(struct ctl *ctl, json_t *answer, const char *key)
{
	json_t *list = json_object_get(answer, key);

	if (!json_is_array(list))
		ctl_err("the controller at %s answered without a '%s' list; is it a Skyroot controller "
			"of the same version (%s)?", ctl->conf.controller, key, SKY_VERSION);
	return json_is_array(list) ? list : NULL;
}

/* ---- commands ---------------------------------------------------------- */

static int token__create(struct ctl *ctl, const char *arg)
{
	const struct ctl_opts *o = ctl->opts;
	json_t *request, *answer = NULL;
	char buf[32];
	int r;

	(void)arg;

	request = json_object();
	if (request == NULL) {
		ctl_err("out of memory");
		return -ENOMEM;
	}
	if (((o->seen & FLAG_BIT(FLAG_TTL)) &&
	     json_object_set_new(request, "ttl_seconds", json_integer((json_int_t)o->ttl)) < 0) ||
	    ((o->seen & FLAG_BIT(FLAG_USES)) &&
	     json_object_set_new(request, "uses", json_integer((json_int_t)o->uses)) < 0)) {
		json_decref(request);
		ctl_err("out of memory");
		return -ENOMEM;
	}
	r = ctl_request(ctl, "POST", "/v1/tokens", NULL, request, &answer);
	json_decref(request);
	if (r < 0)
		return r;
	if (o->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
		goto done;
	}
	if (json_string_value(json_object_get(answer, "token")) == NULL) {
		ctl_err("the controller's answer has no token; is it a Skyroot controller of the same version (%s)?",
			SKY_VERSION);
		r = -EPROTO;
		goto done;
	}
	ctl_field("Token", ctl_jstr(answer, "token", "-"));
	ctl_field("ID", ctl_jstr(answer, "id", "-"));
	ctl_field("CA pin", ctl_jstr(answer, "ca_pin", "-"));
	ctl_field("Controller", ctl_jstr(answer, "controller", "-"));
	ctl_field("Uses", ctl_jint(answer, "uses", buf, sizeof(buf)));
	ctl_field("Expires", ctl_jstr(answer, "expires_at", "-"));
	ctl_field("Kernel command line", ctl_jstr(answer, "cmdline", "-"));
	fprintf(stderr, "The token is shown only now.  Boot a board with the kernel command line above "
			"to enroll it.\n");
done:
	json_decref(answer);
	return r;
}

static int token__list(struct ctl *ctl, const char *arg)
{
	static const char *const header[] = { "ID", "STATE", "USES-LEFT", "EXPIRES" };
	struct ctl_table t = { 0 };
	json_t *answer = NULL, *list, *tok;
	size_t i;
	int r;

	(void)arg;

	r = ctl_request(ctl, "GET", "/v1/tokens", NULL, NULL, &answer);
	if (r < 0)
		return r;
	list = ctl_list_of(ctl, answer, "tokens");
	if (list == NULL) {
		r = -EPROTO;
		goto done;
	}
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(list);
		goto done;
	}
	r = ctl_table_init(&t, 4, json_array_size(list) + 1);
	if (r == 0)
		r = ctl_table_add(&t, header);
	json_array_foreach(list, i, tok) {
		char left[32];
		const char *row[] = {
			ctl_jstr(tok, "id", "-"),
			ctl_jstr(tok, "state", "-"),
			ctl_jint(tok, "uses_left", left, sizeof(left)),
			ctl_jstr(tok, "expires_at", "-"),
		};
		if (r == 0)
			r = ctl_table_add(&t, row);
	}
	if (r < 0) {
		ctl_err("out of memory");
		goto done;
	}
	ctl_table_print(&t, stdout, 0);
	if (json_array_size(list) == 0)
		fprintf(stderr, "No enrollment tokens; make one with 'skyctl token create'.\n");
done:
	ctl_table_free(&t);
	json_decref(answer);
	return r;
}

static int token__revoke(struct ctl *ctl, const char *arg)
{
	json_t *answer = NULL;
	int r;

	r = ctl_request(ctl, "DELETE", "/v1/tokens", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
	} else {
		fputs("revoked token ", stdout);
		ctl_put_clean(stdout, ctl_jstr(answer, "revoked", arg));
		fputc('\n', stdout);
	}
	json_decref(answer);
	return r;
}

static int board__list(struct ctl *ctl, const char *arg)
{
	static const char *const header[] = {
		"ID", "NAME", "STATE", "CPUS", "MEMORY", "KVM", "FIRMWARE", "IOMMU-GROUPS", "NICS", "LAST-SEEN",
	};
	struct ctl_table t = { 0 };
	json_t *answer = NULL, *list, *b;
	size_t i;
	int r;

	(void)arg;

	r = ctl_request(ctl, "GET", "/v1/boards", NULL, NULL, &answer);
	if (r < 0)
		return r;
	list = ctl_list_of(ctl, answer, "boards");
	if (list == NULL) {
		r = -EPROTO;
		goto done;
	}
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(list);
		goto done;
	}
	r = ctl_table_init(&t, 10, json_array_size(list) + 1);
	if (r == 0)
		r = ctl_table_add(&t, header);
	json_array_foreach(list, i, b) {
		char cpus[32], mem[32], groups[32], nics[32];
		json_t *seen = json_object_get(b, "last_seen");
		const char *row[] = {
			ctl_jstr(b, "id", "-"),
			ctl_jstr(b, "name", "-"),
			ctl_jstr(b, "state", "-"),
			ctl_jint(b, "cpus", cpus, sizeof(cpus)),
			ctl_jbytes(b, "memory_bytes", mem, sizeof(mem)),
			ctl_jbool(b, "kvm", "yes", "no"),
			ctl_jstr(b, "firmware", "-"),
			ctl_jcount(b, "iommu_groups", groups, sizeof(groups)),
			ctl_jcount(b, "nics", nics, sizeof(nics)),
			json_is_string(seen) ? json_string_value(seen) : "never",
		};
		if (r == 0)
			r = ctl_table_add(&t, row);
	}
	if (r < 0) {
		ctl_err("out of memory");
		goto done;
	}
	ctl_table_print(&t, stdout, 0);
	if (json_array_size(list) == 0)
		fprintf(stderr, "No boards enrolled; make a token with 'skyctl token create' and boot a board "
				"with its kernel command line.\n");
done:
	ctl_table_free(&t);
	json_decref(answer);
	return r;
}

static void board__show_groups(json_t *board)
{
	json_t *groups = json_object_get(board, "iommu_groups"), *g, *dev;
	char buf[32];
	size_t i, j;

	if (!json_is_array(groups) || json_array_size(groups) == 0) {
		ctl_field("IOMMU groups", json_is_array(groups) ? "none (is the IOMMU on? intel_iommu=on)" : "-");
		return;
	}
	ctl_field("IOMMU groups", ctl_jcount(board, "iommu_groups", buf, sizeof(buf)));
	json_array_foreach(groups, i, g) {
		json_t *devices = json_object_get(g, "devices");
		printf("  group %s:\n", ctl_jint(g, "id", buf, sizeof(buf)));
		json_array_foreach(devices, j, dev) {
			fputs("    ", stdout);
			ctl_put_clean(stdout, ctl_jstr(dev, "address", "-"));
			fputs("  ", stdout);
			ctl_put_clean(stdout, ctl_jstr(dev, "vendor_device", "-"));
			fputs("  class ", stdout);
			ctl_put_clean(stdout, ctl_jstr(dev, "class", "-"));
			fputs("  driver ", stdout);
			ctl_put_clean(stdout, ctl_jstr(dev, "driver", "(none)"));
			fputc('\n', stdout);
		}
	}
}

static int board__show_nics(json_t *board)
{
	json_t *nics = json_object_get(board, "nics"), *nic;
	struct ctl_table t = { 0 };
	char buf[32];
	size_t i;
	int r;

	if (!json_is_array(nics) || json_array_size(nics) == 0) {
		ctl_field("NICs", json_is_array(nics) ? "none" : "-");
		return 0;
	}
	ctl_field("NICs", ctl_jcount(board, "nics", buf, sizeof(buf)));
	r = ctl_table_init(&t, 4, json_array_size(nics));
	json_array_foreach(nics, i, nic) {
		char speed[48];
		json_t *mbps = json_object_get(nic, "speed_mbps");
		if (json_is_integer(mbps) && json_integer_value(mbps) > 0)
			snprintf(speed, sizeof(speed), "%" JSON_INTEGER_FORMAT " Mb/s", json_integer_value(mbps));
		else
			snprintf(speed, sizeof(speed), "speed unknown");
		const char *row[] = {
			ctl_jstr(nic, "name", "-"),
			ctl_jstr(nic, "mac", "-"),
			ctl_jbool(nic, "link", "link up", "link down"),
			speed,
		};
		if (r == 0)
			r = ctl_table_add(&t, row);
	}
	if (r == 0)
		ctl_table_print(&t, stdout, 2);
	else
		ctl_err("out of memory");
	ctl_table_free(&t);
	return r;
}

/* What the board holds in RAM, and fetches under way or failed; each part
 * only when the controller sends it. */
static int board__show_images(json_t *board)
{
	json_t *images = json_object_get(board, "images");
	json_t *fetching = json_object_get(board, "fetching");
	json_t *errors = json_object_get(board, "image_errors");
	struct ctl_table t = { 0 };
	json_t *e;
	char buf[32];
	size_t i;
	int r = 0;

	if (json_is_array(images) && json_array_size(images) == 0)
		ctl_field("Images", "none");
	if (json_is_array(images) && json_array_size(images) > 0) {
		ctl_field("Images", ctl_jcount(board, "images", buf, sizeof(buf)));
		r = ctl_table_init(&t, 3, json_array_size(images));
		json_array_foreach(images, i, e) {
			char size[32], sha[CTL_SHA_PREFIX + 16];
			snprintf(sha, sizeof(sha), "sha256 %.*s", CTL_SHA_PREFIX, ctl_jstr(e, "sha256", "-"));
			const char *row[] = {
				ctl_jstr(e, "id", "-"),
				ctl_jbytes(e, "size_bytes", size, sizeof(size)),
				sha,
			};
			if (r == 0)
				r = ctl_table_add(&t, row);
		}
		if (r == 0)
			ctl_table_print(&t, stdout, 2);
		ctl_table_free(&t);
	}
	if (r == 0 && json_is_array(fetching) && json_array_size(fetching) > 0) {
		ctl_field("Fetching", ctl_jcount(board, "fetching", buf, sizeof(buf)));
		r = ctl_table_init(&t, 2, json_array_size(fetching));
		json_array_foreach(fetching, i, e) {
			char done[32], all[32], line[80];
			snprintf(line, sizeof(line), "%s/%s chunks", ctl_jint(e, "done_chunks", done, sizeof(done)),
				 ctl_jint(e, "chunks", all, sizeof(all)));
			const char *row[] = { ctl_jstr(e, "id", "-"), line };
			if (r == 0)
				r = ctl_table_add(&t, row);
		}
		if (r == 0)
			ctl_table_print(&t, stdout, 2);
		ctl_table_free(&t);
	}
	if (r == 0 && json_is_array(errors) && json_array_size(errors) > 0) {
		ctl_field("Failed fetches", ctl_jcount(board, "image_errors", buf, sizeof(buf)));
		json_array_foreach(errors, i, e) {
			fputs("  ", stdout);
			ctl_put_clean(stdout, ctl_jstr(e, "id", "-"));
			fputs("  ", stdout);
			ctl_put_clean(stdout, ctl_jstr(e, "error", "no reason given"));
			fputc('\n', stdout);
		}
	}
	if (r < 0)
		ctl_err("out of memory");
	return r;
}

static int board__show(struct ctl *ctl, const char *arg)
{
	json_t *answer = NULL, *b, *flags, *dmi, *f;
	char buf[64], mem[32], line[512];
	size_t i, n;
	int r;

	r = ctl_request(ctl, "GET", "/v1/boards", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
		goto done;
	}
	b = answer;
	ctl_field("ID", ctl_jstr(b, "id", "-"));
	ctl_field("Name", ctl_jstr(b, "name", "-"));
	ctl_field("State", ctl_jstr(b, "state", "-"));
	ctl_field("Hostname", ctl_jstr(b, "hostname", "-"));
	ctl_field("UUID", ctl_jstr(b, "uuid", "-"));
	/* Before the board's first inventory most fields are null: "-". */
	if (json_is_integer(json_object_get(b, "cpus")))
		snprintf(line, sizeof(line), "%s (%s)", ctl_jint(b, "cpus", buf, sizeof(buf)),
			 ctl_jstr(b, "cpu_model", "unknown model"));
	else
		snprintf(line, sizeof(line), "-");
	ctl_field("CPUs", line);

	flags = json_object_get(b, "virt_flags");
	n = 0;
	line[0] = '\0';
	json_array_foreach(flags, i, f) {
		const char *s = json_string_value(f);
		int w;
		if (s == NULL)
			continue;
		w = snprintf(line + n, sizeof(line) - n, "%s%s", n ? " " : "", s);
		if (w < 0 || (size_t)w >= sizeof(line) - n)
			break;
		n += (size_t)w;
	}
	ctl_field("Virtualization", json_is_array(flags) ? (n ? line : "none") : "-");

	json_t *mv = json_object_get(b, "memory_bytes");
	if (json_is_integer(mv))
		snprintf(line, sizeof(line), "%s (%" JSON_INTEGER_FORMAT " bytes)",
			 ctl_jbytes(b, "memory_bytes", mem, sizeof(mem)), json_integer_value(mv));
	else
		snprintf(line, sizeof(line), "-");
	ctl_field("Memory", line);
	ctl_field("NUMA nodes", ctl_jint(b, "numa_nodes", buf, sizeof(buf)));
	ctl_field("KVM", ctl_jbool(b, "kvm", "yes", "no (no /dev/kvm on the board)"));
	ctl_field("Firmware", ctl_jstr(b, "firmware", "-"));
	dmi = json_object_get(b, "dmi");
	ctl_field("DMI vendor", ctl_jstr(dmi, "vendor", "-"));
	ctl_field("DMI product", ctl_jstr(dmi, "product", "-"));
	ctl_field("DMI serial", ctl_jstr(dmi, "serial", "-"));
	ctl_field("Kernel", ctl_jstr(b, "kernel", "-"));
	ctl_field("Agent version", ctl_jstr(b, "agent_version", "-"));
	ctl_field("Enrolled", ctl_jstr(b, "enrolled_at", "-"));
	ctl_field("Certificate until", ctl_jstr(b, "cert_not_after", "-"));
	ctl_field("Last seen", ctl_jstr(b, "last_seen", "never"));
	board__show_groups(b);
	r = board__show_nics(b);
	if (r == 0)
		r = board__show_images(b);
done:
	json_decref(answer);
	return r;
}

static int board__delete(struct ctl *ctl, const char *arg)
{
	json_t *answer = NULL;
	int r;

	r = ctl_request(ctl, "DELETE", "/v1/boards", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
	} else {
		fputs("deleted board ", stdout);
		ctl_put_clean(stdout, ctl_jstr(answer, "deleted", arg));
		fputc('\n', stdout);
	}
	json_decref(answer);
	return r;
}

/* ---- images ------------------------------------------------------------- */

/* The first CTL_SHA_PREFIX hex digits of a SHA-256, for tables. */
static const char *ctl_jsha(json_t *obj, const char *key, char *buf, size_t len)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s == NULL)
		return "-";
	snprintf(buf, len, "%.*s", CTL_SHA_PREFIX, s);
	return buf;
}

/* The labelled lines of an IMAGE. */
static void image__print(json_t *img)
{
	json_t *size = json_object_get(img, "size_bytes");
	char buf[32], human[32], line[128];

	ctl_field("ID", ctl_jstr(img, "id", "-"));
	ctl_field("Name", ctl_jstr(img, "name", "-"));
	ctl_field("Kind", ctl_jstr(img, "kind", "-"));
	ctl_field("Format", ctl_jstr(img, "format", "-"));
	if (json_is_integer(size))
		snprintf(line, sizeof(line), "%s (%" JSON_INTEGER_FORMAT " bytes)",
			 ctl_jbytes(img, "size_bytes", human, sizeof(human)), json_integer_value(size));
	else
		snprintf(line, sizeof(line), "-");
	ctl_field("Size", line);
	ctl_field("SHA-256", ctl_jstr(img, "sha256", "-"));
	if (json_is_integer(json_object_get(img, "chunk_size")))
		snprintf(line, sizeof(line), "%s of %s", ctl_jint(img, "chunks", buf, sizeof(buf)),
			 ctl_jbytes(img, "chunk_size", human, sizeof(human)));
	else
		snprintf(line, sizeof(line), "%s", ctl_jint(img, "chunks", buf, sizeof(buf)));
	ctl_field("Chunks", line);
	ctl_field("Created", ctl_jstr(img, "created", "-"));
}

/* Open FILE ('-': stdin) and find how much of it to send. */
static int image__open(const char *arg, struct ctl_upload *u)
{
	struct stat st;
	int r;

	if (strcmp(arg, "-") == 0) {
		u->what = "stdin";
		u->fd = STDIN_FILENO;
		if (isatty(STDIN_FILENO)) {
			ctl_err("stdin is a terminal; pipe the image in, e.g. "
				"'xz -dc disk.img.xz | skyctl image push - --name NAME'");
			return -EINVAL;
		}
	} else {
		u->what = arg;
		u->fd = open(arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (u->fd < 0) {
			r = -errno;
			ctl_err("cannot open %s: %s; check the path of the image file", arg, strerror(-r));
			return r;
		}
	}
	if (fstat(u->fd, &st) < 0) {
		r = -errno;
		ctl_err("cannot stat %s: %s", u->what, strerror(-r));
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		ctl_err("%s is a folder; give the image file", u->what);
		return -EISDIR;
	}
	/* A regular file or a block device has a size: Content-Length.  A pipe
	 * or a socket has not: chunked transfer encoding. */
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		errno = 0;
		off_t cur = lseek(u->fd, 0, SEEK_CUR);
		off_t end = S_ISREG(st.st_mode) ? st.st_size : lseek(u->fd, 0, SEEK_END);
		if (cur < 0 || end < 0 || end < cur || lseek(u->fd, cur, SEEK_SET) != cur) {
			r = errno != 0 ? -errno : -EIO;
			ctl_err("cannot find the size of %s: %s", u->what, strerror(-r));
			return r;
		}
		u->start = cur;
		u->size = (int64_t)(end - cur);
		if (u->size == 0) {
			ctl_err("%s is empty; there is no image to upload", u->what);
			return -EINVAL;
		}
	}
	return 0;
}

static int image__push(struct ctl *ctl, const char *arg)
{
	const struct ctl_opts *o = ctl->opts;
	struct ctl_upload u = { .fd = -1, .start = -1, .size = -1 };
	struct ctl_req req = { .method = "POST", .path = "/v1/images", .upload = &u };
	char *name = NULL, *kind = NULL, *query = NULL;
	json_t *answer = NULL;
	size_t len;
	int r;

	r = image__open(arg, &u);
	if (r < 0)
		goto done;
	name = curl_easy_escape(ctl->curl, o->value[FLAG_NAME], 0);
	if ((o->seen & FLAG_BIT(FLAG_KIND)) != 0)
		kind = curl_easy_escape(ctl->curl, o->value[FLAG_KIND], 0);
	len = (name ? strlen(name) : 0) + (kind ? strlen(kind) : 0) + sizeof("name=&kind=");
	query = malloc(len);
	if (name == NULL || query == NULL || ((o->seen & FLAG_BIT(FLAG_KIND)) && kind == NULL)) {
		ctl_err("out of memory");
		r = -ENOMEM;
		goto done;
	}
	snprintf(query, len, "name=%s%s%s", name, kind ? "&kind=" : "", kind ? kind : "");
	req.query = query;

	ctl_progress_init(&u.progress);
	r = ctl_call(ctl, &req, &answer);
	if (r < 0)
		goto done;
	if (o->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
		goto done;
	}
	if (!json_is_string(json_object_get(answer, "id"))) {
		ctl_err("the controller's answer has no image id; is it a Skyroot controller of the same "
			"version (%s)?", SKY_VERSION);
		r = -EPROTO;
		goto done;
	}
	image__print(answer);
done:
	json_decref(answer);
	free(query);
	curl_free(kind);
	curl_free(name);
	if (u.fd > STDIN_FILENO)
		close(u.fd);
	return r;
}

static int image__list(struct ctl *ctl, const char *arg)
{
	static const char *const header[] = {
		"ID", "NAME", "KIND", "FORMAT", "SIZE", "CHUNKS", "SHA256", "CREATED",
	};
	struct ctl_table t = { 0 };
	json_t *answer = NULL, *list, *img;
	size_t i;
	int r;

	(void)arg;

	r = ctl_request(ctl, "GET", "/v1/images", NULL, NULL, &answer);
	if (r < 0)
		return r;
	list = ctl_list_of(ctl, answer, "images");
	if (list == NULL) {
		r = -EPROTO;
		goto done;
	}
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(list);
		goto done;
	}
	r = ctl_table_init(&t, 8, json_array_size(list) + 1);
	if (r == 0)
		r = ctl_table_add(&t, header);
	json_array_foreach(list, i, img) {
		char size[32], chunks[32], sha[CTL_SHA_PREFIX + 1];
		const char *row[] = {
			ctl_jstr(img, "id", "-"),
			ctl_jstr(img, "name", "-"),
			ctl_jstr(img, "kind", "-"),
			ctl_jstr(img, "format", "-"),
			ctl_jbytes(img, "size_bytes", size, sizeof(size)),
			ctl_jint(img, "chunks", chunks, sizeof(chunks)),
			ctl_jsha(img, "sha256", sha, sizeof(sha)),
			ctl_jstr(img, "created", "-"),
		};
		if (r == 0)
			r = ctl_table_add(&t, row);
	}
	if (r < 0) {
		ctl_err("out of memory");
		goto done;
	}
	ctl_table_print(&t, stdout, 0);
	if (json_array_size(list) == 0)
		fprintf(stderr, "No images; upload one with 'skyctl image push FILE --name NAME'.\n");
done:
	ctl_table_free(&t);
	json_decref(answer);
	return r;
}

static int image__show(struct ctl *ctl, const char *arg)
{
	json_t *answer = NULL;
	int r;

	r = ctl_request(ctl, "GET", "/v1/images", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON)
		r = ctl_print_json(answer);
	else
		image__print(answer);
	json_decref(answer);
	return r;
}

static int image__delete(struct ctl *ctl, const char *arg)
{
	json_t *answer = NULL;
	int r;

	r = ctl_request(ctl, "DELETE", "/v1/images", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
	} else {
		fputs("deleted image ", stdout);
		ctl_put_clean(stdout, ctl_jstr(answer, "deleted", arg));
		fputc('\n', stdout);
	}
	json_decref(answer);
	return r;
}

static int image__verify(struct ctl *ctl, const char *arg)
{
	const struct ctl_req req = { .method = "POST", .path = "/v1/images", .id = arg, .tail = "/verify" };
	json_t *answer = NULL, *ok, *bad, *chunk;
	char buf[32], nbuf[32];
	const char *id;
	size_t i;
	int r;

	r = ctl_call(ctl, &req, &answer);
	if (r < 0)
		return r;
	ok = json_object_get(answer, "ok");
	bad = json_object_get(answer, "bad_chunks");
	id = ctl_jstr(answer, "id", arg);
	if (!json_is_boolean(ok)) {
		ctl_err("the controller's answer has no 'ok'; is it a Skyroot controller of the same version (%s)?",
			SKY_VERSION);
		r = -EPROTO;
		goto done;
	}
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
		if (r < 0)
			goto done;
	} else if (json_is_true(ok)) {
		fputs("image ", stdout);
		ctl_put_clean(stdout, id);
		printf(": all %s chunks verify\n", ctl_jint(answer, "chunks", buf, sizeof(buf)));
	} else {
		json_array_foreach(bad, i, chunk) {
			printf("chunk %s: does not match its SHA-256 ", ctl_jint(chunk, "index", buf, sizeof(buf)));
			ctl_put_clean(stdout, ctl_jstr(chunk, "sha256", "-"));
			fputc('\n', stdout);
		}
	}
	if (json_is_true(ok))
		goto done;
	fputs("skyctl: image ", stderr);
	ctl_put_clean(stderr, id);
	snprintf(nbuf, sizeof(nbuf), "%zu", json_array_size(bad));
	fprintf(stderr, ": %s of %s chunks do not verify; the controller's store is damaged (check the disk "
			"of its state folder); delete the image and push it again\n",
		json_is_array(bad) ? nbuf : "some", ctl_jint(answer, "chunks", buf, sizeof(buf)));
	r = -EIO;
done:
	json_decref(answer);
	return r;
}

/* The entry of array key of board whose "id" is id, or NULL. */
static json_t *ctl_find_by_id(json_t *board, const char *key, const char *id)
{
	json_t *list = json_object_get(board, key), *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *s = json_string_value(json_object_get(e, "id"));
		if (s != NULL && strcmp(s, id) == 0)
			return e;
	}
	return NULL;
}

static void ctl_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What 'image fetch' works with: the ids the controller answered (to poll
 * and match) and, for messages, the words the user gave with the ids. */
struct fetch {
	char board_id[CTL_MAX_ID + 1];
	char image_id[CTL_MAX_ID + 1];
	char board[2 * CTL_MAX_ID + 8]; /* "node-a (brd-3f9a0c1d2e4b)", cleaned */
	char image[2 * CTL_MAX_ID + 8];
	char label[2 * CTL_MAX_ID + 8]; /* "debian-kernel -> node-a", for the progress line */
};

/* ctl_clean_dup() in place. */
static void ctl_clean_inplace(char *s)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0';) {
		int bad;
		size_t n = ctl_clean_len(s, i, &bad);
		if (bad) {
			s[o++] = '?';
			i += n;
		} else {
			s[o++] = s[i++];
		}
	}
	s[o] = '\0';
}

/* "given (id)", or the id alone when they are the same. */
static void ctl_name_for(char *dst, size_t len, const char *given, const char *id)
{
	if (strcmp(given, id) == 0)
		snprintf(dst, len, "%s", id);
	else
		snprintf(dst, len, "%s (%s)", given, id);
}

static void image__fetch_draw(struct ctl_progress *pg, const struct fetch *f, json_int_t done, json_int_t all,
			      int force)
{
	struct skyctl_conf_progress p = {
		.label = f->label, .unit = "chunks", .done = (uint64_t)done, .total = (uint64_t)all,
	};

	if (all > 0 && done >= 0)
		ctl_progress_draw(pg, &p, force);
}

/* Ask the board about the fetch every CTL_POLL_MS until the image is in its
 * RAM, the fetch failed, the board went offline or the time is up.  On
 * success *entry gets the board's "images" entry. */
static int image__fetch_wait(struct ctl *ctl, const struct fetch *f, json_t **entry)
{
	const struct ctl_opts *o = ctl->opts;
	const char *timeout = (o->seen & FLAG_BIT(FLAG_TIMEOUT)) ? o->value[FLAG_TIMEOUT] : "10m";
	struct ctl_progress pg;
	json_int_t done = -1, all = -1;
	uint64_t deadline;
	int r;

	ctl_progress_init(&pg);
	deadline = pg.start_ms + o->timeout * 1000;
	for (;;) {
		json_t *b = NULL, *e;

		r = ctl_request(ctl, "GET", "/v1/boards", f->board_id, NULL, &b);
		if (r < 0) {
			ctl_progress_end(&pg);
			ctl_err("could not follow the fetch; it may go on: see 'skyctl board show %s'", f->board_id);
			return r;
		}
		e = ctl_find_by_id(b, "images", f->image_id);
		if (e != NULL) {
			image__fetch_draw(&pg, f, all, all, 1);
			ctl_progress_end(&pg);
			*entry = json_incref(e);
			json_decref(b);
			return 0;
		}
		e = ctl_find_by_id(b, "image_errors", f->image_id);
		if (e != NULL) {
			ctl_progress_end(&pg);
			fprintf(stderr, "skyctl: board %s could not load image %s: ", f->board, f->image);
			ctl_put_clean(stderr, ctl_jstr(e, "error", "no reason given"));
			fprintf(stderr, "; see the controller's log, and 'skyctl image verify %s'\n", f->image_id);
			json_decref(b);
			return -EIO;
		}
		if (strcmp(ctl_jstr(b, "state", ""), "offline") == 0) {
			ctl_progress_end(&pg);
			ctl_err("board %s went offline before it had image %s; fetch it again once the board is "
				"back online", f->board, f->image);
			json_decref(b);
			return -ENOTCONN;
		}
		e = ctl_find_by_id(b, "fetching", f->image_id);
		if (e != NULL && json_is_integer(json_object_get(e, "chunks")) &&
		    json_is_integer(json_object_get(e, "done_chunks"))) {
			done = json_integer_value(json_object_get(e, "done_chunks"));
			all = json_integer_value(json_object_get(e, "chunks"));
			image__fetch_draw(&pg, f, done, all, 0);
		}
		json_decref(b);
		if (ctl_now_ms() >= deadline) {
			char progress[96] = "";
			ctl_progress_end(&pg);
			if (all > 0)
				snprintf(progress, sizeof(progress), " (%" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
					 " chunks)", done, all);
			ctl_err("board %s did not load image %s within %s%s; it may go on: see 'skyctl board show "
				"%s', or wait longer with --timeout", f->board, f->image, timeout, progress, f->board_id);
			return -ETIMEDOUT;
		}
		ctl_sleep_ms(CTL_POLL_MS);
	}
}

static int image__fetch(struct ctl *ctl, const char *arg)
{
	const struct ctl_opts *o = ctl->opts;
	const char *given_board = o->value[FLAG_BOARD];
	struct ctl_req req = { .method = "POST", .path = "/v1/boards", .id = given_board, .tail = "/fetch" };
	json_t *request, *answer = NULL, *entry = NULL;
	char size[32], sha[CTL_SHA_PREFIX + 1];
	struct fetch f;
	const char *s;
	int r;

	request = json_pack("{s:s}", "image", arg);
	if (request == NULL) {
		ctl_err("out of memory");
		return -ENOMEM;
	}
	req.body = request;
	r = ctl_call(ctl, &req, &answer);
	json_decref(request);
	if (r < 0)
		return r;
	/* From here on the ids, not the names, which could change meanwhile. */
	s = json_string_value(json_object_get(answer, "board"));
	snprintf(f.board_id, sizeof(f.board_id), "%s", s != NULL && s[0] != '\0' ? s : given_board);
	s = json_string_value(json_object_get(answer, "image"));
	snprintf(f.image_id, sizeof(f.image_id), "%s", s != NULL && s[0] != '\0' ? s : arg);
	/* They go into messages and to the terminal. */
	ctl_clean_inplace(f.board_id);
	ctl_clean_inplace(f.image_id);
	ctl_name_for(f.board, sizeof(f.board), given_board, f.board_id);
	ctl_name_for(f.image, sizeof(f.image), arg, f.image_id);
	snprintf(f.label, sizeof(f.label), "%s -> %s", arg, given_board);

	if (o->seen & FLAG_BIT(FLAG_NO_WAIT)) {
		if (o->output == CTL_OUTPUT_JSON)
			r = ctl_print_json(answer);
		else
			printf("board %s is loading image %s; follow it with 'skyctl board show %s'\n", f.board,
			       f.image, f.board_id);
		goto done;
	}
	r = image__fetch_wait(ctl, &f, &entry);
	if (r < 0)
		goto done;
	if (o->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(entry);
		goto done;
	}
	printf("board %s has image %s in its RAM (", f.board, f.image);
	ctl_put_clean(stdout, ctl_jbytes(entry, "size_bytes", size, sizeof(size)));
	fputs(", sha256 ", stdout);
	ctl_put_clean(stdout, ctl_jsha(entry, "sha256", sha, sizeof(sha)));
	fputs(")\n", stdout);
done:
	json_decref(entry);
	json_decref(answer);
	return r;
}

/* ---- bare metal ---------------------------------------------------------- */

/* obj[key] = the value of flag f, when it was given (checked to be UTF-8
 * by ctl_check_flag_values()). */
static int ctl_set_flag(json_t *obj, const struct ctl_opts *o, const char *key, int f)
{
	json_t *v;

	if (!(o->seen & FLAG_BIT(f)))
		return 0;
	v = json_string(o->value[f]);
	if (v == NULL || json_object_set_new(obj, key, v) < 0) {
		ctl_err("out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int board__boot(struct ctl *ctl, const char *arg)
{
	const struct ctl_opts *o = ctl->opts;
	struct ctl_req req = { .method = "POST", .path = "/v1/boards", .id = arg, .tail = "/boot" };
	json_t *request, *answer = NULL;
	char id[CTL_MAX_ID + 1], board[2 * CTL_MAX_ID + 8];
	const char *s;
	int r;

	request = json_object();
	if (request == NULL) {
		ctl_err("out of memory");
		return -ENOMEM;
	}
	r = ctl_set_flag(request, o, "kernel", FLAG_KERNEL);
	if (r == 0)
		r = ctl_set_flag(request, o, "initrd", FLAG_INITRD);
	if (r == 0)
		r = ctl_set_flag(request, o, "cmdline", FLAG_CMDLINE);
	if (r == 0) {
		req.body = request;
		r = ctl_call(ctl, &req, &answer);
	}
	json_decref(request);
	if (r < 0)
		return r;
	if (o->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
		goto done;
	}
	s = json_string_value(json_object_get(answer, "board"));
	snprintf(id, sizeof(id), "%s", s != NULL && s[0] != '\0' ? s : arg);
	ctl_clean_inplace(id);
	ctl_name_for(board, sizeof(board), arg, id);
	fputs("board ", stdout);
	ctl_put_clean(stdout, board);
	fputs(" is booting ", stdout);
	ctl_put_clean(stdout, o->value[FLAG_KERNEL]);
	fputs(" on bare metal\n", stdout);
	fprintf(stderr, "Its state is 'baremetal' until its firmware comes back; see 'skyctl board show ");
	ctl_put_clean(stderr, id);
	fprintf(stderr, "'.\n");
done:
	json_decref(answer);
	return r;
}

/* ---- guests -------------------------------------------------------------- */

/* A string field that may be null: "none" for null, "-" when missing. */
static const char *ctl_jopt(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v) && json_string_value(v)[0] != '\0')
		return json_string_value(v);
	return json_is_null(v) || json_is_string(v) ? "none" : "-";
}

/* "0000:00:03.0, 0000:00:04.0", "none" or "-". */
static const char *ctl_jdevices(json_t *obj, char *buf, size_t len)
{
	json_t *list = json_object_get(obj, "devices"), *d;
	size_t i, n = 0;

	if (!json_is_array(list))
		return "-";
	if (json_array_size(list) == 0)
		return "none";
	buf[0] = '\0';
	json_array_foreach(list, i, d) {
		int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", json_is_string(d) ? json_string_value(d) : "?");
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

/* For a table: the first device and how many more, "0000:00:03.0+2". */
static const char *ctl_jdevices_short(json_t *obj, char *buf, size_t len)
{
	json_t *list = json_object_get(obj, "devices");
	const char *first = json_string_value(json_array_get(list, 0));

	if (!json_is_array(list))
		return "-";
	if (json_array_size(list) == 0)
		return "none";
	if (json_array_size(list) == 1)
		snprintf(buf, len, "%.64s", first ? first : "?");
	else
		snprintf(buf, len, "%.64s+%zu", first ? first : "?", json_array_size(list) - 1);
	return buf;
}

/* s cut to at most cols columns, ending in "..." when cut, never in the
 * middle of a UTF-8 character; buf holds at least 4 * cols + 1 bytes. */
static const char *ctl_cut(const char *s, size_t cols, char *buf, size_t len)
{
	size_t n = 0, w = 0;

	if (ctl_width(s) <= cols)
		return s;
	for (size_t i = 0; s[i] != '\0' && w + 3 < cols;) {
		size_t clen = 1;
		while (((unsigned char)s[i + clen] & 0xc0) == 0x80)
			clen++;
		if (n + clen + 4 > len)
			break;
		memcpy(buf + n, s + i, clen);
		n += clen;
		i += clen;
		w++;
	}
	memcpy(buf + n, "...", 4);
	return buf;
}

/* The labelled lines of a GUEST. */
static void guest__print(json_t *g)
{
	json_t *mv = json_object_get(g, "memory_bytes");
	char buf[32], mem[32], line[256], devices[CTL_MAX_DEVICES * 24];

	ctl_field("ID", ctl_jstr(g, "id", "-"));
	ctl_field("Name", ctl_jstr(g, "name", "-"));
	ctl_field("Board", ctl_jstr(g, "board", "-"));
	ctl_field("State", ctl_jstr(g, "state", "-"));
	ctl_field("Desired", ctl_jstr(g, "desired", "-"));
	ctl_field("Backend", ctl_jstr(g, "backend", "-"));
	ctl_field("vCPUs", ctl_jint(g, "vcpus", buf, sizeof(buf)));
	if (json_is_integer(mv))
		snprintf(line, sizeof(line), "%s (%" JSON_INTEGER_FORMAT " bytes)",
			 ctl_jbytes(g, "memory_bytes", mem, sizeof(mem)), json_integer_value(mv));
	else
		snprintf(line, sizeof(line), "-");
	ctl_field("Memory", line);
	ctl_field("Kernel", ctl_jopt(g, "kernel"));
	ctl_field("Initrd", ctl_jopt(g, "initrd"));
	ctl_field("Disk", ctl_jopt(g, "disk"));
	ctl_field("Command line", ctl_jopt(g, "cmdline"));
	ctl_field("Devices", ctl_jdevices(g, devices, sizeof(devices)));
	ctl_field_lines("Error", ctl_jopt(g, "error"));
	ctl_field("Created", ctl_jstr(g, "created", "-"));
}

/* A GUEST answer must have an id; anything else is not our controller. */
static int guest__check(json_t *g)
{
	if (json_is_string(json_object_get(g, "id")))
		return 0;
	ctl_err("the controller's answer has no guest id; is it a Skyroot controller of the same version (%s)?",
		SKY_VERSION);
	return -EPROTO;
}

static int guest__create(struct ctl *ctl, const char *arg)
{
	const struct ctl_opts *o = ctl->opts;
	json_t *request, *devices = NULL, *answer = NULL;
	int r = -ENOMEM;

	(void)arg;

	request = json_object();
	if (request == NULL)
		goto fail_oom;
	r = ctl_set_flag(request, o, "name", FLAG_NAME);
	if (r == 0)
		r = ctl_set_flag(request, o, "board", FLAG_BOARD);
	if (r == 0)
		r = ctl_set_flag(request, o, "kernel", FLAG_KERNEL);
	if (r == 0)
		r = ctl_set_flag(request, o, "initrd", FLAG_INITRD);
	if (r == 0)
		r = ctl_set_flag(request, o, "disk", FLAG_DISK);
	if (r == 0)
		r = ctl_set_flag(request, o, "cmdline", FLAG_CMDLINE);
	if (r == 0)
		r = ctl_set_flag(request, o, "backend", FLAG_BACKEND);
	if (r < 0)
		goto done;
	/* What is not given is the controller's default. */
	r = -ENOMEM;
	if ((o->seen & FLAG_BIT(FLAG_VCPUS)) &&
	    json_object_set_new(request, "vcpus", json_integer((json_int_t)o->vcpus)) < 0)
		goto fail_oom;
	if ((o->seen & FLAG_BIT(FLAG_MEMORY)) &&
	    json_object_set_new(request, "memory_bytes", json_integer((json_int_t)o->memory)) < 0)
		goto fail_oom;
	if (o->ndevices > 0) {
		devices = json_array();
		if (devices == NULL)
			goto fail_oom;
		for (size_t i = 0; i < o->ndevices; i++)
			if (json_array_append_new(devices, json_string(o->device_addr[i])) < 0)
				goto fail_oom;
		if (json_object_set(request, "devices", devices) < 0)
			goto fail_oom;
	}
	r = ctl_request(ctl, "POST", "/v1/guests", NULL, request, &answer);
	if (r < 0)
		goto done;
	if (o->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
		goto done;
	}
	r = guest__check(answer);
	if (r < 0)
		goto done;
	guest__print(answer);
	fputs("Follow its console with 'skyctl guest console ", stderr);
	ctl_put_clean(stderr, ctl_jstr(answer, "name", o->value[FLAG_NAME]));
	fputs(" --follow'.\n", stderr);
	goto done;

fail_oom:
	ctl_err("out of memory");
done:
	json_decref(answer);
	json_decref(devices);
	json_decref(request);
	return r;
}

static int guest__list(struct ctl *ctl, const char *arg)
{
	static const char *const header[] = {
		"ID", "NAME", "BOARD", "STATE", "DESIRED", "BACKEND", "VCPUS", "MEMORY", "DEVICES", "ERROR",
	};
	struct ctl_table t = { 0 };
	json_t *answer = NULL, *list, *g;
	size_t i;
	int r;

	(void)arg;

	r = ctl_request(ctl, "GET", "/v1/guests", NULL, NULL, &answer);
	if (r < 0)
		return r;
	list = ctl_list_of(ctl, answer, "guests");
	if (list == NULL) {
		r = -EPROTO;
		goto done;
	}
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(list);
		goto done;
	}
	r = ctl_table_init(&t, 10, json_array_size(list) + 1);
	if (r == 0)
		r = ctl_table_add(&t, header);
	json_array_foreach(list, i, g) {
		char vcpus[32], mem[32], devices[96], error[4 * CTL_ERROR_COLUMNS + 1];
		json_t *e = json_object_get(g, "error");
		const char *row[] = {
			ctl_jstr(g, "id", "-"),
			ctl_jstr(g, "name", "-"),
			ctl_jstr(g, "board", "-"),
			ctl_jstr(g, "state", "-"),
			ctl_jstr(g, "desired", "-"),
			ctl_jstr(g, "backend", "-"),
			ctl_jint(g, "vcpus", vcpus, sizeof(vcpus)),
			ctl_jbytes(g, "memory_bytes", mem, sizeof(mem)),
			ctl_jdevices_short(g, devices, sizeof(devices)),
			json_is_string(e) && json_string_value(e)[0] != '\0'
				? ctl_cut(json_string_value(e), CTL_ERROR_COLUMNS, error, sizeof(error))
				: "-",
		};
		if (r == 0)
			r = ctl_table_add(&t, row);
	}
	if (r < 0) {
		ctl_err("out of memory");
		goto done;
	}
	ctl_table_print(&t, stdout, 0);
	if (json_array_size(list) == 0)
		fprintf(stderr, "No guests; create one with 'skyctl guest create --name NAME --board auto "
				"--kernel IMAGE'.\n");
done:
	ctl_table_free(&t);
	json_decref(answer);
	return r;
}

static int guest__show(struct ctl *ctl, const char *arg)
{
	json_t *answer = NULL;
	int r;

	r = ctl_request(ctl, "GET", "/v1/guests", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON)
		r = ctl_print_json(answer);
	else if ((r = guest__check(answer)) == 0)
		guest__print(answer);
	json_decref(answer);
	return r;
}

/* POST /v1/guests/{id}/start or /stop: the desired state changes, the
 * board follows. */
static int guest__set_desired(struct ctl *ctl, const char *arg, const char *verb)
{
	char tail[16];
	struct ctl_req req = { .method = "POST", .path = "/v1/guests", .id = arg, .tail = tail };
	json_t *answer = NULL;
	char who[2 * CTL_MAX_ID + 8];
	int r;

	snprintf(tail, sizeof(tail), "/%s", verb);
	r = ctl_call(ctl, &req, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
		goto done;
	}
	r = guest__check(answer);
	if (r < 0)
		goto done;
	ctl_name_for(who, sizeof(who), ctl_jstr(answer, "name", arg), ctl_jstr(answer, "id", arg));
	fputs("guest ", stdout);
	ctl_put_clean(stdout, who);
	fputs(": desired state ", stdout);
	ctl_put_clean(stdout, ctl_jstr(answer, "desired", "-"));
	fputs(", state now ", stdout);
	ctl_put_clean(stdout, ctl_jstr(answer, "state", "-"));
	fputc('\n', stdout);
done:
	json_decref(answer);
	return r;
}

static int guest__start(struct ctl *ctl, const char *arg)
{
	return guest__set_desired(ctl, arg, "start");
}

static int guest__stop(struct ctl *ctl, const char *arg)
{
	return guest__set_desired(ctl, arg, "stop");
}

static int guest__delete(struct ctl *ctl, const char *arg)
{
	json_t *answer = NULL;
	int r;

	r = ctl_request(ctl, "DELETE", "/v1/guests", arg, NULL, &answer);
	if (r < 0)
		return r;
	if (ctl->opts->output == CTL_OUTPUT_JSON) {
		r = ctl_print_json(answer);
	} else {
		fputs("deleted guest ", stdout);
		ctl_put_clean(stdout, ctl_jstr(answer, "deleted", arg));
		fputc('\n', stdout);
	}
	json_decref(answer);
	return r;
}

/* The console's bytes go to stdout as they are: it is a serial console,
 * its escape sequences are meant for a terminal. */
static int guest__console(struct ctl *ctl, const char *arg)
{
	int follow = (ctl->opts->seen & FLAG_BIT(FLAG_FOLLOW)) != 0;
	struct ctl_sink sink = { .fd = STDOUT_FILENO, .follow = follow, .what = "the console" };
	const struct ctl_req req = {
		.method = "GET", .path = "/v1/guests", .id = arg, .tail = "/console",
		.query = follow ? "follow=1" : NULL, .sink = &sink,
	};
	int r;

	/* Nothing may sit in stdio's buffer in front of the bytes. */
	fflush(stdout);
	r = ctl_call(ctl, &req, NULL);
	if (r == 0 && !follow && sink.written == 0 && isatty(STDERR_FILENO)) {
		fputs("(guest ", stderr);
		ctl_put_clean(stderr, arg);
		fputs(" has written nothing to its console yet)\n", stderr);
	}
	return r;
}

/* ---- main -------------------------------------------------------------- */

/* Resolve the words to a command; prints the usage error and returns NULL. */
static const struct ctl_command *ctl_resolve(const struct ctl_opts *o)
{
	const struct ctl_command *c;
	size_t nargs;

	if (o->nwords == 0) {
		ctl_err("no command given");
		ctl_usage(stderr);
		return NULL;
	}
	if (ctl_find_command(o->words[0], NULL) == NULL) {
		ctl_err("unknown command '%s'", o->words[0]);
		ctl_usage(stderr);
		return NULL;
	}
	if (o->nwords == 1) {
		ctl_err("'%s' needs a command", o->words[0]);
		ctl_group_usage(stderr, o->words[0]);
		return NULL;
	}
	c = ctl_find_command(o->words[0], o->words[1]);
	if (c == NULL) {
		ctl_err("unknown command '%s %s'", o->words[0], o->words[1]);
		ctl_group_usage(stderr, o->words[0]);
		return NULL;
	}
	nargs = o->nwords - 2;
	if (c->arg == NULL && nargs > 0) {
		ctl_err("'%s %s' takes no argument, but '%s' was given", c->group, c->verb, o->words[2]);
		goto fail;
	}
	if (c->arg != NULL && nargs != 1) {
		if (nargs == 0)
			ctl_err("'%s %s' needs %s", c->group, c->verb, c->arg);
		else
			ctl_err("'%s %s' takes one %s, but %zu were given", c->group, c->verb, c->arg, nargs);
		goto fail;
	}
	size_t arg_max = c->arg_max ? c->arg_max : CTL_MAX_ID;
	if (c->arg != NULL && (o->words[2][0] == '\0' || strlen(o->words[2]) > arg_max)) {
		ctl_err("%s must be 1 to %zu bytes long", c->arg, arg_max);
		goto fail;
	}
	unsigned stray = o->seen & FLAGS_COMMAND & ~c->flags;
	unsigned missing = c->required & ~o->seen;
	for (int f = 0; f < FLAG__COUNT; f++) {
		if (stray & FLAG_BIT(f)) {
			ctl_err("--%s is not an option of '%s %s'", ctl_flags[f].name, c->group, c->verb);
			goto fail;
		}
		if (missing & FLAG_BIT(f)) {
			ctl_err("'%s %s' needs --%s %s", c->group, c->verb, ctl_flags[f].name, ctl_flag_metavar(c, f));
			goto fail;
		}
	}
	return c;
fail:
	ctl_command_usage(stderr, c, 0);
	return NULL;
}

static int ctl_finish_output(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write the output: %s", strerror(errno));
		return CTL_EXIT_ERROR;
	}
	return code;
}

int main(int argc, char **argv)
{
	struct ctl_opts opts = { 0 };
	struct ctl ctl = { 0 };
	const struct ctl_command *c;
	int r;

	if (ctl_parse_argv(argc, argv, &opts) < 0) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (opts.seen & FLAG_BIT(FLAG_VERSION)) {
		printf("skyctl %s\n", SKY_VERSION);
		return ctl_finish_output(CTL_EXIT_OK);
	}
	if (opts.nwords > 0 && strcmp(opts.words[0], "help") == 0)
		return ctl_finish_output(ctl_help(opts.words + 1, opts.nwords - 1));
	if (opts.seen & FLAG_BIT(FLAG_HELP))
		return ctl_finish_output(ctl_help(opts.words, opts.nwords));
	c = ctl_resolve(&opts);
	if (c == NULL)
		return CTL_EXIT_USAGE;
	if (ctl_check_flag_values(&opts) < 0) {
		ctl_command_usage(stderr, c, 0);
		return CTL_EXIT_USAGE;
	}

	ctl.opts = &opts;
	if (ctl_configure(&ctl) < 0)
		return CTL_EXIT_ERROR;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ctl_err("cannot initialise libcurl");
		return CTL_EXIT_ERROR;
	}
	ctl.curl = curl_easy_init();
	if (ctl.curl == NULL) {
		ctl_err("cannot initialise libcurl");
		r = -ENOMEM;
		goto fail_global;
	}
	r = c->run(&ctl, opts.nwords > 2 ? opts.words[2] : NULL);
	curl_easy_cleanup(ctl.curl);
fail_global:
	curl_global_cleanup();
	return ctl_finish_output(r < 0 ? CTL_EXIT_ERROR : CTL_EXIT_OK);
}
