"""Exercise checkers: the instant feedback under each lesson's "Try it" cell.

A checker runs the learner's function on reference cases and reports, case by case, what is
right and what is wrong. Each checker also knows the classic mistakes of its exercise, written
out as small wrong functions (``Mistake``): when the learner's function gives exactly what one
of them gives, the report names that mistake and gives its hint, instead of a hint about the
case that happened to catch it.

You use these from the notebooks (``from exercises import check_dequantization``); you need
not read them to follow the course. The quantization itself lives in ``helper.py``.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import numbers
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from helper import (
    dtype_name,
    get_q_range,
    get_q_scale_and_zero_point,
    linear_dequantization,
    linear_q_with_scale_and_zero_point,
)

__all__ = [
    "CheckCase",
    "Mistake",
    "CheckReport",
    "run_checks",
    "same_result",
    "expect_close",
    "expect_integers",
    "check_quantize",
    "check_dequantization",
    "check_scale_and_zero_point",
]

# ---------------------------------------------------------------------------------------------
# The mechanism
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckCase:
    """One reference case for an exercise.

    ``check(result)`` returns ``None`` when the learner's result is right, or a sentence that
    says what is wrong. ``hint`` is shown when the case fails and no known mistake explains it.
    """

    description: str
    args: tuple
    check: Callable[[Any], str | None]
    hint: str
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A classic wrong answer to an exercise: ``function`` makes it, ``hint`` explains it.

    ``description`` completes the sentence "It looks like your function ...".
    """

    description: str
    function: Callable
    hint: str


@dataclass
class CheckReport:
    """What ``run_checks`` found; a notebook shows it as a short text report.

    ``status`` is ``"not attempted"``, ``"no return"``, ``"passed"`` or ``"failed"``;
    ``results`` holds one ``(description, problem_or_None, hint)`` per case; ``mistake`` is the
    known mistake the learner's function reproduces, if any.
    """

    exercise: str
    status: str
    results: list[tuple[str, str | None, str]]
    mistake: Mistake | None = None

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
        if self.status == "no return":
            return (
                f"{self.exercise}: your function has a body but returns None. Did you forget "
                "`return`? The last line should be `return ...` with your result."
            )
        lines = [f"{self.exercise}: {self.passed} of {len(self.results)} checks passed."]
        for description, problem, hint in self.results:
            if problem is None:
                lines.append(f"  [pass] {description}")
            else:
                lines.append(f"  [FAIL] {description}: {problem}")
                if self.mistake is None:
                    lines.append(f"         hint: {hint}")
        if self.mistake is not None:
            lines.append(f"It looks like your function {self.mistake.description}.")
            lines.append(f"hint: {self.mistake.hint}")
        if self.status == "passed":
            lines.append("Well done!")
        return "\n".join(lines)


def _is_stub(function: Callable) -> bool:
    """True if the function's body does nothing: only a docstring, ``pass``, ``...`` or
    ``return``/``return None`` (comments do not count). Unknown source counts as a stub."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return True
    definitions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.Lambda)]
    if not definitions or isinstance(definitions[0], ast.Lambda):
        return False
    for statement in definitions[0].body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring or ...
        if isinstance(statement, ast.Return) and (
            statement.value is None
            or (isinstance(statement.value, ast.Constant) and statement.value.value is None)
        ):
            continue
        return False
    return True


def _call(function: Callable, case: CheckCase) -> tuple[Any, BaseException | None]:
    """``function(*case.args, **case.kwargs)`` on fresh copies; returns (result, exception)."""
    try:
        return function(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs)), None
    except Exception as error:  # the learner's code may raise anything
        return None, error


def same_result(a: Any, b: Any) -> bool:
    """True if two results are the same answer: tensors of one shape and dtype with (nearly,
    for floats) equal values, numbers that are close, or sequences of such, element by element.
    A 1-element tensor and a number are compared by value."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():
            return bool(
                torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6, equal_nan=True)
            )
        return bool(torch.equal(a, b))
    if isinstance(a, torch.Tensor) and a.numel() == 1:
        return same_result(a.item(), b)
    if isinstance(b, torch.Tensor) and b.numel() == 1:
        return same_result(a, b.item())
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        a, b = float(a), float(b)
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(same_result(x, y) for x, y in zip(a, b, strict=True))
    return a is None and b is None


