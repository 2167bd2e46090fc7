"""Checks of clipping ranges and of the plot functions' arguments (helper.py, section 13
and the ``plot_*`` functions).

Import direction: imports torch, ``support.constants`` and ``support.checks.values``; never
``helper``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch

from support.checks.values import (
    finite_min_max,
    is_whole,
    quantized,
    real_tensor,
    whole_number,
)
from support.constants import CLIPPING_GRIDS

# -- choosing the range ------------------------------------------------------------------------


def percentile(percentile: Any) -> float:
    """``percentile`` as a float in (0, 100], else a ``TypeError`` or ``ValueError``."""
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real):
        raise TypeError(f"percentile must be a number such as 99.9, got {percentile!r}.")
    percentile = float(percentile)
    if not 0.0 < percentile <= 100.0:
        raise ValueError(
            f"percentile must be in (0, 100], got {percentile}: 100 is min-max (nothing is "
            "clipped), 99.9 clips the largest 0.1% of the magnitudes in every block."
        )
    return percentile


def grid(grid: Any) -> str:
    """One of ``CLIPPING_GRIDS``."""
    if grid not in CLIPPING_GRIDS:
        raise ValueError(f"unknown grid {grid!r}: use {' or '.join(map(repr, CLIPPING_GRIDS))}.")
    return grid


def absmax(absmax: Any, n_blocks: tuple[int, ...]) -> torch.Tensor:
    """``absmax`` as a float64 tensor of shape ``n_blocks``; a number is shared by all."""
    if isinstance(absmax, bool) or not isinstance(absmax, numbers.Real | torch.Tensor):
        raise TypeError(f"absmax must be a number or a tensor, got {type(absmax).__name__}.")
    values = torch.as_tensor(absmax, dtype=torch.float64)
    try:
        values = values.broadcast_to(n_blocks)
    except RuntimeError:
        raise ValueError(
            f"absmax has shape {tuple(values.shape)}: pass one value per block, shape "
            f"{n_blocks} (what absmax_minmax returns), or a single number."
        ) from None
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError("every absmax must be a finite number >= 0.")
    return values


def ratios(ratios: Any) -> torch.Tensor:
    """A non-empty 1-D float64 tensor of positive, finite ratios."""
    if (
        ratios is None
        or isinstance(ratios, str | bool)
        or not (isinstance(ratios, Sequence | torch.Tensor) or isinstance(ratios, numbers.Real))
    ):
        raise TypeError(f"ratios must be a sequence of numbers such as [1.0, 0.9], got {ratios!r}.")
    ratios = torch.as_tensor(ratios, dtype=torch.float64).flatten()
    if ratios.numel() == 0 or not bool(((ratios > 0) & torch.isfinite(ratios)).all()):
        raise ValueError("ratios must be a non-empty sequence of positive, finite numbers.")
    return ratios


def range_method(method: Any, methods: tuple[str, ...]) -> ValueError:
    """The error for a method that is not one of ``methods``."""
    return ValueError(f"unknown method {method!r}: use one of {', '.join(map(repr, methods))}.")


# -- plots -------------------------------------------------------------------------------------


def bit_widths(n_bits: Any) -> list[int]:
    """A non-empty sequence of bit widths, as ints."""
    if isinstance(n_bits, str) or not isinstance(n_bits, Sequence):
        raise TypeError(
            f"n_bits must be a sequence of bit widths such as (8, 4, 2), got {n_bits!r}."
        )
    if not all(is_whole(b) for b in n_bits):
        raise ValueError(f"n_bits must hold whole numbers, got {tuple(n_bits)!r}.")
    widths = [int(b) for b in n_bits]
    if not widths:
        raise ValueError("n_bits must list at least one bit width, e.g. (8, 4, 2).")
    return widths


def bins(bins: Any) -> int:
    """A number of histogram bins, a whole number >= 1."""
    return whole_number(bins, "bins", 1)


def error_max(error_max: Any) -> float | None:
    """``None`` or a positive, finite number."""
    if error_max is not None and (
        isinstance(error_max, bool)
        or not isinstance(error_max, numbers.Real)
        or not (math.isfinite(error_max) and error_max > 0)
    ):
        raise ValueError(f"error_max must be a positive number, got {error_max!r}.")
    return error_max


def same_shapes(*tensors: torch.Tensor) -> None:
    """The tensors of ``plot_quantization_errors`` share one shape."""
    if len({tuple(t.shape) for t in tensors}) != 1:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors[:-1])
        raise ValueError(
            f"the three tensors must have one shape, got {shapes} and {tuple(tensors[-1].shape)}."
        )


def error_plot(original: Any, quantized_: Any, dequantized: Any, error_max_: Any) -> tuple:
    """The arguments of ``plot_quantization_errors``: three tensors of one shape, the original
    and dequantized ones finite, and an optional positive ``error_max``."""
    r = real_tensor(original, "original")
    q = quantized(quantized_)
    r2 = real_tensor(dequantized, "dequantized")
    same_shapes(r, q, r2)
    finite_min_max(r, "original")
    finite_min_max(r2, "dequantized")
    return r, q, r2, error_max(error_max_)


def clipping_ranges_args(tensor: Any, ranges: Any, bins_: Any) -> tuple:
    """The arguments of ``plot_clipping_ranges``: a finite tensor (with its min and max), a
    dict of ranges and a number of bins."""
    r = real_tensor(tensor)
    r_min, r_max = finite_min_max(r)
    ranges_dict(ranges)
    return r, r_min, r_max, bins(bins_)


def tradeoff_points(points: Any, point_class: type) -> list:
    """At least one point, each a ``point_class`` (label, n_bits, bits_per_weight, mse) with a
    positive, finite MSE (a log axis); returned as a list of ``point_class``."""
    if isinstance(points, str) or not isinstance(points, Sequence):
        raise TypeError(f"points must be a list of TradeoffPoint, got {type(points).__name__}.")
    if not points:
        raise ValueError("points is empty: pass at least one TradeoffPoint to plot.")
    try:
        points = [point_class(*point) for point in points]
    except TypeError:
        raise TypeError(
            "each point must be TradeoffPoint(label, n_bits, bits_per_weight, mse), or a tuple "
            "of those four."
        ) from None
    for point in points:
        if not (math.isfinite(point.bits_per_weight) and point.bits_per_weight > 0):
            raise ValueError(
                f"the bits per weight of {point.label!r} is {point.bits_per_weight!r}: pass a "
                "positive number (bits_per_weight computes it)."
            )
        if not (math.isfinite(point.mse) and point.mse > 0):
            raise ValueError(
                f"the MSE of {point.label!r} is {point.mse!r}: a log axis needs a positive, "
                "finite error."
            )
    return points


def output_sqnr_args(y: torch.Tensor, outputs: Any) -> None:
    """A 2-D reference and a non-empty dict of outputs."""
    if y.dim() != 2:
        raise ValueError(f"reference must be 2-D (tokens, out_features), got {tuple(y.shape)}.")
    if not isinstance(outputs, dict) or not outputs:
        raise TypeError("outputs must be a non-empty dict {label: output tensor}.")


def accuracy_counts(
    correct: Any, n_test: Any, float_correct: Any = None, n_classes: Any = None
) -> None:
    """``{label: {n_bits: count}}`` with every count in ``0..n_test``; ``float_correct`` is
    ``None`` or a count in ``0..n_test``, ``n_classes`` ``None`` or a whole number >= 2."""
    if not isinstance(correct, dict) or not correct:
        raise TypeError("correct must be a non-empty dict {label: {n_bits: correct count}}.")
    if not is_whole(n_test) or n_test < 1:
        raise ValueError(f"n_test must be a whole number >= 1, got {n_test!r}.")
    for label, counts in correct.items():
        for b, count in counts.items():
            if not 0 <= count <= n_test:
                raise ValueError(f"{label!r} at {b} bits: {count} is not in 0..{n_test}.")
    if float_correct is not None and (
        isinstance(float_correct, bool)
        or not isinstance(float_correct, numbers.Real)
        or not 0 <= float_correct <= n_test
    ):
        raise ValueError(
            f"float_correct must be None or a count in 0..{n_test}, got {float_correct!r}."
        )
    if n_classes is not None and (not is_whole(n_classes) or n_classes < 2):
        raise ValueError(f"n_classes must be None or a whole number >= 2, got {n_classes!r}.")


def ranges_dict(ranges: Any) -> None:
    """A non-empty dict ``{label: alpha}``, every alpha a finite number >= 0."""
    if not isinstance(ranges, dict) or not ranges:
        raise TypeError("ranges must be a non-empty dict {label: alpha}.")
    for label, alpha in ranges.items():
        try:
            ok = math.isfinite(float(alpha)) and float(alpha) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"the range {label!r} is {alpha!r}: pass a finite number >= 0.")


def aciq_args(alpha: Any, n_bits: Any, scale: Any, scale_name: str) -> tuple[float, int, float]:
    """ACIQ's arguments: ``alpha`` a finite number >= 0, ``n_bits`` a whole number from 1 to
    64, and the distribution's scale (``sigma`` or ``b``) a positive finite number."""
    n_bits = bits(n_bits)
    values = []
    for name, value, low_ok in (("alpha", alpha, True), (scale_name, scale, False)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {value!r}.")
        value = float(value)
        if not math.isfinite(value) or value < 0 or (value == 0 and not low_ok):
            raise ValueError(
                f"{name} must be a finite number > 0 ({name} >= 0 for alpha), got {value}."
            )
        values.append(value)
    return values[0], n_bits, values[1]


def bits(n_bits: Any) -> int:
    """A bit width from 1 to 64 for ACIQ's formulas."""
    if not is_whole(n_bits) or not 1 <= n_bits <= 64:
        raise ValueError(f"n_bits must be a whole number from 1 to 64, got {n_bits!r}.")
    return int(n_bits)


# The checks this module offers (``from support.checks import *`` in the package).
__all__ = [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
