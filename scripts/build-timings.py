#!/usr/bin/env python3
"""Where a cold build of the sample pipelines spends its time.

Copies `fixtures/sample/.sparkwing` to a scratch directory, builds it with
`cargo build --release --timings` into a fresh target directory (the registry download cache
stays warm: this measures compiling, not downloading), patches the SDK to this checkout, and
prints a Markdown table of the slowest compilation units with what pulls each one in.

    python3 scripts/build-timings.py [--top 15] [--keep DIR] [-- extra cargo args]

Extra cargo arguments (after `--`) let the same command measure a profile setting, e.g.
`-- --config profile.release.opt-level=1`.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sdk_patches():
    crates = {"sparkwing": "sparkwing", "sparkwing-contract": "contract",
              "sparkwing-storage": "storage"}
    out = []
    for name, folder in crates.items():
        out += ["--config", f'patch.crates-io.{name}.path="{ROOT / folder}"']
    return out


def unit_data(html: str):
    m = re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S)
    if not m:
        sys.exit("no UNIT_DATA in the timings report (cargo changed its format?)")
    return json.loads(m.group(1))


def pulled_in_by(work: Path, target: Path, name: str) -> str:
    r = subprocess.run(
        ["cargo", "tree", "-q", "--offline", "-i", name, "-e", "normal,build",
         "--prefix", "none", "--depth", "1"] + sdk_patches(),
        cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        return "?"
    lines = [ln.split(" ")[0] for ln in r.stdout.splitlines()[1:] if ln.strip()]
    seen = []
    for ln in lines:
        if ln not in seen and ln != name:
            seen.append(ln)
    return ", ".join(seen[:4]) + (" …" if len(seen) > 4 else "") or "(the pipeline)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--keep", help="build in this directory and keep it")
    ap.add_argument("cargo_args", nargs="*")
    a = ap.parse_args()

    scratch = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="sw-timings-"))
    work = scratch / "pipe"
    target = scratch / "target"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT / "fixtures/sample/.sparkwing", work)
    # Fetch first so that downloading is not timed.
    subprocess.run(["cargo", "fetch", "-q"] + sdk_patches(), cwd=work, check=True)
    cmd = ["cargo", "build", "--release", "--timings", "--target-dir", str(target)] \
        + sdk_patches() + a.cargo_args
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=work, check=True, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = target / "cargo-timings" / "cargo-timing.html"
    units = unit_data(report.read_text())
    total = sum(u["duration"] for u in units)
    units.sort(key=lambda u: -u["duration"])
    print(f"cold `cargo build --release` of the sample pipelines: {wall:.1f} s wall, "
          f"{cpu:.1f} s CPU (user + system), "
          f"{len(units)} units, {total:.1f} s of compilation summed over units"
          f"{' (' + ' '.join(a.cargo_args) + ')' if a.cargo_args else ''}")
    print()
    print("| unit | seconds | share of the sum | pulled in by |")
    print("|---|---:|---:|---|")
    for u in units[: a.top]:
        name = u["name"]
        kind = " (build script)" if u.get("target", "").strip() == "build script" or \
            "build-script" in u.get("target", "") else ""
        print(f"| {name} {u['version']}{kind} | {u['duration']:.1f} | "
              f"{100 * u['duration'] / total:.0f} % | {pulled_in_by(work, target, name)} |")
    if not a.keep:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
