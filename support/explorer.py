"""The interactive quantization explorer: sliders and menus, and what they do to the error.

Controls (tensor, size, seed, dtype, bit width, mode, range, granularity, group size) on top,
what they do below: the scale(s) and zero point(s), the error measured and estimated, whether
the estimate applies, what the range clips, the memory, and one picture that is redrawn in
place. The logic is plain Python (``QuantizationExplorer.compute``), so tests can drive it
without a browser; ``build_widgets`` only wires ipywidgets to it.

Use it from a notebook with ``from explorer import explore`` and ``explore()``. The
quantization it shows comes from ``helper.py`` (``quantize_blockwise`` and
``dequantize_affine``, whatever the mode and granularity; with a clipped range, section 13's
``clipping_absmax`` and ``quantize_clipped``); this module is machinery you need not read.

How it stays quick: the picture is drawn once in full (axes, labels, colour bars, histogram),
then every change redraws only the artists that change (images, cell numbers, colour-bar
labels, titles, grid lines) over a saved copy of that background (blitting). Texts and small
images drawn before are replayed from a cache of their glyphs and pixels (``_Sprites``), and
the pixels are encoded as PNG with zlib at a low compression level (``png_bytes``). The layout
is computed once per tensor shape, with room for the longest labels, and never again. Tests
check that this draws exactly the pixels an ordinary full draw of the same state draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import torch
from matplotlib.figure import Figure

from helper import (
    SUPPORTED_DTYPES,
    absmax_mse_optimal,
    clipping_absmax,
    dequantize_affine,
    dtype_name,
    get_q_range,
    granularity_block_size,
    per_element,
    quantization_error,
    quantize_blockwise,
    quantize_clipped,
)
from support.examples import (
    outlier_tensor,
    positive_tensor,
    random_normal_tensor,
    test_tensor,
)
from support.plots import (
    ANNOTATE_MAX_ELEMENTS,
    ERROR_CMAP,
    QUANTIZED_CMAP,
    VALUE_CMAP,
    HeatmapPanel,
    as_2d,
)

__all__ = [
    "TENSOR_SOURCES",
    "BUILTIN_TENSOR_SOURCES",
    "register_tensor_source",
    "lesson_test_tensor",
    "random_normal_tensor",
    "outlier_tensor",
    "positive_tensor",
    "EXPLORER_MODES",
    "EXPLORER_GRANULARITIES",
    "EXPLORER_GROUP_SIZES",
    "EXPLORER_RANGES",
    "ExplorerControl",
    "EXPLORER_CONTROLS",
    "QuantizerResult",
    "explorer_block_size",
    "mse_search_size",
    "explorer_clip_range",
    "explorer_quantize",
    "format_number",
    "estimate_check",
    "QuantizationExplorer",
    "explore",
]

# Extending it is one line each:
#   register_tensor_source("my weights", lambda seed, size: weights)   # a new tensor
#   EXPLORER_CONTROLS.append(ExplorerControl("rows", "rows", "slider", 8, low=1, high=64))
# A control's value reaches the quantizer (``QuantizationExplorer.quantizer``) as a keyword
# argument of the same name, so a later lesson pairs a new control with a quantizer that reads
# it (the range menu of lesson 13 is such a pair: ``range_method`` and ``explorer_quantize``).
# The quantizer returns a ``QuantizerResult``, whose block size tells the explorer which
# elements share a scale, and whose clipping range, if any, the histogram draws.

#: Side lengths offered for the random tensors (``size`` x ``size``).
EXPLORER_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512)

#: The target dtypes by name, as the dtype menu offers them.
EXPLORER_DTYPES: dict[str, torch.dtype] = {dtype_name(d): d for d in SUPPORTED_DTYPES}

#: The mode menu: asymmetric fits [r_min, r_max], symmetric [-max|r|, max|r|] with z = 0.
EXPLORER_MODES: tuple[str, ...] = ("asymmetric", "symmetric")

#: The granularity menu: name -> (helper's granularity, dim). Rows are dim 0 (a weight's
#: output channels), columns the last dim; groups run along the last dim (along each row).
EXPLORER_GRANULARITIES: dict[str, tuple[str, int]] = {
    "per tensor": ("per_tensor", 0),
    "per channel (rows)": ("per_channel", 0),
    "per channel (columns)": ("per_channel", -1),
    "per group": ("per_group", -1),
}

#: The group sizes offered when the granularity is "per group" (3 is the course's, L3-D).
EXPLORER_GROUP_SIZES: tuple[int, ...] = (2, 3, 4, 8, 16, 32, 64, 128)

#: The range menu (lesson 13): how symmetric mode chooses every block's range [-alpha, alpha].
#: name -> (method of ``helper.clipping_absmax``, percentile). Min-max clips nothing; the
#: others let the largest magnitudes saturate at the end levels, for a finer step. Helper's
#: clipping ranges are symmetric, so the menu works in symmetric mode only.
EXPLORER_RANGES: dict[str, tuple[str, float]] = {
    "min-max": ("min-max", 100.0),
    "percentile 99.9": ("percentile", 99.9),
    "percentile 99": ("percentile", 99.0),
    "MSE-optimal": ("mse", 100.0),
}

#: The MSE-optimal search, ``(n_grid, n_refine)`` of ``helper.absmax_mse_optimal``: lesson
#: 13's, 100 ratios of max|r| and then 20 finer ones around the best, 120 round trips.
MSE_SEARCH: tuple[int, int] = (100, 10)
#: A coarser search for large tensors: 20 ratios (steps of 0.05 of max|r|), then 10 finer ones
#: (steps of 0.01) around the best, 30 round trips. Used when ``values + MSE_BLOCK_COST *
#: blocks`` exceeds ``MSE_SEARCH_WORK``: a round trip costs about a nanosecond per value and
#: ~30 per block (the search's per-block bookkeeping), so the full search stays under about a
#: tenth of a second (512x512 per tensor or per row: ~40 ms on one thread), and the coarse one
#: takes 512x512 in groups of 2 (131,072 blocks) in ~0.3 s instead of ~1.2 s, for an MSE
#: within 0.4% of the full search's (measured at 4 bits on random normal values).
MSE_SEARCH_COARSE: tuple[int, int] = (20, 5)
MSE_SEARCH_WORK = 2**19
MSE_BLOCK_COST = 32

#: At most this many grid lines (representable levels) are drawn per grid over the histogram;
#: with more levels (int16 has 65536) every k-th level is drawn.
MAX_GRID_LINES = 256

#: The explorer writes the values into the heatmap cells when the tensor has at most this many
#: columns (and at most ``helper.ANNOTATE_MAX_ELEMENTS`` values); narrower cells stay plain.
ANNOTATE_MAX_COLUMNS = 4

#: The colours of the two grids drawn over the histogram: the block with the largest scale,
#: and the block with the smallest (with one scale per channel or group).
GRID_COLORS = ("tab:red", "tab:green")

#: Number of histogram bins for tensors too large for the four annotated panels.
HISTOGRAM_BINS = 80

#: Where the histogram's bars start on its log count axis: a bin with one value (an outlier)
#: rises from here to 1, a bar tall enough to see; empty bins stay flat on it.
COUNT_BASELINE = 0.2

#: The estimate s^2/12 is flagged when measured and estimated MSE are further apart than this
#: factor (either way), and shown with a caution below ``FEW_VALUES`` values (see
#: ``estimate_check``).
ESTIMATE_FACTOR = 1.5
FEW_VALUES = 100

#: zlib level for the explorer's PNG pictures (0-9): 1 is several times quicker than
#: matplotlib's default, and the pictures (mostly flat colour) are only about 10% larger.
PNG_COMPRESS_LEVEL = 1


def lesson_test_tensor(seed: int = 0, size: int = 3) -> torch.Tensor:
    """The lessons' 3x3 test tensor (float32); ``seed`` and ``size`` are ignored."""
    return test_tensor()


#: The explorer's tensor menu: name -> ``source(seed, size)`` returning a float tensor.
TENSOR_SOURCES: dict[str, Callable[[int, int], torch.Tensor]] = {
    "lesson test tensor (3x3)": lesson_test_tensor,
    "random normal": random_normal_tensor,
    "normal with one outlier": outlier_tensor,
    "all positive": positive_tensor,
}

#: The menu entries the explorer itself defines (others come from ``register_tensor_source``,
#: e.g. the real weights that importing ``models`` adds).
BUILTIN_TENSOR_SOURCES: tuple[str, ...] = tuple(TENSOR_SOURCES)


def register_tensor_source(name: str, source: Callable[[int, int], torch.Tensor]) -> None:
    """Add ``source`` to the explorer's tensor menu under ``name``.

    ``source(seed, size)`` returns the tensor to quantize; a fixed tensor may ignore both,
    e.g. ``register_tensor_source("layer 0 weights", lambda seed, size: model.w.detach())``.
    Explorers built afterwards list it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}.")
    if not callable(source):
        raise TypeError(f"source must be a function source(seed, size), got {source!r}.")
    TENSOR_SOURCES[name] = source


def _explorer_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"int8"`` -> ``torch.int8``; a torch dtype is checked and returned as it is."""
    if isinstance(dtype, str):
        if dtype not in EXPLORER_DTYPES:
            raise TypeError(f"unknown dtype {dtype!r}: choose one of {', '.join(EXPLORER_DTYPES)}.")
        return EXPLORER_DTYPES[dtype]
    get_q_range(dtype)  # a clear TypeError for anything that is not a supported dtype
    return dtype


def _dtype_bits(settings: dict[str, Any]) -> int:
    """The width in bits of the chosen dtype: the largest bit width the slider offers."""
    return torch.iinfo(_explorer_dtype(settings["dtype"])).bits


