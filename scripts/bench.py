#!/usr/bin/env python3
"""Benchmarks of `sparkwing run` in local mode (make bench runs this).

Each number is reported with a baseline measured in the same run, because the machine is shared
and noisy: ratios, not absolute timings, are what to compare across runs.

`BENCH_BASELINE_SPARKWING=<an older sparkwing binary>` adds that CLI to the dispatch rows, run
interleaved with this one, for an A/B of a change on the same machine state.
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SPARKWING = os.path.join(ROOT, "target", "release", "sparkwing")
WORK = os.path.join(ROOT, "target", "bench")
TARGET_DIR = os.path.join(ROOT, "target", "bench-pipelines")


def sh(args, **kw):
    return subprocess.run(args, check=True, **kw)


def prepare():
    repo = os.path.join(WORK, "repo")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(repo)
    shutil.copytree(os.path.join(ROOT, "fixtures", "sample", ".sparkwing"), os.path.join(repo, ".sparkwing"),
                    ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    git = lambda *a: sh(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *a], cwd=repo,
                        stdout=subprocess.DEVNULL)
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "bench")
    home = os.path.join(WORK, "home")
    os.makedirs(home)
    return repo, home, bench_env(home)


def bench_env(home):
    """The environment CLIs run in here: the bench's home and pipeline target directory, plain logs,
    and nothing of the caller's that would choose a toolchain, a mode or a worker count."""
    env = dict(os.environ)
    for k in ("RUSTUP_TOOLCHAIN", "RUSTC", "SPARKWING_MODE", "SPARKWING_WORKERS"):
        env.pop(k, None)
    env.update(SPARKWING_HOME=home, SPARKWING_CARGO_TARGET_DIR=TARGET_DIR, SPARKWING_LOG_FORMAT="plain")
    return env


def last_bench():
    """(repository, home, make file, environment) of the last run of this script, for the scripts
    that time the 1,000-`true` row with `perf`; exits with what to do when one is missing."""
    if shutil.which("perf") is None:
        sys.exit("perf is not installed (Debian: apt-get install linux-perf)")
    repo, home, makefile = (os.path.join(WORK, n) for n in ("repo", "home", "Makefile"))
    if not (os.path.isdir(repo) and os.path.exists(makefile)):
        sys.exit("no bench repository or make file: run `python3 scripts/bench.py` first")
    return repo, home, makefile, bench_env(home)


def timed(args, cwd, env, quiet=True):
    t = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.DEVNULL if quiet else None)
    return time.perf_counter() - t


def median_of(n, f):
    return statistics.median(f() for _ in range(n))


def cached_binary(home):
    entries = os.path.join(home, "cache", "pipelines", "v1", "entries")
    (key,) = os.listdir(entries)
    return os.path.join(entries, key, "pipeline")


def rss_of_supervisor(args, cwd, env):
    """Peak RSS (VmHWM) of the sparkwing process itself, not of the pipeline child."""
    p = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    return peak


