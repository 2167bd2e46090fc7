"""Checks of number formats and of quantization-aware training (helper.py, sections 14 and 15).

Import direction: imports torch, ``support.constants`` and ``support.checks.values``; never
``helper``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from support.checks.values import is_whole, not_meta, real_tensor
from support.constants import FLOAT8_FORMATS, GRID_NAMES, Float8Format, dtype_name

# -- float8 and grids (section 14) -------------------------------------------------------------


def float8_format(fmt: Any) -> Float8Format:
    """The bit fields of ``fmt``, one of ``FLOAT8_FORMATS`` (``"e4m3fn"``, ``"e5m2"``)."""
    if isinstance(fmt, torch.dtype):
        for f in FLOAT8_FORMATS.values():
            if f.dtype == fmt:
                return f
    if not isinstance(fmt, str) or fmt not in FLOAT8_FORMATS:
        raise ValueError(
            f"fmt must be one of {', '.join(map(repr, FLOAT8_FORMATS))} (PyTorch's "
            f"float8_e4m3fn and float8_e5m2), got {fmt!r}."
        )
    return FLOAT8_FORMATS[fmt]


def float8_code(byte: Any, fmt: Any) -> tuple[int, Float8Format]:
    """One float8 code, a whole number 0..255 (or a 1-element integer tensor), and its format."""
    f = float8_format(fmt)
    if isinstance(byte, torch.Tensor) and byte.numel() == 1 and not byte.is_floating_point():
        byte = byte.item()
    if not is_whole(byte):
        raise TypeError(f"byte must be a whole number from 0 to 255 (one code), got {byte!r}.")
    if not 0 <= byte <= 255:
        raise ValueError(
            f"byte must be from 0 to 255 (8 bits), got {byte}; a negative value is a sign bit "
            f"set: pass byte & 0xFF ({int(byte) & 0xFF})."
        )
    return int(byte), f


def grid_name(grid: str) -> str:
    """A grid's name, one of ``GRID_NAMES``."""
    if grid not in GRID_NAMES:
        raise ValueError(
            f"grid must be one of {', '.join(map(repr, GRID_NAMES))} or a tensor of values, "
            f"got {grid!r}."
        )
    return grid


def grid_tensor(grid: Any) -> torch.Tensor:
    """A grid given as values: a 1-D float tensor, 2 to 256 finite values in increasing order
    (a code is one byte, and two different values are not both 0); returned as float32."""
    if not isinstance(grid, torch.Tensor):
        raise TypeError(
            f"grid must be a name ({', '.join(map(repr, GRID_NAMES))}) or a 1-D tensor of "
            f"values, got {type(grid).__name__}."
        )
    not_meta(grid, "grid")
    if not grid.is_floating_point() or grid.dim() != 1 or not 2 <= grid.numel() <= 256:
        raise ValueError(
            f"grid must be a 1-D float tensor of 2 to 256 values, got {dtype_name(grid.dtype)} "
            f"of shape {tuple(grid.shape)}."
        )
    values = grid.detach().to(torch.float32)
    if not bool(torch.isfinite(values).all()) or not bool((values.diff() > 0).all()):
        raise ValueError(
            "grid must hold finite values in increasing order, each once: sort it with "
            "torch.unique(grid) (float8_grid does this for you)."
        )
    return values


def grid_codes(codes: Any, n_values: int) -> torch.Tensor:
    """Codes into a grid of ``n_values`` values: an integer tensor with values in
    ``0..n_values - 1``; returned as int64."""
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"codes must be a tensor (what quantize_to_grid returned), got {codes!r}.")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(
            f"codes has dtype {dtype_name(codes.dtype)}: pass the uint8 indices that "
            "quantize_to_grid returned, not the values."
        )
    if codes.numel() == 0:
        raise ValueError("codes is empty: there is nothing to dequantize.")
    not_meta(codes, "codes")
    codes = codes.to(torch.int64)
    if int(codes.min()) < 0 or int(codes.max()) >= n_values:
        raise ValueError(
            f"codes must be indices into the grid, 0 to {n_values - 1}, got values from "
            f"{int(codes.min())} to {int(codes.max())}: was it quantized onto another grid?"
        )
    return codes


def _level(value: Any, name: str) -> int:
    if not is_whole(value):
        raise TypeError(
            f"{name} must be a whole number (a level of the integer grid), got {value!r}."
        )
    return int(value)


