#!/usr/bin/env python3
"""Integration tests of `skyrootd backup` and `skyrootd restore`.
Usage: backup.py CASE (same environment as fleet.py)."""
import json
import os
import stat
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import SKYCTL, SKYROOTD, Fleet, Store, check, run_cases, skyctl, wait_for  # noqa: E402
from images import chunk_count, corrupt_chunk, push, rand_file, sha256_file  # noqa: E402

MiB = 1 << 20


def backup(state, to, *extra):
    return subprocess.run([SKYROOTD, "backup", "--state", state, "--to", to, *extra],
                          capture_output=True, text=True, timeout=300)


def restore(archive, state):
    return subprocess.run([SKYROOTD, "restore", "--from", archive, "--state", state],
                          capture_output=True, text=True, timeout=300)


def lists(f):
    """What `skyctl -o json` lists, by id."""
    out = {}
    for noun, key in (("board", "boards"), ("token", "tokens"), ("image", "images")):
        r = skyctl(f, "-o", "json", noun, "list")
        check(r.returncode == 0, f"{noun} list: {r.stderr}")
        out[key] = {x["id"]: x for x in json.loads(r.stdout)[key]}
    return out


def same(a, b, drop=()):
    return {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


def case_online(f):
    """A backup taken while an image is pushed through skyctl and boards
    enroll restores into a controller that serves the same boards, tokens
    and images, whose images verify, and to which the boards reconnect with
    the certificates they have."""
    f.start()
    tok = f.token(uses=10)
    f.agent("a", token=tok["token"], hb=1000)
    wait_for(lambda: len(f.online()) == 1, 20, "board a online")
    base = os.path.join(f.tmp, "base.img")
    rand_file(base, 3 * MiB + 123)
    st, _ = push(f, base, "base")
    check(st == 201, f"push base: {st}")
    big = os.path.join(f.tmp, "big.img")
    big_sha = rand_file(big, 40 * MiB)
    before = chunk_count(f)

    # During: a push through skyctl and two enrollments.  The push reads
    # stdin, fed the first 8 MiB now and the rest only after the backup, so
    # it is in flight for the whole backup however fast the machine is.
    pusher = subprocess.Popen([SKYCTL, "--config", os.path.join(f.state, "skyctl.conf"),
                               "image", "push", "-", "--name", "big"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(big, "rb") as src:
        data = src.read()
    pusher.stdin.write(data[:8 * MiB])
    pusher.stdin.flush()
    wait_for(lambda: chunk_count(f) > before, 30, "the push under way", interval=0.02)
    f.agent("b", token=tok["token"], hb=1000)
    wait_for(lambda: len(f.online()) == 2, 20, "board b online")
    f.agent("c", token=tok["token"], hb=1000)
    archive = os.path.join(f.tmp, "ctl.backup")
    pushing = pusher.poll() is None
    # Small steps with pauses: the copy spans the push's commits.
    r = backup(f.state, archive, "--step-pages", "8", "--step-pause", "20ms")
    check(r.returncode == 0, f"backup failed: {r.stderr}")
    check(pushing and pusher.poll() is None, "the push was still running when the backup began and ended")
    out, err = pusher.communicate(input=data[8 * MiB:], timeout=120)
    err = err.decode(errors="replace")
    check(pusher.returncode == 0, f"skyctl image push: {err}")
    wait_for(lambda: len(f.online()) == 3, 30, "boards b and c online")
    check(stat.S_IMODE(os.stat(archive).st_mode) == 0o600, "the backup file is 0600")
    check(not [n for n in os.listdir(f.tmp) if ".tmp-" in n or ".db-" in n], "no temporary files left")
    orig = lists(f)

    restored = os.path.join(f.tmp, "restored")
    r = restore(archive, restored)
    check(r.returncode == 0, f"restore failed: {r.stdout}{r.stderr}")
    check("files match the archive's manifest" in r.stdout and "base" in r.stdout, f"summary: {r.stdout}")
    check(stat.S_IMODE(os.stat(restored).st_mode) == 0o700, "the restored folder is 0700")
    for n in os.listdir(restored):
        check(stat.S_IMODE(os.stat(os.path.join(restored, n)).st_mode) == 0o600, f"{n} is 0600")

    # The same ports, the same CA: the agents that run now reconnect to it.
    f.ctl.stop()
    f.procs.remove(f.ctl)
    f.state = restored
    f.start()
    now = lists(f)
    check(set(now["tokens"]) == set(orig["tokens"]), f"tokens: {sorted(now['tokens'])} != {sorted(orig['tokens'])}")
    for tid, t in now["tokens"].items():
        check(same(t, orig["tokens"][tid], drop=("uses_left",)), f"token {tid}: {t} != {orig['tokens'][tid]}")
    names = {i["name"] for i in now["images"].values()}
    check("base" in names, f"the image pushed before the backup is there: {names}")
    for iid, img in now["images"].items():
        check(iid in orig["images"] and same(img, orig["images"][iid]), f"image {iid}: {img}")
        if img["name"] == "big":
            check(img["sha256"] == big_sha, "big's digest")
        r = skyctl(f, "image", "verify", iid)
        check(r.returncode == 0, f"image verify {img['name']}: {r.stdout}{r.stderr}")
    keep = ("id", "name", "uuid", "cpus", "memory_bytes", "firmware")
    # A board that enrolled after the snapshot is unknown to the restored
    # controller: it enrolls again with its token, as a new board of the
    # same machine, and may already be listed.  Every other board listed
    # must be one of the original ones, unchanged.
    extra = set(now["boards"]) - set(orig["boards"])
    lost = {orig["boards"][b]["uuid"] for b in set(orig["boards"]) - set(now["boards"])}
    check(all(now["boards"][b]["uuid"] in lost for b in extra),
          f"boards {sorted(now['boards'])} of {sorted(orig['boards'])}: an extra one is no re-enrolled machine")
    restored_ids = set(now["boards"]) - extra
    check(len(restored_ids) >= 2, f"boards {sorted(restored_ids)} of {sorted(orig['boards'])}")
    # Identity now; the inventory (a snapshot may hold a board whose first
    # inventory had not come yet) once the boards are back, below.
    for bid in restored_ids:
        b = now["boards"][bid]
        check(same({k: b.get(k) for k in ("id", "name", "uuid")},
                   {k: orig["boards"][bid].get(k) for k in ("id", "name", "uuid")}), f"board {bid}: {b}")
    print(f"restored: {len(restored_ids)} of {len(orig['boards'])} boards, images {sorted(names)}")
    # Every board the restored controller knows comes back with its certificate.
    wait_for(lambda: restored_ids <= set(f.online()), 60, "the restored boards online again", interval=0.5)

    def inventory_back():
        back = lists(f)["boards"]
        return all(same({k: back[b].get(k) for k in keep}, {k: orig["boards"][b].get(k) for k in keep})
                   for b in restored_ids)
    wait_for(inventory_back, 30, "the restored boards' inventory as before", interval=0.5)


def flip(archive, out, member, where=0.5):
    """A copy of archive with one byte of member's data flipped."""
    with tarfile.open(archive) as t:
        m = t.getmember(member)
    data = bytearray(open(archive, "rb").read())
    data[m.offset_data + int(m.size * where)] ^= 0x40
    open(out, "wb").write(bytes(data))


def case_refusals(f):
    """restore refuses an existing state, a tampered key or database and an
    image that does not verify, saying so and leaving nothing behind; a
    backup into the state folder is refused."""
    f.start()
    img = os.path.join(f.tmp, "img")
    rand_file(img, 2 * MiB + 7)
    st, body = push(f, img, "small")
    check(st == 201, f"push: {st}")
    archive = os.path.join(f.tmp, "b.tar")
    r = backup(f.state, archive)
    check(r.returncode == 0, f"backup: {r.stderr}")

    r = backup(f.state, os.path.join(f.state, "x.tar"))
    check(r.returncode == 1 and "outside the state folder" in r.stderr, f"backup into the state: {r.stderr}")
    listing = sorted(os.listdir(f.state))
    r = restore(archive, f.state)
    check(r.returncode == 1 and "refusing to overwrite" in r.stderr, f"existing state: {r.stderr}")
    check(sorted(os.listdir(f.state)) == listing, "the existing state is untouched")

    target = os.path.join(f.tmp, "target")
    cases = [("ca.key", "ca.key does not match its SHA-256 in the manifest"),
             ("skyroot.db", "skyroot.db does not match its SHA-256 in the manifest")]
    for member, needle in cases:
        bad = os.path.join(f.tmp, f"bad-{member}.tar")
        flip(archive, bad, member)
        r = restore(bad, target)
        check(r.returncode == 1 and needle in r.stderr, f"tampered {member}: {r.returncode} {r.stderr}")
        check(not os.path.exists(target), f"nothing restored from a tampered {member}")
        check(not [n for n in os.listdir(f.tmp) if ".restore-" in n], "no staging folder left")

    # A chunk corrupted in the database, the manifest's digests made to
    # match: only the image verification can tell.
    unpacked = os.path.join(f.tmp, "unpacked")
    with tarfile.open(archive) as t:
        t.extractall(unpacked)
    corrupt_chunk(Store("sqlite", unpacked), body["id"], 1)
    man = json.load(open(os.path.join(unpacked, "MANIFEST.json")))
    for e in man["files"]:
        p = os.path.join(unpacked, e["name"])
        e["sha256"], e["size"] = sha256_file(p), os.path.getsize(p)
    json.dump(man, open(os.path.join(unpacked, "MANIFEST.json"), "w"))
    forged = os.path.join(f.tmp, "forged.tar")
    with tarfile.open(forged, "w", format=tarfile.PAX_FORMAT) as t:
        for e in man["files"]:
            t.add(os.path.join(unpacked, e["name"]), e["name"])
        t.add(os.path.join(unpacked, "MANIFEST.json"), "MANIFEST.json")
    r = restore(forged, target)
    check(r.returncode == 1 and "chunk 1 does not hash" in r.stderr and "did not verify" in r.stderr,
          f"corrupt chunk: {r.returncode} {r.stderr}")
    check(not os.path.exists(target), "nothing restored from a corrupt image")
    r = subprocess.run([SKYROOTD, "restore", "--from", archive], capture_output=True, text=True)
    check(r.returncode == 2 and "--state DIR is required" in r.stderr, f"usage: {r.stderr}")


def main():
    # skyrootd backup/restore are SQLite's (a PostgreSQL store is backed
    # up with PostgreSQL's tools): -ENOTSUP on another engine.
    why = "skyrootd backup copies the SQLite file"
    return run_cases(globals(), "skybk", Fleet, sqlite_only={"online": why, "refusals": why})


if __name__ == "__main__":
    sys.exit(main())
