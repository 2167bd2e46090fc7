"""The drawing halves of ``helper.py``'s ``plot_*`` functions.

Each ``plot_*`` function in helper checks its input and computes every number the picture
shows (errors, levels, SQNRs, histograms); it then hands those numbers to a ``draw_*`` function
here, which only draws. Every figure is closed for pyplot before it is returned, so a notebook
shows it exactly once, as the value of the cell.

Import direction: this module imports torch, matplotlib and ``support.constants``; ``helper``
imports it, and so does the explorer (``HeatmapPanel``); it never imports ``helper``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

__all__ = [
    "ANNOTATE_MAX_ELEMENTS",
    "VALUE_CMAP",
    "QUANTIZED_CMAP",
    "ERROR_CMAP",
    "MAX_LEVEL_LINES",
    "PLOT_MAX_BYTES",
    "as_2d",
    "format_value",
    "HeatmapPanel",
    "ErrorPanels",
    "draw_quantization_errors",
    "draw_number_line",
    "level_lines",
    "draw_grids",
    "draw_granularity_tradeoff",
    "draw_output_sqnr",
    "draw_accuracy_vs_bits",
    "draw_packed_bits",
    "draw_clipping_curves",
    "draw_clipping_ranges",
]

#: Tensors with at most this many elements get their values written into the heatmap cells.
ANNOTATE_MAX_ELEMENTS = 64

#: Colour-blind-safe, perceptually uniform colour maps for the four panels.
VALUE_CMAP, QUANTIZED_CMAP, ERROR_CMAP = "viridis", "cividis", "magma"

#: ``draw_grids`` draws every level of a grid up to this many levels; a finer grid (int16 has
#: 65,536) gets every k-th unused level, and all the levels in use.
MAX_LEVEL_LINES = 256

#: ``draw_packed_bits`` draws at most this many bytes.
PLOT_MAX_BYTES = 8


# -- heatmaps (plot_quantization_errors, and the explorer) --------------------------------------


def as_2d(tensor: torch.Tensor) -> torch.Tensor:
    """A float64 2-D view for a heatmap: scalars become 1x1, vectors one row, and a tensor of
    more dimensions stacks its rows (shape ``(-1, last dim)``)."""
    t = tensor.detach().to(torch.float64)
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t.reshape(1, -1)
    return t.reshape(-1, t.shape[-1])


def format_value(value: float, integer: bool) -> str:
    """Short cell text: integers as they are, floats with four significant digits."""
    return f"{int(value)}" if integer else f"{value:.4g}"


class HeatmapPanel:
    """One heatmap panel with a colour bar, built once for a shape and then updated in place.

    Building a panel (axes, colour bar, one text per cell) is the slow part of a plot;
    ``update`` only swaps the image data, the colour limits and the cell texts, so an
    interactive plot (the explorer) can redraw many times in one figure.
    """

    def __init__(self, ax, shape: tuple[int, int], cmap: str) -> None:
        rows, cols = shape
        self.ax, self.colormap = ax, plt.get_cmap(cmap)
        self.image = ax.imshow(
            torch.zeros(rows, cols).numpy(),
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
            aspect="auto",
            interpolation="nearest",
        )
        self.colorbar = ax.figure.colorbar(self.image, ax=ax, shrink=0.85)
        self.texts = []
        if rows * cols <= ANNOTATE_MAX_ELEMENTS:
            ax.set_xticks(range(cols))
            ax.set_yticks(range(rows))
            self.texts = [
                ax.text(j, i, "", ha="center", va="center", fontsize=10)
                for i in range(rows)
                for j in range(cols)
            ]
        ax.set_xlabel("column")
        ax.set_ylabel("row")

    def update(
        self, data: torch.Tensor, title: str, vmin: float, vmax: float, integer: bool = False
    ) -> None:
        """Show ``data`` (2-D, the panel's shape) with colours spanning ``[vmin, vmax]``."""
        if vmax <= vmin:  # a constant panel still needs a non-empty colour range
            vmin, vmax = vmin - 0.5, vmax + 0.5
        self.image.set_data(data.numpy())
        if self.image.get_clim() != (vmin, vmax):
            self.image.set_clim(vmin, vmax)
        self.ax.set_title(title, fontsize=12)
        for text, value in zip(self.texts, data.flatten().tolist(), strict=False):
            red, green, blue, _ = self.colormap((value - vmin) / (vmax - vmin))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
            text.set_text(format_value(value, integer))
            text.set_color("black" if light else "white")


class ErrorPanels:
    """The four panels of ``plot_quantization_errors`` on ``figure``, for 2-D data of ``shape``.

    Build once, then call ``update`` for every new quantization of a tensor of that shape.
    """

    def __init__(self, figure: Figure, shape: tuple[int, int]) -> None:
        self.figure, self.shape = figure, tuple(shape)
        axes = figure.subplots(1, 4)
        cmaps = (VALUE_CMAP, QUANTIZED_CMAP, VALUE_CMAP, ERROR_CMAP)
        self.panels = [
            HeatmapPanel(ax, self.shape, cmap) for ax, cmap in zip(axes, cmaps, strict=True)
        ]

    def update(
        self,
        original: torch.Tensor,
        quantized: torch.Tensor,
        dequantized: torch.Tensor,
        error: torch.Tensor,
        quantized_title: str,
        error_max: float | None = None,
    ) -> None:
        """Draw the three float64 2-D tensors and their error ``|original - dequantized|``.

        The original and dequantized panels share one colour scale; the quantized panel spans
        its integer values and the error panel runs from 0 to ``error_max`` (default: the
        largest error).
        """
        r, q, r2 = original, quantized, dequantized
        low, high = min(r.min(), r2.min()).item(), max(r.max(), r2.max()).item()
        original_panel, quantized_panel, dequantized_panel, error_panel = self.panels
        original_panel.update(r, "Original tensor", low, high)
        quantized_panel.update(q, quantized_title, q.min().item(), q.max().item(), integer=True)
        dequantized_panel.update(r2, "Dequantized tensor", low, high)
        top = error.max().item() if error_max is None else float(error_max)
        error_panel.update(error, "Absolute error |original - dequantized|", 0.0, top)


def draw_quantization_errors(
    original: torch.Tensor,
    quantized: torch.Tensor,
    dequantized: torch.Tensor,
    error: torch.Tensor,
    quantized_title: str,
    title: str,
    error_max: float | None = None,
) -> Figure:
    """Four heatmaps in a row (2-D float64 tensors of one shape), under ``title``."""
    fig = plt.figure(figsize=(18, 4.2), layout="constrained")
    ErrorPanels(fig, tuple(original.shape)).update(
        original, quantized, dequantized, error, quantized_title, error_max
    )
    fig.suptitle(title, fontsize=13)
    plt.close(fig)  # pyplot would show it a second time at the end of the cell
    return fig


# -- the staircase (plot_number_line) -----------------------------------------------------------


def draw_number_line(
    xs: torch.Tensor,
    staircase: torch.Tensor,
    values: torch.Tensor,
    back: torch.Tensor,
    clamp_edges: tuple[float, float],
    x_limits: tuple[float, float],
    zero_point: int,
    title: str,
) -> Figure:
    """The staircase ``staircase`` over ``xs``, the tensor's ``values`` at their dequantized
    ``back``, the saturated zones beyond ``clamp_edges`` shaded, and 0 marked as a level."""
    left, right = x_limits
    low_clamp, high_clamp = clamp_edges
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    ax.axvspan(left, low_clamp, color="tab:red", alpha=0.12, label="saturated (clamped)")
    ax.axvspan(high_clamp, right, color="tab:red", alpha=0.12)
    ax.plot(xs, xs, ":", color="grey", linewidth=1, label="r' = r (no error)")
    ax.step(xs, staircase, where="mid", color="tab:blue", linewidth=1.2, label="r' (staircase)")
    ax.plot(values, back, "o", color="tab:orange", markersize=6, label="the tensor's values")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.annotate(
        f"0 is a level: q = z = {zero_point}",
        xy=(0, 0),
        xytext=(0.04, 0.92),
        textcoords="axes fraction",
        arrowprops={"arrowstyle": "->", "color": "black"},
        fontsize=10,
    )
    ax.set_title(title, fontsize=12)
    ax.set_xlabel("original value r")
    ax.set_ylabel("dequantized value r'")
    ax.set_xlim(left, right)
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    plt.close(fig)
    return fig


# -- grids over a histogram (plot_symmetric_vs_asymmetric) ---------------------------------------


def level_lines(ax, levels: torch.Tensor, color: str, width: float, label: str) -> None:
    """Vertical lines at ``levels`` (real values) spanning the whole height of ``ax``."""
    segments = [((x, 0.0), (x, 1.0)) for x in levels.tolist()]
    lines = LineCollection(
        segments,
        colors=color,
        linewidths=width,
        transform=ax.get_xaxis_transform(),  # x in data units, y from 0 to 1 of the axes
        label=label,
        zorder=1,
    )
    ax.add_collection(lines, autolim=False)


def draw_grids(
    values: torch.Tensor,
    bins: int,
    panels: Sequence[dict],
    spans: Sequence[tuple[float, float]],
    title: str,
) -> Figure:
    """One histogram of ``values`` (float64, 1-D) per panel, each with a grid's levels drawn
    over it. A panel is a dict: ``title``, ``unused`` and ``used`` (level values), ``text`` (the
    numbers shown in its box); ``spans`` are the grids' lowest and highest levels, which the x
    axis shows whole."""
    r_min, r_max = values.min().item(), values.max().item()
    left = min([r_min] + [low for low, _ in spans])
    right = max([r_max] + [high for _, high in spans])
    pad = 0.03 * (right - left)
    if r_max > r_min:
        counts, edges = torch.histogram(values, bins=bins, range=(r_min, r_max))
    else:  # a constant tensor: one narrow bar
        counts, edges = torch.histogram(values, bins=1, range=(r_min - pad / 3, r_max + pad / 3))
    x_limits = (left - pad, right + pad)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 6), sharex=True, layout="constrained")
    for ax, panel in zip(axes, panels, strict=True):
        level_lines(ax, panel["unused"], "0.8", 0.6, "level no value uses")
        level_lines(ax, panel["used"], "tab:red", 1.0, "level in use")
        ax.stairs(
            counts.numpy(),
            edges.numpy(),
            fill=True,
            color="tab:blue",
            alpha=0.7,
            label="the tensor's values (histogram)",
            zorder=2,
        )
        ax.set_title(panel["title"], fontsize=12)
        ax.text(
            0.01,
            0.95,
            panel["text"],
            transform=ax.transAxes,
            va="top",
            fontsize=10,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9},
        )
        ax.set_ylabel("count")
        ax.set_ylim(0, 1.15 * max(counts.max().item(), 1.0))
    axes[-1].set_xlim(*x_limits)
    axes[-1].set_xlabel("value r (levels: r = s * (q - z))")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9)
    fig.suptitle(title, fontsize=13)
    plt.close(fig)
    return fig