def trainable_tensor(tensor: Any, name: str = "tensor") -> torch.Tensor:
    """``real_tensor``'s checks, plus finite values, but the tensor keeps its autograd graph
    (float16 and bfloat16 are computed in float32 through a differentiable ``.float()``)."""
    checked = real_tensor(tensor, name)
    if not bool(torch.isfinite(checked).all()):
        raise ValueError(f"{name} holds a NaN or an infinity: it has no place on the grid.")
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def _broadcasting(value: Any, name: str, r: torch.Tensor) -> torch.Tensor:
    """A number, or a real tensor that broadcasts against ``r``: its finite values, float64."""
    if isinstance(value, torch.Tensor):
        not_meta(value, name)
        if value.is_complex() or value.dtype == torch.bool or value.numel() == 0:
            raise TypeError(f"{name} must be a real number or a non-empty real tensor.")
        try:
            fits = torch.broadcast_shapes(value.shape, r.shape) == r.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"{name} of shape {tuple(value.shape)} does not broadcast against the tensor's "
                f"shape {tuple(r.shape)}: give one value, or one per channel shaped to "
                "broadcast (e.g. (rows, 1) for one per row)."
            )
        values = value.detach().double()
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}.")
    else:
        values = torch.tensor(float(value), dtype=torch.float64)
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return values


def ste_args(tensor: Any, scale: Any, zero_point: Any, q_min: Any, q_max: Any):
    """``fake_quantize_ste``'s arguments: a float tensor (its graph kept, so gradients flow),
    a positive finite scale and a whole zero point in ``[q_min, q_max]`` (numbers or tensors
    that broadcast against it) and ``q_min < q_max``; returned as ``(r, scale, zero_point,
    q_min, q_max)``, a tensor scale in the tensor's dtype (a learned one keeps its graph)."""
    r = trainable_tensor(tensor)
    q_min, q_max = _level(q_min, "q_min"), _level(q_max, "q_max")
    if q_min >= q_max:
        raise ValueError(f"q_min must be below q_max, got q_min={q_min}, q_max={q_max}.")
    s = _broadcasting(scale, "scale", r)
    if not bool((s > 0).all()) or not bool((s.to(r.dtype) > 0).all()):
        raise ValueError(f"scale must be positive (and not 0 in {dtype_name(r.dtype)}).")
    z = _broadcasting(zero_point, "zero_point", r)
    if not bool((z == z.round()).all()) or not bool(((z >= q_min) & (z <= q_max)).all()):
        raise ValueError(
            f"zero_point must be a whole number from q_min={q_min} to q_max={q_max}, got "
            f"{zero_point!r}."
        )
    if isinstance(scale, torch.Tensor):
        scale = scale.to(r.dtype)
    return r, scale, zero_point, q_min, q_max


def qat_bits(n_bits: Any) -> int:
    """A fake quantizer's bit width: a whole number from 2 to 8 (signed levels besides 0)."""
    if not is_whole(n_bits) or not 2 <= n_bits <= 8:
        raise ValueError(
            f"n_bits must be a whole number from 2 to 8 (2 bits: levels -2..1), got {n_bits!r}."
        )
    return int(n_bits)


def qat_scale(scale: Any, n_blocks: tuple[int, ...], param_shape: tuple[int, ...]) -> torch.Tensor:
    """A given scale per block for QAT: a float tensor of shape ``n_blocks`` (or that shape
    without its 1s, e.g. ``(out,)`` for one scale per row) with positive
    finite values, reshaped to ``param_shape`` with its graph kept (a learned scale gets its
    gradient)."""
    if not isinstance(scale, torch.Tensor) or not scale.is_floating_point():
        raise TypeError(
            f"scale must be a float tensor with one scale per block, shape {tuple(n_blocks)}, or "
            f"None (computed from the weights), got {type(scale).__name__}."
        )
    not_meta(scale, "scale")
    squeezed = tuple(n for n in n_blocks if n != 1)  # (out,) for one scale per row
    if tuple(scale.shape) not in (tuple(n_blocks), squeezed) and scale.numel() != 1:
        raise ValueError(
            f"scale has shape {tuple(scale.shape)}, but this block size needs one per block, "
            f"shape {tuple(n_blocks)} (or {squeezed})."
        )
    values = scale.detach()
    if not bool(torch.isfinite(values).all()) or not bool((values > 0).all()):
        smallest = float(values.min()) if values.numel() else math.nan
        raise ValueError(
            f"every scale must be positive and finite, got a smallest value of {smallest}: "
            "a learned scale that reached 0 needs a smaller learning rate."
        )
    return scale.reshape(param_shape if scale.numel() != 1 else (1,) * len(param_shape))


def qat_target(target_class: Any, n_bits: int, path: str) -> type:
    """A layer class whose levels hold ``n_bits``-bit values (its ``n_bits``, 8 if none)."""
    if not isinstance(target_class, type) or not hasattr(target_class, "quantize"):
        raise TypeError(
            "target_class must be a layer class with a quantize method, such as "
            f"W8A16LinearLayer or W4A16LinearLayer, got {target_class!r}."
        )
    bits = getattr(target_class, "n_bits", 8)
    if bits < n_bits:
        raise ValueError(
            f"layer {path!r} trained at {n_bits} bits does not fit {target_class.__name__}'s "
            f"{bits}-bit levels: pass target_class=None (the layer that fits) or a wider one."
        )
    return target_class


# The checks this module offers (``from support.checks import *`` in the package).
__all__ = [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
