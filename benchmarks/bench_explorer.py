"""How fast does the explorer redraw? A small timing table (not a test).

Run from the repo root:  python benchmarks/bench_explorer.py [--repeats N]

The budget (from the issue): redrawing the explorer for its default tensor, the lesson's
3x3 test tensor, takes at most 150 ms (median) on a 2-core machine. A "redraw" is what one
control change costs in the notebook: quantize, update the figure's artists, render PNG bytes
and hand them and the HTML numbers to the widgets. The baseline is what the explorer avoids:
building a fresh ``plot_quantization_errors`` figure for every change and rendering it at the
same resolution. Larger tensors (the histogram layout) are timed for information.

Every case is warmed up once, then timed ``--repeats`` times, cycling the bit width 8 -> 2 so
that every redraw really changes the picture. The table shows the median and the 90th
percentile in milliseconds; the exit status is 1 if the default redraw misses the budget.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # helper.py, without an install

import torch  # noqa: E402

from explorer import QuantizationExplorer, lesson_test_tensor  # noqa: E402
from helper import (  # noqa: E402
    linear_dequantization,
    linear_quantization,
    plot_quantization_errors,
)

BUDGET_MS = 150.0
BITS = (8, 7, 6, 5, 4, 3, 2)


def timed(step: Callable[[int], object], repeats: int) -> list[float]:
    """Milliseconds for ``step(0)``, ``step(1)``, ... after one untimed warm-up call."""
    step(repeats)  # warm-up: fonts, caches, the first layout
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        step(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def widget_redraw(settings: dict) -> Callable[[int], object]:
    """One control change in the widgets: the bit slider moves, the observer redraws."""
    explorer = QuantizationExplorer()
    explorer.build_widgets()
    for name, value in settings.items():
        explorer.widgets[name].value = value
    slider = explorer.widgets["n_bits"]
    bits = [b for b in BITS if b <= slider.max]

    def step(i: int) -> None:
        value = bits[i % len(bits)]
        if slider.value == value:  # the same value would not trigger the observer
            value = bits[(i + 1) % len(bits)]
        slider.value = value

    return step


def fresh_figure(dpi: float) -> Callable[[int], object]:
    """The baseline: a new four-panel figure per change, rendered to PNG at ``dpi``."""
    tensor = lesson_test_tensor()

    def step(i: int) -> None:
        n_bits = BITS[i % len(BITS)]
        quantized, scale, zero_point = linear_quantization(tensor, torch.int8, n_bits)
        dequantized = linear_dequantization(quantized, scale, zero_point)
        figure = plot_quantization_errors(tensor, quantized, dequantized, torch.int8, n_bits)
        figure.savefig(io.BytesIO(), format="png", dpi=dpi)

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed redraws per case")
    args = parser.parse_args()
    dpi = QuantizationExplorer().dpi
    cases = [
        ("explorer, lesson tensor 3x3 (default)", widget_redraw({})),
        ("fresh figure per change, 3x3 (baseline)", fresh_figure(dpi)),
        (
            "explorer, random normal 64x64",
            widget_redraw({"tensor_name": "random normal", "size": 64}),
        ),
        (
            "explorer, outlier 256x256",
            widget_redraw({"tensor_name": "normal with one outlier", "size": 256}),
        ),
        (
            "explorer, random normal 64x64, int16",
            widget_redraw({"tensor_name": "random normal", "size": 64, "dtype": "int16"}),
        ),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"load average {load:.2f}, dpi {dpi}, {args.repeats} redraws per case"
    )
    print(f"{'case':<42} {'median ms':>10} {'p90 ms':>8}")
    medians = {}
    for name, step in cases:
        times = sorted(timed(step, args.repeats))
        medians[name] = statistics.median(times)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        print(f"{name:<42} {medians[name]:>10.1f} {p90:>8.1f}")
    default, baseline = medians[cases[0][0]], medians[cases[1][0]]
    print(f"\nredraw / fresh figure: {default / baseline:.2f} ({baseline / default:.1f}x faster)")
    verdict = "within" if default <= BUDGET_MS else "OVER"
    print(f"default redraw median {default:.1f} ms: {verdict} the {BUDGET_MS:.0f} ms budget")
    return 0 if default <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
