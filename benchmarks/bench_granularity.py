"""Benchmark: per-channel and per-group round trips through helper's one mechanism, in one run.

Run from the repository root::

    python benchmarks/bench_granularity.py             # 4096 x 4096 float32, 15 repeats
    python benchmarks/bench_granularity.py --size 1024 --repeats 30

Each path quantizes a float32 tensor to int8 and dequantizes it again, the scales' computation
included:

* ``helper per-tensor``   ``linear_quantization`` + ``linear_dequantization`` (the yardstick)
* ``helper per-channel``  ``linear_q_symmetric_per_channel(x, dim=0)`` + ``linear_dequantization``
* ``helper per-group``    ``linear_q_symmetric_per_group(x, 128)`` +
                          ``linear_dequantization_per_group``
* ``plain per-channel``   the straightforward vectorised code: ``amax`` of ``|x|`` per row, divide,
                          round, clamp, ``.to(torch.int8)``, then ``q.float() * s``
* ``plain per-group``     the same on the ``(rows, columns // 128, 128)`` view
* ``torch per-channel``   ``torch.quantize_per_channel`` + ``.dequantize()`` with the same
                          scales (for information: its CPU kernel is slow)

Machines differ and are noisy, so the figures that matter are ratios of medians measured in
the same run, with the paths interleaved. Targets: helper's per-channel and per-group round
trips within 2x of its per-tensor one, and at least 1.5x faster than the plain code. The exit
status is 1 if a target is missed.
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

from bench_quantize import median_ms  # noqa: E402  (beside this script)

from helper import (  # noqa: E402
    SCALE_EPS,
    linear_dequantization,
    linear_dequantization_per_group,
    linear_q_symmetric_per_channel,
    linear_q_symmetric_per_group,
    linear_quantization,
)

GROUP_SIZE = 128


def helper_per_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """helper's per-tensor (asymmetric) round trip: the yardstick."""
    q, scale, zero_point = linear_quantization(tensor)
    return linear_dequantization(q, scale, zero_point)


def helper_per_channel(tensor: torch.Tensor) -> torch.Tensor:
    """helper's symmetric per-channel round trip along dim 0 (one scale per row)."""
    q, scale = linear_q_symmetric_per_channel(tensor, dim=0)
    return linear_dequantization(q, scale, 0)


def helper_per_group(tensor: torch.Tensor) -> torch.Tensor:
    """helper's symmetric per-group round trip, groups of GROUP_SIZE along each row."""
    q, scale = linear_q_symmetric_per_group(tensor, GROUP_SIZE)
    return linear_dequantization_per_group(q, scale, GROUP_SIZE)


