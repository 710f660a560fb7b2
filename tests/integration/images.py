#!/usr/bin/env python3
"""Integration tests of guest images: the chunk store, signed manifests and
streaming into board RAM.  Usage: images.py CASE (same environment as fleet.py)."""
import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (Fail, Fleet, check, metrics, pb_field, read_for, read_until_closed, run_cases,  # noqa: E402
                      sqlq, tls_connect, wait_for)

CHUNK = 1 << 20


def rand_file(path, size, seed=None):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 << 20)
            f.write(os.urandom(n))
            left -= n
    return sha256_file(path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def push(f, path, name, kind="disk", chunked=False, cut_after=None, declared=None):
    """Stream a file to POST /v1/images. cut_after: close the connection after
    that many body bytes (a truncated upload)."""
    size = os.path.getsize(path)
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=120)
    conn.putrequest("POST", f"/v1/images?name={name}&kind={kind}")
    conn.putheader("Authorization", f"Bearer {f.admin}")
    conn.putheader("Content-Type", "application/octet-stream")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    else:
        conn.putheader("Content-Length", str(declared if declared is not None else size))
    conn.endheaders()
    sent = 0
    try:
        with open(path, "rb") as src:
            while True:
                block = src.read(256 << 10)
                if cut_after is not None and sent + len(block) > cut_after:
                    block = block[: cut_after - sent]
                if not block:
                    break
                if chunked:
                    conn.send(b"%x\r\n" % len(block) + block + b"\r\n")
                else:
                    conn.send(block)
                sent += len(block)
                if cut_after is not None and sent >= cut_after:
                    conn.sock.close()
                    return None, None
        if chunked:
            conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        body = r.read()
        return r.status, json.loads(body) if body else None
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
        # The controller may refuse mid-body (507, 413): read its answer if any.
        try:
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        except Exception:
            return None, str(e)
    finally:
        conn.close()


def chunk_count(f):
    return int(f.store_sql("SELECT COUNT(*) FROM chunks")[0][0])


def board_with_agent(f, board="a", extra=()):
    tok = f.token()
    p = f.agent(board, token=tok["token"], hb=1000, extra=extra)
    bid = wait_for(lambda: [b["id"] for b in f.boards() if b["state"] == "online" and
                            b["name"] == f"board-{board}"], 20, "board online")[0]
    return p, bid


def fetch(f, bid, image, timeout=120):
    st, body = f.api("POST", f"/v1/boards/{bid}/fetch", {"image": image})
    check(st == 202, f"fetch: {st} {body}")
    img_id = body["image"]

    def done():
        b = f.api("GET", f"/v1/boards/{bid}")[1]
        if any(e["id"] == img_id for e in b.get("image_errors", [])):
            return ("error", [e for e in b["image_errors"] if e["id"] == img_id][0]["error"])
        if any(i["id"] == img_id for i in b.get("images", [])):
            return ("ok", [i for i in b["images"] if i["id"] == img_id][0])
        return None
    return wait_for(done, timeout, f"board {bid} to fetch {image}", interval=0.2)


def chunks_sent(f):
    """The controller's counters of chunks streamed to boards, from GET
    /metrics: (chunks, bytes)."""
    samples = metrics(f)
    got = {n: samples[n] for n in ("skyroot_chunks_sent_total", "skyroot_chunk_bytes_sent_total") if n in samples}
    check(len(got) == 2, f"both chunk counters in /metrics: {got}")
    return got["skyroot_chunks_sent_total"], got["skyroot_chunk_bytes_sent_total"]


