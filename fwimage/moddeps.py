#!/usr/bin/env python3
"""Print the load order of kernel modules from a depmod modules.dep file.

usage: moddeps.py --dep FILE [--builtin FILE] [--skip-missing] [--names]
                  MODULE [MODULE...]

Each MODULE is a module name (kvm_amd, vfio-pci: '-' and '_' are the same,
as the kernel treats them) or a path/file name (kernel/.../kvm-amd.ko).
A name prefixed with '?' is optional: when the modules.dep has no such
module a warning goes to stderr and the rest is still resolved.

Output: one line per module to load, dependencies first (a module appears
once, before every module that needs it), in the form modules.dep uses
(paths relative to /lib/modules/VERSION), or module names with --names.

Exit status: 0 on success; 1 when a required module is missing, the
dependency graph has a cycle, or modules.dep is malformed or inconsistent
(a dependency with no line of its own); 2 on bad usage.

Only the Python standard library is used, so this runs at build time on
any Debian machine and can be unit-tested (fwimage/test_moddeps.sh).
"""

import argparse
import os
import sys

PROG = "moddeps"

_SUFFIXES = (".ko.xz", ".ko.zst", ".ko.gz", ".ko")


class ModdepsError(Exception):
    """An error that the user must fix; the message says what and how."""


def modname(token):
    """Normalise a module path or name to the kernel's module name."""
    base = os.path.basename(token.strip())
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_modules_dep(text, source="modules.dep"):
    """Parse modules.dep text into (paths, deps).

    paths: name -> path as written; deps: name -> list of dependency names
    in the order written.  Raises ModdepsError on a malformed line.
    """
    paths = {}
    deps = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            raise ModdepsError(
                "%s:%d: malformed line (expected 'module.ko: dep.ko ...'): %r"
                % (source, lineno, raw)
            )
        head, _, tail = line.partition(":")
        head = head.strip()
        if not head or " " in head:
            raise ModdepsError(
                "%s:%d: malformed module path %r" % (source, lineno, head)
            )
        name = modname(head)
        if name in paths:
            raise ModdepsError(
                "%s:%d: module %s listed twice (first as %s)"
                % (source, lineno, name, paths[name])
            )
        paths[name] = head
        deps[name] = [modname(t) for t in tail.split()]
    return paths, deps


def parse_builtin(text):
    """Names of modules built into the kernel (modules.builtin)."""
    return {modname(l) for l in text.splitlines() if l.strip() and not l.startswith("#")}


def resolve(paths, deps, wanted, builtin=frozenset(), skip_missing=False, warn=None):
    """Return the load order (list of names) for the wanted modules.

    wanted: names, optionally prefixed with '?' (optional).  Missing
    optional modules (or any with skip_missing) are reported through
    warn(msg) and skipped; a missing required one raises ModdepsError, as
    does a cycle or a dependency that has no line in modules.dep.
    """
    if warn is None:
        warn = lambda msg: None  # noqa: E731
    order = []
    state = {}  # name -> "visiting" | "done"

    def visit(name, chain):
        st = state.get(name)
        if st == "done":
            return
        if st == "visiting":
            cycle = chain[chain.index(name):] + [name]
            raise ModdepsError("dependency cycle: " + " -> ".join(cycle))
        if name not in paths:
            # Only reachable for dependencies: requested names are checked
            # by the caller.
            if name in builtin:
                state[name] = "done"
                return
            raise ModdepsError(
                "modules.dep is inconsistent: %s needs %s, which has no line "
                "of its own (regenerate it with depmod)" % (chain[-1], name)
            )
        state[name] = "visiting"
        for dep in deps[name]:
            visit(dep, chain + [name])
        state[name] = "done"
        order.append(name)

    for item in wanted:
        optional = item.startswith("?")
        name = modname(item[1:] if optional else item)
        if not name:
            raise ModdepsError("empty module name in request %r" % item)
        if name not in paths:
            if name in builtin:
                warn("%s is built into the kernel; nothing to load" % name)
                continue
            if optional or skip_missing:
                warn("%s: no such module in this kernel; skipped" % name)
                continue
            raise ModdepsError(
                "module %s not found in modules.dep (is it built into the "
                "kernel, absent from this flavour, or misspelt? prefix it "
                "with '?' to make it optional)" % name
            )
        visit(name, [])
    return order


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="moddeps.py",
        description="Print the load order (dependencies first) of kernel "
        "modules according to a depmod modules.dep file.",
        epilog="A MODULE prefixed with '?' is optional. Exit 1 on a missing "
        "required module, a cycle or a malformed modules.dep.",
    )
    ap.add_argument("--dep", required=True, metavar="FILE", help="modules.dep to read")
    ap.add_argument("--builtin", metavar="FILE", help="modules.builtin: names built into the kernel")
    ap.add_argument("--skip-missing", action="store_true", help="treat every requested module as optional")
    ap.add_argument("--names", action="store_true", help="print module names instead of paths")
    ap.add_argument("modules", nargs="+", metavar="MODULE")
    args = ap.parse_args(argv)

    def warn(msg):
        print("%s: warning: %s" % (PROG, msg), file=sys.stderr)

    try:
        try:
            with open(args.dep, encoding="utf-8") as f:
                paths, deps = parse_modules_dep(f.read(), args.dep)
        except OSError as e:
            raise ModdepsError("cannot read %s: %s (run depmod -b ROOT VERSION first)" % (args.dep, e.strerror))
        builtin = frozenset()
        if args.builtin:
            try:
                with open(args.builtin, encoding="utf-8") as f:
                    builtin = frozenset(parse_builtin(f.read()))
            except OSError as e:
                raise ModdepsError("cannot read %s: %s" % (args.builtin, e.strerror))
        order = resolve(paths, deps, args.modules, builtin, args.skip_missing, warn)
    except ModdepsError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 1
    for name in order:
        print(name if args.names else paths[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
