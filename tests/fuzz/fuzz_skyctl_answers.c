/* libFuzzer target: skyctl's reading of the controller's answers.  Each
 * input runs one real skyctl command (the command table, its flags, its
 * run function) whose HTTP calls are answered from the input instead of the
 * network (skyctl_http_answer_from, controller/skyctl/http.h): the status and
 * body go through the client's own size limit, JSON reading and error
 * reports, then through the command's tables, detail views, -o json and -o
 * yaml, and its follow-up calls (image fetch polls the board; board boot
 * and guest create --wait ask for the newest event first).  Not here:
 * image push (its body is a file upload), guest console, events --follow
 * and the waits' watches (their answers stream to a sink: here they fail
 * as a transfer error, and a wait says so at once); their error answers
 * take the same path.
 *
 * Input: byte 0 picks the command line (fuzz_cmds below), byte 1 the output
 * (bits 0-1: table, wide, json, yaml; bit 2: --no-headers); then the
 * answers, one per call, each a big-endian u16 HTTP status, a big-endian u16
 * body length and the body (cut short where the input ends).  Past the
 * last answer (or FUZZ_MAX_CALLS) the controller cannot be reached.
 *
 * Beyond no crash, leak or sanitizer report, what must hold:
 *  - a command succeeds only when every call it made was answered 2xx
 *    (version, which also reports an unreachable controller, excepted), and
 *    a failure is a negative errno;
 *  - no command calls past the answers it was given plus one (the failed
 *    call that ends it): no loop goes on against a gone controller. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/skyctl/http.h"
#include "controller/skyctl/skyctl.h"

#define FUZZ_MAX_CALLS 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each line after "skyctl"; "-o MODE" and "--no-headers" are added. */
static const char *const fuzz_cmds[][16] = {
	{"token", "create", "--ttl", "1h", "--uses", "3"},
	{"token", "list"},
	{"token", "revoke", "tok-3f2a9c"},
	{"board", "list"},
	{"board", "show", "rack1-07"},
	{"board", "delete", "rack1-07"},
	{"board", "reenroll-allow", "rack1-07"},
	{"board", "boot", "rack1-07", "--kernel", "vmlinuz", "--initrd", "initrd", "--cmdline", "console=ttyS0",
	 "--no-wait"},
	{"board", "boot", "rack1-07", "--kernel", "vmlinuz", "--timeout", "1s"},
	{"image", "list"},
	{"image", "show", "vmlinuz"},
	{"image", "delete", "vmlinuz"},
	{"image", "verify", "vmlinuz"},
	{"image", "fetch", "vmlinuz", "--board", "rack1-07", "--no-wait"},
	{"image", "fetch", "vmlinuz", "--board", "rack1-07", "--timeout", "1s"},
	{"guest", "create", "--name", "web", "--board", "auto", "--kernel", "vmlinuz", "--initrd", "initrd",
	 "--memory", "1G", "--vcpus", "2", "--device", "0000:00:03.0"},
	{"guest", "list"},
	{"guest", "show", "web"},
	{"guest", "start", "web"},
	{"guest", "stop", "web"},
	{"guest", "delete", "web"},
	{"version"},
	{"events"},
	{"events", "--kind", "guest", "--type", "guest.state", "--id", "gst-1", "--since", "3", "--limit", "5"},
	{"guest", "create", "--name", "web", "--board", "auto", "--kernel", "vmlinuz", "--wait", "--timeout", "1s"},
};
#define FUZZ_NCMDS (sizeof(fuzz_cmds) / sizeof(fuzz_cmds[0]))

static struct skyctl_http *http; /* one curl handle for all inputs */

struct answers {
	const uint8_t *p;
	size_t left;
	unsigned calls;
	bool all_2xx;
};

static int fuzz_answer(void *ud, const struct skyctl_req *req, long *status, const char **body, size_t *len)
{
	struct answers *a = ud;
	size_t n;

	(void)req;
	a->calls++;
	if (a->calls > FUZZ_MAX_CALLS || a->left < 4) {
		a->all_2xx = false;
		return -1;
	}
	*status = (long)a->p[0] << 8 | a->p[1];
	n = (size_t)a->p[2] << 8 | a->p[3];
	a->p += 4;
	a->left -= 4;
	if (n > a->left)
		n = a->left;
	*body = (const char *)a->p;
	*len = n;
	a->p += n;
	a->left -= n;
	if (*status < 200 || *status > 299)
		a->all_2xx = false;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct skyctl ctl = {0};
	(void)argc;
	(void)argv;

	/* Tables and messages are made, and thrown away: the harness (and the
	 * replay's "replay: FILE" lines) write to the stderr they started with. */
	if (!getenv("FUZZ_VERBOSE")) {
		FILE *null = fopen("/dev/null", "w");
		if (!null || !freopen("/dev/null", "w", stdout))
			abort();
		stderr = null;
	}
	if (skyctl_http_open(&ctl) < 0)
		abort();
	http = ctl.http;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const outputs[] = {"table", "wide", "json", "yaml"};
	struct skyctl_opts opts = {0};
	struct skyctl ctl = {0};
	struct answers a;
	const struct skyctl_command *c;
	const char *const *line;
	char *argv[24];
	int argc = 0, r;

	if (size < 2)
		return 0;
	line = fuzz_cmds[data[0] % FUZZ_NCMDS];
	argv[argc++] = "skyctl";
	for (size_t i = 0; i < 16 && line[i]; i++)
		argv[argc++] = (char *)line[i];
	argv[argc++] = "-o";
	argv[argc++] = (char *)outputs[data[1] & 3];
	if (data[1] & 4)
		argv[argc++] = "--no-headers";
	argv[argc] = NULL;

	if (skyctl_args_parse(argc, argv, &opts) < 0 || !(c = skyctl_cmd_resolve(&opts)) ||
	    skyctl_args_check(&opts) < 0)
		abort(); /* the lines above are valid skyctl commands */
	ctl.opts = &opts;
	skyctl_conf_init(&ctl.conf);
	snprintf(ctl.conf.controller, sizeof(ctl.conf.controller), "https://127.0.0.1:7444");
	snprintf(ctl.conf.ca, sizeof(ctl.conf.ca), "/nonexistent/ca.crt");
	snprintf(ctl.conf.token, sizeof(ctl.conf.token), "skt-admin");
	snprintf(ctl.src[SKYCTL_SRC_CONTROLLER], sizeof(ctl.src[0]), "--controller");
	snprintf(ctl.src[SKYCTL_SRC_CA], sizeof(ctl.src[0]), "--ca");
	snprintf(ctl.src[SKYCTL_SRC_TOKEN], sizeof(ctl.src[0]), "--token");
	ctl.http = http;
	a = (struct answers){.p = data + 2, .left = size - 2, .all_2xx = true};
	skyctl_http_answer_from(&ctl, fuzz_answer, &a);

	r = c->run(&ctl, skyctl_cmd_arg(c, &opts));
	fflush(stdout);

	if (r > 0)
		abort(); /* 0 or a negative errno */
	if (r == 0 && !a.all_2xx && strcmp(c->noun, "version") != 0)
		abort(); /* an error answer, or none, passed as success */
	if (a.calls > FUZZ_MAX_CALLS + 1)
		abort(); /* kept calling a controller that no longer answers */
	return 0;
}
