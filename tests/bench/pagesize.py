#!/usr/bin/env python3
"""How SQLite's page size affects 1 MiB chunk writes and reads, as the store
uses them (WAL, one small transaction a chunk, synchronous=NORMAL until the
final FULL commit).  controller/skyrootd/db.c picks the page size from this.

usage: tests/bench/pagesize.py [DIR] [--chunks N]   (DIR on the disk a state folder would use)
"""
import os
import sqlite3
import sys
import tempfile
import time


RUNS = 2


def run(path, page, n, data):
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size={page}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE c(id INTEGER PRIMARY KEY, d BLOB)")
    t = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO c(d) VALUES(?)", (data[i % len(data)],))
        db.execute("COMMIT")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("BEGIN")
    db.execute("INSERT INTO c(d) VALUES(x'00')")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    w = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(1, n + 1):
        db.execute("SELECT d FROM c WHERE id=?", (i,)).fetchone()
    r = time.perf_counter() - t
    db.close()
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    return n / w, n / r


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = 512
    if "--chunks" in sys.argv:
        n = int(sys.argv[sys.argv.index("--chunks") + 1])
        args = [a for a in args if a != str(n)]
    d = args[0] if args else tempfile.gettempdir()
    path = os.path.join(d, "pagesize-bench.db")
    data = [os.urandom(1 << 20) for _ in range(8)]
    print(f"SQLite page size, {n} chunks of 1 MiB in {d} (write includes the checkpoint):")
    # The same number of runs for every page size, each printed, then the best.
    for page in (4096, 8192, 16384, 32768, 65536):
        runs = [run(path, page, n, data) for _ in range(RUNS)]
        each = ", ".join(f"{w:.0f}/{r:.0f}" for w, r in runs)
        print(f"  page {page:>5}: write {max(w for w, _ in runs):6.0f} MiB/s   read {max(r for _, r in runs):6.0f} MiB/s"
              f"   (best of {RUNS}; each run write/read: {each})")


if __name__ == "__main__":
    main()
