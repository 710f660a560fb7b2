#!/usr/bin/env python3
"""Bare-metal boot orders across controllers (issue 14; boots.c,
api_boards.c): fleet_ha.py's three skyrootd on one private PostgreSQL and
real skyagents spread over them.

Usage: fleet_ha_boots.py CASE
  boot      an order through A for a board held by B (or C) is 202, relayed
            (A's log), refused by the board's agent (no --allow-kexec: its
            log says so), and the refusal with its reason is the same
            "boot" on A, B and C (and its events, the order's then the
            answer's, on C); skyctl board boot through the third
            controller waits for the refusal and exits 1 with the reason;
            a board with --allow-kexec held elsewhere takes an order and
            fails it (kexec_file_load of a kernel that is not one), shown
            alike everywhere; a board nobody holds is 409; A killed (-9)
            and started again still shows both boots and sends new orders.

Skips (77) when PostgreSQL is not installed (fleet_ha.skip)."""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fleet_ha  # noqa: E402
from fleet_ha import holder_of  # noqa: E402
from fleetlib import SKY_SLOW, Fail, check, run_cases, skyctl, wait_for  # noqa: E402

BOARDS = 6          # 0-2 refuse a kexec, 3-5 run with --allow-kexec
ANSWER_S = 30 * SKY_SLOW


def boot_views(h, bid, ctls=None):
    """The board's "boot" as each controller shows it."""
    out = []
    for x in ctls or h.ctls:
        st, body = x.api("GET", f"/v1/boards/{bid}")
        check(st == 200, f"board {bid} through {x.name}: {st} {body}")
        out.append(body.get("boot"))
    return out


def settled_alike(h, bid, order, state, ctls=None):
    """Every controller shows order `order` of board bid in `state`, the
    same object on each: that object, else None (for wait_for)."""
    v = boot_views(h, bid, ctls)
    if all(b and b.get("request_id") == order and b.get("state") == state for b in v) and \
            all(b == v[0] for b in v):
        return v[0]
    return None


def order_boot(x, bid, kernel="not-a-kernel"):
    st, body = x.api("POST", f"/v1/boards/{bid}/boot", {"kernel": kernel})
    check(st == 202 and body["boot"]["state"] == "sent" and body["boot"]["request_id"],
          f"boot order through {x.name} for a board held elsewhere: {st} {body}")
    return body["boot"]["request_id"]


