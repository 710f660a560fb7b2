/* Work off the loop: fn on libuv's thread pool, then done back on the
 * loop (the image cache's chunk checks, images.h ops.work).  Each request
 * is its own allocation and needs nothing of its caller afterwards. */
#ifndef SKY_AGENT_OFFLOOP_H
#define SKY_AGENT_OFFLOOP_H
#include <uv.h>

/* 0, or a negative errno and neither is called.  A request cancelled
 * before it ran runs work on the loop, then done. */
int agent_offloop(uv_loop_t *loop, void (*work)(void *arg), void (*done)(void *arg), void *arg);

#endif
