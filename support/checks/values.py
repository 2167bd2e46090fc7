"""Checks of numbers, dtypes, tensors, scales, zero points and block sizes (helper.py,
sections 1 to 9).

Import direction: imports torch and ``support.constants``; never ``helper``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from support.constants import SUPPORTED_DTYPES, dtype_name

# -- numbers -----------------------------------------------------------------------------------


def is_whole(value: Any) -> bool:
    """True for a whole number (Python or numpy int, not ``bool``)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def shape_of(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """A shape: a sequence of whole numbers >= 0 (``torch.Size``, tuple, list), as a tuple.
    Fractions are refused, not truncated: (4.9, 8) is not a shape."""
    if isinstance(shape, str | bytes) or not isinstance(shape, Sequence | torch.Size):
        raise TypeError(f"{name} must be a tuple of whole numbers such as (4, 6), got {shape!r}.")
    if not all(is_whole(n) and n >= 0 for n in shape):
        raise ValueError(f"{name} must hold whole numbers >= 0, got {tuple(shape)}.")
    return tuple(int(n) for n in shape)


def granularity_args(shape: Any, dim: Any, group_size: Any) -> tuple[int, ...]:
    """The shape, and the kinds of ``dim`` and ``group_size`` (checked even where the
    granularity does not use them: a wrong one is a mistake either way)."""
    if not is_whole(dim):
        raise TypeError(f"dim must be a whole number, got {dim!r}.")
    if group_size is not None and not is_whole(group_size):
        raise TypeError(f"group_size must be a whole number or None, got {group_size!r}.")
    return shape_of(shape)


def whole_number(value: Any, name: str, low: int) -> int:
    """``value`` as an int if it is a whole number ``>= low``, else a ``ValueError``."""
    if not is_whole(value) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}.")
    return int(value)


# -- dtypes and bit widths ---------------------------------------------------------------------


def int_dtype(dtype: Any) -> torch.dtype:
    """Return ``dtype`` if it is one of ``SUPPORTED_DTYPES``, else raise a ``TypeError``."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch dtype such as torch.int8, got {dtype!r}.")
    if dtype.is_floating_point or dtype.is_complex:
        kind = "a complex" if dtype.is_complex else "a floating-point"
        raise TypeError(
            f"dtype {dtype_name(dtype)} is {kind} type, but quantization needs an "
            "integer target dtype: use torch.int8, torch.uint8 or torch.int16."
        )
    if dtype not in SUPPORTED_DTYPES:
        names = ", ".join(f"torch.{dtype_name(d)}" for d in SUPPORTED_DTYPES)
        raise TypeError(f"dtype {dtype_name(dtype)} is not supported here; use one of {names}.")
    return dtype


def bit_width(n_bits: Any, dtype: torch.dtype) -> int | None:
    """``n_bits`` as an int from 2 to the width of ``dtype`` (a checked dtype), or ``None``."""
    if n_bits is None:
        return None
    width = torch.iinfo(dtype).bits
    if not is_whole(n_bits):
        raise TypeError(f"n_bits must be a whole number such as 4, got {n_bits!r}.")
    if not 2 <= n_bits <= width:
        raise ValueError(
            f"n_bits={n_bits} does not fit {dtype_name(dtype)}: choose 2 to {width} bits "
            f"(or n_bits=None for the full {width}-bit range)."
        )
    return int(n_bits)


def dtype_and_bits(dtype: Any, n_bits: Any) -> tuple[torch.dtype, int | None]:
    """The arguments of ``get_q_range``: a supported integer dtype and a bit width that fits."""
    dtype = int_dtype(dtype)
    return dtype, bit_width(n_bits, dtype)


def float_dtype(dtype: Any, what: str = "dtype is the layer's float dtype") -> torch.dtype:
    """A floating-point torch dtype (a layer's or an output's), else a ``TypeError``."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{what} (e.g. torch.float32), got {dtype!r}.")
    return dtype


# -- tensors -----------------------------------------------------------------------------------