def plain_round_trip(view: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 round trip of ``view`` with one scale per slice of its last dim,
    written the plain vectorised way (out-of-place ops, no loop)."""
    scale = view.abs().amax(dim=-1, keepdim=True).clamp(min=SCALE_EPS) / 127
    q = torch.clamp(torch.round(view / scale), -128, 127).to(torch.int8)
    return q.float() * scale


def plain_per_channel(tensor: torch.Tensor) -> torch.Tensor:
    """The plain code, one scale per row."""
    return plain_round_trip(tensor)


def plain_per_group(tensor: torch.Tensor) -> torch.Tensor:
    """The plain code on the (rows, groups, GROUP_SIZE) view."""
    rows, columns = tensor.shape
    view = tensor.reshape(rows, columns // GROUP_SIZE, GROUP_SIZE)
    return plain_round_trip(view).reshape(rows, columns)


def torch_per_channel(tensor: torch.Tensor) -> torch.Tensor:
    """PyTorch's quantized-tensor kernels, one scale per row (scales computed like the plain
    code, in float64 as quantize_per_channel wants them)."""
    scale = tensor.abs().amax(dim=1).clamp(min=SCALE_EPS).double() / 127
    zero_point = torch.zeros(tensor.shape[0], dtype=torch.int64)
    with warnings.catch_warnings():
        # torch.quantize_per_channel is deprecated in torch 2.13; it is the baseline on purpose.
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(tensor, scale, zero_point, 0, torch.qint8)
    return q.dequantize()


def check_agreement(tensor: torch.Tensor) -> None:
    """Before timing: each helper path agrees with its plain twin to one quantization step
    (the scales are rounded to float32 in slightly different ways), torch with the plain code."""
    pairs = [
        (helper_per_channel, plain_per_channel, tensor.abs().amax(dim=1, keepdim=True) / 127),
        (
            helper_per_group,
            plain_per_group,
            tensor.abs()
            .reshape(tensor.shape[0], -1, GROUP_SIZE)
            .amax(dim=-1, keepdim=True)
            .div(127)
            .expand(-1, -1, GROUP_SIZE)
            .reshape(tensor.shape),
        ),
        (torch_per_channel, plain_per_channel, tensor.abs().amax(dim=1, keepdim=True) / 127),
    ]
    for ours, theirs, step in pairs:
        worst = ((ours(tensor) - theirs(tensor)).abs() / step).max().item()
        assert worst <= 1.001, f"{ours.__name__} and {theirs.__name__} differ by {worst} steps"
    per_tensor_step = (tensor.max() - tensor.min()).item() / 255
    worst = (helper_per_tensor(tensor) - tensor).abs().max().item()
    assert worst <= per_tensor_step / 2 * 1.001, "per-tensor round trip is off"


def others_running() -> float | None:
    """How many threads of other programs are running or waiting for a CPU, on average over
    half a second (Linux only, from /proc/loadavg; None elsewhere).

    Timings mislead when this is not close to 0: with more runnable threads than cores,
    PyTorch's OpenMP threads spin at the end of every operation, waiting for a partner that
    is not running. helper's chunked loops run hundreds of small operations, so they suffer
    most (``OMP_WAIT_POLICY=PASSIVE`` in the environment avoids the spinning).
    """
    path = Path("/proc/loadavg")
    if not path.exists():
        return None
    counts = []
    for _ in range(10):
        time.sleep(0.05)  # let this process's own OpenMP threads go to sleep first
        running = int(path.read_text().split()[3].split("/")[0])
        counts.append(running - 1)  # minus this process, reading the file
    return statistics.mean(counts)


def main() -> int:
    """Measure the round trips, interleaved; print a table of medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="the tensor is size x size")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if args.size % GROUP_SIZE:
        parser.error(f"--size must be a multiple of the group size {GROUP_SIZE}")

    others = [others_running()]
    torch.manual_seed(0)
    tensor = torch.randn(args.size, args.size)
    check_agreement(tensor)
    candidates = {
        "helper per-tensor": helper_per_tensor,
        "helper per-channel": helper_per_channel,
        "helper per-group": helper_per_group,
        "plain per-channel": plain_per_channel,
        "plain per-group": plain_per_group,
        "torch per-channel": torch_per_channel,
    }
    # Interleave the rounds so that machine noise hits every path alike.
    rounds = {name: [] for name in candidates}
    for _ in range(5):
        for name, function in candidates.items():
            rounds[name].append(median_ms(function, tensor, max(1, args.repeats // 5)))
        others.append(others_running())
    medians = {name: statistics.median(values) for name, values in rounds.items()}

    yardstick = medians["helper per-tensor"]
    print(
        f"float32 {args.size}x{args.size} -> int8 -> float32 (scales included), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    if None not in others:
        busy = statistics.mean(others)
        print(f"other programs' runnable threads between rounds: {busy:.1f} on average")
        if busy >= 0.5:
            print("WARNING: the machine was busy: timings are unreliable; rerun when it is idle.")
    print(f"{'path':<20}{'median ms':>11}{'/ helper per-tensor':>21}")
    for name, ms in medians.items():
        print(f"{name:<20}{ms:>11.1f}{ms / yardstick:>20.2f}x")

    missed = []
    for kind in ("channel", "group"):
        ours, plain = medians[f"helper per-{kind}"], medians[f"plain per-{kind}"]
        within, faster = ours / yardstick, plain / ours
        print(
            f"helper per-{kind:<8} {within:.2f}x helper per-tensor (target <= 2x), "
            f"{faster:.2f}x faster than plain (target >= 1.5x)"
        )
        if within > 2:
            missed.append(f"per-{kind} is {within:.2f}x per-tensor")
        if faster < 1.5:
            missed.append(f"per-{kind} is only {faster:.2f}x faster than plain")
    torch_ratio = medians["torch per-channel"] / medians["helper per-channel"]
    print(f"torch per-channel takes {torch_ratio:.2f}x helper per-channel's time (information)")
    if missed:
        print("MISSED: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
