"""Linear quantization, hands-on: the functions the lessons build, in the order they build them.

The whole course rests on two formulas (``s`` is the scale, ``z`` the zero point)::

    quantize:    q  = clamp(round(r / s) + z, q_min, q_max)
    dequantize:  r' = s * (q - z)

Read this file top to bottom: each section is one step of the course, and every function uses
only what stands above it.

1. Integer dtypes and their ranges   ``get_q_range``
2. Checking what comes in            (once per function, with ``support.checks``)
3. Scale and zero point (L2-B)       ``qparams_from_range``, ``get_q_scale_and_zero_point``
4. Quantize (L2-A)                   ``linear_q_with_scale_and_zero_point``, ``linear_quantization``
5. Dequantize (L2-A)                 ``linear_dequantization``
6. Quantization error                ``quantization_error``, ``sqnr_db``
7. Plots                             ``plot_quantization_errors``, ``plot_number_line``
8. Symmetric mode (L3-A)             ``get_q_scale_symmetric``, ``linear_q_symmetric``
9. Granularity (L3-B/C/D)            ``quantize_blockwise``, ``linear_q_symmetric_per_channel``
10. Weights and activations (L3-E)   ``quantized_linear_W8A32_without_bias``
11. An 8-bit layer (L4)              ``W8A16LinearLayer``, ``replace_linear_with_target``
12. Weight packing (L5)              ``pack_weights``, ``unpack_weights``
13. Choosing the range               ``absmax_percentile``, ``absmax_mse_optimal``
14. Number formats as grids          ``float8_grid``, ``nf4_levels``, ``quantize_to_grid``
15. Quantization-aware training      ``fake_quantize_ste``, ``fake_quantize_ste_blockwise``

Every quantizer here, per tensor, per channel or per group, symmetric or not, takes the same
three steps: measure a range, turn it into a scale and zero point (section 3's formula), apply
the two formulas (sections 4 and 5). The package ``support`` beside this file holds what you
use but need not read: the checks and their messages, the drawing code, a fast path for large
tensors, the explorer, the exercise checkers, the example tensors and the models. Nothing here
modifies its inputs; bad input raises a ``TypeError`` or ``ValueError`` that says what to pass.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from support import checks, fast, plots
from support.constants import (
    CLIPPING_GRIDS,
    FLOAT8_FORMATS,
    GRID_NAMES,
    PACK_BITS,
    RANGE_METHODS,
    SCALE_EPS,
    SUPPORTED_DTYPES,
    dtype_name,
)

# ===== 1. Integer dtypes and their ranges ========================================================
# SUPPORTED_DTYPES (int8, uint8, int16) and dtype_name come from support.constants.


def get_q_range(dtype=torch.int8, n_bits=None) -> tuple[int, int]:
    """The smallest and largest integer a quantized value may take, ``(q_min, q_max)``: the
    full range of ``dtype``, or with ``n_bits`` (stored in ``dtype``) ``-2**(n_bits - 1)`` to
    ``2**(n_bits - 1) - 1`` for a signed dtype and ``0`` to ``2**n_bits - 1`` for an unsigned one.

    >>> get_q_range(torch.int8)
    (-128, 127)
    >>> get_q_range(torch.int8, n_bits=4)
    (-8, 7)
    >>> get_q_range(torch.uint8, n_bits=2)
    (0, 3)
    """
    dtype, n_bits = checks.dtype_and_bits(dtype, n_bits)
    info = torch.iinfo(dtype)
    if n_bits is None:
        return int(info.min), int(info.max)
    if info.min < 0:
        return -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1
    return 0, 2**n_bits - 1


# ===== 2. Checking what comes in =================================================================
# Every public function checks its arguments once, at the door, with a function of
# support.checks (checks.real_tensor, checks.scale, ...), and then works with the checked
# values. A check returns the value in the form we compute with (a float tensor, an int), or
# raises a TypeError or ValueError that names the argument and says what to pass. A tensor's
# values are checked where its range is measured anyway: a NaN or an infinity makes the range
# NaN or infinite (checks.finite_range), so the check costs no extra pass over the data.


# ===== 3. Scale and zero point (course lesson L2-B) ==============================================


def qparams_from_range(
    r_min: Tensor, r_max: Tensor, q_min: int, q_max: int, symmetric=False
) -> tuple[Tensor, Tensor]:
    """Scales and zero points that map real ranges ``[r_min, r_max]`` onto ``[q_min, q_max]``.

    ``r_min`` and ``r_max`` are numbers or tensors of one shape (one range per block); the result
    has their shape, a float64 scale and an int64 zero point per range, as PyTorch's observers
    compute them::

        r_min <- min(r_min, 0),  r_max <- max(r_max, 0)      # the range always holds 0

        asymmetric:  s = (r_max - r_min) / (q_max - q_min)
                     z = clamp(q_min - round(r_min / s), q_min, q_max)   # round half to even
        symmetric:   z = 0 (signed) or the midpoint (q_min + q_max + 1) // 2 (128 for uint8),
                     s = max(|r_min|, |r_max|) / (q_max - z)

    and every scale is at least ``SCALE_EPS`` (below max|r| of about ``q_max * SCALE_EPS``, 1.5e-5
    at 8 bits, a UserWarning says the floor took over). So 0 is exactly representable (it quantizes
    to ``z``) and ``z`` always fits. PyTorch's symmetric observers divide by 127.5, not 127.

    >>> s, z = qparams_from_range(torch.tensor(-184.0), torch.tensor(728.6), -128, 127)
    >>> s.item(), z.item()
    (3.578823433670343, -77)
    >>> s, z = qparams_from_range(torch.tensor([-1.0, 0.0]), torch.tensor([2.0, 0.0]), -128, 127,
    ...                           symmetric=True)
    >>> s.tolist(), z.tolist()
    ([0.015748031496062992, 1.1920928955078125e-07], [0, 0])
    """
    r_min, r_max, q_min, q_max = checks.qparams_args(r_min, r_max, q_min, q_max, symmetric)
    r_min, r_max = r_min.clamp(max=0.0), r_max.clamp(min=0.0)
    if symmetric:
        middle = 0 if q_min < 0 else (q_min + q_max + 1) // 2
        scale = torch.maximum(-r_min, r_max) / (q_max - middle)
        zero_point = torch.full_like(scale, middle, dtype=torch.int64)
    else:
        scale = (r_max - r_min) / (q_max - q_min)
    checks.computed_scale(scale)
    checks.scale_floor(scale)  # a warning: the floor takes over below about 1e-5
    scale = scale.clamp(min=SCALE_EPS)
    if not symmetric:
        zero_point = (q_min - torch.round(r_min / scale)).clamp(q_min, q_max).to(torch.int64)
    return scale, zero_point


def scale_and_zero_point_from_range(
    r_min: float, r_max: float, q_min: int, q_max: int
) -> tuple[float, int]:
    """``qparams_from_range`` for one range of numbers: a Python float and int.

    >>> scale_and_zero_point_from_range(-184.0, 728.5999755859375, -128, 127)
    (3.578823433670343, -77)
    >>> scale_and_zero_point_from_range(100.0, 200.0, -128, 127)   # one-signed: z = q_min
    (0.7843137254901961, -128)
    """
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max)
    return scale.item(), int(zero_point)


def get_q_scale_and_zero_point(tensor: Tensor, dtype=torch.int8, n_bits=None) -> tuple[float, int]:
    """The scale (a Python float) and zero point (an int) for quantizing ``tensor``:
    ``qparams_from_range`` with the tensor's smallest and largest value.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> get_q_scale_and_zero_point(t)
    (3.578823433670343, -77)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r_min, r_max = checks.finite_min_max(checks.real_tensor(tensor))
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max)
    return scale.item(), int(zero_point)


# ===== 4. Quantize (course lesson L2-A) ==========================================================


