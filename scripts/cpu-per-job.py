#!/usr/bin/env python3
"""CPU a spawner spends per `true` job, in units of one `true` command's own CPU.

Runs each command under `perf record -a -e task-clock` and divides the samples of every process
other than the `true` children (and the kernel's own threads) by the samples of the `true`
children. The host's speed swings within the hour, but both sides swing alike, so this ratio is
steadier than wall time. When the cores are busy throughout, the wall-time ratio of two spawners
follows (1 + a) / (1 + b).

Run after `scripts/bench.py` (it uses the bench's repository, home and make file):

    python3 scripts/cpu-per-job.py [rounds]

Rows: GNU make -j2, the tokio process floor (sparkwing/examples/spawn-floor.rs, built when
missing), the cached pipeline binary run directly, and `sparkwing run`, alternated each round.
Needs `perf` with permission to sample the whole system (root, or perf_event_paranoid <= 0).
"""
import os, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SPARKWING = os.path.join(ROOT, "target", "release", "sparkwing")
WORK = os.path.join(ROOT, "target", "bench")
REPO = os.path.join(WORK, "repo")
HOME = os.path.join(WORK, "home")
FLOOR = os.path.join(ROOT, "target", "release", "examples", "spawn-floor")
KERNEL_THREADS = ("swapper", "perf", "ksoftirqd", "rcu_", "kworker", "migration", "kthreadd")


def share(cmd, env):
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        subprocess.run(["perf", "record", "-q", "-a", "-e", "task-clock", "-o", data, "--"] + cmd,
                       env=env, cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = subprocess.run(["perf", "report", "-i", data, "--sort", "comm", "--stdio"],
                             check=True, capture_output=True, text=True).stdout
    children = others = 0.0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or line.startswith("#") or not parts[0].endswith("%"):
            continue
        pct, comm = float(parts[0].rstrip("%")), parts[1]
        if comm == "true":
            children += pct
        elif not comm.startswith(KERNEL_THREADS):
            others += pct
    if children == 0:
        sys.exit(f"no samples of `true` for {cmd[0]}: is perf allowed to sample the system?")
    return others / children


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if shutil.which("perf") is None:
        sys.exit("perf is not installed (Debian: apt-get install linux-perf)")
    entries = os.path.join(HOME, "cache", "pipelines", "v1", "entries")
    if not os.path.isdir(entries):
        sys.exit("no cached pipeline binary: run `python3 scripts/bench.py` first")
    binary = max((os.path.join(entries, e, "pipeline") for e in os.listdir(entries)),
                 key=os.path.getmtime)
    if not os.path.exists(FLOOR):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "sparkwing",
                        "--example", "spawn-floor"], cwd=ROOT, check=True)
    env = dict(os.environ, SPARKWING_HOME=HOME, SPARKWING_LOG_FORMAT="plain",
               SPARKWING_CARGO_TARGET_DIR=os.path.join(ROOT, "target", "bench-pipelines"))
    direct_env = dict(env, SPARKWING_WORKERS="2", SPARKWING_MODE="local",
                      SPARKWING_WORK_DIR=REPO)
    rows = {
        "make -j2": (["make", "-j2", "-f", os.path.join(WORK, "Makefile")], env),
        "tokio floor": ([FLOOR, "1000", "/usr/bin/true"], env),
        "pipeline binary, direct": ([binary, "shell", "--count", "1000"], direct_env),
        "sparkwing run": ([SPARKWING, "run", "shell", "--count", "1000", "--sw-workers=2"], env),
    }
    got = {name: [] for name in rows}
    for r in range(rounds):
        order = list(rows.items())
        if r % 2:
            order.reverse()
        for name, (cmd, e) in order:
            if name == "pipeline binary, direct":
                e = dict(e, SPARKWING_RUN_ID=f"run-20260101-000000-{os.getpid() & 0xffff:04x}{r:04x}")
            got[name].append(share(cmd, e))
    for name, values in got.items():
        print(f"{name:25} {statistics.median(values):.3f}  "
              f"({', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
