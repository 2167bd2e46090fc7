"""Lesson 01, quantize and dequantize: ``check_quantize`` and ``check_dequantization``.

The learner writes ``my_quantize(tensor, scale, zero_point, dtype=torch.int8)``, checked
against ``helper.linear_q_with_scale_and_zero_point``, and ``my_dequantize(quantized_tensor,
scale, zero_point)``, checked against ``helper.linear_dequantization``.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from helper import linear_dequantization, linear_q_with_scale_and_zero_point
from support.examples import TEST_TENSOR_VALUES as _TEST_TENSOR
from support.exercises.core import (
    CheckCase,
    CheckReport,
    _range_of,
    expect_close,
    expect_integers,
    mistakes_from_rows,
    run_checks,
)

__all__ = [
    "QUANTIZE_MISTAKES",
    "QUANTIZE_RECIPE",
    "check_quantize",
    "DEQUANTIZE_MISTAKES",
    "DEQUANTIZE_RECIPE",
    "check_dequantization",
]


def _quantize_variant(
    r,
    s,
    z,
    dtype=torch.int8,
    *,
    rounding=torch.round,
    multiply=False,
    zero_point=1,
    clamp="dtype",
    cast="dtype",
):
    """The right quantizer, clamp(round(r / s) + z).to(dtype), or one classic mistake.

    ``rounding`` turns r / s into whole steps (``multiply``: r * s instead); ``zero_point`` is
    1 to add z, -1 to subtract it, 0 to leave it out; ``clamp`` is ``"dtype"`` (its range),
    ``"int8"`` ([-128, 127]) or ``None``; ``cast`` is ``"dtype"``, another dtype or ``None``.
    """
    q = rounding(r * s if multiply else r / s)
    if zero_point:
        q = q + zero_point * z
    if clamp:
        q = q.clamp(*(_range_of(dtype) if clamp == "dtype" else (-128, 127)))
    if cast:
        q = q.to(dtype if cast == "dtype" else cast)
    return q


_CAST_TO_DTYPE = (
    "finish with .to(dtype), the dtype your function was given: int8 for the lesson, uint8 in "
    "the checker's last case. .int() and .long() store 4 or 8 bytes per value."
)
_NO_CLAMP = (
    "clamp to [q_min, q_max] *before* .to(dtype): a value such as 138.0 has no int8 value, and "
    "the cast turns it into something else (on most PCs the wrapped-around -118). A clamp after "
    "the cast is too late: the value has already wrapped."
)
_USE_DTYPE = (
    "use the dtype argument everywhere: q_min, q_max = torch.iinfo(dtype).min, "
    "torch.iinfo(dtype).max, and .to(dtype) at the end. uint8 runs from 0 to 255."
)
_ROUND = (
    "use torch.round(r / s): it goes to the nearest whole step (3.9 -> 4, -3.9 -> -4) and "
    "sends an exact half to the even neighbour (2.5 -> 2, 3.5 -> 4)."
)

# One row per classic mistake: (description, what differs from the right quantizer, hint).
# Casting a value outside the dtype's range (what the no-clamp mistakes do) has no defined
# result, but it is the same on one machine, which is all the diagnosis needs.
_QUANTIZE_ROWS = (
    ("returns floats: it never casts to an integer dtype", dict(cast=None), _CAST_TO_DTYPE),
    ("casts with .int() (int32) instead of .to(dtype)", dict(cast=torch.int32), _CAST_TO_DTYPE),
    ("casts with .long() (int64) instead of .to(dtype)", dict(cast=torch.int64), _CAST_TO_DTYPE),
    ("casts without clamping first", dict(clamp=None), _NO_CLAMP),
    ("clamps to the int8 range [-128, 127] whatever the dtype", dict(clamp="int8"), _USE_DTYPE),
    (
        "clamps to [-128, 127] and casts to int8 whatever the dtype",
        dict(clamp="int8", cast=torch.int8),
        _USE_DTYPE,
    ),
    ("casts to int8 whatever the dtype", dict(cast=torch.int8), _USE_DTYPE),
    (
        "rounds halves up (floor(x + 0.5))",
        dict(rounding=lambda x: torch.floor(x + 0.5)),
        "use torch.round: it sends an exact half to the even neighbour (0.5 -> 0, 1.5 -> 2, "
        "2.5 -> 2), as PyTorch's quantizers do; floor(x + 0.5) always rounds halves up, which "
        "pushes values upwards on average.",
    ),
    (
        "cuts off the fraction (.int(), .to() or torch.trunc before adding z) instead of rounding",
        dict(rounding=torch.trunc),
        _ROUND + " Casting to an integer type, or torch.trunc, drops the fraction (3.9 -> 3).",
    ),
    (
        "rounds down (torch.floor) instead of to the nearest step",
        dict(rounding=torch.floor),
        _ROUND + " torch.floor always goes down (3.9 -> 3, -0.1 -> -1).",
    ),
    (
        "multiplies by the scale",
        dict(multiply=True),
        "divide by the scale, r / s: the scale is the size of one step in real units, so r / s "
        "counts steps. Multiplying is the dequantize direction.",
    ),
    (
        "leaves out the zero point",
        dict(zero_point=0),
        "add the zero point after rounding, round(r / s) + z: it is the integer that stands for "
        "the real number 0.",
    ),
    (
        "subtracts the zero point",
        dict(zero_point=-1),
        "quantize adds z (q = round(r / s) + z); dequantize subtracts it (r = s * (q - z)).",
    ),
)
QUANTIZE_MISTAKES = mistakes_from_rows(_QUANTIZE_ROWS, _quantize_variant)

#: The lesson's method, shown when a wrong answer matches none of the mistakes above.
QUANTIZE_RECIPE = (
    "q_min, q_max = torch.iinfo(dtype).min, torch.iinfo(dtype).max; q = torch.round(tensor / "
    "scale) + zero_point, clamped to [q_min, q_max], and only then cast with .to(dtype)."
)


def check_quantize(function: Callable) -> CheckReport:
    """Exercise of lesson 01: ``my_quantize(tensor, scale, zero_point, dtype=torch.int8)``.

    The reference is ``linear_q_with_scale_and_zero_point``. The cases: the lesson's test
    tensor (728.6 saturates), values beyond both ends of the grid, exact ties and uint8
    (saturating at 0 and 255). The zero points are even, so rounding ``r / s`` before adding
    ``z`` (the lessons) and rounding ``r / s + z`` (the course) both pass: they differ only on a
    tie with an odd zero point.
    """
    test = torch.tensor(_TEST_TENSOR)
    ends = torch.tensor([-1000.0, -203.0, -0.5, 689.5, 1000.0])
    ties = torch.tensor([1.0, 3.0, 5.0, -1.0, -5.0, 7.0])  # 0.5, 1.5, 2.5, ... steps of 2.0
    unsigned = torch.tensor([-100.0, -64.0, 0.0, 10.2, 63.5, 100.0])
    general = "q = clamp(round(r / s) + z, q_min, q_max), then .to(dtype)."
    specs = [
        ("the lesson's test tensor, scale 3.5, zero point -70, int8", test, 3.5, -70, torch.int8),
        (
            "values beyond both ends of the grid (they must saturate at -128 and 127)",
            ends,
            3.5,
            -70,
            torch.int8,
        ),
        (
            "exact ties: values 0.5, 1.5, 2.5, ... steps from 0 (scale 2.0, zero point 10)",
            ties,
            2.0,
            10,
            torch.int8,
        ),
        (
            "uint8, scale 0.5, zero point 128 (saturates at 0 and 255)",
            unsigned,
            0.5,
            128,
            torch.uint8,
        ),
    ]
    cases = [
        CheckCase(
            text,
            (tensor, scale, zero_point, dtype),
            expect_integers(
                linear_q_with_scale_and_zero_point(tensor, scale, zero_point, dtype=dtype)
            ),
            general,
        )
        for text, tensor, scale, zero_point, dtype in specs
    ]
    return run_checks("Quantize", function, cases, QUANTIZE_MISTAKES, recipe=QUANTIZE_RECIPE)


# One row per classic mistake: (description, the wrong dequantizer, hint).
_DEQUANTIZE_ROWS = (
    (
        "subtracts the zero point in the integer dtype",
        lambda q, s, z: s * (q - z),
        "convert to float first, quantized_tensor.float() - zero_point: int8 (and uint8) "
        "arithmetic wraps around silently (127 - (-70) = 197 is stored as -59).",
    ),
    (
        "multiplies before subtracting (s * q - z)",
        lambda q, s, z: s * q.float() - z,
        "the scale multiplies the difference: s * (q - z), with parentheses. Without them "
        "Python computes (s * q) - z.",
    ),
    (
        "divides by the scale",
        lambda q, s, z: (q.float() - z) / s,
        "multiply by the scale: one step of q is worth s in real units. Dividing by s is the "
        "quantize direction.",
    ),
    (
        "adds the zero point",
        lambda q, s, z: s * (q.float() + z),
        "subtract the zero point: q = z must come back as exactly 0.",
    ),
    (
        "forgets the scale",
        lambda q, s, z: q.float() - z,
        "multiply (q - z) by the scale to get back to real units.",
    ),
    (
        "forgets the zero point",
        lambda q, s, z: s * q.float(),
        "subtract the zero point before scaling: r = s * (q - z).",
    ),
)
DEQUANTIZE_MISTAKES = mistakes_from_rows(_DEQUANTIZE_ROWS)

#: The lesson's method, shown when a wrong answer matches none of the mistakes above.
DEQUANTIZE_RECIPE = (
    "r = scale * (quantized_tensor.float() - zero_point): convert to float first, then "
    "subtract the zero point, then multiply by the scale."
)


def check_dequantization(function: Callable) -> CheckReport:
    """Exercise of lesson 01: ``my_dequantize(quantized_tensor, scale, zero_point)``.

    The reference is ``linear_dequantization``. The cases include int8 values near both ends
    of the range with a negative and a positive zero point, where subtracting the zero point
    in int8 wraps around at the top or at the bottom, and uint8 values.
    """
    test_q = torch.tensor([[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]], dtype=torch.int8)
    top_q = torch.tensor([127, -128, 100, -70], dtype=torch.int8)
    bottom_q = torch.tensor([-128, -100, 33, 127], dtype=torch.int8)
    uint8_q = torch.tensor([0, 255, 128, 3], dtype=torch.uint8)
    general = "r = scale * (q - zero_point), computed in float: q.float() first."
    specs = [
        ("the lesson's quantized test tensor, scale 3.5, zero point -70", test_q, 3.5, -70),
        ("int8 values near the top of the range, zero point -70", top_q, 3.5, -70),
        ("int8 values near the bottom of the range, zero point +33", bottom_q, 0.0131, 33),
        ("uint8 values, scale 0.5, zero point 128", uint8_q, 0.5, 128),
    ]
    cases = [
        CheckCase(
            text,
            (q, scale, zero_point),
            expect_close(linear_dequantization(q, scale, zero_point)),
            general,
        )
        for text, q, scale, zero_point in specs
    ]
    return run_checks(
        "Dequantization", function, cases, DEQUANTIZE_MISTAKES, recipe=DEQUANTIZE_RECIPE
    )
