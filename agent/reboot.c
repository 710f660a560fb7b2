/* Rebooting the board on the controller's order (reboot.h). */
#include <errno.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/answer.h"
#include "agent/reboot.h"
#include "common/log.h"

/* Tell the controller what became of its reboot order (and log it). */
#define reboot__answer(send, ctx, req, outcome, ...)                                                             \
	agent_answer_order(send, ctx, SKYROOT__ENVELOPE__BODY_REBOOT_RESULT, req, outcome, __VA_ARGS__)

/* Run cmd detached (a grandchild, so no zombie is left): 0 or -errno. */
static int reboot__spawn(const char *cmd, bool graceful, bool network)
{
	char *argv[] = { (char *)cmd, NULL };
	char *envp[] = { graceful ? "SKY_REBOOT_TYPE=graceful" : "SKY_REBOOT_TYPE=force",
			 network ? "SKY_REBOOT_NETWORK=1" : "SKY_REBOOT_NETWORK=0", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
			 NULL };
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		pid_t gc = fork();
		if (gc == 0) {
			execve(cmd, argv, envp);
			_exit(127);
		}
		_exit(gc < 0 ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

void agent_reboot(const struct agent_config *cfg, uint64_t req, const Skyroot__Reboot *rb, agent_answer_send send,
		  void *ctx)
{
	int r;

	if (!cfg->allow_reboot) {
		reboot__answer(send, ctx, req, SKYROOT__BOOT_OUTCOME__BOOT_REFUSED,
			       "this agent runs without --allow-reboot (the firmware's init passes it; on any other "
			       "host the controller may not reboot it)");
		return;
	}
	if (cfg->reboot_command[0] && access(cfg->reboot_command, X_OK) < 0) {
		reboot__answer(send, ctx, req, SKYROOT__BOOT_OUTCOME__BOOT_FAILED, "cannot run --reboot-command %s: %s",
			       cfg->reboot_command, strerror(errno));
		return;
	}
	log_info("reboot ordered by the controller (%s%s)%s%s", rb->graceful ? "graceful" : "forced",
		 rb->network ? ", next boot from the network" : "", cfg->reboot_command[0] ? ": running " : "",
		 cfg->reboot_command);
	reboot__answer(send, ctx, req, SKYROOT__BOOT_OUTCOME__BOOT_ACCEPTED, NULL);
	if (cfg->reboot_command[0]) {
		r = reboot__spawn(cfg->reboot_command, rb->graceful, rb->network);
		if (r < 0)
			reboot__answer(send, ctx, req, SKYROOT__BOOT_OUTCOME__BOOT_FAILED,
				       "--reboot-command %s could not be started: %s", cfg->reboot_command,
				       strerror(-r));
		return;
	}
	/* The firmware holds no state of its own on disk: sync is for any
	 * filesystem an operator mounted; a forced restart skips it. */
	if (rb->graceful)
		sync();
	reboot(LINUX_REBOOT_CMD_RESTART);
	reboot__answer(send, ctx, req, SKYROOT__BOOT_OUTCOME__BOOT_FAILED, "reboot(2) failed: %s", strerror(errno));
}