# -- granularity, outputs, accuracy -------------------------------------------------------------


def draw_granularity_tradeoff(points: Sequence, title: str | None) -> Figure:
    """Left: the MSE of every granularity; right: the MSE against bits per weight. ``points``
    have ``label``, ``n_bits``, ``bits_per_weight`` and ``mse``."""
    labels = list(dict.fromkeys(point.label for point in points))
    widths = sorted({point.n_bits for point in points}, reverse=True)
    colours, markers = ("tab:blue", "tab:orange", "tab:green", "tab:purple"), "osD^v"

    fig, (by_label, by_cost) = plt.subplots(1, 2, figsize=(14, 5.2), layout="constrained")
    for i, n_bits in enumerate(widths):
        mine = [point for point in points if point.n_bits == n_bits]
        style = {
            "color": colours[i % len(colours)],
            "marker": markers[i % len(markers)],
            "label": f"{n_bits}-bit values",
        }
        by_label.plot([labels.index(p.label) for p in mine], [p.mse for p in mine], **style)
        by_cost.plot([p.bits_per_weight for p in mine], [p.mse for p in mine], **style)
        for point in mine:  # numbered like the left panel's granularities: short, no overlap
            by_cost.annotate(
                str(labels.index(point.label) + 1),
                (point.bits_per_weight, point.mse),
                xytext=(4, 4),
                textcoords="offset points",
                ha="left",
                fontsize=9,
                color=style["color"],
            )
    numbered = [f"{number}: {label}" for number, label in enumerate(labels, start=1)]
    by_label.set_xticks(range(len(labels)), numbered, rotation=30, ha="right")
    by_label.set_xlabel("granularity")
    by_label.set_title("Error per granularity", fontsize=12)
    by_cost.set_xlabel("bits per weight, scales included")
    by_cost.set_title("Error against storage cost", fontsize=12)
    for ax in (by_label, by_cost):
        ax.set_yscale("log")
        ax.set_ylabel("MSE (log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=13)
    plt.close(fig)
    return fig


def draw_output_sqnr(
    overall: dict[str, float],
    per_token: dict[str, torch.Tensor],
    rms: torch.Tensor,
    title: str | None,
) -> Figure:
    """Left: one bar per output, its SQNR over the batch; right: every token's SQNR against
    the RMS of its float output."""
    order = torch.argsort(rms)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(16, 4.8), layout="constrained", gridspec_kw={"width_ratios": [1, 1.3]}
    )
    labels = list(overall)
    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(labels))]
    finite = [v for v in overall.values() if math.isfinite(v)]
    top = max([*finite, 1.0]) * 1.2  # an exact output (inf dB) gets a bar to the edge
    widths = [min(max(overall[k], 0.0), top) for k in labels]
    bars = left.barh(range(len(labels)), widths, color=colors)
    texts = [f"{overall[k]:.1f} dB" if math.isfinite(overall[k]) else "exact" for k in labels]
    left.bar_label(bars, labels=texts, padding=3)
    left.set_yticks(range(len(labels)), labels)
    left.invert_yaxis()
    left.set_xlabel("SQNR over the whole batch (dB, higher is better)")
    left.set_xlim(0, top * 1.15)
    left.set_title("One number per layer", fontsize=12)
    left.grid(axis="x", alpha=0.3)
    for (label, values), color in zip(per_token.items(), colors, strict=True):
        values = values.masked_fill(values.isinf(), math.nan)  # exact rows: not drawn
        right.plot(rms[order], values[order], "o-", color=color, label=label, markersize=4)
    right.set_xscale("log")
    right.set_xlabel("size of the token's float output (RMS, log scale)")
    right.set_ylabel("SQNR of the token (dB)")
    right.set_title("Token by token", fontsize=12)
    right.grid(alpha=0.3)
    right.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        fig.suptitle(title, fontsize=13)
    plt.close(fig)
    return fig