def quantize_one_liner(
    r: Tensor, scale: Any, zero_point: Any, q_min: int, q_max: int, dtype=torch.int8
) -> Tensor:
    """The quantize formula in one line; every quantizer in this file ends here::

        q = clamp(round(r / s) + z, q_min, q_max).to(dtype)

    ``round`` (half to even) comes before ``+ z``, as in ``torch.fake_quantize_per_tensor_affine``,
    and ``clamp`` before the cast: ``.to(torch.int8)`` of 138.0 is not 127. A tensor scale is in
    ``r``'s float dtype. No checks: the public functions below check first.

    >>> quantize_one_liner(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70, -128, 127)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    if r.numel() > fast.PARALLEL_ELEMENTS:  # large: the same numbers, in place, in worker threads
        return fast.quantize(r, scale, zero_point, q_min, q_max, dtype)
    return torch.clamp(torch.round(r / scale) + zero_point, q_min, q_max).to(dtype)


def linear_q_with_scale_and_zero_point(
    tensor: Tensor, scale: Any, zero_point: Any, dtype=torch.int8, n_bits=None
) -> Tensor:
    """Quantize ``tensor`` with a given scale and zero point (``quantize_one_liner``); they are
    numbers or tensors that broadcast (``(rows, 1)``: one per row). The course (and
    ``torch.quantize_per_tensor`` on x86) rounds ``r / s + z``, not ``r / s``: they differ on an
    exact tie with an odd ``z`` (1.75 / 3.5 = 0.5 rounds to 0 here, -76.5 to -76 there).

    >>> linear_q_with_scale_and_zero_point(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r, scale, zero_point = checks.quantize_args(tensor, scale, zero_point, q_min, q_max)
    return quantize_one_liner(r, scale, zero_point, q_min, q_max, dtype)


def linear_quantization(tensor: Tensor, dtype=torch.int8, n_bits=None) -> tuple[Tensor, float, int]:
    """Choose a scale and zero point for ``tensor`` (section 3) and quantize it with them:
    ``(quantized_tensor, scale, zero_point)``, asymmetric, per tensor.

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


# ===== 5. Dequantize (course lesson L2-A) ========================================================


def dequantize_one_liner(
    q: Tensor, scale: Any, zero_point: Any, output_dtype=torch.float32
) -> Tensor:
    """The dequantize formula in one line, in float32, cast to ``output_dtype`` last::

        r' = s * (q - z)

    ``q`` becomes float32 *before* ``z`` is subtracted: in int8, 127 - (-70) = 197 would wrap
    around. A tensor scale is float32. No checks.

    >>> dequantize_one_liner(torch.tensor([-70, -68, 127], dtype=torch.int8), 3.5, -70)
    tensor([  0.0000,   7.0000, 689.5000])
    """
    if q.numel() > fast.PARALLEL_ELEMENTS:  # large: the same numbers, in place, in worker threads
        return fast.dequantize(q, scale, zero_point, output_dtype)
    return (scale * (q.to(torch.float32) - zero_point)).to(output_dtype)


def linear_dequantization(quantized_tensor: Tensor, scale: Any, zero_point: Any) -> Tensor:
    """Map quantized integers back to real numbers (float32): ``r' = s * (q - z)``.

    ``scale`` and ``zero_point`` are numbers or tensors that broadcast against
    ``quantized_tensor`` (per channel: shape ``(rows, 1)`` or ``(1, columns)``). A per-group
    scale does not broadcast: use ``linear_dequantization_per_group``.

    >>> linear_dequantization(torch.tensor([-70, -68, 127], dtype=torch.int8), 3.5, -70)
    tensor([  0.0000,   7.0000, 689.5000])
    """
    q, scale, zero_point = checks.dequantize_args(quantized_tensor, scale, zero_point)
    return dequantize_one_liner(q, scale, zero_point)


# ===== 6. Quantization error =====================================================================


def quantization_error(tensor: Tensor, dequantized_tensor: Tensor) -> Tensor:
    """Mean squared error of a round trip (a 0-dim tensor): ``mse = mean((r' - r) ** 2)``.

    For values inside the range, rounding errors are spread evenly over ``[-s/2, s/2]``, so
    the MSE is close to ``s**2 / 12``.

    >>> quantization_error(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))
    tensor(0.1250)
    """
    r, r2 = checks.pair(tensor, dequantized_tensor)
    mse = (r2 - r).square().mean()
    if not bool(torch.isfinite(mse)) or (mse == 0 and not torch.equal(r, r2)):
        mse = (r2.double() - r.double()).square().mean()  # beyond float32's range: float64
    return mse


def _sqnr(r: Tensor, r2: Tensor) -> float:
    """``sqnr_db`` for checked tensors."""
    signal = r.double().square().mean().item()
    noise = (r2.double() - r.double()).square().mean().item()
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def sqnr_db(tensor: Tensor, dequantized_tensor: Tensor) -> float:
    """Signal-to-quantization-noise ratio in decibels, an error measure without units::

        sqnr = 10 * log10( mean(r ** 2) / mean((r' - r) ** 2) )

    Every 6 dB is a factor of 4 in MSE, about one bit. ``inf`` for an exact round trip, ``-inf``
    for an all-zero tensor that did not come back as zeros.

    >>> round(sqnr_db(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0])), 2)
    13.01
    """
    return _sqnr(*checks.pair(tensor, dequantized_tensor))


# ===== 7. Plots ==================================================================================
# Each plot function checks its input and computes what the picture shows; support.plots draws
# it. The figure is returned closed for pyplot, so a notebook shows it once, as the cell's value.


def plot_quantization_errors(
    original: Tensor,
    quantized: Tensor,
    dequantized: Tensor,
    dtype=torch.int8,
    n_bits=None,
    error_max=None,
) -> Figure:
    """Four heatmaps in a row: original, quantized, dequantized and the absolute error.

    The original and dequantized panels share one colour scale; the error panel runs from 0 to the
    largest error, or to ``error_max`` to give several plots one scale. Up to 64 values get their
    numbers written in the cells; ``dtype`` and ``n_bits`` label the quantized panel."""
    q_min, q_max = get_q_range(dtype, n_bits)
    r, q, r2, error_max = checks.error_plot(original, quantized, dequantized, error_max)
    r, q, r2 = plots.as_2d(r), plots.as_2d(q), plots.as_2d(r2)
    error = (r - r2).abs()
    bits = f"{n_bits}-bit " if n_bits is not None else ""
    quantized_title = f"Quantized ({bits}{dtype_name(dtype)}, [{q_min}, {q_max}])"
    mse, worst = error.square().mean().item(), error.max().item()
    title = f"Quantization error: MSE = {mse:.4g}, largest error = {worst:.4g}"
    return plots.draw_quantization_errors(r, q, r2, error, quantized_title, title, error_max)


def plot_number_line(
    tensor: Tensor, scale: float, zero_point: int, dtype=torch.int8, n_bits=None, title=None
) -> Figure:
    """The quantizer as a staircase: every real ``r`` (x) against ``r' = s * (clamp(round(r / s)
    + z) - z)`` (y), with the tensor's values on it. The flat steps are the levels, ``s`` apart, 0
    among them; in the shaded zones every value is clamped to an end level; a value's distance to
    the dotted diagonal ``r' = r`` is its error."""
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor).flatten().to(torch.float64)
    r_min, r_max = checks.finite_min_max(r)
    scale = float(checks.scale(scale, torch.Size([]), torch.float32))
    zero_point = int(checks.zero_point(zero_point, torch.Size([]), q_min, q_max))
    low_level, high_level = scale * (q_min - zero_point), scale * (q_max - zero_point)
    low_clamp, high_clamp = low_level - scale / 2, high_level + scale / 2  # clamping starts here
    left, right = min(r_min, low_clamp, 0.0), max(r_max, high_clamp, 0.0)
    pad = 0.08 * (right - left)
    left, right = left - pad, right + pad
    xs = torch.linspace(left, right, 4001, dtype=torch.float64)

    def round_trip(values: Tensor) -> Tensor:
        q = quantize_one_liner(values, scale, zero_point, q_min, q_max, torch.int32)
        return dequantize_one_liner(q, scale, zero_point).double()

    bits = f"{n_bits}-bit " if n_bits is not None else ""
    title = title or (
        f"{bits}{dtype_name(dtype)}: s = {scale:.4g}, z = {zero_point}, {q_max - q_min + 1:,} "
        f"levels from {low_level:.4g} to {high_level:.4g}"
    )
    edges, limits = (low_clamp, high_clamp), (left, right)
    return plots.draw_number_line(
        xs, round_trip(xs), r, round_trip(r), edges, limits, zero_point, title
    )


# ===== 8. Symmetric mode (course lesson L3-A) ====================================================
# Asymmetric (sections 3-5) fits the grid to [r_min, r_max]. Symmetric mode fixes the zero
# point at 0 and fits the grid to [-max|r|, max|r|]: s = max|r| / q_max, the symmetric branch
# of section 3's formula. No zero point to store or subtract, at the price of levels wasted on
# the side where the data does not go.