def memfd_sha256(pid, image_id):
    """Read the image back from the agent's own memfd, through /proc."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"/memfd:{image_id}"):
            return sha256_file(f"/proc/{pid}/fd/{fd}")
    raise Fail(f"no memfd for {image_id} in agent {pid}")


def case_push_sizes(f):
    f.start()
    p, bid = board_with_agent(f)
    sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 256 << 20]
    for size in sizes:
        path = os.path.join(f.tmp, f"img{size}")
        want = rand_file(path, size)
        t0 = time.time()
        st, img = push(f, path, f"img{size}")
        took = time.time() - t0
        check(st == 201, f"push {size}: {st} {img}")
        check(img["size_bytes"] == size and img["sha256"] == want, f"image {size}: {img}")
        check(img["chunks"] == (size + CHUNK - 1) // CHUNK, f"chunks for {size}: {img['chunks']}")
        check(img["format"] == "raw" and img["kind"] == "disk", "format and kind")
        st, v = f.api("POST", f"/v1/images/{img['id']}/verify")
        check(st == 200 and v["ok"] and v["chunks"] == img["chunks"], f"verify {size}: {v}")
        t1 = time.time()
        how, got = fetch(f, bid, img["name"])
        check(how == "ok" and got["sha256"] == want, f"fetch {size}: {how} {got}")
        check(memfd_sha256(p.p.pid, img["id"]) == want, f"bit-exact in the board's RAM ({size} bytes)")
        if size >= 64 << 20:
            print(f"{size >> 20} MiB: push {size / took / 1e6:.0f} MB/s, fetch {size / (time.time() - t1) / 1e6:.0f} MB/s")
        os.unlink(path)
    st, lst = f.api("GET", "/v1/images")
    check(len(lst["images"]) == len(sizes), "all images listed")
    # qcow2 is detected from its header.
    path = os.path.join(f.tmp, "q.qcow2")
    with open(path, "wb") as out:
        out.write(b"QFI\xfb" + os.urandom(4096))
    st, img = push(f, path, "q", kind="disk")
    check(st == 201 and img["format"] == "qcow2", f"qcow2 detected: {img}")
    # Chunked transfer encoding (size unknown up front).
    path = os.path.join(f.tmp, "c")
    want = rand_file(path, 3 * CHUNK + 7)
    st, img = push(f, path, "chunked", chunked=True)
    check(st == 201 and img["sha256"] == want, f"chunked upload: {st} {img}")


def case_dedup(f):
    f.start()
    a = os.path.join(f.tmp, "a")
    b = os.path.join(f.tmp, "b")
    rand_file(a, 3 * CHUNK)
    with open(a, "rb") as src, open(b, "wb") as dst:
        dst.write(src.read(2 * CHUNK))
        dst.write(os.urandom(CHUNK))
    st, ia = push(f, a, "a")
    check(st == 201, "push a")
    check(chunk_count(f) == 3, "three chunks")
    st, ib = push(f, b, "b")
    check(st == 201, "push b")
    check(chunk_count(f) == 4, f"shared chunks stored once: {chunk_count(f)}")
    # On the board: the shared chunks are not fetched again.  The proof is
    # what crossed the wire (the controller's counters of chunks streamed),
    # not the agent's own account of it.
    p, bid = board_with_agent(f)
    sent0 = chunks_sent(f)
    check(fetch(f, bid, "a")[0] == "ok", "fetch a")
    sent1 = chunks_sent(f)
    check(fetch(f, bid, "b")[0] == "ok", "fetch b")
    sent2 = chunks_sent(f)
    check((sent1[0] - sent0[0], sent1[1] - sent0[1]) == (3, 3 * CHUNK),
          f"a: all three chunks streamed: {sent0} -> {sent1}")
    check((sent2[0] - sent1[0], sent2[1] - sent1[1]) == (1, CHUNK),
          f"b: only its one new chunk streamed, the two shared ones reused: {sent1} -> {sent2}")
    check("2 of 3 chunks were already on this board" in p.text(), f"the agent says so: {p.text()[-2000:]}")
    check(memfd_sha256(p.p.pid, ib["id"]) == ib["sha256"], "b bit-exact")
    st, _ = f.api("DELETE", "/v1/images/a")
    check(st == 200, "delete a")
    check(chunk_count(f) == 3, f"a's own chunk collected: {chunk_count(f)}")
    st, v = f.api("POST", "/v1/images/b/verify")
    check(v["ok"], "b still verifies")
    st, _ = f.api("DELETE", f"/v1/images/{ib['id']}")
    check(st == 200 and chunk_count(f) == 0, "all chunks collected")
    check(f.api("GET", "/v1/images/b")[0] == 404, "gone")


def case_push_errors(f):
    f.start(["--image-max", "4M"])
    path = os.path.join(f.tmp, "x")
    rand_file(path, 2 * CHUNK)
    st, img = push(f, path, "x")
    check(st == 201, "push")
    st, body = push(f, path, "x")
    check(st == 409 and body["error"]["code"] == "conflict", f"name taken: {st} {body}")
    st, body = push(f, path, "y", kind="floppy")
    check(st == 400, f"bad kind: {st} {body}")
    st, body = push(f, path, "img-bad")
    check(st == 400, f"bad name: {st}")
    big = os.path.join(f.tmp, "big")
    rand_file(big, 5 * CHUNK)
    st, body = push(f, big, "big")
    check(st == 413 and "--image-max" in body["error"]["message"], f"too large: {st} {body}")
    st, body = push(f, big, "big2", chunked=True)
    check(st == 413, f"too large, chunked: {st} {body}")
    before = chunk_count(f)
    seen = f.ctl.text().count("upload interrupted")  # big2's 413 has one already
    # Truncated: the connection ends before Content-Length.
    push(f, big, "cut", declared=3 * CHUNK, cut_after=int(2.5 * CHUNK))
    # The controller has seen the cut (and cleaned up) before we look.
    wait_for(lambda: f.ctl.text().count("upload interrupted") > seen, 10,
             "the controller's line on the interrupted upload")
    check(f.api("GET", "/v1/images/cut")[0] == 404, "a truncated upload is not visible")
    check(chunk_count(f) == before, f"no orphan chunks ({chunk_count(f)} vs {before})")
    st, body = f.api("GET", "/v1/images", auth=False)
    check(st == 401, "images need the admin token")
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=10)
    conn.request("POST", "/v1/images?name=z", body=b"abc", headers={"Content-Length": "3"})
    r = conn.getresponse()
    check(r.status == 401, f"upload without a token: {r.status}")
    conn.close()
    st, lst = f.api("GET", "/v1/images")
    check([i["name"] for i in lst["images"]] == ["x"], f"only the good image: {lst}")


def case_disk_full(f):
    # A small tmpfs as the state folder's file system.
    mnt = os.path.join(f.tmp, "small")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt]).returncode != 0:
        print("SKIP: cannot mount a tmpfs here (needs root)")
        sys.exit(77)
    try:
        shutil.copytree(f.state, os.path.join(mnt, "state"))
        f.state = os.path.join(mnt, "state")
        f.start()
        small = os.path.join(f.tmp, "small.img")
        want = rand_file(small, 3 * CHUNK)
        st, img = push(f, small, "small")
        check(st == 201, f"a small image fits: {st} {img}")
        big = os.path.join(f.tmp, "big.img")
        rand_file(big, 64 * CHUNK)
        st, body = push(f, big, "big")
        check(st == 507 and body["error"]["code"] == "insufficient_storage", f"checked before: {st} {body}")
        # Size unknown: the disk fills during the upload.
        st, body = push(f, big, "big", chunked=True)
        check(st == 507, f"full mid-upload: {st} {body}")
        check(f.api("GET", "/v1/images/big")[0] == 404, "nothing visible")
        st, v = f.api("POST", "/v1/images/small/verify")
        check(st == 200 and v["ok"], f"the store is consistent: {v}")
        st, again = f.api("GET", "/v1/images/small")
        check(again["sha256"] == want, "small intact")
        f.ctl.stop()
        f.procs.remove(f.ctl)
        bad = f.store_intact()
        check(bad is None, f"integrity: {bad}")
    finally:
        f.close()
        subprocess.run(["umount", "-l", mnt])


def corrupt_chunk(f, image_id, index):
    """A flipped byte in chunk INDEX of the image, in the store F (a Fleet
    or a fleetlib.Store)."""
    where = f"id = (SELECT chunk_id FROM image_chunks WHERE image_id = {sqlq(image_id)} AND idx = {int(index)})"
    data = bytearray(f.store_blob("chunk_data", "data", where))
    data[len(data) // 2] ^= 0x01
    f.store_set_blob("chunk_data", "data", where, bytes(data))


def case_tamper(f):
    f.start()
    ids = {}
    for name in ("flip", "sig", "swap", "index"):
        path = os.path.join(f.tmp, name)  # different bytes each: no shared chunks
        rand_file(path, 4 * CHUNK)
        st, img = push(f, path, name)
        check(st == 201, f"push {name}")
        ids[name] = img["id"]
    path = os.path.join(f.tmp, "swap")
    p, bid = board_with_agent(f)
    # 1. A flipped byte in a stored chunk: verify finds it; the controller
    # serves chunks without re-hashing them, the board checks each against
    # the signed manifest and refuses it: it never reaches the image.
    corrupt_chunk(f, ids["flip"], 2)
    st, v = f.api("POST", f"/v1/images/{ids['flip']}/verify")
    check(st == 200 and not v["ok"] and [b["index"] for b in v["bad_chunks"]] == [2], f"verify: {v}")
    how, err = fetch(f, bid, ids["flip"])
    check(how == "error" and "chunk 2" in err, f"the board was refused chunk 2: {how} {err}")
    # verify found it: it is quarantined and never sent.
    check("is corrupt in the store, found by image verify: quarantined" in f.ctl.text(), "controller reports it")
    # 2. A manifest with a bad signature.
    sig = bytearray(f.store_blob("images", "signature", f"id = {sqlq(ids['sig'])}"))
    sig[5] ^= 0x40
    f.store_set_blob("images", "signature", f"id = {sqlq(ids['sig'])}", bytes(sig))
    # 3. A swapped chunk digest inside the signed manifest.
    man = bytearray(f.store_blob("images", "manifest", f"id = {sqlq(ids['swap'])}"))
    digests = [hashlib.sha256(open(path, "rb").read()[i * CHUNK:(i + 1) * CHUNK]).digest() for i in range(4)]
    a, b = man.find(digests[0]), man.find(digests[1])
    check(a >= 0 and b >= 0, "digests found in the manifest")
    man[a:a + 32], man[b:b + 32] = digests[1], digests[0]
    f.store_set_blob("images", "manifest", f"id = {sqlq(ids['swap'])}", bytes(man))
    # 4. The controller's own index points chunk 0 at chunk 1's row.
    ix = sqlq(ids["index"])
    f.store_sql(f"UPDATE image_chunks SET chunk_id = (SELECT chunk_id FROM image_chunks WHERE image_id = {ix} "
                f"AND idx = 1) WHERE image_id = {ix} AND idx = 0")
    how, err = fetch(f, bid, ids["sig"])
    check(how == "error" and "signature" in err, f"bad signature refused: {how} {err}")
    how, err = fetch(f, bid, ids["swap"])
    check(how == "error" and "signature" in err, f"swapped digest refused: {how} {err}")
    how, err = fetch(f, bid, ids["index"])
    check(how == "error" and "SHA-256" in err, f"wrong chunk refused by the board: {how} {err}")
    b = f.api("GET", f"/v1/boards/{bid}")[1]
    check(b["images"] == [], f"nothing tampered is held: {b['images']}")


def case_no_disk_writes(f):
    f.start()
    path = os.path.join(f.tmp, "n")
    want = rand_file(path, 5 * CHUNK + 3)
    st, img = push(f, path, "n")
    cwd = os.path.join(f.tmp, "agent-cwd")
    os.mkdir(cwd)
    tok = f.token()
    from fleetlib import FIXTURES, Proc, agent_args
    args = agent_args(f, os.path.join(FIXTURES, "boards", "a"), token=tok["token"])
    log = os.path.join(f.tmp, "agent-nowrite.log")
    p = Proc.__new__(Proc)
    p.args, p.log_path = args, log
    p.log = open(log, "ab")
    p.p = subprocess.Popen(args, stdout=p.log, stderr=subprocess.STDOUT, cwd=cwd)
    f.procs.append(p)
    bid = wait_for(lambda: [b["id"] for b in f.online().values()], 20, "online")[0]
    how, got = fetch(f, bid, "n")
    check(how == "ok", "fetched")
    check(memfd_sha256(p.p.pid, img["id"]) == want, "in a memfd")
    allowed = ("socket:", "pipe:", "anon_inode:", "/memfd:", "/dev/null", "/dev/urandom")
    for fd in os.listdir(f"/proc/{p.p.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{p.p.pid}/fd/{fd}")
        except OSError:
            continue
        check(target.startswith(allowed) or target == log, f"agent holds a file: fd {fd} -> {target}")
    check(os.listdir(cwd) == [], f"the agent's working directory is untouched: {os.listdir(cwd)}")
    # The memfd is sealed: no writes, no resizing.
    for fd in os.listdir(f"/proc/{p.p.pid}/fd"):
        target = os.readlink(f"/proc/{p.p.pid}/fd/{fd}")
        if target.startswith(f"/memfd:{img['id']}"):
            try:
                with open(f"/proc/{p.p.pid}/fd/{fd}", "r+b") as w:
                    w.write(b"x")
                    w.flush()
                raise Fail("the image memfd accepted a write")
            except PermissionError:
                pass


def case_cache_eviction(f):
    f.start()
    ids = []
    for name in ("e1", "e2", "e3"):
        path = os.path.join(f.tmp, name)
        rand_file(path, 3 * CHUNK)
        ids.append(push(f, path, name)[1]["id"])
    p, bid = board_with_agent(f, extra=["--cache-max", "7M"])
    check(fetch(f, bid, "e1")[0] == "ok", "e1")
    check(fetch(f, bid, "e2")[0] == "ok", "e2")
    check(fetch(f, bid, "e3")[0] == "ok", "e3")
    held = [i["id"] for i in f.api("GET", f"/v1/boards/{bid}")[1]["images"]]
    check(ids[0] not in held and ids[1] in held and ids[2] in held, f"e1 (least recent) evicted: {held}")
    check("evicting" in p.text(), "agent logs the eviction")
    big = os.path.join(f.tmp, "big")
    rand_file(big, 8 * CHUNK)
    push(f, big, "big")
    how, err = fetch(f, bid, "big")
    check(how == "error" and "--cache-max" in err, f"too big for the cache: {how} {err}")


def ready_at(p, image_id):
    """When the agent's log says the image was ready (UTC), or None."""
    for line in p.text().splitlines():
        if f"image {image_id} ready" in line:
            return datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return None