def draw_accuracy_vs_bits(
    correct: dict[str, dict[int, int]],
    n_test: int,
    float_correct: int | None,
    n_classes: int | None,
    title: str | None,
) -> Figure:
    """Accuracy (%) against bit width, one line per label, most bits on the left."""
    widths = sorted({int(b) for counts in correct.values() for b in counts}, reverse=True)
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    markers = "osD^v<>"
    for i, (label, counts) in enumerate(correct.items()):
        bits = sorted(counts, reverse=True)
        ax.plot(
            [widths.index(b) for b in bits],
            [100 * counts[b] / n_test for b in bits],
            marker=markers[i % len(markers)],
            label=label,
        )
    if float_correct is not None:
        ax.axhline(
            100 * float_correct / n_test,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"float32 ({float_correct}/{n_test})",
        )
    if n_classes:
        ax.axhline(
            100 / n_classes,
            color="gray",
            linestyle=":",
            linewidth=1.5,
            label=f"guessing (1 in {n_classes})",
        )
    ax.set_xticks(range(len(widths)), [f"{b} bits" for b in widths])
    ax.set_xlabel("bits per weight value (symmetric quantization)")
    ax.set_ylabel(f"test accuracy (%), {n_test} images")
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower left")
    ax.set_title(title or "Accuracy against bit width", fontsize=12)
    plt.close(fig)
    return fig


