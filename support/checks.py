"""The argument checks of ``helper.py``, with messages that say what was wrong and what to pass.

Every public function of helper checks its arguments once, at the door, with one of these, and
then works with the checked values: a tensor is checked once, not again at every level below.
Each check returns the value in the form helper computes with (a float tensor, a Python int,
a tuple of ints) or raises a ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) that names the argument.

Import direction: this module imports torch and ``support.constants``; ``helper`` imports it,
and it never imports ``helper``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from support.constants import CLIPPING_GRIDS, PACK_BITS, SUPPORTED_DTYPES, dtype_name

# -- numbers -----------------------------------------------------------------------------------


def is_whole(value: Any) -> bool:
    """True for a whole number (Python or numpy int, not ``bool``)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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
        raise TypeError(
            f"dtype {dtype_name(dtype)} is a floating-point type, but quantization needs an "
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
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)
    return tensor.detach()


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


def quantized(quantized_tensor: Any, name: str = "quantized_tensor") -> torch.Tensor:
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
        if scale.is_complex() or scale.dtype == torch.bool or scale.numel() == 0:
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
        if zero_point.is_complex() or zero_point.dtype == torch.bool or zero_point.numel() == 0:
            raise TypeError(f"zero_point must hold whole numbers, got a {zero_point.dtype} tensor.")
        fits(zero_point, shape, "zero_point")
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


def computed_scale(scale: torch.Tensor) -> None:
    """A scale computed from a range is finite, unless ``r_max - r_min`` overflowed."""
    if bool(torch.isinf(scale).any()):  # r_max - r_min overflowed (beyond +-8.9e307)
        raise ValueError("the range is too wide: r_max - r_min overflows; rescale the tensor.")


# -- blocks ------------------------------------------------------------------------------------


def block_size(shape: Sequence[int], block_size: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(shape, block_size)`` as tuples of ints, ``block_size`` one entry per dimension, each
    from 1 to its dimension's size and dividing it. A 0-dim tensor takes ``()`` (or ``(1,)``)."""
    shape, block_size = tuple(int(n) for n in shape), tuple(block_size)
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
    param: Any, param_shape: tuple[int, ...], n_blocks: tuple[int, ...], name: str
) -> torch.Tensor:
    """A number, or a tensor with one value per block (shape ``n_blocks``), in ``param_shape``.

    A number or a 1-element tensor is one value shared by every block."""
    if not isinstance(param, torch.Tensor):
        if isinstance(param, bool) or not isinstance(param, numbers.Real):
            raise TypeError(f"{name} must be a number or a tensor, got {type(param).__name__}.")
        return torch.tensor(param, dtype=torch.float64).reshape((1,) * len(param_shape))
    if param.numel() == 1:
        return param.detach().reshape((1,) * len(param_shape))
    if param.numel() != math.prod(n_blocks) or tuple(param.shape) != n_blocks:
        raise ValueError(
            f"{name} has shape {tuple(param.shape)}, but this block size needs one value per "
            f"block, shape {n_blocks}: pass what choose_qparams_affine returned."
        )
    return param.detach().reshape(param_shape)


