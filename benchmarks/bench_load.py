"""Benchmark: the per-tensor round trip on a busy CPU, against PyTorch's kernels and the course's
code, measured in one run, first idle, then while another PyTorch process computes.

Run from the repository root::

    python benchmarks/bench_load.py              # 4096 x 4096 float32
    python benchmarks/bench_load.py --size 2048 --rounds 5

A learner's CPU is rarely idle: a second notebook runs a cell, a shared Binder machine has
neighbours. This script starts that neighbour itself: a second Python process that multiplies
a 512x512 tensor by itself in a loop with PyTorch's default threads. Both processes run without
``OMP_WAIT_POLICY`` (the script restarts itself without it), as most learners' processes do.

The three round trips are those of ``bench_quantize.py``: ``helper`` (``linear_quantization`` +
``linear_dequantization``), ``course-style`` and ``native`` (``torch.quantize_per_tensor``).
Idle, and then in each of ``--rounds`` rounds under load, every one is timed ``--repeats``
times, interleaved, and its median taken. The ratios reported under load are the worst of the
rounds. Goals: under load helper within 2x of native and never slower than course-style; idle
within 2x of native (1.5x stretch).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_quantize, beside this script

from bench_quantize import course_style, helper_round_trip, native  # noqa: E402

#: The neighbour: a second PyTorch process computing matrix products, default threads.
NEIGHBOUR = "import torch\nx = torch.randn(512, 512)\nwhile True:\n    x @ x\n"

CANDIDATES = {"helper": helper_round_trip, "course-style": course_style, "native": native}


def medians(tensor: torch.Tensor, repeats: int) -> dict[str, float]:
    """The median time in ms of every candidate, the calls interleaved so that noise hits all."""
    times = {name: [] for name in CANDIDATES}
    for _ in range(repeats):
        for name, function in CANDIDATES.items():
            start = time.perf_counter()
            function(tensor)
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


def report(label: str, ms: dict[str, float]) -> None:
    """One line per round: the medians and helper's two ratios."""
    print(
        f"{label:<8}"
        + "".join(f"{ms[name]:>14.1f}" for name in CANDIDATES)
        + f"{ms['helper'] / ms['native']:>14.2f}x{ms['course-style'] / ms['helper']:>14.2f}x"
    )


def main() -> None:
    """Measure idle, then under load, and print the table and whether the goals are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="the tensor is size x size")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds under load")
    args = parser.parse_args()
    if "OMP_WAIT_POLICY" in os.environ:  # OpenMP reads it once, at start: restart without it
        environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)

    torch.manual_seed(0)
    tensor = torch.randn(args.size, args.size)
    for function in CANDIDATES.values():  # warm up: allocations, thread pools
        function(tensor)
    print(
        f"float32 {args.size}x{args.size} round trip, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY unset; medians of {args.repeats}"
    )
    print(
        f"{'':<8}"
        + "".join(f"{name:>14}" for name in CANDIDATES)
        + f"{'helper/native':>15}{'course/helper':>15}"
    )
    idle = medians(tensor, args.repeats)
    report("idle", idle)
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=dict(os.environ))
    try:
        time.sleep(2.0)  # let it start computing
        loaded = []
        for i in range(args.rounds):
            loaded.append(medians(tensor, args.repeats))
            report(f"load {i + 1}", loaded[-1])
    finally:
        neighbour.kill()
        neighbour.wait()
    worst_native = max(ms["helper"] / ms["native"] for ms in loaded)
    worst_course = min(ms["course-style"] / ms["helper"] for ms in loaded)
    idle_native = idle["helper"] / idle["native"]
    print(f"idle:  helper takes {idle_native:.2f}x native's time (goal <= 2x, stretch 1.5x)")
    print(
        f"load:  helper takes at worst {worst_native:.2f}x native's time (goal <= 2x); "
        f"course-style takes at least {worst_course:.2f}x helper's (goal >= 1x)"
    )
    met = idle_native <= 2 and worst_native <= 2 and worst_course >= 1
    print("all goals met" if met else "MISSED a goal")


if __name__ == "__main__":
    main()
