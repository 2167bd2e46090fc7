"""Linear quantization, hands-on: the functions the lessons build, in the order they build them.

Read this file top to bottom; each section is one step of the course.

1. Integer dtypes and their ranges   ``get_q_range``
2. Checking what comes in            (private ``_check_*`` helpers with clear messages)
3. Scale and zero point              ``get_q_scale_and_zero_point``, ``qparams_from_range``
4. Quantize                          ``linear_q_with_scale_and_zero_point``,
                                     ``linear_quantization``
5. Dequantize                        ``linear_dequantization``
6. Quantization error                ``quantization_error``, ``sqnr_db``
7. Plots                             ``plot_quantization_errors``, ``plot_number_line``
8. Symmetric mode (L3-A)             ``get_q_scale_symmetric``, ``linear_q_symmetric``
9. Granularity: one mechanism        ``choose_qparams_affine``, ``quantize_affine``,
   (L3-B/C/D)                        ``dequantize_affine``, ``linear_q_symmetric_per_channel``,
                                     ``linear_q_symmetric_per_group``,
                                     ``linear_dequantization_per_group``, ``bits_per_weight``
10. Weights and activations (L3-E)   ``quantized_linear_W8A32_without_bias``,
                                     ``quantized_linear_W8A8_without_bias``
11. An 8-bit layer for any model     ``w8_a16_forward``, ``W8A16LinearLayer``,
    (L4)                             ``replace_linear_with_target``,
                                     ``replace_linear_with_target_and_quantize``,
                                     ``fake_quantize``, ``fake_quantize_linears``
12. Weight packing (L5)              ``pack_weights``, ``unpack_weights``,
                                     ``PackedLinearLayer``
13. Choosing the range               ``absmax_percentile``, ``absmax_mse_optimal``,
                                     ``clipping_absmax``, ``quantize_clipped``

The whole course rests on two formulas (``s`` is the scale, ``z`` the zero point)::

    quantize:    q  = clamp(round(r / s) + z, q_min, q_max)
    dequantize:  r' = s * (q - z)

Every quantizer here, per tensor, per channel or per group, symmetric or not, is the same three
steps of section 9: measure a range per block of elements, turn it into a scale and zero point
(section 3), then apply the two formulas (sections 4 and 5) with one scale per block. The
functions named after the course are thin wrappers that pick the block.

The interactive explorer lives in ``support/explorer.py``, the exercise checkers in
``support/exercises.py``, the example tensors in ``support/examples.py`` and the models (a digits
classifier, all-MiniLM-L6-v2, saving and loading) in ``support/models.py``: you use them, but
need not read them.

Nothing here modifies its inputs, and bad input raises a ``TypeError`` or ``ValueError`` that
says what was wrong and what to do instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

__all__ = [
    "SUPPORTED_DTYPES",
    "SCALE_EPS",
    "dtype_name",
    "get_q_range",
    "qparams_from_range",
    "scale_and_zero_point_from_range",
    "get_q_scale_and_zero_point",
    "quantize_one_liner",
    "CHUNK_ELEMENTS",
    "linear_q_with_scale_and_zero_point",
    "linear_quantization",
    "linear_dequantization",
    "quantization_error",
    "sqnr_db",
    "ANNOTATE_MAX_ELEMENTS",
    "VALUE_CMAP",
    "QUANTIZED_CMAP",
    "ERROR_CMAP",
    "as_2d",
    "HeatmapPanel",
    "ErrorPanels",
    "plot_quantization_errors",
    "plot_number_line",
    "get_q_scale_symmetric",
    "linear_q_symmetric",
    "MAX_LEVEL_LINES",
    "plot_symmetric_vs_asymmetric",
    "Blocks",
    "block_shapes",
    "granularity_block_size",
    "block_range",
    "choose_qparams_affine",
    "quantize_affine",
    "quantize_blockwise",
    "dequantize_affine",
    "per_element",
    "linear_q_symmetric_per_channel",
    "linear_q_symmetric_per_group",
    "linear_dequantization_per_group",
    "bits_per_weight",
    "TradeoffPoint",
    "plot_granularity_tradeoff",
    "quantized_linear_W8A32_without_bias",
    "quantized_linear_W8A8_without_bias",
    "sqnr_db_per_row",
    "plot_output_sqnr",
    "w8_a16_forward",
    "W8A16LinearLayer",
    "replace_linear_with_target",
    "replace_linear_with_target_and_quantize",
    "layer_names",
    "fake_quantize",
    "fake_quantize_linears",
    "linears_bits_per_weight",
    "plot_accuracy_vs_bits",
    "PACK_BITS",
    "pack_weights",
    "unpack_weights",
    "pack_weights_loop",
    "to_offset_binary",
    "from_offset_binary",
    "packed_weight_bytes",
    "packed_model_bytes",
    "PackedLinearLayer",
    "W4A16LinearLayer",
    "W2A16LinearLayer",
    "PLOT_MAX_BYTES",
    "plot_packed_bits",
    "RANGE_METHODS",
    "CLIPPING_GRIDS",
    "absmax_minmax",
    "absmax_percentile",
    "quantize_clipped",
    "fake_quantize_clipped",
    "clipping_mse_curve",
    "absmax_mse_optimal",
    "clipping_absmax",
    "aciq_mse_gaussian",
    "aciq_clip_gaussian",
    "plot_clipping_curves",
    "plot_clipping_ranges",
]

# ---------------------------------------------------------------------------------------------
# 1. Integer dtypes and their ranges
# ---------------------------------------------------------------------------------------------

#: The integer dtypes a tensor can be quantized to in these lessons.
SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.int8, torch.uint8, torch.int16)

#: The smallest scale we allow. PyTorch's observers use the same floor (float32's machine
#: epsilon), so an all-zero tensor gets a tiny positive scale instead of a division by zero.
SCALE_EPS: float = torch.finfo(torch.float32).eps


def dtype_name(dtype: torch.dtype) -> str:
    """The short name of a dtype: ``torch.int8`` -> ``"int8"``."""
    return str(dtype).removeprefix("torch.")


def _check_dtype(dtype: Any) -> torch.dtype:
    """Return ``dtype`` if it is one of ``SUPPORTED_DTYPES``, else raise a ``TypeError``."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch dtype such as torch.int8, got {dtype!r}.")
    if dtype.is_floating_point or dtype.is_complex:
        raise TypeError(
            f"dtype {dtype_name(dtype)} is a floating-point type, but quantization needs an "
            "integer target dtype: use torch.int8, torch.uint8 or torch.int16."
        )
    if dtype not in SUPPORTED_DTYPES:
        names = ", ".join(f"torch.{dtype_name(d)}" for d in SUPPORTED_DTYPES)
        raise TypeError(f"dtype {dtype_name(dtype)} is not supported here; use one of {names}.")
    return dtype


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
    dtype = _check_dtype(dtype)
    info = torch.iinfo(dtype)
    if n_bits is None:
        return int(info.min), int(info.max)
    if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral):
        raise TypeError(f"n_bits must be a whole number such as 4, got {n_bits!r}.")
    if not 2 <= n_bits <= info.bits:
        raise ValueError(
            f"n_bits={n_bits} does not fit {dtype_name(dtype)}: choose 2 to {info.bits} bits "
            f"(or n_bits=None for the full {info.bits}-bit range)."
        )
    signed = info.min < 0
    if signed:
        return -(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1
    return 0, 2**n_bits - 1


# ---------------------------------------------------------------------------------------------
# 2. Checking what comes in
# ---------------------------------------------------------------------------------------------


def _check_tensor(tensor: Any, name: str = "tensor") -> torch.Tensor:
    """Check a tensor of real numbers to be quantized and return it as a float tensor.

    Integer tensors are accepted and converted to float32; float16 and bfloat16 are computed
    in float32 (their own precision would round ``r / s`` before we do). The input itself is
    never modified. Raises ``TypeError`` for non-tensors, complex or bool tensors and
    ``ValueError`` for an empty tensor.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(tensor).__name__}; "
            f"wrap it first, e.g. torch.tensor({name})."
        )
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(
            f"{name} has dtype {dtype_name(tensor.dtype)}; quantization needs real numbers "
            "(a float or integer tensor)."
        )
    if tensor.numel() == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(tensor.shape)}): there is nothing to quantize, and "
            "an empty tensor has no minimum or maximum to build a scale from."
        )
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)
    return tensor.detach()


def _check_finite_range(r_min: Any, r_max: Any, name: str = "tensor") -> None:
    """Raise a ``ValueError`` if a range (numbers or tensors) holds a NaN or an infinity.

    ``torch.aminmax`` returns NaN when any element is NaN, and +-inf when any element is
    infinite, so checking the extremes checks every element.
    """
    r_min, r_max = torch.as_tensor(r_min), torch.as_tensor(r_max)
    if bool(torch.isnan(r_min).any()) or bool(torch.isnan(r_max).any()):
        raise ValueError(
            f"{name} contains NaN values; they have no quantized value. Remove or replace them "
            "first (for example torch.nan_to_num(t, nan=0.0))."
        )
    if bool(torch.isinf(r_min).any()) or bool(torch.isinf(r_max).any()):
        raise ValueError(
            f"{name} contains infinite values, which would make the scale infinite. Clip them "
            "to a finite range first (for example t.clamp(-1e4, 1e4))."
        )


def _min_max(tensor: torch.Tensor, name: str = "tensor") -> tuple[float, float]:
    """``(tensor.min(), tensor.max())`` as Python floats, after checking both are finite."""
    r_min, r_max = (v.item() for v in torch.aminmax(tensor))
    _check_finite_range(r_min, r_max, name)
    return r_min, r_max


def _check_fits(param: torch.Tensor, shape: torch.Size, name: str) -> None:
    """Raise a ``ValueError`` unless ``param`` broadcasts to ``shape`` without growing it."""
    try:
        fits = torch.broadcast_shapes(param.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        per_group = (
            param.dim() == 2
            and param.shape[1] == 1
            and math.prod(shape) % param.shape[0] == 0
            and param.shape[0] != (shape[0] if len(shape) else 1)
        )
        extra = (
            " A scale of shape (number of groups, 1) is a per-group scale: dequantize with "
            "linear_dequantization_per_group(quantized_tensor, scale, group_size)."
            if per_group
            else ""
        )
        raise ValueError(
            f"{name} of shape {tuple(param.shape)} does not fit a tensor of shape {tuple(shape)}: "
            "use a single number, or a tensor that broadcasts, e.g. shape (rows, 1) for one "
            f"value per row.{extra}"
        )


def _check_scale(scale: Any, shape: torch.Size, precision: torch.dtype) -> float | torch.Tensor:
    """Return ``scale`` as a Python float or a float tensor that fits ``shape``.

    A scale must be a positive, finite real number (or a tensor of them), and stay positive
    and finite in ``precision``, the float dtype the arithmetic runs in: 1e-50 is a positive
    float64 but 0 in float32, where ``r / s`` would give NaN.
    """
    if isinstance(scale, torch.Tensor):
        if scale.is_complex() or scale.dtype == torch.bool or scale.numel() == 0:
            raise TypeError(f"scale must hold real numbers, got a {scale.dtype} tensor.")
        _check_fits(scale, shape, "scale")
        scale = scale.detach()
        values = scale.to(torch.float64)
        if not bool(torch.isfinite(values).all()) or not bool((values > 0).all()):
            raise ValueError("every scale must be a positive, finite number.")
    else:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            raise TypeError(f"scale must be a number or a tensor, got {type(scale).__name__}.")
        scale = float(scale)
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(
                f"scale must be a positive, finite number, got {scale}; "
                "get_q_scale_and_zero_point computes one for you."
            )
    in_precision = torch.as_tensor(scale, dtype=torch.float64).to(precision)
    if not bool(torch.isfinite(in_precision).all()) or not bool((in_precision > 0).all()):
        raise ValueError(
            f"the scale is too small or too large for {dtype_name(precision)} arithmetic: "
            "there it becomes 0 or infinite."
        )
    return scale


def _check_zero_point(
    zero_point: Any, shape: torch.Size, q_min: int | None = None, q_max: int | None = None
) -> int | torch.Tensor:
    """Return ``zero_point`` as a Python int or an int64 tensor that fits ``shape``.

    A zero point is a whole number; when ``q_min`` and ``q_max`` are given it must also lie
    inside ``[q_min, q_max]``: it is the quantized value that stands for the real number 0, so
    it must itself be storable.
    """
    if isinstance(zero_point, torch.Tensor):
        if zero_point.is_complex() or zero_point.dtype == torch.bool or zero_point.numel() == 0:
            raise TypeError(f"zero_point must hold whole numbers, got a {zero_point.dtype} tensor.")
        _check_fits(zero_point, shape, "zero_point")
        if zero_point.is_floating_point():
            if not bool(torch.isfinite(zero_point).all()) or not bool(
                (zero_point == zero_point.round()).all()
            ):
                raise ValueError("every zero point must be a whole number; round it first.")
        zero_point = zero_point.detach().to(torch.int64)
        low, high = int(zero_point.min()), int(zero_point.max())
    else:
        if isinstance(zero_point, bool) or not isinstance(zero_point, numbers.Real):
            raise TypeError(
                f"zero_point must be a whole number or a tensor, got {type(zero_point).__name__}."
            )
        if not math.isfinite(zero_point) or zero_point != int(zero_point):
            raise ValueError(
                f"zero_point must be a whole number, got {zero_point}; round it first with "
                "int(round(zero_point))."
            )
        zero_point = low = high = int(zero_point)
    if q_min is not None and q_max is not None and (low < q_min or high > q_max):
        raise ValueError(
            f"zero point {low if low < q_min else high} is outside the quantized range "
            f"[{q_min}, {q_max}]; it must be a value the quantized tensor can store."
        )
    return zero_point


def _check_quantized(quantized_tensor: Any, name: str = "quantized_tensor") -> torch.Tensor:
    """Check that ``quantized_tensor`` is a non-empty integer tensor."""
    if not isinstance(quantized_tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(quantized_tensor).__name__}.")
    if quantized_tensor.is_floating_point() or quantized_tensor.is_complex():
        raise TypeError(
            f"{name} has dtype {dtype_name(quantized_tensor.dtype)}, but dequantization "
            "needs the integer tensor that quantization returned (e.g. int8). Did you pass the "
            "original tensor instead?"
        )
    if quantized_tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers, got a bool tensor.")
    if quantized_tensor.numel() == 0:
        raise ValueError(f"{name} is empty: there is nothing to dequantize.")
    return quantized_tensor.detach()


# ---------------------------------------------------------------------------------------------
# 3. Scale and zero point
# ---------------------------------------------------------------------------------------------


def qparams_from_range(
    r_min: torch.Tensor,
    r_max: torch.Tensor,
    q_min: int,
    q_max: int,
    symmetric: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scales and zero points that map real ranges ``[r_min, r_max]`` onto ``[q_min, q_max]``.

    ``r_min`` and ``r_max`` are tensors of any (matching) shape, one range per block of
    elements; the result has their shape: a float64 scale and an int64 zero point per block.
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
    _check_finite_range(r_min, r_max, "the range")
    if symmetric:
        middle = 0 if q_min < 0 else (q_min + q_max + 1) // 2
        scale = torch.maximum(-r_min, r_max) / (q_max - middle)
        zero_point = torch.full(scale.shape, middle, dtype=torch.int64)
    else:
        scale = (r_max - r_min) / (q_max - q_min)
    if bool(torch.isinf(scale).any()):  # r_max - r_min overflowed (beyond +-8.9e307)
        raise ValueError("the range is too wide: r_max - r_min overflows; rescale the tensor.")
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
    r_min, r_max = (torch.tensor(float(v), dtype=torch.float64) for v in (r_min, r_max))
    scale, zero_point = qparams_from_range(r_min, r_max, q_min, q_max)
    return scale.item(), int(zero_point)


def get_q_scale_and_zero_point(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> tuple[float, int]:
    """The scale (a Python float) and zero point (a Python int) for quantizing ``tensor``.

    ``r_min`` and ``r_max`` are the tensor's smallest and largest values; see
    ``qparams_from_range`` for the formula. This is ``choose_qparams_affine`` with one block,
    the whole tensor (section 9).

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> get_q_scale_and_zero_point(t)
    (3.578823433670343, -77)
    """
    r = _check_tensor(tensor)
    scale, zero_point = choose_qparams_affine(r, r.shape, dtype, n_bits)
    return scale.item(), int(zero_point)


# ---------------------------------------------------------------------------------------------
# 4. Quantize
# ---------------------------------------------------------------------------------------------


def quantize_one_liner(
    r: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    q_min: int,
    q_max: int,
    dtype: torch.dtype = torch.int8,
) -> torch.Tensor:
    """The quantize formula as the lessons write it, in one readable line::

        q = clamp(round(r / s) + z, q_min, q_max).to(dtype)

    No checks: this is the reference that the fast version below (``_quantize``) must equal,
    element for element (``tests/test_helper.py`` checks it). Clamp comes before the cast:
    ``.to(torch.int8)`` of 138.0 does not give 127.

    >>> quantize_one_liner(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70, -128, 127)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    return torch.clamp(torch.round(r / scale) + zero_point, q_min, q_max).to(dtype)


# Bonus: the same formula, faster ---------------------------------------------------------------
# ``_quantize`` computes exactly ``quantize_one_liner`` but in place, in cache-sized chunks of one
# work buffer. The one-liner allocates four full-size temporaries (r / s, round, + z, clamp) and
# makes five passes over memory; on a 4096x4096 float32 tensor that made it about 4x slower
# (benchmarks/bench_quantize.py). The differences: no temporaries, 1-element scales and zero
# points become Python numbers, a zero point of 0 (symmetric mode) is not added at all, and a
# per-block scale is sliced along the rows with the data.

#: How many elements the quantize and dequantize loops handle at a time: 4 MiB of float32,
#: small enough to stay in a CPU's larger caches, large enough that each operation still
#: splits over the CPU's threads and that a 4096x4096 tensor takes only 16 chunks. Every
#: operation is a parallel region whose threads wait for each other, and on a machine busy
#: with other programs each wait can cost a time slice: with 2**18 (64 chunks) a round trip
#: measured 35 ms on an idle 2-core machine but up to 4 s on a busy one; 2**20 measured 33 ms
#: idle and stayed within a few times that when busy.
CHUNK_ELEMENTS = 1 << 20


def _row_chunks(shape: Sequence[int]) -> Iterator[slice]:
    """Slices along the first dimension, each covering roughly ``CHUNK_ELEMENTS`` elements."""
    per_row = math.prod(shape[1:])
    step = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    for start in range(0, shape[0], step):
        yield slice(start, start + step)


def _as_number_if_single(param: Any, precision: torch.dtype) -> Any:
    """A 1-element tensor becomes a Python number (in ``precision`` first, for scales);
    operations with a number are cheaper than broadcasting a tensor."""
    if isinstance(param, torch.Tensor):
        if param.numel() == 1:
            return param.to(precision).item()
        return param.to(precision)
    return param


def _chunk(param: float | int | torch.Tensor, shape: Sequence[int], rows: slice):
    """The part of a (broadcasting) scale or zero point that covers ``rows``."""
    if not isinstance(param, torch.Tensor) or param.dim() < len(shape) or param.shape[0] == 1:
        return param
    return param[rows]


def _is_nonzero(zero_point: float | int | torch.Tensor) -> bool:
    """False when the zero point is 0 everywhere (symmetric mode): adding or subtracting it
    would be one more pass over each chunk that changes nothing."""
    if isinstance(zero_point, torch.Tensor):
        return bool(zero_point.any())
    return zero_point != 0


def _quantize(
    r: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    q_min: int,
    q_max: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``quantize_one_liner`` for checked arguments, in place and in chunks (see above).

    ``scale`` and ``zero_point`` are numbers or tensors that broadcast against ``r``.
    """
    r = r.detach()  # the result is integer: no gradient, and out= refuses tensors needing one
    if r.dim() == 0:
        return _quantize(r.reshape(1), scale, zero_point, q_min, q_max, dtype).reshape(())
    scale = _as_number_if_single(scale, r.dtype)  # divide in the tensor's precision
    zero_point = _as_number_if_single(zero_point, r.dtype)  # whole numbers: exact in float
    shift = _is_nonzero(zero_point)
    out = torch.empty(r.shape, dtype=dtype)
    largest_chunk = max(CHUNK_ELEMENTS, math.prod(r.shape[1:]))  # see _row_chunks
    work = torch.empty(min(r.numel(), largest_chunk), dtype=r.dtype)
    for rows in _row_chunks(r.shape):
        r_part = r[rows]
        buf = work[: r_part.numel()].view(r_part.shape)
        torch.div(r_part, _chunk(scale, r.shape, rows), out=buf)
        buf.round_()  # half to even, like torch.round
        if shift:
            buf.add_(_chunk(zero_point, r.shape, rows))
        buf.clamp_(q_min, q_max)
        out[rows].copy_(buf)
    return out


# -----------------------------------------------------------------------------------------------


def linear_q_with_scale_and_zero_point(
    tensor: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> torch.Tensor:
    """Quantize ``tensor`` with a given scale and zero point::

        q = clamp(round(r / s) + z, q_min, q_max)        stored as ``dtype``

    ``round`` is round-half-to-even (``torch.round``), applied to ``r / s`` *before* ``z`` is
    added, as in ``torch.fake_quantize_per_tensor_affine``. The course code (and
    ``torch.quantize_per_tensor`` on x86) rounds ``r / s + z`` instead. The two agree except on
    an exact tie with an odd ``z``: 1.75 / 3.5 = 0.5 rounds to 0 here (q = z = -77), but
    0.5 - 77 = -76.5 rounds to -76 there. ``clamp`` keeps every value storable, so nothing wraps
    around. ``scale`` and ``zero_point`` are numbers, or tensors that broadcast against
    ``tensor`` (shape ``(rows, 1)`` gives each row its own). ``n_bits`` narrows the range (see
    ``get_q_range``).

    >>> linear_q_with_scale_and_zero_point(torch.tensor([0.0, 7.0, 1000.0]), 3.5, -70)
    tensor([-70, -68, 127], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    _min_max(r)  # NaN and infinity checks
    scale = _check_scale(scale, r.shape, r.dtype)
    zero_point = _check_zero_point(zero_point, r.shape, q_min, q_max)
    return _quantize(r, scale, zero_point, q_min, q_max, dtype)


def linear_quantization(
    tensor: torch.Tensor, dtype: torch.dtype = torch.int8, n_bits: int | None = None
) -> tuple[torch.Tensor, float, int]:
    """Choose a scale and zero point for ``tensor`` and quantize it with them.

    Returns ``(quantized_tensor, scale, zero_point)``: asymmetric, per tensor.

    >>> q, s, z = linear_quantization(torch.tensor([-1.0, 0.0, 2.0]))
    >>> q, round(s, 6), z
    (tensor([-128,  -43,  127], dtype=torch.int8), 0.011765, -43)
    """
    r = _check_tensor(tensor)
    quantized, scale, zero_point = quantize_blockwise(r, r.shape, dtype, n_bits)
    return quantized, scale.item(), int(zero_point)


# ---------------------------------------------------------------------------------------------
# 5. Dequantize
# ---------------------------------------------------------------------------------------------


def _dequantize(
    q: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
    output_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``s * (q - z)`` computed in float32 for checked, broadcasting arguments, then cast to
    ``output_dtype``. In place and in chunks, like ``_quantize``."""
    if q.dim() == 0:
        return _dequantize(q.reshape(1), scale, zero_point, output_dtype).reshape(())
    scale = _as_number_if_single(scale, torch.float32)
    zero_point = _as_number_if_single(zero_point, torch.float32)
    shift = _is_nonzero(zero_point)
    out = torch.empty(q.shape, dtype=torch.float32)
    for rows in _row_chunks(q.shape):
        part = out[rows]
        part.copy_(q[rows])  # to float32 first: int8 q - z could wrap around
        if shift:
            part.sub_(_chunk(zero_point, q.shape, rows))
        part.mul_(_chunk(scale, q.shape, rows))
    # q - z is exact in float32 (|q - z| < 2**17), not always in float16 or bfloat16: cast last
    return out if output_dtype == torch.float32 else out.to(output_dtype)


def linear_dequantization(
    quantized_tensor: torch.Tensor,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor,
) -> torch.Tensor:
    """Map quantized integers back to real numbers (float32)::

        r' = s * (q - z)

    The subtraction happens in float32, never in the integer dtype: ``q - z`` can leave the
    int8 range (127 - (-70) = 197) and would silently wrap around. ``scale`` and
    ``zero_point`` are numbers or tensors that broadcast against ``quantized_tensor`` (a
    per-channel scale of shape ``(rows, 1)`` or ``(1, columns)``). A per-group scale does not
    broadcast: use ``linear_dequantization_per_group``.

    >>> linear_dequantization(torch.tensor([-70, -68, 127], dtype=torch.int8), 3.5, -70)
    tensor([  0.0000,   7.0000, 689.5000])
    """
    q = _check_quantized(quantized_tensor)
    scale = _check_scale(scale, q.shape, torch.float32)
    zero_point = _check_zero_point(zero_point, q.shape)
    return _dequantize(q, scale, zero_point)


# ---------------------------------------------------------------------------------------------
# 6. Quantization error
# ---------------------------------------------------------------------------------------------


def _check_pair(tensor: Any, dequantized_tensor: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both tensors checked, finite, and of one shape."""
    r = _check_tensor(tensor, "tensor")
    r2 = _check_tensor(dequantized_tensor, "dequantized_tensor")
    if r.shape != r2.shape:
        raise ValueError(
            f"tensor has shape {tuple(r.shape)} but dequantized_tensor has shape "
            f"{tuple(r2.shape)}: compare a tensor with its own dequantized version."
        )
    _min_max(r, "tensor")
    _min_max(r2, "dequantized_tensor")
    return r, r2


def quantization_error(tensor: torch.Tensor, dequantized_tensor: torch.Tensor) -> torch.Tensor:
    """Mean squared error between a tensor and its dequantized version (a 0-dim tensor)::

        mse = mean((r' - r) ** 2)

    For values inside the range, rounding errors are spread evenly over ``[-s/2, s/2]``, so
    the MSE is close to ``s**2 / 12``.

    >>> quantization_error(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))
    tensor(0.1250)
    """
    r, r2 = _check_pair(tensor, dequantized_tensor)
    return (r2 - r).square().mean()


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
    r, r2 = _check_pair(tensor, dequantized_tensor)
    signal = r.double().square().mean().item()
    noise = (r2.double() - r.double()).square().mean().item()
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


# ---------------------------------------------------------------------------------------------
# 7. Plots
# ---------------------------------------------------------------------------------------------

#: Tensors with at most this many elements get their values written into the heatmap cells.
ANNOTATE_MAX_ELEMENTS = 64

#: Colour-blind-safe, perceptually uniform colour maps for the four panels.
VALUE_CMAP, QUANTIZED_CMAP, ERROR_CMAP = "viridis", "cividis", "magma"


def as_2d(tensor: torch.Tensor) -> torch.Tensor:
    """A float64 2-D view for a heatmap: scalars become 1x1, vectors one row, and a tensor of
    more dimensions stacks its rows (shape ``(-1, last dim)``)."""
    t = tensor.detach().to(torch.float64)
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t.reshape(1, -1)
    return t.reshape(-1, t.shape[-1])


def _format_value(value: float, integer: bool) -> str:
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
            text.set_text(_format_value(value, integer))
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
        dtype: torch.dtype,
        n_bits: int | None,
        error_max: float | None = None,
    ) -> torch.Tensor:
        """Draw the three float64 2-D tensors and their error; returns ``|original - deq|``.

        The original and dequantized panels share one colour scale; the quantized panel spans
        its integer values and the error panel runs from 0 to ``error_max`` (default: the
        largest error).
        """
        q_min, q_max = get_q_range(dtype, n_bits)
        r, q, r2 = original, quantized, dequantized
        error = (r - r2).abs()
        low, high = min(r.min(), r2.min()).item(), max(r.max(), r2.max()).item()
        bits = f"{n_bits}-bit " if n_bits is not None else ""
        original_panel, quantized_panel, dequantized_panel, error_panel = self.panels
        original_panel.update(r, "Original tensor", low, high)
        quantized_panel.update(
            q,
            f"Quantized ({bits}{dtype_name(dtype)}, [{q_min}, {q_max}])",
            q.min().item(),
            q.max().item(),
            integer=True,
        )
        dequantized_panel.update(r2, "Dequantized tensor", low, high)
        top = error.max().item() if error_max is None else float(error_max)
        error_panel.update(error, "Absolute error |original - dequantized|", 0.0, top)
        return error


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
    several plots one error scale and compare them by colour. Small tensors (up to
    ``ANNOTATE_MAX_ELEMENTS`` values) get their numbers written in the cells. ``dtype`` and
    ``n_bits`` (``None``: the dtype's full width) label the quantized panel.

    Returns the figure. It is closed for pyplot, so a notebook shows it exactly once, as the
    value of the cell; keep it in a variable and put the variable last to show it again.
    """
    get_q_range(dtype, n_bits)  # checks dtype and n_bits before anything is drawn
    r = _check_tensor(original, "original")
    q = _check_quantized(quantized)
    r2 = _check_tensor(dequantized, "dequantized")
    if not r.shape == q.shape == r2.shape:
        raise ValueError(
            f"the three tensors must have one shape, got {tuple(r.shape)}, {tuple(q.shape)} and "
            f"{tuple(r2.shape)}."
        )
    _min_max(r, "original")
    _min_max(r2, "dequantized")
    if error_max is not None and not (math.isfinite(error_max) and error_max > 0):
        raise ValueError(f"error_max must be a positive number, got {error_max!r}.")
    r, q, r2 = as_2d(r), as_2d(q), as_2d(r2)
    fig = plt.figure(figsize=(18, 4.2), layout="constrained")
    error = ErrorPanels(fig, tuple(r.shape)).update(r, q, r2, dtype, n_bits, error_max)
    mse = error.square().mean().item()
    fig.suptitle(
        f"Quantization error: MSE = {mse:.4g}, largest error = {error.max().item():.4g}",
        fontsize=13,
    )
    plt.close(fig)  # pyplot would show it a second time at the end of the cell
    return fig


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
    A value's vertical distance to the diagonal is its error.

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor).flatten().to(torch.float64)
    r_min, r_max = _min_max(r)
    scale = float(_check_scale(scale, torch.Size([]), torch.float32))
    zero_point = int(_check_zero_point(zero_point, torch.Size([]), q_min, q_max))
    low_level, high_level = scale * (q_min - zero_point), scale * (q_max - zero_point)
    # clamping starts half a step beyond the end levels; closer values just round to them
    low_clamp, high_clamp = low_level - scale / 2, high_level + scale / 2
    left, right = min(r_min, low_clamp, 0.0), max(r_max, high_clamp, 0.0)
    pad = 0.08 * (right - left)
    left, right = left - pad, right + pad
    xs = torch.linspace(left, right, 4001, dtype=torch.float64)
    ys = _dequantize(_quantize(xs, scale, zero_point, q_min, q_max, torch.int32), scale, zero_point)
    back = _dequantize(
        _quantize(r, scale, zero_point, q_min, q_max, torch.int32), scale, zero_point
    )

    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    ax.axvspan(left, low_clamp, color="tab:red", alpha=0.12, label="saturated (clamped)")
    ax.axvspan(high_clamp, right, color="tab:red", alpha=0.12)
    ax.plot(xs, xs, ":", color="grey", linewidth=1, label="r' = r (no error)")
    ax.step(xs, ys.double(), where="mid", color="tab:blue", linewidth=1.2, label="r' (staircase)")
    ax.plot(r, back.double(), "o", color="tab:orange", markersize=6, label="the tensor's values")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.annotate(
        f"0 is a level: q = z = {zero_point}",
        xy=(0, 0),
        xytext=(0.04, 0.92),
        textcoords="axes fraction",
        arrowprops={"arrowstyle": "->", "color": "black"},
        fontsize=10,
    )
    bits = f"{n_bits}-bit " if n_bits is not None else ""
    levels = q_max - q_min + 1
    ax.set_title(
        title
        or f"{bits}{dtype_name(dtype)}: s = {scale:.4g}, z = {zero_point}, {levels:,} levels "
        f"from {low_level:.4g} to {high_level:.4g}",
        fontsize=12,
    )
    ax.set_xlabel("original value r")
    ax.set_ylabel("dequantized value r'")
    ax.set_xlim(left, right)
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# 8. Symmetric mode (course lesson L3-A)
# ---------------------------------------------------------------------------------------------
# Asymmetric (sections 3-5) fits the grid to [r_min, r_max]. Symmetric mode fixes the zero
# point at 0 and fits the grid to [-max|r|, max|r|]: no zero point to store or subtract, at the
# price of levels wasted on the side where the data does not go.


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
    r = _check_tensor(tensor)
    scale, _ = choose_qparams_affine(r, r.shape, dtype, n_bits, symmetric=True)
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
    r = _check_tensor(tensor)
    quantized, scale, _ = quantize_blockwise(r, r.shape, dtype, n_bits, symmetric=True)
    return quantized, scale.item()


#: ``plot_symmetric_vs_asymmetric`` draws every level of a grid up to this many levels; a
#: finer grid (int16 has 65,536) gets every k-th unused level, and all the levels in use.
MAX_LEVEL_LINES = 256


def _level_lines(ax, levels: torch.Tensor, color: str, width: float, label: str) -> None:
    """Vertical lines at ``levels`` (real values) spanning the whole height of ``ax``."""
    from matplotlib.collections import LineCollection

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
    names its scale, zero point, levels in use, MSE and SQNR (``quantization_error``,
    ``sqnr_db``).

    What to see: the asymmetric grid spans ``[min(r_min, 0), max(r_max, 0)]``, the symmetric
    one ``[-max|r|, max|r|]``. Where the data does not go, the levels stay grey: wasted. The
    same number of levels over a wider span means a larger step, hence a larger error.

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.

    >>> fig = plot_symmetric_vs_asymmetric(torch.tensor([1.0, 2.0, 4.0]), n_bits=4)
    >>> [ax.get_title() for ax in fig.axes]
    ['asymmetric: s = 0.2667, z = -8', 'symmetric: s = 0.5714, z = 0']
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    r_min, r_max = _min_max(r)
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise ValueError(f"bins must be a whole number >= 1, got {bins!r}.")
    modes = []
    for mode, symmetric in (("asymmetric", False), ("symmetric", True)):
        quantized, scale, zero_point = quantize_blockwise(
            r, r.shape, dtype, n_bits, symmetric=symmetric
        )
        modes.append((mode, quantized, scale.item(), int(zero_point)))
    spans = [(s * (q_min - z), s * (q_max - z)) for _, _, s, z in modes]
    left = min([r_min] + [low for low, _ in spans])
    right = max([r_max] + [high for _, high in spans])
    pad = 0.03 * (right - left)
    values = r.flatten().to(torch.float64)
    if r_max > r_min:
        counts, edges = torch.histogram(values, bins=int(bins), range=(r_min, r_max))
    else:  # a constant tensor: one narrow bar
        counts, edges = torch.histogram(values, bins=1, range=(r_min - pad / 3, r_max + pad / 3))
    levels = q_max - q_min + 1
    every_q = torch.arange(q_min, q_max + 1, dtype=torch.int64)
    step = math.ceil(levels / MAX_LEVEL_LINES)

    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, layout="constrained")
    for ax, (mode, quantized, s, z) in zip(axes, modes, strict=True):
        back = linear_dequantization(quantized, s, z)
        used = torch.isin(every_q, torch.unique(quantized.to(torch.int64)))
        unused_q = every_q[~used][::step]
        _level_lines(ax, s * (unused_q - z).double(), "0.8", 0.6, "level no value uses")
        _level_lines(ax, s * (every_q[used] - z).double(), "tab:red", 1.0, "level in use")
        ax.stairs(
            counts.numpy(),
            edges.numpy(),
            fill=True,
            color="tab:blue",
            alpha=0.7,
            label="the tensor's values (histogram)",
            zorder=2,
        )
        ax.set_title(f"{mode}: s = {s:.4g}, z = {z}", fontsize=12)
        ax.text(
            0.01,
            0.95,
            f"levels in use: {int(used.sum()):,} of {levels:,}\n"
            f"MSE = {quantization_error(r, back).item():.4g}\n"
            f"SQNR = {sqnr_db(r, back):.1f} dB",
            transform=ax.transAxes,
            va="top",
            fontsize=10,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9},
        )
        ax.set_ylabel("count")
        ax.set_ylim(0, 1.15 * max(counts.max().item(), 1.0))
    axes[-1].set_xlim(left - pad, right + pad)
    axes[-1].set_xlabel("value r (levels: r = s * (q - z))")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9)
    bits = f"{n_bits}-bit " if n_bits is not None else ""
    fig.suptitle(
        title or f"{values.numel():,} values on two {bits}{dtype_name(dtype)} grids",
        fontsize=13,
    )
    plt.close(fig)
    return fig


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
# Three functions then do all the work, whatever the granularity: ``choose_qparams_affine``
# (a range per block, then section 3's formulas), ``quantize_affine`` and ``dequantize_affine``
# (sections 4 and 5, one scale per block). No Python loop runs over channels or groups: the
# tensor is viewed so that each block lies along its own dimensions, and the scales broadcast.


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
    shape, block_size = tuple(int(n) for n in shape), tuple(block_size)
    if len(block_size) != len(shape):
        raise ValueError(
            f"block_size {block_size} needs one entry per dimension of the tensor's shape "
            f"{shape}: use granularity_block_size to build one."
        )
    view, params, n_blocks = [], [], []
    for dim, (n, b) in enumerate(zip(shape, block_size, strict=True)):
        if isinstance(b, bool) or not isinstance(b, numbers.Integral) or not 1 <= b <= max(n, 1):
            raise ValueError(f"block_size[{dim}] = {b!r} must be a whole number from 1 to {n}.")
        if n % b:
            raise ValueError(
                f"block_size[{dim}] = {b} does not divide the size {n} of dimension {dim}: "
                f"choose a block (group) size that divides {n}."
            )
        if b == n:
            view.append(n)
            params.append(1)
        elif b == 1:
            view.append(n)
            params.append(n)
        else:
            view += [n // b, b]
            params += [n // b, 1]
        n_blocks.append(n // b)
    return Blocks(tuple(view), tuple(params), tuple(n_blocks))


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
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"dim must be a whole number, got {dim!r}.")
        if not -len(shape) <= dim < len(shape) or not shape:
            raise ValueError(
                f"dim={dim} is out of range for a tensor with {len(shape)} dimensions: "
                f"choose {-len(shape)} to {len(shape) - 1}."
            )
        dim %= len(shape)
        return tuple(1 if d == dim else n for d, n in enumerate(shape))
    if granularity == "per_group":
        if isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral):
            raise TypeError(f"group_size must be a whole number, got {group_size!r}.")
        if not shape:
            raise ValueError("a 0-dim tensor has no last dimension to split into groups.")
        if not 1 <= group_size <= shape[-1] or shape[-1] % group_size:
            raise ValueError(
                f"group_size={group_size} does not divide the last dimension ({shape[-1]}) of "
                f"shape {shape}: choose a divisor of {shape[-1]}."
            )
        return (1,) * (len(shape) - 1) + (int(group_size),)
    raise ValueError(
        f"unknown granularity {granularity!r}: use 'per_tensor', 'per_channel' or 'per_group'."
    )


def _view(tensor: torch.Tensor, blocks: Blocks) -> torch.Tensor:
    """``tensor`` reshaped to ``blocks.view_shape`` (a 0-dim tensor counts as shape ``(1,)``)."""
    return tensor.reshape(blocks.view_shape or (1,))


def _blocks_of(tensor: torch.Tensor, block_size: Sequence[int]) -> Blocks:
    """``block_shapes`` for ``tensor``; a 0-dim tensor is treated as one element, ``(1,)``."""
    if tensor.dim() == 0:
        if tuple(block_size) not in ((), (1,)):
            raise ValueError(f"a 0-dim tensor takes block_size (), got {tuple(block_size)}.")
        return block_shapes((1,), (1,))
    return block_shapes(tensor.shape, block_size)


def block_range(
    tensor: torch.Tensor, block_size: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The smallest and largest value of every block, as float64 tensors of shape ``n_blocks``.

    One ``aminmax`` pass for a single block; ``amin`` and ``amax`` otherwise (along a
    dimension, two vectorised passes take about a sixth of the time of one ``aminmax``). Raises
    a ``ValueError`` if any block holds a NaN or an infinity.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> r_min, r_max = block_range(t, (1, 3))      # per row
    >>> r_min.flatten().tolist(), r_max.flatten().tolist()
    ([-13.5, -184.0, 0.0], [728.5999755859375, 295.5, 684.5999755859375])
    """
    r = _check_tensor(tensor)
    blocks = _blocks_of(r, block_size)
    view = _view(r, blocks)
    reduce = tuple(d for d, p in enumerate(blocks.param_shape) if p == 1)
    if not reduce:  # every block is one element (per channel of a 1-D tensor): nothing to reduce
        r_min = r_max = view
    elif len(reduce) == view.dim():
        r_min, r_max = torch.aminmax(view)
    else:
        r_min, r_max = view.amin(dim=reduce, keepdim=True), view.amax(dim=reduce, keepdim=True)
    _check_finite_range(r_min, r_max, "tensor")
    n_blocks = blocks.n_blocks if tensor.dim() else ()
    # copy=True: never hand back a view of the caller's (float64) tensor
    return (
        r_min.reshape(n_blocks).to(torch.float64, copy=True),
        r_max.reshape(n_blocks).to(torch.float64, copy=True),
    )


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

    The range of each block is measured with ``block_range``, unless ``r_range`` gives it:
    a pair ``(r_min, r_max)``, or a single tensor ``absmax`` meaning ``[-absmax, absmax]``,
    each broadcasting to ``n_blocks``. That is where a clipped range (a percentile, an
    MSE-optimal search) plugs in. Then ``qparams_from_range`` turns ranges into parameters.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> s, z = choose_qparams_affine(t, (1, 3), symmetric=True)   # per row
    >>> s.flatten().tolist(), z.flatten().tolist()
    ([5.737007681779035, 2.326771653543307, 5.39055098886565], [0, 0, 0])
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    blocks = _blocks_of(r, block_size)
    n_blocks = blocks.n_blocks if r.dim() else ()
    if r_range is None:
        r_min, r_max = block_range(r, block_size)
    else:
        if isinstance(r_range, torch.Tensor):
            r_min, r_max = -r_range.abs(), r_range.abs()
        elif isinstance(r_range, tuple | list) and len(r_range) == 2:
            r_min, r_max = r_range
        else:
            raise TypeError("r_range must be a tensor absmax, or a pair (r_min, r_max).")
        try:
            r_min = torch.as_tensor(r_min, dtype=torch.float64).broadcast_to(n_blocks)
            r_max = torch.as_tensor(r_max, dtype=torch.float64).broadcast_to(n_blocks)
        except RuntimeError as error:
            raise ValueError(
                f"r_range must broadcast to the blocks' shape {n_blocks}: {error}"
            ) from None
        if bool((r_min > r_max).any()):
            raise ValueError("r_range has a block whose r_min is larger than its r_max.")
    return qparams_from_range(r_min, r_max, q_min, q_max, symmetric)


def _check_params(param: Any, blocks: Blocks, n_blocks: tuple[int, ...], name: str) -> torch.Tensor:
    """A number, or a tensor with one value per block (shape ``n_blocks``), in param_shape.

    A number or a 1-element tensor is one value shared by every block."""
    if not isinstance(param, torch.Tensor):
        if isinstance(param, bool) or not isinstance(param, numbers.Real):
            raise TypeError(f"{name} must be a number or a tensor, got {type(param).__name__}.")
        return torch.tensor(param, dtype=torch.float64).reshape((1,) * len(blocks.param_shape))
    if param.numel() == 1:
        return param.detach().reshape((1,) * len(blocks.param_shape))
    if param.numel() != math.prod(n_blocks) or (
        param.numel() > 1 and tuple(param.shape) != n_blocks
    ):
        raise ValueError(
            f"{name} has shape {tuple(param.shape)}, but this block size needs one value per "
            f"block, shape {n_blocks}: pass what choose_qparams_affine returned."
        )
    return param.detach().reshape(blocks.param_shape)


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
    returns), or are one number (or 1-element tensor) that every block shares. The formula
    is section 4's, and so is the chunked, in-place computation.

    >>> t = torch.tensor([[1.0, -2.0], [30.0, 40.0]])
    >>> s, z = choose_qparams_affine(t, (1, 2), symmetric=True)
    >>> quantize_affine(t, (1, 2), s, z)
    tensor([[  64, -127],
            [  95,  127]], dtype=torch.int8)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    blocks = _blocks_of(r, block_size)
    n_blocks = blocks.n_blocks if r.dim() else ()
    _min_max(r)  # NaN and infinity checks
    scale = _check_params(scale, blocks, n_blocks, "scale")
    zero_point = _check_params(zero_point, blocks, n_blocks, "zero_point")
    view_shape = torch.Size(blocks.view_shape)
    scale = _check_scale(scale, view_shape, r.dtype)
    zero_point = _check_zero_point(zero_point, view_shape, q_min, q_max)
    return _quantize(_view(r, blocks), scale, zero_point, q_min, q_max, dtype).reshape(r.shape)


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

    The tensor is checked once: the range measurement already rejects NaN and infinity, and
    the parameters come straight from ``qparams_from_range``.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> q, s, z = quantize_blockwise(t, (3, 3))          # per tensor: linear_quantization
    >>> s.item(), z.item()
    (3.578823433670343, -77)
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor)
    scale, zero_point = choose_qparams_affine(
        r, block_size, dtype, n_bits, symmetric=symmetric, r_range=r_range
    )
    if r_range is not None:  # the measured range was skipped: check the values here
        _min_max(r)
    blocks = _blocks_of(r, block_size)
    scale_view = scale.reshape(blocks.param_shape)
    zero_view = zero_point.reshape(blocks.param_shape)
    q = _quantize(_view(r, blocks), scale_view, zero_view, q_min, q_max, dtype).reshape(r.shape)
    return q, scale, zero_point


def dequantize_affine(
    quantized_tensor: torch.Tensor,
    block_size: Sequence[int],
    scale: torch.Tensor | float,
    zero_point: torch.Tensor | int,
    output_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``r' = s * (q - z)`` with every block's own scale and zero point.

    Computed in float32 and cast to ``output_dtype`` at the end (``q - z`` of int16 values is
    not exact in bfloat16 or float16).

    >>> q = torch.tensor([[64, -127], [95, 127]], dtype=torch.int8)
    >>> dequantize_affine(q, (1, 2), torch.tensor([[1 / 63.5], [40 / 127]]), 0)
    tensor([[ 1.0079, -2.0000],
            [29.9213, 40.0000]])
    """
    q = _check_quantized(quantized_tensor)
    if not isinstance(output_dtype, torch.dtype) or not output_dtype.is_floating_point:
        raise TypeError(f"output_dtype must be a float dtype, got {output_dtype!r}.")
    blocks = _blocks_of(q, block_size)
    n_blocks = blocks.n_blocks if q.dim() else ()
    scale = _check_params(scale, blocks, n_blocks, "scale")
    zero_point = _check_params(zero_point, blocks, n_blocks, "zero_point")
    view_shape = torch.Size(blocks.view_shape)
    scale = _check_scale(scale, view_shape, torch.float32)
    zero_point = _check_zero_point(zero_point, view_shape)
    return _dequantize(_view(q, blocks), scale, zero_point, output_dtype).reshape(q.shape)


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


def linear_q_symmetric_per_channel(
    r_tensor: torch.Tensor,
    dim: int,
    dtype: torch.dtype = torch.int8,
    n_bits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantization with one scale per channel along ``dim``; returns ``(q, scale)``.

    ``scale`` is a float32 tensor shaped to broadcast against ``r_tensor``: ``(rows, 1)`` for
    ``dim=0`` of a 2-D tensor, ``(1, columns)`` for ``dim=1`` (one entry per channel, ones
    elsewhere), so ``linear_dequantization(q, scale, 0)`` dequantizes it. A 1-D tensor gets one
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
    r = _check_tensor(r_tensor)
    block_size = granularity_block_size(r.shape, "per_channel", dim=dim)
    q, scale, _ = quantize_blockwise(r, block_size, dtype, n_bits, symmetric=True)
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
    r = _check_tensor(tensor)
    block_size = granularity_block_size(r.shape, "per_group", group_size=group_size)
    q, scale, _ = quantize_blockwise(r, block_size, dtype, n_bits, symmetric=True)
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
    q = _check_quantized(quantized_tensor)
    block_size = granularity_block_size(q.shape, "per_group", group_size=group_size)
    n_blocks = block_shapes(q.shape, block_size).n_blocks
    if not isinstance(scale, torch.Tensor) or scale.numel() != math.prod(n_blocks):
        got = tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__
        raise ValueError(
            f"scale must hold one value per group, shape ({math.prod(n_blocks)}, 1) for "
            f"group_size={group_size}, got {got}."
        )
    if isinstance(zero_point, torch.Tensor) and zero_point.numel() > 1:
        zero_point = zero_point.reshape(n_blocks)
    return dequantize_affine(q, block_size, scale.reshape(n_blocks), zero_point)


# What granularity costs (lesson 05) ------------------------------------------------------------
# Finer blocks fit the data better but store more scales. These two functions put a number on
# that trade: the storage cost per element, and a plot of error against it.


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
    for name, value, low in (
        ("n_bits", n_bits, 1),
        ("scale_bits", scale_bits, 0),
        ("zero_point_bits", zero_point_bits, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}.")
    shape = tuple(int(n) for n in shape)
    if not shape or 0 in shape:
        raise ValueError(f"shape {shape} has no elements to count the cost of.")
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

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.
    """
    points = [TradeoffPoint(*point) for point in points]
    if not points:
        raise ValueError("points is empty: pass at least one TradeoffPoint to plot.")
    for point in points:
        if not (math.isfinite(point.mse) and point.mse > 0):
            raise ValueError(
                f"the MSE of {point.label!r} is {point.mse!r}: a log axis needs a positive, "
                "finite error."
            )
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


# ---------------------------------------------------------------------------------------------
# 10. Weights and activations (course lesson L3-E)
# ---------------------------------------------------------------------------------------------


def _check_linear_input(input: Any, in_features: int) -> torch.Tensor:
    """A float tensor whose last dimension is ``in_features``."""
    if not isinstance(input, torch.Tensor) or not input.is_floating_point():
        kind = dtype_name(input.dtype) if isinstance(input, torch.Tensor) else type(input).__name__
        raise TypeError(f"input must be a float tensor, got {kind}.")
    if input.dim() == 0 or input.shape[-1] != in_features:
        raise ValueError(
            f"input of shape {tuple(input.shape)} does not fit a weight with {in_features} "
            f"input features: its last dimension must be {in_features}."
        )
    return input


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
    q = _check_quantized(q_w, "q_w")
    if q.dim() != 2:
        raise ValueError(
            f"q_w must be a 2-D (out_features, in_features) weight, got shape {tuple(q.shape)}."
        )
    x = _check_linear_input(input, q.shape[1])
    weight = linear_dequantization(q, s_w, z_w)
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
    qx, qw = _check_quantized(q_x, "q_x"), _check_quantized(q_w, "q_w")
    if qx.dim() != 2 or qw.dim() != 2 or qx.shape[1] != qw.shape[1]:
        raise ValueError(
            f"q_x (batch, in_features) and q_w (out_features, in_features) must share "
            f"in_features; got shapes {tuple(qx.shape)} and {tuple(qw.shape)}."
        )
    params = {}
    for name, value, rows in (("s_x", s_x, qx.shape[0]), ("s_w", s_w, qw.shape[0])):
        checked = _check_scale(value, torch.Size([rows, 1]), torch.float32)
        params[name] = torch.as_tensor(checked, dtype=torch.float64).reshape(-1, 1)
    for name, value, rows in (("z_x", z_x, qx.shape[0]), ("z_w", z_w, qw.shape[0])):
        checked = _check_zero_point(value, torch.Size([rows, 1]))
        params[name] = torch.as_tensor(checked, dtype=torch.int64).reshape(-1, 1)
    x_int = qx.to(torch.int64) - params["z_x"]
    w_int = qw.to(torch.int64) - params["z_w"]
    accumulated = x_int @ w_int.T  # int64: exact
    return (accumulated.double() * params["s_x"] * params["s_w"].T).to(torch.float32)


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
    r, r2 = _check_pair(reference, approximation)
    if r.dim() == 0:
        raise ValueError("a 0-dim tensor has no rows: use sqnr_db for a single number.")
    signal = r.double().square().mean(dim=-1)
    noise = (r2.double() - r.double()).square().mean(dim=-1)
    sqnr = 10.0 * torch.log10(signal / noise)
    sqnr[noise == 0] = math.inf
    sqnr[(noise > 0) & (signal == 0)] = -math.inf
    return sqnr


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

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.
    """
    y = _check_tensor(reference, "reference")
    if y.dim() != 2:
        raise ValueError(f"reference must be 2-D (tokens, out_features), got {tuple(y.shape)}.")
    if not isinstance(outputs, dict) or not outputs:
        raise TypeError("outputs must be a non-empty dict {label: output tensor}.")
    overall = {label: sqnr_db(y, out) for label, out in outputs.items()}
    per_token = {label: sqnr_db_per_row(y, out) for label, out in outputs.items()}
    rms = y.double().square().mean(dim=-1).sqrt()
    order = torch.argsort(rms)

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(16, 4.8), layout="constrained", gridspec_kw={"width_ratios": [1, 1.3]}
    )
    labels = list(outputs)
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
    q = _check_quantized(weight, "weight")
    if q.dtype != torch.int8 or q.dim() != 2:
        raise TypeError(
            f"weight must be an int8 (out_features, in_features) tensor, got "
            f"{dtype_name(q.dtype)} of shape {tuple(q.shape)}."
        )
    out_features, in_features = q.shape
    x = _check_linear_input(input, in_features)
    if not isinstance(scales, torch.Tensor) or not scales.is_floating_point():
        raise TypeError("scales must be a float tensor with one scale per output row.")
    if tuple(scales.shape) != (out_features,):
        raise ValueError(
            f"scales must have shape ({out_features},), one per output row, got "
            f"{tuple(scales.shape)}; an (out, 1) scale would broadcast the output to the wrong "
            "shape: use scales.reshape(-1)."
        )
    if bias is not None:
        if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
            raise TypeError("bias must be a float tensor of shape (out,) or (1, out), or None.")
        if tuple(bias.shape) not in ((out_features,), (1, out_features)):
            raise ValueError(
                f"bias must have shape ({out_features},) or (1, {out_features}), got "
                f"{tuple(bias.shape)}."
            )
    compute = torch.promote_types(x.dtype, torch.float32)  # float64 stays float64
    output = _int8_linear(x.to(compute), q, compute) * scales.to(compute)
    if bias is not None:
        output = output + bias.reshape(-1).to(compute)
    return output.to(x.dtype)


def _int8_linear(x: torch.Tensor, q: torch.Tensor, compute: torch.dtype) -> torch.Tensor:
    """``F.linear(x, q.to(compute))`` for an int8 weight, converted a block of rows at a time
    into one reused buffer of about ``CHUNK_ELEMENTS`` elements.

    Converting a whole 4096x4096 weight allocates a fresh 64 MB float32 copy on every call,
    and that cost 10x the time of ``nn.Linear`` for one token (benchmarks/bench_w8a16.py);
    row blocks that stay in the cache brought one token to ``nn.Linear``'s time on one thread.
    A weight of at most ``CHUNK_ELEMENTS`` elements is converted in one go.
    """
    out_features, in_features = q.shape
    step = max(1, CHUNK_ELEMENTS // max(in_features, 1))
    if step >= out_features:
        return F.linear(x, q.to(compute))
    buffer = torch.empty((step, in_features), dtype=compute)
    parts = []
    for start in range(0, out_features, step):
        rows = q[start : start + step]
        weight = buffer[: rows.shape[0]]
        weight.copy_(rows)
        parts.append(F.linear(x, weight))
    return torch.cat(parts, dim=-1)


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
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(
                f"dtype is the layer's float dtype (e.g. torch.float32), got {dtype!r}."
            )
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = dtype
        self.register_buffer(
            "int8_weights", torch.zeros((out_features, in_features), dtype=torch.int8)
        )
        self.register_buffer("scales", torch.ones(out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype) if bias else None)

    def quantize(self, weights: torch.Tensor) -> None:
        """Quantize float ``weights`` (out_features, in_features) into this layer's buffers:
        symmetric, per output row, ``scale = max|row| / 127`` (section 9's mechanism), clamped
        to [-128, 127] before the int8 cast."""
        w = _check_tensor(weights, "weights")
        if tuple(w.shape) != (self.out_features, self.in_features):
            raise ValueError(
                f"weights of shape {tuple(w.shape)} do not fit this layer: expected "
                f"({self.out_features}, {self.in_features}) = (out_features, in_features)."
            )
        block_size = granularity_block_size(w.shape, "per_channel", dim=0)
        q, scale, _ = quantize_blockwise(w.float(), block_size, torch.int8, symmetric=True)
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
        if child is None or name in module_name_to_exclude or full_name in module_name_to_exclude:
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
    _check_module(module, target_class, module_name_to_exclude)
    _replace_linears(module, target_class, tuple(module_name_to_exclude), quantize=False)
    return module


def replace_linear_with_target_and_quantize(
    module: nn.Module,
    target_class: type[nn.Module],
    module_name_to_exclude: Sequence[str] = (),
) -> nn.Module:
    """Like ``replace_linear_with_target``, and each new layer quantizes the old layer's
    weights (``target_class.quantize``). Returns ``module``, changed in place."""
    _check_module(module, target_class, module_name_to_exclude)
    if not hasattr(target_class, "quantize"):
        raise TypeError(f"{target_class.__name__} has no quantize(weights) method.")
    _replace_linears(module, target_class, tuple(module_name_to_exclude), quantize=True)
    return module


def _check_module(module: Any, target_class: Any, names: Any) -> None:
    """The arguments of the replace functions, with messages that say what to pass."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    if not (isinstance(target_class, type) and issubclass(target_class, nn.Module)):
        raise TypeError(
            "target_class must be an nn.Module class such as W8A16LinearLayer, got "
            f"{target_class!r}."
        )
    if isinstance(names, str):
        raise TypeError(f"module_name_to_exclude must be a list of names, e.g. [{names!r}].")


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
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    classes = layer_class if isinstance(layer_class, tuple) else (layer_class,)
    if not classes or not all(isinstance(c, type) for c in classes):
        raise TypeError(
            f"layer_class must be a class such as nn.Linear (or a tuple of classes), got "
            f"{layer_class!r}."
        )
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
    method: str = "min-max",
    percentile: float = 99.9,
) -> torch.Tensor:
    """``weight`` after a symmetric round trip at ``n_bits``: quantized, then dequantized::

        w' = s * clamp(round(w / s), q_min, q_max)      s = max|w| / q_max, per block

    with ``q_max = 2**(n_bits - 1) - 1`` and ``q_min = -2**(n_bits - 1)``. ``granularity`` is
    ``"per_tensor"``, ``"per_channel"`` (one scale per output row: dim 0 of an
    ``(out_features, in_features)`` weight) or ``"per_group"`` (``group_size`` consecutive
    weights of a row). The result has ``weight``'s shape and float dtype.

    ``method`` chooses the range (lesson 13): ``"min-max"`` uses ``max|w|`` as above;
    ``"percentile"`` and ``"mse"`` clip each block at ``clipping_absmax(..., method,
    percentile)`` and use ``s = absmax / q_max`` (section 13).

    At 2 bits the levels are -2, -1, 0 and 1 and ``s = max|w|``: every weight becomes
    ``-s``, ``0`` or ``s``, and each magnitude below half its block's largest becomes 0.

    >>> w = torch.tensor([[0.9, -0.2, 0.5, 0.1], [0.03, -0.01, 0.02, 0.0]])
    >>> fake_quantize(w, n_bits=2, granularity="per_tensor")
    tensor([[0.9000, 0.0000, 0.9000, 0.0000],
            [0.0000, 0.0000, 0.0000, 0.0000]])
    >>> fake_quantize(w, n_bits=2, granularity="per_channel")
    tensor([[0.9000, 0.0000, 0.9000, 0.0000],
            [0.0300, 0.0000, 0.0300, 0.0000]])
    """
    w = _check_tensor(weight, "weight")
    if granularity == "per_group" and w.dim() == 0:
        raise ValueError("a 0-dim weight has no rows to split into groups.")
    block_size = granularity_block_size(w.shape, granularity, dim=0, group_size=group_size)
    output_dtype = weight.dtype if weight.is_floating_point() else torch.float32
    if method != "min-max":
        absmax = clipping_absmax(w, block_size, method, torch.int8, n_bits, percentile)
        back = fake_quantize_clipped(w.float(), block_size, absmax, torch.int8, n_bits)
        return back.to(output_dtype)
    q, scale, zero_point = quantize_blockwise(
        w.float(), block_size, torch.int8, n_bits, symmetric=True
    )
    return dequantize_affine(q, block_size, scale, zero_point, output_dtype=output_dtype)


def fake_quantize_linears(
    model: nn.Module,
    n_bits: int = 8,
    granularity: str = "per_channel",
    group_size: int | None = None,
    layers: Sequence[str] | None = None,
    method: str = "min-max",
    percentile: float = 99.9,
) -> nn.Module:
    """A **copy** of ``model`` whose ``nn.Linear`` weights are replaced by ``fake_quantize(
    weight, n_bits, granularity, group_size, method, percentile)``; biases stay as they are.

    ``layers`` names the linear layers to quantize (dotted names, as ``layer_names(model)``
    lists them); ``None`` means all of them. ``model`` itself is not changed, so the float
    model and the quantized copy can be compared side by side. With ``"per_group"``,
    ``group_size`` must divide every chosen layer's ``in_features``.

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
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    linears = layer_names(model)
    if layers is None:
        chosen = linears
    else:
        if isinstance(layers, str):
            raise TypeError(f"layers must be a list of names, e.g. [{layers!r}].")
        chosen = list(layers)
        unknown = [name for name in chosen if name not in linears]
        if unknown:
            raise ValueError(
                f"no nn.Linear named {', '.join(map(repr, unknown))} in this model; its linear "
                f"layers are {', '.join(map(repr, linears))}."
            )
    quantized = copy.deepcopy(model)
    for name in chosen:
        layer = quantized.get_submodule(name)
        with torch.no_grad():
            layer.weight.copy_(
                fake_quantize(
                    layer.weight.detach(), n_bits, granularity, group_size, method, percentile
                )
            )
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

    Lesson 05's ``bits_per_weight`` for each layer, weighted by the layer's size.

    >>> model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> linears_bits_per_weight(model, 4, "per_group", group_size=16)     # 4 + 32 / 16
    6.0
    >>> round(linears_bits_per_weight(model, 4, "per_channel"), 4)        # 4 + 32 / in
    4.5676
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
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

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.
    """
    if not isinstance(correct, dict) or not correct:
        raise TypeError("correct must be a non-empty dict {label: {n_bits: correct count}}.")
    if isinstance(n_test, bool) or not isinstance(n_test, numbers.Integral) or n_test < 1:
        raise ValueError(f"n_test must be a whole number >= 1, got {n_test!r}.")
    for label, counts in correct.items():  # check everything before a figure exists
        for b, count in counts.items():
            if not 0 <= count <= n_test:
                raise ValueError(f"{label!r} at {b} bits: {count} is not in 0..{n_test}.")
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


# ---------------------------------------------------------------------------------------------
# 12. Weight packing: several low-bit values in one byte (course lesson L5)
# ---------------------------------------------------------------------------------------------

# A 4-bit or 2-bit value kept in an int8 tensor wastes the rest of its byte. Packing puts
# 8 // bits values into every byte, the first value in the lowest bits (the course's order):
#
#     [1, 0, 3, 2] at 2 bits  ->  0b10_11_00_01 = 177     value 0 in bits 0-1, value 3 in bits 6-7
#
# Packing works on unsigned values 0 .. 2**bits - 1. A signed quantized value (int4: -8..7) is
# stored in offset binary first, q - q_min (0..15), and shifted back after unpacking. All of
# it is vectorised: the only Python loop runs over the 8 // bits positions inside a byte, never
# over the elements.

#: The bit widths that fill a byte exactly: each divides 8 (8 itself packs one value per byte).
PACK_BITS: tuple[int, ...] = (1, 2, 4, 8)


def _check_pack_bits(bits: Any) -> int:
    """``bits`` as an int if it is one of ``PACK_BITS``, else a ``TypeError`` or ``ValueError``."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"bits must be a whole number, 1, 2, 4 or 8; got {bits!r}.")
    if int(bits) not in PACK_BITS:
        raise ValueError(
            f"bits={bits} is not a width that divides 8, so some values would straddle two "
            "bytes: use 1, 2, 4 or 8 (a 3-bit value can be stored in 4 bits)."
        )
    return int(bits)


def _check_uint8(tensor: Any, name: str, packing: bool) -> torch.Tensor:
    """A uint8 tensor with at least one dimension; the ``TypeError`` says what to pass instead."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of dtype uint8, got {type(tensor).__name__}."
        )
    if tensor.dtype != torch.uint8:
        got = dtype_name(tensor.dtype)
        if not packing:
            advice = "pass the uint8 tensor that pack_weights returned."
        elif tensor.is_floating_point():
            advice = (
                "quantize it first (for example quantize_blockwise with n_bits), then store the "
                "levels in offset binary with to_offset_binary(q, bits)."
            )
        elif tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
            advice = (
                "signed values do not pack as they are (a negative number has all its high "
                "bits set): store them in offset binary first, to_offset_binary(q, bits), "
                "which gives q - q_min as uint8."
            )
        else:
            advice = "convert it with .to(torch.uint8) once you have checked the values fit."
        raise TypeError(f"{name} has dtype {got}, but packing works on uint8 values: {advice}")
    if tensor.dim() == 0:
        raise ValueError(
            f"{name} is a 0-dim tensor; packing runs along the last dimension: use "
            f"{name}.reshape(1)."
        )
    return tensor.detach()


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
    levels: ``to_offset_binary`` first). The input is not modified.

    >>> pack_weights(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    tensor([177], dtype=torch.uint8)
    >>> pack_weights(torch.tensor([[1, 2, 3, 4], [15, 0, 0, 15]], dtype=torch.uint8), 4)
    tensor([[ 33,  67],
            [ 15, 240]], dtype=torch.uint8)
    """
    bits = _check_pack_bits(bits)
    values = _check_uint8(uint8tensor, "uint8tensor", packing=True)
    per_byte = 8 // bits
    if bits < 8 and values.numel() and int(values.amax()) >= 2**bits:
        raise ValueError(
            f"uint8tensor holds {int(values.amax())}, which does not fit in {bits} bits (0 to "
            f"{2**bits - 1}): quantize with n_bits={bits}, or pack with more bits."
        )
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


def _check_unpacked_shape(shape: Any, packed_shape: torch.Size, bits: int) -> tuple[int, ...]:
    """``shape`` as a tuple if a tensor of that shape packs into ``packed_shape``."""
    if isinstance(shape, torch.Size | tuple | list) and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in shape
    ):
        shape = tuple(int(n) for n in shape)
    else:
        raise TypeError(f"shape must be a tuple of whole numbers such as (4, 6), got {shape!r}.")
    per_byte = 8 // bits
    fits = (
        len(shape) == len(packed_shape)
        and shape[:-1] == tuple(packed_shape[:-1])
        and shape[-1] >= 0
        and -(-shape[-1] // per_byte) == packed_shape[-1]
    )
    if not fits:
        raise ValueError(
            f"shape {shape} does not fit the packed tensor of shape {tuple(packed_shape)}: "
            "pass the shape of the tensor before packing (the same leading dimensions, and a "
            f"last dimension that {bits}-bit values fill into {packed_shape[-1]} bytes)."
        )
    return shape


def unpack_weights(
    uint8tensor: torch.Tensor, bits: int, shape: Sequence[int] | None = None
) -> torch.Tensor:
    """The values ``pack_weights`` packed, as uint8: shape ``(..., m * 8 / bits)`` for a packed
    tensor of shape ``(..., m)``. Value ``i`` of every byte is::

        v[i] = (byte >> i * bits) & (2**bits - 1)

    The shift moves value ``i`` down to the lowest bits, the mask ``2**bits - 1`` (``0b11`` for
    2 bits) keeps only those bits and drops the values above. ``shape``, the shape of the
    tensor before it was packed with ``pad=True``, removes the padding. The input is not
    modified.

    >>> unpack_weights(torch.tensor([177], dtype=torch.uint8), 2)
    tensor([1, 0, 3, 2], dtype=torch.uint8)
    >>> packed = pack_weights(torch.tensor([5, 6, 7], dtype=torch.uint8), 4, pad=True)
    >>> packed
    tensor([101,   7], dtype=torch.uint8)
    >>> unpack_weights(packed, 4), unpack_weights(packed, 4, shape=(3,))
    (tensor([5, 6, 7, 0], dtype=torch.uint8), tensor([5, 6, 7], dtype=torch.uint8))
    """
    bits = _check_pack_bits(bits)
    packed = _check_uint8(uint8tensor, "uint8tensor", packing=False)
    if shape is not None:
        shape = _check_unpacked_shape(shape, packed.shape, bits)
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


def _check_offset_bits(bits: Any) -> int:
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"bits must be a whole number from 1 to 8, got {bits!r}.")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits={bits} is not a width from 1 to 8.")
    return int(bits)


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
    bits = _check_offset_bits(bits)
    q = _check_quantized(quantized_tensor)
    q_min, q_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    low, high = (int(v) for v in torch.aminmax(q.to(torch.int64)))
    if low < q_min or high > q_max:
        raise ValueError(
            f"quantized_tensor holds {low if low < q_min else high}, outside the signed "
            f"{bits}-bit range [{q_min}, {q_max}]: quantize with n_bits={bits} first."
        )
    return (q.to(torch.int16) - q_min).to(torch.uint8)


def from_offset_binary(uint8tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """The signed levels back from offset binary, as int8: ``q = u + q_min = u - 2**(bits - 1)``.

    >>> from_offset_binary(torch.tensor([0, 7, 8, 15], dtype=torch.uint8), 4)
    tensor([-8, -1,  0,  7], dtype=torch.int8)
    """
    bits = _check_offset_bits(bits)
    if not isinstance(uint8tensor, torch.Tensor) or uint8tensor.dtype != torch.uint8:
        got = (
            dtype_name(uint8tensor.dtype)
            if isinstance(uint8tensor, torch.Tensor)
            else type(uint8tensor).__name__
        )
        raise TypeError(f"uint8tensor must be a uint8 tensor (offset binary), got {got}.")
    if uint8tensor.numel() and int(uint8tensor.amax()) >= 2**bits:
        raise ValueError(
            f"uint8tensor holds {int(uint8tensor.amax())}, which is not a {bits}-bit offset-"
            f"binary value (0 to {2**bits - 1})."
        )
    return (uint8tensor.detach().to(torch.int16) - 2 ** (bits - 1)).to(torch.int8)


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
    n_bits = _check_pack_bits(n_bits)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (out_features, in_features), got {shape}.")
    out_features, in_features = shape
    per_byte = 8 // n_bits
    return out_features * -(-in_features // per_byte) + out_features * int(scale_bytes)


def _is_excluded(name: str, module_name_to_exclude: Sequence[str]) -> bool:
    """True if the dotted ``name`` or one of its ancestors is excluded by name or by path
    (the rule of ``replace_linear_with_target``)."""
    parts = name.split(".")
    return any(
        part in module_name_to_exclude or ".".join(parts[: i + 1]) in module_name_to_exclude
        for i, part in enumerate(parts)
    )


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
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if isinstance(module_name_to_exclude, str):
        raise TypeError(
            f"module_name_to_exclude must be a list of names, e.g. [{module_name_to_exclude!r}]."
        )
    _check_pack_bits(n_bits)
    packed = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not _is_excluded(name, module_name_to_exclude):
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
    ``quantize_blockwise``. ``forward`` unpacks the bytes, removes the offset and runs
    ``w8_a16_forward`` on the int8 levels: the packed bytes are what the layer keeps, the
    unpacked weight exists only during the call.

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
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(
                f"dtype is the layer's float dtype (e.g. torch.float32), got {dtype!r}."
            )
        n_bits = type(self).n_bits if n_bits is None else n_bits
        if isinstance(n_bits, bool) or n_bits not in (2, 4, 8):
            raise ValueError(
                f"n_bits must be 2, 4 or 8 (a width that fills a byte and has signed levels "
                f"besides 0), got {n_bits!r}."
            )
        self.n_bits = int(n_bits)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = dtype
        row_bytes = -(-self.in_features // (8 // self.n_bits))
        self.register_buffer(
            "packed_weights", torch.zeros((self.out_features, row_bytes), dtype=torch.uint8)
        )
        self.register_buffer("scales", torch.ones(self.out_features, dtype=torch.float32))
        self.register_buffer("bias", torch.zeros((1, out_features), dtype=dtype) if bias else None)

    def quantize(self, weights: torch.Tensor) -> None:
        """Quantize float ``weights`` (out_features, in_features) into this layer's buffers:
        symmetric per output row at ``n_bits``, offset binary, packed along each row."""
        w = _check_tensor(weights, "weights")
        if tuple(w.shape) != (self.out_features, self.in_features):
            raise ValueError(
                f"weights of shape {tuple(w.shape)} do not fit this layer: expected "
                f"({self.out_features}, {self.in_features}) = (out_features, in_features)."
            )
        block_size = granularity_block_size(w.shape, "per_channel", dim=0)
        q, scale, _ = quantize_blockwise(
            w.float(), block_size, torch.int8, self.n_bits, symmetric=True
        )
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


# A picture of the bit layout -------------------------------------------------------------------

#: ``plot_packed_bits`` draws at most this many bytes.
PLOT_MAX_BYTES = 8


def plot_packed_bits(uint8tensor: torch.Tensor, bits: int, title: str | None = None) -> Figure:
    """Which value's bits sit where: the values of a 1-D uint8 tensor (top row) and the bytes
    ``pack_weights`` packs them into (bottom row), bit by bit.

    Every value has its own colour, in its box on top and in the bits it occupies below. A
    byte is written the way binary numbers are, its highest bit (bit 7) on the left, so the
    first value, which goes into the lowest bits, ends up on the **right** of its byte; the
    arrows show where each value goes. Under each byte: its bits and its value as a number.
    At most ``PLOT_MAX_BYTES`` bytes; the length must be a multiple of ``8 // bits``.

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.

    >>> fig = plot_packed_bits(torch.tensor([1, 0, 3, 2], dtype=torch.uint8), 2)
    >>> fig.axes[0].get_title()
    '4 values of 2 bits packed into 1 byte, lowest bits first'
    """
    from matplotlib.patches import FancyArrowPatch, Rectangle

    bits = _check_pack_bits(bits)
    values = _check_uint8(uint8tensor, "uint8tensor", packing=True)
    if values.dim() != 1:
        raise ValueError(f"plot_packed_bits draws a 1-D tensor, got shape {tuple(values.shape)}.")
    packed = pack_weights(values, bits)  # checks that the values fit and the length
    if len(packed) > PLOT_MAX_BYTES:
        raise ValueError(
            f"{len(packed)} bytes are too many to draw: pass at most "
            f"{PLOT_MAX_BYTES * 8 // bits} values of {bits} bits."
        )
    per_byte, gap = 8 // bits, 1.2
    colours = [plt.get_cmap("tab10")(j % 10) for j in range(len(values))]
    light = [(*colour[:3], 0.35) for colour in colours]  # the same colours, see-through
    width = len(packed) * (8 + gap) - gap
    fig, ax = plt.subplots(figsize=(max(6.0, 0.62 * width + 1.0), 4.2), layout="constrained")
    top, bottom = 3.2, 0.0  # y of the value boxes and of the bit cells
    small = 8 if bits == 1 else 10
    for b, byte in enumerate(packed.tolist()):
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
            value = int(values[j])
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
    n_bytes = len(packed)
    ax.set_title(
        title
        or f"{len(values)} values of {bits} bit{'s' if bits > 1 else ''} packed into "
        f"{n_bytes} byte{'s' if n_bytes > 1 else ''}, lowest bits first",
        fontsize=12,
    )
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# 13. Choosing the range: beyond min and max
# ---------------------------------------------------------------------------------------------
# The range of a quantizer need not be the tensor's full range. Min-max, used in every lesson so
# far, clips nothing and pays for it with a step set by the largest magnitude, however rare it
# is. *Clipping* picks a smaller absmax alpha: the values beyond it saturate at the end levels,
# and every other value gets a finer step. Section 9's ``choose_qparams_affine(...,
# r_range=alpha)`` already takes such a range per block; the functions below choose it:
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
# q_max.

#: The ways of choosing a clipping range that ``clipping_absmax`` knows.
RANGE_METHODS: tuple[str, ...] = ("min-max", "percentile", "mse")

#: The grids the clipping functions can round to. ``"course"``: the symmetric integer grid
#: -q_max..q_max of every lesson, ``alpha = q_max * s`` is its end level and 0 is a level.
#: ``"midrise"``: ``2**n_bits`` levels at the centres of ``2**n_bits`` equal bins over
#: ``[-alpha, alpha]``, with no level at 0, the grid that analytic clipping formulas such as
#: ACIQ assume. Only ``"course"`` is a quantizer of this collection; ``"midrise"`` is here to
#: compare with those formulas.
CLIPPING_GRIDS: tuple[str, ...] = ("course", "midrise")


def _check_percentile(percentile: Any) -> float:
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


def _check_grid(grid: Any) -> str:
    if grid not in CLIPPING_GRIDS:
        raise ValueError(f"unknown grid {grid!r}: use {' or '.join(map(repr, CLIPPING_GRIDS))}.")
    return grid


def _symmetric_levels(dtype: torch.dtype, n_bits: int | None) -> tuple[int, int]:
    """``(q_low, q_max)``, the lowest and highest code of the symmetric grid: ``-q_max`` to
    ``q_max`` for a signed dtype; for an unsigned one the same grid shifted by its midpoint
    zero point ``m`` (section 8), ``2 * m - q_max`` to ``q_max``."""
    q_min, q_max = get_q_range(dtype, n_bits)
    middle = 0 if q_min < 0 else (q_min + q_max + 1) // 2
    return 2 * middle - q_max, q_max


def _n_blocks(tensor: torch.Tensor, blocks: Blocks) -> tuple[int, ...]:
    """The shape of one-value-per-block results (``()`` for a 0-dim tensor)."""
    return blocks.n_blocks if tensor.dim() else ()


def _check_absmax(absmax: Any, n_blocks: tuple[int, ...]) -> torch.Tensor:
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
    percentile = _check_percentile(percentile)
    r = _check_tensor(tensor)
    blocks = _blocks_of(r, block_size)
    _min_max(r)  # NaN and infinity checks
    magnitudes = _view(r.abs(), blocks)
    reduce = [d for d, p in enumerate(blocks.param_shape) if p == 1]
    keep = [d for d, p in enumerate(blocks.param_shape) if p != 1]
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
    return absmax.reshape(_n_blocks(r, blocks))


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
    q_low, q_max = _symmetric_levels(dtype, n_bits)
    r = _check_tensor(tensor)
    blocks = _blocks_of(r, block_size)
    absmax = _check_absmax(absmax, _n_blocks(r, blocks))
    _min_max(r)  # NaN and infinity checks
    scale, zero_point = choose_qparams_affine(
        r, block_size, dtype, n_bits, symmetric=True, r_range=absmax
    )
    scale_view = scale.reshape(blocks.param_shape)
    zero_view = zero_point.reshape(blocks.param_shape)
    q = _quantize(_view(r, blocks), scale_view, zero_view, q_low, q_max, dtype)
    return q.reshape(r.shape), scale, zero_point


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
        step = _as_number_if_single((absmax / half).clamp(min=SCALE_EPS), view.dtype)
        return torch.floor(view / step).clamp_(-half, half - 1).add_(0.5).mul_(step)
    q_min, q_max = get_q_range(dtype, n_bits)
    q_low, _ = _symmetric_levels(dtype, n_bits)
    scale, zero_point = qparams_from_range(-absmax, absmax, q_min, q_max, symmetric=True)
    scale = _as_number_if_single(scale, view.dtype)
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
    grid = _check_grid(grid)
    r = _check_tensor(tensor)
    if grid == "course":
        q, scale, zero_point = quantize_clipped(r, block_size, absmax, dtype, n_bits)
        return dequantize_affine(q, block_size, scale, zero_point, output_dtype=r.dtype)
    get_q_range(dtype, n_bits)  # checks dtype and n_bits
    blocks = _blocks_of(r, block_size)
    absmax = _check_absmax(absmax, _n_blocks(r, blocks))
    _min_max(r)
    back = _round_trip(_view(r, blocks), absmax.reshape(blocks.param_shape), dtype, n_bits, grid)
    return back.reshape(r.shape)


def _search_setup(tensor: Any, block_size: Sequence[int], dtype, n_bits, grid):
    """Checked ``(block view, blocks, max|r| in param_shape, grid, n_blocks)`` for a search."""
    get_q_range(dtype, n_bits)
    grid = _check_grid(grid)
    r = _check_tensor(tensor)
    blocks = _blocks_of(r, block_size)
    absmax = absmax_minmax(r, block_size)  # also rejects NaN and infinity
    return _view(r, blocks), blocks, absmax.reshape(blocks.param_shape), grid, _n_blocks(r, blocks)


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
    view, blocks, absmax, grid, n_blocks = _search_setup(tensor, block_size, dtype, n_bits, grid)
    ratios = torch.as_tensor(ratios, dtype=torch.float64).flatten()
    if ratios.numel() == 0 or not bool(((ratios > 0) & torch.isfinite(ratios)).all()):
        raise ValueError("ratios must be a non-empty sequence of positive, finite numbers.")
    curves = []
    for ratio in ratios.tolist():
        back = _round_trip(view, ratio * absmax, dtype, n_bits, grid)
        curves.append(_block_mse(back, view, blocks).reshape(n_blocks))
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
    for name, value, low in (("n_grid", n_grid, 1), ("n_refine", n_refine, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}.")
    view, blocks, absmax, grid, n_blocks = _search_setup(tensor, block_size, dtype, n_bits, grid)
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
    return (best_ratio * absmax).reshape(n_blocks)


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
    course's grid). Float64, shape ``n_blocks``: pass it to ``quantize_clipped`` or
    ``fake_quantize_clipped``.

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
    raise ValueError(
        f"unknown method {method!r}: use one of {', '.join(map(repr, RANGE_METHODS))}."
    )


# Clipping a model's weights ----------------------------------------------------------------


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
    if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral) or n_bits < 1:
        raise ValueError(f"n_bits must be a whole number >= 1, got {n_bits!r}.")
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

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.
    """
    r = _check_tensor(tensor)
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

    fig, axes = plt.subplots(
        1, len(widths), figsize=(5.2 * len(widths), 4.4), layout="constrained", squeeze=False
    )
    for ax, bits in zip(axes[0], widths, strict=True):
        q_max = 2 ** (bits - 1) - 1
        curve = clipping_mse_curve(r, whole, ratios, n_bits=bits).flatten()
        best = absmax_mse_optimal(r, whole, n_bits=bits).item()
        ax.plot(ratios, curve, color="tab:blue", linewidth=1.6, label="measured MSE")
        ax.plot(
            ratios,
            (ratios * peak / q_max) ** 2 / 12,
            "--",
            color="gray",
            linewidth=1.2,
            label="s² / 12 (rounding only)",
        )
        marks = (
            ("min-max", peak, "o", "tab:red"),
            (f"percentile {percentile:g}", clip, "s", "tab:orange"),
            ("MSE-optimal", best, "*", "tab:green"),
        )
        for label, alpha, marker, colour in marks:
            back = fake_quantize_clipped(r, whole, alpha, torch.int8, bits)
            mse = quantization_error(r, back).item()
            ax.plot(
                alpha / peak,
                mse,
                marker,
                color=colour,
                markersize=11 if marker == "*" else 8,
                label=f"{label}: {alpha / peak:.3f}, MSE {mse:.3g}",
                zorder=3,
            )
        ax.set_yscale("log")
        ax.set_xlim(0, 1.03)
        ax.set_xlabel("clipping range alpha / max|r|")
        ax.set_ylabel("MSE (log scale)")
        ax.set_title(f"{bits} bits: levels -{q_max}..{q_max}", fontsize=12)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title or f"MSE against the clipping range, {r.numel():,} values", fontsize=13)
    plt.close(fig)
    return fig


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

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.

    >>> fig = plot_clipping_ranges(torch.tensor([-1.0, 0.0, 0.5, 3.0]), {"min-max": 3.0})
    >>> fig.axes[0].get_legend().get_texts()[1].get_text()
    'min-max: ±3, 0.00% beyond'
    """
    r = _check_tensor(tensor)
    r_min, r_max = _min_max(r)
    if not isinstance(ranges, dict) or not ranges:
        raise TypeError("ranges must be a non-empty dict {label: alpha}.")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise ValueError(f"bins must be a whole number >= 1, got {bins!r}.")
    values = r.flatten().to(torch.float64)
    top = max([abs(r_min), abs(r_max), *[float(a) for a in ranges.values()]]) or 1.0
    counts, edges = torch.histogram(values, bins=int(bins), range=(-top, top))
    fig, ax = plt.subplots(figsize=(10, 4.6), layout="constrained")
    ax.stairs(
        counts.numpy(),
        edges.numpy(),
        fill=True,
        color="tab:blue",
        alpha=0.6,
        label=f"{values.numel():,} values",
    )
    styles = ("-", "--", "-.", ":")
    colours = ("tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown")
    for i, (label, alpha) in enumerate(ranges.items()):
        alpha = float(alpha)
        beyond = (values.abs() > alpha).double().mean().item()
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
    ax.set_title(title or "Where each method clips", fontsize=12)
    plt.close(fig)
    return fig
