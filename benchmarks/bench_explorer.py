"""How fast does the explorer redraw? A small timing table (not a test).

Run from the repo root:  python benchmarks/bench_explorer.py [--repeats N]

A "redraw" is what one control change costs in the notebook: the widget's value changes, the
observer quantizes, updates the figure's artists, renders PNG bytes and hands them and the
HTML numbers to the widgets. The baseline is what the explorer avoids: building a fresh
``plot_quantization_errors`` figure for every change and rendering it at the same resolution.

The target (issues 7, 13 and 17): the default redraw (the lesson's 3x3 test tensor, four annotated
heatmaps, with the mode and granularity controls in place) at least 4x faster than the fresh
figure, measured in the same run, for states seen before and for new ones. Three versions of
the default redraw are timed:

- "states seen before": the bit slider cycles 8 -> 2, as a learner drags it back and forth;
  the pixels the explorer saved of every region of the figure (each panel, the title) as it
  drew them (``support.explorer.drawing._SavedPixels``) are then put back, not drawn again.
- "every state new": the same, with those saved pixels forgotten before each redraw (the
  first time a learner reaches a setting): every animated artist is drawn over the saved
  background (blitting alone). The histogram figure also saves a background per legend and
  x range (``_SavedBackgrounds``); those are forgotten too, all but the current one, so a
  change of legend draws the whole figure as the first time.
- "no blitting": the saved pixels and every saved background dropped before each redraw,
  so the whole figure is drawn every time (what the explorer did before blitting).

All cases run interleaved (one redraw of each in turn, after one untimed warm-up each), so a
change in the machine's load hits them alike. The table shows the median and the 90th
percentile in milliseconds (wall clock); the exit status is 1 if the default redraw or the
float8 one (states seen before or every state new) is less than 4x faster than its fresh
figure.

The grids of lesson 14 (issue 17): the same, with float8 e4m3fn chosen in the dtype menu and
the granularity menu cycling (per tensor, per row, per column, per group of 3: the bits are
pinned to 8 on a float8 grid), against its own baseline, a fresh ``plot_quantization_errors``
figure of the same float8 round trip (``helper.quantize_to_grid`` with the granularity's
block size, the codes in the quantized panel) per change; both float8 versions must be at
least 4x faster too. One more case cycles the dtype menu itself (int8, float8 e4m3fn, float8
e5m2, nf4, per tensor on the 3x3 tensor, every state new): what choosing a grid costs.

The range control (issue 9): two cases redraw the 3x3 tensor in symmetric mode with a
clipped range (every redraw runs the range choice again). ``--ranges`` adds a second table:
what choosing each range in the menu costs, from min-max to that range (the widget change,
search, redraw and PNG), on the 3x3 tensor and on 512x512 random normal values per tensor,
per row and in groups of 2 (the coarser MSE search), each change timed alone (the change back
to min-max is not timed).
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

from helper import (  # noqa: E402
    dequantize_from_grid,
    linear_dequantization,
    linear_quantization,
    plot_quantization_errors,
    quantize_to_grid,
)
from support.explorer import (  # noqa: E402
    EXPLORER_RANGES,
    QuantizationExplorer,
    explorer_block_size,
    lesson_test_tensor,
)

TARGET_RATIO = 4.0
BITS = (8, 7, 6, 5, 4, 3, 2)
GRANULARITIES = ("per tensor", "per channel (rows)", "per channel (columns)", "per group")
DTYPES = ("int8", "float8 e4m3fn", "float8 e5m2", "nf4")


def widget_redraw(
    settings: dict, forget: str = "", control: str = "n_bits", values=BITS
) -> Callable[[int], object]:
    """One control change in the widgets: the bit slider moves (or ``control`` takes the next
    of ``values``), the observer redraws.

    ``forget="cache"`` forgets the saved pixels of the figure's regions, and every saved
    background but the current one, before each change; ``forget="all"`` also drops the
    current background (a full draw every time).
    """
    explorer = QuantizationExplorer()
    explorer.build_widgets()
    for name, value in settings.items():
        explorer.widgets[name].value = value
    widget = explorer.widgets[control]
    if control == "n_bits":
        values = [b for b in values if b <= widget.max]

    def step(i: int) -> None:
        value = values[i % len(values)]
        if widget.value == value:  # the same value would not trigger the observer
            value = values[(i + 1) % len(values)]
        drawing = explorer._drawing
        if forget:  # a background other than the current one is drawn again, too
            drawing.saved.clear()
            drawing.backgrounds.clear()
        if forget == "all":
            drawing._background = None
        widget.value = value

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


def fresh_grid_figure(dpi: float, grid: str = "e4m3fn") -> Callable[[int], object]:
    """The float8 baseline: a new four-panel figure per change of the granularity (the float8
    round trip of helper, its codes in the quantized panel), rendered to PNG at ``dpi``."""
    tensor = lesson_test_tensor()

    def step(i: int) -> None:
        block_size = explorer_block_size(tensor.shape, GRANULARITIES[i % len(GRANULARITIES)])
        codes, scale = quantize_to_grid(tensor, grid, block_size)
        dequantized = dequantize_from_grid(codes, scale, grid, block_size)
        figure = plot_quantization_errors(tensor, codes, dequantized, torch.uint8)
        figure.savefig(io.BytesIO(), format="png", dpi=dpi)

    return step


DEFAULT = "explorer 3x3 (default), states seen before"
DEFAULT_NEW = "explorer 3x3 (default), every state new"
BASELINE = "fresh figure per change, 3x3 (baseline)"
FLOAT8 = "explorer 3x3, float8 e4m3fn, states seen before"
FLOAT8_NEW = "explorer 3x3, float8 e4m3fn, every state new"
FLOAT8_BASELINE = "fresh figure per change, 3x3 float8 (baseline)"


def cases(dpi: float) -> list[tuple[str, Callable[[int], object]]]:
    """Every timed case: name and step function."""
    normal64 = {"tensor_name": "random normal", "size": 64}
    float8 = {"dtype": "float8 e4m3fn", "group_size": 3}
    float8_64 = {**normal64, **float8, "group_size": 8}
    granularity = {"control": "granularity", "values": GRANULARITIES}
    return [
        (DEFAULT, widget_redraw({})),
        (DEFAULT_NEW, widget_redraw({}, forget="cache")),
        ("explorer 3x3, no blitting (full draw)", widget_redraw({}, forget="all")),
        (BASELINE, fresh_figure(dpi)),
        (FLOAT8, widget_redraw(float8, **granularity)),
        (FLOAT8_NEW, widget_redraw(float8, forget="cache", **granularity)),
        (FLOAT8_BASELINE, fresh_grid_figure(dpi)),
        (
            "explorer 3x3, dtype menu cycling, every state new",
            widget_redraw({}, forget="cache", control="dtype", values=DTYPES),
        ),
        (
            "explorer, random normal 64x64, float8 e4m3fn",
            widget_redraw(float8_64, **granularity),
        ),
        (
            "explorer, random normal 64x64, float8, new states",
            widget_redraw(float8_64, forget="cache", **granularity),
        ),
        (
            "explorer 3x3, symmetric, per channel (rows)",
            widget_redraw({"mode": "symmetric", "granularity": "per channel (rows)"}),
        ),
        (
            "explorer 3x3, per group of 3",
            widget_redraw({"granularity": "per group", "group_size": 3}),
        ),
        ("explorer, random normal 64x64", widget_redraw(normal64)),
        (
            "explorer, random normal 64x64, per group of 8",
            widget_redraw({**normal64, "granularity": "per group", "group_size": 8}),
        ),
        (
            "explorer, outlier 256x256",
            widget_redraw({"tensor_name": "normal with one outlier", "size": 256}),
        ),
        ("explorer, random normal 64x64, int16", widget_redraw({**normal64, "dtype": "int16"})),
        (
            "explorer 3x3, symmetric, percentile 99.9 range",
            widget_redraw({"mode": "symmetric", "range_method": "percentile 99.9"}),
        ),
        (
            "explorer 3x3, symmetric, MSE-optimal range",
            widget_redraw({"mode": "symmetric", "range_method": "MSE-optimal"}),
        ),
    ]


RANGE_CASES = [
    ("3x3 test tensor, per tensor", {}),
    ("random normal 512x512, per tensor", {"tensor_name": "random normal", "size": 512}),
    (
        "random normal 512x512, per row",
        {"tensor_name": "random normal", "size": 512, "granularity": "per channel (rows)"},
    ),
    (
        "random normal 512x512, groups of 2",
        {"tensor_name": "random normal", "size": 512, "granularity": "per group", "group_size": 2},
    ),
]


def range_changes(repeats: int) -> None:
    """Time a change of the range menu, min-max -> each range, at 4 bits, symmetric."""
    print()
    head = "the range menu: min-max -> range, 4 bits"
    print(f"{head:<44}{'range':<17}{'median ms':>10}{'max ms':>8}")
    for name, settings in RANGE_CASES:
        explorer = QuantizationExplorer()
        explorer.build_widgets()
        for key, value in {"mode": "symmetric", "n_bits": 4, **settings}.items():
            explorer.widgets[key].value = value
        menu = explorer.widgets["range_method"]
        for method in [m for m in EXPLORER_RANGES if m != "min-max"]:
            times = []
            for i in range(repeats + 1):
                menu.value = "min-max"
                start = time.perf_counter()
                menu.value = method
                if i:  # the first is a warm-up
                    times.append((time.perf_counter() - start) * 1000)
            median = statistics.median(times)
            print(f"{name:<44}{method:<17}{median:>10.1f}{max(times):>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed redraws per case")
    parser.add_argument(
        "--ranges", action="store_true", help="also time the range menu (about a minute more)"
    )
    args = parser.parse_args()
    dpi = QuantizationExplorer().dpi
    steps = cases(dpi)
    times: dict[str, list[float]] = {name: [] for name, _ in steps}
    for _, step in steps:
        step(args.repeats)  # warm-up: fonts, caches, the first layout
    for i in range(args.repeats):
        for name, step in steps:
            start = time.perf_counter()
            step(i)
            times[name].append((time.perf_counter() - start) * 1000)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"load average {load:.2f}, dpi {dpi}, {args.repeats} redraws per case, interleaved"
    )
    print(f"{'case':<48} {'median ms':>10} {'p90 ms':>8}")
    medians = {}
    for name, _ in steps:
        ordered = sorted(times[name])
        medians[name] = statistics.median(ordered)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"{name:<48} {medians[name]:>10.1f} {p90:>8.1f}")
    print()
    ok = True
    compared = [(DEFAULT, BASELINE), (DEFAULT_NEW, BASELINE)]
    compared += [(FLOAT8, FLOAT8_BASELINE), (FLOAT8_NEW, FLOAT8_BASELINE)]
    for name, baseline in compared:
        ratio = medians[baseline] / medians[name]
        ok = ok and ratio >= TARGET_RATIO
        print(f"{name}: {ratio:.1f}x faster than the fresh figure (target {TARGET_RATIO:.0f}x)")
    print("target met" if ok else "target MISSED")
    if args.ranges:
        range_changes(max(3, args.repeats // 5))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
