"""Benchmark: a round trip onto a non-uniform grid (lesson 14), helper's fast path against its
readable lines and against PyTorch's own float8 cast, idle and while another PyTorch process
computes.

Run from the repository root::

    python benchmarks/bench_grid.py              # 2048 x 2048 float32, one scale per row
    python benchmarks/bench_grid.py --size 4096 --rounds 2

Candidates, each a quantize plus a dequantize with one scale per row:

- ``helper``: ``quantize_to_grid`` and ``dequantize_from_grid`` as a lesson calls them (above
  ``support.fast.PARALLEL_ELEMENTS`` elements the codes come from ``support.fast.nearest_codes``,
  chunks of rows split between single-threaded workers);
- ``readable``: the same two calls with the fast path switched off (the lines in helper.py);
- ``cast`` (float8 only): ``(t / s).to(torch.float8_...)`` and back, times ``s``: PyTorch's own
  conversion, which returns values, not indices into a grid.

Every candidate is timed ``--repeats`` times, interleaved, and its median taken; under load
(``--rounds`` rounds, the neighbour of ``bench_load.py``) the worst ratio of the rounds is
reported. Goal: helper never slower than its readable lines, idle or under load.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # helper.py, at the top

import helper  # noqa: E402
from support import fast  # noqa: E402

NEIGHBOUR = "import torch\nx = torch.randn(512, 512)\nwhile True:\n    x @ x\n"


def candidates(grid: str, columns: int) -> dict:
    """The round trips to time for ``grid``, one scale per row of ``columns`` values."""
    block = (1, columns)

    def helper_round_trip(t):
        codes, scale = helper.quantize_to_grid(t, grid, block)
        return helper.dequantize_from_grid(codes, scale, grid, block)

    def readable(t):
        saved = fast.PARALLEL_ELEMENTS
        fast.PARALLEL_ELEMENTS = 1 << 62  # every tensor takes helper's own lines
        try:
            return helper_round_trip(t)
        finally:
            fast.PARALLEL_ELEMENTS = saved

    found = {"helper": helper_round_trip, "readable": readable}
    if grid in helper.FLOAT8_FORMATS:
        dtype, largest = helper.FLOAT8_FORMATS[grid].dtype, float(helper.float8_grid(grid)[-1])

        def cast(t):
            scale = t.abs().amax(dim=1, keepdim=True) / largest
            return (t / scale).to(dtype).float() * scale

        found["cast"] = cast
    return found


def medians(functions: dict, tensor: torch.Tensor, repeats: int) -> dict[str, float]:
    """The median time in ms of every candidate, the calls interleaved."""
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function(tensor)
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


def line(label: str, ms: dict[str, float]) -> str:
    """One row: the medians, then readable's and cast's time over helper's."""
    ratios = "".join(f"{ms[name] / ms['helper']:>10.2f}x" for name in ms if name != "helper")
    return f"{label:<16}" + "".join(f"{v:>11.1f}" for v in ms.values()) + ratios


def main() -> None:
    """Measure every grid idle, then under load; print the table and whether the goal holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="the tensor is size x size")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds under load")
    args = parser.parse_args()
    if "OMP_WAIT_POLICY" in os.environ:  # as bench_load.py: OpenMP reads it once, at start
        environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)
    tensor = torch.randn(args.size, args.size, generator=torch.Generator().manual_seed(0))
    grids = {grid: candidates(grid, args.size) for grid in ("e4m3fn", "e5m2", "nf4")}
    for functions in grids.values():
        for function in functions.values():  # warm up
            function(tensor)
    print(
        f"float32 {args.size}x{args.size}, one scale per row, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; medians of {args.repeats} calls, ms; then each "
        "time over helper's"
    )
    worst = 0.0
    results = {grid: [("idle", medians(f, tensor, args.repeats))] for grid, f in grids.items()}
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=dict(os.environ))
    try:
        time.sleep(2.0)
        for i in range(args.rounds):
            for grid, functions in grids.items():
                results[grid].append((f"load {i + 1}", medians(functions, tensor, args.repeats)))
    finally:
        neighbour.kill()
        neighbour.wait()
    for grid, rows in results.items():
        names = list(rows[0][1])
        print(f"\n{grid:<16}" + "".join(f"{n:>11}" for n in names))
        for label, ms in rows:
            print(line(label, ms))
            worst = max(worst, ms["helper"] / ms["readable"])
    print(f"\nhelper takes at worst {worst:.2f}x its readable lines' time (goal <= 1x)")
    print("goal met" if worst <= 1 else "MISSED the goal")


if __name__ == "__main__":
    main()
