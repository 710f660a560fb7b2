#!/usr/bin/env python3
"""Integration tests of integrity at rest: a chunk corrupted in the
controller's store is found (by a board's report, re-checked by the
controller, or by the background scrub), quarantined and never served
again, and re-pushing the same bytes heals it; a board's report alone
quarantines nothing, and a flood of reports is bounded.
Usage: integrity.py CASE (same environment as fleet.py)."""
import hashlib
import os
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (Fleet, check, metrics, pb_field, pb_varint, run_cases, skyctl,  # noqa: E402
                      sqlq, tls_connect, wait_for)
from images import CHUNK, board_with_agent, corrupt_chunk, fetch, memfd_sha256, push, rand_file  # noqa: E402

# AL_REPORT_BURST in controller/skyrootd/agentlink_priv.h: reports of one
# session re-checked at once; then one per AL_REPORT_EVERY_MS (5 s).
REPORT_BURST = 8


def quarantined(f, by):
    return metrics(f).get(f'skyroot_chunks_quarantined_total{{found_by="{by}"}}', 0)


def reports(f, outcome):
    return metrics(f).get(f'skyroot_chunk_reports_total{{outcome="{outcome}"}}', 0)


def image(f, ref):
    st, body = f.api("GET", f"/v1/images/{ref}")
    check(st == 200, f"GET image {ref}: {st} {body}")
    return body


def chunk_digest(path, index):
    with open(path, "rb") as src:
        src.seek(index * CHUNK)
        return hashlib.sha256(src.read(CHUNK)).digest()


def report_frame(req_id, image_id, index, digest):
    """Envelope{request_id, chunk_corrupt(45): {image_id, index, expected_sha256}}."""
    body = pb_field(1, image_id.encode()) + b"\x10" + pb_varint(index) + pb_field(3, digest)
    env = b"\x08" + pb_varint(req_id) + pb_field(45, body)
    return struct.pack(">I", len(env)) + env


def board_conn(f, board="a"):
    """A board enrolled with its identity in a folder, its agent stopped:
    (bid, pem, the agent's stop function).  The caller fetches first."""
    idir = os.path.join(f.tmp, f"identity-{board}")
    p, bid = board_with_agent(f, board, extra=["--identity-dir", idir])
    return p, bid, os.path.join(idir, "identity.pem")


def stop_agent(f, p):
    p.stop()
    f.procs.remove(p)


def send_reports(f, pem, frames):
    s = tls_connect(f, pem, pem)
    s.sendall(b"".join(frames))
    return s


def one_image(f, name, chunks=4):
    path = os.path.join(f.tmp, name)
    rand_file(path, chunks * CHUNK)
    st, img = push(f, path, name)
    check(st == 201, f"push {name}: {st} {img}")
    return path, img


