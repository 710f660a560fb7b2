#include "bench_board.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"

void bench_board_inventory(uint32_t tag, unsigned i, struct inventory *inv)
{
	memset(inv, 0, sizeof(*inv));
	snprintf(inv->cpu_model, sizeof(inv->cpu_model), "AMD EPYC 7302 16-Core Processor");
	inv->cpus = 32;
	inv->n_virt_flags = 2;
	snprintf(inv->virt_flags[0], sizeof(inv->virt_flags[0]), "svm");
	snprintf(inv->virt_flags[1], sizeof(inv->virt_flags[1]), "npt");
	inv->memory_bytes = 128ull << 30;
	inv->numa_nodes = 2;
	snprintf(inv->dmi_vendor, sizeof(inv->dmi_vendor), "Skyroot Bench");
	snprintf(inv->dmi_product, sizeof(inv->dmi_product), "Simulated Board");
	snprintf(inv->dmi_serial, sizeof(inv->dmi_serial), "SB%08" PRIx32 "%06u", tag, i);
	/* A distinct DMI product UUID per board and per run (the tag). */
	snprintf(inv->dmi_uuid, sizeof(inv->dmi_uuid), "%08" PRIx32 "-5b0a-4000-8000-%012x", tag, i);
	inv->firmware = INV_FW_UEFI;
	inv->kvm = true;
	inv->n_nics = 1;
	snprintf(inv->nics[0].name, sizeof(inv->nics[0].name), "eth0");
	snprintf(inv->nics[0].mac, sizeof(inv->nics[0].mac), "52:54:%02x:%02x:%02x:%02x", (tag >> 8) & 0xff,
		 tag & 0xff, (i >> 8) & 0xff, i & 0xff);
	inv->nics[0].link = true;
	inv->nics[0].speed_mbps = 25000;
	snprintf(inv->kernel_version, sizeof(inv->kernel_version), "6.1.0-28-cloud-amd64");
	snprintf(inv->hostname, sizeof(inv->hostname), "bench-%08" PRIx32 "-%05u", tag, i);
}

int bench_board_option(struct agent_config *cfg, const char *prog, const char *name, const char *value)
{
	if (strcmp(name, "controller") == 0) {
		if (sky_parse_hostport(value, cfg->controller_host, sizeof(cfg->controller_host),
				       &cfg->controller_port, 7443) < 0) {
			fprintf(stderr, "%s: bad --controller '%s': expected HOST:PORT\n", prog, value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "ca") == 0) {
		if (sky_parse_ca_pin(value, cfg->ca_pin) < 0) {
			fprintf(stderr, "%s: bad --ca '%s': expected sha256:<64 hex digits> "
					"(the ca_pin of 'skyctl token create')\n", prog, value);
			return -EINVAL;
		}
		cfg->have_ca_pin = 1;
		return 0;
	}
	if (strcmp(name, "token") == 0) {
		if (strlen(value) >= sizeof(cfg->token) || !*value) {
			fprintf(stderr, "%s: bad --token: empty or longer than %zu\n", prog, sizeof(cfg->token) - 1);
			return -EINVAL;
		}
		snprintf(cfg->token, sizeof(cfg->token), "%s", value);
		return 0;
	}
	if (strcmp(name, "log-level") == 0) {
		int lvl = sky_log_parse_level(value);
		if (lvl < 0) {
			fprintf(stderr, "%s: bad --log-level '%s': error, warn, info or debug\n", prog, value);
			return -EINVAL;
		}
		cfg->log_level = lvl;
		return 0;
	}
	fprintf(stderr, "%s: no option --%s\n", prog, name);
	return -EINVAL;
}

int bench_board_tag(const char *prog, const char *value, uint32_t *tag)
{
	if (strlen(value) != 8 || sky_parse_hex(value, (uint8_t[4]){0}, 4) < 0) {
		fprintf(stderr, "%s: bad --tag '%s': 8 hex digits\n", prog, value);
		return -EINVAL;
	}
	*tag = (uint32_t)strtoul(value, NULL, 16);
	return 0;
}
