/* Work off the loop: see offloop.h. */
#include "agent/offloop.h"

#include <errno.h>
#include <stdlib.h>

struct offloop {
	uv_work_t req;
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
};

static void offloop_run(uv_work_t *req)
{
	struct offloop *w = req->data;
	w->work(w->arg);
}

static void offloop_after(uv_work_t *req, int status)
{
	struct offloop *w = req->data;
	if (status < 0) /* cancelled: not run */
		w->work(w->arg);
	w->done(w->arg);
	free(w);
}

int agent_offloop(uv_loop_t *loop, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	struct offloop *w = malloc(sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->req.data = w;
	w->work = work;
	w->done = done;
	w->arg = arg;
	r = uv_queue_work(loop, &w->req, offloop_run, offloop_after);
	if (r < 0)
		free(w);
	return r;
}