def case_board_report(f):
    """(a) A flipped byte in a stored chunk, scrub off: the board refuses
    the chunk and never seals the image; the chunk is quarantined (API,
    metrics, log) and not served again; re-pushing the same bytes heals it
    and the fetch then succeeds.  The chunk cache off (on PostgreSQL it is
    on by default, and it hashes each chunk it reads: it would find the
    corruption before the board; images.py chunk_cache tests that path)."""
    f.start(extra=["--scrub-rate", "0", "--chunk-cache", "0"])
    path, img = one_image(f, "rep")
    p, bid = board_with_agent(f)
    corrupt_chunk(f, img["id"], 2)
    check(not image(f, img["id"])["damaged"], "nothing is known damaged before a board sees it")
    how, err = fetch(f, bid, img["id"])
    check(how == "error" and "chunk 2" in err, f"the board refused chunk 2: {how} {err}")
    b = f.api("GET", f"/v1/boards/{bid}")[1]
    check(all(i["id"] != img["id"] for i in b.get("images", [])), f"the board never sealed the image: {b}")
    log = f.ctl.text()
    # Who found it: the board's report, re-checked in the store (the
    # controller sends chunks without re-hashing them).
    check(f"board {bid} reported chunk 2 of image {img['id']} as corrupt, and the store's copy fails" in log,
          "the board's report, re-checked in the store, found the corruption")
    wait_for(lambda: quarantined(f, "board_report") == 1, 10, "one chunk quarantined, found by the board's report")
    check(quarantined(f, "send") == 0, "not by a check before sending: there is none for the bytes")
    check("quarantined, never served again" in f.ctl.text(), "the quarantine is logged")
    shown = image(f, img["id"])
    check(shown["damaged"] and shown["quarantined_chunks"] == [2] and "quarantined" in shown["damage"],
          f"image show names the damage: {shown}")
    st, lst = f.api("GET", "/v1/images")
    check([i["damaged"] for i in lst["images"] if i["id"] == img["id"]] == [True], f"image list too: {lst}")
    st, v = f.api("POST", f"/v1/images/{img['id']}/verify")
    check(st == 200 and not v["ok"] and v["damaged"] and v["quarantined_chunks"] == [2], f"verify: {v}")
    r = skyctl(f, "image", "list")
    row = [ln for ln in r.stdout.splitlines() if img["id"] in ln]
    check(r.returncode == 0 and len(row) == 1 and "damaged" in row[0].split(), f"skyctl image list: {r.stdout}")
    r = skyctl(f, "image", "show", img["id"])
    check(r.returncode == 0 and "Damaged" in r.stdout and "1 of 4 chunks quarantined" in r.stdout,
          f"skyctl image show: {r.stdout}")
    r = skyctl(f, "image", "verify", img["id"])
    check(r.returncode != 0 and "damaged: 1 of 4 chunks quarantined" in r.stdout, f"skyctl image verify: {r.stdout}")
    # Never served again: the next fetch is refused before any bytes go.
    errs = metrics(f).get('skyroot_chunk_errors_total{reason="quarantined"}', 0)
    how, err = fetch(f, bid, img["id"])
    check(how == "error" and "quarantined" in err, f"a quarantined chunk is not served: {how} {err}")
    check(metrics(f)['skyroot_chunk_errors_total{reason="quarantined"}'] == errs + 1, "counted as quarantined")
    check(quarantined(f, "board_report") + quarantined(f, "send") + quarantined(f, "verify") == 1,
          "a chunk is quarantined once")
    # The same bytes again (another name: the chunk store is shared) heal it.
    st, again = push(f, path, "rep-again")
    check(st == 201, f"re-push: {st} {again}")
    shown = image(f, img["id"])
    check(not shown["damaged"] and shown["quarantined_chunks"] == [] and "damage" not in shown,
          f"healed: {shown}")
    how, held = fetch(f, bid, img["id"])
    check(how == "ok", f"the fetch succeeds after the re-push: {how} {held}")
    r = skyctl(f, "image", "list")
    row = [ln for ln in r.stdout.splitlines() if img["id"] in ln]
    check(len(row) == 1 and "ok" in row[0].split(), f"skyctl image list after healing: {r.stdout}")
    want = hashlib.sha256(open(path, "rb").read()).hexdigest()
    check(memfd_sha256(p.p.pid, img["id"]) == want, "the board holds the right bytes")
    st, v = f.api("POST", f"/v1/images/{img['id']}/verify")
    check(st == 200 and v["ok"] and not v["damaged"], f"verify after healing: {v}")


def case_report_checked(f):
    """A board's report of a chunk that is corrupt in the store: the
    controller re-checks it there and quarantines it (found_by
    board_report), with no send in between."""
    f.start(extra=["--scrub-rate", "0"])
    path, img = one_image(f, "chk")
    p, bid, pem = board_conn(f)
    check(fetch(f, bid, img["id"])[0] == "ok", "the board fetched the image (it was sent to it)")
    stop_agent(f, p)
    corrupt_chunk(f, img["id"], 1)
    s = send_reports(f, pem, [report_frame(1, img["id"], 1, chunk_digest(path, 1))])
    wait_for(lambda: quarantined(f, "board_report") == 1, 15, "the reported chunk quarantined")
    s.close()
    check(reports(f, "corrupt") == 1 and reports(f, "intact") == 0, "the report's outcome is counted")
    check(f"board {bid} reported chunk 1 of image {img['id']} as corrupt, and the store's copy fails"
          in f.ctl.text(), "the report and its check are logged")
    shown = image(f, img["id"])
    check(shown["damaged"] and shown["quarantined_chunks"] == [1], f"image show: {shown}")