def get_q_scale_symmetric(tensor: Tensor, dtype=torch.int8, n_bits=None) -> float:
    """The symmetric scale of ``tensor``, a Python float: ``s = max|r| / q_max`` (127 for int8),
    at least ``SCALE_EPS``. For uint8 the zero point is 128 and ``s = max|r| / (q_max - 128)``.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> get_q_scale_symmetric(t)
    5.737007681779035
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r_min, r_max = checks.finite_min_max(checks.real_tensor(tensor))
    scale, _ = qparams_from_range(r_min, r_max, q_min, q_max, symmetric=True)
    return scale.item()


def linear_q_symmetric(tensor: Tensor, dtype=torch.int8, n_bits=None) -> tuple[Tensor, float]:
    """Quantize ``tensor`` in symmetric mode, per tensor: ``(quantized_tensor, scale)``, ``z = 0``;
    dequantize with ``linear_dequantization(q, scale, 0)`` (uint8: zero point 128).

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
    tensor: Tensor, dtype=torch.int8, n_bits=None, bins=40, title=None
) -> Figure:
    """One tensor on the asymmetric grid (top) and the symmetric grid (bottom): a histogram of
    its values under the levels ``r = s * (q - z)``, red where a value lands, grey where none does
    (wasted), with the levels in use, MSE and SQNR. Same levels over a wider span: a larger step.

    >>> fig = plot_symmetric_vs_asymmetric(torch.tensor([1.0, 2.0, 4.0]), n_bits=4)
    >>> [ax.get_title() for ax in fig.axes]
    ['asymmetric: s = 0.2667, z = -8', 'symmetric: s = 0.5714, z = 0']
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    r_min, r_max = checks.finite_min_max(r)
    bins = checks.bins(bins)
    levels, every_q = q_max - q_min + 1, torch.arange(q_min, q_max + 1, dtype=torch.int64)
    step = math.ceil(levels / plots.MAX_LEVEL_LINES)  # thin out the unused levels of int16
    panels, spans = [], []
    for mode, symmetric in (("asymmetric", False), ("symmetric", True)):
        scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric)
        s, z = scale.item(), int(zero_point)
        quantized = quantize_one_liner(r, scale.to(r.dtype), z, q_min, q_max, dtype)
        back = dequantize_one_liner(quantized, scale.to(torch.float32), z)
        used = torch.isin(every_q, torch.unique(quantized.to(torch.int64)))
        mse = (back - r).square().mean().item()
        text = f"levels in use: {int(used.sum()):,} of {levels:,}\nMSE = {mse:.4g}\n"
        panels.append(
            {
                "title": f"{mode}: s = {s:.4g}, z = {z}",
                "unused": s * (every_q[~used][::step] - z).double(),
                "used": s * (every_q[used] - z).double(),
                "text": text + f"SQNR = {_sqnr(r, back):.1f} dB",
            }
        )
        spans.append((s * (q_min - z), s * (q_max - z)))
    bits = f"{n_bits}-bit " if n_bits is not None else ""
    title = title or f"{r.numel():,} values on two {bits}{dtype_name(dtype)} grids"
    return plots.draw_grids(r.flatten().double(), bins, panels, spans, title)


# ===== 9. Granularity: one mechanism, per tensor, per channel, per group (course L3-B/C/D) =======
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
# of ranges (it works elementwise), and call section 4's quantize with one scale per block (the
# scales broadcast against the view). No Python loop runs over channels or groups.


class Blocks(NamedTuple):
    """How a tensor of ``shape`` splits into blocks (see ``block_shapes``)."""

    view_shape: tuple[int, ...]  # the tensor viewed so that every block has dims of its own
    param_shape: tuple[int, ...]  # the scales' shape that broadcasts against view_shape
    n_blocks: tuple[int, ...]  # blocks per dimension: the shape of the returned scales


def block_shapes(shape: Sequence[int], block_size: Sequence[int]) -> Blocks:
    """Split ``shape`` into blocks of ``block_size``: ``Blocks(view_shape, param_shape, n_blocks)``.

    A dimension ``n`` with block ``b`` stays ``n`` in the view, with one parameter when ``b == n``
    and ``n`` when ``b == 1``; otherwise it becomes ``(n // b, b)`` with ``n // b`` parameters.

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
            view, params = view + [n], params + [1]
        elif b == 1:
            view, params = view + [n], params + [n]
        else:
            view, params = view + [n // b, b], params + [n // b, 1]
    n_blocks = tuple(n // b for n, b in zip(shape, block_size, strict=True))
    return Blocks(tuple(view), tuple(params), n_blocks)


def granularity_block_size(
    shape: Sequence[int], granularity="per_tensor", dim=0, group_size=None
) -> tuple[int, ...]:
    """The block size of ``"per_tensor"``, ``"per_channel"`` along ``dim`` (one scale per index of
    ``dim``) or ``"per_group"`` (``group_size`` consecutive elements of the last dimension).

    >>> granularity_block_size((4, 6), "per_channel", dim=0)
    (1, 6)
    >>> granularity_block_size((4, 6), "per_channel", dim=-1)
    (4, 1)
    >>> granularity_block_size((4, 6), "per_group", group_size=3)
    (1, 3)
    """
    shape = checks.granularity_args(shape, dim, group_size)
    if granularity == "per_tensor":
        return shape
    if granularity == "per_channel":
        dim = checks.channel_dim(dim, shape)
        return tuple(1 if d == dim else n for d, n in enumerate(shape))
    if granularity == "per_group":
        group_size = checks.group_size(group_size, shape)
        return (1,) * (len(shape) - 1) + (group_size,)
    raise checks.unknown_granularity(granularity)


def _range_per_block(view: Tensor, blocks: Blocks) -> tuple[Tensor, Tensor]:
    """The smallest and largest value of every block of a blocked view, float64 in
    ``param_shape``; a ``ValueError`` if a block holds a NaN or an infinity. (``amin`` and
    ``amax`` along a dimension take about a sixth of the time of one ``aminmax``.)"""
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
    r: Tensor, blocks: Blocks, q_min, q_max, dtype, symmetric: bool, r_range: Any = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The mechanism for a checked float tensor: ``(q, scale, zero_point)``, the parameters of
    shape ``n_blocks``. A given ``r_range`` (see ``choose_qparams_affine``) replaces the range
    measured in every block."""
    view = r.reshape(blocks.view_shape)
    if r_range is None:
        r_min, r_max = _range_per_block(view, blocks)
    else:  # the values were not measured, so check them here
        checks.finite_min_max(r)
        r_min, r_max = (v.reshape(blocks.param_shape) for v in checks.r_range(r_range, blocks))
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric)
    q = quantize_one_liner(view, scale.to(r.dtype), zero_point, q_min, q_max, dtype)
    return q.reshape(r.shape), scale.reshape(blocks.n_blocks), zero_point.reshape(blocks.n_blocks)


def block_range(tensor: Tensor, block_size: Sequence[int]) -> tuple[Tensor, Tensor]:
    """The smallest and largest value of every block: float64 tensors of shape ``n_blocks``.

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
    tensor: Tensor,
    block_size: Sequence[int],
    dtype=torch.int8,
    n_bits=None,
    *,
    symmetric=False,
    r_range: Tensor | tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """A scale (float64) and zero point (int64) per block, tensors of shape ``n_blocks``, from
    each block's range through ``qparams_from_range``. ``r_range`` gives the ranges instead: a
    pair ``(r_min, r_max)``, or one ``absmax`` for ``[-absmax, absmax]`` (section 13 clips so).

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
        r_min, r_max = checks.r_range(r_range, blocks)
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max, symmetric)
    return scale.reshape(blocks.n_blocks), zero_point.reshape(blocks.n_blocks)


def quantize_affine(
    tensor: Tensor, block_size: Sequence[int], scale, zero_point, dtype=torch.int8, n_bits=None
) -> Tensor:
    """Quantize every block with its own scale and zero point (shape ``n_blocks``, or one number
    for all); the result has the tensor's shape and ``dtype``.

    >>> t = torch.tensor([[1.0, -2.0], [30.0, 40.0]])
    >>> s, z = choose_qparams_affine(t, (1, 2), symmetric=True)
    >>> quantize_affine(t, (1, 2), s, z)
    tensor([[  64, -127],
            [  95,  127]], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.finite_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    scale, zero_point = checks.block_params(scale, zero_point, blocks, r.dtype, q_min, q_max)
    view = r.reshape(blocks.view_shape)
    return quantize_one_liner(view, scale, zero_point, q_min, q_max, dtype).reshape(r.shape)


def quantize_blockwise(
    tensor: Tensor,
    block_size: Sequence[int],
    dtype=torch.int8,
    n_bits=None,
    *,
    symmetric=False,
    r_range: Tensor | tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``choose_qparams_affine`` then ``quantize_affine``: ``(q, scale, zero_point)``, the
    parameters of shape ``n_blocks``. Every course-named quantizer is this with a block.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> q, s, z = quantize_blockwise(t, (3, 3))          # per tensor: linear_quantization
    >>> s.item(), z.item()
    (3.578823433670343, -77)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    return _quantize_blocks(r, blocks, q_min, q_max, dtype, symmetric, r_range)


def _dequantize_blocks(q: Tensor, blocks: Blocks, scale, zero_point, output_dtype) -> Tensor:
    """``dequantize_affine`` for checked arguments (parameters of ``n_blocks`` elements)."""
    scale = scale.reshape(blocks.param_shape).to(torch.float32)
    view = q.reshape(blocks.view_shape)
    back = dequantize_one_liner(view, scale, zero_point.reshape(blocks.param_shape), output_dtype)
    return back.reshape(q.shape)


def dequantize_affine(
    quantized_tensor: Tensor,
    block_size: Sequence[int],
    scale,
    zero_point,
    output_dtype=torch.float32,
) -> Tensor:
    """``r' = s * (q - z)`` with every block's own scale and zero point, in float32, cast to
    ``output_dtype`` last.

    >>> q = torch.tensor([[64, -127], [95, 127]], dtype=torch.int8)
    >>> dequantize_affine(q, (1, 2), torch.tensor([[1 / 63.5], [40 / 127]]), 0)
    tensor([[ 1.0079, -2.0000],
            [29.9213, 40.0000]])
    """
    q = checks.quantized(quantized_tensor)
    output_dtype = checks.float_dtype(output_dtype, "output_dtype must be a float dtype")
    blocks = block_shapes(q.shape, block_size)
    scale, zero_point = checks.block_params(scale, zero_point, blocks, torch.float32)
    view = q.reshape(blocks.view_shape)
    return dequantize_one_liner(view, scale, zero_point, output_dtype).reshape(q.shape)


def per_element(param: Tensor, shape: Sequence[int], block_size: Sequence[int]) -> Tensor:
    """A per-block parameter repeated for every element of its block (shape ``shape``).

    >>> per_element(torch.tensor([[1.0], [2.0]]), (2, 3), (1, 3))
    tensor([[1., 1., 1.],
            [2., 2., 2.]])
    """
    blocks = block_shapes(checks.shape_of(shape), block_size)
    param = checks.block_param(param, blocks.param_shape, blocks.n_blocks, "param")
    return param.expand(blocks.view_shape).reshape(tuple(shape))


# The course's functions: a block size each ----------------------------------------------------


def linear_q_symmetric_per_channel(
    r_tensor: Tensor, dim: int, dtype=torch.int8, n_bits=None
) -> tuple[Tensor, Tensor]:
    """Symmetric quantization with one scale per channel along ``dim``: ``(q, scale)``.

    ``dim=0``: one scale per row (the ``amax`` along dim 1); ``dim=1``: one per column. The float32
    ``scale`` broadcasts against ``r_tensor`` (``(rows, 1)`` or ``(1, columns)``).

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
    return q, checks.float32_scale(scale)


def linear_q_symmetric_per_group(
    tensor: Tensor, group_size: int, dtype=torch.int8, n_bits=None
) -> tuple[Tensor, Tensor]:
    """Symmetric quantization with one scale per group of ``group_size`` consecutive elements
    along the last dimension: ``(q, scale)``, the scale float32 of shape
    ``(numel // group_size, 1)`` as in the course. It does not broadcast against the tensor:
    dequantize with ``linear_dequantization_per_group(q, scale, group_size)``.

    >>> q, s = linear_q_symmetric_per_group(torch.tensor([[1.0, 2.0, -8.0, 4.0]]), group_size=2)
    >>> q, s.shape
    (tensor([[  64,  127, -127,   64]], dtype=torch.int8), torch.Size([2, 1]))
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, granularity_block_size(r.shape, "per_group", 0, group_size))
    q, scale, _ = _quantize_blocks(r, blocks, q_min, q_max, dtype, symmetric=True)
    return q, checks.float32_scale(scale).reshape(-1, 1)


def linear_dequantization_per_group(
    quantized_tensor: Tensor, scale: Tensor, group_size: int, zero_point: Any = 0
) -> Tensor:
    """Dequantize per group: ``r' = s_g * (q - z)`` with each group's scale ``s_g`` (shape
    ``(numel // group_size, 1)``); ``zero_point`` is 0, or one per group. Float32.

    >>> q = torch.tensor([[64, 127, -127, 64]], dtype=torch.int8)
    >>> linear_dequantization_per_group(q, torch.tensor([[2 / 127], [8 / 127]]), 2)
    tensor([[ 1.0079,  2.0000, -8.0000,  4.0315]])
    """
    q = checks.quantized(quantized_tensor)
    block_size = granularity_block_size(q.shape, "per_group", group_size=group_size)
    blocks = block_shapes(q.shape, block_size)
    scale = checks.per_group_scale(scale, math.prod(blocks.n_blocks), group_size)
    if isinstance(zero_point, Tensor) and zero_point.numel() > 1:
        zero_point = zero_point.reshape(blocks.n_blocks)
    return dequantize_affine(q, block_size, scale.reshape(blocks.n_blocks), zero_point)


# What granularity costs (lesson 05) ------------------------------------------------------------


def bits_per_weight(
    shape: Sequence[int], block_size: Sequence[int], n_bits=8, scale_bits=32, zero_point_bits=0
) -> float:
    """The storage cost of one element, its share of the scales and zero points included::

        bits per weight = n_bits + (scale_bits + zero_point_bits) * blocks / elements

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


def plot_granularity_tradeoff(points: Sequence[TradeoffPoint], title=None) -> Figure:
    """The error of each granularity (left), and the error against bits per weight, scales
    included (right; further down and left is a better deal); one line per bit width, the
    error on a log axis. ``points`` are ``TradeoffPoint(label, n_bits, bits_per_weight, mse)``.
    """
    points = checks.tradeoff_points(points, TradeoffPoint)
    return plots.draw_granularity_tradeoff(points, title)


# ===== 10. Weights and activations (course lesson L3-E) ==========================================


def quantized_linear_W8A32_without_bias(input: Tensor, q_w: Tensor, s_w: Any, z_w: Any) -> Tensor:
    """A linear layer (no bias) with 8-bit weights and float activations::

        y = input @ W'.T        with  W' = s_w * (q_w - z_w)     (dequantized first, in float)

    ``q_w`` is the (out_features, in_features) integer weight; ``s_w`` and ``z_w`` are numbers or
    tensors that broadcast against it (``(out_features, 1)`` per output channel). The result has
    ``input``'s dtype and shape ``(..., out_features)``.

    >>> q_w = torch.tensor([[-127, 64], [0, 127]], dtype=torch.int8)
    >>> quantized_linear_W8A32_without_bias(torch.tensor([[1.0, 2.0]]), q_w, 2 / 127, 0)
    tensor([[0.0157, 4.0000]])
    """
    x, q, s_w, z_w = checks.w8a32_args(input, q_w, s_w, z_w)
    weight = dequantize_one_liner(q, s_w, z_w)
    return F.linear(x.to(torch.float32), weight).to(x.dtype)


def quantized_linear_W8A8_without_bias(
    q_x: Tensor, s_x: Any, z_x: Any, q_w: Tensor, s_w: Any, z_w: Any
) -> Tensor:
    """A linear layer (no bias) with integer weights *and* activations, the product in integers::

        y[b, o] = s_x[b] * s_w[o] * sum_i (q_x[b, i] - z_x[b]) * (q_w[o, i] - z_w[o])

    The scales leave the sum because they do not vary along ``i`` (per tensor, per row of ``x``,
    per output channel of ``w``). The sum runs in int64: an int8 ``q - z`` reaches 255, and
    33,000 products of 255 * 255 pass int32's 2**31. It is exact while ``in_features * max|q_x
    - z_x| * max|q_w - z_w| < 2**63`` (any int8 layer up to 1.4e14 inputs); beyond, a ValueError.
    The result is float32 (batch, out_features).

    >>> q_x = torch.tensor([[127, 0]], dtype=torch.int8)
    >>> q_w = torch.tensor([[-127, 64], [0, 127]], dtype=torch.int8)
    >>> quantized_linear_W8A8_without_bias(q_x, 1 / 127, 0, q_w, 2 / 127, 0)
    tensor([[-2.,  0.]])
    """
    qx, s_x, z_x, qw, s_w, z_w = checks.w8a8_args(q_x, s_x, z_x, q_w, s_w, z_w)
    accumulated = (qx.to(torch.int64) - z_x) @ (qw.to(torch.int64) - z_w).T  # int64: exact
    return (accumulated.double() * s_x * s_w.T).to(torch.float32)


def _sqnr_per_row(r: Tensor, r2: Tensor) -> Tensor:
    """``sqnr_db_per_row`` for checked tensors."""
    signal = r.double().square().mean(dim=-1)
    noise = (r2.double() - r.double()).square().mean(dim=-1)
    sqnr = 10.0 * torch.log10(signal / noise)
    sqnr[noise == 0] = math.inf
    sqnr[(noise > 0) & (signal == 0)] = -math.inf
    return sqnr


def sqnr_db_per_row(reference: Tensor, approximation: Tensor) -> Tensor:
    """The SQNR of every row (token) in decibels, float64, along the last dimension: one
    ``sqnr_db`` for a batch can hide a small token that is lost completely.

    >>> y = torch.tensor([[10.0, 0.0], [0.1, 0.0]])
    >>> sqnr_db_per_row(y, torch.tensor([[10.0, 1.0], [0.2, 0.0]]))
    tensor([20.,  0.], dtype=torch.float64)
    """
    r, r2 = checks.pair(reference, approximation)
    if r.dim() == 0:
        raise ValueError("a 0-dim tensor has no rows: use sqnr_db for a single number.")
    return _sqnr_per_row(r, r2)


def plot_output_sqnr(reference: Tensor, outputs: dict[str, Tensor], title=None) -> Figure:
    """How close quantized layers come to the float one: the SQNR of each output over the whole
    batch (left, bars) and of every token against the size of its float output (right, RMS on
    a log axis). ``reference`` is (tokens, out_features); ``outputs`` maps a label to an output
    of that shape. A line that falls to the left means small tokens come out worse.
    """
    y = checks.real_tensor(reference, "reference")
    checks.output_sqnr_args(y, outputs)
    overall, per_token = {}, {}
    for label, out in outputs.items():
        r, r2 = checks.pair(y, out)
        overall[label], per_token[label] = _sqnr(r, r2), _sqnr_per_row(r, r2)
    rms = y.double().square().mean(dim=-1).sqrt()
    return plots.draw_output_sqnr(overall, per_token, rms, title)


# ===== 11. An 8-bit linear layer for any model (course lessons L4-A and L4-B) ====================
# W8A16: int8 weights with one float scale per output row, activations in the model's float
# dtype (float32, float16 or bfloat16): a quarter of float32's memory for the weights.


def w8_a16_forward(
    weight: Tensor, input: Tensor, scales: Tensor, bias: Tensor | None = None
) -> Tensor:
    """The forward pass of a W8A16 linear layer::

        y[..., o] = scales[o] * sum_i input[..., i] * weight[o, i]  +  bias[o]

    ``weight`` is int8 (out_features, in_features). One scale per output row, shape ``(out,)``
    or ``(1, out)``, factors out of each output's sum, so it multiplies after the product (an
    ``(out, 1)`` scale would broadcast to the wrong shape: refused). The product runs in float32
    (float64 for float64 input), so float16 cannot overflow before the scale shrinks it; the
    result has ``input``'s dtype.

    >>> w = torch.tensor([[127, -64], [0, 127]], dtype=torch.int8)
    >>> w8_a16_forward(w, torch.tensor([[1.0, 2.0]]), torch.tensor([0.01, 0.02]))
    tensor([[-0.0100,  5.0800]])
    """
    q, x, scales, bias = checks.w8a16_args(weight, input, scales, bias)
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
    """``nn.Module._apply`` (run by ``.to()``, ``.half()``), except that a float32 ``scales``
    buffer only follows a change of device."""
    scales = module.scales
    nn.Module._apply(module, fn, recurse)
    module.dtype = fn(torch.empty(0, dtype=module.dtype)).dtype  # the layer's float dtype
    if module.scales.dtype != scales.dtype:  # a cast: keep float32, take only the device
        device = module.scales.device
        module.scales = (
            torch.empty_like(scales, device=device) if scales.is_meta else scales.to(device)
        )
    return module


def _row_levels(w: Tensor, q_min: int, q_max: int, scales: Any) -> tuple[Tensor, Tensor]:
    """A layer's int8 levels and float32 scales (out,): symmetric per row, or with ``scales``."""
    rows = block_shapes(w.shape, (1, w.shape[1]))  # one block per output row
    if scales is None:
        q, scale, _ = _quantize_blocks(w, rows, q_min, q_max, torch.int8, symmetric=True)
        return q, scale.reshape(-1).float()
    scale = checks.layer_scales(scales, w.shape[0])  # trained scales (section 15)
    return quantize_one_liner(w, scale.reshape(-1, 1), 0, q_min, q_max, torch.int8), scale


class W8A16LinearLayer(nn.Module):
    """A drop-in replacement for ``nn.Linear`` with int8 weights and float activations.

    Buffers, not parameters (``nn.Parameter`` of an int8 tensor raises: it cannot require a
    gradient): ``int8_weights``, int8 (out_features, in_features); ``scales``, float32
    (out_features,), one per output row; ``bias``, ``dtype`` (1, out_features) or ``None``. The
    scales stay float32 whatever ``dtype`` is, also under ``model.to(torch.bfloat16)`` (the course
    keeps them in the layer's dtype). ``forward`` returns the input's dtype.

    >>> layer = W8A16LinearLayer(2, 2, bias=False)
    >>> layer.quantize(torch.tensor([[1.0, -0.5], [0.0, 2.0]]))
    >>> layer.int8_weights
    tensor([[127, -64],
            [  0, 127]], dtype=torch.int8)
    """

    def __init__(self, in_features: int, out_features: int, bias=True, dtype=torch.float32) -> None:
        super().__init__()
        self.dtype = checks.float_dtype(dtype)
        in_features, out_features, bias = checks.layer_sizes(in_features, out_features, bias)
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer(
            "int8_weights", torch.zeros((out_features, in_features), dtype=torch.int8)
        )
        self.register_buffer("scales", torch.ones(out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype) if bias else None)

    def quantize(self, weights: Tensor, scales: Tensor | None = None) -> None:
        """Quantize float ``weights`` (out_features, in_features) into this layer's buffers:
        symmetric, per output row, ``scale = max|row| / 127`` (section 9), clamped to
        [-128, 127] before the int8 cast. Given ``scales`` (one per row) are used instead."""
        w = checks.layer_weights(weights, self.out_features, self.in_features).float()
        q, scale = _row_levels(w, -128, 127, scales)
        self.int8_weights.copy_(q)
        self.scales.copy_(scale)

    def forward(self, input: Tensor) -> Tensor:
        """``w8_a16_forward`` with this layer's buffers; returns ``input``'s dtype."""
        return w8_a16_forward(self.int8_weights, input, self.scales, self.bias)

    def _apply(self, fn, recurse=True):
        """Keep the scales float32 under ``.to(dtype)`` and ``.half()``; only move them."""
        return _apply_keeping_float32_scales(self, fn, recurse)

    def extra_repr(self) -> str:
        """What ``print(model)`` shows inside ``W8A16LinearLayer(...)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, dtype={dtype_name(self.dtype)}"
        )


def _is_excluded(path: str, module: nn.Module, excluded: Sequence[str]) -> bool:
    """The rule of ``replace_linear_with_target``: a plain name excludes an ``nn.Linear`` of that
    name at any depth, as in the course (a container of that name is still walked into); a
    dotted path (``"encoder.layer.0"``) excludes the module there with everything inside it."""
    parts = path.split(".")
    if isinstance(module, nn.Linear) and parts[-1] in excluded:
        return True
    return any(".".join(parts[: i + 1]) in excluded for i in range(1, len(parts)))


def _linears_to_replace(module: nn.Module, excluded: Sequence[str], prefix: str = ""):
    """``(parent, name, layer)`` for every ``nn.Linear`` to replace, walking every child as the
    course does (a layer registered under two names comes twice). ``nn.MultiheadAttention`` is
    not walked into: it reads its ``out_proj.weight`` itself, which a new layer would not have."""
    for name, child in list(module._modules.items()):
        path = prefix + name
        if child is None or _is_excluded(path, child, excluded):
            continue
        if isinstance(child, nn.Linear):
            yield module, name, child
        elif not isinstance(child, nn.MultiheadAttention):
            yield from _linears_to_replace(child, excluded, path + ".")


def _replace_linears(module: nn.Module, target_class, excluded, quantize: bool) -> None:
    """Build every new layer first, on the old one's device (``meta`` in a skeleton), with its
    bias and dtype, quantized if asked; then swap them all in. So an error (a NaN weight) leaves
    the model as it was, and a layer under two names becomes one new layer under both."""
    targets, new = list(_linears_to_replace(module, excluded)), {}
    for _, _, old in targets:
        if id(old) in new:
            continue
        with torch.device(old.weight.device):
            layer = target_class(
                old.in_features, old.out_features, old.bias is not None, old.weight.dtype
            )
        if quantize:
            layer.quantize(old.weight.detach())
        if old.bias is not None and not old.bias.is_meta:
            layer.bias.copy_(old.bias.detach().reshape(layer.bias.shape))
        new[id(old)] = layer
    for parent, name, old in targets:
        setattr(parent, name, new[id(old)])


def replace_linear_with_target(
    module: nn.Module, target_class: type[nn.Module], module_name_to_exclude=()
) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (recursively, in place) by an empty
    ``target_class(in_features, out_features, bias, dtype)``; returns ``module``.

    ``module_name_to_exclude`` holds plain names, which keep every ``nn.Linear`` of that name in
    float at any depth (``"lm_head"``), as in the course; a container's name does not stop the
    walk. A dotted path (``"encoder.layer.0"``, our addition) keeps the module there with
    everything inside it. Layers inside ``nn.MultiheadAttention`` stay, since it reads their
    weights directly. New layers are built on the old ones' device (``meta`` in a skeleton)."""
    names = checks.replace_args(module, target_class, module_name_to_exclude)
    _replace_linears(module, target_class, names, quantize=False)
    return module


def replace_linear_with_target_and_quantize(
    module: nn.Module, target_class: type[nn.Module], module_name_to_exclude=()
) -> nn.Module:
    """``replace_linear_with_target``, and each new layer quantizes the old layer's weights
    (``target_class.quantize``). Returns ``module``, changed in place."""
    names = checks.replace_args(module, target_class, module_name_to_exclude)
    if not hasattr(target_class, "quantize"):
        raise TypeError(f"{target_class.__name__} has no quantize(weights) method.")
    _replace_linears(module, target_class, names, quantize=True)
    return module


def layer_names(module: nn.Module, layer_class: type | tuple[type, ...] = nn.Linear) -> list[str]:
    """The dotted names of the modules inside ``module`` that are a ``layer_class`` (subclasses
    count), in ``named_modules()`` order; a module registered twice is listed once.

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
# A low-bit weight needs no low-bit kernel to be *measured*: quantize it, dequantize it at once
# and compute in float with exactly the values it could hold ("fake quantization").


def fake_quantize(
    weight: Tensor, n_bits=8, granularity="per_channel", group_size=None, absmax=None
) -> Tensor:
    """``weight`` after a symmetric round trip at ``n_bits``, quantized then dequantized::

        w' = s * clamp(round(w / s), -q_max, q_max)      s = max|w| / q_max, per block

    ``granularity``: ``"per_tensor"``, ``"per_channel"`` (a scale per output row) or
    ``"per_group"``. ``absmax`` replaces ``max|w|`` by a given range per block (lesson 13). At 2
    bits the levels are ``-s, 0, s``. The result has ``weight``'s shape and float dtype.

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
    blocks = block_shapes(w.shape, granularity_block_size(w.shape, granularity, 0, group_size))
    if absmax is not None:
        absmax = checks.absmax(absmax, blocks.n_blocks)
    output_dtype = weight.dtype if weight.is_floating_point() else torch.float32
    q, scale, zero_point = _quantize_blocks(
        w.float(), blocks, -q_max, q_max, torch.int8, symmetric=True, r_range=absmax
    )
    return _dequantize_blocks(q, blocks, scale, zero_point, output_dtype)


def fake_quantize_linears(
    model: nn.Module, n_bits=8, granularity="per_channel", group_size=None, layers=None, absmax=None
) -> nn.Module:
    """A **copy** of ``model`` whose ``nn.Linear`` weights (those named in ``layers``, or all)
    go through ``fake_quantize``; biases stay, and ``model`` itself is unchanged. ``absmax``, if
    given, is a function ``absmax(weight, block_size)`` giving each block's range.

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
        block_size = granularity_block_size(w.shape, granularity, 0, group_size)
        ranges = None if absmax is None else absmax(w, block_size)
        with torch.no_grad():
            layer.weight.copy_(fake_quantize(w, n_bits, granularity, group_size, ranges))
    return quantized


def linears_bits_per_weight(
    model: nn.Module, n_bits=8, granularity="per_channel", group_size=None, scale_bits=32
) -> float:
    """The average bits of one weight of ``model``'s ``nn.Linear`` layers: each layer's
    ``bits_per_weight`` (one ``scale_bits`` scale per block, no zero point), weighted by its size.

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
    correct: dict[str, dict[int, int]], n_test: int, float_correct=None, n_classes=None, title=None
) -> Figure:
    """Test accuracy against bit width, one line per label of ``correct`` (``{label: {n_bits:
    images right}}`` out of ``n_test``), most bits on the left; dashed: the float model
    (``float_correct``), dotted: guessing (``1 / n_classes``)."""
    checks.accuracy_counts(correct, n_test, float_correct, n_classes)
    return plots.draw_accuracy_vs_bits(correct, n_test, float_correct, n_classes, title)


# ===== 12. Weight packing: several low-bit values in one byte (course lesson L5) =================
# Packing puts 8 // bits values (bits in PACK_BITS) into every byte, the first value in the
# lowest bits (the course's order):  [1, 0, 3, 2] at 2 bits -> 0b10_11_00_01 = 177.
# It works on unsigned values 0 .. 2**bits - 1: a signed level (int4: -8..7) is stored in offset
# binary first, q - q_min. The only Python loop runs over the positions inside a byte.


def pack_weights(uint8tensor: Tensor, bits: int, pad=False) -> Tensor:
    """Pack ``k = 8 // bits`` values of ``bits`` bits into every byte, along the last dimension::

        byte = v[0]  |  v[1] << bits  |  v[2] << 2 * bits  |  ...  |  v[k - 1] << (k - 1) * bits

    (``<<`` shifts a value up, ``|`` is bitwise or.) ``(..., n)`` becomes ``(..., n / k)``; ``n``
    must be a multiple of ``k``, or pass ``pad=True`` to fill up with zeros. The values must fit
    in ``bits``; signed levels go through ``to_offset_binary`` first.

    >>> pack_weights(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    tensor([177], dtype=torch.uint8)
    >>> pack_weights(torch.tensor([[1, 2, 3, 4], [15, 0, 0, 15]], dtype=torch.uint8), 4)
    tensor([[ 33,  67],
            [ 15, 240]], dtype=torch.uint8)
    """
    values, bits = checks.pack_args(uint8tensor, bits, pad)
    per_byte, n = 8 // bits, values.shape[-1]
    if n % per_byte:
        checks.padding_allowed(pad, n, per_byte, bits)
        values = F.pad(values, (0, per_byte - n % per_byte))
    groups = values.reshape(*values.shape[:-1], values.shape[-1] // per_byte, per_byte)
    packed = groups[..., 0].clone()
    for position in range(1, per_byte):  # a loop over the positions in a byte only
        packed |= groups[..., position] << (position * bits)  # shift by 0, bits, 2 * bits, ...
    return packed


def unpack_weights(uint8tensor: Tensor, bits: int, shape: Sequence[int] | None = None) -> Tensor:
    """The values ``pack_weights`` packed, as uint8; value ``i`` of every byte is::

        v[i] = (byte >> i * bits) & (2**bits - 1)      # shift it down, keep its bits

    ``shape``, the shape before packing with ``pad=True``, removes the padding.

    >>> unpack_weights(torch.tensor([177], dtype=torch.uint8), 2)
    tensor([1, 0, 3, 2], dtype=torch.uint8)
    >>> packed = pack_weights(torch.tensor([5, 6, 7], dtype=torch.uint8), 4, pad=True)
    >>> packed
    tensor([101,   7], dtype=torch.uint8)
    >>> unpack_weights(packed, 4), unpack_weights(packed, 4, shape=(3,))
    (tensor([5, 6, 7, 0], dtype=torch.uint8), tensor([5, 6, 7], dtype=torch.uint8))
    """
    packed, bits, shape = checks.unpack_args(uint8tensor, bits, shape)
    per_byte, mask = 8 // bits, 2**bits - 1
    # one tensor per position in a byte (the only loop), then side by side: (..., m, per_byte)
    values = torch.stack([(packed >> shift) & mask for shift in range(0, 8, bits)], dim=-1)
    values = values.reshape(*packed.shape[:-1], packed.shape[-1] * per_byte)
    if shape is not None and shape[-1] != values.shape[-1]:
        values = values[..., : shape[-1]].contiguous()
    return values


def pack_weights_loop(uint8tensor: Tensor, bits: int) -> Tensor:
    """``pack_weights`` for a 1-D tensor as the course writes it, one element at a time in a
    Python loop: the same bytes, for tests and timings (each step costs microseconds of
    bookkeeping). No checks.

    >>> pack_weights_loop(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    tensor([177], dtype=torch.uint8)
    """
    per_byte = 8 // bits
    packed = torch.zeros(uint8tensor.shape[0] // per_byte, dtype=torch.uint8)
    for index in range(uint8tensor.shape[0]):
        byte, position = divmod(index, per_byte)
        packed[byte] |= uint8tensor[index] << (bits * position)
    return packed


def to_offset_binary(quantized_tensor: Tensor, bits: int) -> Tensor:
    """Signed ``bits``-bit levels as unsigned ones for ``pack_weights``: ``u = q + 2**(bits - 1)``
    (int4 -8..7 become 0..15). The int8 value itself would not pack: -1 is ``0b11111111`` in two's
    complement, and its high bits would spill into the neighbours.

    >>> to_offset_binary(torch.tensor([-8, -1, 0, 7], dtype=torch.int8), 4)
    tensor([ 0,  7,  8, 15], dtype=torch.uint8)
    """
    q, bits = checks.to_offset_args(quantized_tensor, bits)
    return (q.to(torch.int16) + 2 ** (bits - 1)).to(torch.uint8)


def from_offset_binary(uint8tensor: Tensor, bits: int) -> Tensor:
    """The signed levels back from offset binary, as int8: ``q = u - 2**(bits - 1)``.

    >>> from_offset_binary(torch.tensor([0, 7, 8, 15], dtype=torch.uint8), 4)
    tensor([-8, -1,  0,  7], dtype=torch.int8)
    """
    u, bits = checks.from_offset_args(uint8tensor, bits)
    return (u.to(torch.int16) - 2 ** (bits - 1)).to(torch.int8)


def packed_weight_bytes(shape: Sequence[int], n_bits: int, scale_bytes: int = 4) -> int:
    """The bytes of an ``(out_features, in_features)`` weight at ``n_bits`` per value, every
    row packed on its own (padded to whole bytes), with one scale per row::

        out * ceil(in * n_bits / 8)  +  out * scale_bytes        (4: float32 scales)

    >>> packed_weight_bytes((4096, 4096), 4)      # 4096 * 2048 + 4096 * 4
    8404992
    >>> packed_weight_bytes((10, 3), 2)           # 3 two-bit values still take a whole byte
    50
    """
    n_bits = checks.pack_bits(n_bits)
    out_features, in_features = checks.weight_shape(shape, scale_bytes)
    return out_features * -(-in_features // (8 // n_bits)) + out_features * int(scale_bytes)


def packed_model_bytes(model: nn.Module, n_bits: int, module_name_to_exclude=()) -> int:
    """The bytes of ``model`` with every ``nn.Linear`` weight that ``replace_linear_with_target``
    would replace packed at ``n_bits`` (``packed_weight_bytes``); the rest counts as it is.

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
    for _, _, layer in _linears_to_replace(model, excluded):
        packed[id(layer.weight)] = packed_weight_bytes(layer.weight.shape, n_bits)
    total, seen = 0, set()
    for tensor in list(model.parameters()) + list(model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += packed.get(id(tensor), tensor.numel() * tensor.element_size())
    return total


class PackedLinearLayer(nn.Module):
    """``W8A16LinearLayer`` with ``n_bits``-bit weights packed into bytes (4 bits: two per byte).

    ``packed_weights`` is uint8 ``(out_features, ceil(in_features * n_bits / 8))``: each row's
    levels in offset binary, packed along the row; ``scales`` and ``bias`` are as in
    ``W8A16LinearLayer``. ``quantize`` is symmetric per output row with ``q_max = 2**(n_bits - 1)
    - 1``; ``forward`` unpacks and runs ``w8_a16_forward``. The replace functions pass no
    ``n_bits``: give them the subclasses ``W4A16LinearLayer`` or ``W2A16LinearLayer``.

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
        self, in_features: int, out_features: int, bias=True, dtype=torch.float32, n_bits=None
    ) -> None:
        super().__init__()
        self.dtype = checks.float_dtype(dtype)
        self.n_bits = checks.packed_layer_bits(type(self).n_bits if n_bits is None else n_bits)
        in_features, out_features, bias = checks.layer_sizes(in_features, out_features, bias)
        self.in_features, self.out_features = in_features, out_features
        row_bytes = -(-self.in_features // (8 // self.n_bits))
        self.register_buffer(
            "packed_weights", torch.zeros((self.out_features, row_bytes), dtype=torch.uint8)
        )
        self.register_buffer("scales", torch.ones(self.out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype) if bias else None)

    def quantize(self, weights: Tensor, scales: Tensor | None = None) -> None:
        """Quantize float ``weights`` (out_features, in_features) into the buffers: symmetric
        per output row at ``n_bits`` (or with given ``scales``), offset binary, packed along
        each row."""
        w = checks.layer_weights(weights, self.out_features, self.in_features).float()
        q, scale = _row_levels(w, *get_q_range(torch.int8, self.n_bits), scales)
        levels = to_offset_binary(q, self.n_bits)
        self.packed_weights.copy_(pack_weights(levels, self.n_bits, pad=True))
        self.scales.copy_(scale)

    def unpacked_weights(self) -> Tensor:
        """The int8 levels, ``(out_features, in_features)``, unpacked from ``packed_weights``."""
        shape = (self.out_features, self.in_features)
        values = unpack_weights(self.packed_weights, self.n_bits, shape=shape)
        return from_offset_binary(values, self.n_bits)

    def forward(self, input: Tensor) -> Tensor:
        """``w8_a16_forward(self.unpacked_weights(), input, self.scales, self.bias)``, computed
        without unpacking the whole weight (``support.fast.packed_linear``: one product per bit
        position of the bytes, the offset taken out once); equal up to float rounding."""
        x = checks.linear_input(input, self.in_features)
        compute = torch.promote_types(x.dtype, torch.float32)
        output = fast.packed_linear(x.to(compute), self.packed_weights, self.n_bits)
        output = output * self.scales.to(compute)
        if self.bias is not None:
            output = output + self.bias.reshape(-1).to(compute)
        return output.to(x.dtype)

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


def plot_packed_bits(uint8tensor: Tensor, bits: int, title=None) -> Figure:
    """Which value's bits sit where: a 1-D uint8 tensor's values (top) and the bytes
    ``pack_weights`` packs them into (bottom), bit by bit, each value in its own colour. A
    byte is written highest bit first, so the first value ends up on the **right** of its byte.
    At most 8 bytes.

    >>> fig = plot_packed_bits(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    >>> fig.axes[0].get_title()
    '4 values of 2 bits packed into 1 byte, lowest bits first'
    """
    bits = checks.pack_bits(bits)
    values = checks.uint8(uint8tensor, "uint8tensor", packing=True)
    packed = pack_weights(checks.drawable_values(values, bits, plots.PLOT_MAX_BYTES), bits)
    n, size = len(packed), f"{bits} bit{'s' if bits > 1 else ''}"
    title = title or (
        f"{len(values)} values of {size} packed into {n} byte{'s' if n > 1 else ''}, "
        "lowest bits first"
    )
    return plots.draw_packed_bits(values.tolist(), packed.tolist(), bits, title)


# ===== 13. Choosing the range: beyond min and max ================================================
# Min-max pays for its rarest value with a larger step for all. *Clipping* picks a smaller
# absmax alpha: values beyond it saturate, all others get a finer step. RANGE_METHODS:
#
#     min-max       alpha = max|r| of the block                       (nothing is clipped)
#     percentile    alpha = the p-th percentile of |r| in the block   (the top 100 - p % clipped)
#     MSE-optimal   alpha = c * max|r| with the smallest round-trip MSE, c in (0, 1]
#
# Symmetric, per block (section 9's r_range), no loop over the blocks. The grid stays
# -q_max..q_max ("course" in CLIPPING_GRIDS; the code -q_max - 1 stays unused, the "narrow
# range" of TFLite and ONNX); "midrise" (no level at 0) is there to compare with ACIQ.


def _symmetric_levels(dtype: torch.dtype, n_bits: int | None) -> tuple[int, int]:
    """``(q_low, q_max)`` of the symmetric grid: ``-q_max..q_max`` for a signed dtype; for an
    unsigned one the same grid shifted by its midpoint ``m``, ``2 * m - q_max..q_max``."""
    q_min, q_max = get_q_range(dtype, n_bits)
    middle = 0 if q_min < 0 else (q_min + q_max + 1) // 2
    return 2 * middle - q_max, q_max


def absmax_minmax(tensor: Tensor, block_size: Sequence[int]) -> Tensor:
    """The largest magnitude ``max|r|`` of every block: min-max's range, float64 of shape
    ``n_blocks``.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> absmax_minmax(t, (1, 3)).flatten().tolist()      # per row
    [728.5999755859375, 295.5, 684.5999755859375]
    """
    r_min, r_max = block_range(tensor, block_size)
    return torch.maximum(-r_min, r_max)


def absmax_percentile(tensor: Tensor, block_size: Sequence[int], percentile=99.9) -> Tensor:
    """The ``percentile``-th percentile of ``|r|`` in every block (float64, ``n_blocks``),
    interpolated like ``torch.quantile``; with a block's ``n`` magnitudes sorted, ``v[0..n-1]``::

        position = (n - 1) * percentile / 100,   k = floor(position)
        absmax   = v[k] + (position - k) * (v[k + 1] - v[k])

    ``torch.kthvalue`` has no limit on the size (``torch.quantile`` stops at 2**24 elements).

    >>> r = torch.tensor([3.0, -10.0, 1.0, 8.0, -2.0])     # magnitudes 1, 2, 3, 8, 10
    >>> absmax_percentile(r, (5,), 100.0).item(), absmax_percentile(r, (5,), 50.0).item()
    (10.0, 3.0)
    >>> absmax_percentile(r, (5,), 90.0).item()            # position 3.6: 8 + 0.6 * (10 - 8)
    9.2
    """
    percentile = checks.percentile(percentile)
    r = checks.finite_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    params = blocks.param_shape or (1,)
    magnitudes = r.abs().reshape(blocks.view_shape or (1,))
    reduce = [d for d, p in enumerate(params) if p == 1]
    keep = [d for d, p in enumerate(params) if p != 1]
    # every block's elements along the last dimension: (*blocks, elements of a block)
    magnitudes = magnitudes.permute(*keep, *reduce)
    magnitudes = magnitudes.reshape(*magnitudes.shape[: len(keep)], -1)
    position = (magnitudes.shape[-1] - 1) * percentile / 100.0
    k = math.floor(position)
    absmax = magnitudes.kthvalue(k + 1, dim=-1).values.double()  # kthvalue counts from 1
    if position > k:
        above = magnitudes.kthvalue(k + 2, dim=-1).values.double()
        absmax = absmax + (position - k) * (above - absmax)
    return absmax.reshape(blocks.n_blocks)


def quantize_clipped(
    tensor: Tensor, block_size: Sequence[int], absmax: Tensor | float, dtype=torch.int8, n_bits=None
) -> tuple[Tensor, Tensor, Tensor]:
    """Symmetric quantization with a given range ``[-absmax, absmax]`` per block (shape
    ``n_blocks`` or one number): ``(q, scale, zero_point)`` like ``quantize_blockwise``, with
    ``s = absmax / q_max`` and ``q = clamp(round(r / s), -q_max, q_max)``: beyond ``absmax`` a
    value saturates at ``+-q_max``. Dequantize with ``dequantize_affine``.

    >>> q, s, z = quantize_clipped(torch.tensor([0.1, -0.4, 2.0]), (3,), 0.5, n_bits=4)
    >>> q, s.item()                                   # 2.0 is clipped to 7 * s = 0.5
    (tensor([ 1, -6,  7], dtype=torch.int8), 0.07142857142857142)
    """
    get_q_range(dtype, n_bits)  # checks dtype and n_bits
    r = checks.real_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    absmax = checks.absmax(absmax, blocks.n_blocks)
    q_low, q_max = _symmetric_levels(dtype, n_bits)
    return _quantize_blocks(r, blocks, q_low, q_max, dtype, symmetric=True, r_range=absmax)


def _round_trip(view: Tensor, absmax: Tensor, dtype, n_bits, grid: str) -> Tensor:
    """The dequantized block view for ``absmax`` (float64 in ``param_shape``), in the view's
    float dtype, without the integer tensor (checked arguments). On the course's grid this is
    exactly ``quantize_clipped`` then ``dequantize_affine`` for float32 input."""
    if grid == "midrise":  # 2**bits levels s * (k + 1/2), k = -2**(bits - 1) .. 2**(bits - 1) - 1
        half = 2 ** ((n_bits if n_bits is not None else torch.iinfo(dtype).bits) - 1)
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


def _block_mse(back: Tensor, view: Tensor, blocks: Blocks) -> Tensor:
    """The MSE of every block, float64 in ``param_shape`` (``back`` is used up). Summed in
    float64, so the search picks the same candidate whatever order a CPU adds in."""
    error = back.sub_(view) if back.dtype == view.dtype else back - view
    error = error.square_().double()
    reduce = tuple(d for d, p in enumerate(blocks.param_shape) if p == 1)
    return error.mean(dim=reduce, keepdim=True) if reduce else error


def fake_quantize_clipped(
    tensor: Tensor, block_size: Sequence[int], absmax, dtype=torch.int8, n_bits=None, grid="course"
) -> Tensor:
    """``tensor`` after a round trip with the range ``[-absmax, absmax]`` per block
    (``quantize_clipped``, ``dequantize_affine``), in its float dtype. ``grid="midrise"`` rounds to
    ``2**n_bits`` levels ``s * (k + 1/2)`` instead: ``s = absmax / 2**(n_bits - 1)``,
    ``k = floor(r / s)`` clamped to ``-2**(n_bits - 1) .. 2**(n_bits - 1) - 1``.

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
        q_low, q_max = _symmetric_levels(dtype, n_bits)
        q, s, z = _quantize_blocks(r, blocks, q_low, q_max, dtype, symmetric=True, r_range=absmax)
        return _dequantize_blocks(q, blocks, s, z, r.dtype)
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
    tensor: Tensor, block_size: Sequence[int], ratios, dtype=torch.int8, n_bits=None, grid="course"
) -> Tensor:
    """The MSE of every block clipped at ``ratio * max|r|``, for every ratio (1 is min-max):
    float64 of shape ``(len(ratios), *n_blocks)``, one round trip of the tensor per ratio.

    >>> r = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    >>> clipping_mse_curve(r, (5,), [1.0, 0.6], n_bits=2)    # alpha = 2.0, then 1.2
    tensor([[0.8000],
            [0.1600]], dtype=torch.float64)
    """
    view, blocks, absmax, grid = _search_setup(tensor, block_size, dtype, n_bits, grid)

    def mse_at(ratio: float) -> Tensor:  # one round trip of the whole tensor, every block at once
        back = _round_trip(view, ratio * absmax, dtype, n_bits, grid)
        return _block_mse(back, view, blocks).reshape(blocks.n_blocks)

    ratios = checks.ratios(ratios).tolist()
    curves = fast.map_in_workers(mse_at, ratios, parallel=view.numel() > fast.PARALLEL_ELEMENTS)
    return torch.stack(curves)


def absmax_mse_optimal(
    tensor: Tensor,
    block_size: Sequence[int],
    dtype=torch.int8,
    n_bits=None,
    n_grid=100,
    n_refine=10,
    grid="course",
) -> Tensor:
    """The clipping range with the smallest round-trip MSE in every block (float64,
    ``n_blocks``): ``absmax = c * max|r|`` for the candidate ``c`` with the smallest MSE.

    The candidates are ``1/n_grid, ..., 1`` (1 is min-max, so the result is never worse), then
    ``2 * n_refine`` more around each block's best, ``n_refine`` times closer; each is one round
    trip of the whole tensor, every block at once. The best candidate tried, not a proven minimum.
    Blocks so small that a candidate's scale would fall below ``SCALE_EPS`` (about 1e-5 at 8 bits)
    are searched in units of their max|r| (rescaled, no warning): the answer scales with the tensor.

    >>> r = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    >>> absmax_mse_optimal(r, (5,), n_bits=2, n_grid=10).item()   # levels -1.2, 0, 1.2
    1.2
    """
    n_grid = checks.whole_number(n_grid, "n_grid", 1)
    n_refine = checks.whole_number(n_refine, "n_refine", 0)
    view, blocks, absmax, grid = _search_setup(tensor, block_size, dtype, n_bits, grid)
    original, smallest = absmax, absmax / (n_grid * max(n_refine, 1))  # the smallest candidate
    if bool(((smallest > 0) & (smallest / _symmetric_levels(dtype, n_bits)[1] < SCALE_EPS)).any()):
        unit = torch.where(absmax > 0, absmax, 1.0)  # tiny values: search in units of max|r|, so
        view, absmax = view / unit.to(view.dtype), absmax / unit  # that no scale is floored
    best_ratio = torch.ones_like(absmax)
    best_mse = torch.full_like(absmax, math.inf)
    parallel = view.numel() > fast.PARALLEL_ELEMENTS  # candidates shared between workers (fast)

    def mse_at(ratio: Tensor) -> Tensor:  # one ratio per block (or one for all)
        return _block_mse(_round_trip(view, ratio * absmax, dtype, n_bits, grid), view, blocks)

    def try_all(ratios: list[Tensor]) -> None:  # in order: on a tie the first one tried wins
        for ratio, mse in zip(ratios, fast.map_in_workers(mse_at, ratios, parallel), strict=True):
            better = mse < best_mse
            best_mse[better] = mse[better]
            best_ratio[better] = ratio.expand_as(best_ratio)[better]

    try_all([torch.tensor(k / n_grid, dtype=torch.float64) for k in range(1, n_grid + 1)])
    coarse, fine_step = best_ratio.clone(), 1.0 / (n_grid * max(n_refine, 1))
    steps = [sign * i * fine_step for i in range(1, n_refine + 1) for sign in (-1, 1)]
    try_all([(coarse + step).clamp(fine_step, 1.0) for step in steps])
    return (best_ratio * original).reshape(blocks.n_blocks)


def clipping_absmax(
    tensor: Tensor,
    block_size: Sequence[int],
    method="mse",
    dtype=torch.int8,
    n_bits=None,
    percentile=99.9,
) -> Tensor:
    """Every block's clipping range by ``method``: ``"min-max"``, ``"percentile"`` or ``"mse"``
    (``absmax_mse_optimal`` for ``dtype`` and ``n_bits``). For ``quantize_clipped`` or
    ``fake_quantize(..., absmax=...)``.

    >>> r = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    >>> [round(clipping_absmax(r, (5,), m, n_bits=2, percentile=50).item(), 3)
    ...  for m in RANGE_METHODS]
    [2.0, 1.0, 1.2]
    """
    checks.dtype_and_bits(dtype, n_bits)  # checked for every method, though "mse" alone uses them
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
# 2**M levels with two terms, the exact clipping term and step**2 / 12 (step = 2 alpha / 2**M),
# and minimise their sum instead of searching; for Laplace data first, then for normal data.


def _aciq_mse(alpha: Tensor, n_bits: int, laplace: bool) -> Tensor:
    """ACIQ's MSE for a unit-scale variable (Laplace(0, 1) or N(0, 1)), float64 ``alpha``."""
    if laplace:
        clipping = 2 * torch.exp(-alpha)
    else:
        tail = alpha * math.sqrt(2 / math.pi) * torch.exp(-alpha.square() / 2)
        clipping = (alpha.square() + 1) * torch.special.erfc(alpha / math.sqrt(2)) - tail
    return clipping + alpha.square() / (3.0 * 4.0**n_bits)


def aciq_mse_gaussian(alpha: float, n_bits: int, sigma: float = 1.0) -> float:
    """ACIQ's MSE of a normal N(0, sigma**2) variable clipped at ``+-alpha`` and rounded to
    ``2**n_bits`` levels over ``[-alpha, alpha]``::

        clipping:  (alpha**2 + sigma**2) * (1 - erf(alpha / (sigma * sqrt(2))))
                   - alpha * sigma * sqrt(2 / pi) * exp(-alpha**2 / (2 * sigma**2))
        rounding:  alpha**2 / (3 * 4**n_bits)

    >>> round(aciq_mse_gaussian(2.0, 4), 5)       # clipping 0.01155 + rounding 0.00521
    0.01675
    """
    alpha, n_bits, sigma = checks.aciq_args(alpha, n_bits, sigma, "sigma")
    return (
        _aciq_mse(torch.tensor(alpha / sigma, dtype=torch.float64), n_bits, False).item() * sigma**2
    )


def aciq_mse_laplace(alpha: float, n_bits: int, b: float = 1.0) -> float:
    """ACIQ's MSE of a Laplace(0, b) variable (variance ``2 b**2``), as ``aciq_mse_gaussian``::

        clipping:  2 * b**2 * exp(-alpha / b),     rounding:  alpha**2 / (3 * 4**n_bits)

    >>> round(aciq_mse_laplace(5.0, 4), 5)        # clipping 0.01348 + rounding 0.03255
    0.04603
    """
    alpha, n_bits, b = checks.aciq_args(alpha, n_bits, b, "b")
    return _aciq_mse(torch.tensor(alpha / b, dtype=torch.float64), n_bits, True).item() * b**2


def _aciq_clip(n_bits: int, laplace: bool) -> float:
    """The ``alpha`` (unit scale) that minimises ACIQ's MSE: a scan of 0.5 to 20 in 1e-4 steps."""
    n_bits = checks.bits(n_bits)
    a = torch.arange(5_000, 200_001, dtype=torch.float64) * 1e-4
    return float(a[int(_aciq_mse(a, n_bits, laplace).argmin())])


def aciq_clip_gaussian(n_bits: int, sigma: float = 1.0) -> float:
    """The ``alpha`` that minimises ``aciq_mse_gaussian``, to 1e-4 sigma.

    >>> [round(aciq_clip_gaussian(bits), 2) for bits in (2, 3, 4, 8)]
    [1.71, 2.15, 2.56, 3.92]
    """
    return _aciq_clip(n_bits, laplace=False) * checks.aciq_args(0.0, n_bits, sigma, "sigma")[2]


def aciq_clip_laplace(n_bits: int, b: float = 1.0) -> float:
    """The ``alpha`` that minimises ``aciq_mse_laplace``, to 1e-4 b.

    >>> [round(aciq_clip_laplace(bits), 2) for bits in (2, 3, 4, 8)]
    [2.83, 3.9, 5.03, 9.9]
    """
    return _aciq_clip(n_bits, laplace=True) * checks.aciq_args(0.0, n_bits, b, "b")[2]


# Plots -------------------------------------------------------------------------------------------


def plot_clipping_curves(
    tensor: Tensor, n_bits: Sequence[int] = (8, 4, 2), percentile=99.9, ratios=None, title=None
) -> Figure:
    """The MSE of ``tensor`` (one range) against the clipping range ``alpha / max|r|``, one panel
    per bit width: measured, the rounding-only estimate ``s**2 / 12`` (dashed), and min-max, the
    ``percentile`` and the MSE-optimal range marked. Rounding dominates on the right, clipping on
    the left. ``ratios`` defaults to 60 from 0.02 to 1."""
    r = checks.real_tensor(tensor)
    widths = checks.bit_widths(n_bits)
    for bits in widths:
        get_q_range(torch.int8, bits)
    ratios = torch.linspace(0.02, 1.0, 60, dtype=torch.float64) if ratios is None else ratios
    ratios = checks.ratios(ratios)
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
            marks.append((label, alpha / peak, quantization_error(r, back).item(), marker, colour))
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


def plot_clipping_ranges(tensor: Tensor, ranges: dict[str, float], bins=120, title=None) -> Figure:
    """A histogram of ``tensor``'s values (count on a log axis) with two lines at ``-alpha`` and
    ``+alpha`` for every ``label: alpha`` in ``ranges``, labelled with the share beyond it.

    >>> fig = plot_clipping_ranges(torch.tensor([-1.0, 0.0, 0.5, 3.0]), {"min-max": 3.0})
    >>> fig.axes[0].get_legend().get_texts()[1].get_text()
    'min-max: ±3, 0.00% beyond'
    """
    r, _, _, bins = checks.clipping_ranges_args(tensor, ranges, bins)
    values = r.flatten().to(torch.float64)
    lines = [
        (label, float(alpha), (values.abs() > float(alpha)).double().mean().item())
        for label, alpha in ranges.items()
    ]
    title = title or "Where each method clips"
    return plots.draw_clipping_ranges(values, bins, lines, title)


# ===== 14. Number formats as grids: float8 and NF4 (beyond the course) ===========================
# Every grid so far was evenly spaced: the integers q_min..q_max times a scale. A float format
# spaces its values by powers of two. A float8 byte holds a sign bit, E exponent bits and M
# mantissa bits; with the exponent field e, the mantissa field m and the format's bias:
#
#     normal     (e > 0):   (-1)**sign * 2**(e - bias) * (1 + m / 2**M)
#     subnormal  (e == 0):  (-1)**sign * 2**(1 - bias) * (m / 2**M)      (no implicit 1)
#
# e4m3fn (E=4, M=3, bias 7, "fn": finite) has no infinities: only S.1111.111 (0x7F, 0xFF) is
# NaN, so its largest value is 1.75 * 2**8 = 448. e5m2 (E=5, M=2, bias 15) keeps IEEE 754's
# rule: an all-ones exponent is infinity (m == 0) or NaN, largest finite value 57344. NF4
# (QLoRA) has 16 levels at quantiles of a normal distribution. Quantizing onto any of them
# takes one scale per block (section 9's block sizes), s = max|block| / max|grid|, and then
# the nearest grid value: the codes are indices into the grid.


def float8_from_bits(byte: int, fmt="e4m3fn") -> float:
    """The value of the float8 code ``byte`` (0..255) in ``fmt``, ``"e4m3fn"`` or ``"e5m2"``,
    decoded from its sign, exponent and mantissa fields (the formulas above).

    >>> float8_from_bits(0x7E, "e4m3fn"), float8_from_bits(0x01, "e4m3fn")   # largest, smallest
    (448.0, 0.001953125)
    >>> float8_from_bits(0x7C, "e5m2"), float8_from_bits(0x7F, "e4m3fn")
    (inf, nan)
    """
    byte, f = checks.float8_code(byte, fmt)
    sign = -1.0 if byte >> 7 else 1.0
    e = (byte >> f.mantissa_bits) & (2**f.exponent_bits - 1)
    m = byte & (2**f.mantissa_bits - 1)
    exponent_all_ones = e == 2**f.exponent_bits - 1
    if exponent_all_ones and f.has_inf:  # e5m2, as IEEE 754: infinity, or NaN if m != 0
        return sign * math.inf if m == 0 else math.nan
    if exponent_all_ones and m == 2**f.mantissa_bits - 1:  # e4m3fn: S.1111.111 alone is NaN
        return math.nan
    if e == 0:  # subnormal
        return sign * 2.0 ** (1 - f.bias) * (m / 2**f.mantissa_bits)
    return sign * 2.0 ** (e - f.bias) * (1 + m / 2**f.mantissa_bits)


def float8_grid(fmt="e4m3fn") -> Tensor:
    """Every finite value of float8 ``fmt``, sorted, as float32; +0 and -0 are one grid point.
    e4m3fn: 253 values from -448 to 448; e5m2: 247 values from -57344 to 57344.

    >>> g = float8_grid("e4m3fn")
    >>> len(g), g[-3:].tolist(), g[126:129].tolist()       # zero sits at index 126
    (253, [384.0, 416.0, 448.0], [0.0, 0.001953125, 0.00390625])
    """
    values = {float8_from_bits(byte, fmt) for byte in range(256)}  # 0.0 == -0.0: kept once
    return torch.tensor(sorted(v for v in values if math.isfinite(v)), dtype=torch.float32)


def nf4_levels() -> Tensor:
    """The 16 levels of NF4 (QLoRA), in [-1, 1] with an exact 0, as float32.

    QLoRA's formula, q_i = (Q(i / 17) + Q((i + 1) / 17)) / 2 with Q the normal quantile,
    starts at Q(0) = -inf. The published table comes from bitsandbytes' ``create_normal_map``:
    8 positive quantiles and 7 negative ones (one more level on the positive side, so that 0
    is a level), from an offset delta halfway between 1 - 1/30 and 1 - 1/32, then the whole
    grid divided by its largest value::

        positive =  Q(linspace(delta, 0.5, 9)[:-1])     negative = -Q(linspace(delta, 0.5, 8)[:-1])

    >>> [round(v, 4) for v in nf4_levels().tolist()[6:10]]
    [-0.091, 0.0, 0.0796, 0.1609]
    """
    delta = 0.5 * ((1 - 1 / 30) + (1 - 1 / 32))
    quantile = torch.special.ndtri  # the normal distribution's inverse CDF, in float64
    positive = quantile(torch.linspace(delta, 0.5, 9, dtype=torch.float64)[:-1])
    negative = -quantile(torch.linspace(delta, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).sort().values
    return (levels / levels.max()).float()


def grid_values(grid: str | Tensor) -> Tensor:
    """A grid by name, ``"e4m3fn"``, ``"e5m2"`` or ``"nf4"``, or given as a sorted 1-D float
    tensor (at most 256 values, so that a code fits a byte), checked, as float32."""
    if isinstance(grid, str):
        return nf4_levels() if checks.grid_name(grid) == "nf4" else float8_grid(grid)
    return checks.grid_tensor(grid)


def quantize_to_grid(
    tensor: Tensor, grid: str | Tensor, block_size: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Put every block of ``tensor`` onto ``grid``: ``(codes, scale)``, uint8 indices into the
    grid (``tensor``'s shape) and a float32 scale per block (shape ``n_blocks``)::

        s = max|block| / max|grid|          code = the index of the grid value nearest r / s

    A tie between two grid values goes to the one an even number of steps from 0, which for
    float8 is the even encoding, as PyTorch's cast rounds: for float8 the values are those of
    ``(tensor / s).to(torch.float8_...)``. A block of zeros gets the scale 1.

    >>> codes, s = quantize_to_grid(torch.tensor([[0.5, -1.0, 0.3]]), "nf4", (1, 3))
    >>> codes.tolist(), s.tolist(), dequantize_from_grid(codes, s, "nf4", (1, 3)).tolist()
    ([[12, 0, 11]], [[1.0]], [[0.4407097399234772, -1.0, 0.3379151225090027]])
    """
    r = checks.real_tensor(tensor)
    values = grid_values(grid)
    blocks = block_shapes(r.shape, block_size)
    view = r.reshape(blocks.view_shape)
    r_min, r_max = _range_per_block(view, blocks)  # float64, checked finite
    hint = "divide the tensor by a power of 2 first, and multiply the result back."
    scale = checks.float32_scale(torch.maximum(-r_min, r_max) / values.abs().max(), hint)
    scale = torch.where(scale > 0, scale, 1.0)  # zeros, or too small for float32: any scale
    x = view / scale.to(view.dtype)
    middles = (values[1:].double() + values[:-1].double()) / 2  # exact in float64
    zero = int(values.abs().argmin())
    if x.numel() > fast.PARALLEL_ELEMENTS:  # large: the same codes, chunks split between workers
        f8 = FLOAT8_FORMATS[grid].dtype if isinstance(grid, str) and grid != "nf4" else None
        codes = fast.nearest_codes(x, values, middles, zero, f8)  # float8: PyTorch's own cast
        return codes.reshape(r.shape), scale.reshape(blocks.n_blocks)
    x = x.double()
    codes = torch.bucketize(x, middles)  # the first index whose middle is >= x
    on_middle = x == middles[codes.clamp(max=len(middles) - 1)]
    codes = codes + (on_middle & ((codes - zero) % 2 == 1)).long()  # ties: even steps from 0
    return codes.to(torch.uint8).reshape(r.shape), scale.reshape(blocks.n_blocks)


def dequantize_from_grid(
    codes: Tensor, scale: Any, grid: str | Tensor, block_size: Sequence[int]
) -> Tensor:
    """``grid[codes] * s`` with every block's own scale, float32: the inverse of
    ``quantize_to_grid`` (see its example)."""
    values = grid_values(grid)
    q = checks.grid_codes(codes, len(values))
    blocks = block_shapes(q.shape, block_size)
    scale = checks.block_param(
        scale, blocks.param_shape, blocks.n_blocks, "scale", "quantize_to_grid"
    )
    scale = checks.scale(scale, torch.Size(blocks.view_shape), torch.float32)
    return (values[q].reshape(blocks.view_shape) * scale).reshape(q.shape)


# ===== 15. Quantization-aware training (beyond the course) =======================================
# Train with the quantizer in the forward pass, so that the weights learn to live on the grid.
# One obstacle: round() has a derivative of 0 wherever it has one (and none at the half-way
# points), so no gradient would reach the weights. The straight-through estimator (STE)
# pretends that round is the identity on the way back: the gradient passes through unchanged
# where the rounded value lies in [q_min, q_max] and is 0 where clamp clipped it, as PyTorch's
# fake-quantize ops define it. The trained weights then load into section 11 and 12's layers.


def fake_quantize_ste(
    tensor: Tensor, scale: Any, zero_point: Any, q_min: int, q_max: int
) -> Tensor:
    """Quantize then dequantize, with a gradient for training::

        forward:   s * (clamp(round(r / s) + z, q_min, q_max) - z)
        backward:  d/dr = 1 where q_min <= round(r / s) + z <= q_max, else 0

    ``scale`` and ``zero_point``: numbers or tensors that broadcast against ``tensor``. A scale
    that requires a gradient gets LSQ's: ``round(r / s) - r / s`` inside, the clipped level
    outside. Gradients equal ``torch.fake_quantize_per_tensor_affine``'s up to float rounding.

    >>> r = torch.tensor([0.26, 1.0, -3.0], requires_grad=True)
    >>> y = fake_quantize_ste(r, 0.5, 0, -2, 1)
    >>> y.sum().backward()
    >>> y.tolist(), r.grad.tolist()                   # 1.0 -> level 2, clipped to 1
    ([0.5, 0.5, -1.0], [1.0, 0.0, 0.0])
    """
    r, scale, zero_point, q_min, q_max = checks.ste_args(tensor, scale, zero_point, q_min, q_max)
    x = r / scale
    x = x + (torch.round(x) - x).detach()  # the STE: forward round(x), backward the identity
    q = torch.clamp(x + zero_point, q_min, q_max)  # clamp passes no gradient where it clips
    return (q - zero_point) * scale


def fake_quantize_ste_blockwise(
    tensor: Tensor, block_size: Sequence[int], n_bits=8, scale: Tensor | None = None
) -> Tensor:
    """``fake_quantize_ste`` with one scale per block and the layers' rule: symmetric, levels
    ``-2**(n_bits-1) .. 2**(n_bits-1) - 1``, ``s = max|block| / q_max`` measured without a
    gradient. A given ``scale`` (shape ``n_blocks``, or ``(rows,)`` per row) is used instead.

    >>> w = torch.tensor([[0.9, -0.2, 0.5], [0.03, -0.01, 0.02]])
    >>> fake_quantize_ste_blockwise(w, (1, 3), n_bits=2)             # levels -2..1, s = max|row|
    tensor([[0.9000, 0.0000, 0.9000],
            [0.0300, 0.0000, 0.0300]])
    """
    q_min, q_max = get_q_range(torch.int8, checks.qat_bits(n_bits))
    r = checks.trainable_tensor(tensor)
    blocks = block_shapes(r.shape, block_size)
    view = r.reshape(blocks.view_shape)
    if scale is None:
        r_min, r_max = _range_per_block(view.detach(), blocks)
        scale = qparams_from_range(r_min, r_max, q_min, q_max, symmetric=True)[0].to(r.dtype)
    else:
        scale = checks.qat_scale(scale, blocks.n_blocks, blocks.param_shape)
    return fake_quantize_ste(view, scale, 0, q_min, q_max).reshape(r.shape)


# ===== The contents ==============================================================================
# For ``from helper import *``: the constants of support.constants and every name defined above.

__all__ = ["SUPPORTED_DTYPES", "SCALE_EPS", "dtype_name", "PACK_BITS", "RANGE_METHODS"]
__all__ += ["CLIPPING_GRIDS", "FLOAT8_FORMATS", "GRID_NAMES"]
__all__ += [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
