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
8. Symmetric mode                    ``get_q_scale_symmetric``, ``linear_q_symmetric``
9. Granularity: one mechanism        ``choose_qparams_affine``, ``quantize_affine``,
                                     ``dequantize_affine``, ``linear_q_symmetric_per_channel``,
                                     ``linear_q_symmetric_per_group``,
                                     ``linear_dequantization_per_group``
10. Weights and activations          ``quantized_linear_W8A32_without_bias``,
                                     ``quantized_linear_W8A8_without_bias``
11. An 8-bit layer for any model     ``w8_a16_forward``, ``W8A16LinearLayer``,
                                     ``replace_linear_with_target``,
                                     ``replace_linear_with_target_and_quantize``

The whole course rests on two formulas (``s`` is the scale, ``z`` the zero point)::

    quantize:    q  = clamp(round(r / s) + z, q_min, q_max)
    dequantize:  r' = s * (q - z)

Every quantizer here, per tensor, per channel or per group, symmetric or not, is the same three
steps of section 9: measure a range per block of elements, turn it into a scale and zero point
(section 3), then apply the two formulas (sections 4 and 5) with one scale per block. The
functions named after the course are thin wrappers that pick the block.

The interactive explorer lives in ``explorer.py``, the exercise checkers in ``exercises.py``
and the example tensors in ``examples.py``: you use them, but need not read them.

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
    "linear_q_with_scale_and_zero_point",
    "linear_quantization",
    "linear_dequantization",
    "quantization_error",
    "sqnr_db",
    "plot_quantization_errors",
    "plot_number_line",
    "get_q_scale_symmetric",
    "linear_q_symmetric",
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
    "quantized_linear_W8A32_without_bias",
    "quantized_linear_W8A8_without_bias",
    "w8_a16_forward",
    "W8A16LinearLayer",
    "replace_linear_with_target",
    "replace_linear_with_target_and_quantize",
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
# points become Python numbers, and a per-block scale is sliced along the rows with the data.

