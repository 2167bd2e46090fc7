"""Lesson 04, symmetric and asymmetric mode: ``check_linear_q_symmetric``.

The learner writes ``my_linear_q_symmetric(tensor, dtype=torch.int8)`` returning
``(quantized_tensor, scale)``, checked against ``helper.linear_q_symmetric``.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from helper import linear_q_symmetric
from support.examples import TEST_TENSOR_VALUES as _TEST_TENSOR
from support.exercises.core import (
    CheckCase,
    CheckReport,
    _range_of,
    expect_integers,
    mistakes_from_rows,
    run_checks,
    shown,
)

__all__ = [
    "SYMMETRIC_MISTAKES",
    "SYMMETRIC_RECIPE",
    "check_linear_q_symmetric",
]


def _symmetric_reference(tensor: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    """``helper.linear_q_symmetric``."""

    return linear_q_symmetric(tensor, dtype)


def _is_one_number(value: Any) -> bool:
    """A real number, or a tensor holding exactly one."""
    return isinstance(value, numbers.Real) or (
        isinstance(value, torch.Tensor) and value.numel() == 1
    )


def _expect_symmetric(tensor: torch.Tensor, dtype: torch.dtype) -> Callable[[Any], str | None]:
    """A check that a ``(quantized_tensor, scale)`` result is what ``linear_q_symmetric``
    gives. For an all-zero tensor any positive, finite scale is right (every value is 0)."""
    expected_q, expected_scale = _symmetric_reference(tensor, dtype)
    check_q = expect_integers(expected_q)
    all_zero = not bool(tensor.any())

    def check(result: Any) -> str | None:
        if not isinstance(result, tuple | list) or len(result) != 2:
            return f"expected a pair (quantized_tensor, scale), got {shown(result)}"
        q, scale = result
        if _is_one_number(q) and not _is_one_number(scale):
            return "the pair is the wrong way round: return (quantized_tensor, scale)"
        if isinstance(scale, torch.Tensor):
            if scale.numel() != 1:
                return f"expected one scale for the whole tensor, got shape {tuple(scale.shape)}"
            scale = scale.item()
        if not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            return f"the scale must be a positive, finite number, got {shown(scale)}"
        if not all_zero and not math.isclose(scale, expected_scale, rel_tol=1e-6):
            return f"scale {scale:.10g}, expected {expected_scale:.10g}"
        return check_q(q)

    check.expected = (expected_q, expected_scale)
    return check


def _absmax(tensor: torch.Tensor) -> float:
    return tensor.abs().max().item()


def _symmetric_variant(
    tensor,
    dtype=torch.int8,
    *,
    magnitude=_absmax,
    steps=None,
    zero_point=None,
    floor=True,
    rounding=torch.round,
    clamp=True,
    cast=True,
    cast_only=False,
):
    """The right answer, or one classic mistake, depending on the keywords.

    ``steps(q_min, q_max, z)`` is what ``max|r|`` is divided by (right: ``q_max - z``);
    ``zero_point(q_min, q_max)`` the zero point (right: 0, or the midpoint if unsigned);
    ``cast_only``: no rounding at all, ``r / s + z`` goes straight into ``.to(dtype)``, which
    drops the fraction of ``r / s + z`` (not of ``r / s``: for uint8 that is a floor).
    """
    q_min, q_max = _range_of(dtype)
    z = (0 if q_min < 0 else (q_min + q_max + 1) // 2) if zero_point is None else zero_point
    divisor = q_max - z if steps is None else steps(q_min, q_max, z)
    scale = magnitude(tensor) / divisor
    if floor:
        scale = max(scale, torch.finfo(torch.float32).eps)
    q = tensor / scale + z if cast_only else rounding(tensor / scale) + z
    if clamp:
        q = q.clamp(q_min, q_max)
    return (q.to(dtype) if cast else q), scale


# One row per classic mistake: (description, what differs from the right answer, hint).
_SYMMETRIC_ROWS = (
    (
        "returns floats: it never casts to the integer dtype",
        dict(cast=False),
        "finish with .to(dtype): the quantized tensor is stored as integers.",
    ),
    (
        "uses the largest value, max(r), instead of the largest magnitude, max|r|",
        dict(magnitude=lambda x: x.max().item()),
        "take tensor.abs().max(): the grid must reach the most negative value too. With "
        "[-10, 3, 6], max(r) = 6 and -10 saturates.",
    ),
    (
        "divides by 127.5 = (q_max - q_min) / 2, as PyTorch's symmetric observers do",
        dict(steps=lambda q_min, q_max, z: (q_max - q_min) / 2),
        "this exercise follows the course: s = max|r| / 127 for int8, so max|r| lands exactly "
        "on q_max. PyTorch's 127.5 is a valid choice too, but a different one.",
    ),
    (
        "divides by 128 = 2**7 instead of q_max = 127",
        dict(steps=lambda q_min, q_max, z: q_max - z + 1),
        "divide by q_max - z, the number of steps from 0 up to q_max: 127 for int8 (and "
        "uint8 with its zero point 128). With 128, max|r| lands between two levels.",
    ),
    (
        "divides by 255 = q_max - q_min, the asymmetric number of steps",
        dict(steps=lambda q_min, q_max, z: q_max - q_min),
        "the symmetric grid has its zero in the middle, so max|r| must fit into the steps "
        "from 0 to q_max: divide by q_max - z (127), not by all 255 steps. With 255 the "
        "values above max|r| / 2 saturate.",
    ),
    (
        "uses zero point 0 and s = max|r| / 255 for uint8 (the signed formula with uint8's q_max)",
        dict(zero_point=0),
        "uint8 has no negative integers: with z = 0 every negative value clamps to 0. Put the "
        "zero point in the middle, z = 128, and divide by q_max - z = 127.",
    ),
    (
        "uses the int8 formula for uint8 (zero point 0, s = max|r| / 127)",
        dict(zero_point=0, steps=lambda q_min, q_max, z: 127),
        "uint8 has no negative integers: with z = 0 every negative value clamps to 0. Put the "
        "zero point in the middle, z = 128 (q = round(r / s) + 128).",
    ),
    (
        "uses the midpoint zero point for uint8 but divides max|r| by 255",
        dict(steps=lambda q_min, q_max, z: q_max),
        "with z = 128 only q_max - z = 127 steps lie above 0: divide by q_max - z, or the "
        "largest values saturate.",
    ),
    (
        "does not keep the scale above a tiny floor",
        dict(floor=False),
        "an all-zero tensor has max|r| = 0, so the scale is 0 and r / s is 0 / 0 = NaN; use "
        "scale = max(scale, torch.finfo(torch.float32).eps).",
    ),
    (
        "rounds halves up (floor(x + 0.5))",
        dict(rounding=lambda x: torch.floor(x + 0.5)),
        "use torch.round: it sends an exact half to the even neighbour (0.5 -> 0, 2.5 -> 2).",
    ),
    (
        "cuts off the fraction instead of rounding",
        dict(rounding=torch.trunc),
        "round r / s to the nearest whole step with torch.round; .to(dtype), .int() and "
        "torch.trunc drop the fraction (1.5 -> 1).",
    ),
    (
        "never rounds: .to(dtype) on r / s + z cuts off the fraction",
        dict(cast_only=True),
        "a cast to an integer dtype does not round, it drops the fraction: 51.51 becomes 51, "
        "not 52 (and for uint8, r / s + 128 is positive, so every value is rounded down). "
        "Round first: torch.round(r / s) + z, then clamp, then .to(dtype).",
    ),
)
SYMMETRIC_MISTAKES = mistakes_from_rows(_SYMMETRIC_ROWS, _symmetric_variant)

#: The lesson's method, shown when a run fails and no known mistake explains it.
SYMMETRIC_RECIPE = (
    "z = 0 for a signed dtype (128, the midpoint, for uint8); s = max|r| / (q_max - z), at "
    "least torch.finfo(torch.float32).eps; q = clamp(round(r / s) + z, q_min, q_max).to(dtype); "
    "return (q, s)."
)


def check_linear_q_symmetric(function: Callable) -> CheckReport:
    """Exercise of lesson 04: ``my_linear_q_symmetric(tensor, dtype=torch.int8)`` returning
    ``(quantized_tensor, scale)``.

    The reference is ``helper.linear_q_symmetric``: ``s = max|r| / (q_max - z)`` with
    ``z = 0`` for a signed dtype and the midpoint (128) for uint8, floored at float32's eps;
    ``q = clamp(round(r / s) + z, q_min, q_max)``. The cases tell the classic mistakes apart:
    the test tensor (its largest magnitude is positive), ``[-10, 3, 6]`` (negative), exact
    ties on scale 1, the test tensor in uint8 and an all-zero tensor.
    """
    test = torch.tensor(_TEST_TENSOR)
    negative = torch.tensor([-10.0, 3.0, 6.0])
    ties = torch.tensor([127.0, 0.5, 1.5, 2.5, -2.5, -126.0])  # max|r| = 127: scale 1.0
    general = (
        "s = max|r| / (q_max - z) with z = 0 for int8 (128 for uint8), at least a tiny eps; "
        "q = clamp(round(r / s) + z, q_min, q_max).to(dtype); return (q, s)."
    )
    specs = [
        ("the lesson's test tensor, int8", test, torch.int8, general),
        (
            "[-10, 3, 6], int8: the largest magnitude is negative",
            negative,
            torch.int8,
            "the scale comes from the largest magnitude, tensor.abs().max().",
        ),
        (
            "exact ties: [127, 0.5, 1.5, 2.5, -2.5, -126] (scale 1), int8",
            ties,
            torch.int8,
            "torch.round sends an exact half to the even neighbour.",
        ),
        (
            "the lesson's test tensor, uint8 (zero point 128)",
            test,
            torch.uint8,
            "for uint8 the zero point is 128 and s = max|r| / (255 - 128).",
        ),
        (
            "an all-zero tensor, int8",
            torch.zeros(2, 3),
            torch.int8,
            "max|r| = 0 makes the scale 0: keep it at least torch.finfo(torch.float32).eps.",
        ),
    ]
    cases = [
        CheckCase(text, (tensor, dtype), _expect_symmetric(tensor, dtype), hint)
        for text, tensor, dtype, hint in specs
    ]
    return run_checks(
        "Symmetric quantization", function, cases, SYMMETRIC_MISTAKES, recipe=SYMMETRIC_RECIPE
    )
