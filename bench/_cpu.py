"""CPU used over a window, in cores, by the processes measured, PostgreSQL, this process (the load
generator) and the whole machine (bench/scale.py)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


def tree_cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def postgres_cpu() -> float:
    """The PostgreSQL server's CPU: the postmaster, its live backends, and (through the postmaster's
    children times) the backends that exited (every database's, if anything else runs on it)."""
    total = 0.0
    for p in psutil.process_iter(["name", "ppid"]):
        if p.info["name"] not in ("postgres", "postmaster"):
            continue
        try:
            t = p.cpu_times()
            total += t.user + t.system
            parent = psutil.Process(p.info["ppid"]) if p.info["ppid"] else None
            if parent is None or parent.name() not in ("postgres", "postmaster"):  # the postmaster
                total += t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def machine_busy() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


@dataclass
class Cpu:
    """Cores used over a window (1.0 = one core busy all the time)."""

    measured: float
    postgres: float
    generator: float
    machine: float

    @property
    def other(self) -> float:
        return max(0.0, self.machine - self.measured - self.postgres - self.generator)

    def line(self, what: str) -> str:
        return (
            f"CPU (cores of {os.cpu_count()}): {what} {self.measured:.2f}, PostgreSQL {self.postgres:.2f}, "
            f"load generator {self.generator:.2f}, other {self.other:.2f}, machine {self.machine:.2f}"
        )


class CpuMeter:
    def __init__(self, procs: list[psutil.Process]) -> None:
        self.procs = procs
        self.me = psutil.Process()

    def __enter__(self) -> CpuMeter:
        self.t0 = time.perf_counter()
        self.s0 = (tree_cpu(self.procs), postgres_cpu(), self._mine(), machine_busy())
        self.each0 = [tree_cpu([p]) for p in self.procs]
        return self

    def _mine(self) -> float:
        t = self.me.cpu_times()
        return float(t.user + t.system)

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        s1 = (tree_cpu(self.procs), postgres_cpu(), self._mine(), machine_busy())
        self.cpu = Cpu(*((b - a) / wall for a, b in zip(self.s0, s1, strict=True)))
        self.each = [(tree_cpu([p]) - a) / wall for p, a in zip(self.procs, self.each0, strict=True)]