def _grouped(settings: dict[str, Any]) -> bool:
    """The group size matters only when the granularity is per group."""
    return settings.get("granularity") == "per group"


def _symmetric(settings: dict[str, Any]) -> bool:
    """The range menu works only in symmetric mode (helper's clipping ranges are symmetric)."""
    return settings.get("mode") == "symmetric"


@dataclass(frozen=True)
class ExplorerControl:
    """One control of the explorer, described as data so that adding one is one line.

    ``name`` is the keyword its value is passed under (to ``QuantizationExplorer.compute``
    and from there to the quantizer); ``kind`` is ``"dropdown"``, ``"slider"`` or ``"number"``.
    A dropdown lists ``options``, or calls ``options(explorer)`` when the widgets are built.
    Sliders and number fields run from ``low`` to ``high``; ``high_from(settings)``, if given,
    recomputes a slider's maximum from all current values whenever any of them changes, and
    ``active_from(settings)``, if given, greys the control out while it returns False (the
    group size, unless the granularity is per group); a greyed-out control's value is not
    used, its default is. ``tooltip`` is shown when the pointer rests on the control.
    """

    name: str
    label: str
    kind: str
    default: Any
    options: Sequence | Callable[[Any], Sequence] = ()
    low: int = 0
    high: int = 0
    high_from: Callable[[dict[str, Any]], int] | None = None
    active_from: Callable[[dict[str, Any]], bool] | None = None
    tooltip: str = ""

    def make_widget(self, explorer: QuantizationExplorer):
        """The ipywidgets widget for this control, set to its default value."""
        import ipywidgets as widgets

        style = {"description_width": "initial"}
        common = {"description": self.label, "style": style}
        if self.tooltip:
            common["tooltip"] = self.tooltip
        if self.kind == "dropdown":
            options = self.options(explorer) if callable(self.options) else self.options
            return widgets.Dropdown(options=list(options), value=self.default, **common)
        if self.kind == "slider":
            return widgets.IntSlider(
                value=self.default, min=self.low, max=self.high, continuous_update=True, **common
            )
        if self.kind == "number":
            return widgets.BoundedIntText(
                value=self.default,
                min=self.low,
                max=self.high,
                layout=widgets.Layout(width="160px"),
                **common,
            )
        raise ValueError(f"unknown control kind {self.kind!r}: use dropdown, slider or number.")


#: The explorer's controls, in the order they are shown. Append to add one.
EXPLORER_CONTROLS: list[ExplorerControl] = [
    ExplorerControl(
        "tensor_name",
        "tensor",
        "dropdown",
        "lesson test tensor (3x3)",
        options=lambda explorer: tuple(explorer.sources),
    ),
    ExplorerControl("size", "size (random tensors)", "dropdown", 16, options=EXPLORER_SIZES),
    ExplorerControl("seed", "seed", "number", 0, low=0, high=2**31 - 1),
    ExplorerControl("dtype", "dtype", "dropdown", "int8", options=tuple(EXPLORER_DTYPES)),
    ExplorerControl("n_bits", "bits", "slider", 8, low=2, high=8, high_from=_dtype_bits),
    ExplorerControl("mode", "mode", "dropdown", "asymmetric", options=EXPLORER_MODES),
    ExplorerControl(
        "range_method",
        "range",
        "dropdown",
        "min-max",
        options=tuple(EXPLORER_RANGES),
        active_from=_symmetric,
        tooltip=(
            "How the symmetric range [-alpha, alpha] of every block is chosen (lesson 13): "
            "min-max clips nothing; a percentile of |r|, or the alpha with the smallest MSE, "
            "clips the largest values. Symmetric mode only: these ranges are symmetric."
        ),
    ),
    ExplorerControl(
        "granularity",
        "granularity",
        "dropdown",
        "per tensor",
        options=tuple(EXPLORER_GRANULARITIES),
    ),
    ExplorerControl(
        "group_size",
        "group size",
        "dropdown",
        3,
        options=EXPLORER_GROUP_SIZES,
        active_from=_grouped,
    ),
]

#: The settings every explorer understands; any other control's value goes to the quantizer.
_CORE_SETTINGS = ("tensor_name", "size", "seed", "dtype", "n_bits")


class QuantizerResult(NamedTuple):
    """What a quantizer hands the explorer.

    ``scale`` and ``zero_point`` hold one value per block (numbers, or tensors of shape
    ``n_blocks`` as ``helper.choose_qparams_affine`` returns them); ``block_size`` says which
    elements share them (see ``helper.block_shapes``), so the explorer can expand them per
    element with ``helper.per_element``. A quantizer that clips also hands over every block's
    range ``clip_range`` (the ``alpha`` of ``[-alpha, alpha]``, shape ``n_blocks``) and a
    sentence ``range_note`` on how it chose it; both are shown.
    """

    quantized: torch.Tensor
    scale: float | torch.Tensor
    zero_point: int | torch.Tensor
    dequantized: torch.Tensor
    block_size: tuple[int, ...]
    clip_range: torch.Tensor | None = None
    range_note: str = ""


def explorer_block_size(
    shape: Sequence[int], granularity: str = "per tensor", group_size: int = 3
) -> tuple[int, ...]:
    """The block size for one of the explorer's granularities (``EXPLORER_GRANULARITIES``),
    from ``helper.granularity_block_size``.

    >>> explorer_block_size((3, 3), "per channel (rows)")
    (1, 3)
    >>> explorer_block_size((3, 3), "per channel (columns)")
    (3, 1)
    >>> explorer_block_size((6, 6), "per group", group_size=3)
    (1, 3)
    """
    if granularity not in EXPLORER_GRANULARITIES:
        raise ValueError(
            f"unknown granularity {granularity!r}: choose one of "
            f"{', '.join(EXPLORER_GRANULARITIES)}."
        )
    name, dim = EXPLORER_GRANULARITIES[granularity]
    if name == "per_group":
        return granularity_block_size(shape, name, group_size=group_size)
    return granularity_block_size(shape, name, dim=dim)


def mse_search_size(n_values: int, n_blocks: int) -> tuple[int, int]:
    """``(n_grid, n_refine)`` for the explorer's MSE-optimal search: ``MSE_SEARCH``, or
    ``MSE_SEARCH_COARSE`` when the tensor would make the full search slow.

    >>> mse_search_size(4096, 64), mse_search_size(512 * 512, 512 * 256)
    ((100, 10), (20, 5))
    """
    work = n_values + MSE_BLOCK_COST * n_blocks
    return MSE_SEARCH if work <= MSE_SEARCH_WORK else MSE_SEARCH_COARSE


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the thread count.

    The range search makes many small passes over the tensor (a 512x512 tensor is a quarter
    of a million values). Split over several threads, each pass waits for the slowest one, and
    on a busy computer (the browser drawing the page, other programs) a thread that does not
    get its core stalls it: measured on 2 cores with another program running, the MSE search
    of a 512x512 tensor took 1 to 8 s on 2 threads and about 60 ms on one. The results are
    the same either way (elementwise work, exact percentiles, float64 sums of the errors).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def explorer_clip_range(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    range_method: str,
    dtype: torch.dtype,
    n_bits: int,
) -> tuple[torch.Tensor, str]:
    """Every block's symmetric range ``alpha`` for the range menu's ``range_method`` (see
    ``EXPLORER_RANGES``), and a sentence on how it was chosen: ``(alpha, note)``.

    ``helper.clipping_absmax``; the MSE-optimal search runs coarser on large tensors (see
    ``mse_search_size``), and the note says so. It runs on one thread (see ``_one_thread``).
    """
    if range_method not in EXPLORER_RANGES:
        raise ValueError(
            f"unknown range {range_method!r}: choose one of {', '.join(EXPLORER_RANGES)}."
        )
    with _one_thread():
        return _clip_range(tensor, block_size, range_method, dtype, n_bits)


def _clip_range(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    range_method: str,
    dtype: torch.dtype,
    n_bits: int,
) -> tuple[torch.Tensor, str]:
    """``explorer_clip_range`` for a known ``range_method``."""
    method, percentile = EXPLORER_RANGES[range_method]
    if method == "min-max":
        return clipping_absmax(tensor, block_size, method), "alpha = max|r| of every block."
    if method == "percentile":
        absmax = clipping_absmax(tensor, block_size, method, dtype, n_bits, percentile)
        return absmax, (
            f"alpha = the {percentile:g}th percentile of |r| in every block: about the largest "
            f"{100 - percentile:.2g}% of the magnitudes lie beyond it and are clipped."
        )
    n_values = tensor.numel()
    n_blocks = n_values // max(math.prod(block_size), 1)
    n_grid, n_refine = mse_search_size(n_values, n_blocks)
    tried = (
        f"alpha = the best of {n_grid + 2 * n_refine} ranges tried in every block, the one with "
        f"the smallest MSE ({n_grid} ratios of max|r|, then {2 * n_refine} finer ones around "
        "the best)"
    )
    if (n_grid, n_refine) == MSE_SEARCH:
        absmax = clipping_absmax(tensor, block_size, method, dtype, n_bits)
        return absmax, f"{tried}: lesson 13's search."
    absmax = absmax_mse_optimal(tensor, block_size, dtype, n_bits, n_grid, n_refine)
    full = MSE_SEARCH[0] + 2 * MSE_SEARCH[1]
    return absmax, (
        f"{tried}: a coarser search than lesson 13's {full} ranges, to stay quick on this "
        f"large tensor ({n_values:,} values, {n_blocks:,} blocks)."
    )


