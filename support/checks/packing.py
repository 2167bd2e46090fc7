"""Checks of packing: bit widths, uint8 values, offset binary (helper.py, section 12).

Import direction: imports torch, ``support.constants`` and ``support.checks.values``; never
``helper``.
"""

from __future__ import annotations

from typing import Any

import torch

from support.checks.values import flag, is_whole, not_meta, quantized, shape_of
from support.constants import PACK_BITS, dtype_name

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
    not_meta(values, "uint8tensor")
    if bits < 8 and values.numel() and int(values.amax()) >= 2**bits:
        raise ValueError(
            f"uint8tensor holds {int(values.amax())}, which does not fit in {bits} bits (0 to "
            f"{2**bits - 1}): quantize with n_bits={bits}, or pack with more bits."
        )


def padding_allowed(pad: Any, n: int, per_byte: int, bits: int) -> None:
    """A last dimension that is not a multiple of ``per_byte`` needs ``pad=True``."""
    if not pad:
        raise ValueError(
            f"the last dimension has {n} values, not a multiple of {per_byte} (the "
            f"{bits}-bit values in one byte). Pass pad=True to fill it up with zeros, and "
            "unpack_weights(packed, bits, shape=original_shape) to remove them again."
        )


def drawable_values(values: torch.Tensor, bits: int, max_bytes: int) -> torch.Tensor:
    """A 1-D uint8 tensor that packs into at most ``max_bytes`` bytes (for a picture)."""
    if values.dim() != 1:
        raise ValueError(f"plot_packed_bits draws a 1-D tensor, got shape {tuple(values.shape)}.")
    n_bytes = -(-values.shape[0] // (8 // bits))
    if n_bytes > max_bytes:
        raise ValueError(
            f"{n_bytes} bytes are too many to draw: pass at most "
            f"{max_bytes * 8 // bits} values of {bits} bits."
        )
    return values


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
    not_meta(uint8tensor, "uint8tensor")
    if uint8tensor.numel() and int(uint8tensor.amax()) >= 2**bits:
        raise ValueError(
            f"uint8tensor holds {int(uint8tensor.amax())}, which is not a {bits}-bit offset-"
            f"binary value (0 to {2**bits - 1})."
        )
    return uint8tensor.detach()


def weight_shape(shape: Any, scale_bytes: Any = 4) -> tuple[int, int]:
    """An ``(out_features, in_features)`` shape of positive sizes (and a whole number of bytes
    per scale, >= 0)."""
    if not is_whole(scale_bytes) or scale_bytes < 0:
        raise ValueError(f"scale_bytes must be a whole number >= 0, got {scale_bytes!r}.")
    shape = shape_of(shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (out_features, in_features), got {shape}.")
    return shape


def pack_args(uint8tensor: Any, bits: Any, pad: Any = False) -> tuple[torch.Tensor, int]:
    """The arguments of ``pack_weights``: uint8 values that fit in ``bits``, one of PACK_BITS,
    and a real flag ``pad``."""
    flag(pad, "pad")
    bits = pack_bits(bits)
    values = uint8(uint8tensor, "uint8tensor", packing=True)
    values_fit(values, bits)
    return values, bits


def unpack_args(uint8tensor: Any, bits: Any, shape: Any) -> tuple:
    """The arguments of ``unpack_weights``: packed uint8 bytes, a bit width and an optional
    shape that packs into them."""
    bits = pack_bits(bits)
    packed = uint8(uint8tensor, "uint8tensor", packing=False)
    return packed, bits, None if shape is None else unpacked_shape(shape, packed.shape, bits)


def to_offset_args(quantized_tensor: Any, bits: Any) -> tuple[torch.Tensor, int]:
    """The arguments of ``to_offset_binary``: signed levels that fit in ``bits``."""
    bits = offset_bits(bits)
    q = quantized(quantized_tensor)
    signed_levels(q, bits)
    return q, bits


def from_offset_args(uint8tensor: Any, bits: Any) -> tuple[torch.Tensor, int]:
    """The arguments of ``from_offset_binary``: offset-binary values that fit in ``bits``."""
    bits = offset_bits(bits)
    return offset_binary(uint8tensor, bits), bits


# The checks this module offers (``from support.checks import *`` in the package).
__all__ = [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