def case_scrub(f):
    """(b) The scrub finds a corrupted chunk on its own, with no board: off
    (rate 0) it finds nothing; after SIGHUP sets a fast rate in the config
    file it quarantines the chunk and counts the bytes it read."""
    conf = os.path.join(f.tmp, "skyrootd.conf")
    with open(conf, "w") as c:
        c.write("scrub-rate = 0\n")
    f.start(extra=["--config", conf])
    path, img = one_image(f, "scr", chunks=6)
    other_path, other = one_image(f, "clean", chunks=3)
    corrupt_chunk(f, img["id"], 4)
    time.sleep(2)
    check(metrics(f).get("skyroot_scrub_bytes_total", 0) == 0, "rate 0: the scrub reads nothing")
    check(not image(f, img["id"])["damaged"], "rate 0: nothing found")
    with open(conf, "w") as c:
        c.write("scrub-rate = 1G\n")
    f.ctl.p.send_signal(signal.SIGHUP)
    wait_for(lambda: image(f, img["id"])["damaged"], 20, "the scrub to find the corrupt chunk")
    shown = image(f, img["id"])
    check(shown["quarantined_chunks"] == [4], f"only chunk 4: {shown}")
    check(not image(f, other["id"])["damaged"], "the other image is sound")
    m = metrics(f)
    check(m['skyroot_chunks_quarantined_total{found_by="scrub"}'] == 1, f"counted as the scrub's: {m}")
    check("is corrupt in the store, found by the background scrub" in f.ctl.text()
          and f"({img['id']} chunk 4)" in f.ctl.text(), "the log names the chunk and the image using it")
    wait_for(lambda: metrics(f)["skyroot_scrub_passes_total"] >= 2, 20, "the scrub to loop over the store")
    m = metrics(f)
    check(m["skyroot_scrub_bytes_total"] >= 9 * CHUNK - CHUNK, f"it read the store: {m['skyroot_scrub_bytes_total']}")
    check(m['skyroot_chunks_quarantined_total{found_by="scrub"}'] == 1, "a quarantined chunk is not found twice")
    check("scrub-rate 0 -> 1G" in f.ctl.text(), "the reload names the new rate")
    # Healing by a re-push, then the scrub finds it sound.
    st, again = push(f, path, "scr-again")
    check(st == 201 and not image(f, img["id"])["damaged"], f"healed: {again}")


def case_scrub_rate(f):
    """The scrub keeps to its rate: at 2M/s it reads about 2 MiB a second
    (never much more), from a store of 32 chunks."""
    f.start(extra=["--scrub-rate", "2M"])
    one_image(f, "big", chunks=32)
    b0 = metrics(f)["skyroot_scrub_bytes_total"]
    t0 = time.time()
    time.sleep(4)
    b1 = metrics(f)["skyroot_scrub_bytes_total"]
    rate = (b1 - b0) / (time.time() - t0)
    check(0.5 * (2 << 20) <= rate <= 1.5 * (2 << 20) + CHUNK, f"about 2 MiB/s: {rate / (1 << 20):.2f} MiB/s")


def case_scrub_resumes(f):
    """The scrub keeps its place across a restart: stopped part way through
    a pass (SIGTERM), it starts again from the chunk row it reached, not
    from the first."""
    f.start(extra=["--scrub-rate", "2M"])
    one_image(f, "many", chunks=24)
    wait_for(lambda: metrics(f)["skyroot_scrub_chunks_total"] >= 4, 20, "the scrub to get going")
    f.ctl.stop()
    f.procs.remove(f.ctl)
    rows = f.store_sql("SELECT cursor FROM scrub_state WHERE id = 0")
    row = (int(rows[0][0]),) if rows and rows[0][0] else None
    check(row is not None and row[0] > 0, f"its place is kept in the store: {rows}")
    log_before = len(f.ctl.text())
    f.start(extra=["--scrub-rate", "2M"])
    wait_for(lambda: "scrub: re-verifying the store" in f.ctl.text()[log_before:], 10, "the scrub's start line")
    check(f"from chunk row {row[0]}\n" in f.ctl.text()[log_before:], f"it resumes at row {row[0]}")


