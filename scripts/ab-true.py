#!/usr/bin/env python3
"""A/B of CLIs on the 1,000-`true` row: wall time and the CPU of the whole process tree.

Each round runs `make -j2` on the same 1,000 commands and `<cli> run shell --count 1000
--sw-workers=2` for every CLI given, in an order that alternates round by round, so every row sees
the same state of a shared machine. Prints, per row, the median wall time and the median CPU
(`perf stat -e task-clock`, the process and all its children, the `true`s included) and both as
ratios to make's.

Run after `scripts/bench.py` (it uses the bench's repository, home and make file); each CLI
builds its own pipeline binary once, before the rounds:

    python3 scripts/ab-true.py [--rounds N] <cli> [<cli> ...]

The bench home's runs and record database are emptied first: a database that holds many runs
makes the supervisor's writes dearer for every CLI alike, and blurs the comparison.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

import bench


def measure(cmd, repo, env):
    """(wall seconds, CPU milliseconds) of one run of `cmd`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "stat.csv")
        began = time.perf_counter()
        subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "-o", out, "--"] + cmd,
                       cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - began
        for line in open(out):
            fields = line.split(",")
            if len(fields) > 2 and fields[2] == "task-clock":
                return wall, float(fields[0])
    sys.exit(f"perf stat printed no task-clock for {cmd[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("clis", nargs="+")
    a = ap.parse_args()
    a.clis = [os.path.abspath(c) if os.sep in c else c for c in a.clis]
    repo, home, makefile, env = bench.last_bench()
    for cli in a.clis:
        subprocess.run([cli, "run", "hello"], cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for name in ("runs", "artifacts", "active"):
        shutil.rmtree(os.path.join(home, name), ignore_errors=True)
    for name in os.listdir(home):
        if name.startswith("state.db"):
            os.remove(os.path.join(home, name))
    rows = {"make -j2": ["make", "-j2", "-f", makefile]}
    for cli in a.clis:
        rows[cli] = [cli, "run", "shell", "--count", "1000", "--sw-workers=2"]
    got = {name: [] for name in rows}
    for r in range(a.rounds):
        order = list(rows) if r % 2 == 0 else list(rows)[::-1]
        for name in order:
            got[name].append(measure(rows[name], repo, env))
    wall0 = statistics.median(w for w, _ in got["make -j2"])
    cpu0 = statistics.median(c for _, c in got["make -j2"])
    for name, runs in got.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:40} wall {wall * 1000:6.0f} ms ({wall / wall0:.3f})   "
              f"cpu {cpu:6.0f} ms ({cpu / cpu0:.3f})")


if __name__ == "__main__":
    main()