def first_session_at(ctl):
    """When the controller (its last start, in its log) first had a board's
    session up (UTC), or None: before it, it can have streamed nothing."""
    lines = ctl.text().splitlines()
    starts = [i for i, ln in enumerate(lines) if "skyrootd info: skyrootd " in ln and "agents on" in ln]
    for line in lines[starts[-1] if starts else 0:]:
        if line.endswith(": session up") and " skyrootd " in line:
            return datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return None


def case_stream_resume(f):
    """kill -9 of the controller while it streams to several boards: each
    cut falls while the boards are part way through (their reported
    progress between 0 and all chunks), and after the restarts the boards
    finish with the chunks they still lacked, not from the start."""
    f.start()
    # Large enough that three boards are still part way through at their
    # first progress report (every 500 ms) even in a release build that
    # streams a few hundred MB/s on loopback.
    nchunks = 256
    path = os.path.join(f.tmp, "r")
    want = rand_file(path, nchunks * CHUNK)
    st, img = push(f, path, "r")
    check(st == 201, "push")
    agents = []
    for b in "abc":
        tok = f.token()
        agents.append(f.agent(b, token=tok["token"], hb=1000))
    wait_for(lambda: len(f.online()) == 3, 20, "three online")
    bids = sorted(f.online())

    def progress():
        """Each board's last reported chunks of the image: nchunks once it
        is ready, None before its first report."""
        out = {}
        for bid in bids:
            b = f.api("GET", f"/v1/boards/{bid}")[1]
            if any(i["id"] == img["id"] for i in b.get("images", [])):
                out[bid] = nchunks
            else:
                got = [p["done_chunks"] for p in b.get("fetching", []) if p["id"] == img["id"]]
                out[bid] = got[0] if got else None
        return out

    for bid in bids:
        f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "r"})
    cuts = 0
    for round_ in range(3):
        if round_ == 0:
            # The first cut waits until every board has some chunks.
            before = wait_for(lambda: (lambda p: p if all(p.values()) else None)(progress()), 30,
                              "every board to report chunks received", interval=0.05)
            check(all(0 < d < nchunks for d in before.values()),
                  f"the first cut falls while every board is part way through: {before}")
        else:
            before = progress()
            if not any(d is not None and 0 < d < nchunks for d in before.values()):
                break  # every board is done: nothing left to cut
        f.ctl.stop(signal.SIGKILL)
        f.procs.remove(f.ctl)
        restarted = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        cuts += 1
        last_cut = before
        f.start()
        wait_for(lambda: len(f.online()) == 3, 30, "boards back")
        # Each board reports again what it holds: at least what it had.
        after = wait_for(lambda: (lambda p: p if all(v is not None for v in p.values()) else None)(progress()),
                         30, "every board's report after the restart")
        for bid in bids:
            check(after[bid] >= (before[bid] or 0),
                  f"board {bid} kept its chunks across cut {cuts}: {before[bid]} -> {after[bid]}")
    check(cuts >= 1, "at least one cut")
    for bid in bids:
        f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "r"})  # idempotent
    for bid in bids:
        how, got = fetch(f, bid, "r", timeout=180)
        check(how == "ok" and got["sha256"] == want, f"board {bid}: {how} {got}")
    # After the last restart the controller streamed at most the chunks the
    # boards still lacked when it went down (they had at least what they
    # had reported), not whole images again.
    sent, sent_bytes = chunks_sent(f)
    lacking = sum(nchunks - (last_cut[bid] or 0) for bid in bids)
    # Reports lag the transfer (about half a second): a board may finish
    # between its last report and the kill (or with the bytes already on
    # their way when it fell), and then nothing is left to stream.  Nothing
    # streamed is right only if every board's own log has the image ready
    # before the new controller had any board's session (its bytes in
    # flight may still arrive a moment after the kill).
    ready = [ready_at(p, img["id"]) for p in agents]
    serving = first_session_at(f.ctl) or restarted
    all_done = all(t is not None and t < serving for t in ready)
    check((0 < sent or all_done) and sent <= lacking,
          f"after cut {cuts} the boards fetched only the rest: {sent} chunks streamed, "
          f"at most {lacking} lacking (of {3 * nchunks}); progress before the cut {last_cut}; "
          f"ready {ready}, restarted at {restarted}, first session up at {serving}")
    print(f"{cuts} cuts; progress before the last {last_cut}; {sent} chunks streamed after it")
    for p in agents:
        check(memfd_sha256(p.p.pid, img["id"]) == want, "right bytes in every board")
    check(any("image" in p.text() and "ready" in p.text() for p in agents), "ready")
    bad = f.store_intact()
    check(bad is None, f"integrity: {bad}")
    st, v = f.api("POST", "/v1/images/r/verify")
    check(v["ok"], "verify clean")


