#!/usr/bin/env python3
"""What skyctl makes from its command table for shells and man: the bash
and zsh completion scripts complete nouns, verbs, flags and fixed values;
the man pages render without troff warnings and skyctl(1) lists every
command; every command's help has an example; mistyped nouns, verbs and
flags get a "did you mean".  No controller is needed.

Usage: skyctl_docs.py CASE [MAN_PAGE...]   ($SKYCTL: the skyctl binary)"""
import os
import re
import shutil
import subprocess
import sys

SKYCTL = os.environ["SKYCTL"]


def check(ok, what):
    if not ok:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kw)


def commands():
    """["token create", ..., "version", ...] from 'skyctl --help'."""
    out = run(SKYCTL, "--help").stdout
    body = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    names = []
    for line in body.splitlines():
        m = re.match(r"  ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(?=\s|$)", line)
        if m:
            names.append(" ".join(w for w in m.groups() if w))
    check(len(names) >= 20 and "guest create" in names and "version" in names, f"commands in --help: {names}")
    return names


def script(shell):
    r = run(SKYCTL, "completion", shell)
    check(r.returncode == 0 and r.stdout, f"skyctl completion {shell}: {r.returncode} {r.stderr}")
    return r.stdout


# (words typed, the last one being completed) -> words that must be offered,
# words that must not.
COMPLETIONS = [
    (["gu"], {"guest"}, {"board", "image"}),
    ([""], {"token", "board", "image", "guest", "version", "completion", "help"}, set()),
    (["guest", "st"], {"start", "stop"}, {"show", "create"}),
    (["guest", "create", "--me"], {"--memory"}, {"--name"}),
    (["guest", "create", "--"], {"--kernel", "--device", "--output", "--no-headers"}, {"--ttl", "--follow"}),
    (["board", "list", "--"], {"--no-headers", "--output"}, {"--kernel"}),
    (["-o", ""], {"table", "wide", "json", "yaml"}, {"guest"}),
    (["image", "push", "f", "--kind", ""], {"kernel", "initrd", "disk"}, set()),
    (["guest", "create", "--backend", ""], {"qemu", "libvirt"}, set()),
    (["-o", "json", "gu"], {"guest"}, set()),
    (["help", "gu"], {"guest"}, set()),
    (["help", "guest", "c"], {"create", "console"}, {"start"}),
    (["completion", ""], {"bash", "zsh"}, set()),
]