def _diagnose(
    outcomes: list[tuple[Any, BaseException | None]],
    cases: Sequence[CheckCase],
    mistakes: Sequence[Mistake],
) -> Mistake | None:
    """The first mistake whose function gives the learner's outcome on every case."""
    for mistake in mistakes:
        for (result, error), case in zip(outcomes, cases, strict=True):
            expected, expected_error = _call(mistake.function, case)
            if error is not None or expected_error is not None:
                if type(error) is not type(expected_error):
                    break
            elif not same_result(result, expected):
                break
        else:
            return mistake
    return None


def run_checks(
    exercise: str,
    function: Callable,
    cases: Sequence[CheckCase],
    mistakes: Sequence[Mistake] = (),
) -> CheckReport:
    """Run a learner's ``function`` on every case and collect a ``CheckReport``.

    Each call gets its own copies of the arguments, so a function that changes its inputs
    cannot spoil later cases. If the function returns ``None`` for every case, the exercise
    counts as not attempted yet, or, when the body is more than the handed-out stub, as a
    forgotten ``return``. If some case fails and the function reproduces one of ``mistakes``
    on every case, the report names that mistake.
    """
    if not callable(function):
        raise TypeError(f"pass your function itself, e.g. check(my_function), not {function!r}.")
    outcomes = [_call(function, case) for case in cases]
    results = []
    for case, (result, error) in zip(cases, outcomes, strict=True):
        if error is not None:
            problem = f"raised {type(error).__name__}: {error}"
        elif result is None:
            problem = "returned None"
        else:
            try:
                problem = case.check(result)
            except Exception as check_error:  # a result of an unexpected kind, e.g. (s, None)
                problem = f"returned {result!r}, which could not be checked ({check_error})"
        results.append((case.description, problem, case.hint))
    if all(error is None and result is None for result, error in outcomes):
        status = "not attempted" if _is_stub(function) else "no return"
        return CheckReport(exercise, status, results)
    if all(problem is None for _, problem, _ in results):
        return CheckReport(exercise, "passed", results)
    return CheckReport(exercise, "failed", results, _diagnose(outcomes, cases, mistakes))


# ---------------------------------------------------------------------------------------------
# Checks for results
# ---------------------------------------------------------------------------------------------


def _worst(result: torch.Tensor, expected: torch.Tensor) -> str:
    """'element 2 is 3, expected 5' for the element that is furthest off."""
    difference = (result.double() - expected.double()).abs().flatten()
    worst = int(difference.nan_to_num(math.inf).argmax())
    got, want = result.flatten()[worst].item(), expected.flatten()[worst].item()
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape))
    where = index if len(index) > 1 else worst
    return f"element {where} is {got:.6g}, expected {want:.6g}"


def expect_close(expected: torch.Tensor) -> Callable[[Any], str | None]:
    """A check that the result is a float tensor equal to ``expected`` up to float32 rounding."""

    def check(result: Any) -> str | None:
        if not isinstance(result, torch.Tensor):
            return f"expected a tensor, got {type(result).__name__}"
        if not result.is_floating_point():
            return f"expected a float tensor, got {dtype_name(result.dtype)}"
        if result.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(result.shape)}"
        if not torch.allclose(result.double(), expected.double(), rtol=1e-5, atol=1e-5):
            return _worst(result, expected)
        return None

    return check


def expect_integers(expected: torch.Tensor) -> Callable[[Any], str | None]:
    """A check that the result is exactly ``expected``: same integer dtype, shape and values.

    (``torch.equal`` alone would not do: it ignores the dtype.)
    """

    def check(result: Any) -> str | None:
        if not isinstance(result, torch.Tensor):
            return f"expected a tensor, got {type(result).__name__}"
        if result.dtype != expected.dtype:
            return f"expected dtype {dtype_name(expected.dtype)}, got {dtype_name(result.dtype)}"
        if result.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(result.shape)}"
        if not torch.equal(result, expected):
            return _worst(result, expected)
        return None

    return check


# ---------------------------------------------------------------------------------------------
# Lesson 01: quantize and dequantize
# ---------------------------------------------------------------------------------------------

_TEST_TENSOR = ((191.6, -13.5, 728.6), (92.14, 295.5, -184.0), (0.0, 684.6, 245.5))


def _range_of(dtype: torch.dtype) -> tuple[int, int]:
    info = torch.iinfo(dtype)
    return info.min, info.max


def _quantize_no_clamp(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).to(dtype)