def r_range(r_range: Any, n_blocks: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A given range per block: a pair ``(r_min, r_max)``, or a tensor ``absmax`` meaning
    ``[-absmax, absmax]``; returned as two float64 tensors of shape ``n_blocks``."""
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
    return r_min, r_max


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
    shape = tuple(int(n) for n in shape)
    if not shape or 0 in shape:
        raise ValueError(f"shape {shape} has no elements to count the cost of.")
    return shape


# -- layers ------------------------------------------------------------------------------------


def linear_input(input: Any, in_features: int) -> torch.Tensor:
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


def weight_2d(q: torch.Tensor, name: str = "q_w") -> torch.Tensor:
    """A checked integer weight of shape (out_features, in_features)."""
    if q.dim() != 2:
        raise ValueError(
            f"{name} must be a 2-D (out_features, in_features) weight, got shape {tuple(q.shape)}."
        )
    return q


def linear_pair(qx: torch.Tensor, qw: torch.Tensor) -> None:
    """``q_x`` (batch, in_features) and ``q_w`` (out_features, in_features) fit each other."""
    if qx.dim() != 2 or qw.dim() != 2 or qx.shape[1] != qw.shape[1]:
        raise ValueError(
            f"q_x (batch, in_features) and q_w (out_features, in_features) must share "
            f"in_features; got shapes {tuple(qx.shape)} and {tuple(qw.shape)}."
        )


def int8_weight(weight: Any) -> torch.Tensor:
    """An int8 (out_features, in_features) weight."""
    q = quantized(weight, "weight")
    if q.dtype != torch.int8 or q.dim() != 2:
        raise TypeError(
            f"weight must be an int8 (out_features, in_features) tensor, got "
            f"{dtype_name(q.dtype)} of shape {tuple(q.shape)}."
        )
    return q


def row_scales(scales: Any, out_features: int) -> torch.Tensor:
    """A float tensor of shape ``(out_features,)``: one scale per output row."""
    if not isinstance(scales, torch.Tensor) or not scales.is_floating_point():
        raise TypeError("scales must be a float tensor with one scale per output row.")
    if tuple(scales.shape) != (out_features,):
        raise ValueError(
            f"scales must have shape ({out_features},), one per output row, got "
            f"{tuple(scales.shape)}; an (out, 1) scale would broadcast the output to the wrong "
            "shape: use scales.reshape(-1)."
        )
    return scales


def bias(bias: Any, out_features: int) -> torch.Tensor | None:
    """``None``, or a float tensor of shape ``(out,)`` or ``(1, out)``."""
    if bias is None:
        return None
    if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
        raise TypeError("bias must be a float tensor of shape (out,) or (1, out), or None.")
    if tuple(bias.shape) not in ((out_features,), (1, out_features)):
        raise ValueError(
            f"bias must have shape ({out_features},) or (1, {out_features}), got "
            f"{tuple(bias.shape)}."
        )
    return bias


def layer_weights(weights: Any, out_features: int, in_features: int) -> torch.Tensor:
    """Float weights of shape (out_features, in_features) for a layer's ``quantize``."""
    w = real_tensor(weights, "weights")
    if tuple(w.shape) != (out_features, in_features):
        raise ValueError(
            f"weights of shape {tuple(w.shape)} do not fit this layer: expected "
            f"({out_features}, {in_features}) = (out_features, in_features)."
        )
    return w


def packed_layer_bits(n_bits: Any) -> int:
    """A packed layer's bit width: 2, 4 or 8."""
    if isinstance(n_bits, bool) or n_bits not in (2, 4, 8):
        raise ValueError(
            f"n_bits must be 2, 4 or 8 (a width that fills a byte and has signed levels "
            f"besides 0), got {n_bits!r}."
        )
    return int(n_bits)


def module(module: Any, name: str = "module") -> nn.Module:
    """An ``nn.Module``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}.")
    return module


def names(names: Any, name: str = "module_name_to_exclude") -> tuple[str, ...]:
    """A list of names (never a single string, whose letters would be taken as names)."""
    if isinstance(names, str):
        raise TypeError(f"{name} must be a list of names, e.g. [{names!r}].")
    return tuple(names)


def replace_args(module_: Any, target_class: Any, names_: Any) -> tuple[str, ...]:
    """The arguments of the replace functions, with messages that say what to pass."""
    module(module_)
    if not (isinstance(target_class, type) and issubclass(target_class, nn.Module)):
        raise TypeError(
            "target_class must be an nn.Module class such as W8A16LinearLayer, got "
            f"{target_class!r}."
        )
    return names(names_)


def layer_classes(layer_class: Any) -> tuple[type, ...]:
    """A class or a tuple of classes, as a tuple."""
    classes = layer_class if isinstance(layer_class, tuple) else (layer_class,)
    if not classes or not all(isinstance(c, type) for c in classes):
        raise TypeError(
            f"layer_class must be a class such as nn.Linear (or a tuple of classes), got "
            f"{layer_class!r}."
        )
    return classes


def chosen_layers(layers: Any, linears: list[str]) -> list[str]:
    """``layers`` (``None``: all of ``linears``) as a list of names that are all linear layers."""
    if layers is None:
        return linears
    chosen = list(names(layers, "layers"))
    unknown = [name for name in chosen if name not in linears]
    if unknown:
        raise ValueError(
            f"no nn.Linear named {', '.join(map(repr, unknown))} in this model; its linear "
            f"layers are {', '.join(map(repr, linears))}."
        )
    return chosen


# -- packing -----------------------------------------------------------------------------------


def pack_bits(bits: Any) -> int:
    """``bits`` as an int if it is one of ``PACK_BITS``, else a ``TypeError`` or ``ValueError``."""
    if not is_whole(bits):
        raise TypeError(f"bits must be a whole number, 1, 2, 4 or 8; got {bits!r}.")
    if int(bits) not in PACK_BITS:
        raise ValueError(
            f"bits={bits} is not a width that divides 8, so some values would straddle two "
            "bytes: use 1, 2, 4 or 8 (a 3-bit value can be stored in 4 bits)."
        )
    return int(bits)


def uint8(tensor: Any, name: str, packing: bool) -> torch.Tensor:
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


def values_fit(values: torch.Tensor, bits: int) -> None:
    """Every uint8 value fits in ``bits`` bits."""
    if bits < 8 and values.numel() and int(values.amax()) >= 2**bits:
        raise ValueError(
            f"uint8tensor holds {int(values.amax())}, which does not fit in {bits} bits (0 to "
            f"{2**bits - 1}): quantize with n_bits={bits}, or pack with more bits."
        )


def unpacked_shape(shape: Any, packed_shape: torch.Size, bits: int) -> tuple[int, ...]:
    """``shape`` as a tuple if a tensor of that shape packs into ``packed_shape``."""
    if isinstance(shape, torch.Size | tuple | list) and all(is_whole(n) for n in shape):
        shape = tuple(int(n) for n in shape)
    else:
        raise TypeError(f"shape must be a tuple of whole numbers such as (4, 6), got {shape!r}.")
    per_byte = 8 // bits
    ok = (
        len(shape) == len(packed_shape)
        and shape[:-1] == tuple(packed_shape[:-1])
        and shape[-1] >= 0
        and -(-shape[-1] // per_byte) == packed_shape[-1]
    )
    if not ok:
        raise ValueError(
            f"shape {shape} does not fit the packed tensor of shape {tuple(packed_shape)}: "
            "pass the shape of the tensor before packing (the same leading dimensions, and a "
            f"last dimension that {bits}-bit values fill into {packed_shape[-1]} bytes)."
        )
    return shape


def offset_bits(bits: Any) -> int:
    """A bit width from 1 to 8 for offset binary."""
    if not is_whole(bits):
        raise TypeError(f"bits must be a whole number from 1 to 8, got {bits!r}.")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits={bits} is not a width from 1 to 8.")
    return int(bits)


def signed_levels(q: torch.Tensor, bits: int) -> None:
    """Every level of ``q`` lies in the signed ``bits``-bit range."""
    q_min, q_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    low, high = (int(v) for v in torch.aminmax(q.to(torch.int64)))
    if low < q_min or high > q_max:
        raise ValueError(
            f"quantized_tensor holds {low if low < q_min else high}, outside the signed "
            f"{bits}-bit range [{q_min}, {q_max}]: quantize with n_bits={bits} first."
        )


def offset_binary(uint8tensor: Any, bits: int) -> torch.Tensor:
    """A uint8 tensor of ``bits``-bit offset-binary values."""
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
    return uint8tensor.detach()


def weight_shape(shape: Any) -> tuple[int, int]:
    """An ``(out_features, in_features)`` shape of positive sizes."""
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (out_features, in_features), got {shape}.")
    return shape


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
    ratios = torch.as_tensor(ratios, dtype=torch.float64).flatten()
    if ratios.numel() == 0 or not bool(((ratios > 0) & torch.isfinite(ratios)).all()):
        raise ValueError("ratios must be a non-empty sequence of positive, finite numbers.")
    return ratios


def range_method(method: Any, methods: tuple[str, ...]) -> ValueError:
    """The error for a method that is not one of ``methods``."""
    return ValueError(f"unknown method {method!r}: use one of {', '.join(map(repr, methods))}.")


# -- plots -------------------------------------------------------------------------------------


def bins(bins: Any) -> int:
    """A number of histogram bins, a whole number >= 1."""
    return whole_number(bins, "bins", 1)


def error_max(error_max: Any) -> float | None:
    """``None`` or a positive, finite number."""
    if error_max is not None and not (math.isfinite(error_max) and error_max > 0):
        raise ValueError(f"error_max must be a positive number, got {error_max!r}.")
    return error_max


def same_shapes(*tensors: torch.Tensor) -> None:
    """The tensors of ``plot_quantization_errors`` share one shape."""
    if len({tuple(t.shape) for t in tensors}) != 1:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors[:-1])
        raise ValueError(
            f"the three tensors must have one shape, got {shapes} and {tuple(tensors[-1].shape)}."
        )


def tradeoff_points(points: Sequence) -> None:
    """At least one point, each with a positive, finite MSE (a log axis)."""
    if not points:
        raise ValueError("points is empty: pass at least one TradeoffPoint to plot.")
    for point in points:
        if not (math.isfinite(point.mse) and point.mse > 0):
            raise ValueError(
                f"the MSE of {point.label!r} is {point.mse!r}: a log axis needs a positive, "
                "finite error."
            )


def output_sqnr_args(y: torch.Tensor, outputs: Any) -> None:
    """A 2-D reference and a non-empty dict of outputs."""
    if y.dim() != 2:
        raise ValueError(f"reference must be 2-D (tokens, out_features), got {tuple(y.shape)}.")
    if not isinstance(outputs, dict) or not outputs:
        raise TypeError("outputs must be a non-empty dict {label: output tensor}.")


def accuracy_counts(correct: Any, n_test: Any) -> None:
    """``{label: {n_bits: count}}`` with every count in ``0..n_test``."""
    if not isinstance(correct, dict) or not correct:
        raise TypeError("correct must be a non-empty dict {label: {n_bits: correct count}}.")
    if not is_whole(n_test) or n_test < 1:
        raise ValueError(f"n_test must be a whole number >= 1, got {n_test!r}.")
    for label, counts in correct.items():
        for b, count in counts.items():
            if not 0 <= count <= n_test:
                raise ValueError(f"{label!r} at {b} bits: {count} is not in 0..{n_test}.")


def ranges_dict(ranges: Any) -> None:
    """A non-empty dict ``{label: alpha}``."""
    if not isinstance(ranges, dict) or not ranges:
        raise TypeError("ranges must be a non-empty dict {label: alpha}.")
