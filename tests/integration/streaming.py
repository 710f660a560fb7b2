#!/usr/bin/env python3
"""Integration tests of the controller's memory while it streams one image
to many boards at once (controller/skyrootd/agentlink_priv.h has the
bound and its arithmetic; al_pool.c the chunk buffers):
  pool_bound  the chunk buffer pool (GET /metrics) never allocates past
              its bound, that bound is small, every buffer is back after;
  rss_bound   the controller's peak RSS while streaming (VmHWM, reset
              before) grows by no more than the pool's bound, the chunks
              its chunk cache holds (on by default on PostgreSQL; within
              its own bound) and a little for the rest; a sanitizer build
              skips it (ASan's quarantine keeps freed memory on purpose).
Usage: streaming.py CASE (same environment as fleet.py)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SKY_SLOW, Fail, Fleet, PeakRss, board_fixture, check, metrics, run_cases,  # noqa: E402
                      wait_for)
from images import CHUNK, memfd_sha256, push, rand_file  # noqa: E402

BOARDS = 12
CHUNKS = 24
# The pool's bound on any machine: (16 jobs + 4 loops sealing at most)
# buffers of 1 MiB + 16.3 KiB = 20.3 MiB (agentlink_priv.h).
POOL_AIM = 21 << 20
# What else grows while boards stream: sessions' TLS buffers, SQLite's
# reader caches, the threads' arenas (measured about 4 MiB with 32 boards).
RSS_SLACK = 8 << 20
# On PostgreSQL, libpq's part: each of the thread pool's 4 workers reads
# chunks on a connection of its own, whose input buffer stays as large as
# the largest row read (a 1 MiB chunk), and a 1 MiB result exists while it
# is copied out: 2 MiB a worker.  (Measured without the chunk cache: 25.8
# MiB of growth against the pool's 17.3 MiB.)
PG_SLACK = 8 << 20


def pool(f):
    m = metrics(f)
    names = ("in_use", "allocated", "peak", "limit")
    got = {n: m.get(f"skyroot_chunk_pool_{n}_bytes") for n in names}
    check(None not in got.values(), f"the chunk pool's gauges in /metrics: {got}")
    return got


def stream_to_many(f):
    """BOARDS boards online, then one image of CHUNKS chunks fetched by all
    of them at once; returns (the controller's peak RSS over the fetch, its
    RSS before, the image's SHA-256, the agents)."""
    f.start()
    path = os.path.join(f.tmp, "img")
    want = rand_file(path, CHUNKS * CHUNK)
    st, img = push(f, path, "img")
    check(st == 201, f"push: {st} {img}")
    tok = f.token(uses=BOARDS)["token"]
    agents = []
    for i in range(BOARDS):
        root = board_fixture(os.path.join(f.tmp, f"board{i}"), "a", f"7d1e0c4a-51f2-4c36-9d0e-{i:012d}",
                             f"stream-{i}")
        agents.append(f.agent("a", token=tok, root=root, name=f"s{i}", hb=1000,
                              extra=["--cache-max", f"{CHUNKS + 16}M"]))
    wait_for(lambda: len(f.online()) == BOARDS, 60 * SKY_SLOW, f"{BOARDS} boards online")
    bids = sorted(f.online())
    before = pool(f)
    check(before["allocated"] == 0 and before["peak"] == 0,
          f"no chunk buffer is allocated before any streaming: {before}")
    rss = PeakRss(f.ctl.p.pid)
    t0 = time.time()
    for bid in bids:
        st, body = f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "img"})
        check(st == 202, f"fetch on {bid}: {st} {body}")

    def all_ready():
        ready = 0
        for bid in bids:
            b = f.api("GET", f"/v1/boards/{bid}")[1]
            if b.get("image_errors"):
                raise Fail(f"board {bid}: {b['image_errors']}")
            ready += any(i["id"] == img["id"] for i in b.get("images", []))
        return ready == len(bids)
    try:
        wait_for(all_ready, 120 * SKY_SLOW, f"{BOARDS} boards to fetch the image", interval=0.2)
    finally:
        peak = rss.stop()
    secs = time.time() - t0
    print(f"{BOARDS} boards x {CHUNKS} MiB in {secs:.2f} s; controller RSS {rss.base / 1048576:.1f} MiB before, "
          f"peak {peak / 1048576:.1f} MiB ({rss.how})")
    for p in agents[:3]:
        check(memfd_sha256(p.p.pid, img["id"]) == want, "the right bytes on the boards")
    return peak, rss.base


def case_pool_bound(f):
    stream_to_many(f)
    after = wait_for(lambda: (lambda p: p if p["in_use"] == 0 else None)(pool(f)), 10 * SKY_SLOW,
                     "every chunk buffer back in the pool")
    print(f"chunk pool: peak {after['peak'] / 1048576:.2f} MiB, bound {after['limit'] / 1048576:.2f} MiB, "
          f"allocated now {after['allocated'] / 1048576:.2f} MiB")
    check(0 < after["limit"] <= POOL_AIM, f"the pool's bound is at most {POOL_AIM >> 20} MiB: {after}")
    check(0 < after["peak"] <= after["limit"], f"the pool never allocated past its bound: {after}")
    check(after["allocated"] <= after["peak"], f"what is allocated now is within the peak: {after}")
    # Twelve boards with a window of 16 each ask for far more than the
    # pool holds: it was used to its bound, less the transients at most.
    check(after["peak"] >= after["limit"] // 2, f"the streaming used the pool (not buffers of its own): {after}")


def case_rss_bound(f):
    peak, base = stream_to_many(f)
    lim = min(pool(f)["limit"], POOL_AIM)
    m = metrics(f)
    cache, cache_lim = m["skyroot_chunk_cache_bytes"], m["skyroot_chunk_cache_limit_bytes"]
    check(cache <= cache_lim and cache <= CHUNKS * CHUNK,
          f"the chunk cache holds at most its bound and the image: {cache} of {cache_lim} bytes")
    grew = peak - base
    slack = RSS_SLACK + (PG_SLACK if f.engine == "postgresql" else 0)
    check(grew <= lim + cache + slack,
          f"the controller's RSS grew by {grew / 1048576:.1f} MiB while {BOARDS} boards streamed, over the "
          f"pool's bound {lim / 1048576:.1f} MiB + the chunk cache's {cache / 1048576:.1f} MiB + "
          f"{slack >> 20} MiB")


def sanitized():
    if len(sys.argv) == 2 and sys.argv[1] == "rss_bound" and SKY_SLOW > 1:
        return ("the RSS of a sanitizer build is not the product's (ASan keeps freed memory in its "
                "quarantine); the pool_bound case runs there")
    return None


def main():
    return run_cases(globals(), "sky-stream", Fleet, skip=sanitized)


if __name__ == "__main__":
    sys.exit(main())