def main():
    sh(["cargo", "build", "--release", "-p", "sparkwing-cli"], cwd=ROOT)
    repo, home, env = prepare()
    print("==> building the sample pipelines once (release)", file=sys.stderr)
    sh([SPARKWING, "run", "hello"], cwd=repo, env=env, stdout=subprocess.DEVNULL)
    rows = []

    # 1. Warm `sparkwing run` vs the cached binary run directly with the same environment.
    binary = cached_binary(home)
    def direct_env(extra=None):
        """What the supervisor would hand the binary, with a fresh run id each time."""
        return dict(env, SPARKWING_RUN_ID="run-20260101-000000-%08x" % (time.perf_counter_ns() & 0xffffffff),
                    SPARKWING_WORKERS="2", SPARKWING_MODE="local", SPARKWING_WORK_DIR=repo, **(extra or {}))
    n = 20
    def direct():
        return timed([binary, "noop", "--count", "1"], repo, direct_env())
    # Interleaved, so that both medians see the same state of a shared machine.
    vias, raws = [], []
    for _ in range(n):
        vias.append(timed([SPARKWING, "run", "noop", "--count", "1", "--sw-workers=2"], repo, env))
        raws.append(direct())
    via, raw = statistics.median(vias), statistics.median(raws)
    rows.append(("warm `sparkwing run noop --count 1` vs the cached binary run directly (interleaved, median of 20)",
                 f"{via*1000:.1f} ms vs {raw*1000:.1f} ms: +{(via-raw)*1000:.1f} ms", "≤ 10 ms added"))

    # 2. 10,000 in-process no-op jobs, 2 workers, SQLite on.
    baseline = os.environ.get("BENCH_BASELINE_SPARKWING")
    clis = [SPARKWING] + ([baseline] if baseline else [])
    if baseline:
        sh([baseline, "run", "hello"], cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    totals, starts = {c: [] for c in clis}, {c: [] for c in clis}
    for _ in range(5):  # interleaved with the baseline CLI, when there is one
        for c in clis:
            totals[c].append(timed([c, "run", "noop", "--count", "10000", "--sw-workers=2"], repo, env))
            starts[c].append(timed([c, "run", "noop", "--count", "1", "--sw-workers=2"], repo, env))
    def rate_of(c):
        t, base = statistics.median(totals[c]), statistics.median(starts[c])
        return t, 10000 / max(t - base, 1e-9)
    t, rate = rate_of(SPARKWING)
    result = f"{t:.2f} s total, {rate:,.0f} jobs/s"
    if baseline:
        bt, brate = rate_of(baseline)
        result += f" (baseline CLI: {bt:.2f} s, {brate:,.0f} jobs/s)"
    rows.append(("10,000 no-op jobs, 2 workers, SQLite on (median of 5, startup of a 1-job run subtracted)",
                 result, "≥ 20,000 jobs/s"))

    # 3. 1,000 shell jobs running `true` vs GNU make -j2 running the same 1,000 commands.
    mk = os.path.join(WORK, "Makefile")
    with open(mk, "w") as f:
        f.write("all: " + " ".join(f"t{i}" for i in range(1000)) + "\n")
        for i in range(1000):
            f.write(f"t{i}:\n\t@true\n.PHONY: t{i}\n")
    # The floor: the same 1,000 commands started as the runtime starts them, and nothing else.
    sh(["cargo", "build", "--release", "-q", "-p", "sparkwing", "--example", "spawn-floor"], cwd=ROOT)
    floor_bin = os.path.join(ROOT, "target", "release", "examples", "spawn-floor")
    # The same pipeline binary without its supervisor, with its log parts in local files and with
    # the console as its only log (`logs: stdout`): what the records and the log parts cost a job.
    no_logs = {"SPARKWING_BACKENDS": '{"logs":"stdout"}'}
    sws, makes, floors, directs, bare, bases = [], [], [], [], [], []
    timings = [
        (sws, lambda: timed([SPARKWING, "run", "shell", "--count", "1000", "--sw-workers=2"], repo, env)),
        (makes, lambda: timed(["make", "-j2", "-f", mk], WORK, env)),
        (floors, lambda: timed([floor_bin, "1000", "true"], WORK, env)),
        (directs, lambda: timed([binary, "shell", "--count", "1000"], repo, direct_env())),
        (bare, lambda: timed([binary, "shell", "--count", "1000"], repo, direct_env(no_logs))),
    ]
    if baseline:
        timings.append((bases, lambda: timed([baseline, "run", "shell", "--count", "1000", "--sw-workers=2"],
                                             repo, env)))
    # Interleaved, in an order reversed every other round, so all of them see the same machine;
    # 15 rounds, since 7 could not tell apart two CLIs 0.04 of make's time apart on a host whose
    # speed drifts within the minute.
    for r in range(15):
        for into, run in (timings if r % 2 == 0 else timings[::-1]):
            into.append(run())
    sw, make, floor, direct, nolog = (statistics.median(v) for v in (sws, makes, floors, directs, bare))
    result = f"{sw:.2f} s vs {make:.2f} s: ratio {sw/make:.2f}"
    if baseline:
        result += f" (baseline CLI: ratio {statistics.median(bases)/make:.2f})"
    rows.append(("1,000 jobs running `true`, 2 workers, vs `make -j2` running the same 1,000 commands (median of 15)",
                 result, "ratio ≤ 1.2"))
    rows.append(("where it goes: the pipeline binary run directly (no supervisor, so no records), with its log parts "
                 "in local files / with the console as its only log",
                 f"{direct:.2f} s (ratio {direct/make:.2f}) / {nolog:.2f} s (ratio {nolog/make:.2f})", "—"))
    rows.append(("the floor: the same 1,000 commands through tokio::process as the runtime starts them, nothing else "
                 "(`--example spawn-floor`), vs `make -j2`",
                 f"{floor:.2f} s: ratio {floor/make:.2f} (sparkwing / floor {sw/floor:.2f})", "—"))

    # 4. One job printing 1,000,000 lines to its log.
    lines = 1_000_000
    t = median_of(3, lambda: timed([SPARKWING, "run", "loglines", "--count", str(lines)], repo, env))
    seq = median_of(3, lambda: timed(["seq", "1", str(lines)], repo, env))
    rows.append(("one job printing 1,000,000 lines into its log (`seq` alone for reference)",
                 f"{t:.2f} s: {lines/max(t,1e-9):,.0f} lines/s (seq alone {seq:.3f} s)", "≥ 1,000,000 lines/s"))

    # 5. Supervisor memory.
    rss = rss_of_supervisor([SPARKWING, "run", "loglines", "--count", "200000"], repo, env)
    rows.append(("peak RSS of the `sparkwing` supervisor process during a run", f"{rss/1024:.1f} MiB", "-"))

    if os.environ.get("SPARKWING_TEST_S3_ENDPOINT"):
        rows += remote_benches(repo, env)
    if os.environ.get("BENCH_COLD_BUILD") == "1":
        rows += cold_build_bench(repo, env)

    print("\n| benchmark | result | goal |\n|---|---|---|")
    for name, result, goal in rows:
        print(f"| {name} | {result} | {goal} |")


def ci_env(env, home, prefix, trusted=None):
    os.makedirs(home, exist_ok=True)
    bucket = os.environ["SPARKWING_TEST_S3_BUCKET"]
    trust = f", trusted_keys: [{trusted}]" if trusted else ""
    with open(os.path.join(home, "profiles.yaml"), "w") as f:
        f.write(f"profiles:\n  ci:\n    cache: {{ type: s3, bucket: {bucket}, prefix: {prefix}/cache{trust} }}\n"
                f"    logs: {{ type: s3, bucket: {bucket}, prefix: {prefix}/logs }}\n")
    return dict(env, SPARKWING_HOME=home, SPARKWING_PROFILES=os.path.join(home, "profiles.yaml"),
                SPARKWING_S3_ENDPOINT=os.environ["SPARKWING_TEST_S3_ENDPOINT"])


def time_to_first_node(args, cwd, env):
    """Seconds from spawning `sparkwing run` until the pipeline prints its first job start."""
    t = time.perf_counter()
    p = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = None
    for line in p.stdout:
        if first is None and line.startswith("\u25b6 ") and " run-" not in line:
            first = time.perf_counter() - t
    p.wait()
    if p.returncode != 0 or first is None:
        raise SystemExit(f"{args} failed ({p.returncode})")
    return first


def remote_benches(repo, env):
    rows = []
    prefix = f"bench/{os.getpid()}-{time.time_ns():x}"
    # A signed cache: every fresh machine checks the manifest's minisign signature.
    key_file = os.path.join(WORK, f"cache-{os.getpid()}.key")
    sh([SPARKWING, "cache", "keygen", "--out", key_file], cwd=repo, env=env, stdout=subprocess.DEVNULL)
    with open(key_file + ".pub") as f:
        public = f.read().splitlines()[1]
    with open(key_file) as f:
        secret = f.read()
    publisher = ci_env(env, os.path.join(WORK, "ci-a"), prefix, public)
    publisher["SPARKWING_CACHE_SIGNING_KEY"] = secret
    sh([SPARKWING, "run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"], cwd=repo, env=publisher,
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    size = os.path.getsize(cached_binary(publisher["SPARKWING_HOME"]))
    # Fresh machines: a new home each time, no toolchain on PATH.
    fresh = []
    warm = []
    for i in range(5):
        e = ci_env(env, os.path.join(WORK, f"ci-fresh-{i}"), prefix, public)
        e.update(PATH="/usr/local/bin:/usr/bin:/bin", SPARKWING_CARGO="/nonexistent/cargo")
        args = [SPARKWING, "run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"]
        fresh.append(time_to_first_node(args, repo, e))
        warm.append(time_to_first_node(args, repo, e))
    f, w = statistics.median(fresh), statistics.median(warm)
    rows.append(("fresh machine, remote-cache hit on loopback S3, signed cache (signature checked): `sparkwing run` → first job starts (median of 5; "
                 "same machine warm for reference)",
                 f"{f*1000:.0f} ms (warm {w*1000:.0f} ms); binary {size/1048576:.1f} MiB", "≤ 1 s"))
    return rows


def cold_build_bench(repo, env):
    """A cold build through sparkwing vs plain `cargo build` of the same crate (fresh target dirs;
    the registry download cache is warm for both)."""
    sdk = None
    # The SDK copy sparkwing builds against; plain cargo gets the same patch.
    for root, dirs, files in os.walk(TARGET_DIR):
        if root.endswith("/sparkwing") and "Cargo.toml" in files and "sparkwing-sdk" in root:
            sdk = root
            break
    plain_dir = os.path.join(WORK, "cold-plain")
    sw_dir = os.path.join(WORK, "cold-sparkwing")
    shutil.rmtree(plain_dir, ignore_errors=True)
    shutil.rmtree(sw_dir, ignore_errors=True)
    plain = timed(["cargo", "build", "--release", "--target-dir", plain_dir, "--config",
                   f'patch.crates-io.sparkwing.path="{sdk}"'], os.path.join(repo, ".sparkwing"), env)
    home = os.path.join(WORK, "cold-home")
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home)
    e = dict(env, SPARKWING_HOME=home, SPARKWING_CARGO_TARGET_DIR=sw_dir)
    through = timed([SPARKWING, "run", "noop", "--count", "1"], repo, e)
    return [("cold build of the sample pipelines: `sparkwing run` (build + run) vs plain `cargo build --release`",
             f"{through:.1f} s vs {plain:.1f} s: +{(through/plain-1)*100:.1f} %", "≤ 3 % added")]


if __name__ == "__main__":
    main()