def explorer_quantize(
    tensor: torch.Tensor,
    dtype: torch.dtype,
    n_bits: int,
    mode: str = "asymmetric",
    granularity: str = "per tensor",
    group_size: int = 3,
    range_method: str = "min-max",
) -> QuantizerResult:
    """The explorer's quantizer: helper's one mechanism for every mode and granularity.

    ``helper.quantize_blockwise`` with the block size of ``granularity``, then
    ``helper.dequantize_affine``. Per tensor and asymmetric, that is ``linear_quantization``.
    With a clipped range (symmetric mode only): ``explorer_clip_range``, then
    ``helper.quantize_clipped`` (the grid ``-q_max..q_max``) and ``dequantize_affine``.
    """
    if mode not in EXPLORER_MODES:
        raise ValueError(f"unknown mode {mode!r}: choose {' or '.join(EXPLORER_MODES)}.")
    if range_method not in EXPLORER_RANGES:
        raise ValueError(
            f"unknown range {range_method!r}: choose one of {', '.join(EXPLORER_RANGES)}."
        )
    block_size = explorer_block_size(tensor.shape, granularity, group_size)
    if range_method == "min-max":
        quantized, scale, zero_point = quantize_blockwise(
            tensor, block_size, dtype, n_bits, symmetric=mode == "symmetric"
        )
        dequantized = dequantize_affine(quantized, block_size, scale, zero_point)
        return QuantizerResult(quantized, scale, zero_point, dequantized, block_size)
    if mode != "symmetric":
        raise ValueError(
            f"the range {range_method!r} needs symmetric mode: the clipping ranges of lesson 13 "
            "are symmetric, [-alpha, alpha]. Choose mode 'symmetric', or range 'min-max'."
        )
    get_q_range(dtype, n_bits)  # the dtype and bits message before any search
    absmax, note = explorer_clip_range(tensor, block_size, range_method, dtype, n_bits)
    quantized, scale, zero_point = quantize_clipped(tensor, block_size, absmax, dtype, n_bits)
    dequantized = dequantize_affine(quantized, block_size, scale, zero_point)
    return QuantizerResult(quantized, scale, zero_point, dequantized, block_size, absmax, note)


def _as_result(result: tuple, tensor: torch.Tensor) -> QuantizerResult:
    """A quantizer's answer as a ``QuantizerResult``. An older 4-tuple ``(q, scale, z, deq)``
    is accepted if its scale is a number or broadcasts against the tensor (per channel)."""
    if len(result) in (5, 6, 7):
        return QuantizerResult(*result)
    if len(result) != 4:
        raise TypeError(
            "a quantizer returns (quantized, scale, zero_point, dequantized, block_size), "
            f"optionally with (clip_range, range_note), got {len(result)} values."
        )
    quantized, scale, zero_point, dequantized = result
    shape = tuple(tensor.shape)
    if not isinstance(scale, torch.Tensor) or scale.numel() == 1:
        return QuantizerResult(quantized, scale, zero_point, dequantized, shape)
    if scale.dim() != len(shape) or any(
        s not in (1, n) for s, n in zip(scale.shape, shape, strict=True)
    ):
        raise ValueError(
            f"the quantizer's scale has shape {tuple(scale.shape)}: return a QuantizerResult "
            "with its block_size, so the explorer knows which elements share a scale."
        )
    block = tuple(n if s == 1 else 1 for s, n in zip(scale.shape, shape, strict=True))
    n_blocks = tuple(n // b for n, b in zip(shape, block, strict=True))
    if isinstance(zero_point, torch.Tensor) and zero_point.numel() > 1:
        zero_point = zero_point.reshape(n_blocks)
    return QuantizerResult(quantized, scale.reshape(n_blocks), zero_point, dequantized, block)


def format_number(value: float) -> str:
    """How the explorer writes a measured number: six significant digits (``"1.06736"``)."""
    return f"{value:.6g}"


def _format_param(value: float | int | torch.Tensor, what: str, blocks: str = "") -> str:
    """A scale or zero point as text; per-block tensors show their range and count.

    >>> _format_param(torch.tensor([0.5, 0.25, 2.0]), "scale", "one per row")
    '0.25 to 2 (3 scales, one per row)'
    """
    if isinstance(value, torch.Tensor):
        if value.numel() > 1:
            low, high = value.min().item(), value.max().item()
            count = f"{value.numel():,} {what}s" + (f", {blocks}" if blocks else "")
            if low == high:
                return f"{_format_param(low, what)} (all {count})"
            return f"{_format_param(low, what)} to {_format_param(high, what)} ({count})"
        value = value.item()
    if isinstance(value, int) or (isinstance(value, float) and what == "zero point"):
        return str(int(value))
    return format_number(value)


# -- does s^2/12 apply? -------------------------------------------------------------------------


def _busiest_share(
    quantized: torch.Tensor, scale: torch.Tensor, block_size: Sequence[int], q_min: int
) -> float:
    """The share of values that land on the busiest level of their block's grid, each block
    weighted by its s^2 (its weight in the estimate). Per tensor: the busiest level's share."""
    shape = tuple(quantized.shape)
    q = quantized.reshape(-1).to(torch.int64) - q_min
    if scale.numel() == 1 or not shape:
        return torch.bincount(q).max().item() / q.numel()
    n = scale.numel()
    block_id = per_element(torch.arange(n).reshape(scale.shape), shape, block_size).reshape(-1)
    levels = int(q.max()) + 1
    keys, counts = torch.unique(block_id * levels + q, return_counts=True)
    busiest = torch.zeros(n, dtype=counts.dtype).scatter_reduce(
        0, keys // levels, counts, "amax", include_self=True
    )
    weight = scale.reshape(-1).to(torch.float64).square()
    per_block = q.numel() // n
    return (weight * busiest).sum().item() / (weight.sum().item() * per_block)


def estimate_check(
    mse: float,
    theory_mse: float,
    n_values: int,
    busiest_share: Callable[[], float] | float,
    values_per_block: int,
    measured: str = "the measured MSE",
) -> tuple[str, str]:
    """Does the estimate ``s^2/12`` apply? Returns ``(status, explanation)``.

    The estimate assumes each value's rounding error is equally likely anywhere between
    ``-s/2`` and ``s/2`` (its variance is then ``s^2/12``), averaged over many values. So:

    - ``"few values"`` below ``FEW_VALUES`` values: an average of ``n`` such errors scatters
      by about ``0.89 / sqrt(n)`` of the estimate (30% for 9 values; for ``e`` uniform on
      ``[-s/2, s/2]`` the standard deviation of ``e^2`` is 0.89 times its mean), so the
      measured MSE may be well off either way; whatever it shows, it is a caution.
    - ``"does not apply"`` when measured and estimated are more than ``ESTIMATE_FACTOR``
      apart. The explanation names the likely cause: blocks of a few values (their extremes
      sit on or near levels), or values crowding onto one level (``busiest_share``, a number
      or a function computing it, at least one half): their errors are the values' own spread
      around that level, not an even spread over a step.
    - ``"applies"`` otherwise.

    ``measured`` names ``mse`` in the explanation (with a clipped range, the explorer passes
    the rounding error of the values inside the range, and their share of ``s^2/12``).

    >>> estimate_check(0.98, 4.01, 4096, 0.97, 4096)[0]
    'does not apply'
    >>> estimate_check(0.0166, 0.0169, 4096, 0.19, 4096)[0]
    'applies'
    """
    ratio = mse / theory_mse
    times = f"{measured} is {ratio:.2g} times s\u00b2/12"
    if n_values < FEW_VALUES:
        spread = 0.89 / math.sqrt(n_values)
        return "few values", (
            f"Only {n_values} values: s\u00b2/12 is an average over many rounding errors; with "
            f"{n_values}, expect {measured} within about \u00b1{spread:.0%} of it, "
            f"sometimes further (here {ratio:.2g} times s\u00b2/12)."
        )
    if 1 / ESTIMATE_FACTOR <= ratio <= ESTIMATE_FACTOR:
        return "applies", f"s\u00b2/12 applies: {times}."
    if values_per_block <= 8:
        cause = (
            f"each block holds only {values_per_block} value{'s' * (values_per_block > 1)}, "
            "and a block's largest value "
            "(and in asymmetric mode its smallest) sits on or near an end level of its grid, "
            "so fewer errors spread over a whole step"
        )
    else:
        share = busiest_share() if callable(busiest_share) else busiest_share
        if share >= 0.5:
            weighted = "" if values_per_block == n_values else ", weighted by s\u00b2"
            percent = "over 99%" if 0.99 < share < 1 else f"{share:.0%}"
            cause = (
                f"{percent} of the values land on the busiest level of their grid"
                f"{weighted}: their errors are the values' own small spread around that level "
                "(the MSE is about their variance), not an even spread over a step of s"
            )
        else:
            cause = "the rounding errors are not spread evenly over a step"
    return "does not apply", f"s\u00b2/12 does not apply here: {times}, because {cause}."


def _percent(share: float) -> str:
    """A share as a percentage: two significant digits below 10%, whole percents above.

    >>> _percent(0.01292), _percent(0.00024), _percent(0.5), _percent(1.0)
    ('1.3%', '0.024%', '50%', '100%')
    """
    return f"{100 * share:.0f}%" if share >= 0.1 else f"{100 * share:.2g}%"


def _clipping_check(
    tensor: torch.Tensor,
    dequantized: torch.Tensor,
    alpha: torch.Tensor,
    scale: torch.Tensor,
    block_size: Sequence[int],
    busiest_share: Callable[[], float],
    values_per_block: int,
) -> tuple[int, float, str, str]:
    """What a clipped range ``[-alpha, alpha]`` (one per block) does to the error:
    ``(clipped, clip_mse, status, explanation)``.

    A value beyond its block's ``alpha`` is clipped: its error is its distance to the end
    level, not a rounding error, so ``s^2/12`` says nothing about it. ``clip_mse`` is those
    errors' share of the MSE (their squares summed, over all the values), and
    ``estimate_check`` judges ``s^2/12`` on the values inside the range alone.
    """
    shape = tuple(tensor.shape)
    r = tensor.detach().to(torch.float64)
    n_values = r.numel()
    beyond = r.abs() > per_element(alpha, shape, block_size)
    squared = (dequantized.detach().to(torch.float64) - r).square()
    clipped = int(beyond.sum())
    clip_mse = squared[beyond].sum().item() / n_values
    inside = ~beyond
    n_inside = n_values - clipped
    if n_inside == 0:
        return (
            clipped,
            clip_mse,
            "does not apply",
            (
                "Every value lies beyond \u00b1\u03b1 and is clipped: the whole error is clipping "
                "error, and s\u00b2/12, an estimate of rounding alone, does not apply."
            ),
        )
    rounding_mse = squared[inside].sum().item() / n_values
    theory = per_element(scale, shape, block_size).square()[inside].sum().item() / 12 / n_values
    if clipped == 0:
        status, note = estimate_check(
            rounding_mse, theory, n_values, busiest_share, values_per_block
        )
        return 0, 0.0, status, f"No value lies beyond \u00b1\u03b1: nothing is clipped. {note}"
    status, note = estimate_check(
        rounding_mse,
        theory,
        n_inside,
        busiest_share,
        values_per_block,
        measured=f"the rounding MSE of the other {n_inside:,} values",
    )
    lie, are, their = ("lies", "is", "its") if clipped == 1 else ("lie", "are", "their")
    head = (
        f"{clipped:,} of the {n_values:,} values ({_percent(clipped / n_values)}) {lie} beyond "
        f"\u00b1\u03b1 and {are} clipped to the end levels: {their} error adds "
        f"{format_number(clip_mse)} to the MSE, and s\u00b2/12, an estimate of rounding alone, "
        "leaves it out."
    )
    return clipped, clip_mse, status, f"{head} {note}"


# -- the picture: panels whose changing parts are redrawn alone --------------------------------

#: The widest colour-bar label the layout leaves room for (nice numbers in "%.4g"; a wider
#: one runs into the space between panels).
_WIDEST_LABEL = "-0.00025"
#: At most this many labels on a colour bar.
_COLORBAR_LABELS = 8


def png_bytes(rgba) -> bytes:
    """An RGBA pixel buffer (height x width x 4, like ``canvas.buffer_rgba()``) as PNG bytes:
    8-bit RGB (the figure is opaque), no row filters, zlib at ``PNG_COMPRESS_LEVEL``.

    >>> import numpy as np
    >>> png = png_bytes(np.zeros((2, 3, 4), dtype=np.uint8))
    >>> png[:8], len(png)
    (b'\\x89PNG\\r\\n\\x1a\\n', 68)
    """
    import struct
    import zlib

    import numpy as np

    pixels = np.asarray(rgba)
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # byte 0 of a row: filter "none"
    rows[:, 1:] = pixels[:, :, :3].reshape(height, 3 * width)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL))
        + chunk(b"IEND", b"")
    )