#: How many elements the quantize and dequantize loops handle at a time. About 1 MiB of
#: float32: small enough that the intermediate results stay in the CPU cache, large enough
#: that each operation still splits over the CPU's threads (measured fastest on 2 cores:
#: 2**18 elements; 2**16 took about 10% longer, 2**14 twice as long).
CHUNK_ELEMENTS = 1 << 18


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
    out = torch.empty(r.shape, dtype=dtype)
    largest_chunk = max(CHUNK_ELEMENTS, math.prod(r.shape[1:]))  # see _row_chunks
    work = torch.empty(min(r.numel(), largest_chunk), dtype=r.dtype)
    for rows in _row_chunks(r.shape):
        r_part = r[rows]
        buf = work[: r_part.numel()].view(r_part.shape)
        torch.div(r_part, _chunk(scale, r.shape, rows), out=buf)
        buf.round_()  # half to even, like torch.round
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
    out = torch.empty(q.shape, dtype=torch.float32)
    for rows in _row_chunks(q.shape):
        part = out[rows]
        part.copy_(q[rows])  # to float32 first: int8 q - z could wrap around
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
    level (it is ``q = z``); beyond the last level, in the shaded zones, the staircase is flat:
    every value there saturates to the end level. The dotted diagonal is ``r' = r``, no error.
    A value's vertical distance to the diagonal is its error.

    Returns the figure, closed for pyplot like ``plot_quantization_errors``.
    """
    q_min, q_max = get_q_range(dtype, n_bits)
    r = _check_tensor(tensor).flatten().to(torch.float64)
    r_min, r_max = _min_max(r)
    scale = float(_check_scale(scale, torch.Size([]), torch.float32))
    zero_point = int(_check_zero_point(zero_point, torch.Size([]), q_min, q_max))
    low_level, high_level = scale * (q_min - zero_point), scale * (q_max - zero_point)
    left, right = min(r_min, low_level, 0.0), max(r_max, high_level, 0.0)
    pad = 0.08 * (right - left)
    left, right = left - pad, right + pad
    xs = torch.linspace(left, right, 4001, dtype=torch.float64)
    ys = _dequantize(_quantize(xs, scale, zero_point, q_min, q_max, torch.int32), scale, zero_point)
    back = _dequantize(
        _quantize(r, scale, zero_point, q_min, q_max, torch.int32), scale, zero_point
    )

    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    ax.axvspan(left, low_level, color="tab:red", alpha=0.12, label="saturated (clamped)")
    ax.axvspan(high_level, right, color="tab:red", alpha=0.12)
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

    ``q = clamp(round(r / s), q_min, q_max)`` with ``s = get_q_scale_symmetric(tensor)``; the
    zero point is 0 (for an unsigned dtype, the midpoint: see ``get_q_scale_symmetric``).
    Dequantize with ``linear_dequantization(q, scale, 0)``.

    >>> q, s = linear_q_symmetric(torch.tensor([-1.0, 0.5, 2.0]))
    >>> q, round(s, 6)
    (tensor([-64,  32, 127], dtype=torch.int8), 0.015748)
    """
    r = _check_tensor(tensor)
    quantized, scale, _ = quantize_blockwise(r, r.shape, dtype, n_bits, symmetric=True)
    return quantized, scale.item()


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

    One ``aminmax`` pass per tensor for a single block or a single reduced dimension; raises a
    ``ValueError`` if any block holds a NaN or an infinity.

    >>> t = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    >>> r_min, r_max = block_range(t, (1, 3))      # per row
    >>> r_min.flatten().tolist(), r_max.flatten().tolist()
    ([-13.5, -184.0, 0.0], [728.5999755859375, 295.5, 684.5999755859375])
    """
    r = _check_tensor(tensor)
    blocks = _blocks_of(r, block_size)
    view = _view(r, blocks)
    reduce = tuple(d for d, p in enumerate(blocks.param_shape) if p == 1)
    if len(reduce) == view.dim():
        r_min, r_max = torch.aminmax(view)
    elif len(reduce) == 1:
        r_min, r_max = torch.aminmax(view, dim=reduce[0], keepdim=True)
    else:
        r_min, r_max = view.amin(dim=reduce, keepdim=True), view.amax(dim=reduce, keepdim=True)
    _check_finite_range(r_min, r_max, "tensor")
    n_blocks = blocks.n_blocks if tensor.dim() else ()
    return r_min.reshape(n_blocks).double(), r_max.reshape(n_blocks).double()


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
    """A number, or a tensor with one value per block (shape ``n_blocks``), in param_shape."""
    if not isinstance(param, torch.Tensor):
        return torch.tensor(param, dtype=torch.float64).reshape((1,) * len(blocks.param_shape))
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
    returns) or are numbers for a single block. The formula is section 4's, and so is the
    chunked, in-place computation.

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

    The sum runs over ``in_features`` in int32 (no int8 product can overflow it for any
    realistic layer); the scales multiply only once per output. That factoring needs one
    activation scale per tensor or per row (token), shape ``(batch, 1)``, and one weight
    scale per tensor or per output channel, shape ``(out, 1)``: a scale that varied along
    ``in_features`` could not be pulled out of the sum. ``q_x`` is (batch, in_features),
    ``q_w`` is (out_features, in_features); the result is float32 (batch, out_features).

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
        params[name] = torch.as_tensor(checked, dtype=torch.int32).reshape(-1, 1)
    x_int = qx.to(torch.int32) - params["z_x"]
    w_int = qw.to(torch.int32) - params["z_w"]
    accumulated = x_int @ w_int.T  # int32: exact
    return (accumulated.double() * params["s_x"] * params["s_w"].T).to(torch.float32)


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
    anything but ``(out,)`` is an error here. The product runs in float32 (exact for int8
    weights) and the result is cast to ``input``'s dtype: a float16 input cannot overflow in
    ``input @ weight.T`` before the scale shrinks it. ``bias`` has shape (out,) or (1, out).

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
    output = F.linear(x.to(torch.float32), q.to(torch.float32)) * scales.to(torch.float32)
    if bias is not None:
        if bias.numel() != out_features:
            raise ValueError(
                f"bias must hold {out_features} values (shape (out,) or (1, out)), got shape "
                f"{tuple(bias.shape)}."
            )
        output = output + bias.reshape(-1).to(torch.float32)
    return output.to(x.dtype)


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

    def extra_repr(self) -> str:
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
) -> None:
    """Walk ``module``'s children and swap every ``nn.Linear`` not excluded by name."""
    for name, child in module.named_children():
        full_name = f"{prefix}{name}"
        if isinstance(child, nn.Linear) and not (
            name in module_name_to_exclude or full_name in module_name_to_exclude
        ):
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
            setattr(module, name, new)
        else:
            _replace_linears(child, target_class, module_name_to_exclude, quantize, full_name + ".")


def replace_linear_with_target(
    module: nn.Module,
    target_class: type[nn.Module],
    module_name_to_exclude: Sequence[str] = (),
) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (recursively, in place) by an empty
    ``target_class(in_features, out_features, bias=..., dtype=...)``, keeping its bias and dtype.

    A linear layer whose name (``"lm_head"``) or dotted path (``"encoder.layer.0.output"``)
    is in ``module_name_to_exclude`` stays as it is. Returns ``module``. Use this to build a
    skeleton to load quantized weights into; ``replace_linear_with_target_and_quantize``
    also quantizes the existing weights.
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