def case_crash_push(f):
    """kill -9 of the controller at many points of a push."""
    f.start()
    path = os.path.join(f.tmp, "p")
    want = rand_file(path, 24 * CHUNK)
    st, keep = push(f, path, "keep")
    check(st == 201, "first image")
    import threading
    for i, delay in enumerate((0.05, 0.15, 0.3, 0.5, 0.8)):
        result = {}

        def run():
            result["r"] = push(f, path, f"p{i}")
        t = threading.Thread(target=run)
        t.start()
        time.sleep(delay)
        f.ctl.stop(signal.SIGKILL)
        f.procs.remove(f.ctl)
        t.join(60)
        f.start()
        st = result.get("r", (None, None))[0]
        visible = f.api("GET", f"/v1/images/p{i}")
        if st == 201:
            check(visible[0] == 200 and visible[1]["sha256"] == want, f"acknowledged p{i} survived")
        else:
            check(visible[0] in (200, 404), "either whole or absent")
            if visible[0] == 200:
                check(visible[1]["sha256"] == want and visible[1]["size_bytes"] == 24 * CHUNK,
                      "a visible image is whole")
        bad = f.store_intact()
        check(bad is None, f"integrity after kill {i}: {bad}")
        orphans = int(f.store_sql("SELECT COUNT(*) FROM chunks c WHERE NOT EXISTS "
                                  "(SELECT 1 FROM image_chunks ic WHERE ic.chunk_id = c.id)")[0][0])
        orphans += int(f.store_sql("SELECT COUNT(*) FROM chunk_data WHERE id NOT IN (SELECT id FROM chunks)")[0][0])
        check(orphans == 0, f"orphan chunks collected after kill {i}: {orphans}")
    for img in f.api("GET", "/v1/images")[1]["images"]:
        st, v = f.api("POST", f"/v1/images/{img['id']}/verify")
        check(v["ok"], f"{img['name']} verifies")
    check(f.api("GET", "/v1/images/keep")[1]["sha256"] == want, "the acknowledged image is there")


