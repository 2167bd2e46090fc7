"""Lesson 02, scale and zero point: ``check_scale_and_zero_point``.

The learner writes ``get_scale_and_zero_point(tensor, dtype)``, checked against
``helper.get_q_scale_and_zero_point``. Most classic mistakes are ``_scale_and_zero_point`` with
one step left out or done another way.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from helper import get_q_range, get_q_scale_and_zero_point
from support.examples import TEST_TENSOR_VALUES as _TEST_TENSOR
from support.exercises.core import CheckCase, CheckReport, mistakes_from_rows, run_checks, shown

__all__ = [
    "SCALE_AND_ZERO_POINT_MISTAKES",
    "SCALE_AND_ZERO_POINT_RECIPE",
    "check_scale_and_zero_point",
]


def _expect_scale_and_zero_point(tensor: torch.Tensor, dtype: torch.dtype):
    """A check that a ``(scale, zero_point)`` result maps ``tensor`` like ``helper`` does."""
    q_min, q_max = get_q_range(dtype)
    expected_scale, expected_zero_point = get_q_scale_and_zero_point(tensor, dtype)
    all_zero = not bool(tensor.any())

    def check(result: Any) -> str | None:
        if not isinstance(result, tuple | list) or len(result) != 2:
            return f"expected a pair (scale, zero_point), got {shown(result)}"
        scale, zero_point = (v.item() if isinstance(v, torch.Tensor) else v for v in result)
        if not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            return f"the scale must be a positive, finite number, got {shown(scale)}"
        if not isinstance(zero_point, numbers.Real) or not math.isfinite(zero_point):
            return f"the zero point must be a whole number, got {shown(zero_point)}"
        if zero_point != round(zero_point):
            return f"the zero point must be a whole number, got {shown(zero_point)}"
        if not q_min <= zero_point <= q_max:
            return f"zero point {zero_point} is outside [{q_min}, {q_max}]"
        if all_zero:  # any positive scale works; 0 must map to a storable zero point
            return None
        if not math.isclose(scale, expected_scale, rel_tol=1e-6):
            return f"scale {shown(scale)}, expected {expected_scale!r}"
        if zero_point != expected_zero_point:
            return f"zero point {shown(zero_point)}, expected {expected_zero_point}"
        return None

    check.expected = (expected_scale, expected_zero_point)
    return check


def _scale_and_zero_point(
    tensor,
    dtype=torch.int8,
    *,
    include_min=True,
    include_max=True,
    steps=None,
    floor_scale=True,
    int8_range=False,
    clip_zero_point=False,
    zero_point_of=lambda q_min, r_min, scale: q_min - round(r_min / scale),
):
    """The right answer (all keywords at their defaults), or a classic mistake: the keywords
    leave out a step or change one. Python floats throughout, as a learner would write it."""
    info = torch.iinfo(torch.int8 if int8_range else dtype)
    r_min, r_max = tensor.min().item(), tensor.max().item()
    if include_min:
        r_min = min(r_min, 0.0)
    if include_max:
        r_max = max(r_max, 0.0)
    scale = (r_max - r_min) / (steps or (info.max - info.min))
    if floor_scale:
        scale = max(scale, torch.finfo(torch.float32).eps)
    zero_point = zero_point_of(info.min, r_min, scale)
    if clip_zero_point:
        zero_point = min(max(zero_point, info.min), info.max)
    return scale, zero_point


def _swapped(tensor, dtype=torch.int8):
    scale, zero_point = _scale_and_zero_point(tensor, dtype)
    return zero_point, scale


_INCLUDE_ZERO = (
    "extend the range to include 0 first: r_min = min(r_min, 0), r_max = max(r_max, 0). Then 0 "
    "is always on the grid and the zero point always fits in [q_min, q_max]; without it a "
    "one-signed tensor gets a zero point outside the range (and clipping it moves the grid)."
)
_ROUND_ZERO_POINT = (
    "round the zero point to the nearest whole number with round(). int() and math.floor() "
    "(or //) drop the fraction, and depending on where you apply them (to r_min / scale or to "
    "the whole zero point) the grid moves down or up by up to one step."
)
_ROUNDS_UP = (
    "rounds the zero point up (q_min - math.floor(r_min / scale), q_min - r_min // scale, or "
    "math.ceil) instead of to the nearest whole number"
)
_FLOOR_SCALE = (
    "keep the scale at least a tiny floor, scale = max(scale, torch.finfo(torch.float32).eps): "
    "an all-zero tensor has an empty range, scale 0, and the zero point divides by it."
)

# One row per classic mistake: (description, what differs from the right answer, hint).
_SCALE_AND_ZERO_POINT_ROWS = (
    (
        "is the course's original code: no 0 in the range, the zero point clipped, and no "
        "floor under the scale",
        dict(include_min=False, include_max=False, floor_scale=False, clip_zero_point=True),
        _INCLUDE_ZERO + " And " + _FLOOR_SCALE,
    ),
    (
        "does not extend the range to include 0, and has no floor under the scale",
        dict(include_min=False, include_max=False, floor_scale=False),
        _INCLUDE_ZERO + " And " + _FLOOR_SCALE,
    ),
    (
        "does not extend the range to include 0",
        dict(include_min=False, include_max=False),
        _INCLUDE_ZERO,
    ),
    (
        "does not extend the range to include 0 (it clips the zero point instead)",
        dict(include_min=False, include_max=False, clip_zero_point=True),
        _INCLUDE_ZERO,
    ),
    (
        "extends r_min to 0 but not r_max",
        dict(include_max=False),
        "an all-negative tensor needs r_max = max(r_max, 0) too, or 0 falls off the grid and "
        "the zero point leaves [q_min, q_max].",
    ),
    (
        "extends r_min to 0 but not r_max (and clips the zero point)",
        dict(include_max=False, clip_zero_point=True),
        "an all-negative tensor needs r_max = max(r_max, 0) too, or 0 falls off the grid.",
    ),
    (
        "extends r_max to 0 but not r_min",
        dict(include_min=False),
        "an all-positive tensor needs r_min = min(r_min, 0) too, or 0 falls off the grid and "
        "the zero point leaves [q_min, q_max].",
    ),
    (
        "extends r_max to 0 but not r_min (and clips the zero point)",
        dict(include_min=False, clip_zero_point=True),
        "an all-positive tensor needs r_min = min(r_min, 0) too, or 0 falls off the grid.",
    ),
    ("does not keep the scale above a tiny floor", dict(floor_scale=False), _FLOOR_SCALE),
    (
        "rounds the zero point down (q_min - int(r_min / scale), or math.floor of the zero "
        "point) instead of to the nearest whole number",
        dict(zero_point_of=lambda q_min, r_min, s: q_min - int(r_min / s)),
        _ROUND_ZERO_POINT,
    ),
    (
        _ROUNDS_UP,
        dict(zero_point_of=lambda q_min, r_min, s: q_min - math.floor(r_min / s)),
        _ROUND_ZERO_POINT,
    ),
    (  # the same mistake: // floors the exact quotient, so it can differ from the above
        _ROUNDS_UP,
        dict(zero_point_of=lambda q_min, r_min, s: q_min - r_min // s),
        _ROUND_ZERO_POINT,
    ),
    (
        "cuts the fraction off the zero point (int(q_min - r_min / scale)) instead of rounding it",
        dict(zero_point_of=lambda q_min, r_min, s: int(q_min - r_min / s)),
        _ROUND_ZERO_POINT,
    ),
    (
        "does not round the zero point",
        dict(zero_point_of=lambda q_min, r_min, s: q_min - r_min / s),
        "the zero point is stored as an integer and the real number 0 must land exactly on it: "
        "round it, zero_point = q_min - round(r_min / scale).",
    ),
    (
        "adds r_min / scale to q_min instead of subtracting it",
        dict(zero_point_of=lambda q_min, r_min, s: q_min + round(r_min / s)),
        "solve r_min = scale * (q_min - z) for z: z = q_min - r_min / scale (then round).",
    ),
    (
        "uses the int8 range whatever the dtype",
        dict(int8_range=True),
        "take q_min and q_max from torch.iinfo(dtype): uint8 runs from 0 to 255.",
    ),
    (
        "divides the range by 2**8 = 256 instead of by q_max - q_min = 255",
        dict(steps=256),
        "256 levels make 255 steps between q_min and q_max: divide by q_max - q_min.",
    ),
    (
        "returns (zero_point, scale) instead of (scale, zero_point)",
        _swapped,
        "return the scale first: return scale, zero_point.",
    ),
)
SCALE_AND_ZERO_POINT_MISTAKES = mistakes_from_rows(
    _SCALE_AND_ZERO_POINT_ROWS, _scale_and_zero_point
)

#: The lesson's method, shown when a wrong answer matches none of the mistakes above.
SCALE_AND_ZERO_POINT_RECIPE = (
    "q_min, q_max from torch.iinfo(dtype); r_min = min(tensor.min(), 0), r_max = "
    "max(tensor.max(), 0); scale = (r_max - r_min) / (q_max - q_min), at least "
    "torch.finfo(torch.float32).eps; zero_point = q_min - round(r_min / scale); return "
    "(scale, zero_point)."
)


def check_scale_and_zero_point(function: Callable) -> CheckReport:
    """Exercise of lesson 02: ``get_scale_and_zero_point(tensor, dtype)``.

    The reference is ``get_q_scale_and_zero_point``. The cases tell the classic mistakes
    apart: the test tensor in int8 and uint8; two tensors whose zero points, before rounding,
    are -61.25 and +47.86 (rounding, rounding down, rounding up and cutting off the fraction
    give different answers on the three); a positive and a negative one-signed tensor; a
    constant tensor and an all-zero tensor.
    """
    test = torch.tensor(_TEST_TENSOR)
    negative_fraction = torch.tensor([-1.0, 0.5, 2.82])  # z = -128 + 66.75... = -61.25
    positive_fraction = torch.tensor([-2.0, 0.3, 0.9])  # z = -128 + 175.86... = 47.86
    positive = torch.tensor([100.0, 150.0, 200.0])
    negative = torch.tensor([-200.0, -100.0, -50.0])
    general = (
        "r_min = min(r_min, 0), r_max = max(r_max, 0); scale = (r_max - r_min) / "
        "(q_max - q_min), at least a tiny eps; zero point = q_min - round(r_min / scale)."
    )
    specs = [
        ("the lesson's test tensor, int8", test, torch.int8),
        ("the lesson's test tensor, uint8", test, torch.uint8),
        (
            "[-1, 0.5, 2.82], int8 (the zero point is -61.25 before rounding)",
            negative_fraction,
            torch.int8,
        ),
        (
            "[-2, 0.3, 0.9], int8 (the zero point is +47.86 before rounding)",
            positive_fraction,
            torch.int8,
        ),
        ("a one-signed tensor [100, 150, 200], int8", positive, torch.int8),
        ("an all-negative tensor [-200, -100, -50], int8", negative, torch.int8),
        ("a constant tensor [5, 5, 5], int8", torch.full((3,), 5.0), torch.int8),
        ("an all-zero tensor, int8", torch.zeros(2, 2), torch.int8),
    ]
    cases = [
        CheckCase(text, (tensor, dtype), _expect_scale_and_zero_point(tensor, dtype), general)
        for text, tensor, dtype in specs
    ]
    return run_checks(
        "Scale and zero point",
        function,
        cases,
        SCALE_AND_ZERO_POINT_MISTAKES,
        recipe=SCALE_AND_ZERO_POINT_RECIPE,
    )
