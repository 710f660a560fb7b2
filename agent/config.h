/* skyagent configuration: command-line flags, falling back to the kernel
 * command line (skyroot.controller= skyroot.token= skyroot.ca=) so the
 * firmware needs no configuration file. */
#ifndef SKY_AGENT_CONFIG_H
#define SKY_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/ctlset.h"

#define AGENT_MAX_TOKEN 128

struct agent_config {
	/* The controllers, tried in this order (agent/ctlset.h): --controller
	 * or skyroot.controller= (comma separated), else DHCP, else DNS SRV. */
	struct sky_hostport controllers[AGENT_MAX_CONTROLLERS];
	size_t n_controllers;
	char controller_host[256];   /* the first: host name or IP literal (IPv6 without brackets) */
	uint16_t controller_port;    /* the first's port: default 7443 when HOST has no :PORT */
	char token[AGENT_MAX_TOKEN]; /* may be empty: then we can only reconnect */
	uint8_t ca_pin[32];          /* SHA-256 of the CA certificate's DER */
	int have_ca_pin;
	char sysfs_root[4096];       /* default "/sys" */
	char procfs_root[4096];      /* default "/proc" */
	char devfs_root[4096];       /* default "/dev" */
	char cmdline_path[4096];     /* default "<procfs_root>/cmdline" */
	char controller_dhcp[4096];  /* --controller-from-dhcp: "" = none (agent/dhcp.h) */
	int controller_srv;          /* --controller-from-srv: then DNS SRV (agent/srv.h) */
	int log_level;               /* SKY_LOG_* from common/log.h, default INFO */
	uint64_t heartbeat_ms;       /* default 10000; --heartbeat-interval for tests */
	int once;                    /* --once: exit after the first successful session setup (tests) */
	uint64_t cache_max;          /* --cache-max: RAM for images; 0 = half of physical memory */
	char qemu_path[4096];        /* --qemu: "" = qemu-system-x86_64 from PATH */
	char skyvmm_path[4096];      /* --skyvmm: "" = libskyvmm's default */
	char bridge[16];             /* --bridge: "" = br0 (guests' NICs, agent/nics.h) */
	int allow_kexec;             /* --allow-kexec: bare-metal boot may replace this OS */
	int allow_reboot;            /* --allow-reboot: the controller may reboot this machine */
	char reboot_command[4096];   /* --reboot-command: run instead of reboot(2); "" = reboot(2) */
	char identity_dir[4096];     /* --identity-dir: keep key + certificate here (a tmpfs) */
	/* The TPM enrollment uses (agent/tpm_link.h): a tpm2-tss TCTI string;
	 * "" = none.  --tpm TCTI, else device:DEVFS-ROOT/tpmrm0 when it exists,
	 * unless --no-tpm.  tpm_explicit: --tpm was given (a TPM that does not
	 * answer is then an error, not a board without one). */
	char tpm_tcti[4200];
	int tpm_explicit;
};

/* Parse argv with the shared argument layer (common/args.h: --flag VALUE,
 * --flag=VALUE, no abbreviations, did-you-mean for a mistyped flag; values
 * read by common/parse.h) and fill
 * what is absent from the kernel command line at cfg->cmdline_path.
 * Returns 0; -EINVAL with a message written into err (size errlen) that says
 * what is wrong and what to do; 1 when --help or --version was handled
 * (the text is printed to stdout).  On failure *cfg may be partly written
 * but the caller must not use it. */
int agent_config_parse(struct agent_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Find "key=value" in a kernel command line (space separated, double quotes
 * allowed around values as the kernel does).  Copies the value (bounded by
 * outlen, -ENAMETOOLONG if it does not fit).  0, -ENOENT, -ENAMETOOLONG. */
int agent_cmdline_get(const char *cmdline, const char *key, char *out, size_t outlen);

void agent_usage(FILE *f);

#endif