def case_chunks_only_granted(f):
    """A board is served only chunks of images the controller sent to it:
    board b, enrolled, asks for a chunk of an image sent only to board a
    and gets an error frame, not the bytes."""
    f.start()
    src = os.path.join(f.tmp, "g.img")
    rand_file(src, CHUNK + 4096)
    st, img = push(f, src, "g")
    check(st == 201, f"push: {st} {img}")
    _, bid_a = board_with_agent(f, "a")
    idir = os.path.join(f.tmp, "identity-b")
    pb, bid_b = board_with_agent(f, "b", extra=["--identity-dir", idir])
    check(fetch(f, bid_a, "g")[0] == "ok", "board a fetches the image sent to it")
    pb.stop()
    f.procs.remove(pb)
    pem = os.path.join(idir, "identity.pem")
    s = tls_connect(f, pem, pem)
    # Envelope{request_id: 7, chunk_request: {image_id, index: 0}}
    req = pb_field(1, img["id"].encode()) + b"\x10\x00"
    env = b"\x08\x07" + pb_field(21, req)
    s.sendall(len(env).to_bytes(4, "big") + env)
    data = read_for(s, lambda d: len(d) >= 200 or b"was not sent to board" in d)
    s.close()
    check(len(data) < CHUNK, f"board b got no chunk data ({len(data)} bytes)")
    check(b"was not sent to board " + bid_b.encode() in data, f"an error frame says why: {data[:300]!r}")
    check(f"image {img['id']}, which was not sent to it" in f.ctl.text(), "the controller logs the refusal")


