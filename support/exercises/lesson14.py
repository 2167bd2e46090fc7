"""Lesson 14, number formats as grids: ``check_decode_e4m3fn``.

The learner writes ``my_decode_e4m3fn(byte)``: the value of one float8 e4m3fn code (an int
0..255) from its bit fields, a sign bit, 4 exponent bits ``e`` and 3 mantissa bits ``m``, with
the bias 7::

    normal     (e > 0):   (-1)**sign * 2**(e - 7) * (1 + m / 8)
    subnormal  (e == 0):  (-1)**sign * 2**(1 - 7) * (m / 8)        (no implicit 1)
    NaN:                  S.1111.111 (0x7F and 0xFF) only; e4m3fn has no infinities

The reference is ``helper.float8_from_bits``, which lesson 14 and
tests/test_lesson_14_facts.py check against PyTorch's own float8 values for all 256 codes.
Every wrong function below differs from the right decoder in one place.

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from helper import float8_from_bits
from support.exercises.core import CheckCase, CheckReport, mistakes_from_rows, run_checks

__all__ = [
    "DECODE_E4M3FN_MISTAKES",
    "DECODE_E4M3FN_RECIPE",
    "check_decode_e4m3fn",
]


def _decode_variant(
    byte: int,
    *,
    bias: int = 7,
    subnormal: str = "right",
    nan: str = "right",
    signed: bool = True,
) -> float:
    """The right decoder, or one classic mistake, depending on the keywords.

    ``subnormal``: ``"right"``, ``"implicit one"`` (the normal formula also at e == 0, so 0x00
    is not even 0), ``"implicit one, zero apart"`` (the same, but 0x00 and 0x80 give 0),
    ``"flushed"`` (every subnormal is 0) or ``"exponent -bias"`` (2**-bias instead of
    2**(1 - bias)). ``nan``: ``"right"``, ``"none"`` (0x7F is a number, 480), ``"ieee"`` (as
    IEEE 754: exponent 1111 is infinity if m == 0, else NaN) or ``"all"`` (every code with
    exponent 1111 is NaN)."""
    sign = -1.0 if (byte >> 7) and signed else 1.0
    e, m = (byte >> 3) & 0b1111, byte & 0b111
    if e == 0b1111 and nan == "ieee":
        return sign * math.inf if m == 0 else math.nan
    if e == 0b1111 and (nan == "all" or (nan == "right" and m == 0b111)):
        return math.nan
    if e == 0:
        if subnormal == "flushed" or (subnormal == "implicit one, zero apart" and m == 0):
            return sign * 0.0
        if subnormal in ("implicit one", "implicit one, zero apart"):
            return sign * 2.0 ** (0 - bias) * (1 + m / 8)
        low = -bias if subnormal == "exponent -bias" else 1 - bias
        return sign * 2.0**low * (m / 8)
    return sign * 2.0 ** (e - bias) * (1 + m / 8)


_BIAS_HINT = (
    "e4m3fn's bias is 7 = 2 ** (4 - 1) - 1, IEEE's rule 2 ** (E - 1) - 1 for E = 4 exponent "
    "bits: the exponent field 7 (0b0111) stands for 2 ** 0, so 0x38 = 0 0111 000 is 1.0."
)

# One row per classic mistake: (description, what differs from the right decoder, hint).
_DECODE_ROWS = (
    (
        "uses the bias 8 (2 ** (E - 1)) instead of 7, so every value is half what it should be",
        dict(bias=8),
        _BIAS_HINT + " With 8, 0x38 decodes to 0.5 and the largest value to 224.",
    ),
    (
        "uses e5m2's bias 15 instead of e4m3fn's 7",
        dict(bias=15),
        _BIAS_HINT + " 15 is the bias of e5m2, whose exponent field has 5 bits.",
    ),
    (
        "keeps the implicit leading 1 when the exponent field is 0, so 0x00 is not even zero",
        dict(subnormal="implicit one"),
        "an exponent field of 0 marks a subnormal: no implicit 1, and the exponent is "
        "1 - bias = -6 (as for e = 1): value = 2 ** -6 * (m / 8). That is how 0x00 is 0 and "
        "the 7 subnormals fill the gap below 2 ** -6 in even steps of 2 ** -9.",
    ),
    (
        "keeps the implicit leading 1 for the subnormals (exponent field 0) and makes only "
        "0x00 and 0x80 zero",
        dict(subnormal="implicit one, zero apart"),
        "a code with exponent field 0 has no implicit 1 at all: value = 2 ** -6 * (m / 8), so "
        "0x01 is 2 ** -9 = 0.001953125, not 2 ** -7 * 1.125. Zero is just the subnormal m = 0.",
    ),
    (
        "flushes the subnormals to 0 (exponent field 0 gives 0 whatever the mantissa)",
        dict(subnormal="flushed"),
        "e4m3fn has 7 subnormals on each side of 0: with exponent field 0 the value is "
        "2 ** -6 * (m / 8), from 2 ** -9 (0x01) to 7 * 2 ** -9 (0x07). PyTorch's float8 keeps "
        "them.",
    ),
    (
        "gives the subnormals the exponent -bias = -7 instead of 1 - bias = -6, half their value",
        dict(subnormal="exponent -bias"),
        "a subnormal shares the exponent of the smallest normal binade, 1 - bias = -6: value = "
        "2 ** -6 * (m / 8). With 2 ** -7 the subnormals stop at 7 * 2 ** -10, leaving a gap "
        "below 2 ** -6.",
    ),
    (
        "decodes 0x7F and 0xFF as numbers (480 and -480): e4m3fn keeps S.1111.111 for NaN",
        dict(nan="none"),
        "in e4m3fn the codes 0x7F and 0xFF (exponent 1111 and mantissa 111) are NaN; every "
        "other code is a number, so the largest value is 0x7E = 1.75 * 2 ** 8 = 448.",
    ),
    (
        "follows IEEE 754's rule for an exponent field of all ones (infinity if the mantissa is "
        "0, else NaN); e4m3fn has no infinities",
        dict(nan="ieee"),
        "e4m3fn ('fn': finite) has no infinities: with exponent 1111 the codes are numbers "
        "(0x78 = 256 ... 0x7E = 448), and only mantissa 111 (0x7F, 0xFF) is NaN. IEEE's rule is "
        "e5m2's.",
    ),
    (
        "makes every code with exponent field 1111 NaN; e4m3fn keeps only S.1111.111 for NaN",
        dict(nan="all"),
        "e4m3fn reclaims the exponent 1111 for numbers: 0x78 = 256, 0x79 = 288, ..., "
        "0x7E = 448; only 0x7F and 0xFF (mantissa 111) are NaN.",
    ),
    (
        "ignores the sign bit (bit 7), so negative codes decode to positive values",
        dict(signed=False),
        "the highest bit is the sign: (byte >> 7) is 1 for 0x80..0xFF, and the value is "
        "negated (0xB8 is -1.0).",
    ),
)
DECODE_E4M3FN_MISTAKES = mistakes_from_rows(_DECODE_ROWS, _decode_variant)

#: The lesson's method, shown when a wrong answer matches none of the mistakes above.
DECODE_E4M3FN_RECIPE = (
    "sign = byte >> 7; e = (byte >> 3) & 0b1111; m = byte & 0b111; if e == 15 and m == 7: "
    "NaN; if e == 0: value = 2 ** (1 - 7) * (m / 8) (subnormal, no implicit 1); else value = "
    "2 ** (e - 7) * (1 + m / 8); return -value if sign else value."
)

#: (code, what the case shows), in the order the report lists them.
_CASES = (
    (0x38, "0x38 = 0 0111 000: the exponent field equals the bias"),
    (0x4B, "0x4B = 0 1001 011: a normal number"),
    (0xC4, "0xC4 = 1 1000 100: a negative normal number"),
    (0x7E, "0x7E = 0 1111 110: the largest value"),
    (0x78, "0x78 = 0 1111 000: exponent field all ones, mantissa 0"),
    (0xF9, "0xF9 = 1 1111 001: exponent field all ones, negative"),
    (0x08, "0x08 = 0 0001 000: the smallest normal number"),
    (0x07, "0x07 = 0 0000 111: the largest subnormal"),
    (0x01, "0x01 = 0 0000 001: the smallest subnormal"),
    (0x85, "0x85 = 1 0000 101: a negative subnormal"),
    (0x00, "0x00 = 0 0000 000: zero"),
    (0x80, "0x80 = 1 0000 000: negative zero (0.0 or -0.0 both pass)"),
    (0x7F, "0x7F = 0 1111 111: S.1111.111"),
    (0xFF, "0xFF = 1 1111 111: S.1111.111, negative"),
)

_CASE_HINT = (
    "split the byte into sign (bit 7), exponent field e (bits 6-3) and mantissa m (bits 2-0); "
    "normal: 2 ** (e - 7) * (1 + m / 8); e == 0: 2 ** -6 * (m / 8); 0x7F and 0xFF: NaN."
)


def _shown_value(value: float) -> str:
    """A value as the report shows it: 'nan', 'inf' or up to 9 significant digits."""
    return "nan" if math.isnan(value) else f"{value:.9g}"


def _expect_value(byte: int) -> Callable[[Any], str | None]:
    """A check that the result is the number ``float8_from_bits(byte)`` (NaN for NaN)."""
    expected = float8_from_bits(byte, "e4m3fn")

    def check(result: Any) -> str | None:
        if isinstance(result, torch.Tensor):
            if result.numel() != 1:
                return f"expected one number, got a tensor of shape {tuple(result.shape)}"
            result = result.item()
        if isinstance(result, bool) or not isinstance(result, numbers.Real):
            return f"expected a number, got {type(result).__name__}"
        got = float(result)
        if math.isnan(expected):
            return None if math.isnan(got) else f"got {_shown_value(got)}, expected nan"
        if math.isnan(got) or got != expected:
            return f"got {_shown_value(got)}, expected {_shown_value(expected)}"
        return None

    check.expected = expected
    return check


def check_decode_e4m3fn(function: Callable) -> CheckReport:
    """Exercise of lesson 14: ``my_decode_e4m3fn(byte)`` returning the value of the float8
    e4m3fn code ``byte`` (an int 0..255) as a number, from its sign, exponent and mantissa
    fields (bias 7; subnormals without the implicit 1; only 0x7F and 0xFF are NaN).

    The 14 codes tell the classic mistakes apart: 1.0 and other normal numbers of both signs,
    the largest value, the exponent field 1111 (numbers in e4m3fn), the smallest normal
    number, three subnormals, both zeros and both NaN codes.
    """
    cases = [CheckCase(text, (byte,), _expect_value(byte), _CASE_HINT) for byte, text in _CASES]
    return run_checks(
        "Decoding float8 e4m3fn",
        function,
        cases,
        DECODE_E4M3FN_MISTAKES,
        recipe=DECODE_E4M3FN_RECIPE,
    )