# -- packing ------------------------------------------------------------------------------------


def draw_packed_bits(values: list[int], packed: list[int], bits: int, title: str) -> Figure:
    """The ``values`` (top row) and the bytes they pack into (bottom row), bit by bit, with an
    arrow from every value to its bits; a byte's highest bit on the left."""
    per_byte, gap = 8 // bits, 1.2
    colours = [plt.get_cmap("tab10")(j % 10) for j in range(len(values))]
    light = [(*colour[:3], 0.35) for colour in colours]  # the same colours, see-through
    width = len(packed) * (8 + gap) - gap
    fig, ax = plt.subplots(figsize=(max(6.0, 0.62 * width + 1.0), 4.2), layout="constrained")
    top, bottom = 3.2, 0.0  # y of the value boxes and of the bit cells
    small = 8 if bits == 1 else 10
    for b, byte in enumerate(packed):
        left = b * (8 + gap)
        for bit in range(8):  # bit 7 on the left, bit 0 on the right
            x = left + 7 - bit
            owner = b * per_byte + bit // bits
            ax.add_patch(Rectangle((x, bottom), 1, 1, facecolor=light[owner], edgecolor="black"))
            ax.text(x + 0.5, bottom + 0.5, str((byte >> bit) & 1), ha="center", va="center")
            ax.text(x + 0.5, bottom + 1.12, str(bit), ha="center", va="bottom", fontsize=7)
        ax.text(
            left + 4,
            bottom - 0.25,
            f"byte {b} = 0b{byte:08b} = {byte}",
            ha="center",
            va="top",
            fontsize=10,
        )
        for position in range(per_byte):
            j = b * per_byte + position
            value = values[j]
            box_left = left + position * bits  # values in order, left to right
            ax.add_patch(Rectangle((box_left, top), bits, 1, facecolor=light[j], edgecolor="black"))
            label = f"v{j}={value}" if bits > 1 else f"v{j}\n{value}"
            binary = f"\n0b{value:0{bits}b}" if bits > 1 else ""
            ax.text(
                box_left + bits / 2,
                top + 0.5,
                label + binary,
                ha="center",
                va="center",
                fontsize=small,
            )
            slot_middle = left + 8 - position * bits - bits / 2  # its bits, counted from the right
            ax.add_patch(
                FancyArrowPatch(
                    (box_left + bits / 2, top),
                    (slot_middle, bottom + 1.45),
                    arrowstyle="-|>",
                    mutation_scale=10,
                    color=colours[j],
                    linewidth=1.2,
                )
            )
    ax.text(-0.3, top + 0.5, "values", ha="right", va="center", fontsize=10)
    ax.text(-0.3, bottom + 0.5, "bytes", ha="right", va="center", fontsize=10)
    ax.text(-0.3, bottom + 1.2, "bit", ha="right", va="bottom", fontsize=7)
    ax.set_xlim(-2.2, width + 0.3)
    ax.set_ylim(bottom - 1.0, top + 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=12)
    plt.close(fig)
    return fig