def case_completion_bash():
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"skyctl-completion-{os.getpid()}.bash")
    with open(path, "w") as fh:
        fh.write(script("bash"))
    try:
        r = run("bash", "-n", path)
        check(r.returncode == 0, f"bash -n: {r.stderr}")
        for typed, want, not_want in COMPLETIONS:
            words = " ".join(f"'{w}'" for w in ["skyctl"] + typed)
            prog = (f"source '{path}'\n"
                    "complete -p skyctl >/dev/null || exit 3\n"
                    f"COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=()\n"
                    "_skyctl\n"
                    "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
            r = run("bash", "--norc", "--noprofile", "-c", prog)
            got = set(r.stdout.split())
            check(r.returncode == 0 and want <= got and not (not_want & got),
                  f"bash: completing {typed} gave {sorted(got)}, wants {sorted(want)} and none of {sorted(not_want)}: {r.stderr}")
        # A file argument is completed with file names.
        d = os.path.dirname(path)
        prog = (f"source '{path}'; cd '{d}'\n"
                f"COMP_WORDS=(skyctl image push '{os.path.basename(path)[:-3]}'); COMP_CWORD=3; COMPREPLY=()\n"
                "_skyctl; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
        r = run("bash", "--norc", "--noprofile", "-c", prog)
        check(os.path.basename(path) in r.stdout.split(), f"bash: image push FILE completes files: {r.stdout} {r.stderr}")
    finally:
        os.unlink(path)


def case_completion_zsh():
    zsh = shutil.which("zsh")
    check(zsh is not None, "zsh is not installed (deploy/packages/cli.txt lists it; run deploy/deps.sh)")
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"skyctl-completion-{os.getpid()}.zsh")
    text = script("zsh")
    check(text.startswith("#compdef skyctl\n"), "the zsh script starts with #compdef")
    with open(path, "w") as fh:
        fh.write(text)
    try:
        r = run(zsh, "-n", path)
        check(r.returncode == 0, f"zsh -n: {r.stderr}")
        # The script run by zsh itself, with the completion system's
        # builtins (compadd, _files, compdef) standing in as recorders.
        for typed, want, not_want in COMPLETIONS:
            words = " ".join(f"'{w}'" for w in ["skyctl"] + typed)
            prog = ("compdef() { print -r -- \"compdef $*\" >&2 }\n"
                    # zsh's compadd keeps the words that match what is typed
                    "compadd() { [[ $1 == -- ]] && shift; local w; for w in \"$@\"; do "
                    "[[ $w == ${words[CURRENT]}* ]] && print -r -- $w; done; return 0 }\n"
                    "_files() { print -r -- @FILES }\n"
                    f"source '{path}'\n"
                    f"words=({words}); CURRENT=${{#words}}\n"
                    "_skyctl\n")
            r = run(zsh, "-f", "-c", prog)
            got = set(r.stdout.split())
            check(r.returncode == 0 and "compdef _skyctl skyctl" in r.stderr, f"zsh: sourcing registers _skyctl: {r.stderr}")
            check(want <= got and not (not_want & got),
                  f"zsh: completing {typed} gave {sorted(got)}, wants {sorted(want)} and none of {sorted(not_want)}: {r.stderr}")
    finally:
        os.unlink(path)


def case_completion_errors():
    r = run(SKYCTL, "completion", "fish")
    check(r.returncode == 2 and "bash|zsh" in r.stderr, f"an unknown shell is a usage error: {r.returncode} {r.stderr}")
    r = run(SKYCTL, "completion")
    check(r.returncode == 2 and "needs bash|zsh" in r.stderr, f"no shell: {r.returncode} {r.stderr}")


def case_man(*pages):
    check(len(pages) == 3, f"three man pages: {pages}")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_STDERR="1")
    for page in pages:
        name = os.path.basename(page).split(".")[0]
        r = run("man", "-l", "--warnings", page, env=env)
        text = r.stdout + r.stderr
        check(r.returncode == 0, f"man -l {page}: {r.returncode} {r.stderr}")
        check(re.search(r"^NAME\n\s+" + re.escape(name) + r" - \S", text, re.M), f"{page} has a NAME line:\n{text[:400]}")
        check("warning" not in text.lower() and "troff:" not in text, f"{page} renders without warnings:\n{text}")
        check(re.search(r"^SEE ALSO$", text, re.M), f"{page} has SEE ALSO")
        if name == "skyctl":
            # Made from the command table: every command and its example.
            for c in commands():
                check(re.search(r"^   " + re.escape(c) + r"(\s|$)", text, re.M), f"skyctl(1) documents '{c}'")
            check(text.count("Example:") >= len(commands()) - 1, "skyctl(1) has the examples")
            check("--no-headers" in text and "table|wide|json|yaml" in text, "skyctl(1) has the global options")
        if name == "skyrootd":
            helptext = run(os.environ["SKYROOTD"], "--help").stdout + run(os.environ["SKYROOTD"], "--help").stderr
            for flag in sorted(set(re.findall(r"--[a-z][a-z-]+", helptext))):
                check(flag in text, f"skyrootd(8) documents {flag} of skyrootd --help")
        if name == "skyagent":
            r2 = run(os.environ["SKYAGENT"], "--help")
            for flag in sorted(set(re.findall(r"--[a-z][a-z-]+", r2.stdout + r2.stderr))):
                check(flag in text, f"skyagent(8) documents {flag} of skyagent --help")


def case_help_examples():
    for c in commands():
        if c == "help":
            continue
        r = run(SKYCTL, "help", *c.split())
        m = re.search(r"^example:\n  (skyctl .*|source <\(skyctl .*)$", r.stdout, re.M)
        check(r.returncode == 0 and m, f"'skyctl help {c}' has an example: {r.stdout}")
        check(c in m.group(1), f"the example of '{c}' uses it: {m.group(1)}")
    r = run(SKYCTL, "guest", "create", "--help")
    check(r.returncode == 0 and "example:" in r.stdout, "--help after a command shows the example")


def case_did_you_mean():
    for args, says in ((["gust", "list"], "did you mean 'guest'"),
                       (["guest", "creat"], "did you mean 'create'"),
                       (["versoin"], "did you mean 'version'"),
                       (["board", "list", "--no-header"], "did you mean '--no-headers'"),
                       (["-o", "yml", "board", "list"], "table, wide, json or yaml"),
                       (["help", "imgae"], "did you mean 'image'")):
        r = run(SKYCTL, *args)
        check(r.returncode == 2 and says in r.stderr, f"skyctl {args}: exit 2 saying {says!r}: {r.returncode} {r.stderr}")


def main():
    name = sys.argv[1]
    globals()["case_" + name](*sys.argv[2:])
    print(f"ok {name}")


if __name__ == "__main__":
    main()
