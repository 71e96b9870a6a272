#!/usr/bin/env python3
"""Where a job's end waits: scheduler timelines of the 1,000-`true` row, make against a CLI.

For `make -j2` and for `<cli> run shell --count N --sw-workers=2` (run after `scripts/bench.py`,
in its repository and home), records the scheduler's and the reaping calls' trace events with
`perf record` and prints, per `true`:

- exit → reap: from the `true` exiting to its parent's `wait4` for it;
- reap → next spawn: from that `wait4` to the parent's next `clone3` (glibc's `posix_spawn`,
  make's and the portable way) or `clone` (how the SDK starts a command on Linux);
- spawn → exec: from the parent's clone to the new process's `execve` completing (the child's
  work before its program runs, while the cloning thread waits: `CLONE_VFORK`);
- wake-up → running: how long a thread of the parent waited for a CPU after being woken.

    python3 scripts/sched-latency.py [--count N] <cli>
"""
import argparse, os, re, statistics, subprocess, tempfile

import bench

EVENTS = ["sched:sched_process_exit", "sched:sched_switch", "sched:sched_wakeup",
          "syscalls:sys_enter_wait4", "syscalls:sys_exit_wait4", "syscalls:sys_enter_clone3",
          "syscalls:sys_enter_clone", "syscalls:sys_exit_clone3", "syscalls:sys_exit_clone",
          "sched:sched_process_exec"]
LINE = re.compile(r"\s*(\S+)\s+(\d+)\s+\[\d+\]\s+(\d+\.\d+):\s+(\S+):\s*(.*)")


def trace(cmd, repo, env):
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        subprocess.run(["perf", "record", "-q", "-o", data] + sum((["-e", e] for e in EVENTS), [])
                       + ["--"] + cmd, cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True).stdout
    rows = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            rows.append((float(m.group(3)), int(m.group(2)), m.group(1), m.group(4), m.group(5)))
    rows.sort()
    return rows


def summary(name, rows, parent_comms):
    exited, reaps, spawns, woken, waits = {}, [], [], {}, []
    cloning, spawned, execs = {}, {}, []
    for i, (t, tid, comm, ev, rest) in enumerate(rows):
        if ev in ("syscalls:sys_enter_clone3", "syscalls:sys_enter_clone") and comm in parent_comms:
            cloning[tid] = t
        elif ev in ("syscalls:sys_exit_clone3", "syscalls:sys_exit_clone") and tid in cloning:
            m = re.search(r"0x([0-9a-f]+)", rest)
            if m:
                spawned[int(m.group(1), 16)] = cloning.pop(tid)
        elif ev == "sched:sched_process_exec" and tid in spawned:
            execs.append(t - spawned.pop(tid))
        elif ev == "sched:sched_process_exit" and "comm=true" in rest:
            exited[int(re.search(r" pid=(\d+)", rest).group(1))] = t
        elif ev in ("syscalls:sys_enter_wait4", "syscalls:sys_exit_wait4") and comm in parent_comms:
            # make waits for any child (the pid is in the return value); tokio for one.
            m = re.search(r"upid: (0x[0-9a-f]+)", rest) or re.search(r"^(0x[0-9a-f]+)", rest)
            pid = int(m.group(1), 16) if m else -1
            if pid in exited:
                reaps.append(t - exited.pop(pid))
                nxt = next((r[0] for r in rows[i:i + 400]
                            if r[1] == tid and r[3] in ("syscalls:sys_enter_clone3",
                                                          "syscalls:sys_enter_clone")), None)
                if nxt is not None:
                    spawns.append(nxt - t)
        elif ev == "sched:sched_wakeup":
            m = re.search(r"comm=(\S+) pid=(\d+)", rest)
            if m and m.group(1) in parent_comms:
                woken[int(m.group(2))] = t
        elif ev == "sched:sched_switch":
            m = re.search(r"next_pid=(\d+)", rest)
            if m and int(m.group(1)) in woken:
                waits.append(t - woken.pop(int(m.group(1))))

    def fmt(v):
        if not v:
            return "n/a"
        v = sorted(x * 1e6 for x in v)
        return (f"median {statistics.median(v):5.0f} µs, mean {statistics.mean(v):5.0f}, "
                f"p90 {v[int(len(v) * 0.9)]:5.0f} (n={len(v)})")
    print(f"{name}\n  exit → reap:         {fmt(reaps)}\n  reap → next spawn:   {fmt(spawns)}\n"
          f"  spawn → exec:        {fmt(execs)}\n  wake-up → running:   {fmt(waits)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("cli")
    a = ap.parse_args()
    repo, _, makefile, env = bench.last_bench()
    cli = os.path.abspath(a.cli) if os.sep in a.cli else a.cli
    subprocess.run([cli, "run", "hello"], cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary("make -j2", trace(["make", "-j2", "-f", makefile], repo, env), {"make"})
    # The pipeline binary's runtime threads are named `sparkwing`.
    summary(cli, trace([cli, "run", "shell", "--count", str(a.count), "--sw-workers=2"], repo, env),
            {"sparkwing"})


if __name__ == "__main__":
    main()