def _explorer_figure(width: float, height: float, dpi: float) -> Figure:
    """A figure outside pyplot (nothing to close, never shown twice) that renders with Agg,
    with constrained layout (used once, see ``_BlitDrawing.freeze_layout``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    figure.get_layout_engine().set(wspace=0.05)
    FigureCanvasAgg(figure)
    return figure


def _label(value: float) -> str:
    """A colour-bar label: four significant digits."""
    return f"{value:.4g}"


class _BlitPanel(HeatmapPanel):
    """helper's ``HeatmapPanel``, made for redrawing alone (blitting).

    The image always spans the colour map's fixed range [0, 1] (the data is scaled into it),
    so the colour bar itself never changes and stays in the background; its tick marks and
    labels, the cell numbers, the image and the title are animated artists, redrawn on top.
    """

    def __init__(self, ax, shape: tuple[int, int], cmap: str, widest_title: str) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.markers import TICKRIGHT
        from matplotlib.ticker import MaxNLocator
        from matplotlib.transforms import ScaledTranslation

        super().__init__(ax, shape, cmap)
        if shape[1] > ANNOTATE_MAX_COLUMNS:  # cells too narrow for a number: leave them out
            for text in self.texts:
                text.remove()
            self.texts = []
        # No tick marks on the heatmap: they would cross the spines, which are redrawn over
        # the image, and a full draw puts them in another order (different pixels).
        ax.tick_params(length=0, pad=5)
        for axis in (ax.xaxis, ax.yaxis):  # rows and columns are whole numbers
            axis.set_major_locator(MaxNLocator(integer=True))
        bar = self.colorbar.ax
        self.widest_title = widest_title
        self.ticks = Line2D(
            [], [], marker=TICKRIGHT, linestyle="", color="black", markersize=3.5,
            markeredgewidth=0.8, transform=bar.transAxes, clip_on=False,
        )  # fmt: skip
        bar.add_artist(self.ticks)
        offset = ScaledTranslation(7 / 72, 0, ax.figure.dpi_scale_trans)
        self.labels = [
            bar.text(1, 0.5, "", transform=bar.transAxes + offset, va="center", fontsize=9)
            for _ in range(_COLORBAR_LABELS)
        ]
        self.ax.title.set_fontsize(11)
        for artist in [self.ticks, *self.labels]:
            artist.set_in_layout(False)  # the layout leaves room for them with placeholders
        for artist in self.animated():
            artist.set_animated(True)

    def animated(self) -> list:
        """The artists an update changes, in drawing order (the spines go over the image)."""
        spines = list(self.ax.spines.values())
        return [self.image, *spines, *self.texts, self.ticks, *self.labels, self.ax.title]

    def snap_texts(self) -> None:
        """Move the cell numbers to whole pixels (at most half a pixel off the cell centres),
        once the layout is fixed: then every number drawn before, in any cell of any panel,
        is drawn again from the cache (see ``_Sprites``)."""
        to_pixels = self.ax.transData
        for text in self.texts:
            x, y = to_pixels.transform(text.get_position())
            text.set_position(to_pixels.inverted().transform((round(x), round(y))))

    def layout_placeholders(self, on: bool) -> None:
        """While the layout is computed: the widest title and colour-bar label in place."""
        self.colorbar.set_ticks([0.5] if on else [], labels=[_WIDEST_LABEL] if on else [])
        self.ax.set_title(self.widest_title if on else "", fontsize=11)

    def update(
        self, data: torch.Tensor, title: str, vmin: float, vmax: float, integer: bool = False
    ) -> None:
        """Show ``data`` (2-D, the panel's shape) with colours spanning ``[vmin, vmax]``."""
        from matplotlib.ticker import MaxNLocator

        if vmax <= vmin:  # a constant panel still needs a non-empty colour range
            vmin, vmax = vmin - 0.5, vmax + 0.5
        width = vmax - vmin
        self.image.set_data(((data - vmin) / width).numpy())
        self.ax.set_title(title, fontsize=11)
        for text, value in zip(self.texts, data.flatten().tolist(), strict=False):
            red, green, blue, _ = self.colormap((value - vmin) / width)
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
            text.set_text(f"{int(value)}" if integer else f"{value:.4g}")
            text.set_color("black" if light else "white")
        locator = MaxNLocator(nbins=5, integer=integer, min_n_ticks=2)
        ticks = [t for t in locator.tick_values(vmin, vmax) if vmin <= t <= vmax]
        ticks = ticks[:_COLORBAR_LABELS]
        positions = [(t - vmin) / width for t in ticks]
        self.ticks.set_data([1.0] * len(ticks), positions)
        # Labels on whole pixels (at most half a pixel off their tick), so a label drawn
        # before at another height is drawn again from the cache (see _Sprites).
        to_pixels = self.colorbar.ax.transAxes
        for i, label in enumerate(self.labels):
            visible = i < len(ticks)
            label.set_visible(visible)
            if visible:
                x, y = to_pixels.transform((1.0, positions[i]))
                label.set_y(to_pixels.inverted().transform((x, round(y)))[1])
                label.set_text(_label(ticks[i]))


class _GlyphRecorder:
    """Stands in for an Agg renderer's C++ core while one text draws: passes every call on,
    and keeps a copy of each glyph image and where it went (``draw_text_image``)."""

    def __init__(self, core) -> None:
        self.core, self.glyphs, self.other_calls = core, [], False

    def draw_text_image(self, image, x, y, angle, gc) -> None:
        self.glyphs.append((image.copy(), x, y, angle))
        self.core.draw_text_image(image, x, y, angle, gc)

    def __getattr__(self, name: str):
        self.other_calls = True  # e.g. the boxes of mathtext: not replayed, not cached
        return getattr(self.core, name)


def _merge_glyphs(glyphs: list) -> list:
    """One image for all the glyphs of a string, if that draws the same pixels: upright
    glyphs whose bitmaps do not overlap, left to right (Agg leaves pixels of coverage 0
    alone, so every pixel is blended once either way). Otherwise the glyphs as they are."""
    import numpy as np

    if len(glyphs) < 2 or any(angle != 0 for *_, angle in glyphs):
        return glyphs
    # draw_text_image's (x, y): the bitmap's left column and the row below its bottom row
    for (before, x0, _, _), (_, x1, _, _) in zip(glyphs, glyphs[1:], strict=False):
        if x1 < x0 + before.shape[1]:
            return glyphs
    left, right = glyphs[0][1], glyphs[-1][1] + glyphs[-1][0].shape[1]
    top = min(y - image.shape[0] for image, _, y, _ in glyphs)
    bottom = max(y for _, _, y, _ in glyphs)
    merged = np.zeros((bottom - top, right - left), dtype=np.uint8)
    for image, x, y, _ in glyphs:
        merged[y - image.shape[0] - top : y - top, x - left : x - left + image.shape[1]] = image
    return [(merged, left, bottom, 0)]


class _Sprites:
    """A cache of drawn texts and small images, keyed on everything that sets their pixels.

    Laying out a string and rendering its glyphs is most of the cost of drawing it (about a
    millisecond a text), yet the glyph images depend only on the string, the font and where
    it lands, not on its colour. So the first draw of a text at a position is recorded
    (``_GlyphRecorder``), and later draws replay its glyph images with the current colour,
    through the same Agg call: the pixels are exactly those of matplotlib's own draw. Images
    keep the resampled picture ``make_image`` made for the same data, colours and place.
    """

    MAX_TEXTS = 20_000  # glyph images: a few hundred bytes each
    MAX_IMAGES = 200  # resampled pictures: about 100 kB each
    MAX_IMAGE_ELEMENTS = 4096  # larger images rarely come back with the same data

    def __init__(self) -> None:
        self.entries: dict[tuple, Any] = {}
        self.images = 0
        self.hits = self.misses = 0

    def clear(self) -> None:
        """Forget every drawn text and image."""
        self.entries.clear()
        self.images = 0

    def _store(self, key: tuple, value: Any) -> None:
        """Keep ``value``; start afresh when the cache is full (a simple, safe bound)."""
        is_image = key[0] == "image"
        if len(self.entries) >= self.MAX_TEXTS or (is_image and self.images >= self.MAX_IMAGES):
            self.clear()
        self.entries[key] = value
        self.images += is_image

    def _record(self, renderer, draw: Callable[[], None]) -> list | None:
        """Run ``draw()`` with the glyph images recorded; ``None`` if it drew anything else."""
        core = renderer._renderer
        recorder = _GlyphRecorder(core)
        renderer._renderer = recorder
        try:
            draw()
        finally:
            renderer._renderer = core
        return None if recorder.other_calls else _merge_glyphs(recorder.glyphs)

    def draw(self, artist, renderer) -> None:
        """Draw ``artist``: a ``Text`` or a small ``AxesImage`` through the cache, anything
        else (lines, spines) the ordinary way."""
        from matplotlib.image import AxesImage
        from matplotlib.text import Text

        if getattr(renderer, "_renderer", None) is None:  # not an Agg renderer
            artist.draw(renderer)
        elif type(artist) is Text:
            self._draw_text(artist, renderer)
        elif type(artist) is AxesImage:
            self._draw_image(artist, renderer)
        else:
            artist.draw(renderer)

    def _draw_text(self, text, renderer) -> None:
        """``Text.draw``, replayed from the cache when possible."""
        from matplotlib.colors import to_rgba

        if not text.get_visible() or not text.get_text():
            return
        # Glyph images depend on the string, the font and where the text lands within a
        # pixel, not on which pixel, which artist or which colour (clipping is applied when
        # they are blended): the key holds the fraction, and the glyphs are kept relative to
        # the whole pixel, so a string drawn anywhere before at that fraction is a hit.
        x, y = text.get_transform().transform(text.get_unitless_position()).tolist()
        ix, iy = math.floor(x), math.floor(y)
        key = (
            "text",
            text.get_text(),
            hash(text.get_fontproperties()),
            text.get_horizontalalignment(),
            text.get_verticalalignment(),
            text.get_rotation(),
            text.get_antialiased(),
            x - ix,
            y - iy,
        )
        glyphs = self.entries.get(key)
        if glyphs is None:
            self.misses += 1
            if key in self.entries or text.get_path_effects():
                text.draw(renderer)  # not cacheable: draw it the ordinary way
                return
            glyphs = self._record(renderer, lambda: text.draw(renderer))
            # draw_text_image's y runs downwards: a glyph at gy moves to gy - iy
            relative = (
                None if glyphs is None else [(g, gx - ix, gy + iy, a) for g, gx, gy, a in glyphs]
            )
            self._store(key, relative)
            return
        self.hits += 1
        gc = renderer.new_gc()  # set up as Text.draw sets it up
        gc.set_foreground(to_rgba(text.get_color()), isRGBA=True)
        gc.set_alpha(text.get_alpha())
        gc.set_antialiased(text.get_antialiased())
        gc.set_snap(text.get_snap())
        text._set_gc_clip(gc)
        for image, gx, gy, angle in glyphs:
            renderer._renderer.draw_text_image(image, gx + ix, gy - iy, angle, gc)
        gc.restore()

    def _draw_image(self, image, renderer) -> None:
        """``AxesImage.draw`` (Agg: resample, then ``draw_image``), the resampled picture
        kept for small images."""
        data = image.get_array()
        if not image.get_visible() or data.size > self.MAX_IMAGE_ELEMENTS:
            image.draw(renderer)
            return
        key = (
            "image",
            id(image),
            data.tobytes(),
            data.shape,
            image.get_clim(),
            image.get_cmap().name,
            image.get_interpolation(),
            tuple(image.get_extent()),
            tuple(image.axes.bbox.bounds),
            tuple(image.get_transform().get_matrix().ravel().tolist()),
        )
        made = self.entries.get(key)
        if made is None:
            self.misses += 1
            made = image.make_image(renderer, renderer.get_image_magnification())
            self._store(key, made)
        else:
            self.hits += 1
        picture, left, bottom, _ = made
        if picture is None:
            return
        gc = renderer.new_gc()  # set up as AxesImage.draw sets it up
        image._set_gc_clip(gc)
        gc.set_alpha(image._get_scalar_alpha())
        renderer.draw_image(gc, left, bottom, picture)
        gc.restore()


class _BlitDrawing:
    """One figure, drawn in full once, then redrawn by blitting its animated artists.

    ``png()`` draws the figure without its animated artists (the background) and saves the
    pixels, the first time and whenever ``background_key()`` changes; otherwise it restores
    the saved pixels. Then it draws the animated artists on top and encodes the result.
    """

    figure: Figure
    shape: tuple[int, int]

    def __init__(self, shape: tuple[int, int], figure: Figure) -> None:
        self.shape, self.figure = shape, figure
        self._background = None
        self._background_key: Any = None
        self.full_draws = 0  # how often the background was drawn (for tests)
        self.sprites = _Sprites()

    def animated(self) -> list:
        """Every animated artist, in drawing order."""
        raise NotImplementedError

    def background_key(self) -> Any:
        """Anything that changes the background; a new value means a full draw."""
        return None

    def freeze_layout(self, panels: Sequence[_BlitPanel]) -> None:
        """Lay the figure out once, with room for the widest labels, and keep it."""
        for panel in panels:
            panel.layout_placeholders(True)
        self.suptitle = self.figure.suptitle("Layout placeholder (Xg)", fontsize=12, animated=True)
        self.figure.canvas.draw()  # constrained layout runs here
        self.figure.set_layout_engine("none")  # keep the positions it found
        for panel in panels:
            panel.layout_placeholders(False)
            panel.snap_texts()

    def rgba(self):
        """Draw (blit) the current state; returns the canvas's RGBA buffer."""
        canvas = self.figure.canvas
        key = self.background_key()
        if self._background is None or key != self._background_key:
            canvas.draw()  # everything that is not animated
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_key = key
            self.full_draws += 1
        else:
            canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for artist in self.animated():
            self.sprites.draw(artist, renderer)
        return canvas.buffer_rgba()

    def full_render(self):
        """The same state drawn the ordinary way, every artist in one ``draw`` (for tests:
        its pixels must equal ``rgba()``'s). Returns a copy of the RGBA pixels."""
        import numpy as np

        artists = self.animated()
        for artist in artists:
            artist.set_animated(False)
        try:
            self.figure.canvas.draw()
            pixels = np.array(self.figure.canvas.buffer_rgba())
        finally:
            for artist in artists:
                artist.set_animated(True)
            self._background = None  # the canvas now holds a full picture, not a background
        return pixels

    def png(self) -> bytes:
        """The current state as PNG bytes (see ``png_bytes``)."""
        return png_bytes(self.rgba())


def _widest_quantized_title() -> str:
    """The longest title the quantized panel can get (the layout leaves room for it)."""
    return max((_quantized_title(torch.iinfo(d).bits, d) for d in SUPPORTED_DTYPES), key=len)


def _quantized_title(n_bits: int, dtype: torch.dtype) -> str:
    return f"Quantized q, {n_bits}-bit {dtype_name(dtype)}"


class _PanelsDrawing(_BlitDrawing):
    """The explorer's layout for small tensors: four annotated heatmaps (original, quantized,
    dequantized, absolute error), as ``helper.plot_quantization_errors`` draws them."""

    TITLES = ("Original r", None, "Dequantized r'", "Absolute error |r - r'|")

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        super().__init__(shape, _explorer_figure(13, 3.6, dpi))
        axes = self.figure.subplots(1, 4)
        cmaps = (VALUE_CMAP, QUANTIZED_CMAP, VALUE_CMAP, ERROR_CMAP)
        titles = [t or _widest_quantized_title() for t in self.TITLES]
        self.panels = [
            _BlitPanel(ax, shape, cmap, title)
            for ax, cmap, title in zip(axes, cmaps, titles, strict=True)
        ]
        self.freeze_layout(self.panels)

    def animated(self) -> list:
        return [a for panel in self.panels for a in panel.animated()] + [self.suptitle]

    def update(
        self, original, quantized, dequantized, dtype, n_bits, scale, zero_point, blocks, clip=None
    ):
        """Redraw the four panels for new results (tensors of this layout's shape). A clipped
        range (``clip``) shows in the cells: clipped values sit on the end levels."""
        r, q, r2 = as_2d(original), as_2d(quantized), as_2d(dequantized)
        error = (r - r2).abs()
        low, high = min(r.min(), r2.min()).item(), max(r.max(), r2.max()).item()
        original_panel, quantized_panel, dequantized_panel, error_panel = self.panels
        original_panel.update(r, self.TITLES[0], low, high)
        quantized_panel.update(
            q, _quantized_title(n_bits, dtype), q.min().item(), q.max().item(), integer=True
        )
        dequantized_panel.update(r2, self.TITLES[2], low, high)
        error_panel.update(error, self.TITLES[3], 0.0, error.max().item())


class _HistogramDrawing(_BlitDrawing):
    """The explorer's layout for larger tensors: a histogram of the values (log counts, so a
    single outlier shows) with the quantization grid over it, and a heatmap of the error.

    With one scale per channel or group there is one grid per block: the grids of the blocks
    with the smallest and the largest scale are drawn, and the title says how many are not.
    A clipped range (symmetric mode) draws dashed lines at ``-alpha`` and ``alpha`` of those
    blocks, on their end levels: the values beyond them are clipped.
    """

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        from matplotlib.collections import LineCollection

        super().__init__(shape, _explorer_figure(13, 3.6, dpi))
        hist_ax, error_ax = self.figure.subplots(1, 2, width_ratios=(1.6, 1))
        self.hist_ax = hist_ax
        self.bars = hist_ax.stairs(
            [1.0], [0.0, 1.0], baseline=COUNT_BASELINE, fill=True, color="tab:blue", alpha=0.6
        )
        (self.extremes,) = hist_ax.plot(
            [0.0, 1.0], [0.0, 0.0], "^", color="black", markersize=7, clip_on=False,
            transform=hist_ax.get_xaxis_transform(),  # x in data units, y in axes units
        )  # fmt: skip
        hist_ax.set_yscale("log")
        self.grids = [
            LineCollection(
                [],
                colors=color,
                linewidths=0.8,
                alpha=0.7,
                transform=hist_ax.get_xaxis_transform(),
                animated=True,
                zorder=2.6,  # over the spines and ticks, as they are drawn over the background
            )
            for color in GRID_COLORS
        ]
        for grid in self.grids:
            hist_ax.add_collection(grid, autolim=False)
        self.clip_lines = LineCollection(
            [],
            linewidths=2.0,
            linestyles=(0, (4, 2)),
            transform=hist_ax.get_xaxis_transform(),
            animated=True,
            zorder=2.65,  # over the grids
        )
        hist_ax.add_collection(self.clip_lines, autolim=False)
        hist_ax.set_xlabel("value")
        hist_ax.set_ylabel("count (log scale)")
        widest = (  # 512 x 512 in groups of 2, or of 128 in int16 with a clipped range
            "262,144 values, 2,048 clipped (0.78%), 65,536 levels per grid (1 in 256 drawn)\n"
            "131,072 grids (one per group of 2): widest and finest drawn, 131,070 not drawn"
        )
        self.error_panel = _BlitPanel(error_ax, shape, ERROR_CMAP, "Absolute error |r - r'|")
        hist_ax.set_title(widest, fontsize=11)
        self._legend_key: tuple[int, bool] = (0, False)
        self._set_legend(2, True)  # the longest legend, so the layout leaves room for it
        self.freeze_layout([self.error_panel])
        hist_ax.title.set_animated(True)
        self._values: torch.Tensor | None = None
        self._histogram_version = 0
        self._xlim: tuple[float, float] | None = None

    def animated(self) -> list:
        own = [*self.grids, self.clip_lines, self.hist_ax.title]
        return own + self.error_panel.animated() + [self.suptitle]

    def background_key(self) -> Any:
        return (self._histogram_version, self._xlim, self._legend_key)

    def update(
        self, original, quantized, dequantized, dtype, n_bits, scale, zero_point, blocks, clip=None
    ):
        """Redraw the histogram, the grid(s), the clipping range and the error heatmap for new
        results. ``clip`` is ``None``, or ``(alpha per block, number of values clipped)``."""
        values = original.detach().flatten().to(torch.float64)
        r_min, r_max = values.min().item(), values.max().item()
        if self._values is None or not torch.equal(values, self._values):
            self._set_histogram(values, r_min, r_max)
        text, (grid_low, grid_high), n_grids = self._update_grids(
            dtype, n_bits, scale, zero_point, blocks, clip, values.numel()
        )
        self._set_legend(n_grids, clip is not None)
        self._set_xlim(min(r_min, grid_low, 0.0), max(r_max, grid_high, 0.0))
        self.hist_ax.set_title(text, fontsize=11)
        error = as_2d((original - dequantized).abs())
        self.error_panel.update(error, "Absolute error |r - r'|", 0.0, error.max().item())

    def _set_histogram(self, values: torch.Tensor, r_min: float, r_max: float) -> None:
        """New values: new bars (empty bins sit at the baseline) and extreme markers."""
        if r_max <= r_min:
            r_min, r_max = r_min - 0.5, r_max + 0.5
        counts, edges = torch.histogram(values, bins=HISTOGRAM_BINS, range=(r_min, r_max))
        heights = counts.clamp(min=COUNT_BASELINE).numpy()
        self.bars.set_data(heights, edges.numpy(), baseline=COUNT_BASELINE)
        self.hist_ax.set_ylim(COUNT_BASELINE, 3 * max(counts.max().item(), 1.0))
        self.extremes.set_xdata([values.min().item(), values.max().item()])
        self._values = values
        self._histogram_version += 1

    def _set_xlim(self, low: float, high: float) -> None:
        """Keep the x range while it holds everything and is not much too wide (so a new bit
        width or mode rarely redraws the background); else fit it again, with a margin."""
        old = self._xlim
        if high <= low:
            low, high = low - 0.5, high + 0.5
        if old is None or low < old[0] or high > old[1] or high - low < 0.6 * (old[1] - old[0]):
            pad = 0.04 * (high - low)
            self._xlim = (low - pad, high + pad)
            self.hist_ax.set_xlim(*self._xlim)

    def _set_legend(self, n_grids: int, clipping: bool = False) -> None:
        """The legend names the drawn grids (one, or the finest and the widest) and, with a
        clipped range, the dashed lines at its ends."""
        if (n_grids, clipping) == self._legend_key:
            return
        from matplotlib.legend_handler import HandlerTuple
        from matplotlib.lines import Line2D

        handles = [self.bars, self.extremes]
        labels = ["values (histogram)", "smallest and largest value"]
        if n_grids == 1:
            labels.append("levels r = s (q - z)")
        else:
            labels += ["levels, block with the largest s", "levels, block with the smallest s"]
        for color in GRID_COLORS[:n_grids]:
            handles.append(Line2D([], [], color=color, alpha=0.7))
        if clipping:
            dashed = [
                Line2D([], [], color=color, linewidth=2.0, linestyle=(0, (4, 2)))
                for color in GRID_COLORS[:n_grids]
            ]
            handles.append(dashed[0] if n_grids == 1 else tuple(dashed))
            labels.append(
                "clipping range \u00b1\u03b1"
                if n_grids == 1
                else "their clipping ranges \u00b1\u03b1"
            )
        # Beside the axes, where no grid line crosses it: it stays in the background.
        self.hist_ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=9,
            handler_map={tuple: HandlerTuple(ndivide=None)},
        )
        self._legend_key = (n_grids, clipping)

    def _update_grids(self, dtype, n_bits, scale, zero_point, blocks, clip, n_values):
        """Place the grid lines at the representable levels, and the clipping range's lines;
        returns (title, x range, grids drawn).

        A clipped range rounds to the symmetric grid ``-q_max..q_max`` around the zero point
        (``helper.quantize_clipped``): its end levels are ``-alpha`` and ``alpha``, and the
        storage type's extra code ``q_min`` is not a level of it."""
        q_min, q_max = get_q_range(dtype, n_bits)
        scales = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
        zeros = torch.as_tensor(zero_point).reshape(-1).expand(scales.shape)
        n_blocks = scales.numel()
        if clip is not None:  # the symmetric grid's lowest code
            q_min = 2 * int(zeros[0]) - q_max
        levels = q_max - q_min + 1
        step = math.ceil(levels / MAX_GRID_LINES)
        chosen = [int(scales.argmax())] + ([int(scales.argmin())] if n_blocks > 1 else [])
        low, high = math.inf, -math.inf
        ends = []
        for grid, color, index in zip(self.grids, GRID_COLORS, chosen + [None], strict=False):
            if index is None:
                grid.set_segments([])
                continue
            s, z = scales[index].item(), int(zeros[index])
            q = torch.cat(
                [
                    torch.arange(z, q_min - 1, -step).flip(0),
                    torch.arange(z + step, q_max + 1, step),
                ]
            ).to(torch.float64)
            x = s * (q - z)
            ones = torch.ones_like(x)
            grid.set_segments(torch.stack([x, 0 * ones, x, ones], 1).reshape(-1, 2, 2).numpy())
            low, high = min(low, s * (q_min - z)), max(high, s * (q_max - z))
            if clip is not None:
                alpha = clip[0].reshape(-1)[index].item()
                ends += [
                    ([(-alpha, 0.0), (-alpha, 1.0)], color),
                    ([(alpha, 0.0), (alpha, 1.0)], color),
                ]
        self.clip_lines.set_segments([segment for segment, _ in ends])
        if ends:
            self.clip_lines.set_color([color for _, color in ends])
        shown = f" (1 in {step} drawn)" if step > 1 else ""
        count = f"{n_values:,} values"
        if n_blocks == 1:
            text = f"{count}, {levels:,} levels{shown}"
            if clip is not None:
                alpha = clip[0].reshape(-1)[0].item()
                text += f"\nrange \u00b1{_label(alpha)}: {_clipped_text(clip[1], n_values)}"
            return text, (low, high), 1
        if clip is not None:
            count += f", {_clipped_text(clip[1], n_values)}"
        text = (
            f"{count}, {levels:,} levels per grid{shown}\n{n_blocks:,} grids ({blocks}): "
            f"widest and finest drawn, {n_blocks - 2:,} not drawn"
        )
        return text, (low, high), 2


