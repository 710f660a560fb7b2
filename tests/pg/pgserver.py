#!/usr/bin/env python3
"""A private PostgreSQL 15 for tests: a cluster in a directory of its own,
listening on a unix socket in that directory and on 127.0.0.1 at a free
port, fsync on (tests look at durability).  PostgreSQL refuses to run as
root: as root the cluster belongs to the system user skyroot-test (made
when missing).

  pgserver.py start DIR   prints the URI (postgresql://...)
  pgserver.py stop DIR    stops it (pg_ctl stop -m fast, by its pid file)

As a module: `with PgServer(dir) as pg: pg.uri`.
"""
import os
import pwd
import shutil
import socket
import subprocess
import sys

BIN = os.environ.get('SKY_PG_BIN', '/usr/lib/postgresql/15/bin')
USER = 'skyroot-test'
DB = 'skyroot'


def available():
    """None when the PostgreSQL binaries are there, else why not."""
    for b in ('initdb', 'pg_ctl', 'postgres'):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            return '%s/%s missing (postgresql-15 not installed)' % (BIN, b)
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _owner():
    """(uid, gid) the cluster runs as, None: the current user."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER],
                       check=True)
        pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def _run(argv, owner, **kw):
    if owner:
        uid, gid = owner
        kw['preexec_fn'] = lambda: (os.setgroups([]), os.setgid(gid), os.setuid(uid))
    return subprocess.run(argv, check=True, **kw)


class PgServer:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.data = os.path.join(self.root, 'data')
        self.sock = os.path.join(self.root, 'sock')
        self.port = None
        self.uri = None

    def start(self):
        why = available()
        if why:
            raise RuntimeError(why)
        owner = _owner()
        os.makedirs(self.sock, exist_ok=True)
        for d in (self.root, self.sock):
            os.chmod(d, 0o700)
            if owner:
                os.chown(d, *owner)
        out = subprocess.DEVNULL
        _run([BIN + '/initdb', '-D', self.data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8',
              '--locale=C', '--data-checksums', '--no-sync'], owner, stdout=out, stderr=subprocess.PIPE)
        with open(os.path.join(self.data, 'postgresql.auto.conf'), 'a') as f:
            f.write("listen_addresses = '127.0.0.1'\n")
            f.write("unix_socket_directories = '%s'\n" % self.sock)
            f.write('fsync = on\nsynchronous_commit = on\nmax_connections = 40\n')
            f.write('shared_buffers = 16MB\nlogging_collector = off\n')
        # A free port may be taken before the server binds it: a few tries
        # (the last port line of the file wins).
        for attempt in range(3):
            self.port = _free_port()
            with open(os.path.join(self.data, 'postgresql.auto.conf'), 'a') as f:
                f.write('port = %d\n' % self.port)
            try:
                _run([BIN + '/pg_ctl', '-D', self.data, '-l', os.path.join(self.root, 'log'), '-w', '-t',
                      '60', 'start'], owner, stdout=out, stderr=subprocess.PIPE)
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
        _run([BIN + '/createdb', '-h', self.sock, '-p', str(self.port), '-U', 'postgres', DB], owner,
             stdout=out, stderr=subprocess.PIPE)
        self.uri = 'postgresql://postgres@127.0.0.1:%d/%s' % (self.port, DB)
        with open(os.path.join(self.root, 'uri'), 'w') as f:
            f.write(self.uri + '\n')
        return self.uri

    def pid(self):
        try:
            with open(os.path.join(self.data, 'postmaster.pid')) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def stop(self):
        """Stop the server of this directory (pg_ctl reads its pid file)."""
        if self.pid() is None:
            return
        _run([BIN + '/pg_ctl', '-D', self.data, '-m', 'fast', '-w', '-t', '60', 'stop'], _owner(),
             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def resume(self):
        """Start the stopped server of this directory again: the same data,
        the same port (tests of an outage)."""
        _run([BIN + '/pg_ctl', '-D', self.data, '-l', os.path.join(self.root, 'log'), '-w', '-t', '60', 'start'],
             _owner(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv):
    if len(argv) != 3 or argv[1] not in ('start', 'stop'):
        sys.stderr.write('usage: pgserver.py start|stop DIR\n')
        return 2
    pg = PgServer(argv[2])
    if argv[1] == 'start':
        print(pg.start())
    else:
        pg.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