def case_lying_board(f):
    """(c) A board reporting a good chunk as corrupt: the controller
    re-checks it, quarantines nothing, logs the report as the board's
    fault (escaped), and keeps serving the image."""
    f.start(extra=["--scrub-rate", "0"])
    path, img = one_image(f, "good")
    p, bid, pem = board_conn(f)
    check(fetch(f, bid, img["id"])[0] == "ok", "the board fetched the image")
    stop_agent(f, p)
    frames = [report_frame(1, img["id"], 3, chunk_digest(path, 3)),
              # An image never sent to it, with a line break in its id.
              report_frame(2, "img-x\nFAKE LINE", 0, b"\x00" * 32)]
    s = send_reports(f, pem, frames)
    wait_for(lambda: reports(f, "intact") == 1 and reports(f, "refused") == 1, 15, "both reports handled")
    s.close()
    log = f.ctl.text()
    check(f"board {bid} reported chunk 3 of image {img['id']} (expected sha256 {chunk_digest(path, 3).hex()}) "
          "as corrupt, but the store's copy" in log and "the fault is the board's" in log,
          "the report is logged as the board's fault")
    check("img-x\\x0aFAKE LINE" in log and not any(ln.startswith("FAKE") for ln in log.splitlines()),
          "a board's text is escaped in the log")
    m = metrics(f)
    check(sum(v for k, v in m.items() if k.startswith("skyroot_chunks_quarantined_total")) == 0,
          f"nothing quarantined: {m}")
    check(not image(f, img["id"])["damaged"], "the image is not damaged")
    p2 = f.agent("a", extra=["--identity-dir", os.path.join(f.tmp, "identity-a")], hb=1000)
    wait_for(lambda: [b for b in f.boards() if b["id"] == bid and b["state"] == "online"], 20, "board back")
    st, other = push(f, path, "good2")  # same bytes, same chunks: still served
    how, _ = fetch(f, bid, other["id"])
    check(how == "ok", "the chunks are still served")
    p2.stop()


def case_agent_reports(f):
    """skyagent reports a chunk that fails its check against the signed
    manifest: here the store's index of the image points chunk 0 at chunk
    1's (intact) bytes, which the controller's own checks cannot see; the
    board refuses them and reports it, the controller re-checks and logs
    it, and quarantines nothing (the bytes are sound)."""
    f.start(extra=["--scrub-rate", "0"])
    path, img = one_image(f, "idx")
    ix = sqlq(img["id"])
    f.store_sql(f"UPDATE image_chunks SET chunk_id = (SELECT chunk_id FROM image_chunks WHERE image_id = {ix} "
                f"AND idx = 1) WHERE image_id = {ix} AND idx = 0")
    p, bid = board_with_agent(f)
    how, err = fetch(f, bid, img["id"])
    check(how == "error" and "chunk 0" in err and "SHA-256" in err, f"the board refused chunk 0: {how} {err}")
    wait_for(lambda: reports(f, "intact") == 1, 15, "the board's report re-checked")
    check(f"board {bid} reported chunk 0 of image {img['id']} as corrupt, expecting sha256 "
          f"{chunk_digest(path, 0).hex()}; the store holds chunk sha256 {chunk_digest(path, 1).hex()}"
          in f.ctl.text(), "the report and what the store holds are logged")
    m = metrics(f)
    check(sum(v for k, v in m.items() if k.startswith("skyroot_chunks_quarantined_total")) == 0,
          f"sound bytes are not quarantined: {m}")


def case_report_flood(f):
    """(d) A flood of reports: only AL_REPORT_BURST are re-checked (the
    rest dropped and counted), the drop is logged once, and the controller
    keeps answering."""
    f.start(extra=["--scrub-rate", "0"])
    path, img = one_image(f, "flood", chunks=1)
    p, bid, pem = board_conn(f)
    check(fetch(f, bid, img["id"])[0] == "ok", "the board fetched the image")
    stop_agent(f, p)
    n = 300
    digest = chunk_digest(path, 0)
    t0 = time.time()
    s = send_reports(f, pem, [report_frame(i + 1, img["id"], 0, digest) for i in range(n)])
    wait_for(lambda: reports(f, "intact") + reports(f, "dropped") == n, 20, "every report handled")
    elapsed = time.time() - t0
    s.close()
    checked = reports(f, "intact")
    # A refill every 5 s while the flood was being read.
    check(checked <= REPORT_BURST + 1 + int(elapsed / 5), f"{checked} of {n} reports re-checked in {elapsed:.1f}s")
    check(checked >= REPORT_BURST, f"the first {REPORT_BURST} are re-checked: {checked}")
    check(reports(f, "dropped") == n - checked, "the rest are dropped and counted")
    log = f.ctl.text()
    check(log.count(f"board {bid} reports corrupt chunks faster than") == 1, "the drop is logged once")
    check(log.count(f"board {bid} reported chunk 0 of image {img['id']}") == checked, "one line per re-check")
    check(f.api("GET", "/healthz", auth=False)[0] == 200, "the controller still answers")
    check(not image(f, img["id"])["damaged"], "nothing quarantined")


def main():
    return run_cases(globals(), "sky-int", Fleet)


if __name__ == "__main__":
    sys.exit(main())