def case_boot(h):
    h.start()
    a, b, c = h.ctls
    tok = a.token(uses=BOARDS)
    for i in range(BOARDS):
        h.agent(i, tok["token"], extra=["--allow-kexec"] if i >= 3 else [])
    h.all_online(h.ctls, BOARDS, 60 * SKY_SLOW)
    ids = h.self_ids()
    names = {bid: x["name"] for bid, x in a.online().items()}

    def held_elsewhere(kexec, skip=()):
        """A board of the group (with --allow-kexec or not) held by B or C."""
        for bid, nm in sorted(names.items(), key=lambda kv: kv[1]):
            if (int(nm[2:]) >= 3) == kexec and bid not in skip:
                who = holder_of(h, ids, bid)
                if who not in (None, a):
                    return bid, who
        raise Fail(f"no board {'with' if kexec else 'without'} --allow-kexec held by B or C: {h.holders()}")

    kern = os.path.join(h.tmp, "not-a-kernel")
    with open(kern, "wb") as out:
        out.write(os.urandom(200 * 1024))
    r = skyctl(a, "image", "push", kern, "--name", "not-a-kernel", "--kind", "kernel")
    check(r.returncode == 0, f"image push: {r.stderr}")

    # Refused: ordered through A, held by another, the answer alike everywhere.
    rb, holder = held_elsewhere(False)
    rv = c.api("GET", "/v1/events?limit=1")[1]["resource_version"]
    order = order_boot(a, rb)
    boot = wait_for(lambda: settled_alike(h, rb, order, "refused"), ANSWER_S,
                    f"the refusal of board {names[rb]} (held by {holder.name}) on A, B and C")
    check("--allow-kexec" in (boot.get("error") or "") and boot.get("updated_at"),
          f"the board's reason is shown: {boot}")
    check(f"envelope relayed to {ids[holder.name]}" in a.ctl.text(),
          f"A relayed the order to {holder.name} (its log says so)")
    check(re.search(rf"board {rb}: bare-metal boot refused \(order {order}\)", holder.ctl.text()),
          f"{holder.name}, the holder, matched the board's answer to A's order {order}")
    check("bare-metal boot refused" in h.agents[names[rb]].text(), "the board's agent logs the refusal")
    for x in h.ctls:
        st, body = x.api("GET", f"/v1/boards/{rb}")
        check(body["state"] == "online", f"a refusing board stays online on {x.name}: {body['state']}")
        listed = {y["id"]: y for y in x.boards()}
        check(listed[rb]["boot"] == boot and all(y["boot"] is None for i, y in listed.items() if i != rb),
              f"the board list through {x.name} shows the boot of that board only: {listed[rb]['boot']}")
    # The order's event (A's) and the answer's (the holder's), in order, on C.
    st, body = c.api("GET", f"/v1/events?since={rv}&id={rb}")
    evs = [(e["type"], e["detail"].get("request_id")) for e in body["events"]
           if e["type"] in ("board.boot_sent", "board.refused")]
    check(evs == [("board.boot_sent", str(order)), ("board.refused", str(order))],
          f"the order and its refusal, in that order, through C: {evs}")
    print(f"board {names[rb]} on {holder.name}: order {order} through A refused, shown alike on A, B, C")

    # skyctl through the third controller follows the holder's events.
    third = next(x for x in h.ctls if x not in (a, holder))
    r = skyctl(third, "--controller", f"https://127.0.0.1:{third.api_port}", "board", "boot", names[rb],
               "--kernel", "not-a-kernel")
    check(r.returncode == 1 and "refused" in r.stderr and "--allow-kexec" in r.stderr,
          f"skyctl board boot through {third.name} waits for the refusal: {r.returncode} {r.stdout} {r.stderr}")
    order2 = boot_views(h, rb, [third])[0]["request_id"]
    check(order2 != order, f"a new order, a new id: {order2}")
    wait_for(lambda: settled_alike(h, rb, order2, "refused"), ANSWER_S, "the second refusal on A, B and C")
    check(f"envelope relayed to {ids[holder.name]}" in third.ctl.text(),
          f"{third.name} relayed the order to {holder.name}")

    # Accepted, then failed: a board with --allow-kexec held elsewhere.
    kb, kholder = held_elsewhere(True)
    sender = next(x for x in h.ctls if x is not kholder)
    korder = order_boot(sender, kb)
    kboot = wait_for(lambda: settled_alike(h, kb, korder, "failed"), ANSWER_S,
                     f"the failed kexec of board {names[kb]} (held by {kholder.name}) on A, B and C")
    check("kexec_file_load" in (kboot.get("error") or ""), f"the board says why: {kboot}")
    check("kexec_file_load failed" in h.agents[names[kb]].text(), "the board's agent logs the failure")
    print(f"board {names[kb]} on {kholder.name}: order {korder} through {sender.name}: {kboot['error']!r}")

    # Nobody holds it: 409, and offline (not 'baremetal') everywhere.
    h.agents[names[rb]].stop()
    wait_for(lambda: all(x.api("GET", f"/v1/boards/{rb}")[1]["state"] != "online" for x in h.ctls),
             20 * SKY_SLOW, f"board {names[rb]} offline on A, B and C")
    for x in h.ctls:
        st, body = x.api("GET", f"/v1/boards/{rb}")
        check(body["state"] == "offline", f"a board that refused is offline on {x.name}: {body['state']}")
        st, body = x.api("POST", f"/v1/boards/{rb}/boot", {"kernel": "not-a-kernel"})
        check(st == 409 and "offline" in body["error"]["message"],
              f"boot through {x.name} on a board nobody holds: {st} {body}")
    check(settled_alike(h, rb, order2, "refused"), "a 409 leaves the last order as it was")

    # A restarted still shows both boots, and its new orders are settled.
    a.kill()
    a.start()
    check(boot_views(h, rb, [a])[0] == settled_alike(h, rb, order2, "refused"),
          f"A restarted shows board {names[rb]}'s last boot: {boot_views(h, rb, [a])}")
    check(boot_views(h, kb, [a])[0] == kboot, f"A restarted shows board {names[kb]}'s failed boot")
    h.all_online([b, c], BOARDS - 1, 30 * SKY_SLOW)
    nb, nholder = held_elsewhere(False, skip=(rb,))
    norder = order_boot(a, nb)
    wait_for(lambda: settled_alike(h, nb, norder, "refused"), ANSWER_S,
             f"an order through A restarted refused by board {names[nb]} (held by {nholder.name})")
    print(f"A killed and started again: shows both boots; order {norder} through it refused by {names[nb]}")


if __name__ == "__main__":
    try:
        sys.exit(run_cases(globals(), "fleet-ha-boots", fleet_ha.make, skip=fleet_ha.skip))
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