def real_tensor(tensor: Any, name: str = "tensor") -> torch.Tensor:
    """Check a tensor of real numbers to be quantized and return it as a float tensor.

    Integer tensors are accepted and converted to float32; float16 and bfloat16 are computed
    in float32 (their own precision would round ``r / s`` before we do). The input itself is
    never modified. Raises ``TypeError`` for non-tensors, complex or bool tensors and
    ``ValueError`` for an empty tensor. Its values are not looked at: ``finite_range`` does
    that on the range, which is measured anyway.
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
    not_meta(tensor, name)
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)
    return tensor.detach()


def not_meta(tensor: torch.Tensor, name: str) -> None:
    """A tensor with values: a ``meta`` tensor (a skeleton's) has a shape but no values."""
    if tensor.is_meta:
        raise ValueError(
            f"{name} is on the meta device: it has a shape but no values, and this needs real "
            "weights. Load them first (load_quantized), or use replace_linear_with_target, "
            "which builds a skeleton without quantizing anything."
        )


def finite_range(r_min: Any, r_max: Any, name: str = "tensor") -> None:
    """Raise a ``ValueError`` if a range (numbers or tensors) holds a NaN or an infinity.

    ``torch.aminmax`` returns NaN when any element is NaN, and +-inf when any element is
    infinite, so checking the extremes checks every element.
    """
    r_min = torch.as_tensor(r_min, dtype=torch.float64)
    r_max = torch.as_tensor(r_max, dtype=torch.float64)
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


def finite_min_max(tensor: torch.Tensor, name: str = "tensor") -> tuple[float, float]:
    """``(tensor.min(), tensor.max())`` of a checked tensor as Python floats, after checking
    that both are finite (one ``aminmax`` pass)."""
    r_min, r_max = (v.item() for v in torch.aminmax(tensor))
    finite_range(r_min, r_max, name)
    return r_min, r_max


def finite_tensor(tensor: Any, name: str = "tensor") -> torch.Tensor:
    """``real_tensor`` whose values are all finite as well."""
    r = real_tensor(tensor, name)
    finite_min_max(r, name)
    return r


def quantized(
    quantized_tensor: Any, name: str = "quantized_tensor", values: bool = True
) -> torch.Tensor:
    """Check that ``quantized_tensor`` is a non-empty integer tensor, with values unless
    ``values=False`` (a forward pass on a meta skeleton only computes shapes)."""
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
    if values:
        not_meta(quantized_tensor, name)
    return quantized_tensor.detach()


def pair(
    tensor: Any, other: Any, names: tuple[str, str] = ("tensor", "dequantized_tensor")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real tensors of one shape, both finite (a tensor and its dequantized version)."""
    r, r2 = real_tensor(tensor, names[0]), real_tensor(other, names[1])
    if r.shape != r2.shape:
        raise ValueError(
            f"{names[0]} has shape {tuple(r.shape)} but {names[1]} has shape "
            f"{tuple(r2.shape)}: compare a tensor with its own dequantized version."
        )
    finite_min_max(r, names[0])
    finite_min_max(r2, names[1])
    return r, r2


# -- scales and zero points --------------------------------------------------------------------


def fits(param: torch.Tensor, shape: torch.Size, name: str) -> None:
    """Raise a ``ValueError`` unless ``param`` broadcasts to ``shape`` without growing it."""
    try:
        ok = torch.broadcast_shapes(param.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
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


def scale(scale: Any, shape: torch.Size, precision: torch.dtype) -> float | torch.Tensor:
    """``scale`` as a Python float, or a tensor in ``precision`` that fits ``shape``.

    A scale must be a positive, finite real number (or a tensor of them), and stay positive
    and finite in ``precision``, the float dtype the arithmetic runs in: 1e-50 is a positive
    float64 but 0 in float32, where ``r / s`` would give NaN.
    """
    if isinstance(scale, torch.Tensor):
        not_meta(scale, "scale")
        if scale.numel() == 0:
            raise ValueError("scale is an empty tensor: pass a number, or one scale per row.")
        if scale.is_complex() or scale.dtype == torch.bool:
            raise TypeError(f"scale must hold real numbers, got a {scale.dtype} tensor.")
        fits(scale, shape, "scale")
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
    return scale.to(precision) if isinstance(scale, torch.Tensor) else scale


def zero_point(
    zero_point: Any, shape: torch.Size, q_min: int | None = None, q_max: int | None = None
) -> int | torch.Tensor:
    """Return ``zero_point`` as a Python int or an int64 tensor that fits ``shape``.

    A zero point is a whole number; when ``q_min`` and ``q_max`` are given it must also lie
    inside ``[q_min, q_max]``: it is the quantized value that stands for the real number 0, so
    it must itself be storable.
    """
    if isinstance(zero_point, torch.Tensor):
        not_meta(zero_point, "zero_point")
        if zero_point.is_complex() or zero_point.dtype == torch.bool or zero_point.numel() == 0:
            raise TypeError(f"zero_point must hold whole numbers, got a {zero_point.dtype} tensor.")
        fits(zero_point, shape, "zero_point")
        if zero_point.is_floating_point():
            if not bool(torch.isfinite(zero_point).all()) or not bool(
                (zero_point == zero_point.round()).all()
            ):
                raise ValueError("every zero point must be a whole number; round it first.")
        if zero_point.is_floating_point() and bool((zero_point.abs() > 2**53).any()):
            raise ValueError("every zero point must be a whole number below 2**53 in size.")
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
        if abs(zero_point) > 2**53:
            raise ValueError(
                f"zero_point {zero_point} is too large: use a whole number below 2**53."
            )
        zero_point = low = high = int(zero_point)
    if q_min is not None and q_max is not None and (low < q_min or high > q_max):
        raise ValueError(
            f"zero point {low if low < q_min else high} is outside the quantized range "
            f"[{q_min}, {q_max}]; it must be a value the quantized tensor can store."
        )
    return zero_point


def quantize_args(tensor: Any, scale_: Any, zero_point_: Any, q_min: int, q_max: int) -> tuple:
    """The arguments of ``linear_q_with_scale_and_zero_point``: a finite real tensor, a scale
    in its precision and a storable zero point, each fitting the tensor."""
    r = finite_tensor(tensor)
    return r, scale(scale_, r.shape, r.dtype), zero_point(zero_point_, r.shape, q_min, q_max)


def dequantize_args(quantized_tensor: Any, scale_: Any, zero_point_: Any) -> tuple:
    """The arguments of ``linear_dequantization``: an integer tensor, a float32 scale and a
    whole zero point, each fitting it."""
    q = quantized(quantized_tensor)
    return q, scale(scale_, q.shape, torch.float32), zero_point(zero_point_, q.shape)


def flag(value: Any, name: str) -> bool:
    """A real ``True`` or ``False``: a string such as ``"no"`` would count as true."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return value


def qparams_args(r_min: Any, r_max: Any, q_min: Any, q_max: Any, symmetric: Any) -> tuple:
    """The arguments of ``qparams_from_range``: finite ranges with ``r_min <= r_max`` (as float64
    tensors), a valid ``q_min < q_max`` and a real flag ``symmetric``."""
    q_min, q_max = q_range(q_min, q_max)
    flag(symmetric, "symmetric")
    for name, value in (("r_min", r_min), ("r_max", r_max)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real | torch.Tensor):
            raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}.")
        if isinstance(value, torch.Tensor):
            if value.is_complex() or value.dtype == torch.bool:
                raise TypeError(f"{name} must hold real numbers, got a {value.dtype} tensor.")
            not_meta(value, name)
    r_min = torch.as_tensor(r_min, dtype=torch.float64)
    r_max = torch.as_tensor(r_max, dtype=torch.float64)
    finite_range(r_min, r_max, "the range")
    ordered_range(r_min, r_max)
    return r_min, r_max, q_min, q_max


def q_range(q_min: Any, q_max: Any) -> tuple[int, int]:
    """``q_min < q_max``, both whole numbers (what ``get_q_range`` returns)."""
    if not (is_whole(q_min) and is_whole(q_max)):
        raise TypeError(f"q_min and q_max must be whole numbers, got {q_min!r} and {q_max!r}.")
    if not q_min < q_max:
        raise ValueError(
            f"q_min must be less than q_max, got {q_min} and {q_max}: get_q_range(dtype, n_bits) "
            "gives a valid pair."
        )
    return int(q_min), int(q_max)


def ordered_range(r_min: torch.Tensor, r_max: torch.Tensor) -> None:
    """Every range has ``r_min <= r_max`` (a reversed range is a swapped argument)."""
    if bool((r_min > r_max).any()):
        raise ValueError(
            "r_min is larger than r_max: pass the smallest value first, "
            "qparams_from_range(r_min, r_max, q_min, q_max)."
        )


#: The floor of the scale: float32's machine epsilon, as in PyTorch's observers.
_SCALE_EPS = torch.finfo(torch.float32).eps


def scale_floor(scale: torch.Tensor) -> None:
    """Warn when a non-zero range is so narrow that the scale floor (``SCALE_EPS``) takes
    over: the grid is then coarser than the range needs, and the error grows as the range
    shrinks (at max|r| = 1e-8 nothing is left). Scale the tensor up by a power of 2 first."""
    floored = (scale > 0) & (scale < _SCALE_EPS)
    if bool(floored.any()):
        warnings.warn(
            f"a range narrower than {_SCALE_EPS:.3g} per level (max|r| below about 1.5e-5 at 8 "
            "bits) gets the smallest scale, SCALE_EPS, so fewer levels are used and the error "
            "grows: multiply the tensor by a power of 2 (e.g. 2**20) before quantizing, and "
            "divide the result after.",
            UserWarning,
            stacklevel=3,
        )


def computed_scale(scale: torch.Tensor) -> None:
    """A scale computed from a range is finite, unless ``r_max - r_min`` overflowed."""
    if bool(torch.isinf(scale).any()):  # r_max - r_min overflowed (beyond +-8.9e307)
        raise ValueError("the range is too wide: r_max - r_min overflows; rescale the tensor.")


# -- blocks ------------------------------------------------------------------------------------


def block_size(shape: Sequence[int], block_size: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(shape, block_size)`` as tuples of ints, ``block_size`` one entry per dimension, each
    from 1 to its dimension's size and dividing it. A 0-dim tensor takes ``()`` (or ``(1,)``)."""
    if isinstance(block_size, str) or not isinstance(block_size, Sequence | torch.Size):
        raise TypeError(
            f"block_size must be a tuple with one whole number per dimension, such as (1, 64), "
            f"got {block_size!r}: granularity_block_size builds one."
        )
    shape, block_size = shape_of(shape), tuple(block_size)
    if not shape:
        if block_size not in ((), (1,)):
            raise ValueError(f"a 0-dim tensor takes block_size (), got {block_size}.")
        return (), ()
    if len(block_size) != len(shape):
        raise ValueError(
            f"block_size {block_size} needs one entry per dimension of the tensor's shape "
            f"{shape}: use granularity_block_size to build one."
        )
    for dim, (n, b) in enumerate(zip(shape, block_size, strict=True)):
        if not is_whole(b) or not 1 <= b <= max(n, 1):
            raise ValueError(f"block_size[{dim}] = {b!r} must be a whole number from 1 to {n}.")
        if n % b:
            raise ValueError(
                f"block_size[{dim}] = {b} does not divide the size {n} of dimension {dim}: "
                f"choose a block (group) size that divides {n}."
            )
    return shape, tuple(int(b) for b in block_size)


def channel_dim(dim: Any, shape: tuple[int, ...]) -> int:
    """``dim`` as an index from 0 to ``len(shape) - 1`` (negative dims count from the end)."""
    if not is_whole(dim):
        raise TypeError(f"dim must be a whole number, got {dim!r}.")
    if not -len(shape) <= dim < len(shape) or not shape:
        raise ValueError(
            f"dim={dim} is out of range for a tensor with {len(shape)} dimensions: "
            f"choose {-len(shape)} to {len(shape) - 1}."
        )
    return int(dim) % len(shape)


def group_size(group_size: Any, shape: tuple[int, ...]) -> int:
    """``group_size`` as an int that divides the last dimension of ``shape``."""
    if not is_whole(group_size):
        raise TypeError(f"group_size must be a whole number, got {group_size!r}.")
    if not shape:
        raise ValueError("a 0-dim tensor has no last dimension to split into groups.")
    if not 1 <= group_size <= shape[-1] or shape[-1] % group_size:
        raise ValueError(
            f"group_size={group_size} does not divide the last dimension ({shape[-1]}) of "
            f"shape {shape}: choose a divisor of {shape[-1]}."
        )
    return int(group_size)


def unknown_granularity(granularity: Any) -> ValueError:
    """The error for a granularity that is none of the three names."""
    return ValueError(
        f"unknown granularity {granularity!r}: use 'per_tensor', 'per_channel' or 'per_group'."
    )


def block_param(
    param: Any,
    param_shape: tuple[int, ...],
    n_blocks: tuple[int, ...],
    name: str,
    returned_by: str = "choose_qparams_affine",
) -> torch.Tensor:
    """A number, or a tensor with one value per block (shape ``n_blocks``), in ``param_shape``.

    A number or a 1-element tensor is one value shared by every block."""
    if not isinstance(param, torch.Tensor):
        if isinstance(param, bool) or not isinstance(param, numbers.Real):
            raise TypeError(f"{name} must be a number or a tensor, got {type(param).__name__}.")
        if not math.isfinite(param):
            raise ValueError(f"{name} must be a finite number, got {param}.")
        return torch.tensor(param, dtype=torch.float64).reshape((1,) * len(param_shape))
    not_meta(param, name)
    if param.is_complex() or param.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got a {param.dtype} tensor.")
    if param.numel() == 1:
        return param.detach().reshape((1,) * len(param_shape))
    if param.numel() != math.prod(n_blocks) or tuple(param.shape) != n_blocks:
        raise ValueError(
            f"{name} has shape {tuple(param.shape)}, but this block size needs one value per "
            f"block, shape {n_blocks}: pass what {returned_by} returned."
        )
    return param.detach().reshape(param_shape)


def r_range(r_range: Any, blocks: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A given range per block: a pair ``(r_min, r_max)``, or a tensor ``absmax`` meaning
    ``[-absmax, absmax]``; returned as two float64 tensors of shape ``blocks.n_blocks``."""
    n_blocks = blocks.n_blocks
    if isinstance(r_range, torch.Tensor):
        bad = (
            "NaN"
            if bool(torch.isnan(r_range).any())
            else "inf"
            if bool(torch.isinf(r_range).any())
            else "a negative value"
            if bool((r_range < 0).any())
            else None
        )
        if bad is not None:
            raise ValueError(
                f"an absmax r_range must hold finite numbers >= 0 (one per block), got {bad}: "
                "pass the magnitudes, e.g. r_range=t.abs().amax(), or a pair (r_min, r_max)."
            )
        r_min, r_max = -r_range, r_range
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
    return r_min, r_max


def block_params(
    scale_: Any,
    zero_point_: Any,
    blocks: Any,
    precision: torch.dtype,
    q_min: int | None = None,
    q_max: int | None = None,
) -> tuple[float | torch.Tensor, int | torch.Tensor]:
    """A scale and zero point per block (shape ``n_blocks``, or one number each), checked and
    shaped to broadcast against the blocked view: the scale in ``precision``, the zero point
    within ``[q_min, q_max]`` when those are given."""
    view_shape = torch.Size(blocks.view_shape)
    checked_scale = block_param(scale_, blocks.param_shape, blocks.n_blocks, "scale")
    checked_zero = block_param(zero_point_, blocks.param_shape, blocks.n_blocks, "zero_point")
    return (
        scale(checked_scale, view_shape, precision),
        zero_point(checked_zero, view_shape, q_min, q_max),
    )


def float32_scale(
    scale: torch.Tensor, hint: str = "quantize_blockwise returns float64 scales."
) -> torch.Tensor:
    """A scale as float32, the course's dtype for returned scales; a ``ValueError`` if it does
    not fit (values above about 4e40 need a float64 scale: use ``quantize_blockwise``), with
    ``hint`` saying what to do instead."""
    converted = scale.to(torch.float32)
    if not bool(torch.isfinite(converted).all()):
        raise ValueError(
            "the scale does not fit in float32 (the values reach beyond 3.4e38 times the "
            f"largest level): {hint}"
        )
    return converted


def per_group_scale(scale: Any, n_groups: int, group_size: int) -> torch.Tensor:
    """A per-group scale: a tensor with one value per group (``(n_groups, 1)`` as returned)."""
    if not isinstance(scale, torch.Tensor) or scale.numel() != n_groups:
        got = tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__
        raise ValueError(
            f"scale must hold one value per group, shape ({n_groups}, 1) for "
            f"group_size={group_size}, got {got}."
        )
    return scale


def bits_per_weight_args(n_bits: Any, scale_bits: Any, zero_point_bits: Any, shape: Any) -> tuple:
    """The arguments of ``bits_per_weight``: three whole numbers and a non-empty shape."""
    for name, value, low in (
        ("n_bits", n_bits, 1),
        ("scale_bits", scale_bits, 0),
        ("zero_point_bits", zero_point_bits, 0),
    ):
        whole_number(value, name, low)
    shape_ = shape_of(shape)
    if not shape_ or 0 in shape_:
        raise ValueError(f"shape {shape_} has no elements to count the cost of.")
    return shape_


# The checks this module offers (``from support.checks import *`` in the package).
__all__ = [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
