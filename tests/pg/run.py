#!/usr/bin/env python3
"""Run a test program against a private PostgreSQL (pgserver.py): its URI in
SKY_PG_URI, the command that stops it in SKY_PG_STOP.  Exit 77 (a skip, the
reason printed) without the PostgreSQL binaries.

usage: tests/pg/run.py PROGRAM [ARGS...]
"""
import os
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgserver  # noqa: E402


def main():
    why = pgserver.available()
    if why:
        print('run.py: SKIP: %s' % why, file=sys.stderr)
        return 77
    root = tempfile.mkdtemp(prefix='skyroot-pg-')
    with pgserver.PgServer(root) as pg:
        env = dict(os.environ, SKY_PG_URI=pg.uri,
                   SKY_PG_STOP='%s %s stop %s' % (shlex.quote(sys.executable),
                                                  shlex.quote(os.path.abspath(pgserver.__file__)),
                                                  shlex.quote(root)))
        return subprocess.run(sys.argv[1:], env=env).returncode


if __name__ == '__main__':
    sys.exit(main())
