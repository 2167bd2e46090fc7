"""Exercise checkers: the instant feedback under each lesson's "Try it" cell.

A checker runs the learner's function on reference cases and reports, case by case, what is
right and what is wrong, with a hint. You use these from the notebooks
(``from exercises import check_dequantization``); you do not need to read them to follow the
course. The quantization itself lives in ``helper.py``.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from helper import dtype_name, get_q_range, get_q_scale_and_zero_point, linear_dequantization

__all__ = [
    "CheckCase",
    "CheckReport",
    "run_checks",
    "check_dequantization",
    "check_scale_and_zero_point",
]


@dataclass
class CheckCase:
    """One reference case for an exercise.

    ``check(result)`` returns ``None`` when the learner's result is right, or a sentence that
    says what is wrong. ``hint`` is shown when the case fails.
    """

    description: str
    args: tuple
    check: Callable[[Any], str | None]
    hint: str
    kwargs: dict = field(default_factory=dict)


@dataclass
class CheckReport:
    """What ``run_checks`` found; a notebook shows it as a short text report.

    ``status`` is ``"not attempted"``, ``"passed"`` or ``"failed"``; ``results`` holds one
    ``(description, problem_or_None, hint)`` per case.
    """

    exercise: str
    status: str
    results: list[tuple[str, str | None, str]]

    @property
    def passed(self) -> int:
        """How many cases passed."""
        return sum(problem is None for _, problem, _ in self.results)

    def __repr__(self) -> str:
        if self.status == "not attempted":
            return (
                f"{self.exercise}: not attempted yet. Your function returns None; fill in its "
                "body and run this cell again."
            )
        lines = [f"{self.exercise}: {self.passed} of {len(self.results)} checks passed."]
        for description, problem, hint in self.results:
            if problem is None:
                lines.append(f"  [pass] {description}")
            else:
                lines.append(f"  [FAIL] {description}: {problem}")
                lines.append(f"         hint: {hint}")
        if self.status == "passed":
            lines.append("Well done!")
        return "\n".join(lines)


def run_checks(exercise: str, function: Callable, cases: Sequence[CheckCase]) -> CheckReport:
    """Run a learner's ``function`` on every case and collect a ``CheckReport``.

    Each call gets its own copies of the arguments, so a function that changes its inputs
    cannot spoil later cases. If the function returns ``None`` for every case, the exercise
    counts as not attempted yet.
    """
    if not callable(function):
        raise TypeError(f"pass your function itself, e.g. check(my_function), not {function!r}.")
    results, returned_something = [], False
    for case in cases:
        try:
            result = function(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except Exception as error:  # the learner's code may raise anything
            results.append((case.description, f"raised {type(error).__name__}: {error}", case.hint))
            returned_something = True
            continue
        returned_something |= result is not None
        try:
            problem = "returned None" if result is None else case.check(result)
        except Exception as error:  # a result of an unexpected kind, e.g. (scale, None)
            problem = f"returned {result!r}, which could not be checked ({error})"
        results.append((case.description, problem, case.hint))
    if not returned_something:
        return CheckReport(exercise, "not attempted", results)
    status = "passed" if all(problem is None for _, problem, _ in results) else "failed"
    return CheckReport(exercise, status, results)


def _expect_close(expected: torch.Tensor) -> Callable[[Any], str | None]:
    """A check that the result is a float tensor equal to ``expected`` up to float32 rounding."""

    def check(result: Any) -> str | None:
        if not isinstance(result, torch.Tensor):
            return f"expected a tensor, got {type(result).__name__}"
        if not result.is_floating_point():
            return f"expected a float tensor, got {dtype_name(result.dtype)}"
        if result.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(result.shape)}"
        if not torch.allclose(result.double(), expected.double(), rtol=1e-5, atol=1e-5):
            worst = (result.double() - expected.double()).abs().argmax().item()
            return (
                f"element {worst} is {result.flatten()[worst].item():.6g}, expected "
                f"{expected.flatten()[worst].item():.6g}"
            )
        return None

    return check


def check_dequantization(function: Callable) -> CheckReport:
    """Exercise of lesson 01: check a learner's ``dequantize(quantized_tensor, scale, zero_point)``.

    The reference is ``linear_dequantization``. The cases include values near the ends of the
    int8 range, where subtracting the zero point in int8 wraps around.
    """
    test_q = torch.tensor([[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]], dtype=torch.int8)
    edge_q = torch.tensor([127, -128, 100, -70], dtype=torch.int8)
    uint8_q = torch.tensor([0, 255, 128, 3], dtype=torch.uint8)
    hint_wrap = "convert to float first (quantized_tensor.float()), then subtract the zero point."
    cases = [
        CheckCase(
            "the lesson's quantized test tensor, scale 3.5, zero point -70",
            (test_q, 3.5, -70),
            _expect_close(linear_dequantization(test_q, 3.5, -70)),
            "r = scale * (q - zero_point); " + hint_wrap,
        ),
        CheckCase(
            "int8 values at the ends of the range, zero point -70",
            (edge_q, 3.5, -70),
            _expect_close(linear_dequantization(edge_q, 3.5, -70)),
            hint_wrap,
        ),
        CheckCase(
            "uint8 values, scale 0.5, zero point 128",
            (uint8_q, 0.5, 128),
            _expect_close(linear_dequantization(uint8_q, 0.5, 128)),
            hint_wrap,
        ),
    ]
    return run_checks("Dequantization", function, cases)


def _expect_scale_and_zero_point(tensor: torch.Tensor, dtype: torch.dtype):
    """A check that a ``(scale, zero_point)`` result maps ``tensor`` like ``helper`` does."""
    q_min, q_max = get_q_range(dtype)
    expected_scale, expected_zero_point = get_q_scale_and_zero_point(tensor, dtype)
    all_zero = not bool(tensor.any())

    def check(result: Any) -> str | None:
        if not isinstance(result, tuple | list) or len(result) != 2:
            return f"expected a pair (scale, zero_point), got {result!r}"
        scale, zero_point = (v.item() if isinstance(v, torch.Tensor) else v for v in result)
        if not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            return f"the scale must be a positive, finite number, got {scale!r}"
        if not isinstance(zero_point, numbers.Integral) and zero_point != round(zero_point):
            return f"the zero point must be a whole number, got {zero_point!r}"
        if not q_min <= zero_point <= q_max:
            return f"zero point {zero_point} is outside [{q_min}, {q_max}]"
        if all_zero:  # any positive scale works; 0 must map to a storable zero point
            return None
        if not math.isclose(scale, expected_scale, rel_tol=1e-6):
            return f"scale {scale!r}, expected {expected_scale!r}"
        if zero_point != expected_zero_point:
            return f"zero point {zero_point!r}, expected {expected_zero_point}"
        return None

    return check


def check_scale_and_zero_point(function: Callable) -> CheckReport:
    """Exercise of lesson 02: check a learner's ``get_scale_and_zero_point(tensor, dtype)``.

    The reference is ``get_q_scale_and_zero_point``; the cases are the lesson's test tensor,
    uint8, a one-signed tensor, a constant tensor and an all-zero tensor.
    """
    test_tensor = torch.tensor([[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]])
    hint_zero = "extend the range to include 0: r_min = min(r_min, 0), r_max = max(r_max, 0)."
    cases = [
        CheckCase(
            "the lesson's test tensor, int8",
            (test_tensor, torch.int8),
            _expect_scale_and_zero_point(test_tensor, torch.int8),
            "scale = (r_max - r_min) / (q_max - q_min); zero point = q_min - r_min / scale, "
            "rounded to an int.",
        ),
        CheckCase(
            "the lesson's test tensor, uint8",
            (test_tensor, torch.uint8),
            _expect_scale_and_zero_point(test_tensor, torch.uint8),
            "take q_min and q_max from torch.iinfo(dtype), not from int8.",
        ),
        CheckCase(
            "a one-signed tensor [100, 150, 200], int8",
            (torch.tensor([100.0, 150.0, 200.0]), torch.int8),
            _expect_scale_and_zero_point(torch.tensor([100.0, 150.0, 200.0]), torch.int8),
            hint_zero,
        ),
        CheckCase(
            "a constant tensor [5, 5, 5], int8",
            (torch.full((3,), 5.0), torch.int8),
            _expect_scale_and_zero_point(torch.full((3,), 5.0), torch.int8),
            hint_zero,
        ),
        CheckCase(
            "an all-zero tensor, int8",
            (torch.zeros(2, 2), torch.int8),
            _expect_scale_and_zero_point(torch.zeros(2, 2), torch.int8),
            "an all-zero range gives scale 0; use a small positive floor instead, e.g. "
            "max(scale, torch.finfo(torch.float32).eps).",
        ),
    ]
    return run_checks("Scale and zero point", function, cases)