def _clipped_text(clipped: int, n_values: int) -> str:
    """How many values a range clips, in words.

    >>> _clipped_text(53, 4096), _clipped_text(0, 9)
    ('53 clipped (1.3%)', 'none clipped')
    """
    if clipped == 0:
        return "none clipped"
    return f"{clipped:,} clipped ({_percent(clipped / n_values)})"


# -- the explorer -------------------------------------------------------------------------------


def _blocks_phrase(tensor_shape: tuple[int, ...], block_size: tuple[int, ...]) -> str:
    """Which elements share a scale, in words: "one per row", "one per group of 3", ...

    >>> [_blocks_phrase((4, 6), block) for block in [(1, 6), (4, 1), (1, 3)]]
    ['one per row', 'one per column', 'one per group of 3']
    """
    if len(tensor_shape) == 2:
        rows, cols = tensor_shape
        if block_size == (1, cols):
            return "one per row"
        if block_size == (rows, 1):
            return "one per column"
        if block_size[0] == 1:
            return f"one per group of {block_size[1]}"
    if len(tensor_shape) == 1 and block_size == (1,):
        return "one per element"
    return "one per block of " + " x ".join(map(str, block_size))


class QuantizationExplorer:
    """Quantize a tensor with the settings of a few controls and show what it costs.

    ``compute(...)`` returns the numbers the explorer shows; ``render(...)`` also draws them
    and returns PNG bytes; ``build_widgets()`` wires ipywidgets controls to them and ``show()``
    displays the result. Every change redraws one figure in place (a new figure is built only
    when the tensor's shape or the layout changes), and only its changing artists, so updates
    are quick and never pile up. Settings that do not work together (say 12 bits in int8, or
    a group size that does not divide the rows) show the error's message instead.

    ``controls`` defaults to ``EXPLORER_CONTROLS``, ``sources`` to ``TENSOR_SOURCES`` and
    ``quantizer`` to ``explorer_quantize``; ``dpi`` sets the resolution of the picture.
    """

    def __init__(
        self,
        controls: Sequence[ExplorerControl] | None = None,
        sources: dict[str, Callable[[int, int], torch.Tensor]] | None = None,
        quantizer: Callable[..., tuple] = explorer_quantize,
        dpi: int = 72,
    ) -> None:
        self.controls = list(EXPLORER_CONTROLS if controls is None else controls)
        self.sources = TENSOR_SOURCES if sources is None else sources
        self.quantizer = quantizer
        self.dpi = dpi
        self.widgets: dict[str, Any] = {}
        self.numbers_widget = None  # ipywidgets.HTML, made by build_widgets
        self.image_widget = None  # ipywidgets.Image, made by build_widgets
        self.box = None
        self._drawing: _PanelsDrawing | _HistogramDrawing | None = None
        self._syncing = False

    # -- the numbers ----------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """The current value of every control (the defaults before the widgets exist). A
        greyed-out control gives its default: its value is not used (the range menu keeps
        its choice while the mode is asymmetric, and min-max is what asymmetric mode gets)."""
        defaults = {control.name: control.default for control in self.controls}
        if not self.widgets:
            return defaults
        values = {name: widget.value for name, widget in self.widgets.items()}
        for control in self.controls:
            if control.active_from is not None and not control.active_from(values):
                values[control.name] = defaults[control.name]
        return values

    def tensor(self, tensor_name: str, size: int = 16, seed: int = 0) -> torch.Tensor:
        """The tensor the menu entry ``tensor_name`` makes for ``size`` and ``seed``."""
        if tensor_name not in self.sources:
            raise ValueError(
                f"unknown tensor {tensor_name!r}: choose one of {', '.join(self.sources)}."
            )
        return self.sources[tensor_name](seed, size)

    def compute(
        self,
        dtype: str | torch.dtype = "int8",
        n_bits: int = 8,
        tensor_name: str = "lesson test tensor (3x3)",
        size: int = 16,
        seed: int = 0,
        **options: Any,
    ) -> dict[str, Any]:
        """The numbers the explorer shows for these settings, as a dict.

        ``options`` are the other controls' values (``mode``, ``range_method``,
        ``granularity``, ``group_size``); a control left out takes its default. Keys: the
        settings themselves,
        ``shape``, ``q_min``/``q_max``, ``block_size`` and ``n_scales`` (blocks, one scale
        each), ``scale`` and ``zero_point`` (numbers for one block, else tensors of one value
        per block), ``mse`` (``quantization_error``), ``max_error`` (largest absolute error),
        ``theory_mse`` (``s**2 / 12``, averaged over the elements), ``estimate`` and
        ``estimate_note`` (see ``estimate_check``), ``bytes_before`` (float32),
        ``bytes_after`` (stored in ``dtype``), ``bytes_params`` (the scales as float32, and
        the zero points in ``dtype`` unless symmetric), ``bytes_packed`` (``n_bits`` per value,
        rounded up to whole bytes), ``levels``/``levels_used``, ``message``: ``None``, or
        what was wrong with the settings (then the numbers are ``None``), and for the range:
        ``clip_range`` (``None`` unless the range clips, else every block's ``alpha``: a
        number for one block, else a tensor), ``clipped`` (how many values lie beyond their
        block's ``alpha``), ``clip_mse`` (their share of the MSE: the sum of their squared
        errors over all the values) and ``range_note`` (how the range was chosen). With a
        clipped range, ``estimate`` judges ``s**2 / 12`` on the values inside the range:
        the clipping error is not rounding, and ``theory_mse`` leaves it out. Never raises
        for bad settings.
        """
        settings = {control.name: control.default for control in self.controls}
        settings.update(options)
        settings.update(dtype=dtype, n_bits=n_bits, tensor_name=tensor_name, size=size, seed=seed)
        return self._run(settings)[0]

    def _run(self, settings: dict[str, Any]) -> tuple[dict[str, Any], tuple | None]:
        """``compute``'s numbers plus what to draw (``None`` if the settings fail)."""
        keys = ("shape", "q_min", "q_max", "block_size", "n_scales", "scale", "zero_point")
        keys += ("mse", "max_error", "theory_mse", "estimate", "estimate_note", "bytes_before")
        keys += ("bytes_after", "bytes_params", "bytes_packed", "levels", "levels_used")
        keys += ("clip_range", "clipped", "clip_mse", "range_note")
        numbers = dict(settings, **dict.fromkeys(keys + ("message",)))
        extra = {k: v for k, v in settings.items() if k not in _CORE_SETTINGS}
        try:
            tensor = self.tensor(settings["tensor_name"], settings["size"], settings["seed"])
            dtype, n_bits = _explorer_dtype(settings["dtype"]), settings["n_bits"]
            q_min, q_max = get_q_range(dtype, n_bits)
            result = _as_result(self.quantizer(tensor, dtype, n_bits, **extra), tensor)
            mse = quantization_error(tensor, result.dequantized).item()
        except (ValueError, TypeError) as error:
            numbers["message"] = str(error)
            return numbers, None
        quantized, dequantized, block_size = result.quantized, result.dequantized, result.block_size
        scales = torch.as_tensor(result.scale, dtype=torch.float64)
        n_scales = scales.numel()
        if n_scales == 1:  # one block: plain numbers, as the lessons' functions return them
            scale, zero_point = scales.item(), int(torch.as_tensor(result.zero_point).item())
            theory_mse = scale**2 / 12
        else:  # blocks are all the same size: the average over elements is over blocks
            scale, zero_point = result.scale, result.zero_point
            theory_mse = scales.square().mean().item() / 12
        n_values = tensor.numel()
        busiest = partial(_busiest_share, quantized, scales, block_size, q_min)
        clip, clipped, clip_mse, clip_range = None, 0, 0.0, None
        if result.clip_range is None:
            estimate, note = estimate_check(
                mse, theory_mse, n_values, busiest, n_values // n_scales
            )
        else:
            alpha = torch.as_tensor(result.clip_range, dtype=torch.float64)
            clip_range = alpha.item() if alpha.numel() == 1 else alpha
            clipped, clip_mse, estimate, note = _clipping_check(
                tensor, dequantized, alpha, scales, block_size, busiest, n_values // n_scales
            )
            clip = (alpha, clipped)
        stores_zero = settings.get("mode") != "symmetric"
        numbers.update(
            shape=tuple(tensor.shape),
            q_min=q_min,
            q_max=q_max,
            block_size=tuple(block_size),
            n_scales=n_scales,
            scale=scale,
            zero_point=zero_point,
            mse=mse,
            max_error=(dequantized - tensor).abs().max().item(),
            theory_mse=theory_mse,
            estimate=estimate,
            estimate_note=note,
            bytes_before=n_values * tensor.element_size(),
            bytes_after=quantized.numel() * quantized.element_size(),
            bytes_params=n_scales * (4 + (quantized.element_size() if stores_zero else 0)),
            bytes_packed=math.ceil(quantized.numel() * n_bits / 8),
            levels=q_max - q_min + 1,
            levels_used=int(
                torch.bincount(quantized.reshape(-1).to(torch.int64) - q_min).count_nonzero()
            ),
            clip_range=clip_range,
            clipped=clipped,
            clip_mse=clip_mse,
            range_note=result.range_note,
        )
        blocks = _blocks_phrase(tuple(tensor.shape), tuple(block_size))
        drawn = (tensor, quantized, dequantized, dtype, n_bits, scale, zero_point, blocks, clip)
        return numbers, drawn

    # -- the picture ----------------------------------------------------------------------

    @property
    def figure(self) -> Figure | None:
        """The figure the last ``render`` drew into (``None`` before the first)."""
        return None if self._drawing is None else self._drawing.figure

    def _layout_for(self, tensor: torch.Tensor) -> _PanelsDrawing | _HistogramDrawing:
        """The drawing for this tensor: the current one if the layout and shape still fit."""
        small = tensor.numel() <= ANNOTATE_MAX_ELEMENTS
        kind = _PanelsDrawing if small else _HistogramDrawing
        shape = tuple(as_2d(tensor).shape)
        if not (isinstance(self._drawing, kind) and self._drawing.shape == shape):
            self._drawing = kind(shape, self.dpi)
        return self._drawing

    def render(self, **settings: Any) -> tuple[dict[str, Any], bytes | None]:
        """Compute the numbers for ``settings`` and draw them; returns ``(numbers, png)``.

        ``png`` is ``None`` when the settings fail (``numbers["message"]`` says why).
        """
        numbers, results = self._run({**self.settings, **settings})
        if results is None:
            return numbers, None
        self._draw(numbers, results)
        return numbers, self._drawing.png()

    def _draw(self, numbers: dict[str, Any], results: tuple) -> None:
        """Update the drawing's artists for ``results`` (nothing is rendered yet)."""
        tensor, dtype, n_bits = results[0], results[3], results[4]
        drawing = self._layout_for(tensor)
        drawing.update(*results)
        how = [numbers.get("mode"), numbers.get("granularity")]
        if numbers["clip_range"] is not None and isinstance(numbers.get("range_method"), str):
            how.insert(1, f"{numbers['range_method']} range")
        if how[-1] == "per group":
            how[-1] = f"per group of {numbers.get('group_size')}"
        how = "".join(f", {text}" for text in how if isinstance(text, str))
        drawing.suptitle.set_text(
            f"{numbers['tensor_name']}, {n_bits}-bit {dtype_name(dtype)}{how}: "
            f"MSE = {format_number(numbers['mse'])}, "
            f"largest error = {format_number(numbers['max_error'])}"
        )

    @staticmethod
    def html(numbers: dict[str, Any]) -> str:
        """The numbers as a small HTML table (or the message, if the settings failed).

        Each number sits in an element with a stable class (``qe-scale``, ``qe-zero-point``,
        ``qe-mse``, ``qe-theory-mse``, ``qe-max-error``, ``qe-levels``, ``qe-estimate``,
        ``qe-bytes-before``, ``qe-bytes-after``, ``qe-bytes-params``, ``qe-bytes-packed``,
        ``qe-message``; with a clipped range also ``qe-clip-range``, ``qe-clipped`` and
        ``qe-range``, how it was chosen) for tests and styling.
        """
        import html

        if numbers["message"] is not None:
            return (
                '<div class="qe-numbers"><p class="qe-message" style="color:#b00020">'
                f"<b>These settings do not work together:</b> {html.escape(numbers['message'])}"
                "</p></div>"
            )
        dtype = dtype_name(_explorer_dtype(numbers["dtype"]))
        bits, values = numbers["n_bits"], math.prod(numbers["shape"])
        n_scales = numbers["n_scales"]
        blocks = _blocks_phrase(numbers["shape"], numbers["block_size"])
        cells = [
            ("scale s", "qe-scale", _format_param(numbers["scale"], "scale", blocks)),
            ("zero point z", "qe-zero-point", _format_param(numbers["zero_point"], "zero point")),
            ("MSE (measured)", "qe-mse", format_number(numbers["mse"])),
            ("s\u00b2/12 (estimate)", "qe-theory-mse", format_number(numbers["theory_mse"])),
            ("max error", "qe-max-error", format_number(numbers["max_error"])),
            ("levels in use", "qe-levels", f"{numbers['levels_used']:,} of {numbers['levels']:,}"),
        ]
        range_note = ""
        if numbers.get("clip_range") is not None:
            alpha = _format_param(numbers["clip_range"], "range", blocks)
            clipped = numbers["clipped"]
            cells += [
                ("range \u00b1\u03b1", "qe-clip-range", alpha),
                ("clipped", "qe-clipped", f"{clipped:,} ({_percent(clipped / values)})"),
            ]
            range_note = (
                f'<p class="qe-range" style="line-height:1.4"><b>Range \u00b1\u03b1:</b> '
                f"{html.escape(numbers.get('range_note') or '')}</p>"
            )
        head = "".join(f'<th style="padding:0 1em">{label}</th>' for label, _, _ in cells)
        row = "".join(
            f'<td style="padding:0 1em;text-align:center"><span class="{css}">{text}</span></td>'
            for _, css, text in cells
        )
        colour = {"applies": "#1b5e20", "few values": "#555555"}.get(numbers["estimate"], "#b00020")
        estimate = numbers["estimate"].replace(" ", "-")
        before, after, params, packed = (
            numbers[k] for k in ("bytes_before", "bytes_after", "bytes_params", "bytes_packed")
        )
        scales = "1 scale" if n_scales == 1 else f"{n_scales:,} scales"
        zeros = "" if numbers.get("mode") == "symmetric" else " and zero points"
        if n_scales == 1 and zeros:
            zeros = " and zero point"
        return (
            '<div class="qe-numbers">'
            f"<table><tr>{head}</tr><tr>{row}</tr></table>{range_note}"
            f'<p class="qe-estimate qe-estimate-{estimate}" style="color:{colour};'
            f'line-height:1.4">{html.escape(numbers["estimate_note"])}</p>'
            f'<p class="qe-memory" style="line-height:1.4">Memory of the {values:,} values: '
            f'<span class="qe-bytes-before">{before:,}</span> bytes as float32 &rarr; '
            f'<span class="qe-bytes-after">{after:,}</span> bytes stored as {dtype} '
            f"({before / after:.3g}x smaller), plus {scales}{zeros}: "
            f'<span class="qe-bytes-params">{params:,}</span> bytes; '
            f'if packed at {bits} bits per value: <span class="qe-bytes-packed">{packed:,}</span>'
            f" bytes ({values:,} &times; {bits} bits, rounded up to whole bytes; packing is "
            "course lesson L5, weight packing).</p>"
            "</div>"
        )

    # -- the widgets ----------------------------------------------------------------------

    def build_widgets(self):
        """Make the controls, the numbers and the picture as one ipywidgets box and draw once.

        Changing any control redraws: the picture is PNG bytes in an ``ipywidgets.Image`` and
        the numbers are an ``ipywidgets.HTML``, so nothing is appended or flickers.
        """
        import ipywidgets as widgets

        self.widgets = {control.name: control.make_widget(self) for control in self.controls}
        self.numbers_widget = widgets.HTML()
        self.image_widget = widgets.Image(
            format="png", layout=widgets.Layout(max_width="100%", height="auto")
        )
        self._sync_limits()
        for widget in self.widgets.values():
            widget.observe(self._on_change, names="value")
        controls = widgets.HBox(
            list(self.widgets.values()), layout=widgets.Layout(flex_flow="row wrap")
        )
        self.box = widgets.VBox([controls, self.numbers_widget, self.image_widget])
        self.box.add_class("qe-explorer")
        self.redraw()
        return self.box

    def show(self) -> None:
        """Display the explorer in the notebook (building the widgets first if needed)."""
        from IPython.display import display

        display(self.box if self.box is not None else self.build_widgets())

    def redraw(self) -> dict[str, Any]:
        """Recompute and redraw for the current settings; returns the numbers shown."""
        numbers, png = self.render()
        self.numbers_widget.value = self.html(numbers)
        if png is None:
            self.image_widget.layout.visibility = "hidden"
        else:
            self.image_widget.value = png
            self.image_widget.layout.visibility = "visible"
        return numbers

    def _sync_limits(self) -> None:
        """Update slider maxima and greyed-out controls that follow other controls (the bits
        follow the dtype, the group size the granularity)."""
        self._syncing = True  # a clamped value must not trigger a redraw of its own
        try:
            settings = self.settings
            for control in self.controls:
                widget = self.widgets[control.name]
                if control.high_from is not None:
                    try:
                        widget.max = control.high_from(settings)
                    except (ValueError, TypeError):
                        pass  # the redraw shows what is wrong with the settings
                if control.active_from is not None:
                    widget.disabled = not control.active_from(settings)
        finally:
            self._syncing = False

    def _on_change(self, change: dict) -> None:
        """Observer of every control: adjust dependent limits, then redraw once."""
        if self._syncing:
            return
        self._sync_limits()
        self.redraw()


def explore(**kwargs: Any):
    """Build a ``QuantizationExplorer`` and return its widget box (the last line of a cell
    shows it). Keyword arguments go to ``QuantizationExplorer``."""
    return QuantizationExplorer(**kwargs).build_widgets()
