"""Lesson 12, weight packing: ``check_unpack_2bit``.

The learner writes ``my_unpack_2bit(packed)``: a 1-D uint8 tensor of bytes, each holding four
2-bit values with the first value in the lowest bits (the course's order), back to a 1-D uint8
tensor four times as long. The reference is ``helper.unpack_weights(packed, 2)``.

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from helper import unpack_weights
from support.exercises.core import (
    CheckCase,
    CheckReport,
    expect_integers,
    loops_over_elements,
    mistakes_from_rows,
    run_checks,
)

__all__ = [
    "UNPACK2_MISTAKES",
    "check_unpack_2bit",
]


def _unpack2_variant(
    packed: torch.Tensor,
    *,
    shifts: tuple[int, ...] = (0, 2, 4, 6),
    mask: int | None = 3,
    left: bool = False,
    mask_first: bool = False,
    layout: str = "interleave",
    dtype: torch.dtype = torch.uint8,
) -> torch.Tensor:
    """The right answer, or one classic mistake, depending on the keywords. ``layout`` is
    ``"interleave"`` (right), ``"concatenate"`` (all first values, then all second values...)
    or ``"columns"`` (shape (n, 4))."""
    columns = []
    for shift in shifts:
        if mask_first:
            column = (packed & mask) >> shift
        elif left:
            column = (packed << shift) & mask
        else:
            column = packed >> shift
            if mask is not None:
                column = column & mask
        columns.append(column)
    if layout == "concatenate":
        result = torch.cat(columns)
    elif layout == "columns":
        result = torch.stack(columns, dim=-1)
    else:
        result = torch.stack(columns, dim=-1).reshape(-1)
    return result.to(dtype)


_UNPACK2_RECIPE = (
    "value i of a byte is (byte >> 2 * i) & 3 for i = 0, 1, 2, 3: shift it down to the lowest "
    "two bits, then keep only those."
)

# One row per classic mistake: (description, what differs from the right answer, hint).
_UNPACK2_ROWS = (
    (
        "takes the values from the highest bits first",
        dict(shifts=(6, 4, 2, 0)),
        "packing puts the *first* value in the lowest bits (bits 0 and 1), so it needs no shift "
        "at all; the last one sits in bits 6 and 7. 177 = 0b10_11_00_01 unpacks to [1, 0, 3, "
        "2], read from the right. " + _UNPACK2_RECIPE,
    ),
    (
        "masks with 2, the number of bits, instead of 0b11 = 3",
        dict(mask=2),
        "the mask must have a 1 in each bit to keep: two bits means 0b11 = 2**2 - 1 = 3. "
        "2 = 0b10 keeps only the higher of the two bits.",
    ),
    (
        "masks with 2**bits = 4 instead of 2**bits - 1 = 3",
        dict(mask=4),
        "4 = 0b100 keeps one bit just *above* the value. The mask for two bits is "
        "0b11 = 2**2 - 1 = 3.",
    ),
    (
        "masks with 15 (0b1111, four bits): the next value's bits come along",
        dict(mask=15),
        "a 2-bit value needs a 2-bit mask, 0b11 = 3; 0b1111 is the mask for 4-bit values.",
    ),
    (
        "forgets the mask: each value keeps the bits of the values above it",
        dict(mask=None),
        "after the shift, the values that were above it are still there: 177 >> 2 is "
        "0b101100 = 44, not 0. Finish with & 3 (0b11) to keep only the lowest two bits. "
        "Only the last value, shifted by 6, needs no mask.",
    ),
    (
        "masks with 7 (0b111), one bit too many: the next value's lowest bit comes along",
        dict(mask=7),
        "a mask for two bits has exactly two 1s, 0b11 = 2**2 - 1 = 3. 0b111 also keeps bit 2, "
        "which belongs to the next value.",
    ),
    (
        "masks with 1 (0b1), one bit too few: each value loses its higher bit",
        dict(mask=1),
        "a mask for two bits has two 1s, 0b11 = 2**2 - 1 = 3; 0b1 keeps only the lowest bit, "
        "so 2 and 3 come out as 0 and 1.",
    ),
    (
        "shifts one bit too far, by 2 * i + 1",
        dict(shifts=(1, 3, 5, 7)),
        "value i starts at bit 2 * i: value 0 at bit 0 (no shift), value 1 at bit 2, value 2 "
        "at bit 4, value 3 at bit 6. An extra bit drops the value's own lowest bit and "
        "brings in the next value's.",
    ),
    (
        "shifts by 2 * (i + 1), counting the positions from 1: every value comes out one "
        "place early and the last is always 0",
        dict(shifts=(2, 4, 6, 8)),
        "count the positions from 0: the first value needs no shift at all, so the shifts "
        "are 0, 2, 4 and 6 (2 * i for i in range(4)).",
    ),
    (
        "shifts by the position (0, 1, 2, 3) instead of the position times 2 bits",
        dict(shifts=(0, 1, 2, 3)),
        "value i starts at bit 2 * i, because each value before it takes two bits: shift by "
        "0, 2, 4 and 6.",
    ),
    (
        "gets only the first value of each byte right, the others come out 0: it shifts "
        "left, or masks before it shifts",
        dict(mask_first=True),
        "move the value down to the lowest two bits *first*, with a right shift, byte >> 2 * i, "
        "and mask *after*: (byte & 3) >> 2 * i and (byte << 2 * i) & 3 are 0 for every i > 0.",
    ),
    (
        "puts all first values first, then all second values, and so on (torch.cat) instead "
        "of keeping each byte's four values together",
        dict(layout="concatenate"),
        "the four values of byte 0 come first, then the four of byte 1: put the four columns "
        "side by side with torch.stack(columns, dim=-1), which gives shape (n, 4), then "
        ".reshape(-1).",
    ),
    (
        "returns one row of four values per byte, shape (n, 4), instead of one flat tensor",
        dict(layout="columns"),
        "finish with .reshape(-1) (or .flatten()): the result is a 1-D tensor with four values "
        "per byte, byte 0's first.",
    ),
    (
        "returns int64 values instead of uint8",
        dict(dtype=torch.int64),
        "keep every operand uint8: shifts written as torch.tensor([0, 2, 4, 6]) are int64 and "
        "turn the result into int64 (8 bytes per value, the opposite of packing). Make them "
        "with dtype=torch.uint8, or finish with .to(torch.uint8).",
    ),
)
UNPACK2_MISTAKES = mistakes_from_rows(_UNPACK2_ROWS, _unpack2_variant)


def _unpack2_cases() -> list[CheckCase]:
    """The cases of ``check_unpack_2bit``: inputs that tell the classic mistakes apart."""

    general = (
        _UNPACK2_RECIPE + " Put the four results side by side, torch.stack([...], dim=-1), "
        "and flatten: .reshape(-1); the result is uint8."
    )
    specs = [
        ("the course's byte [177] = 0b10_11_00_01", [177]),
        ("one byte holding 0, 1, 2, 3: [228] = 0b11_10_01_00", [228]),
        ("five bytes [0, 255, 27, 177, 78]", [0, 255, 27, 177, 78]),
        ("all 256 possible bytes, torch.arange(256)", list(range(256))),
    ]
    cases = []
    for text, values in specs:
        packed = torch.tensor(values, dtype=torch.uint8)
        expected = unpack_weights(packed, 2)
        cases.append(CheckCase(text, (packed,), expect_integers(expected), general))
    return cases


def check_unpack_2bit(function: Callable) -> CheckReport:
    """Exercise of lesson 12: ``my_unpack_2bit(packed)``, a 1-D uint8 tensor of bytes back to
    its 2-bit values, a 1-D uint8 tensor four times as long, lowest bits first.

    The reference is ``helper.unpack_weights(packed, 2)``. The cases: the course's byte 177, a
    byte holding 0, 1, 2 and 3 (every mask and shift mistake changes it), five bytes (values
    concatenated instead of interleaved fail) and all 256 bytes. A function that loops in
    Python over the elements (``core.loops_over_elements``) gets a note, not a failure: the
    lesson asks for no such loop, but its result is right.
    """
    report = run_checks(
        "Unpack 2-bit values",
        function,
        _unpack2_cases(),
        UNPACK2_MISTAKES,
        recipe=_UNPACK2_RECIPE
        + " Put the four results side by side (torch.stack(..., dim=-1)), then flatten; "
        "keep uint8.",
    )
    if report.status in ("passed", "failed"):
        lines = loops_over_elements(function)
        if lines:
            where = ", ".join(str(line) for line in lines)
            report.notes.append(
                f"your function loops in Python over the elements (line {where}). It gives "
                "the same bytes, but each step is a separate PyTorch call costing "
                "microseconds, a million times over for a real weight (section 6). Loop "
                "over the 4 positions in a byte instead, or shift once with a tensor of "
                "shifts."
            )
    return report