def _quantize_int8_range(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(-128, 127).to(dtype)


def _quantize_round_half_up(r, s, z, dtype=torch.int8):
    return (torch.floor(r / s + 0.5) + z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_truncate(r, s, z, dtype=torch.int8):
    return (torch.trunc(r / s) + z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_multiply(r, s, z, dtype=torch.int8):
    return (torch.round(r * s) + z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_no_zero_point(r, s, z, dtype=torch.int8):
    return torch.round(r / s).clamp(*_range_of(dtype)).to(dtype)


def _quantize_minus_zero_point(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) - z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_no_cast(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(*_range_of(dtype))


QUANTIZE_MISTAKES = (
    Mistake(
        "returns floats: it never casts to the integer dtype",
        _quantize_no_cast,
        "finish with .to(dtype): the quantized tensor is stored as integers.",
    ),
    Mistake(
        "casts without clamping first",
        _quantize_no_clamp,
        "clamp to [q_min, q_max] *before* .to(dtype): a value such as 138.0 has no int8 value, "
        "and the cast turns it into something else (often a wrapped-around number).",
    ),
    Mistake(
        "clamps to the int8 range whatever the dtype",
        _quantize_int8_range,
        "take q_min and q_max from torch.iinfo(dtype): uint8 runs from 0 to 255.",
    ),
    Mistake(
        "rounds halves up (floor(x + 0.5))",
        _quantize_round_half_up,
        "use torch.round: it rounds an exact half to the even neighbour (2.5 -> 2, 1.5 -> 2), "
        "as PyTorch's quantizers do; floor(x + 0.5) always rounds halves up.",
    ),
    Mistake(
        "cuts off the fraction instead of rounding",
        _quantize_truncate,
        "round to the nearest step with torch.round before adding z; .int(), .to() and "
        "torch.trunc drop the fraction (3.9 -> 3).",
    ),
    Mistake(
        "multiplies by the scale",
        _quantize_multiply,
        "divide by the scale, r / s: the scale is the size of one step in real units, so r / s "
        "counts steps. Multiplying is the dequantize direction.",
    ),
    Mistake(
        "leaves out the zero point",
        _quantize_no_zero_point,
        "add the zero point after rounding: round(r / s) + z.",
    ),
    Mistake(
        "subtracts the zero point",
        _quantize_minus_zero_point,
        "quantize adds z (q = round(r / s) + z); dequantize subtracts it (r = s * (q - z)).",
    ),
)


def check_quantize(function: Callable) -> CheckReport:
    """Exercise of lesson 01: ``my_quantize(tensor, scale, zero_point, dtype=torch.int8)``.

    The reference is ``linear_q_with_scale_and_zero_point``. The cases: the lesson's test
    tensor (728.6 saturates), values beyond both ends of the grid, exact ties (with an even
    zero point, so rounding ``r / s`` or ``r / s + z`` gives the same answer) and uint8.
    """
    test = torch.tensor(_TEST_TENSOR)
    ends = torch.tensor([-1000.0, -203.0, -0.5, 689.5, 1000.0])
    ties = torch.tensor([1.0, 3.0, 5.0, -1.0, -5.0, 7.0])  # 0.5, 1.5, 2.5, ... steps of 2.0
    unsigned = torch.tensor([-100.0, -64.0, 0.0, 10.2, 63.5, 100.0])
    general = "q = clamp(round(r / s) + z, q_min, q_max), then .to(dtype)."
    cases = [
        CheckCase(
            "the lesson's test tensor, scale 3.5, zero point -70, int8",
            (test, 3.5, -70, torch.int8),
            expect_integers(linear_q_with_scale_and_zero_point(test, 3.5, -70)),
            general,
        ),
        CheckCase(
            "values beyond both ends of the grid (they must saturate at -128 and 127)",
            (ends, 3.5, -70, torch.int8),
            expect_integers(linear_q_with_scale_and_zero_point(ends, 3.5, -70)),
            "clamp to [q_min, q_max] before casting.",
        ),
        CheckCase(
            "exact ties: values 0.5, 1.5, 2.5, ... steps from 0 (scale 2.0, zero point 10)",
            (ties, 2.0, 10, torch.int8),
            expect_integers(linear_q_with_scale_and_zero_point(ties, 2.0, 10)),
            "torch.round sends halves to the even neighbour.",
        ),
        CheckCase(
            "uint8: scale 0.5, zero point 128",
            (unsigned, 0.5, 128, torch.uint8),
            expect_integers(
                linear_q_with_scale_and_zero_point(unsigned, 0.5, 128, dtype=torch.uint8)
            ),
            "take q_min and q_max from torch.iinfo(dtype).",
        ),
    ]
    return run_checks("Quantize", function, cases, QUANTIZE_MISTAKES)


def _dequantize_in_integers(q, s, z):
    return s * (q - z)


def _dequantize_precedence(q, s, z):
    return s * q.float() - z


def _dequantize_divides(q, s, z):
    return (q.float() - z) / s


def _dequantize_adds_zero_point(q, s, z):
    return s * (q.float() + z)


def _dequantize_no_scale(q, s, z):
    return q.float() - z


def _dequantize_no_zero_point(q, s, z):
    return s * q.float()


DEQUANTIZE_MISTAKES = (
    Mistake(
        "subtracts the zero point in the integer dtype",
        _dequantize_in_integers,
        "convert to float first, quantized_tensor.float() - zero_point: int8 (and uint8) "
        "arithmetic wraps around silently (127 - (-70) = 197 is stored as -59).",
    ),
    Mistake(
        "multiplies before subtracting (s * q - z)",
        _dequantize_precedence,
        "the scale multiplies the difference: s * (q - z), with parentheses. Without them "
        "Python computes (s * q) - z.",
    ),
    Mistake(
        "divides by the scale",
        _dequantize_divides,
        "multiply by the scale: one step of q is worth s in real units. Dividing by s is the "
        "quantize direction.",
    ),
    Mistake(
        "adds the zero point",
        _dequantize_adds_zero_point,
        "subtract the zero point: q = z must come back as exactly 0.",
    ),
    Mistake(
        "forgets the scale",
        _dequantize_no_scale,
        "multiply (q - z) by the scale to get back to real units.",
    ),
    Mistake(
        "forgets the zero point",
        _dequantize_no_zero_point,
        "subtract the zero point before scaling: r = s * (q - z).",
    ),
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
    cases = [
        CheckCase(
            "the lesson's quantized test tensor, scale 3.5, zero point -70",
            (test_q, 3.5, -70),
            expect_close(linear_dequantization(test_q, 3.5, -70)),
            general,
        ),
        CheckCase(
            "int8 values near the top of the range, zero point -70",
            (top_q, 3.5, -70),
            expect_close(linear_dequantization(top_q, 3.5, -70)),
            general,
        ),
        CheckCase(
            "int8 values near the bottom of the range, zero point +33",
            (bottom_q, 0.0131, 33),
            expect_close(linear_dequantization(bottom_q, 0.0131, 33)),
            general,
        ),
        CheckCase(
            "uint8 values, scale 0.5, zero point 128",
            (uint8_q, 0.5, 128),
            expect_close(linear_dequantization(uint8_q, 0.5, 128)),
            general,
        ),
    ]
    return run_checks("Dequantization", function, cases, DEQUANTIZE_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 02: scale and zero point
# ---------------------------------------------------------------------------------------------


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
        if not isinstance(zero_point, numbers.Real) or not math.isfinite(zero_point):
            return f"the zero point must be a whole number, got {zero_point!r}"
        if zero_point != round(zero_point):
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


def _scale_and_zero_point(
    tensor,
    dtype,
    *,
    include_min=True,
    include_max=True,
    steps=None,
    rounding=round,
    floor_scale=True,
    int8_range=False,
):
    """The right answer, or one classic mistake, depending on the keywords."""
    info = torch.iinfo(torch.int8 if int8_range else dtype)
    r_min, r_max = tensor.min().item(), tensor.max().item()
    if include_min:
        r_min = min(r_min, 0.0)
    if include_max:
        r_max = max(r_max, 0.0)
    scale = (r_max - r_min) / (steps or (info.max - info.min))
    if floor_scale:
        scale = max(scale, torch.finfo(torch.float32).eps)
    zero_point = info.min - rounding(r_min / scale)
    return scale, min(max(zero_point, info.min), info.max)


SCALE_AND_ZERO_POINT_MISTAKES = (
    Mistake(
        "is the course's original code: no 0 in the range and no floor under the scale",
        lambda t, dtype=torch.int8: _scale_and_zero_point(
            t, dtype, include_min=False, include_max=False, floor_scale=False
        ),
        "extend the range to include 0 (r_min = min(r_min, 0), r_max = max(r_max, 0)), so "
        "one-signed tensors keep their grid and the zero point always fits, and keep the scale "
        "at least torch.finfo(torch.float32).eps, so a constant tensor does not divide by 0.",
    ),
    Mistake(
        "does not extend the range to include 0",
        lambda t, dtype=torch.int8: _scale_and_zero_point(
            t, dtype, include_min=False, include_max=False
        ),
        "extend the range first: r_min = min(r_min, 0), r_max = max(r_max, 0). Then 0 is "
        "always on the grid and the zero point always fits.",
    ),
    Mistake(
        "extends r_min to 0 but not r_max",
        lambda t, dtype=torch.int8: _scale_and_zero_point(t, dtype, include_max=False),
        "an all-negative tensor needs r_max = max(r_max, 0) too, or 0 falls off the grid.",
    ),
    Mistake(
        "extends r_max to 0 but not r_min",
        lambda t, dtype=torch.int8: _scale_and_zero_point(t, dtype, include_min=False),
        "an all-positive tensor needs r_min = min(r_min, 0) too, or 0 falls off the grid.",
    ),
    Mistake(
        "does not keep the scale above a tiny floor",
        lambda t, dtype=torch.int8: _scale_and_zero_point(t, dtype, floor_scale=False),
        "an all-zero range gives scale 0 and a division by zero; use "
        "scale = max(scale, torch.finfo(torch.float32).eps).",
    ),
    Mistake(
        "cuts the fraction off the zero point (int() or math.floor()) instead of rounding it",
        lambda t, dtype=torch.int8: _scale_and_zero_point(t, dtype, rounding=int),
        "round the zero point to the nearest whole number with round(): int() and "
        "math.floor() drop the fraction, which moves the whole grid by up to one step.",
    ),
    Mistake(
        "does not round the zero point",
        lambda t, dtype=torch.int8: _scale_and_zero_point(t, dtype, rounding=lambda x: x),
        "the zero point must be a whole number (it is stored as an integer): round it.",
    ),
    Mistake(
        "uses the int8 range whatever the dtype",
        lambda t, dtype=torch.int8: _scale_and_zero_point(t, dtype, int8_range=True),
        "take q_min and q_max from torch.iinfo(dtype): uint8 runs from 0 to 255.",
    ),
    Mistake(
        "divides the range by 2**8 = 256 instead of by q_max - q_min = 255",
        lambda t, dtype=torch.int8: _scale_and_zero_point(
            t, dtype, steps=2 ** torch.iinfo(dtype).bits
        ),
        "256 levels make 255 steps between q_min and q_max: divide by q_max - q_min.",
    ),
)


def check_scale_and_zero_point(function: Callable) -> CheckReport:
    """Exercise of lesson 02: ``get_scale_and_zero_point(tensor, dtype)``.

    The reference is ``get_q_scale_and_zero_point``. The cases tell the classic mistakes
    apart: the test tensor in int8 and uint8, a tensor whose zero point has a fractional part
    above one half (rounding, truncating and flooring all differ), a positive and a negative
    one-signed tensor, a constant tensor and an all-zero tensor.
    """
    test = torch.tensor(_TEST_TENSOR)
    fraction = torch.tensor([-1.0, 0.5, 2.82])  # z = -128 + 66.75... = -61.25 rounds to -61
    positive = torch.tensor([100.0, 150.0, 200.0])
    negative = torch.tensor([-200.0, -100.0, -50.0])
    general = (
        "r_min = min(r_min, 0), r_max = max(r_max, 0); scale = (r_max - r_min) / "
        "(q_max - q_min), at least a tiny eps; zero point = q_min - round(r_min / scale)."
    )
    specs = [
        ("the lesson's test tensor, int8", test, torch.int8),
        ("the lesson's test tensor, uint8", test, torch.uint8),
        ("[-1, 0.5, 2.82]: r_min / scale = -66.75 (the fraction matters)", fraction, torch.int8),
        ("a one-signed tensor [100, 150, 200], int8", positive, torch.int8),
        ("an all-negative tensor [-200, -100, -50], int8", negative, torch.int8),
        ("a constant tensor [5, 5, 5], int8", torch.full((3,), 5.0), torch.int8),
        ("an all-zero tensor, int8", torch.zeros(2, 2), torch.int8),
    ]
    cases = [
        CheckCase(text, (tensor, dtype), _expect_scale_and_zero_point(tensor, dtype), general)
        for text, tensor, dtype in specs
    ]
    return run_checks("Scale and zero point", function, cases, SCALE_AND_ZERO_POINT_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 04: symmetric and asymmetric mode
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Lesson 05: granularity (per tensor, per channel, per group)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Lesson 06: weights and activations
# ---------------------------------------------------------------------------------------------