# -- clipping -----------------------------------------------------------------------------------


def draw_clipping_curves(ratios: torch.Tensor, panels: Sequence[dict], title: str) -> Figure:
    """One panel per bit width: the measured MSE against ``ratios`` (``curve``), the estimate
    ``s**2 / 12`` (``estimate``) and markers (``marks``: label, ratio, MSE, marker, colour)."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.4), layout="constrained", squeeze=False
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        ax.plot(ratios, panel["curve"], color="tab:blue", linewidth=1.6, label="measured MSE")
        ax.plot(
            ratios,
            panel["estimate"],
            "--",
            color="gray",
            linewidth=1.2,
            label="s² / 12 (rounding only)",
        )
        for label, ratio, mse, marker, colour in panel["marks"]:
            ax.plot(
                ratio,
                mse,
                marker,
                color=colour,
                markersize=11 if marker == "*" else 8,
                label=f"{label}: {ratio:.3f}, MSE {mse:.3g}",
                zorder=3,
            )
        ax.set_yscale("log")
        ax.set_xlim(0, 1.03)
        ax.set_xlabel("clipping range alpha / max|r|")
        ax.set_ylabel("MSE (log scale)")
        ax.set_title(panel["title"], fontsize=12)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=13)
    plt.close(fig)
    return fig


def draw_clipping_ranges(
    values: torch.Tensor, bins: int, lines: Sequence[tuple[str, float, float]], title: str
) -> Figure:
    """A histogram of ``values`` (float64, 1-D) with a pair of vertical lines at ``-alpha`` and
    ``+alpha`` for every ``(label, alpha, share beyond)`` in ``lines``; log count axis."""
    top = max([values.abs().max().item(), *[alpha for _, alpha, _ in lines]]) or 1.0
    counts, edges = torch.histogram(values, bins=bins, range=(-top, top))
    n_values = values.numel()
    fig, ax = plt.subplots(figsize=(10, 4.6), layout="constrained")
    ax.stairs(
        counts.numpy(),
        edges.numpy(),
        fill=True,
        color="tab:blue",
        alpha=0.6,
        label=f"{n_values:,} values",
    )
    styles = ("-", "--", "-.", ":")
    colours = ("tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown")
    for i, (label, alpha, beyond) in enumerate(lines):
        for x, name in (
            (alpha, f"{label}: ±{alpha:.4g}, {100 * beyond:.2f}% beyond"),
            (-alpha, None),
        ):
            ax.axvline(
                x,
                color=colours[i % len(colours)],
                linestyle=styles[i % len(styles)],
                linewidth=1.8,
                label=name,
            )
    ax.set_yscale("log")
    ax.set_xlim(-1.03 * top, 1.03 * top)
    ax.set_xlabel("value r")
    ax.set_ylabel("count (log scale)")
    ax.legend(fontsize=9, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=12)
    plt.close(fig)
    return fig
