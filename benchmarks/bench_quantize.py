"""Benchmark: helper's quantize + dequantize round trip against two baselines, in one run.

Run from the repository root::

    python benchmarks/bench_quantize.py            # 4096 x 4096 float32, 15 repeats
    python benchmarks/bench_quantize.py --size 1024 --repeats 30

Three ways to quantize a float32 tensor to int8 per tensor and dequantize it again:

* ``helper``       ``linear_quantization`` + ``linear_dequantization`` (this project)
* ``course-style`` the straightforward code from the course: ``min().item()``, ``max().item()``,
                   divide, round, clamp, ``.to(int8)``, then ``scale * (q.float() - z)``
* ``native``       PyTorch's own kernels: ``torch.aminmax`` + ``torch.quantize_per_tensor``
                   + ``.dequantize()``

Machines differ and are noisy, so the figures that matter are the ratios of medians measured
in the same run: targets are ``helper`` at least 3x faster than ``course-style`` and within 2x
of ``native``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from helper import get_q_range, linear_dequantization, linear_quantization  # noqa: E402


def course_style(tensor: torch.Tensor) -> torch.Tensor:
    """The course's code path, written the plain way (out-of-place ops, int8 range)."""
    q_min, q_max = get_q_range(torch.int8)
    r_min, r_max = min(tensor.min().item(), 0.0), max(tensor.max().item(), 0.0)
    scale = (r_max - r_min) / (q_max - q_min)
    zero_point = int(round(q_min - r_min / scale))
    q = torch.clamp(torch.round(tensor / scale + zero_point), q_min, q_max).to(torch.int8)
    return scale * (q.float() - zero_point)


def native(tensor: torch.Tensor) -> torch.Tensor:
    """PyTorch's fused kernels, with the scale and zero point computed like its observers."""
    r_min, r_max = (v.item() for v in torch.aminmax(tensor))
    r_min, r_max = min(r_min, 0.0), max(r_max, 0.0)
    scale = max((r_max - r_min) / 255, torch.finfo(torch.float32).eps)
    zero_point = -128 - round(r_min / scale)
    with warnings.catch_warnings():
        # torch.quantize_per_tensor is deprecated in torch 2.13; it is the baseline on purpose.
        warnings.simplefilter("ignore")
        q = torch.quantize_per_tensor(tensor, scale, zero_point, torch.qint8)
    return q.dequantize()


def helper_round_trip(tensor: torch.Tensor) -> torch.Tensor:
    """This project's helper functions."""
    q, scale, zero_point = linear_quantization(tensor)
    return linear_dequantization(q, scale, zero_point)


def median_ms(function, tensor: torch.Tensor, repeats: int) -> float:
    """Median wall time of ``function(tensor)`` in milliseconds, after two warm-up calls."""
    for _ in range(2):
        function(tensor)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(tensor)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    """Measure the three round trips, interleaved, and print a table of medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="the tensor is size x size")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    torch.manual_seed(0)
    tensor = torch.randn(args.size, args.size)
    candidates = {"helper": helper_round_trip, "course-style": course_style, "native": native}
    # The three agree (up to one quantization step at near-ties) before we time them.
    reference = native(tensor)
    for name, function in candidates.items():
        step = (tensor.max() - tensor.min()).item() / 255
        worst = (function(tensor) - reference).abs().max().item()
        assert worst <= step * 1.001, f"{name} disagrees with native by {worst}"

    # Interleave the rounds so that machine noise hits all three alike.
    rounds = {name: [] for name in candidates}
    for _ in range(3):
        for name, function in candidates.items():
            rounds[name].append(median_ms(function, tensor, max(1, args.repeats // 3)))
    medians = {name: statistics.median(values) for name, values in rounds.items()}

    print(
        f"float32 {args.size}x{args.size} -> int8 -> float32, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'path':<14}{'median ms':>11}{'helper speed-up':>17}")
    for name, ms in medians.items():
        print(f"{name:<14}{ms:>11.1f}{ms / medians['helper']:>16.2f}x")
    print(
        f"helper vs course-style: {medians['course-style'] / medians['helper']:.2f}x faster "
        "(target >= 3x)"
    )
    print(
        f"helper vs native:       {medians['helper'] / medians['native']:.2f}x the time "
        "(target <= 2x, stretch 1.5x)"
    )


if __name__ == "__main__":
    main()
