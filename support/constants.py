"""Constants that ``helper.py`` and the modules beside it both need.

Import direction: this module imports only torch. ``helper``, ``support.checks``,
``support.plots`` and ``support.fast`` import it; ``helper`` re-exports the names learners use
(``SUPPORTED_DTYPES``, ``SCALE_EPS``, ``dtype_name``, ``PACK_BITS``, ``RANGE_METHODS``,
``CLIPPING_GRIDS``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "SUPPORTED_DTYPES",
    "SCALE_EPS",
    "dtype_name",
    "PACK_BITS",
    "RANGE_METHODS",
    "CLIPPING_GRIDS",
    "FLOAT8_FORMATS",
    "GRID_NAMES",
]

#: The integer dtypes a tensor can be quantized to in these lessons.
SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.int8, torch.uint8, torch.int16)

#: The smallest scale we allow. PyTorch's observers use the same floor (float32's machine
#: epsilon), so an all-zero tensor gets a tiny positive scale instead of a division by zero.
SCALE_EPS: float = torch.finfo(torch.float32).eps

#: The bit widths that fill a byte exactly: each divides 8 (8 itself packs one value per byte).
PACK_BITS: tuple[int, ...] = (1, 2, 4, 8)

#: The ways of choosing a clipping range that ``helper.clipping_absmax`` knows.
RANGE_METHODS: tuple[str, ...] = ("min-max", "percentile", "mse")

#: The grids the clipping functions can round to. ``"course"``: the symmetric integer grid
#: -q_max..q_max of every lesson, ``alpha = q_max * s`` is its end level and 0 is a level.
#: ``"midrise"``: ``2**n_bits`` levels at the centres of ``2**n_bits`` equal bins over
#: ``[-alpha, alpha]``, with no level at 0, the grid that analytic clipping formulas such as
#: ACIQ assume. Only ``"course"`` is a quantizer of this collection; ``"midrise"`` is here to
#: compare with those formulas.
CLIPPING_GRIDS: tuple[str, ...] = ("course", "midrise")


class Float8Format(NamedTuple):
    """The bit fields of a float8 format (helper.py, section 14)."""

    exponent_bits: int
    mantissa_bits: int
    bias: int
    has_inf: bool  # IEEE 754's rule: an all-ones exponent is infinity (mantissa 0) or NaN
    dtype: torch.dtype  # PyTorch's dtype of the same format, to check against


#: The float8 formats of section 14: sign, exponent and mantissa bits and the exponent bias.
#: e4m3fn ("finite"): no infinities, only S.1111.111 (0x7F, 0xFF) is NaN, largest value 448.
#: e5m2: IEEE 754's rules on 8 bits, largest finite value 57344.
FLOAT8_FORMATS: dict[str, Float8Format] = {
    "e4m3fn": Float8Format(4, 3, 7, False, torch.float8_e4m3fn),
    "e5m2": Float8Format(5, 2, 15, True, torch.float8_e5m2),
}

#: The grids that ``helper.quantize_to_grid`` knows by name (a tensor of values works too).
GRID_NAMES: tuple[str, ...] = ("e4m3fn", "e5m2", "nf4")


def dtype_name(dtype: torch.dtype) -> str:
    """The short name of a dtype: ``torch.int8`` -> ``"int8"``."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch dtype such as torch.int8, got {dtype!r}.")
    return str(dtype).removeprefix("torch.")
