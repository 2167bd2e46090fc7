"""Linear quantization, hands-on: the functions the lessons build, in the order they build them.

The whole course rests on two formulas (``s`` is the scale, ``z`` the zero point)::

    quantize:    q  = clamp(round(r / s) + z, q_min, q_max)
    dequantize:  r' = s * (q - z)

Read this file top to bottom; each section is one step of the course, and every function uses
only what stands above it.

1. Integer dtypes and their ranges   ``get_q_range``
2. Checking what comes in            (done once per function, by ``support.checks``)
3. Scale and zero point (L2-B)       ``qparams_from_range``, ``get_q_scale_and_zero_point``
4. Quantize (L2-A)                   ``quantize_one_liner``, ``linear_q_with_scale_and_zero_point``,
                                     ``linear_quantization``
5. Dequantize (L2-A)                 ``dequantize_one_liner``, ``linear_dequantization``
6. Quantization error                ``quantization_error``, ``sqnr_db``
7. Plots                             ``plot_quantization_errors``, ``plot_number_line``
8. Symmetric mode (L3-A)             ``get_q_scale_symmetric``, ``linear_q_symmetric``
9. Granularity (L3-B/C/D)            ``block_shapes``, ``quantize_blockwise``,
                                     ``linear_q_symmetric_per_channel``,
                                     ``linear_q_symmetric_per_group``,
                                     ``linear_dequantization_per_group``, ``bits_per_weight``
10. Weights and activations (L3-E)   ``quantized_linear_W8A32_without_bias``,
                                     ``quantized_linear_W8A8_without_bias``
11. An 8-bit layer for any model     ``w8_a16_forward``, ``W8A16LinearLayer``,
    (L4)                             ``replace_linear_with_target_and_quantize``,
                                     ``fake_quantize``, ``fake_quantize_linears``
12. Weight packing (L5)              ``pack_weights``, ``unpack_weights``, ``PackedLinearLayer``
13. Choosing the range               ``absmax_percentile``, ``absmax_mse_optimal``,
                                     ``clipping_absmax``, ``quantize_clipped``

Every quantizer here, per tensor, per channel or per group, symmetric or not, is the same three
steps: measure a range (section 3 for a whole tensor, section 9 per block of elements), turn it
into a scale and zero point (section 3's formula), then apply the two formulas (sections 4
and 5). The functions named after the course are thin wrappers that pick the block.

Beside this file, the package ``support`` holds what you use but need not read: the checks
and their messages (``support.checks``), the drawing code (``support.plots``), the fast path for
large tensors (``support.fast``), the explorer, the exercise checkers, the example tensors and
the models. Nothing here modifies its inputs, and bad input raises a ``TypeError`` or
``ValueError`` that says what was wrong and what to do instead.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from support import checks, fast, plots
from support.constants import (
    CLIPPING_GRIDS,
    PACK_BITS,
    RANGE_METHODS,
    SCALE_EPS,
    SUPPORTED_DTYPES,
    dtype_name,
)

# ---------------------------------------------------------------------------------------------
# 1. Integer dtypes and their ranges
# ---------------------------------------------------------------------------------------------
# The dtypes a tensor can be quantized to are SUPPORTED_DTYPES (int8, uint8, int16); dtype_name
# gives a dtype's short name ("int8").


def get_q_range(dtype: torch.dtype = torch.int8, n_bits: int | None = None) -> tuple[int, int]:
    """The smallest and largest integer a quantized value may take, ``(q_min, q_max)``.

    With ``n_bits=None`` this is the full range of ``dtype`` (``torch.iinfo``). A smaller
    ``n_bits`` narrows it while the values are still stored in ``dtype``::

        signed dtype:    q_min = -2**(n_bits - 1),  q_max = 2**(n_bits - 1) - 1
        unsigned dtype:  q_min = 0,                 q_max = 2**n_bits - 1

    >>> get_q_range(torch.int8)
    (-128, 127)
    >>> get_q_range(torch.int8, n_bits=4)
    (-8, 7)
    >>> get_q_range(torch.uint8, n_bits=2)
    (0, 3)
    """
    dtype = checks.int_dtype(dtype)
    n_bits = checks.bit_width(n_bits, dtype)
    info = torch.iinfo(dtype)
    if n_bits is None:
        return int(info.min), int(info.max)
    if info.min < 0:
        return -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1
    return 0, 2**n_bits - 1


# ---------------------------------------------------------------------------------------------
# 2. Checking what comes in
# ---------------------------------------------------------------------------------------------
# Every public function checks its arguments once, at the door, with a function of
# ``support.checks`` (``checks.real_tensor``, ``checks.scale``, ...), and then works with the
# checked values. A check returns the value in the form we compute with (a float tensor, an
# int) or raises a TypeError or ValueError that names the argument and says what to pass. The
# values of a tensor are checked where its range is measured anyway: a NaN or an infinity makes
# the range NaN or infinite (``checks.finite_range``), so no extra pass over the data is needed.


# ---------------------------------------------------------------------------------------------
# 3. Scale and zero point (course lesson L2-B)
# ---------------------------------------------------------------------------------------------


def qparams_from_range(
    r_min: torch.Tensor,
    r_max: torch.Tensor,
    q_min: int,
    q_max: int,
    symmetric: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scales and zero points that map real ranges ``[r_min, r_max]`` onto ``[q_min, q_max]``.

    ``r_min`` and ``r_max`` are numbers or tensors of one shape, one range per block of
    elements; the result has their shape: a float64 scale and an int64 zero point per range.
    Computed in float64, the way PyTorch's observers define them::

        r_min <- min(r_min, 0),  r_max <- max(r_max, 0)      # the range always holds 0

        asymmetric:  s = (r_max - r_min) / (q_max - q_min)
                     z = clamp(q_min - round(r_min / s), q_min, q_max)   # round half to even
        symmetric:   z = 0 for a signed dtype, the midpoint (q_min + q_max + 1) // 2 for an
                     unsigned one (128 for uint8),  s = max(|r_min|, |r_max|) / (q_max - z)

    and every scale is at least ``SCALE_EPS``. Including 0 means the real number 0 is exactly
    representable (it quantizes to ``z``) and ``z`` always lies in ``[q_min, q_max]``. The
    symmetric scale is the course's ``max|r| / q_max`` (127 for int8); PyTorch's symmetric
    observers divide by ``(q_max - q_min) / 2`` (127.5) instead.

    >>> s, z = qparams_from_range(torch.tensor(-184.0), torch.tensor(728.6), -128, 127)
    >>> s.item(), z.item()
    (3.578823433670343, -77)
    >>> s, z = qparams_from_range(torch.tensor([-1.0, 0.0]), torch.tensor([2.0, 0.0]), -128, 127,
    ...                           symmetric=True)
    >>> s.tolist(), z.tolist()
    ([0.015748031496062992, 1.1920928955078125e-07], [0, 0])
    """
    r_min = torch.as_tensor(r_min, dtype=torch.float64).clamp(max=0.0)
    r_max = torch.as_tensor(r_max, dtype=torch.float64).clamp(min=0.0)
    checks.finite_range(r_min, r_max, "the range")
    if symmetric:
        middle = 0 if q_min < 0 else (q_min + q_max + 1) // 2
        scale = torch.maximum(-r_min, r_max) / (q_max - middle)
        zero_point = torch.full(scale.shape, middle, dtype=torch.int64)
    else:
        scale = (r_max - r_min) / (q_max - q_min)
    checks.computed_scale(scale)
    scale = scale.clamp(min=SCALE_EPS)
    if not symmetric:
        zero_point = (q_min - torch.round(r_min / scale)).clamp(q_min, q_max).to(torch.int64)
    return scale, zero_point


def scale_and_zero_point_from_range(
    r_min: float, r_max: float, q_min: int, q_max: int
) -> tuple[float, int]:
    """``qparams_from_range`` for one range given as numbers: ``(scale, zero_point)`` as a
    Python float and int.

    >>> scale_and_zero_point_from_range(-184.0, 728.5999755859375, -128, 127)
    (3.578823433670343, -77)
    >>> scale_and_zero_point_from_range(100.0, 200.0, -128, 127)   # one-signed: z = q_min
    (0.7843137254901961, -128)
    """
    scale, zero_point = qparams_from_range(float(r_min), float(r_max), q_min, q_max)
    return scale.item(), int(zero_point)


