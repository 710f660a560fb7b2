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


def run(path, page, n, data):
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size={page}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE c(id INTEGER PRIMARY KEY, d BLOB)")
    t = time.time()
    for i in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO c(d) VALUES(?)", (data[i % len(data)],))
        db.execute("COMMIT")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("BEGIN")
    db.execute("INSERT INTO c(d) VALUES(x'00')")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    w = time.time() - t
    t = time.time()
    for i in range(1, n + 1):
        db.execute("SELECT d FROM c WHERE id=?", (i,)).fetchone()
    r = time.time() - t
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
    for page in (4096, 8192, 16384, 32768, 65536):
        best_w = best_r = 0
        for _ in range(2):
            w, r = run(path, page, n, data)
            best_w, best_r = max(best_w, w), max(best_r, r)
        print(f"  page {page:>5}: write {best_w:6.0f} MiB/s   read {best_r:6.0f} MiB/s")


if __name__ == "__main__":
    main()
