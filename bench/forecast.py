"""Forecast speed: `dialwave simulate` on a 50,000-lead scenario, today's code against the code before
the forecast speed-up, side by side in one run, with the decisions compared.

python bench/forecast.py [--leads 50000] [--baseline b42be96] [--rounds 1] [--keep DIR] [--no-precompile]

- The scenario: examples/scenarios/reminders.json (recipient-local windows 09-12 + 13-19 weekdays,
  busy / no answer / voicemail retried, 3 caller ids) with N generated leads in 12 US area codes
  (fixed seed), 200 calls at once, 10 attempts a second.
- The old path is the tree at `--baseline` (default b42be96, the last commit before the speed-up),
  checked out by this script into a git worktree beside the system's temp directory (made once, kept),
  and run as a subprocess with its own `src` first on PYTHONPATH. The new path is this checkout's `src`,
  run the same way. Each run is `python -m dialwave.cli simulate`, the command users run.
- The comparison: per called number, the attempts (number, outcome, SIP code, talk time) must be the
  same, start times within a second, and the campaign's completion time the same, against this
  checkout's engine on the database store (`run_scenario(fast=False)`, a third run: the speed-up
  changes no decision); against the old path, the attempts and the completion time, start times
  reported (engine fixes since b42be96 move them: the room freed at the dial, docs/benchmarks.md). Lead and call ids
  are random and the weighted caller-id choice hashes the lead id, so ids and `from_number` are not
  compared.

- Both trees' `src` are compiled to bytecode first (`python -m compileall`, as `pip install` does for an
  installed package), so neither run spends its first second compiling dialwave's own modules (this
  machine sets PYTHONDONTWRITEBYTECODE, so an uncompiled checkout compiles them again on every run).
  `--no-precompile` leaves that cost in, on both sides.

The machine's CPUs may be shared: compare the two figures of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AREAS = ["212", "312", "415", "713", "305", "206", "617", "404", "303", "602", "214", "503"]


def make_scenario(directory: Path, leads: int) -> Path:
    """The reminders example with `leads` generated leads, 200 calls at once, 10 attempts a second."""
    directory.mkdir(parents=True, exist_ok=True)
    scenario = json.loads((ROOT / "examples" / "scenarios" / "reminders.json").read_text("utf-8"))
    scenario["campaign"]["pacing"] = {"max_concurrency": 200, "attempts_per_second": 10}
    scenario["leads"] = "leads.csv"
    rng = random.Random(7)
    seen: set[str] = set()
    rows: list[str] = []
    while len(rows) < leads:
        number = f"+1{rng.choice(AREAS)}555{rng.randrange(10_000):04d}"
        if number not in seen:
            seen.add(number)
            rows.append(f"{number},Person {len(rows)},March {1 + len(rows) % 28}\n")
    (directory / "leads.csv").write_text("phone_number,name,date\n" + "".join(rows), "utf-8")
    path = directory / "scenario.json"
    path.write_text(json.dumps(scenario, indent=1), "utf-8")
    return path


def precompile(src: Path, *, on: bool) -> None:
    """Bytecode for every module of `src`, written beside it (__pycache__), as an installed package has
    (`on=False`: none, removed if an earlier run left it)."""
    if on:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True, stdout=subprocess.DEVNULL)
        return
    for cache in sorted(src.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)


def baseline_tree(commit: str) -> Path:
    """A worktree of this repository at `commit` (made once, reused)."""
    tree = Path(tempfile.gettempdir()) / f"dialwave-forecast-base-{commit}"
    if not (tree / "src" / "dialwave").is_dir():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(tree), commit],
            check=True,
            capture_output=True,
        )
    return tree


# The same checkout's engine on the database store instead of the forecast's in-memory one (and with
# fsync, through aiosqlite's thread): what `dialwave simulate` decided before any of the speed-up.
SLOW = """
import asyncio, json, sys
from pathlib import Path
from dialwave.simulate import load_scenario, run_scenario
scenario, out = Path(sys.argv[1]), Path(sys.argv[2])
summary = asyncio.run(run_scenario(load_scenario(scenario), scenario.parent, out, fast=False))
(out / "summary.json").write_text(json.dumps(summary), "utf-8")
"""


def run(src: Path, scenario: Path, out: Path, *, slow: bool = False) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds, CPU seconds (user + system), summary) of one `dialwave simulate` in a subprocess
    (`slow`: the same engine on the database store, for the decisions)."""
    env = {**os.environ, "PYTHONPATH": str(src), "DIALWAVE_DATABASE_URL": "sqlite:////nonexistent/never-used.db"}
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with (out / "stderr.log").open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", SLOW, str(scenario), str(out)]
            if slow
            else [sys.executable, "-m", "dialwave.cli", "simulate", "--scenario", str(scenario), "--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"simulate failed ({src}):\n{(out / 'stderr.log').read_text()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, json.loads((out / "summary.json").read_text("utf-8"))


def attempts(out: Path) -> dict[str, list[dict[str, Any]]]:
    per: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with (out / "calls.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            call = json.loads(line)
            per[call["phone_number"]].append(call)
    for calls in per.values():
        calls.sort(key=lambda c: c["attempt"])
    return per


def _t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def compare(old: Path, new: Path, old_summary: dict[str, Any], new_summary: dict[str, Any]) -> dict[str, Any]:
    a, b = attempts(old), attempts(new)
    differing: list[str] = []
    worst = 0.0
    for number in sorted(set(a) | set(b)):
        x, y = a.get(number, []), b.get(number, [])
        same = [(c["attempt"], c["outcome"], c["sip_code"], c["duration_seconds"]) for c in x] == [
            (c["attempt"], c["outcome"], c["sip_code"], c["duration_seconds"]) for c in y
        ]
        if not same:
            differing.append(number)
            continue
        for c, d in zip(x, y, strict=True):
            s, t = _t(c["started_at"]), _t(d["started_at"])
            if s is not None and t is not None:
                worst = max(worst, abs((s - t).total_seconds()))
    done_old, done_new = _t(old_summary["completed_at"]), _t(new_summary["completed_at"])
    delta = (done_new - done_old).total_seconds() if done_old and done_new else None
    return {
        "numbers": len(set(a) | set(b)),
        "attempts_old": sum(map(len, a.values())),
        "attempts_new": sum(map(len, b.values())),
        "numbers_with_different_attempts": len(differing),
        "examples": differing[:5],
        "max_start_delta_seconds": round(worst, 6),
        "completed_at_old": old_summary["completed_at"],
        "completed_at_new": new_summary["completed_at"],
        "completion_delta_seconds": delta,
        "outcomes_equal": old_summary["outcomes"] == new_summary["outcomes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--baseline", default="b42be96", help="the commit before the speed-up")
    parser.add_argument("--rounds", type=int, default=1, help="old then new, this many times")
    parser.add_argument("--keep", type=Path, help="keep the scenario and outputs here")
    parser.add_argument("--no-precompile", action="store_true", help="both runs compile dialwave's modules")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="dialwave-bench-forecast-"))
    scenario = make_scenario(work / "scenario", args.leads)
    base = baseline_tree(args.baseline)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"scenario: {args.leads} leads, {scenario}; old = {args.baseline} ({base}), new = {ROOT}")
    precompile(base / "src", on=not args.no_precompile)
    precompile(ROOT / "src", on=not args.no_precompile)
    print(f"bytecode: {'compiled on every run' if args.no_precompile else 'precompiled for both trees'}")
    ok = True
    for i in range(args.rounds):
        old_out, new_out = work / f"old-{i}", work / f"new-{i}"
        load = os.getloadavg()[0]
        old_wall, old_cpu, old_summary = run(base / "src", scenario, old_out)
        print(f"round {i + 1}: old {old_wall:.1f} s wall, {old_cpu:.1f} s CPU ({old_summary['attempts']} attempts)")
        new_wall, new_cpu, new_summary = run(ROOT / "src", scenario, new_out)
        print(f"round {i + 1}: new {new_wall:.1f} s wall, {new_cpu:.1f} s CPU ({new_summary['attempts']} attempts)")
        found = compare(old_out, new_out, old_summary, new_summary)
        attempts_old, attempts_new = max(1, old_summary["attempts"]), max(1, new_summary["attempts"])
        print(
            f"round {i + 1}: wall: old {old_wall:.1f} s ({old_wall / attempts_old * 1e6:.0f} us/attempt), "
            f"new {new_wall:.1f} s ({new_wall / attempts_new * 1e6:.0f} us/attempt): {old_wall / new_wall:.2f}x faster"
        )
        print(
            f"round {i + 1}: CPU:  old {old_cpu:.1f} s ({old_cpu / attempts_old * 1e6:.0f} us/attempt), "
            f"new {new_cpu:.1f} s ({new_cpu / attempts_new * 1e6:.0f} us/attempt): {old_cpu / new_cpu:.2f}x less; "
            f"load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print(f"round {i + 1}: decisions against the old path: {json.dumps(found)}")
        slow_out = work / f"slow-{i}"
        slow_wall, slow_cpu, slow_summary = run(ROOT / "src", scenario, slow_out, slow=True)
        print(f"round {i + 1}: this checkout on the database store: {slow_wall:.1f} s wall, {slow_cpu:.1f} s CPU")
        mine = compare(slow_out, new_out, slow_summary, new_summary)
        print(f"round {i + 1}: decisions against the database store: {json.dumps(mine)}")
        same = (
            mine["numbers_with_different_attempts"] == 0
            and mine["max_start_delta_seconds"] < 1.0
            and mine["completion_delta_seconds"] in (0, 0.0)
            and found["numbers_with_different_attempts"] == 0
            and found["completion_delta_seconds"] in (0, 0.0)
        )
        print(
            f"round {i + 1}: same decisions: {'yes' if same else 'NO'} (start times within a second of the same "
            f"engine's; against the old path the attempts and the completion time, start times "
            f"within {found['max_start_delta_seconds']:.1f} s)",
            flush=True,
        )
        ok = ok and same
    if not args.keep:
        print(f"outputs left in {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