def get_q_scale_and_zero_point(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> tuple[float, int]:
    """The scale (a Python float) and zero point (a Python int) for quantizing ``tensor``:
    ``qparams_from_range`` with ``r_min`` and ``r_max`` the tensor's smallest and largest value.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> get_q_scale_and_zero_point(t)
    (3.578823433670343, -77)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r_min, r_max = checks.finite_min_max(checks.real_tensor(tensor))
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max)
    return scale.item(), int(zero_point)


# ---------------------------------------------------------------------------------------------
# 4. Quantize (course lesson L2-A)
# ---------------------------------------------------------------------------------------------


def quantize_one_liner(
    r: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    q_min: int,
    q_max: int,
    dtype: torch.dtype = torch.int8,
) -> torch.Tensor:
    """The quantize formula, in one readable line; every quantizer in this file ends here::

        q = clamp(round(r / s) + z, q_min, q_max).to(dtype)

    ``round`` is round-half-to-even (``torch.round``), applied to ``r / s`` *before* ``z`` is
    added, as in ``torch.fake_quantize_per_tensor_affine``. Clamp comes before the cast:
    ``.to(torch.int8)`` of 138.0 does not give 127. ``scale`` and ``zero_point`` are numbers or
    tensors that broadcast against ``r`` (a tensor scale in ``r``'s float dtype, so that the
    division runs in that precision). No checks: the public functions below check first.

    >>> quantize_one_liner(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70, -128, 127)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    if r.numel() > fast.CHUNK_ELEMENTS:  # large: the same numbers, computed in place in chunks
        return fast.quantize(r, scale, zero_point, q_min, q_max, dtype)
    return torch.clamp(torch.round(r / scale) + zero_point, q_min, q_max).to(dtype)


def linear_q_with_scale_and_zero_point(
    tensor: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> torch.Tensor:
    """Quantize ``tensor`` with a given scale and zero point::

        q = clamp(round(r / s) + z, q_min, q_max)        stored as ``dtype``

    The course code (and ``torch.quantize_per_tensor`` on x86) rounds ``r / s + z`` instead of
    ``r / s``. The two agree except on an exact tie with an odd ``z``: 1.75 / 3.5 = 0.5 rounds
    to 0 here (q = z = -77), but 0.5 - 77 = -76.5 rounds to -76 there. ``clamp`` keeps every
    value storable, so nothing wraps around. ``scale`` and ``zero_point`` are numbers, or
    tensors that broadcast against ``tensor`` (shape ``(rows, 1)`` gives each row its own).
    ``n_bits`` narrows the range (see ``get_q_range``).

    >>> linear_q_with_scale_and_zero_point(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.finite_tensor(tensor)
    scale = checks.scale(scale, r.shape, r.dtype)
    zero_point = checks.zero_point(zero_point, r.shape, q_min, q_max)
    return quantize_one_liner(r, scale, zero_point, q_min, q_max, dtype)


def linear_quantization(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> tuple[torch.Tensor, float, int]:
    """Choose a scale and zero point for ``tensor`` (section 3) and quantize it with them.

    Returns ``(quantized_tensor, scale, zero_point)``: asymmetric, per tensor.

    >>> q, s, z = linear_quantization(torch.tensor([-1.0, 0.0, 2.0]))
    >>> q, round(s, 6), z
    (tensor([-128,  -43,  127], dtype=torch.int8), 0.011765, -43)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    r_min, r_max = checks.finite_min_max(r)
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max)
    quantized = quantize_one_liner(r, scale.to(r.dtype), zero_point, q_min, q_max, dtype)
    return quantized, scale.item(), int(zero_point)


# ---------------------------------------------------------------------------------------------
# 5. Dequantize (course lesson L2-A)
# ---------------------------------------------------------------------------------------------


def dequantize_one_liner(
    q: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    output_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The dequantize formula, computed in float32 and then cast to ``output_dtype``::

        r' = s * (q - z)

    ``q`` becomes float32 *before* ``z`` is subtracted: in int8, ``q - z`` can leave the range
    (127 - (-70) = 197) and would silently wrap around. ``q - z`` is exact in float32
    (``|q - z| < 2**17``), not always in float16 or bfloat16, so the cast comes last. A tensor
    ``scale`` is float32 and broadcasts against ``q``. No checks: the public functions check.

    >>> dequantize_one_liner(torch.tensor([-70, -68, 127], dtype=torch.int8), 3.5, -70)
    tensor([  0.0000,   7.0000, 689.5000])
    """
    if q.numel() > fast.CHUNK_ELEMENTS:  # large: the same numbers, computed in place in chunks
        return fast.dequantize(q, scale, zero_point, output_dtype)
    return (scale * (q.to(torch.float32) - zero_point)).to(output_dtype)


def linear_dequantization(
    quantized_tensor: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
) -> torch.Tensor:
    """Map quantized integers back to real numbers (float32): ``r' = s * (q - z)``.

    ``scale`` and ``zero_point`` are numbers or tensors that broadcast against
    ``quantized_tensor`` (a per-channel scale of shape ``(rows, 1)`` or ``(1, columns)``). A
    per-group scale does not broadcast: use ``linear_dequantization_per_group``.

    >>> linear_dequantization(torch.tensor([-70, -68, 127], dtype=torch.int8), 3.5, -70)
    tensor([  0.0000,   7.0000, 689.5000])
    """
    q = checks.quantized(quantized_tensor)
    scale = checks.scale(scale, q.shape, torch.float32)
    zero_point = checks.zero_point(zero_point, q.shape)
    return dequantize_one_liner(q, scale, zero_point)


# ---------------------------------------------------------------------------------------------
# 6. Quantization error
# ---------------------------------------------------------------------------------------------


def quantization_error(tensor: torch.Tensor, dequantized_tensor: torch.Tensor) -> torch.Tensor:
    """Mean squared error between a tensor and its dequantized version (a 0-dim tensor)::

        mse = mean((r' - r) ** 2)

    For values inside the range, rounding errors are spread evenly over ``[-s/2, s/2]``, so
    the MSE is close to ``s**2 / 12``.

    >>> quantization_error(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))
    tensor(0.1250)
    """
    r, r2 = checks.pair(tensor, dequantized_tensor)
    return (r2 - r).square().mean()


def _sqnr(r: torch.Tensor, r2: torch.Tensor) -> float:
    """``sqnr_db`` for checked tensors."""
    signal = r.double().square().mean().item()
    noise = (r2.double() - r.double()).square().mean().item()
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def sqnr_db(tensor: torch.Tensor, dequantized_tensor: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in decibels, a relative error measure::

        sqnr = 10 * log10( mean(r ** 2) / mean((r' - r) ** 2) )

    The MSE depends on the tensor's units (170.9 for the test tensor is small for values in
    the hundreds, 1e-5 is large for values of 0.001); the SQNR does not. Every 6 dB is a factor
    of 4 in MSE, about one bit. ``inf`` when the round trip is exact, ``-inf`` for an all-zero
    tensor that did not come back as zeros.

    >>> round(sqnr_db(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0])), 2)
    13.01
    """
    return _sqnr(*checks.pair(tensor, dequantized_tensor))


# ---------------------------------------------------------------------------------------------
# 7. Plots
# ---------------------------------------------------------------------------------------------
# Each plot function checks its input and computes what the picture shows; support.plots draws
# it. Every figure is returned closed for pyplot, so a notebook shows it exactly once, as the
# value of the cell; keep it in a variable and put the variable last to show it again.


def plot_quantization_errors(
    original: torch.Tensor,
    quantized: torch.Tensor,
    dequantized: torch.Tensor,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    error_max: float | None = None,
) -> Figure:
    """Four heatmaps in a row: original, quantized, dequantized and the absolute error.

    The original and dequantized panels share one colour scale so they can be compared by
    eye; the quantized panel spans its integer values. The error panel runs from 0 to the
    largest error, so its brightest cell is always the worst one; pass ``error_max`` to give
    several plots one error scale and compare them by colour. Small tensors (up to 64 values)
    get their numbers written in the cells. ``dtype`` and ``n_bits`` (``None``: the dtype's
    full width) label the quantized panel.
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(original, "original")
    q = checks.quantized(quantized)
    r2 = checks.real_tensor(dequantized, "dequantized")
    checks.same_shapes(r, q, r2)
    checks.finite_min_max(r, "original")
    checks.finite_min_max(r2, "dequantized")
    error_max = checks.error_max(error_max)
    r, q, r2 = plots.as_2d(r), plots.as_2d(q), plots.as_2d(r2)
    error = (r - r2).abs()
    bits = f"{n_bits}-bit " if n_bits is not None else ""
    quantized_title = f"Quantized ({bits}{dtype_name(dtype)}, [{q_min}, {q_max}])"
    mse, worst = error.square().mean().item(), error.max().item()
    title = f"Quantization error: MSE = {mse:.4g}, largest error = {worst:.4g}"
    return plots.draw_quantization_errors(r, q, r2, error, quantized_title, title, error_max)


def plot_number_line(
    tensor: torch.Tensor,
    scale: float,
    zero_point: int,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    title: str | None = None,
) -> Figure:
    """The quantizer as a staircase: every real ``r`` (x axis) against what comes back,
    ``r' = s * (clamp(round(r / s) + z) - z)`` (y axis), with the tensor's values on it.

    What to see: the flat steps are the levels (one per integer ``q``, ``s`` apart); 0 is a
    level (it is ``q = z``); more than half a step beyond the end levels, in the shaded zones,
    the staircase is flat: every value there is clamped to the end level (closer to it, a value
    is only rounded). The dotted diagonal is ``r' = r``, no error.
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor).flatten().to(torch.float64)
    r_min, r_max = checks.finite_min_max(r)
    scale = float(checks.scale(scale, torch.Size([]), torch.float32))
    zero_point = int(checks.zero_point(zero_point, torch.Size([]), q_min, q_max))
    low_level, high_level = scale * (q_min - zero_point), scale * (q_max - zero_point)
    # clamping starts half a step beyond the end levels; closer values just round to them
    low_clamp, high_clamp = low_level - scale / 2, high_level + scale / 2
    left, right = min(r_min, low_clamp, 0.0), max(r_max, high_clamp, 0.0)
    pad = 0.08 * (right - left)
    left, right = left - pad, right + pad
    xs = torch.linspace(left, right, 4001, dtype=torch.float64)

    def round_trip(values: torch.Tensor) -> torch.Tensor:
        q = quantize_one_liner(values, scale, zero_point, q_min, q_max, torch.int32)
        return dequantize_one_liner(q, scale, zero_point).double()

    bits = f"{n_bits}-bit " if n_bits is not None else ""
    title = title or (
        f"{bits}{dtype_name(dtype)}: s = {scale:.4g}, z = {zero_point}, {q_max - q_min + 1:,} "
        f"levels from {low_level:.4g} to {high_level:.4g}"
    )
    return plots.draw_number_line(
        xs, round_trip(xs), r, round_trip(r), (low_clamp, high_clamp), (left, right),
        zero_point, title,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 8. Symmetric mode (course lesson L3-A)
# ---------------------------------------------------------------------------------------------
# Asymmetric (sections 3-5) fits the grid to [r_min, r_max]. Symmetric mode fixes the zero
# point at 0 and fits the grid to [-max|r|, max|r|]: s = max|r| / q_max, the symmetric branch
# of section 3's formula. No zero point to store or subtract, at the price of levels wasted on
# the side where the data does not go.


def get_q_scale_symmetric(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> float:
    """The symmetric scale of ``tensor``, a Python float: ``s = max|r| / q_max``.

    ``q_max`` is 127 for int8, as in the course; the zero point is 0. For an unsigned dtype
    the zero point is the middle of the range, 128 for uint8, and ``s = max|r| / (q_max - 128)``,
    so uint8 gives the same grid as int8, shifted by 128 (see ``qparams_from_range``). The
    scale is at least ``SCALE_EPS``, so an all-zero tensor does not divide by zero.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> get_q_scale_symmetric(t)
    5.737007681779035
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r_min, r_max = checks.finite_min_max(checks.real_tensor(tensor))
    scale, _ = qparams_from_range(r_min, r_max, q_min, q_max, symmetric=True)
    return scale.item()


def linear_q_symmetric(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> tuple[torch.Tensor, float]:
    """Quantize ``tensor`` in symmetric mode, per tensor; returns ``(quantized_tensor, scale)``.

    ``q = clamp(round(r / s) + z, q_min, q_max)`` with ``s = get_q_scale_symmetric(tensor)``
    and ``z = 0``, so dequantize with ``linear_dequantization(q, scale, 0)``. For an unsigned
    dtype ``z`` is the midpoint, which the course's pair does not return: dequantize uint8 with
    ``linear_dequantization(q, scale, 128)`` (``(q_min + q_max + 1) // 2`` in general).

    >>> q, s = linear_q_symmetric(torch.tensor([-1.0, 0.5, 2.0]))
    >>> q, round(s, 6)
    (tensor([-64,  32, 127], dtype=torch.int8), 0.015748)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    r_min, r_max = checks.finite_min_max(r)
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric=True)
    quantized = quantize_one_liner(r, scale.to(r.dtype), zero_point, q_min, q_max, dtype)
    return quantized, scale.item()


def plot_symmetric_vs_asymmetric(
    tensor: torch.Tensor,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    bins: int = 40,
    title: str | None = None,
) -> Figure:
    """One tensor on the asymmetric grid (top) and on the symmetric grid (bottom).

    Each panel is a histogram of the tensor's values with the grid's levels
    ``r = s * (q - z)`` drawn over it as vertical lines: red where at least one value is
    rounded to the level, light grey where none is. Both panels share the x axis, and each
    names its scale, zero point, levels in use, MSE and SQNR.

    What to see: the asymmetric grid spans ``[min(r_min, 0), max(r_max, 0)]``, the symmetric
    one ``[-max|r|, max|r|]``. Where the data does not go, the levels stay grey: wasted. The
    same number of levels over a wider span means a larger step, hence a larger error.

    >>> fig = plot_symmetric_vs_asymmetric(torch.tensor([1.0, 2.0, 4.0]), n_bits=4)
    >>> [ax.get_title() for ax in fig.axes]
    ['asymmetric: s = 0.2667, z = -8', 'symmetric: s = 0.5714, z = 0']
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    r_min, r_max = checks.finite_min_max(r)
    bins = checks.bins(bins)
    levels = q_max - q_min + 1
    every_q = torch.arange(q_min, q_max + 1, dtype=torch.int64)
    step = math.ceil(levels / plots.MAX_LEVEL_LINES)
    panels, spans = [], []
    for mode, symmetric in (("asymmetric", False), ("symmetric", True)):
        scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric)
        s, z = scale.item(), int(zero_point)
        quantized = quantize_one_liner(r, scale.to(r.dtype), z, q_min, q_max, dtype)
        back = dequantize_one_liner(quantized, scale.to(torch.float32), z)
        used = torch.isin(every_q, torch.unique(quantized.to(torch.int64)))
        mse = (back - r).square().mean().item()
        panels.append(
            {
                "title": f"{mode}: s = {s:.4g}, z = {z}",
                "unused": s * (every_q[~used][::step] - z).double(),
                "used": s * (every_q[used] - z).double(),
                "text": f"levels in use: {int(used.sum()):,} of {levels:,}\n"
                f"MSE = {mse:.4g}\nSQNR = {_sqnr(r, back):.1f} dB",
            }
        )
        spans.append((s * (q_min - z), s * (q_max - z)))
    left = min([r_min] + [low for low, _ in spans])
    right = max([r_max] + [high for _, high in spans])
    pad = 0.03 * (right - left)
    values = r.flatten().to(torch.float64)
    if r_max > r_min:
        counts, edges = torch.histogram(values, bins=bins, range=(r_min, r_max))
    else:  # a constant tensor: one narrow bar
        counts, edges = torch.histogram(values, bins=1, range=(r_min - pad / 3, r_max + pad / 3))
    bits = f"{n_bits}-bit " if n_bits is not None else ""
    title = title or f"{values.numel():,} values on two {bits}{dtype_name(dtype)} grids"
    return plots.draw_grids(counts, edges, panels, (left - pad, right + pad), title)


# ---------------------------------------------------------------------------------------------
# 9. Granularity: one mechanism for per tensor, per channel and per group (course L3-B/C/D)
# ---------------------------------------------------------------------------------------------
# A *block size* says which elements share one scale and zero point: a tuple with one entry per
# dimension of the tensor (after torchao's quant_primitives.py). On a (rows, columns) tensor:
#
#     per tensor                 (rows, columns)    one block, the whole tensor
#     per channel, dim 0         (1, columns)       one block per row
#     per channel, dim 1         (rows, 1)          one block per column
#     per group of g, last dim   (1, g)             each row cut into columns / g groups
#
# Whatever the granularity, quantizing is: view the tensor so that every block lies along
# dimensions of its own, take the range of every block, call section 3's formula on the tensor
# of ranges (the formula works elementwise), and call section 4's quantize with one scale per
# block (the scales broadcast against the view). No Python loop runs over channels or groups.


class Blocks(NamedTuple):
    """How a tensor of ``shape`` splits into blocks (see ``block_shapes``)."""

    view_shape: tuple[int, ...]  # the tensor viewed so that every block has dims of its own
    param_shape: tuple[int, ...]  # the scales' shape that broadcasts against view_shape
    n_blocks: tuple[int, ...]  # blocks per dimension: the shape of the returned scales


def block_shapes(shape: Sequence[int], block_size: Sequence[int]) -> Blocks:
    """Split ``shape`` into blocks of ``block_size``; returns ``Blocks(view_shape, param_shape,
    n_blocks)``.

    A dimension of size ``n`` with block ``b`` (``b`` must divide ``n``) becomes, in the view:
    ``n`` with one parameter for all of it when ``b == n``; ``n`` with one parameter each when
    ``b == 1``; and ``(n // b, b)`` with one parameter per ``b`` otherwise. ``n_blocks[d]`` is
    ``n // b``: one scale per block, and the shape ``choose_qparams_affine`` returns.

    The course's test tensor, 3x3:

    >>> block_shapes((3, 3), (3, 3))         # per tensor
    Blocks(view_shape=(3, 3), param_shape=(1, 1), n_blocks=(1, 1))
    >>> block_shapes((3, 3), (1, 3))         # per channel along dim 0: one scale per row
    Blocks(view_shape=(3, 3), param_shape=(3, 1), n_blocks=(3, 1))
    >>> block_shapes((3, 3), (3, 1))         # per channel along dim 1: one scale per column
    Blocks(view_shape=(3, 3), param_shape=(1, 3), n_blocks=(1, 3))
    >>> block_shapes((6, 6), (1, 3))         # per group of 3 along the last dim
    Blocks(view_shape=(6, 2, 3), param_shape=(6, 2, 1), n_blocks=(6, 2))
    """
    shape, block_size = checks.block_size(shape, block_size)
    view, params = [], []
    for n, b in zip(shape, block_size, strict=True):
        if b == n:
            view.append(n)
            params.append(1)
        elif b == 1:
            view.append(n)
            params.append(n)
        else:
            view += [n // b, b]
            params += [n // b, 1]
    n_blocks = tuple(n // b for n, b in zip(shape, block_size, strict=True))
    return Blocks(tuple(view), tuple(params), n_blocks)


def granularity_block_size(
    shape: Sequence[int],
    granularity: str = "per_tensor",
    dim: int = 0,
    group_size: int | None = None,
) -> tuple[int, ...]:
    """The block size for a named granularity of a tensor of ``shape``.

    ``"per_tensor"``; ``"per_channel"`` along ``dim`` (one scale per index of ``dim``; a 1-D
    tensor gets one scale per element); ``"per_group"``: groups of ``group_size`` consecutive
    elements along the last dimension.

    >>> granularity_block_size((4, 6), "per_channel", dim=0)
    (1, 6)
    >>> granularity_block_size((4, 6), "per_channel", dim=-1)
    (4, 1)
    >>> granularity_block_size((4, 6), "per_group", group_size=3)
    (1, 3)
    """
    shape = tuple(int(n) for n in shape)
    if granularity == "per_tensor":
        return shape
    if granularity == "per_channel":
        dim = checks.channel_dim(dim, shape)
        return tuple(1 if d == dim else n for d, n in enumerate(shape))
    if granularity == "per_group":
        group_size = checks.group_size(group_size, shape)
        return (1,) * (len(shape) - 1) + (group_size,)
    raise checks.unknown_granularity(granularity)


def _range_per_block(view: torch.Tensor, blocks: Blocks) -> tuple[torch.Tensor, torch.Tensor]:
    """The smallest and largest value of every block of a blocked view, float64 tensors of
    ``param_shape``; a ``ValueError`` if any block holds a NaN or an infinity.

    One ``aminmax`` pass for a single block; ``amin`` and ``amax`` otherwise (along a
    dimension, two vectorised passes take about a sixth of the time of one ``aminmax``)."""
    reduce = tuple(d for d, p in enumerate(blocks.param_shape) if p == 1)
    if not reduce:  # every block is one element (per channel of a 1-D tensor): nothing to reduce
        r_min = r_max = view
    elif len(reduce) == view.dim():
        r_min, r_max = (v.reshape(blocks.param_shape) for v in torch.aminmax(view))
    else:
        r_min, r_max = view.amin(dim=reduce, keepdim=True), view.amax(dim=reduce, keepdim=True)
    checks.finite_range(r_min, r_max, "tensor")
    # copy=True: never hand back a view of the caller's (float64) tensor
    return r_min.to(torch.float64, copy=True), r_max.to(torch.float64, copy=True)


def _quantize_blocks(
    r: torch.Tensor,
    blocks: Blocks,
    q_min: int,
    q_max: int,
    dtype: torch.dtype,
    symmetric: bool,
    r_range: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mechanism, for a checked float tensor ``r``: ``(q, scale, zero_point)``, the
    parameters of shape ``n_blocks``. ``r_range`` (see ``choose_qparams_affine``) replaces
    the measured range of every block."""
    view = r.reshape(blocks.view_shape)
    if r_range is None:
        r_min, r_max = _range_per_block(view, blocks)
    else:  # a given range: the values were not measured, so check them here
        checks.finite_min_max(r)
        r_min, r_max = (
            v.reshape(blocks.param_shape) for v in checks.r_range(r_range, blocks.n_blocks)
        )
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric)
    q = quantize_one_liner(view, scale.to(r.dtype), zero_point, q_min, q_max, dtype)
    return q.reshape(r.shape), scale.reshape(blocks.n_blocks), zero_point.reshape(blocks.n_blocks)


def block_range(
    tensor: torch.Tensor, block_size: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The smallest and largest value of every block, as float64 tensors of shape ``n_blocks``.
    Raises a ``ValueError`` if any block holds a NaN or an infinity.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> r_min, r_max = block_range(t, (1, 3))      # per row
    >>> r_min.flatten().tolist(), r_max.flatten().tolist()
    ([-13.5, -184.0, 0.0], [728.5999755859375, 295.5, 684.5999755859375])
    """
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    r_min, r_max = _range_per_block(r.reshape(blocks.view_shape), blocks)
    return r_min.reshape(blocks.n_blocks), r_max.reshape(blocks.n_blocks)


def choose_qparams_affine(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    *,
    symmetric: bool = False,
    r_range: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A scale (float64) and zero point (int64) per block: tensors of shape ``n_blocks``.

    The range of each block is measured (its min and max), unless ``r_range`` gives it: a
    pair ``(r_min, r_max)``, or a single tensor ``absmax`` meaning ``[-absmax, absmax]``, each
    broadcasting to ``n_blocks``. That is where a clipped range (a percentile, an MSE-optimal
    search) plugs in. Then ``qparams_from_range`` turns ranges into parameters.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> s, z = choose_qparams_affine(t, (1, 3), symmetric=True)   # per row
    >>> s.flatten().tolist(), z.flatten().tolist()
    ([5.737007681779035, 2.326771653543307, 5.39055098886565], [0, 0, 0])
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    if r_range is None:
        r_min, r_max = _range_per_block(r.reshape(blocks.view_shape), blocks)
    else:
        r_min, r_max = checks.r_range(r_range, blocks.n_blocks)
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric)
    return scale.reshape(blocks.n_blocks), zero_point.reshape(blocks.n_blocks)


def quantize_affine(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor | float,
    zero_point: torch.Tensor | int,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> torch.Tensor:
    """Quantize every block with its own scale and zero point; returns ``dtype``, same shape.

    ``scale`` and ``zero_point`` have shape ``n_blocks`` (what ``choose_qparams_affine``
    returns), or are one number (or 1-element tensor) that every block shares.

    >>> t = torch.tensor([[1.0, -2.0], [30.0, 40.0]])
    >>> s, z = choose_qparams_affine(t, (1, 2), symmetric=True)
    >>> quantize_affine(t, (1, 2), s, z)
    tensor([[  64, -127],
            [  95,  127]], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.finite_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    view_shape = torch.Size(blocks.view_shape)
    scale = checks.block_param(scale, blocks.param_shape, blocks.n_blocks, "scale")
    zero_point = checks.block_param(zero_point, blocks.param_shape, blocks.n_blocks, "zero_point")
    scale = checks.scale(scale, view_shape, r.dtype)
    zero_point = checks.zero_point(zero_point, view_shape, q_min, q_max)
    view = r.reshape(view_shape)
    return quantize_one_liner(view, scale, zero_point, q_min, q_max, dtype).reshape(r.shape)


def quantize_blockwise(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    *,
    symmetric: bool = False,
    r_range: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``choose_qparams_affine`` then ``quantize_affine``: returns ``(q, scale, zero_point)``,
    the parameters of shape ``n_blocks``. Every course-named quantizer is this with a block.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> q, s, z = quantize_blockwise(t, (3, 3))          # per tensor: linear_quantization
    >>> s.item(), z.item()
    (3.578823433670343, -77)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    return _quantize_blocks(r, blocks, q_min, q_max, dtype, symmetric, r_range)


def _dequantize_blocks(
    q: torch.Tensor, blocks: Blocks, scale: Any, zero_point: Any, output_dtype: torch.dtype
) -> torch.Tensor:
    """``dequantize_affine`` for checked arguments: parameters of ``n_blocks`` elements."""
    scale = scale.reshape(blocks.param_shape).to(torch.float32)
    zero_point = zero_point.reshape(blocks.param_shape)
    view = q.reshape(blocks.view_shape)
    return dequantize_one_liner(view, scale, zero_point, output_dtype).reshape(q.shape)


def dequantize_affine(
    quantized_tensor: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor | float,
    zero_point: torch.Tensor | int,
    output_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``r' = s * (q - z)`` with every block's own scale and zero point, computed in float32
    and cast to ``output_dtype`` at the end.

    >>> q = torch.tensor([[64, -127], [95, 127]], dtype=torch.int8)
    >>> dequantize_affine(q, (1, 2), torch.tensor([[1 / 63.5], [40 / 127]]), 0)
    tensor([[ 1.0079, -2.0000],
            [29.9213, 40.0000]])
    """
    q = checks.quantized(quantized_tensor)
    output_dtype = checks.float_dtype(output_dtype, "output_dtype must be a float dtype")
    blocks = block_shapes(q.shape, block_size)
    view_shape = torch.Size(blocks.view_shape)
    scale = checks.block_param(scale, blocks.param_shape, blocks.n_blocks, "scale")
    zero_point = checks.block_param(zero_point, blocks.param_shape, blocks.n_blocks, "zero_point")
    scale = checks.scale(scale, view_shape, torch.float32)
    zero_point = checks.zero_point(zero_point, view_shape)
    view = q.reshape(view_shape)
    return dequantize_one_liner(view, scale, zero_point, output_dtype).reshape(q.shape)


def per_element(
    param: torch.Tensor, shape: Sequence[int], block_size: Sequence[int]
) -> torch.Tensor:
    """A per-block parameter (shape ``n_blocks``) repeated for every element of its block:
    a tensor of ``shape``, e.g. to show each element's scale in a heatmap.

    >>> per_element(torch.tensor([[1.0], [2.0]]), (2, 3), (1, 3))
    tensor([[1., 1., 1.],
            [2., 2., 2.]])
    """
    shape = tuple(shape)
    if not shape:
        return param.reshape(())
    blocks = block_shapes(shape, block_size)
    return param.reshape(blocks.param_shape).expand(blocks.view_shape).reshape(shape)


# The course's functions: a block size each ----------------------------------------------------


def linear_q_symmetric_per_channel(
    r_tensor: torch.Tensor,
    dim: int,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantization with one scale per channel along ``dim``; returns ``(q, scale)``.

    ``scale`` is a float32 tensor shaped to broadcast against ``r_tensor``: ``(rows, 1)`` for
    ``dim=0`` of a 2-D tensor (``amax`` along dim 1, one per row), ``(1, columns)`` for
    ``dim=1``, so ``linear_dequantization(q, scale, 0)`` dequantizes it. A 1-D tensor gets one
    scale per element. The zero point is 0 (for an unsigned dtype, the midpoint: see
    ``get_q_scale_symmetric``).

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> q, s = linear_q_symmetric_per_channel(t, dim=0)
    >>> q
    tensor([[ 33,  -2, 127],
            [ 40, 127, -79],
            [  0, 127,  46]], dtype=torch.int8)
    >>> s
    tensor([[5.7370],
            [2.3268],
            [5.3906]])
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(r_tensor, "r_tensor")
    blocks = block_shapes(r.shape, granularity_block_size(r.shape, "per_channel", dim=dim))
    q, scale, _ = _quantize_blocks(r, blocks, q_min, q_max, dtype, symmetric=True)
    return q, scale.to(torch.float32)


def linear_q_symmetric_per_group(
    tensor: torch.Tensor,
    group_size: int,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantization with one scale per group of ``group_size`` consecutive elements
    along the last dimension; returns ``(q, scale)``.

    ``scale`` is float32 of shape ``(numel // group_size, 1)``, as in the course: one row per
    group, in the tensor's order. It does not broadcast against the tensor, so dequantize with
    ``linear_dequantization_per_group(q, scale, group_size)``.

    >>> q, s = linear_q_symmetric_per_group(torch.tensor([[1.0, 2.0, -8.0, 4.0]]), group_size=2)
    >>> q, s.shape
    (tensor([[  64,  127, -127,   64]], dtype=torch.int8), torch.Size([2, 1]))
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    block_size = granularity_block_size(r.shape, "per_group", group_size=group_size)
    blocks = block_shapes(r.shape, block_size)
    q, scale, _ = _quantize_blocks(r, blocks, q_min, q_max, dtype, symmetric=True)
    return q, scale.to(torch.float32).reshape(-1, 1)


def linear_dequantization_per_group(
    quantized_tensor: torch.Tensor,
    scale: torch.Tensor,
    group_size: int,
    zero_point: int | torch.Tensor = 0,
) -> torch.Tensor:
    """Dequantize per group: ``r' = s_g * (q - z)`` with each group's scale ``s_g``.

    ``scale`` has shape ``(numel // group_size, 1)`` as ``linear_q_symmetric_per_group``
    returns it; the result has the quantized tensor's shape (float32). ``zero_point`` is 0
    for symmetric mode (a number, or one per group like ``scale``).

    >>> q = torch.tensor([[64, 127, -127, 64]], dtype=torch.int8)
    >>> linear_dequantization_per_group(q, torch.tensor([[2 / 127], [8 / 127]]), 2)
    tensor([[ 1.0079,  2.0000, -8.0000,  4.0315]])
    """
    q = checks.quantized(quantized_tensor)
    block_size = granularity_block_size(q.shape, "per_group", group_size=group_size)
    blocks = block_shapes(q.shape, block_size)
    scale = checks.per_group_scale(scale, math.prod(blocks.n_blocks), group_size)
    if isinstance(zero_point, torch.Tensor) and zero_point.numel() > 1:
        zero_point = zero_point.reshape(blocks.n_blocks)
    return dequantize_affine(q, block_size, scale.reshape(blocks.n_blocks), zero_point)


# What granularity costs (lesson 05) ------------------------------------------------------------


def bits_per_weight(
    shape: Sequence[int],
    block_size: Sequence[int],
    n_bits: int = 8,
    scale_bits: int = 32,
    zero_point_bits: int = 0,
) -> float:
    """The storage cost of one element, its share of the scales and zero points included::

        bits per weight = n_bits + (scale_bits + zero_point_bits) * blocks / elements

    Every block stores one scale (``scale_bits``: 32 for float32, 16 for float16 or bfloat16)
    and, in asymmetric mode, one zero point (``zero_point_bits``, e.g. 8; symmetric mode
    stores none, so 0). Per group of ``g`` along the rows this is ``n_bits + scale_bits / g``.

    >>> bits_per_weight((256, 256), (1, 32), n_bits=4)      # groups of 32, float32 scales
    5.0
    >>> bits_per_weight((256, 256), (1, 256), scale_bits=16)  # one float16 scale per row
    8.0625
    >>> bits_per_weight((3, 3), (1, 3))                     # per row of a tiny tensor
    18.666666666666664
    """
    shape = checks.bits_per_weight_args(n_bits, scale_bits, zero_point_bits, shape)
    blocks = math.prod(block_shapes(shape, block_size).n_blocks)
    return n_bits + (scale_bits + zero_point_bits) * blocks / math.prod(shape)


class TradeoffPoint(NamedTuple):
    """One measured quantization of a tensor, a point of ``plot_granularity_tradeoff``."""

    label: str  # the granularity, e.g. "per group of 32"
    n_bits: int  # bits of each quantized value
    bits_per_weight: float  # n_bits plus the scales' share (see ``bits_per_weight``)
    mse: float  # quantization_error of the round trip, > 0


def plot_granularity_tradeoff(points: Sequence[TradeoffPoint], title: str | None = None) -> Figure:
    """The error of each granularity, and the error against what it costs to store.

    ``points`` are ``TradeoffPoint(label, n_bits, bits_per_weight, mse)`` tuples, one per
    granularity and bit width. Left panel: the MSE of every granularity, numbered in the order
    of the points, one line per bit width. Right panel: the same MSE against bits per weight
    (scales included), each point marked with its granularity's number; a point further down
    and to the left is a better deal. Both error axes are logarithmic: every major grid line
    down is an error 10x smaller.
    """
    points = [TradeoffPoint(*point) for point in points]
    checks.tradeoff_points(points)
    return plots.draw_granularity_tradeoff(points, title)


# ---------------------------------------------------------------------------------------------
# 10. Weights and activations (course lesson L3-E)
# ---------------------------------------------------------------------------------------------


def quantized_linear_W8A32_without_bias(
    input: torch.Tensor,
    q_w: torch.Tensor,
    s_w: float | torch.Tensor,
    z_w: int | torch.Tensor,
) -> torch.Tensor:
    """A linear layer (no bias) with 8-bit weights and float activations::

        y = input @ W'.T        with  W' = s_w * (q_w - z_w)     (dequantized first, in float)

    ``q_w`` is the (out_features, in_features) integer weight; ``s_w`` and ``z_w`` are numbers
    (per tensor) or tensors that broadcast against it, e.g. ``(out_features, 1)`` per output
    channel. Dequantizing the weight *before* ``F.linear`` is what makes this right for any
    zero point and per-channel scales: ``q_w - z_w`` in int8 would wrap, ``F.linear`` refuses an
    int8 weight with a float input, and multiplying the output by an ``(out, 1)`` scale after
    ``F.linear`` would broadcast a ``(batch, out)`` result to the wrong shape. The result has
    ``input``'s dtype and shape ``(..., out_features)``.

    >>> q_w = torch.tensor([[-127, 64], [0, 127]], dtype=torch.int8)
    >>> quantized_linear_W8A32_without_bias(torch.tensor([[1.0, 2.0]]), q_w, 2 / 127, 0)
    tensor([[0.0157, 4.0000]])
    """
    q = checks.weight_2d(checks.quantized(q_w, "q_w"))
    x = checks.linear_input(input, q.shape[1])
    s_w = checks.scale(s_w, q.shape, torch.float32)
    z_w = checks.zero_point(z_w, q.shape)
    weight = dequantize_one_liner(q, s_w, z_w)
    return F.linear(x.to(torch.float32), weight).to(x.dtype)


def quantized_linear_W8A8_without_bias(
    q_x: torch.Tensor,
    s_x: float | torch.Tensor,
    z_x: int | torch.Tensor,
    q_w: torch.Tensor,
    s_w: float | torch.Tensor,
    z_w: int | torch.Tensor,
) -> torch.Tensor:
    """A linear layer (no bias) whose weights *and* activations are integers, with the matrix
    product done in integer arithmetic::

        y[b, o] = s_x[b] * s_w[o] * sum_i (q_x[b, i] - z_x[b]) * (q_w[o, i] - z_w[o])

    The sum runs over ``in_features`` in int64, exact for any layer: in int32 it would wrap
    around, since an int8 ``q - z`` reaches 255 and 40000 products of 255 * 255 pass 2**31
    (an int16 activation passes it within 500). The scales multiply only once per output.
    That factoring needs one activation scale per tensor or per row (token), shape
    ``(batch, 1)``, and one weight scale per tensor or per output channel, shape ``(out, 1)``:
    a scale that varied along ``in_features`` could not be pulled out of the sum. ``q_x`` is
    (batch, in_features), ``q_w`` is (out_features, in_features); the result is float32
    (batch, out_features).

    >>> q_x = torch.tensor([[127, 0]], dtype=torch.int8)
    >>> q_w = torch.tensor([[-127, 64], [0, 127]], dtype=torch.int8)
    >>> quantized_linear_W8A8_without_bias(q_x, 1 / 127, 0, q_w, 2 / 127, 0)
    tensor([[-2.,  0.]])
    """
    qx, qw = checks.quantized(q_x, "q_x"), checks.quantized(q_w, "q_w")
    checks.linear_pair(qx, qw)
    params = {}
    for name, value, rows in (("s_x", s_x, qx.shape[0]), ("s_w", s_w, qw.shape[0])):
        checks.scale(value, torch.Size([rows, 1]), torch.float32)
        exact = value.detach() if isinstance(value, torch.Tensor) else value  # float64 below
        params[name] = torch.as_tensor(exact, dtype=torch.float64).reshape(-1, 1)
    for name, value, rows in (("z_x", z_x, qx.shape[0]), ("z_w", z_w, qw.shape[0])):
        checked = checks.zero_point(value, torch.Size([rows, 1]))
        params[name] = torch.as_tensor(checked, dtype=torch.int64).reshape(-1, 1)
    x_int = qx.to(torch.int64) - params["z_x"]
    w_int = qw.to(torch.int64) - params["z_w"]
    accumulated = x_int @ w_int.T  # int64: exact
    return (accumulated.double() * params["s_x"] * params["s_w"].T).to(torch.float32)


def _sqnr_per_row(r: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """``sqnr_db_per_row`` for checked tensors."""
    signal = r.double().square().mean(dim=-1)
    noise = (r2.double() - r.double()).square().mean(dim=-1)
    sqnr = 10.0 * torch.log10(signal / noise)
    sqnr[noise == 0] = math.inf
    sqnr[(noise > 0) & (signal == 0)] = -math.inf
    return sqnr


def sqnr_db_per_row(reference: torch.Tensor, approximation: torch.Tensor) -> torch.Tensor:
    """The SQNR of every row (every token of a batch) in decibels: a float64 tensor with one
    value per row, the error measured along the last dimension::

        sqnr[b] = 10 * log10( mean_o(y[b, o] ** 2) / mean_o((y'[b, o] - y[b, o]) ** 2) )

    ``sqnr_db`` gives one number for a whole batch, and that number is dominated by the rows
    with the largest values: a batch whose large tokens come out well can hide a small token
    that is lost completely. As in ``sqnr_db``, a row that comes back exactly gives ``inf``,
    an all-zero row that does not gives ``-inf``.

    >>> y = torch.tensor([[10.0, 0.0], [0.1, 0.0]])
    >>> sqnr_db_per_row(y, torch.tensor([[10.0, 1.0], [0.2, 0.0]]))
    tensor([20.,  0.], dtype=torch.float64)
    """
    r, r2 = checks.pair(reference, approximation, ("tensor", "dequantized_tensor"))
    if r.dim() == 0:
        raise ValueError("a 0-dim tensor has no rows: use sqnr_db for a single number.")
    return _sqnr_per_row(r, r2)


def plot_output_sqnr(
    reference: torch.Tensor, outputs: dict[str, torch.Tensor], title: str | None = None
) -> Figure:
    """How close several quantized layers come to the float one, overall and token by token.

    ``reference`` is the float output, shape (tokens, out_features); ``outputs`` maps a label
    (``"W8A8, activations per token"``) to an output of the same shape. Left: one bar per
    output, its SQNR over the whole batch (``sqnr_db``). Right: the SQNR of every token
    (``sqnr_db_per_row``) against the size of that token's float output (its RMS, log scale).

    What to see: higher is better, 6 dB is about one bit. A line that falls to the left means
    small tokens come out worse than large ones, which the single number on the left hides.
    """
    y = checks.real_tensor(reference, "reference")
    checks.output_sqnr_args(y, outputs)
    overall, per_token = {}, {}
    for label, out in outputs.items():
        r, r2 = checks.pair(y, out)
        overall[label], per_token[label] = _sqnr(r, r2), _sqnr_per_row(r, r2)
    rms = y.double().square().mean(dim=-1).sqrt()
    return plots.draw_output_sqnr(overall, per_token, rms, title)


# ---------------------------------------------------------------------------------------------
# 11. An 8-bit linear layer for any model (course lessons L4-A and L4-B)
# ---------------------------------------------------------------------------------------------
# W8A16: weights stored as int8 with one float scale per output row, activations left in the
# model's float dtype (float32, float16 or bfloat16). The weight takes a quarter of float32's
# memory; it is dequantized on the fly in forward.


def w8_a16_forward(
    weight: torch.Tensor,
    input: torch.Tensor,
    scales: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The forward pass of a W8A16 linear layer::

        y[..., o] = scales[o] * sum_i input[..., i] * weight[o, i]  +  bias[o]

    ``weight`` is int8 (out_features, in_features) and ``scales`` has shape (out_features,):
    one scale per output row, so it can multiply the output's last dimension after the
    product (it factors out of each output's sum). That is why its shape matters: an
    ``(out, 1)`` scale would broadcast a ``(batch, out)`` output to ``(out, out)`` silently, so
    anything but ``(out,)`` is an error here. The product runs in float32 (float64 for a
    float64 input; int8 weights convert exactly) and the result is cast to ``input``'s
    dtype: a float16 input cannot overflow in ``input @ weight.T`` before the scale shrinks
    it. ``bias`` has shape (out,) or (1, out).

    >>> w = torch.tensor([[127, -64], [0, 127]], dtype=torch.int8)
    >>> w8_a16_forward(w, torch.tensor([[1.0, 2.0]]), torch.tensor([0.01, 0.02]))
    tensor([[-0.0100,  5.0800]])
    """
    q = checks.int8_weight(weight)
    x = checks.linear_input(input, q.shape[1])
    scales = checks.row_scales(scales, q.shape[0])
    bias = checks.bias(bias, q.shape[0])
    compute = torch.promote_types(x.dtype, torch.float32)  # float64 stays float64
    if q.numel() > fast.CHUNK_ELEMENTS:  # large: convert a block of rows at a time
        product = fast.int8_linear(x.to(compute), q, compute)
    else:
        product = F.linear(x.to(compute), q.to(compute))
    output = product * scales.to(compute)
    if bias is not None:
        output = output + bias.reshape(-1).to(compute)
    return output.to(x.dtype)


def _apply_keeping_float32_scales(module: nn.Module, fn, recurse: bool) -> nn.Module:
    """``nn.Module._apply`` (what ``.to()``, ``.half()``, ``.to_empty()`` run), except that the
    module's float32 ``scales`` buffer only follows a change of device, never of dtype."""
    scales = module.scales
    nn.Module._apply(module, fn, recurse)
    if module.scales.dtype != scales.dtype:  # a cast: keep float32, take only the device
        device = module.scales.device
        module.scales = (
            torch.empty_like(scales, device=device) if scales.is_meta else scales.to(device)
        )
    return module


class W8A16LinearLayer(nn.Module):
    """A drop-in replacement for ``nn.Linear`` with int8 weights and float activations.

    Buffers (not parameters: an int8 tensor cannot require a gradient, so
    ``nn.Parameter(int8_tensor)`` raises; and nothing here is trained):

    * ``int8_weights``: int8, (out_features, in_features);
    * ``scales``: float32, (out_features,), one per output row;
    * ``bias``: ``dtype``, (1, out_features), or ``None`` when ``bias=False``.

    The scales are kept in float32 whatever ``dtype`` is. The course keeps them in the layer's
    dtype; a bfloat16 scale is rounded to 8 significant bits, and a value equal to the row's
    largest can then divide to more than 127.5 and round to 128, which an int8 cast wraps to
    -128 (the bfloat16 row [0.6626, 0.1] did). Here the scale is float32 and ``quantize``
    clamps before it casts, so that cannot happen; the cost is 2 more bytes per row than
    bfloat16 scales. ``forward`` returns the input's dtype.

    >>> layer = W8A16LinearLayer(2, 2, bias=False)
    >>> layer.quantize(torch.tensor([[1.0, -0.5], [0.0, 2.0]]))
    >>> layer.int8_weights
    tensor([[127, -64],
            [  0, 127]], dtype=torch.int8)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.dtype = checks.float_dtype(dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.register_buffer(
            "int8_weights", torch.zeros((out_features, in_features), dtype=torch.int8)
        )
        self.register_buffer("scales", torch.ones(out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype) if bias else None)

    def quantize(self, weights: torch.Tensor) -> None:
        """Quantize float ``weights`` (out_features, in_features) into this layer's buffers:
        symmetric, per output row, ``scale = max|row| / 127`` (section 9's mechanism), clamped
        to [-128, 127] before the int8 cast."""
        w = checks.layer_weights(weights, self.out_features, self.in_features).float()
        rows = block_shapes(w.shape, (1, self.in_features))  # one block per output row
        q, scale, _ = _quantize_blocks(w, rows, -128, 127, torch.int8, symmetric=True)
        self.int8_weights.copy_(q)
        self.scales.copy_(scale.reshape(-1))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``w8_a16_forward`` with this layer's buffers; returns ``input``'s dtype."""
        return w8_a16_forward(self.int8_weights, input, self.scales, self.bias)

    def _apply(self, fn, recurse=True):
        """``model.to(torch.bfloat16)`` and ``model.half()`` cast every float buffer; keep the
        scales in float32 (see above) and only let them move to the new device."""
        return _apply_keeping_float32_scales(self, fn, recurse)

    def extra_repr(self) -> str:
        """What ``print(model)`` shows inside ``W8A16LinearLayer(...)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, dtype={dtype_name(self.dtype)}"
        )


def _is_excluded(name: str, module_name_to_exclude: Sequence[str]) -> bool:
    """True if the dotted ``name`` or one of its ancestors is excluded by its own name or by
    its dotted path (the rule of ``replace_linear_with_target``)."""
    parts = name.split(".")
    return any(
        part in module_name_to_exclude or ".".join(parts[: i + 1]) in module_name_to_exclude
        for i, part in enumerate(parts)
    )


def _replace_linears(
    module: nn.Module,
    target_class: type[nn.Module],
    module_name_to_exclude: Sequence[str],
    quantize: bool,
    prefix: str = "",
    replaced: dict[int, nn.Module] | None = None,
) -> None:
    """Walk ``module``'s children and swap every ``nn.Linear`` not excluded by name. An
    excluded child is left alone with everything inside it; a new layer is built on the device
    of the one it replaces (``meta`` in a skeleton); a layer that appears under several names
    becomes one new layer under all of them (``replaced`` remembers them)."""
    replaced = {} if replaced is None else replaced
    for name, child in list(module._modules.items()):  # every name, even of a shared child
        full_name = f"{prefix}{name}"
        if child is None or _is_excluded(full_name, module_name_to_exclude):
            continue
        if id(child) in replaced:  # one layer registered under two names: replace it once
            setattr(module, name, replaced[id(child)])
        elif isinstance(child, nn.Linear):
            with torch.device(child.weight.device):
                new = target_class(
                    child.in_features,
                    child.out_features,
                    bias=child.bias is not None,
                    dtype=child.weight.dtype,
                )
            if quantize:
                new.quantize(child.weight.detach())
            if child.bias is not None and not child.bias.is_meta:
                new.bias.copy_(child.bias.detach().reshape(new.bias.shape))
            replaced[id(child)] = new
            setattr(module, name, new)
        else:
            _replace_linears(
                child, target_class, module_name_to_exclude, quantize, full_name + ".", replaced
            )


def replace_linear_with_target(
    module: nn.Module,
    target_class: type[nn.Module],
    module_name_to_exclude: Sequence[str] = (),
) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (recursively, in place) by an empty
    ``target_class(in_features, out_features, bias=..., dtype=...)``, keeping its bias and dtype.

    A module whose name (``"lm_head"``) or dotted path (``"encoder.layer.0.output"``) is in
    ``module_name_to_exclude`` stays as it is, with every linear layer inside it. Returns
    ``module``. Use this to build a skeleton to load quantized weights into (the new layers
    are built on the device of the ones they replace: ``meta`` in a skeleton);
    ``replace_linear_with_target_and_quantize`` also quantizes the existing weights.
    """
    names = checks.replace_args(module, target_class, module_name_to_exclude)
    _replace_linears(module, target_class, names, quantize=False)
    return module


def replace_linear_with_target_and_quantize(
    module: nn.Module,
    target_class: type[nn.Module],
    module_name_to_exclude: Sequence[str] = (),
) -> nn.Module:
    """Like ``replace_linear_with_target``, and each new layer quantizes the old layer's
    weights (``target_class.quantize``). Returns ``module``, changed in place."""
    names = checks.replace_args(module, target_class, module_name_to_exclude)
    if not hasattr(target_class, "quantize"):
        raise TypeError(f"{target_class.__name__} has no quantize(weights) method.")
    _replace_linears(module, target_class, names, quantize=True)
    return module


def layer_names(module: nn.Module, layer_class: type | tuple[type, ...] = nn.Linear) -> list[str]:
    """The dotted names of every module inside ``module`` that is a ``layer_class``
    (``isinstance``, so subclasses count), in the order of ``module.named_modules()``.

    Ask it after a replacement to see what happened: ``layer_names(model, W8A16LinearLayer)``
    lists what was replaced, ``layer_names(model)`` what is still an ``nn.Linear``. A module
    registered under two names is listed once, under the first.

    >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))
    >>> layer_names(model)
    ['0', '2.0']
    >>> layer_names(model, nn.ReLU)
    ['1']
    """
    checks.module(module)
    classes = checks.layer_classes(layer_class)
    return [name for name, child in module.named_modules() if isinstance(child, classes)]


# Accuracy of a quantized model (lesson 10) ----------------------------------------------------
# A 4-bit or 2-bit weight needs no 4-bit kernel to be *measured*: quantize it, dequantize it at
# once and put the float result back into the model. This "fake quantization" leaves the model
# computing in float, with exactly the values a low-bit weight could hold, so its accuracy is
# the accuracy a real low-bit kernel would give (up to float rounding in the matrix products).


def fake_quantize(
    weight: torch.Tensor,
    n_bits: int = 8,
    granularity: str = "per_channel",
    group_size: int | None = None,
    absmax: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """``weight`` after a symmetric round trip at ``n_bits``: quantized, then dequantized::

        w' = s * clamp(round(w / s), -q_max, q_max)      s = max|w| / q_max, per block

    with ``q_max = 2**(n_bits - 1) - 1``. ``granularity`` is ``"per_tensor"``,
    ``"per_channel"`` (one scale per output row: dim 0 of an ``(out_features, in_features)``
    weight) or ``"per_group"`` (``group_size`` consecutive weights of a row). The result has
    ``weight``'s shape and float dtype.

    ``absmax`` replaces ``max|w|`` by a given range per block (shape ``n_blocks``, or one
    number): a weight beyond it is clipped to ``+-q_max``. Lesson 13 computes such ranges
    (percentile, MSE-optimal) with ``clipping_absmax`` and passes them in.

    At 2 bits the levels are -1, 0 and 1 times ``s = max|w|``: every weight becomes ``-s``,
    ``0`` or ``s``, and each magnitude below half its block's largest becomes 0.

    >>> w = torch.tensor([[0.9, -0.2, 0.5, 0.1], [0.03, -0.01, 0.02, 0.0]])
    >>> fake_quantize(w, n_bits=2, granularity="per_tensor")
    tensor([[0.9000, 0.0000, 0.9000, 0.0000],
            [0.0000, 0.0000, 0.0000, 0.0000]])
    >>> fake_quantize(w, n_bits=2, granularity="per_channel")
    tensor([[0.9000, 0.0000, 0.9000, 0.0000],
            [0.0300, 0.0000, 0.0300, 0.0000]])
    """
    _, q_max = get_q_range(torch.int8, n_bits)
    w = checks.real_tensor(weight, "weight")
    if granularity == "per_group" and w.dim() == 0:
        raise ValueError("a 0-dim weight has no rows to split into groups.")
    blocks = block_shapes(w.shape, granularity_block_size(w.shape, granularity, 0, group_size))
    if absmax is not None:
        absmax = checks.absmax(absmax, blocks.n_blocks)
    output_dtype = weight.dtype if weight.is_floating_point() else torch.float32
    q, scale, zero_point = _quantize_blocks(
        w.float(), blocks, -q_max, q_max, torch.int8, symmetric=True, r_range=absmax
    )
    return _dequantize_blocks(q, blocks, scale, zero_point, output_dtype)


def fake_quantize_linears(
    model: nn.Module,
    n_bits: int = 8,
    granularity: str = "per_channel",
    group_size: int | None = None,
    layers: Sequence[str] | None = None,
    absmax: Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor] | None = None,
) -> nn.Module:
    """A **copy** of ``model`` whose ``nn.Linear`` weights are replaced by ``fake_quantize(
    weight, n_bits, granularity, group_size)``; biases stay as they are.

    ``layers`` names the linear layers to quantize (dotted names, as ``layer_names(model)``
    lists them); ``None`` means all of them. ``model`` itself is not changed, so the float
    model and the quantized copy can be compared side by side. With ``"per_group"``,
    ``group_size`` must divide every chosen layer's ``in_features``. ``absmax``, if given, is
    a function ``absmax(weight, block_size)`` that returns each block's range for
    ``fake_quantize`` (lesson 13 passes ``clipping_absmax`` this way).

    >>> model = nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = model[0].weight.copy_(torch.tensor([[0.9, -0.2, 0.5, 0.1], [0.3, 0.0, 0.1, 0.2]]))
    >>> fake_quantize_linears(model, n_bits=2, granularity="per_tensor", layers=["0"])[0].weight
    Parameter containing:
    tensor([[0.9000, 0.0000, 0.9000, 0.0000],
            [0.0000, 0.0000, 0.0000, 0.0000]], requires_grad=True)
    >>> model[0].weight[1]      # the original is untouched
    tensor([0.3000, 0.0000, 0.1000, 0.2000], grad_fn=<SelectBackward0>)
    """
    checks.module(model, "model")
    chosen = checks.chosen_layers(layers, layer_names(model))
    quantized = copy.deepcopy(model)
    for name in chosen:
        layer = quantized.get_submodule(name)
        w = layer.weight.detach()
        ranges = None
        if absmax is not None:
            ranges = absmax(w, granularity_block_size(w.shape, granularity, 0, group_size))
        with torch.no_grad():
            layer.weight.copy_(fake_quantize(w, n_bits, granularity, group_size, ranges))
    return quantized


def linears_bits_per_weight(
    model: nn.Module,
    n_bits: int = 8,
    granularity: str = "per_channel",
    group_size: int | None = None,
    scale_bits: int = 32,
) -> float:
    """What one weight of ``model``'s ``nn.Linear`` layers costs on average, in bits, with
    ``n_bits`` values and one ``scale_bits`` scale per block (symmetric: no zero point)::

        sum over layers of  bits_per_weight(layer) * weights in layer  /  all weights

    >>> model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> linears_bits_per_weight(model, 4, "per_group", group_size=16)     # 4 + 32 / 16
    6.0
    >>> round(linears_bits_per_weight(model, 4, "per_channel"), 4)        # 4 + 32 / in
    4.5676
    """
    checks.module(model, "model")
    weights = [model.get_submodule(name).weight for name in layer_names(model)]
    if not weights:
        raise ValueError("model has no nn.Linear layer to count.")
    total = 0.0
    for w in weights:
        block = granularity_block_size(w.shape, granularity, dim=0, group_size=group_size)
        total += bits_per_weight(w.shape, block, n_bits, scale_bits) * w.numel()
    return total / sum(w.numel() for w in weights)


def plot_accuracy_vs_bits(
    correct: dict[str, dict[int, int]],
    n_test: int,
    float_correct: int | None = None,
    n_classes: int | None = None,
    title: str | None = None,
) -> Figure:
    """Test accuracy against the weights' bit width, one line per granularity.

    ``correct`` maps a label (``"per channel"``) to ``{n_bits: images classified right}``;
    ``n_test`` is the number of test images. A dashed line marks the float model
    (``float_correct``), a dotted one the accuracy of guessing (``1 / n_classes``). The x axis
    runs from the most bits on the left to the fewest on the right, the way quantization
    goes.
    """
    checks.accuracy_counts(correct, n_test)
    return plots.draw_accuracy_vs_bits(correct, n_test, float_correct, n_classes, title)


# ---------------------------------------------------------------------------------------------
# 12. Weight packing: several low-bit values in one byte (course lesson L5)
# ---------------------------------------------------------------------------------------------
# A 4-bit or 2-bit value kept in an int8 tensor wastes the rest of its byte. Packing puts
# 8 // bits values into every byte (bits in PACK_BITS: 1, 2, 4 or 8), the first value in the
# lowest bits (the course's order):
#
#     [1, 0, 3, 2] at 2 bits  ->  0b10_11_00_01 = 177     value 0 in bits 0-1, value 3 in bits 6-7
#
# Packing works on unsigned values 0 .. 2**bits - 1. A signed quantized value (int4: -8..7) is
# stored in offset binary first, q - q_min (0..15), and shifted back after unpacking. All of
# it is vectorised: the only Python loop runs over the 8 // bits positions inside a byte, never
# over the elements.


def pack_weights(uint8tensor: torch.Tensor, bits: int, pad: bool = False) -> torch.Tensor:
    """Pack ``8 // bits`` values of ``bits`` bits into every byte, along the last dimension.

    ``uint8tensor`` holds whole numbers from 0 to ``2**bits - 1``. A tensor of shape
    ``(..., n)`` becomes a uint8 tensor of shape ``(..., n * bits / 8)``: every ``k = 8 // bits``
    consecutive values share one byte, the first one in the lowest bits::

        byte = v[0]  |  v[1] << bits  |  v[2] << 2 * bits  |  ...  |  v[k - 1] << (k - 1) * bits

    (``<<`` shifts a value up, ``|`` is bitwise or: the values occupy different bits.)
    ``n`` must be a multiple of ``k``; with ``pad=True`` the last dimension is filled up with
    zeros to the next multiple instead, and ``unpack_weights(packed, bits, shape=...)`` with the
    original shape removes them again. ``bits=8`` returns a copy. Raises a ``ValueError`` for a
    value that does not fit in ``bits`` and a ``TypeError`` for anything but uint8 (signed
    levels: ``to_offset_binary`` first).

    >>> pack_weights(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    tensor([177], dtype=torch.uint8)
    >>> pack_weights(torch.tensor([[1, 2, 3, 4], [15, 0, 0, 15]], dtype=torch.uint8), 4)
    tensor([[ 33,  67],
            [ 15, 240]], dtype=torch.uint8)
    """
    bits = checks.pack_bits(bits)
    values = checks.uint8(uint8tensor, "uint8tensor", packing=True)
    checks.values_fit(values, bits)
    per_byte = 8 // bits
    n = values.shape[-1]
    if n % per_byte:
        if not pad:
            raise ValueError(
                f"the last dimension has {n} values, not a multiple of {per_byte} (the "
                f"{bits}-bit values in one byte). Pass pad=True to fill it up with zeros, and "
                "unpack_weights(packed, bits, shape=original_shape) to remove them again."
            )
        values = F.pad(values, (0, per_byte - n % per_byte))
    groups = values.reshape(*values.shape[:-1], values.shape[-1] // per_byte, per_byte)
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8)  # 0, bits, 2 * bits, ...
    packed = groups[..., 0].clone()
    for position in range(1, per_byte):  # a loop over the positions in a byte only
        packed |= groups[..., position] << shifts[position]
    return packed


def unpack_weights(
    uint8tensor: torch.Tensor, bits: int, shape: Sequence[int] | None = None
) -> torch.Tensor:
    """The values ``pack_weights`` packed, as uint8: shape ``(..., m * 8 / bits)`` for a packed
    tensor of shape ``(..., m)``. Value ``i`` of every byte is::

        v[i] = (byte >> i * bits) & (2**bits - 1)

    The shift moves value ``i`` down to the lowest bits, the mask ``2**bits - 1`` (``0b11`` for
    2 bits) keeps only those bits and drops the values above. ``shape``, the shape of the
    tensor before it was packed with ``pad=True``, removes the padding.

    >>> unpack_weights(torch.tensor([177], dtype=torch.uint8), 2)
    tensor([1, 0, 3, 2], dtype=torch.uint8)
    >>> packed = pack_weights(torch.tensor([5, 6, 7], dtype=torch.uint8), 4, pad=True)
    >>> packed
    tensor([101,   7], dtype=torch.uint8)
    >>> unpack_weights(packed, 4), unpack_weights(packed, 4, shape=(3,))
    (tensor([5, 6, 7, 0], dtype=torch.uint8), tensor([5, 6, 7], dtype=torch.uint8))
    """
    bits = checks.pack_bits(bits)
    packed = checks.uint8(uint8tensor, "uint8tensor", packing=False)
    if shape is not None:
        shape = checks.unpacked_shape(shape, packed.shape, bits)
    per_byte, mask = 8 // bits, 2**bits - 1
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8)
    # one tensor per position in a byte (the only loop), then side by side: (..., m, per_byte)
    values = torch.stack([(packed >> shift) & mask for shift in shifts], dim=-1)
    values = values.reshape(*packed.shape[:-1], packed.shape[-1] * per_byte)
    if shape is not None and shape[-1] != values.shape[-1]:
        values = values[..., : shape[-1]].contiguous()
    return values


def pack_weights_loop(uint8tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """``pack_weights`` for a 1-D tensor the slow way, one element at a time in a Python loop,
    as the course writes it: the same bytes, for tests and timings. No checks.

    Every step of the loop touches one element, and each tensor operation on a single element
    costs microseconds of Python and PyTorch bookkeeping; ``pack_weights`` pays that cost once
    per position in a byte instead of once per element.

    >>> pack_weights_loop(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    tensor([177], dtype=torch.uint8)
    """
    per_byte = 8 // bits
    packed = torch.zeros(uint8tensor.shape[0] // per_byte, dtype=torch.uint8)
    for index in range(uint8tensor.shape[0]):
        byte, position = divmod(index, per_byte)
        packed[byte] |= uint8tensor[index] << (bits * position)
    return packed


# Signed levels in offset binary ---------------------------------------------------------------


def to_offset_binary(quantized_tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed ``bits``-bit levels as unsigned ones, ready for ``pack_weights`` (uint8)::

        u = q - q_min = q + 2**(bits - 1)        q_min = -2**(bits - 1)

    int4 levels -8..7 become 0..15 (-8 -> 0, 0 -> 8, 7 -> 15), int2 levels -2..1 become 0..3.
    Why not pack the int8 value itself? In two's complement -1 is ``0b11111111``: every bit is
    set, so its high bits would spill into the neighbouring values. (Another common layout keeps
    the lowest ``bits`` bits of the two's complement and sign-extends them when unpacking; the
    offset needs one addition each way.) Raises a ``ValueError`` for a level outside
    ``[-2**(bits - 1), 2**(bits - 1) - 1]``. ``from_offset_binary`` undoes it.

    >>> to_offset_binary(torch.tensor([-8, -1, 0, 7], dtype=torch.int8), 4)
    tensor([ 0,  7,  8, 15], dtype=torch.uint8)
    """
    bits = checks.offset_bits(bits)
    q = checks.quantized(quantized_tensor)
    checks.signed_levels(q, bits)
    return (q.to(torch.int16) + 2 ** (bits - 1)).to(torch.uint8)


def from_offset_binary(uint8tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """The signed levels back from offset binary, as int8: ``q = u + q_min = u - 2**(bits - 1)``.

    >>> from_offset_binary(torch.tensor([0, 7, 8, 15], dtype=torch.uint8), 4)
    tensor([-8, -1,  0,  7], dtype=torch.int8)
    """
    bits = checks.offset_bits(bits)
    u = checks.offset_binary(uint8tensor, bits)
    return (u.to(torch.int16) - 2 ** (bits - 1)).to(torch.int8)


# What packing saves ---------------------------------------------------------------------------


def packed_weight_bytes(shape: Sequence[int], n_bits: int, scale_bytes: int = 4) -> int:
    """The bytes of an ``(out_features, in_features)`` weight stored with ``n_bits`` per value,
    every row packed on its own (padded to whole bytes), and one scale per row::

        out * ceil(in * n_bits / 8)  +  out * scale_bytes

    ``scale_bytes`` is 4 for float32 scales (as ``W8A16LinearLayer`` keeps them), 2 for float16.

    >>> packed_weight_bytes((4096, 4096), 4)      # 4096 * 2048 + 4096 * 4
    8404992
    >>> packed_weight_bytes((10, 3), 2)           # 3 two-bit values still take a whole byte
    50
    """
    n_bits = checks.pack_bits(n_bits)
    out_features, in_features = checks.weight_shape(shape)
    per_byte = 8 // n_bits
    return out_features * -(-in_features // per_byte) + out_features * int(scale_bytes)


def packed_model_bytes(
    model: nn.Module, n_bits: int, module_name_to_exclude: Sequence[str] = ()
) -> int:
    """The bytes ``model`` would take with every ``nn.Linear`` weight stored at ``n_bits`` with
    one float32 scale per row (``packed_weight_bytes``). Everything else counts as it is:
    biases, embeddings, norms, and the linear layers in ``module_name_to_exclude`` (by name
    or dotted path, as ``replace_linear_with_target`` excludes them).

    >>> model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> packed_model_bytes(model, 4)          # weights 32*32 + 10*16, scales 42*4, biases 42*4
    1520
    >>> packed_model_bytes(model, 4, ["2"])   # the last layer stays float32: 10*32*4 bytes
    2600
    """
    checks.module(model, "model")
    excluded = checks.names(module_name_to_exclude)
    checks.pack_bits(n_bits)
    packed = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not _is_excluded(name, excluded):
            packed[id(module.weight)] = packed_weight_bytes(module.weight.shape, n_bits)
    total, seen = 0, set()
    for tensor in list(model.parameters()) + list(model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += packed.get(id(tensor), tensor.numel() * tensor.element_size())
    return total


# A layer that keeps its weights packed --------------------------------------------------------


class PackedLinearLayer(nn.Module):
    """``W8A16LinearLayer`` with ``n_bits``-bit weights packed into bytes: at 4 bits a weight
    takes half a byte, at 2 bits a quarter.

    Buffers:

    * ``packed_weights``: uint8, ``(out_features, ceil(in_features * n_bits / 8))``: every
      row's levels in offset binary (``to_offset_binary``), packed along the row
      (``pack_weights``, padded with zeros when ``in_features`` is not a multiple of
      ``8 // n_bits``);
    * ``scales``: float32, ``(out_features,)``, one per output row;
    * ``bias``: ``dtype``, ``(1, out_features)``, or ``None`` when ``bias=False``.

    ``quantize(weights)`` is symmetric per output row, ``scale = max|row| / q_max`` with
    ``q_max = 2**(n_bits - 1) - 1`` (7 at 4 bits, 1 at 2 bits), through section 9's
    mechanism. ``forward`` unpacks the bytes, removes the offset and runs ``w8_a16_forward``
    on the int8 levels: the packed bytes are what the layer keeps, the unpacked weight exists
    only during the call.

    ``replace_linear_with_target_and_quantize`` builds every layer as
    ``target_class(in_features, out_features, bias=..., dtype=...)``, so ``n_bits`` has a class
    default: pass the subclasses ``W4A16LinearLayer`` or ``W2A16LinearLayer`` there.

    >>> layer = PackedLinearLayer(4, 1, bias=False, n_bits=2)
    >>> layer.quantize(torch.tensor([[0.4, -1.0, 0.0, 1.0]]))      # levels [0, -1, 0, 1]
    >>> layer.packed_weights                # offset binary [2, 1, 2, 3]: 2 + 4 + 32 + 192
    tensor([[230]], dtype=torch.uint8)
    >>> layer.unpacked_weights()
    tensor([[ 0, -1,  0,  1]], dtype=torch.int8)
    """

    #: The bit width a layer gets when the constructor is not given one.
    n_bits: int = 4

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: torch.dtype = torch.float32,
        n_bits: int | None = None,
    ) -> None:
        super().__init__()
        self.dtype = checks.float_dtype(dtype)
        self.n_bits = checks.packed_layer_bits(type(self).n_bits if n_bits is None else n_bits)
        self.in_features, self.out_features = int(in_features), int(out_features)
        row_bytes = -(-self.in_features // (8 // self.n_bits))
        self.register_buffer(
            "packed_weights", torch.zeros((self.out_features, row_bytes), dtype=torch.uint8)
        )
        self.register_buffer("scales", torch.ones(self.out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype) if bias else None)

    def quantize(self, weights: torch.Tensor) -> None:
        """Quantize float ``weights`` (out_features, in_features) into this layer's buffers:
        symmetric per output row at ``n_bits``, offset binary, packed along each row."""
        w = checks.layer_weights(weights, self.out_features, self.in_features).float()
        q_min, q_max = get_q_range(torch.int8, self.n_bits)
        rows = block_shapes(w.shape, (1, self.in_features))  # one block per output row
        q, scale, _ = _quantize_blocks(w, rows, q_min, q_max, torch.int8, symmetric=True)
        levels = to_offset_binary(q, self.n_bits)
        self.packed_weights.copy_(pack_weights(levels, self.n_bits, pad=True))
        self.scales.copy_(scale.reshape(-1))

    def unpacked_weights(self) -> torch.Tensor:
        """The int8 levels, ``(out_features, in_features)``, unpacked from ``packed_weights``."""
        shape = (self.out_features, self.in_features)
        values = unpack_weights(self.packed_weights, self.n_bits, shape=shape)
        return from_offset_binary(values, self.n_bits)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Unpack, then ``w8_a16_forward`` with this layer's scales and bias; returns
        ``input``'s dtype."""
        return w8_a16_forward(self.unpacked_weights(), input, self.scales, self.bias)

    def _apply(self, fn, recurse=True):
        """Keep the scales in float32 under ``.to(dtype)``, as ``W8A16LinearLayer`` does."""
        return _apply_keeping_float32_scales(self, fn, recurse)

    def extra_repr(self) -> str:
        """What ``print(model)`` shows inside the layer's parentheses."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, dtype={dtype_name(self.dtype)}, n_bits={self.n_bits}"
        )


class W4A16LinearLayer(PackedLinearLayer):
    """``PackedLinearLayer`` at 4 bits: two weights per byte."""

    n_bits = 4


class W2A16LinearLayer(PackedLinearLayer):
    """``PackedLinearLayer`` at 2 bits: four weights per byte."""

    n_bits = 2


def plot_packed_bits(uint8tensor: torch.Tensor, bits: int, title: str | None = None) -> Figure:
    """Which value's bits sit where: the values of a 1-D uint8 tensor (top row) and the bytes
    ``pack_weights`` packs them into (bottom row), bit by bit.

    Every value has its own colour, in its box on top and in the bits it occupies below. A
    byte is written the way binary numbers are, its highest bit (bit 7) on the left, so the
    first value, which goes into the lowest bits, ends up on the **right** of its byte; the
    arrows show where each value goes. Under each byte: its bits and its value as a number.
    At most 8 bytes; the length must be a multiple of ``8 // bits``.

    >>> fig = plot_packed_bits(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    >>> fig.axes[0].get_title()
    '4 values of 2 bits packed into 1 byte, lowest bits first'
    """
    bits = checks.pack_bits(bits)
    values = checks.uint8(uint8tensor, "uint8tensor", packing=True)
    if values.dim() != 1:
        raise ValueError(f"plot_packed_bits draws a 1-D tensor, got shape {tuple(values.shape)}.")
    packed = pack_weights(values, bits)  # checks that the values fit and the length
    if len(packed) > plots.PLOT_MAX_BYTES:
        raise ValueError(
            f"{len(packed)} bytes are too many to draw: pass at most "
            f"{plots.PLOT_MAX_BYTES * 8 // bits} values of {bits} bits."
        )
    n_bytes = len(packed)
    title = title or (
        f"{len(values)} values of {bits} bit{'s' if bits > 1 else ''} packed into "
        f"{n_bytes} byte{'s' if n_bytes > 1 else ''}, lowest bits first"
    )
    return plots.draw_packed_bits(values.tolist(), packed.tolist(), bits, title)


# ---------------------------------------------------------------------------------------------
# 13. Choosing the range: beyond min and max
# ---------------------------------------------------------------------------------------------
# The range of a quantizer need not be the tensor's full range. Min-max, used in every lesson so
# far, clips nothing and pays for it with a step set by the largest magnitude, however rare it
# is. *Clipping* picks a smaller absmax alpha: the values beyond it saturate at the end levels,
# and every other value gets a finer step. Section 9's ``choose_qparams_affine(...,
# r_range=alpha)`` already takes such a range per block; the functions below choose it
# (RANGE_METHODS):
#
#     min-max       alpha = max|r| of the block                       (nothing is clipped)
#     percentile    alpha = the p-th percentile of |r| in the block   (the top 100 - p % clipped)
#     MSE-optimal   alpha = the ratio c * max|r| whose round trip has the smallest MSE,
#                   searched over c in (0, 1] for every block at once
#
# All of it is symmetric and works per block (per tensor, per channel or per group: a block
# size, as in section 9), with no Python loop over the blocks.
#
# The grid. With min-max, symmetric levels never go below -q_max: the course's grid is
# -q_max..q_max (255 levels at 8 bits, 15 at 4 bits, 3 at 2 bits), 0 included. The storage type
# has one more code, q_min = -q_max - 1, that only a clipped value could reach, and only on the
# negative side. Clipping here keeps the grid symmetric and leaves that code unused (the
# "narrow range" of int8 weights in TFLite and ONNX): a clipped value saturates at -q_max or
# q_max. CLIPPING_GRIDS names this grid "course", and a "midrise" grid for comparison with
# analytic formulas.


def _symmetric_levels(dtype: torch.dtype, n_bits: int | None) -> tuple[int, int]:
    """``(q_low, q_max)``, the lowest and highest code of the symmetric grid: ``-q_max`` to
    ``q_max`` for a signed dtype; for an unsigned one the same grid shifted by its midpoint
    zero point ``m`` (section 8), ``2 * m - q_max`` to ``q_max``."""
    q_min, q_max = get_q_range(dtype, n_bits)
    middle = 0 if q_min < 0 else (q_min + q_max + 1) // 2
    return 2 * middle - q_max, q_max


def absmax_minmax(tensor: torch.Tensor, block_size: Sequence[int]) -> torch.Tensor:
    """The largest magnitude of every block, ``max|r|``: the range of min-max quantization.
    A float64 tensor of shape ``n_blocks`` (section 9), ready for ``quantize_clipped`` or
    ``choose_qparams_affine(..., symmetric=True, r_range=absmax)``.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> absmax_minmax(t, (1, 3)).flatten().tolist()      # per row
    [728.5999755859375, 295.5, 684.5999755859375]
    """
    r_min, r_max = block_range(tensor, block_size)
    return torch.maximum(-r_min, r_max)


def absmax_percentile(
    tensor: torch.Tensor, block_size: Sequence[int], percentile: float = 99.9
) -> torch.Tensor:
    """The ``percentile``-th percentile of ``|r|`` in every block: a range that lets the
    largest ``100 - percentile`` percent of each block's magnitudes saturate. Float64, shape
    ``n_blocks``.

    Interpolated between the two nearest sorted magnitudes, as ``torch.quantile`` does: with
    a block's ``n`` magnitudes sorted, ``v[0] <= v[1] <= ... <= v[n - 1]``::

        position = (n - 1) * percentile / 100,     k = floor(position)
        absmax   = v[k] + (position - k) * (v[k + 1] - v[k])

    so ``percentile=100`` gives ``v[n - 1]``, min-max. ``torch.quantile`` refuses inputs of
    more than 2**24 elements (a 4096 x 11008 weight has 45 M); ``torch.kthvalue`` along the
    blocks' own dimension has no such limit and needs no full sort.

    >>> r = torch.tensor([3.0, -10.0, 1.0, 8.0, -2.0])     # magnitudes 1, 2, 3, 8, 10
    >>> absmax_percentile(r, (5,), 100.0).item(), absmax_percentile(r, (5,), 50.0).item()
    (10.0, 3.0)
    >>> absmax_percentile(r, (5,), 90.0).item()            # position 3.6: 8 + 0.6 * (10 - 8)
    9.2
    """
    percentile = checks.percentile(percentile)
    r = checks.finite_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    magnitudes = r.abs().reshape(blocks.view_shape or (1,))
    params = blocks.param_shape or (1,)
    reduce = [d for d, p in enumerate(params) if p == 1]
    keep = [d for d, p in enumerate(params) if p != 1]
    # every block's elements along the last dimension: (*blocks, elements of a block)
    magnitudes = magnitudes.permute(*keep, *reduce).reshape(
        *[magnitudes.shape[d] for d in keep], -1
    )
    n = magnitudes.shape[-1]
    position = (n - 1) * percentile / 100.0
    k = math.floor(position)
    absmax = magnitudes.kthvalue(k + 1, dim=-1).values.double()  # kthvalue counts from 1
    if position > k:
        above = magnitudes.kthvalue(k + 2, dim=-1).values.double()
        absmax = absmax + (position - k) * (above - absmax)
    return absmax.reshape(blocks.n_blocks)


def _quantize_clipped(r, blocks, absmax, dtype, n_bits):
    """``quantize_clipped`` for checked arguments (``absmax`` of shape ``n_blocks``)."""
    q_low, q_max = _symmetric_levels(dtype, n_bits)
    return _quantize_blocks(r, blocks, q_low, q_max, dtype, symmetric=True, r_range=absmax)


def quantize_clipped(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    absmax: torch.Tensor | float,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric quantization with a given range ``[-absmax, absmax]`` per block; returns
    ``(q, scale, zero_point)`` like ``quantize_blockwise``::

        s = absmax / q_max            (choose_qparams_affine with r_range=absmax)
        q = clamp(round(r / s), -q_max, q_max)

    A value beyond ``absmax`` saturates at ``-q_max`` or ``q_max``: the grid stays min-max's
    symmetric ``-q_max..q_max``, and the code ``q_min = -q_max - 1`` stays unused (an unsigned
    dtype gets the same grid shifted by its midpoint zero point, as in section 8).
    ``absmax`` has shape ``n_blocks`` (what ``absmax_minmax``, ``absmax_percentile`` and
    ``absmax_mse_optimal`` return) or is one number for every block. Dequantize with
    ``dequantize_affine(q, block_size, scale, zero_point)``.

    >>> q, s, z = quantize_clipped(torch.tensor([0.1, -0.4, 2.0]), (3,), 0.5, n_bits=4)
    >>> q, s.item()                                   # 2.0 is clipped to 7 * s = 0.5
    (tensor([ 1, -6,  7], dtype=torch.int8), 0.07142857142857142)
    """
    get_q_range(dtype, n_bits)  # checks dtype and n_bits
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    absmax = checks.absmax(absmax, blocks.n_blocks)
    return _quantize_clipped(r, blocks, absmax, dtype, n_bits)


def _round_trip(
    view: torch.Tensor, absmax: torch.Tensor, dtype: torch.dtype, n_bits: int | None, grid: str
) -> torch.Tensor:
    """The dequantized block view for ``absmax`` (float64, in ``param_shape``), computed in
    the view's float dtype without the integer tensor (checked arguments). On the course's
    grid this is exactly ``quantize_clipped`` followed by ``dequantize_affine`` for float32
    input: the same scale and the same operations, minus the integer type in between."""
    if grid == "midrise":  # 2**bits levels s * (k + 1/2), k = -2**(bits - 1) .. 2**(bits - 1) - 1
        bits = n_bits if n_bits is not None else torch.iinfo(dtype).bits
        half = 2 ** (bits - 1)
        step = (absmax / half).clamp(min=SCALE_EPS).to(view.dtype)
        step = step.item() if step.numel() == 1 else step
        return torch.floor(view / step).clamp_(-half, half - 1).add_(0.5).mul_(step)
    q_min, q_max = get_q_range(dtype, n_bits)
    q_low, _ = _symmetric_levels(dtype, n_bits)
    scale, zero_point = qparams_from_range(-absmax, absmax, q_min, q_max, symmetric=True)
    scale = scale.to(view.dtype)
    scale = scale.item() if scale.numel() == 1 else scale
    middle = int(zero_point.flatten()[0])  # 0, or the midpoint of an unsigned dtype
    return torch.div(view, scale).round_().clamp_(q_low - middle, q_max - middle).mul_(scale)


def _block_mse(back: torch.Tensor, view: torch.Tensor, blocks: Blocks) -> torch.Tensor:
    """The mean squared error of every block, float64 in ``param_shape``. ``back`` is used up.

    Summed in float64: the sum of many float32 squares then does not depend on the order the
    CPU adds them in (to 1e-15), so the search below picks the same candidate everywhere."""
    error = back.sub_(view) if back.dtype == view.dtype else back - view
    error = error.square_().double()
    reduce = tuple(d for d, p in enumerate(blocks.param_shape) if p == 1)
    if not reduce:
        return error
    return error.mean(dim=reduce, keepdim=True)


def fake_quantize_clipped(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    absmax: torch.Tensor | float,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    grid: str = "course",
) -> torch.Tensor:
    """``tensor`` after a round trip with the range ``[-absmax, absmax]`` per block:
    ``quantize_clipped`` then ``dequantize_affine``, returned in the tensor's float dtype
    (float32 for an integer tensor).

    ``grid="midrise"`` rounds to the grid of analytic clipping formulas instead (see
    ``CLIPPING_GRIDS``): ``2**n_bits`` levels ``s * (k + 1/2)`` with ``s = absmax /
    2**(n_bits - 1)`` and ``k = clamp(floor(r / s), -2**(n_bits - 1), 2**(n_bits - 1) - 1)``.

    >>> r = torch.tensor([0.1, -0.4, 2.0])
    >>> fake_quantize_clipped(r, (3,), 0.5, n_bits=2)                 # levels -0.5, 0, 0.5
    tensor([ 0.0000, -0.5000,  0.5000])
    >>> fake_quantize_clipped(r, (3,), 0.5, n_bits=2, grid="midrise")  # +-0.125, +-0.375
    tensor([ 0.1250, -0.3750,  0.3750])
    """
    grid = checks.grid(grid)
    get_q_range(dtype, n_bits)  # checks dtype and n_bits
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    absmax = checks.absmax(absmax, blocks.n_blocks)
    if grid == "course":
        q, scale, zero_point = _quantize_clipped(r, blocks, absmax, dtype, n_bits)
        return _dequantize_blocks(q, blocks, scale, zero_point, r.dtype)
    checks.finite_min_max(r)
    view = r.reshape(blocks.view_shape)
    back = _round_trip(view, absmax.reshape(blocks.param_shape), dtype, n_bits, grid)
    return back.reshape(r.shape)


def _search_setup(tensor: Any, block_size: Sequence[int], dtype, n_bits, grid):
    """Checked ``(block view, blocks, max|r| in param_shape, grid)`` for a search."""
    get_q_range(dtype, n_bits)
    grid = checks.grid(grid)
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    view = r.reshape(blocks.view_shape)
    r_min, r_max = _range_per_block(view, blocks)  # also rejects NaN and infinity
    return view, blocks, torch.maximum(-r_min, r_max), grid


def clipping_mse_curve(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    ratios: torch.Tensor | Sequence[float],
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    grid: str = "course",
) -> torch.Tensor:
    """The MSE of every block clipped at ``ratio * max|r|``, for every ratio: a float64 tensor
    of shape ``(len(ratios), *n_blocks)``. Ratio 1 is min-max.

    One round trip of the whole tensor per ratio (a loop over the ratios, never over the
    blocks): every block is clipped at its own ``ratio * max|r|`` at once.

    >>> r = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    >>> clipping_mse_curve(r, (5,), [1.0, 0.6], n_bits=2)    # alpha = 2.0, then 1.2
    tensor([[0.8000],
            [0.1600]], dtype=torch.float64)
    """
    view, blocks, absmax, grid = _search_setup(tensor, block_size, dtype, n_bits, grid)
    curves = []
    for ratio in checks.ratios(ratios).tolist():
        back = _round_trip(view, ratio * absmax, dtype, n_bits, grid)
        curves.append(_block_mse(back, view, blocks).reshape(blocks.n_blocks))
    return torch.stack(curves)


def absmax_mse_optimal(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    n_grid: int = 100,
    n_refine: int = 10,
    grid: str = "course",
) -> torch.Tensor:
    """The clipping range with the smallest round-trip MSE in every block, found by a search:
    float64, shape ``n_blocks``.

    The candidates are ratios ``c`` of each block's ``max|r|``: first the ``n_grid`` ratios
    ``1/n_grid, 2/n_grid, ..., 1`` (1 is min-max), then ``2 * n_refine`` more around each
    block's best so far, ``n_refine`` times closer together, up to one coarse step away::

        absmax = c * max|r|  for the candidate c with the smallest
                 mean over the block of (r' - r)**2,   r' = the round trip clipped at c * max|r|

    Min-max is a candidate, so the result is never worse than min-max (on a tie the first
    candidate tried wins). Each candidate costs one round trip of the whole tensor, every block
    at once: ``n_grid + 2 * n_refine`` passes, and no loop over the blocks. The MSE need not
    be a smooth function of ``c`` (at 8 bits it wiggles as values cross rounding boundaries):
    this is the best candidate tried, not a proven minimum between them.

    >>> r = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    >>> absmax_mse_optimal(r, (5,), n_bits=2, n_grid=10).item()   # levels -1.2, 0, 1.2
    1.2
    """
    n_grid = checks.whole_number(n_grid, "n_grid", 1)
    n_refine = checks.whole_number(n_refine, "n_refine", 0)
    view, blocks, absmax, grid = _search_setup(tensor, block_size, dtype, n_bits, grid)
    best_ratio = torch.ones_like(absmax)
    best_mse = torch.full_like(absmax, math.inf)

    def try_ratio(ratio: torch.Tensor) -> None:  # one ratio per block (or one for all)
        back = _round_trip(view, ratio * absmax, dtype, n_bits, grid)
        mse = _block_mse(back, view, blocks)
        better = mse < best_mse
        best_mse[better] = mse[better]
        best_ratio[better] = ratio.expand_as(best_ratio)[better]

    for k in range(1, n_grid + 1):
        try_ratio(torch.tensor(k / n_grid, dtype=torch.float64))
    coarse, fine_step = best_ratio.clone(), 1.0 / (n_grid * max(n_refine, 1))
    for i in range(1, n_refine + 1):
        for sign in (-1, 1):
            try_ratio((coarse + sign * i * fine_step).clamp(fine_step, 1.0))
    return (best_ratio * absmax).reshape(blocks.n_blocks)


def clipping_absmax(
    tensor: torch.Tensor,
    block_size: Sequence[int],
    method: str = "mse",
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
    percentile: float = 99.9,
) -> torch.Tensor:
    """The clipping range of every block chosen by ``method`` (one of ``RANGE_METHODS``):
    ``"min-max"`` (``absmax_minmax``), ``"percentile"`` (``absmax_percentile`` at
    ``percentile``) or ``"mse"`` (``absmax_mse_optimal`` for ``dtype`` and ``n_bits``, on the
    course's grid). Float64, shape ``n_blocks``: pass it to ``quantize_clipped``,
    ``fake_quantize_clipped`` or ``fake_quantize(..., absmax=...)``.

    >>> r = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    >>> [round(clipping_absmax(r, (5,), m, n_bits=2, percentile=50).item(), 3)
    ...  for m in RANGE_METHODS]
    [2.0, 1.0, 1.2]
    """
    if method == "min-max":
        return absmax_minmax(tensor, block_size)
    if method == "percentile":
        return absmax_percentile(tensor, block_size, percentile)
    if method == "mse":
        return absmax_mse_optimal(tensor, block_size, dtype, n_bits)
    raise checks.range_method(method, RANGE_METHODS)


# An analytic approximation: ACIQ ---------------------------------------------------------------
# Banner, Nahshan and Soudry ("Post training 4-bit quantization of convolutional networks for
# rapid-deployment", NeurIPS 2019) approximate the MSE of clipping at +-alpha and rounding to
# 2**M levels with two terms, and minimise their sum instead of searching.


def aciq_mse_gaussian(alpha: float, n_bits: int, sigma: float = 1.0) -> float:
    """ACIQ's approximation of the MSE of a normal N(0, sigma**2) variable clipped at
    ``+-alpha`` and rounded to ``2**n_bits`` levels over ``[-alpha, alpha]``::

        clipping:  (alpha**2 + sigma**2) * (1 - erf(alpha / (sigma * sqrt(2))))
                   - alpha * sigma * sqrt(2 / pi) * exp(-alpha**2 / (2 * sigma**2))
        rounding:  alpha**2 / (3 * 4**n_bits)        ( = step**2 / 12, step = 2 alpha / 2**n_bits)

    The clipping term is the exact mean of ``(|r| - alpha)**2`` over the clipped tails; the
    rounding term assumes the error is spread evenly over each step, for every value.

    >>> round(aciq_mse_gaussian(2.0, 4), 5)       # clipping 0.01155 + rounding 0.00521
    0.01675
    """
    a, s = float(alpha), float(sigma)
    clipping = (a * a + s * s) * math.erfc(a / (s * math.sqrt(2))) - a * s * math.sqrt(
        2 / math.pi
    ) * math.exp(-a * a / (2 * s * s))
    return clipping + a * a / (3 * 4**n_bits)


def aciq_clip_gaussian(n_bits: int, sigma: float = 1.0) -> float:
    """The ``alpha`` that minimises ``aciq_mse_gaussian``, to 4 decimals of ``sigma`` (a
    scan of ``alpha`` from 0.5 to 10 sigma in steps of 1e-4 sigma).

    >>> [round(aciq_clip_gaussian(bits), 2) for bits in (2, 3, 4, 8)]
    [1.71, 2.15, 2.56, 3.92]
    """
    n_bits = checks.whole_number(n_bits, "n_bits", 1)
    a = torch.arange(5_000, 100_001, dtype=torch.float64) * 1e-4
    clipping = (a.square() + 1) * torch.special.erfc(a / math.sqrt(2)) - a * math.sqrt(
        2 / math.pi
    ) * torch.exp(-a.square() / 2)
    total = clipping + a.square() / (3 * 4**n_bits)
    return float(a[int(total.argmin())]) * float(sigma)


# Plots -------------------------------------------------------------------------------------------


def plot_clipping_curves(
    tensor: torch.Tensor,
    n_bits: Sequence[int] = (8, 4, 2),
    percentile: float = 99.9,
    ratios: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """The MSE of ``tensor`` (one range for the whole tensor) against the clipping range, one
    panel per bit width, on the course's symmetric grid.

    x: the clipping range as a ratio of ``max|r|`` (1 = min-max, at the right edge). Solid
    line: the measured MSE (``clipping_mse_curve``). Dashed line: the uniform-noise estimate
    ``s**2 / 12`` with ``s = alpha / q_max``, which counts rounding only and ignores the
    clipped values. Markers: min-max, the ``percentile``-th percentile of ``|r|`` and the
    MSE-optimal range (``absmax_mse_optimal``), each with its MSE in the legend.

    What to see: to the right the curve follows the dashed line (rounding dominates); to the
    left it leaves it upwards (clipping dominates). The best range sits in between, further
    left the fewer bits there are. ``ratios`` defaults to 60 ratios from 0.02 to 1. The MSE
    axis is logarithmic.
    """
    r = checks.real_tensor(tensor)
    widths = [int(b) for b in n_bits]
    if not widths:
        raise ValueError("n_bits must list at least one bit width, e.g. (8, 4, 2).")
    for bits in widths:
        get_q_range(torch.int8, bits)
    ratios = torch.linspace(0.02, 1.0, 60) if ratios is None else torch.as_tensor(ratios)
    ratios = ratios.to(torch.float64)
    whole = tuple(r.shape)
    peak = absmax_minmax(r, whole).item()
    clip = absmax_percentile(r, whole, percentile).item()
    panels = []
    for bits in widths:
        q_max = 2 ** (bits - 1) - 1
        best = absmax_mse_optimal(r, whole, n_bits=bits).item()
        marks = []
        for label, alpha, marker, colour in (
            ("min-max", peak, "o", "tab:red"),
            (f"percentile {percentile:g}", clip, "s", "tab:orange"),
            ("MSE-optimal", best, "*", "tab:green"),
        ):
            back = fake_quantize_clipped(r, whole, alpha, torch.int8, bits)
            mse = quantization_error(r, back).item()
            marks.append((label, alpha / peak, mse, marker, colour))
        panels.append(
            {
                "title": f"{bits} bits: levels -{q_max}..{q_max}",
                "curve": clipping_mse_curve(r, whole, ratios, n_bits=bits).flatten(),
                "estimate": (ratios * peak / q_max) ** 2 / 12,
                "marks": marks,
            }
        )
    title = title or f"MSE against the clipping range, {r.numel():,} values"
    return plots.draw_clipping_curves(ratios, panels, title)


def plot_clipping_ranges(
    tensor: torch.Tensor,
    ranges: dict[str, float],
    bins: int = 120,
    title: str | None = None,
) -> Figure:
    """A histogram of ``tensor``'s values with clipping ranges drawn over it: for every
    ``label: alpha`` in ``ranges`` two vertical lines at ``-alpha`` and ``+alpha``, labelled
    with alpha and the share of values beyond it (clipped). The count axis is logarithmic, so
    the rare values in the tails, the ones min-max makes room for, stay visible.

    >>> fig = plot_clipping_ranges(torch.tensor([-1.0, 0.0, 0.5, 3.0]), {"min-max": 3.0})
    >>> fig.axes[0].get_legend().get_texts()[1].get_text()
    'min-max: ±3, 0.00% beyond'
    """
    r = checks.real_tensor(tensor)
    r_min, r_max = checks.finite_min_max(r)
    checks.ranges_dict(ranges)
    bins = checks.bins(bins)
    values = r.flatten().to(torch.float64)
    top = max([abs(r_min), abs(r_max), *[float(a) for a in ranges.values()]]) or 1.0
    counts, edges = torch.histogram(values, bins=bins, range=(-top, top))
    lines = [
        (label, float(alpha), (values.abs() > float(alpha)).double().mean().item())
        for label, alpha in ranges.items()
    ]
    title = title or "Where each method clips"
    return plots.draw_clipping_ranges(counts, edges, values.numel(), lines, top, title)


# ---------------------------------------------------------------------------------------------
# The contents, for ``from helper import *`` and the tests: every public name defined above,
# and the constants taken from support.constants.
# ---------------------------------------------------------------------------------------------

__all__ = ["SUPPORTED_DTYPES", "SCALE_EPS", "dtype_name", "PACK_BITS", "RANGE_METHODS"]
__all__ += ["CLIPPING_GRIDS"]
__all__ += [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