def cache_stats(f):
    m = metrics(f)
    names = ("hits_total", "misses_total", "evictions_total", "rejected_total", "bytes", "entries", "limit_bytes")
    got = {n: m.get(f"skyroot_chunk_cache_{n}") for n in names}
    check(None not in got.values(), f"the chunk cache's samples in /metrics: {got}")
    return got


def case_chunk_cache(f):
    """The controller's cache of verified chunks (chunk_cache.c): on by
    default on PostgreSQL (off on SQLite: this case turns it on there); a
    board that streams the same image a second time gets every chunk from
    the cache (its hits in /metrics, no new misses) and the right bytes; a
    chunk corrupt in the store is found when it is read for the cache
    (quarantined as found at send, never cached); a cached chunk quarantined
    later is dropped from the cache and never served from it."""
    f.start(extra=["--scrub-rate", "0"])
    if f.engine == "postgresql":
        check(cache_stats(f)["limit_bytes"] == 256 << 20, f"on by default on PostgreSQL: {cache_stats(f)}")
    else:
        check(cache_stats(f)["limit_bytes"] == 0, f"off by default on SQLite: {cache_stats(f)}")
        check(f.ctl.stop() == 0, "the controller stops")
        f.procs.remove(f.ctl)
        f.start(extra=["--scrub-rate", "0", "--chunk-cache", "64M"])
        check(cache_stats(f)["limit_bytes"] == 64 << 20, f"--chunk-cache 64M: {cache_stats(f)}")
    check("chunk cache: " in f.ctl.text(), "the controller logs the cache's bound")
    paths, want, ids = {}, {}, {}
    for name, size in (("ca", 4 * CHUNK + CHUNK // 2), ("cb", 4 * CHUNK)):
        paths[name] = os.path.join(f.tmp, name)
        want[name] = rand_file(paths[name], size)
        st, img = push(f, paths[name], name)
        check(st == 201, f"push {name}: {st} {img}")
        ids[name] = img["id"]
    # The board holds 7 MiB: fetching cb evicts ca there, so the board
    # streams ca again from the controller.
    p, bid = board_with_agent(f, extra=["--cache-max", "7M"])
    c0 = cache_stats(f)
    check(c0["hits_total"] == 0 and c0["misses_total"] == 0 and c0["entries"] == 0, f"empty at first: {c0}")
    check(fetch(f, bid, "ca")[0] == "ok", "ca, the first time")
    check(memfd_sha256(p.p.pid, ids["ca"]) == want["ca"], "the board holds ca's bytes")
    c1 = cache_stats(f)
    check(c1["misses_total"] == 5 and c1["hits_total"] == 0 and c1["entries"] == 5 and
          c1["bytes"] == 4 * CHUNK + CHUNK // 2, f"ca's 5 chunks read from the store and kept: {c1}")
    check(fetch(f, bid, "cb")[0] == "ok", "cb")
    held = [i["id"] for i in f.api("GET", f"/v1/boards/{bid}")[1]["images"]]
    check(ids["ca"] not in held, f"the board let ca go: {held}")
    sent0 = chunks_sent(f)[0]
    check(fetch(f, bid, "ca")[0] == "ok", "ca, the second time")
    check(memfd_sha256(p.p.pid, ids["ca"]) == want["ca"], "the board holds ca's bytes again, from the cache")
    c2 = cache_stats(f)
    check(c2["hits_total"] == 5 and c2["misses_total"] == 9, f"the second stream of ca: 5 hits, no new miss: {c2}")
    check(chunks_sent(f)[0] == sent0 + 5, "5 chunks sent for it")
    check(c2["entries"] == 9 and c2["bytes"] == 8 * CHUNK + CHUNK // 2 and c2["evictions_total"] == 0,
          f"both images held: {c2}")
    # A chunk corrupt in the store before anyone read it: found when it is
    # read for the cache, quarantined (found at send), not sent, not kept.
    path = os.path.join(f.tmp, "cc")
    rand_file(path, 2 * CHUNK)
    st, img = push(f, path, "cc")
    check(st == 201, f"push cc: {st} {img}")
    corrupt_chunk(f, img["id"], 1)
    how, err = fetch(f, bid, "cc")
    check(how == "error" and "chunk 1" in err, f"the corrupt chunk is not sent: {how} {err}")
    m = metrics(f)
    check(m.get('skyroot_chunks_quarantined_total{found_by="send"}') == 1,
          "quarantined as found at send (the cache's check)")
    c3 = cache_stats(f)
    check(c3["rejected_total"] == 1 and c3["entries"] == c2["entries"] + 1,
          f"the bad chunk never cached (its good neighbour is): {c3}")
    # A cached chunk corrupted in the store later, and found by verify:
    # dropped from the cache, and a board that asks is refused it.
    corrupt_chunk(f, ids["cb"], 2)
    st, v = f.api("POST", f"/v1/images/{ids['cb']}/verify")
    check(st == 200 and not v["ok"] and v["quarantined_chunks"] == [2], f"verify quarantines it: {v}")
    c4 = cache_stats(f)
    check(c4["entries"] == c3["entries"] - 1, f"the quarantined chunk left the cache: {c3} -> {c4}")
    refused = metrics(f).get('skyroot_chunk_errors_total{reason="quarantined"}', 0)
    pb, bid_b = board_with_agent(f, "b")
    how, err = fetch(f, bid_b, "cb")
    check(how == "error" and "quarantined" in err, f"never served from the cache once quarantined: {how} {err}")
    check(metrics(f)['skyroot_chunk_errors_total{reason="quarantined"}'] == refused + 1,
          "refused as quarantined")
    check(cache_stats(f)["hits_total"] <= c4["hits_total"] + 3, "only its 3 good chunks may come from the cache")


def case_chunk_cache_sighup(f):
    """The chunk cache's bound from the config file, changed by SIGHUP at
    once: a smaller one lets chunks go (least recently used first), an
    unset one is the engine's default again."""
    conf = os.path.join(f.tmp, "skyrootd.conf")
    with open(conf, "w") as out:
        out.write("chunk-cache = 64M\n")
    f.start(extra=["--config", conf])
    check(cache_stats(f)["limit_bytes"] == 64 << 20, f"64M from the file: {cache_stats(f)}")
    check("chunk cache: 64M (set by chunk-cache)" in f.ctl.text(), "the bound is logged at start")
    path = os.path.join(f.tmp, "h")
    want = rand_file(path, 4 * CHUNK)
    st, img = push(f, path, "h")
    check(st == 201, f"push: {st} {img}")
    p, bid = board_with_agent(f)
    check(fetch(f, bid, "h")[0] == "ok", "fetch")
    check(memfd_sha256(p.p.pid, img["id"]) == want, "the board holds the image")
    check(cache_stats(f)["entries"] == 4, f"its 4 chunks cached: {cache_stats(f)}")
    with open(conf, "w") as out:
        out.write("chunk-cache = 2M\n")
    os.kill(f.ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: "chunk-cache 64M -> 2M" in f.ctl.text(), 10, "the reload logged")
    c = cache_stats(f)
    check(c["limit_bytes"] == 2 << 20 and c["entries"] == 2 and c["bytes"] == 2 * CHUNK and
          c["evictions_total"] == 2, f"2M: two chunks let go at once: {c}")
    with open(conf, "w") as out:
        out.write("# nothing\n")
    os.kill(f.ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: "chunk-cache 2M -> default" in f.ctl.text(), 10, "the second reload logged")
    default = 256 << 20 if f.engine == "postgresql" else 0
    c = cache_stats(f)
    check(c["limit_bytes"] == default and c["entries"] == (2 if default else 0),
          f"unset: the engine's default ({default}): {c}")


def main():
    # disk_full fills the file system of the state folder, where SQLite
    # keeps the store; a PostgreSQL store lives on its server's disk.
    return run_cases(globals(), "sky-img", Fleet,
                     sqlite_only={"disk_full": "the store's file on a small tmpfs is SQLite's alone"})


if __name__ == "__main__":
    sys.exit(main())
