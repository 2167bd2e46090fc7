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
import functools
import inspect
import math
import numbers
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from helper import (
    W8A16LinearLayer,
    absmax_minmax,
    clipping_mse_curve,
    dtype_name,
    fake_quantize,
    fake_quantize_clipped,
    get_q_range,
    get_q_scale_and_zero_point,
    layer_names,
    linear_dequantization,
    linear_q_symmetric,
    linear_q_symmetric_per_channel,
    linear_q_with_scale_and_zero_point,
    linear_quantization,
    quantize_blockwise,
    quantized_linear_W8A32_without_bias,
    replace_linear_with_target,
    unpack_weights,
    w8_a16_forward,
)
from support.examples import seeded_laplace, seeded_randn, varied_rows_weight

__all__ = [
    "CheckCase",
    "Mistake",
    "CheckReport",
    "same_result",
    "run_checks",
    "expect_close",
    "expect_integers",
    "QUANTIZE_MISTAKES",
    "check_quantize",
    "DEQUANTIZE_MISTAKES",
    "check_dequantization",
    "SCALE_AND_ZERO_POINT_MISTAKES",
    "check_scale_and_zero_point",
    "SYMMETRIC_MISTAKES",
    "check_linear_q_symmetric",
    "PER_ROW_MISTAKES",
    "check_per_row_quantization",
    "W8A32_MISTAKES",
    "check_w8a32",
    "W8A16_MISTAKES",
    "check_w8_a16_forward",
    "LAYERS_TO_REPLACE_MISTAKES",
    "check_layers_to_replace",
    "MODEL_SIZE_MISTAKES",
    "check_model_size",
    "FAKE_GROUPS_MISTAKES",
    "check_fake_quantize_per_group",
    "W8A16_BYTES_MISTAKES",
    "check_w8a16_bytes",
    "UNPACK2_MISTAKES",
    "check_unpack_2bit",
    "MSE_SEARCH_MISTAKES",
    "check_mse_search",
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


def _error_shape(error: BaseException | None) -> tuple[type, str] | None:
    """An exception's type and message with names in quotes and numbers masked: ``None.to()``
    and ``None.float()`` are the same mistake, ``RuntimeError("boom")`` is not a dtype error.

    >>> _error_shape(AttributeError("'NoneType' object has no attribute 'to'"))
    (<class 'AttributeError'>, "'…' object has no attribute '…'")
    """
    if error is None:
        return None
    return type(error), re.sub(
        r"'[^']*'|\d+", lambda m: "'…'" if m[0][0] == "'" else "0", str(error)
    )


def _diagnose(
    outcomes: list[tuple[Any, BaseException | None]],
    cases: Sequence[CheckCase],
    mistakes: Sequence[Mistake],
) -> Mistake | None:
    """The first mistake whose function gives the learner's outcome on every case. Where one
    raises, the other must raise the same error (``_error_shape``): any bug can raise a
    RuntimeError, and only the mistake's own message says it is that mistake."""
    for mistake in mistakes:
        for (result, error), case in zip(outcomes, cases, strict=True):
            expected, expected_error = _call(mistake.function, case)
            if error is not None or expected_error is not None:
                if _error_shape(error) != _error_shape(expected_error):
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


# Each wrong quantizer below differs from the right one, clamp(round(r / s) + z).to(dtype), in
# one place. Casting a value outside the dtype's range (what the no-clamp mistakes do) has no
# defined result, but it is the same on one machine, which is all the diagnosis needs.


def _quantize_no_cast(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(*_range_of(dtype))


def _quantize_int32(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(*_range_of(dtype)).int()


def _quantize_int64(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(*_range_of(dtype)).long()


def _quantize_no_clamp(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).to(dtype)


def _quantize_int8_range(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(-128, 127).to(dtype)


def _quantize_int8_always(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(-128, 127).to(torch.int8)


def _quantize_cast_int8(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) + z).clamp(*_range_of(dtype)).to(torch.int8)


def _quantize_round_half_up(r, s, z, dtype=torch.int8):
    return (torch.floor(r / s + 0.5) + z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_truncate(r, s, z, dtype=torch.int8):
    return (torch.trunc(r / s) + z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_floor(r, s, z, dtype=torch.int8):
    return (torch.floor(r / s) + z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_multiply(r, s, z, dtype=torch.int8):
    return (torch.round(r * s) + z).clamp(*_range_of(dtype)).to(dtype)


def _quantize_no_zero_point(r, s, z, dtype=torch.int8):
    return torch.round(r / s).clamp(*_range_of(dtype)).to(dtype)


def _quantize_minus_zero_point(r, s, z, dtype=torch.int8):
    return (torch.round(r / s) - z).clamp(*_range_of(dtype)).to(dtype)


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

QUANTIZE_MISTAKES = (
    Mistake(
        "returns floats: it never casts to an integer dtype", _quantize_no_cast, _CAST_TO_DTYPE
    ),
    Mistake("casts with .int() (int32) instead of .to(dtype)", _quantize_int32, _CAST_TO_DTYPE),
    Mistake("casts with .long() (int64) instead of .to(dtype)", _quantize_int64, _CAST_TO_DTYPE),
    Mistake("casts without clamping first", _quantize_no_clamp, _NO_CLAMP),
    Mistake(
        "clamps to the int8 range [-128, 127] whatever the dtype", _quantize_int8_range, _USE_DTYPE
    ),
    Mistake(
        "clamps to [-128, 127] and casts to int8 whatever the dtype",
        _quantize_int8_always,
        _USE_DTYPE,
    ),
    Mistake("casts to int8 whatever the dtype", _quantize_cast_int8, _USE_DTYPE),
    Mistake(
        "rounds halves up (floor(x + 0.5))",
        _quantize_round_half_up,
        "use torch.round: it sends an exact half to the even neighbour (0.5 -> 0, 1.5 -> 2, "
        "2.5 -> 2), as PyTorch's quantizers do; floor(x + 0.5) always rounds halves up, which "
        "pushes values upwards on average.",
    ),
    Mistake(
        "cuts off the fraction (.int(), .to() or torch.trunc before adding z) instead of rounding",
        _quantize_truncate,
        _ROUND + " Casting to an integer type, or torch.trunc, drops the fraction (3.9 -> 3).",
    ),
    Mistake(
        "rounds down (torch.floor) instead of to the nearest step",
        _quantize_floor,
        _ROUND + " torch.floor always goes down (3.9 -> 3, -0.1 -> -1).",
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
        "add the zero point after rounding, round(r / s) + z: it is the integer that stands for "
        "the real number 0.",
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


def _scale_and_zero_point_mistake(**mistake) -> Callable:
    """``_scale_and_zero_point`` with one classic mistake, as a learner's function."""

    def function(tensor, dtype=torch.int8):
        return _scale_and_zero_point(tensor, dtype, **mistake)

    return function


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

SCALE_AND_ZERO_POINT_MISTAKES = (
    Mistake(
        "is the course's original code: no 0 in the range, the zero point clipped, and no "
        "floor under the scale",
        _scale_and_zero_point_mistake(
            include_min=False, include_max=False, floor_scale=False, clip_zero_point=True
        ),
        _INCLUDE_ZERO + " And " + _FLOOR_SCALE,
    ),
    Mistake(
        "does not extend the range to include 0, and has no floor under the scale",
        _scale_and_zero_point_mistake(include_min=False, include_max=False, floor_scale=False),
        _INCLUDE_ZERO + " And " + _FLOOR_SCALE,
    ),
    Mistake(
        "does not extend the range to include 0",
        _scale_and_zero_point_mistake(include_min=False, include_max=False),
        _INCLUDE_ZERO,
    ),
    Mistake(
        "does not extend the range to include 0 (it clips the zero point instead)",
        _scale_and_zero_point_mistake(include_min=False, include_max=False, clip_zero_point=True),
        _INCLUDE_ZERO,
    ),
    Mistake(
        "extends r_min to 0 but not r_max",
        _scale_and_zero_point_mistake(include_max=False),
        "an all-negative tensor needs r_max = max(r_max, 0) too, or 0 falls off the grid and "
        "the zero point leaves [q_min, q_max].",
    ),
    Mistake(
        "extends r_min to 0 but not r_max (and clips the zero point)",
        _scale_and_zero_point_mistake(include_max=False, clip_zero_point=True),
        "an all-negative tensor needs r_max = max(r_max, 0) too, or 0 falls off the grid.",
    ),
    Mistake(
        "extends r_max to 0 but not r_min",
        _scale_and_zero_point_mistake(include_min=False),
        "an all-positive tensor needs r_min = min(r_min, 0) too, or 0 falls off the grid and "
        "the zero point leaves [q_min, q_max].",
    ),
    Mistake(
        "extends r_max to 0 but not r_min (and clips the zero point)",
        _scale_and_zero_point_mistake(include_min=False, clip_zero_point=True),
        "an all-positive tensor needs r_min = min(r_min, 0) too, or 0 falls off the grid.",
    ),
    Mistake(
        "does not keep the scale above a tiny floor",
        _scale_and_zero_point_mistake(floor_scale=False),
        _FLOOR_SCALE,
    ),
    Mistake(
        "rounds the zero point down (q_min - int(r_min / scale), or math.floor of the zero "
        "point) instead of to the nearest whole number",
        _scale_and_zero_point_mistake(zero_point_of=lambda q_min, r_min, s: q_min - int(r_min / s)),
        _ROUND_ZERO_POINT,
    ),
    Mistake(
        _ROUNDS_UP,
        _scale_and_zero_point_mistake(
            zero_point_of=lambda q_min, r_min, s: q_min - math.floor(r_min / s)
        ),
        _ROUND_ZERO_POINT,
    ),
    Mistake(  # the same mistake: // floors the exact quotient, so it can differ from the above
        _ROUNDS_UP,
        _scale_and_zero_point_mistake(zero_point_of=lambda q_min, r_min, s: q_min - r_min // s),
        _ROUND_ZERO_POINT,
    ),
    Mistake(
        "cuts the fraction off the zero point (int(q_min - r_min / scale)) instead of rounding it",
        _scale_and_zero_point_mistake(zero_point_of=lambda q_min, r_min, s: int(q_min - r_min / s)),
        _ROUND_ZERO_POINT,
    ),
    Mistake(
        "does not round the zero point",
        _scale_and_zero_point_mistake(zero_point_of=lambda q_min, r_min, s: q_min - r_min / s),
        "the zero point is stored as an integer and the real number 0 must land exactly on it: "
        "round it, zero_point = q_min - round(r_min / scale).",
    ),
    Mistake(
        "adds r_min / scale to q_min instead of subtracting it",
        _scale_and_zero_point_mistake(
            zero_point_of=lambda q_min, r_min, s: q_min + round(r_min / s)
        ),
        "solve r_min = scale * (q_min - z) for z: z = q_min - r_min / scale (then round).",
    ),
    Mistake(
        "uses the int8 range whatever the dtype",
        _scale_and_zero_point_mistake(int8_range=True),
        "take q_min and q_max from torch.iinfo(dtype): uint8 runs from 0 to 255.",
    ),
    Mistake(
        "divides the range by 2**8 = 256 instead of by q_max - q_min = 255",
        _scale_and_zero_point_mistake(steps=256),
        "256 levels make 255 steps between q_min and q_max: divide by q_max - q_min.",
    ),
    Mistake(
        "returns (zero_point, scale) instead of (scale, zero_point)",
        _swapped,
        "return the scale first: return scale, zero_point.",
    ),
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
    return run_checks("Scale and zero point", function, cases, SCALE_AND_ZERO_POINT_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 04: symmetric and asymmetric mode
# ---------------------------------------------------------------------------------------------


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
            return f"expected a pair (quantized_tensor, scale), got {result!r}"
        q, scale = result
        if _is_one_number(q) and not _is_one_number(scale):
            return "the pair is the wrong way round: return (quantized_tensor, scale)"
        if isinstance(scale, torch.Tensor):
            if scale.numel() != 1:
                return f"expected one scale for the whole tensor, got shape {tuple(scale.shape)}"
            scale = scale.item()
        if not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
            return f"the scale must be a positive, finite number, got {scale!r}"
        if not all_zero and not math.isclose(scale, expected_scale, rel_tol=1e-6):
            return f"scale {scale:.10g}, expected {expected_scale:.10g}"
        return check_q(q)

    return check


def _absmax(tensor: torch.Tensor) -> float:
    return tensor.abs().max().item()


def _symmetric_mistake(
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
):
    """The right answer, or one classic mistake, depending on the keywords.

    ``steps(q_min, q_max, z)`` is what ``max|r|`` is divided by (right: ``q_max - z``);
    ``zero_point(q_min, q_max)`` the zero point (right: 0, or the midpoint if unsigned).
    """
    q_min, q_max = _range_of(dtype)
    z = (0 if q_min < 0 else (q_min + q_max + 1) // 2) if zero_point is None else zero_point
    divisor = q_max - z if steps is None else steps(q_min, q_max, z)
    scale = magnitude(tensor) / divisor
    if floor:
        scale = max(scale, torch.finfo(torch.float32).eps)
    q = rounding(tensor / scale) + z
    if clamp:
        q = q.clamp(q_min, q_max)
    return (q.to(dtype) if cast else q), scale


SYMMETRIC_MISTAKES = (
    Mistake(
        "returns floats: it never casts to the integer dtype",
        lambda t, dtype=torch.int8: _symmetric_mistake(t, dtype, cast=False),
        "finish with .to(dtype): the quantized tensor is stored as integers.",
    ),
    Mistake(
        "uses the largest value, max(r), instead of the largest magnitude, max|r|",
        lambda t, dtype=torch.int8: _symmetric_mistake(
            t, dtype, magnitude=lambda x: x.max().item()
        ),
        "take tensor.abs().max(): the grid must reach the most negative value too. With "
        "[-10, 3, 6], max(r) = 6 and -10 saturates.",
    ),
    Mistake(
        "divides by 127.5 = (q_max - q_min) / 2, as PyTorch's symmetric observers do",
        lambda t, dtype=torch.int8: _symmetric_mistake(
            t, dtype, steps=lambda q_min, q_max, z: (q_max - q_min) / 2
        ),
        "this exercise follows the course: s = max|r| / 127 for int8, so max|r| lands exactly "
        "on q_max. PyTorch's 127.5 is a valid choice too, but a different one.",
    ),
    Mistake(
        "divides by 128 = 2**7 instead of q_max = 127",
        lambda t, dtype=torch.int8: _symmetric_mistake(
            t, dtype, steps=lambda q_min, q_max, z: q_max - z + 1
        ),
        "divide by q_max - z, the number of steps from 0 up to q_max: 127 for int8 (and "
        "uint8 with its zero point 128). With 128, max|r| lands between two levels.",
    ),
    Mistake(
        "divides by 255 = q_max - q_min, the asymmetric number of steps",
        lambda t, dtype=torch.int8: _symmetric_mistake(
            t, dtype, steps=lambda q_min, q_max, z: q_max - q_min
        ),
        "the symmetric grid has its zero in the middle, so max|r| must fit into the steps "
        "from 0 to q_max: divide by q_max - z (127), not by all 255 steps. With 255 the "
        "values above max|r| / 2 saturate.",
    ),
    Mistake(
        "uses zero point 0 and s = max|r| / 255 for uint8 (the signed formula with uint8's q_max)",
        lambda t, dtype=torch.int8: _symmetric_mistake(t, dtype, zero_point=0),
        "uint8 has no negative integers: with z = 0 every negative value clamps to 0. Put the "
        "zero point in the middle, z = 128, and divide by q_max - z = 127.",
    ),
    Mistake(
        "uses the int8 formula for uint8 (zero point 0, s = max|r| / 127)",
        lambda t, dtype=torch.int8: _symmetric_mistake(
            t, dtype, zero_point=0, steps=lambda q_min, q_max, z: 127
        ),
        "uint8 has no negative integers: with z = 0 every negative value clamps to 0. Put the "
        "zero point in the middle, z = 128 (q = round(r / s) + 128).",
    ),
    Mistake(
        "uses the midpoint zero point for uint8 but divides max|r| by 255",
        lambda t, dtype=torch.int8: _symmetric_mistake(
            t, dtype, steps=lambda q_min, q_max, z: q_max
        ),
        "with z = 128 only q_max - z = 127 steps lie above 0: divide by q_max - z, or the "
        "largest values saturate.",
    ),
    Mistake(
        "does not keep the scale above a tiny floor",
        lambda t, dtype=torch.int8: _symmetric_mistake(t, dtype, floor=False),
        "an all-zero tensor has max|r| = 0, so the scale is 0 and r / s is 0 / 0 = NaN; use "
        "scale = max(scale, torch.finfo(torch.float32).eps).",
    ),
    Mistake(
        "rounds halves up (floor(x + 0.5))",
        lambda t, dtype=torch.int8: _symmetric_mistake(
            t, dtype, rounding=lambda x: torch.floor(x + 0.5)
        ),
        "use torch.round: it sends an exact half to the even neighbour (0.5 -> 0, 2.5 -> 2).",
    ),
    Mistake(
        "cuts off the fraction instead of rounding",
        lambda t, dtype=torch.int8: _symmetric_mistake(t, dtype, rounding=torch.trunc),
        "round r / s to the nearest whole step with torch.round; .to(dtype), .int() and "
        "torch.trunc drop the fraction (1.5 -> 1).",
    ),
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
    return run_checks("Symmetric quantization", function, cases, SYMMETRIC_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 05: granularity (per tensor, per channel, per group)
# ---------------------------------------------------------------------------------------------


def _per_row_reference(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``helper.linear_q_symmetric_per_channel(weight, dim=0)``."""
    return linear_q_symmetric_per_channel(weight, dim=0)


def _expect_per_row(weight: torch.Tensor) -> Callable[[Any], str | None]:
    """A check that a ``(quantized_tensor, scale)`` result is symmetric int8 quantization with
    one scale per row, the scale shaped ``(rows, 1)``. For an all-zero row any positive,
    finite scale is right (every value is 0 whatever the scale)."""
    expected_q, expected_scale = _per_row_reference(weight)
    check_q = expect_integers(expected_q)
    zero_rows = ~weight.bool().any(dim=1, keepdim=True)

    def check(result: Any) -> str | None:
        if not isinstance(result, tuple | list) or len(result) != 2:
            return f"expected a pair (quantized_tensor, scale), got {type(result).__name__}"
        q, scale = result
        if not isinstance(scale, torch.Tensor) or not scale.is_floating_point():
            kind = dtype_name(scale.dtype) if isinstance(scale, torch.Tensor) else type(scale)
            return f"the scale must be a float tensor, one value per row; got {kind}"
        if scale.shape != expected_scale.shape:
            return (
                f"the scale has shape {tuple(scale.shape)}, expected "
                f"{tuple(expected_scale.shape)}: one scale per row, kept as a column"
            )
        values = scale.double()
        bad = ~(torch.isfinite(values) & (values > 0))
        if bool(bad.any()):
            row = int(bad.flatten().nonzero()[0])
            return f"every scale must be positive and finite; row {row}'s is {values[row, 0]:.6g}"
        close = torch.isclose(values, expected_scale.double(), rtol=1e-6, atol=0.0) | zero_rows
        if not bool(close.all()):
            row = int((~close).flatten().nonzero()[0])
            return (
                f"the scale of row {row} is {values[row, 0]:.6g}, expected "
                f"{expected_scale[row, 0]:.6g}"
            )
        problem = check_q(q)
        return None if problem is None else f"quantized tensor: {problem}"

    return check


def _per_row_variant(
    weight: torch.Tensor,
    *,
    magnitude: bool = True,
    dim: int | None = 1,
    keepdim: bool = True,
    q_max: int = 127,
    floor: bool = True,
    rounding: Callable = torch.round,
    clamp: bool = True,
    cast: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The right answer, or one classic mistake, depending on the keywords (``dim=None``:
    one scale for the whole tensor)."""
    values = weight.abs() if magnitude else weight
    largest = values.amax() if dim is None else values.amax(dim=dim, keepdim=keepdim)
    scale = largest / q_max
    if floor:
        scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = rounding(weight / scale)
    if clamp:
        q = q.clamp(-128, 127)
    return (q.to(torch.int8) if cast else q), scale


def _mistake(**keywords: Any) -> Callable:
    """A wrong per-row quantizer: ``_per_row_variant`` with ``keywords``."""
    return lambda weight: _per_row_variant(weight, **keywords)


_ABSMAX_HINT = (
    "the scale must also cover the most negative value: take each row's largest *magnitude*, "
    "weight.abs().amax(dim=1, keepdim=True). A row such as [0.5, -2.0, 1.0] needs 2.0, not 1.0."
)
_KEEPDIM_HINT = (
    "pass keepdim=True: amax(dim=1) has shape (rows,), and broadcasting lines that up with the "
    "*last* dimension, so column j is divided by row j's scale (or the shapes do not fit). "
    "Shape (rows, 1) lines up with the rows."
)
_BY_128_HINT = (
    "divide by q_max = 127: the largest magnitude must land on 127, the largest int8 value. "
    "Divided by 128 it lands on 128, which int8 cannot store."
)

PER_ROW_MISTAKES = (
    Mistake(
        "takes each row's largest value instead of its largest magnitude (no abs)",
        _mistake(magnitude=False, clamp=False),
        _ABSMAX_HINT,
    ),
    Mistake(
        "takes each row's largest value instead of its largest magnitude (no abs)",
        _mistake(magnitude=False),
        _ABSMAX_HINT,
    ),
    Mistake(
        "leaves out keepdim=True, so the scales line up with the columns",
        _mistake(keepdim=False, clamp=False),
        _KEEPDIM_HINT,
    ),
    Mistake(
        "leaves out keepdim=True, so the scales line up with the columns",
        _mistake(keepdim=False),
        _KEEPDIM_HINT,
    ),
    Mistake(
        "reduces along dim 0: one scale per column instead of one per row",
        _mistake(dim=0),
        "one scale per row means taking the maximum *across the columns*: "
        "amax(dim=1, keepdim=True). amax(dim=0) runs down each column and gives one scale per "
        "column, shape (1, columns).",
    ),
    Mistake(
        "uses one scale for the whole tensor (per tensor, not per row)",
        _mistake(dim=None),
        "take the maximum of every row separately, weight.abs().amax(dim=1, keepdim=True), "
        "not the maximum of the whole tensor.",
    ),
    Mistake(
        "divides by 128 instead of q_max = 127 (and the 128 wraps around in int8)",
        _mistake(q_max=128, clamp=False),
        _BY_128_HINT,
    ),
    Mistake(
        "divides by 128 instead of q_max = 127",
        _mistake(q_max=128),
        _BY_128_HINT,
    ),
    Mistake(
        "has no floor under the scale: an all-zero row gets scale 0 and 0 / 0 = NaN",
        _mistake(floor=False),
        "floor the scale at a tiny positive number, scale.clamp(min=torch.finfo(torch.float32)"
        ".eps), as helper.py and PyTorch do: an all-zero row (a pruned channel) then quantizes "
        "to zeros.",
    ),
    Mistake(
        "cuts off the fraction instead of rounding",
        _mistake(rounding=torch.trunc),
        "round with torch.round before casting; .to(torch.int8) and torch.trunc drop the "
        "fraction (3.9 -> 3).",
    ),
    Mistake(
        "returns floats: it never casts to int8",
        _mistake(cast=False),
        "finish with .to(torch.int8): the quantized tensor is stored as integers.",
    ),
)


def _scale_as_float32(function: Callable) -> Callable:
    """``function`` with a float64 scale in its result turned into float32, so that a right
    or wrong answer computed in float64 is recognised like its float32 twin. ``wraps`` keeps
    the learner's source visible to the not-attempted test."""

    @functools.wraps(function)
    def normalized(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if isinstance(result, tuple | list) and len(result) == 2:
            q, scale = result
            if isinstance(scale, torch.Tensor) and scale.dtype == torch.float64:
                return q, scale.to(torch.float32)
        return result

    return normalized


def check_per_row_quantization(function: Callable) -> CheckReport:
    """Exercise of lesson 05: ``my_quantize_per_row(weight)`` returning ``(q, scale)``:
    symmetric int8 quantization with one scale per row (output channel), ``scale`` of shape
    ``(rows, 1)``, floored at float32's eps.

    The reference is ``linear_q_symmetric_per_channel(weight, dim=0)``. The cases tell the
    classic mistakes apart: the square test tensor (a missing ``keepdim`` runs there without
    an error), a row whose largest magnitude is negative, a realistic 4x8 weight whose rows
    have very different ranges, and a weight with an all-zero row. No value lies near a
    rounding tie, so a float64 computation gives the same integers.
    """

    test = torch.tensor(_TEST_TENSOR)
    negative = torch.tensor([[0.5, -2.0, 1.1, 0.3], [-0.1, 0.35, 0.05, -0.2]])
    realistic = varied_rows_weight(4, 8, seed=0)
    pruned = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.3, -3.0, 0.7, 2.2]])
    general = (
        "scale = weight.abs().amax(dim=1, keepdim=True) / 127, floored at "
        "torch.finfo(torch.float32).eps; q = torch.round(weight / scale).to(torch.int8)."
    )
    specs = [
        ("the lesson's test tensor, 3x3", test, general),
        (
            "a 2x4 weight whose row 0 reaches furthest on the negative side (-2.0)",
            negative,
            _ABSMAX_HINT,
        ),
        ("a realistic 4x8 weight, varied_rows_weight(4, 8, seed=0)", realistic, general),
        (
            "a 2x4 weight whose row 0 is all zeros (a pruned output channel)",
            pruned,
            "an all-zero row has absmax 0: floor the scale so that 0 / scale is 0, not NaN.",
        ),
    ]
    cases = [
        CheckCase(text, (weight,), _expect_per_row(weight), hint) for text, weight, hint in specs
    ]
    wrapped = _scale_as_float32(function) if callable(function) else function
    return run_checks("Per-row quantization", wrapped, cases, PER_ROW_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 06: weights and activations
# ---------------------------------------------------------------------------------------------

_linear = torch.nn.functional.linear  # F.linear(x, w) = x @ w.T

_COURSE_WEIGHT = ((-2.0, -1.13, 0.42), (-1.51, 0.25, 1.62), (0.23, 1.35, 2.15))


def _w8a32_course_code(x, q_w, s_w, z_w):
    return _linear(x, q_w.float()) * s_w + z_w


def _w8a32_scale_after(x, q_w, s_w, z_w):
    return _linear(x, q_w.float() - z_w) * s_w


def _w8a32_scale_after_no_zero_point(x, q_w, s_w, z_w):
    return _linear(x, q_w.float()) * s_w


def _w8a32_int8_weight(x, q_w, s_w, z_w):
    return _linear(x, q_w) * s_w


def _w8a32_q_times_s_plus_z(x, q_w, s_w, z_w):
    return _linear(x, q_w.float() * s_w + z_w)


def _w8a32_s_times_q_minus_z(x, q_w, s_w, z_w):
    return _linear(x, s_w * q_w.float() - z_w)


def _w8a32_int8_subtraction(x, q_w, s_w, z_w):
    return _linear(x, s_w * (q_w - z_w))


def _w8a32_transposed(x, q_w, s_w, z_w):
    return x @ (s_w * (q_w.float() - z_w))


def _w8a32_no_zero_point(x, q_w, s_w, z_w):
    return _linear(x, s_w * q_w.float())


def _w8a32_adds_zero_point(x, q_w, s_w, z_w):
    return _linear(x, s_w * (q_w.float() + z_w))


def _w8a32_divides(x, q_w, s_w, z_w):
    return _linear(x, (q_w.float() - z_w) / s_w)


_DEQUANTIZE_FIRST = (
    "Dequantize the weight first, in float, then multiply: "
    "F.linear(input, s_w * (q_w.float() - z_w))."
)

W8A32_MISTAKES = (
    Mistake(
        "passes the int8 weight straight to F.linear",
        _w8a32_int8_weight,
        "F.linear (and @) refuses to mix an int8 weight with a float input. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "is the course's code: F.linear(input, q_w.float()) * s_w + z_w",
        _w8a32_course_code,
        "that is right only for one per-tensor scale and z_w = 0. A per-channel scale of shape "
        "(out, 1) multiplied after F.linear broadcasts against the (batch, out) output along "
        "the wrong axis, and z_w belongs inside, subtracted from q_w. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "multiplies by the scale after F.linear",
        _w8a32_scale_after,
        "a per-channel scale has shape (out, 1): one value per row of the weight. After "
        "F.linear the output channels lie along the last axis, so (batch, out) * (out, 1) "
        "broadcasts to the wrong shape or fails. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "multiplies by the scale after F.linear and leaves out the zero point",
        _w8a32_scale_after_no_zero_point,
        "a per-channel scale of shape (out, 1) must multiply the weight's rows, before F.linear, "
        "and the zero point must be subtracted from q_w. " + _DEQUANTIZE_FIRST,
    ),
    Mistake(
        "dequantizes as q_w * s_w + z_w",
        _w8a32_q_times_s_plus_z,
        "the dequantize formula is s * (q - z): the zero point is subtracted from q, in integer "
        "steps, before scaling. q * s + z only agrees when z = 0.",
    ),
    Mistake(
        "multiplies before subtracting (s_w * q_w - z_w)",
        _w8a32_s_times_q_minus_z,
        "the scale multiplies the difference: s_w * (q_w.float() - z_w), with parentheses.",
    ),
    Mistake(
        "subtracts the zero point in int8",
        _w8a32_int8_subtraction,
        "convert first, q_w.float() - z_w: int8 arithmetic wraps around silently "
        "(127 - (-5) = 132 is stored as -124).",
    ),
    Mistake(
        "uses the weight transposed",
        _w8a32_transposed,
        "the weight is (out_features, in_features): F.linear(input, w) computes input @ w.T. "
        "input @ w (without .T) mixes up the two axes.",
    ),
    Mistake(
        "leaves out the zero point",
        _w8a32_no_zero_point,
        "subtract the zero point from q_w before scaling: s_w * (q_w.float() - z_w).",
    ),
    Mistake(
        "adds the zero point",
        _w8a32_adds_zero_point,
        "subtract it: q_w = z_w must stand for the real weight 0.",
    ),
    Mistake(
        "divides by the scale",
        _w8a32_divides,
        "multiply by the scale to dequantize: one step of q_w is worth s_w in real units.",
    ),
)


def _w8a32_cases() -> list[CheckCase]:
    """The cases of ``check_w8a32``: inputs that tell the classic mistakes apart."""

    course = torch.tensor([1.0, 2.0, 3.0])  # the course's input, 1-D
    weight = torch.tensor(_COURSE_WEIGHT)
    wide = torch.tensor([[0.5, -1.2, 2.0], [-0.03, 0.02, 0.01], [1.5, 0.4, -0.9], [0.2, 0.1, 0.3]])
    batch = torch.tensor([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])
    q_a, s_a, z_a = linear_quantization(weight)  # asymmetric: z_a = -5, q_a reaches 127
    q_g, s_g, z_g = quantize_blockwise(wide, (1, 3))  # one scale and zero point per row
    specs = [
        ("the course example: input [1, 2, 3], one per-tensor scale", course)
        + (*linear_q_symmetric(weight), 0),
        ("the course example with per-channel scales of shape (3, 1)", course)
        + (*linear_q_symmetric_per_channel(weight, dim=0), 0),
        ("a batch of 2, a 4x3 weight, per-channel scales of shape (4, 1)", batch)
        + (*linear_q_symmetric_per_channel(wide, dim=0), 0),
        (f"the course weight, asymmetric: z_w = {z_a} and q_w reaches 127", course[None])
        + (q_a, s_a, z_a),
        ("a batch of 2, a 4x3 weight, per-channel scales and zero points (4, 1)", batch)
        + (q_g, s_g.to(torch.float32), z_g),
    ]
    general = "y = F.linear(input, s_w * (q_w.float() - z_w)): dequantize first, then multiply."
    return [
        CheckCase(
            text,
            (x, q, s, z),
            expect_close(quantized_linear_W8A32_without_bias(x, q, s, z)),
            general,
        )
        for text, x, q, s, z in specs
    ]


def check_w8a32(function: Callable) -> CheckReport:
    """Exercise of lesson 06: ``my_w8a32(input, q_w, s_w, z_w)``, a linear layer without bias
    whose weight is stored as integers, with a per-tensor or per-channel scale.

    The reference is ``quantized_linear_W8A32_without_bias``. The cases: the course example
    (1-D input, per-tensor scale), the same weight per channel (a scale applied after
    ``F.linear`` broadcasts to 3x3), a batch with a non-square weight (a transposed weight or a
    late scale fails outright), an asymmetric weight whose ``q_w - z_w`` leaves int8, and
    per-channel zero points.
    """
    return run_checks("W8A32 linear layer", function, _w8a32_cases(), W8A32_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 07: an 8-bit linear layer (W8A16)
# ---------------------------------------------------------------------------------------------

# The learner writes w8_a16_forward(weight, input, scales, bias=None): int8 weight (out, in),
# float32 scales (out,) as W8A16LinearLayer stores them, a float input of any dtype. The
# bfloat16 and float16 cases use small dyadic numbers, so every float32 or float64 way of
# computing them is exact and rounds to the same 16-bit result.


def _w8a16_int8_weight(weight, input, scales, bias=None):
    output = _linear(input, weight) * scales
    return output if bias is None else output + bias


def _w8a16_scales_column(weight, input, scales, bias=None):
    output = _linear(input.float(), weight.float()) * scales[:, None]
    if bias is not None:
        output = output + bias.float()
    return output.to(input.dtype)


def _w8a16_no_bias(weight, input, scales, bias=None):
    return (_linear(input.float(), weight.float()) * scales).to(input.dtype)


def _w8a16_bias_always_add(weight, input, scales, bias=None):
    return (_linear(input.float(), weight.float()) * scales + bias).to(input.dtype)


def _w8a16_bias_always_float(weight, input, scales, bias=None):
    return (_linear(input.float(), weight.float()) * scales + bias.float()).to(input.dtype)


def _w8a16_divides(weight, input, scales, bias=None):
    output = _linear(input.float(), weight.float()) / scales
    if bias is not None:
        output = output + bias.float()
    return output.to(input.dtype)


def _w8a16_scales_inputs(weight, input, scales, bias=None):
    output = _linear(input.float(), weight.float() * scales)
    if bias is not None:
        output = output + bias.float()
    return output.to(input.dtype)


def _w8a16_not_transposed(weight, input, scales, bias=None):
    output = (input.float() @ weight.float()) * scales
    if bias is not None:
        output = output + bias.float()
    return output.to(input.dtype)


def _w8a16_float32_result(weight, input, scales, bias=None):
    output = _linear(input.float(), weight.float()) * scales
    return output if bias is None else output + bias.float()


def _w8a16_input_dtype(weight, input, scales, bias=None):
    output = _linear(input, weight.to(input.dtype)) * scales
    if bias is not None:
        output = output + bias
    return output.to(input.dtype)


def _w8a16_course_code(weight, input, scales, bias=None):
    output = _linear(input, weight.to(input.dtype)) * scales
    return output if bias is None else output + bias


_W8A16_RECIPE = (
    "Multiply in float32, then scale each output by its own row's scale and add the bias: "
    "(F.linear(input.float(), weight.float()) * scales + bias).to(input.dtype)."
)
_BIAS_OPTIONAL = (
    "bias=None means the layer has no bias: add it only `if bias is not None`. " + _W8A16_RECIPE
)

W8A16_MISTAKES = (
    Mistake(
        "passes the int8 weight straight to F.linear",
        _w8a16_int8_weight,
        "F.linear (and @) refuses to mix an int8 weight with a float input: convert it with "
        "weight.float() first. " + _W8A16_RECIPE,
    ),
    Mistake(
        "multiplies the output by scales of shape (out, 1)",
        _w8a16_scales_column,
        "after the product the output channels lie along the LAST axis of the (batch, out) "
        "output, so the scales must keep their shape (out,). A (out, 1) scale broadcasts a "
        "single token's output to (out, out), and fails for a batch. " + _W8A16_RECIPE,
    ),
    Mistake(
        "leaves out the bias",
        _w8a16_no_bias,
        "add the bias after scaling: it is a float value per output, not scaled. " + _BIAS_OPTIONAL,
    ),
    Mistake(
        "adds the bias even when there is none (bias=None)", _w8a16_bias_always_add, _BIAS_OPTIONAL
    ),
    Mistake(
        "adds the bias even when there is none (bias=None)",
        _w8a16_bias_always_float,
        _BIAS_OPTIONAL,
    ),
    Mistake(
        "divides by the scales",
        _w8a16_divides,
        "multiply: one step of the int8 weight is worth `scale` in real units, so the product "
        "of integers is `1 / scale` times too large until you multiply by the scale.",
    ),
    Mistake(
        "multiplies the weight by the scales along its columns (the input features)",
        _w8a16_scales_inputs,
        "weight * scales broadcasts the (out,) scales along the weight's last axis, its "
        "in_features: scale o multiplies column o. Each scale belongs to a ROW: either "
        "weight.float() * scales[:, None] before the product, or the output times scales after.",
    ),
    Mistake(
        "multiplies by the weight without transposing it",
        _w8a16_not_transposed,
        "the weight is (out_features, in_features): F.linear(input, w) computes input @ w.T. "
        "input @ w mixes up the two axes (and fails unless the weight is square).",
    ),
    Mistake(
        "returns float32 for a bfloat16 or float16 input",
        _w8a16_float32_result,
        "a layer must hand the next layer the dtype it was given: end with `.to(input.dtype)`.",
    ),
    Mistake(
        "multiplies in the input's dtype (weight.to(input.dtype)): in float16 the product "
        "overflows to inf",
        _w8a16_input_dtype,
        "the integer product x @ W_int8.T is 1 / scale times larger than the output, and "
        "float16 stops at 65504: it becomes inf before the scale can shrink it. Multiply in "
        "float32 (input.float(), weight.float()), then cast the result to input.dtype.",
    ),
    Mistake(
        "is the course's code: F.linear(input, weight.to(input.dtype)) * scales + bias",
        _w8a16_course_code,
        "two problems: in float16 the integer product overflows to inf before the scales "
        "shrink it, and float32 scales turn a bfloat16 result into float32. " + _W8A16_RECIPE,
    ),
)


def _expect_w8a16(
    weight: torch.Tensor, input: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None
) -> Callable[[Any], str | None]:
    """A check against ``helper.w8_a16_forward``: the input's dtype and shape, finite values,
    and each output within a few roundings of its dtype, measured against the sum of the
    magnitudes that make it up (so the order of the float operations does not matter)."""

    expected = w8_a16_forward(weight, input, scales, bias)
    magnitude = _linear(input.double().abs(), weight.double().abs()) * scales.double()
    if bias is not None:
        magnitude = magnitude + bias.double().abs().reshape(-1)
    tolerance = max(2 * torch.finfo(input.dtype).eps, 1e-5) * magnitude + 1e-6

    def check(result: Any) -> str | None:
        if not isinstance(result, torch.Tensor):
            return f"expected a tensor, got {type(result).__name__}"
        if result.dtype != expected.dtype:
            return (
                f"expected dtype {dtype_name(expected.dtype)} (the input's), got "
                f"{dtype_name(result.dtype)}"
            )
        if result.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(result.shape)}"
        if not bool(torch.isfinite(result).all()):
            bad = int((~torch.isfinite(result)).sum())
            return f"{bad} of the {result.numel()} outputs are inf or NaN; all should be finite"
        if bool(((result.double() - expected.double()).abs() > tolerance).any()):
            return _worst(result, expected)
        return None

    return check


def _w8a16_cases() -> list[CheckCase]:
    """The cases of ``check_w8_a16_forward``: inputs that tell the classic mistakes apart."""

    q_course, s_course = linear_q_symmetric_per_channel(torch.tensor(_COURSE_WEIGHT), dim=0)
    q_4x3 = torch.tensor(
        [[127, -40, 12], [-3, 64, -127], [90, 90, -90], [1, -127, 2]], dtype=torch.int8
    )
    s_4x3 = torch.tensor([0.0125, 0.03, 0.002, 0.1])
    dyadic_scales = torch.tensor([2**-6, 2**-5, 2**-8, 2**-4])
    q_big = torch.tensor(
        [[127, 127, 127], [-128, 64, 3], [5, -7, 100], [100, 100, -100]], dtype=torch.int8
    )
    batch = torch.tensor([[1.0, -2.0, 0.5], [0.25, 3.0, -1.5]])
    specs = [
        (
            "the course's 3x3 weight, scales per row, input [[1, 2, 3]], no bias",
            (q_course, torch.tensor([[1.0, 2.0, 3.0]]), s_course.reshape(-1), None),
        ),
        (
            "a batch of 2, a 4x3 weight, a bias of shape (4,)",
            (q_4x3, batch, s_4x3, torch.tensor([0.5, -1.0, 0.25, 2.0])),
        ),
        (
            "a 3-D input (2 sequences of 2 tokens), as a model passes it, bias (1, 4)",
            (q_4x3, torch.stack([batch, batch.flip(0)]), s_4x3, torch.tensor([[1.0, 0, -1, 3]])),
        ),
        (
            "a bfloat16 input and bias (1, 4), float32 scales",
            (
                q_4x3,
                batch.to(torch.bfloat16),
                dyadic_scales,
                torch.tensor([[0.5, -1.0, 0.25, 2.0]], dtype=torch.bfloat16),
            ),
        ),
        (
            "a float16 input whose product with the int8 weight exceeds 65504 before scaling",
            (
                q_big,
                torch.tensor([[200.0, 180.0, 220.0], [1.0, -2.0, 0.5]], dtype=torch.float16),
                torch.tensor([2**-10, 2**-9, 2**-7, 2**-10]),
                torch.tensor([1.0, -0.5, 0.25, 0.0], dtype=torch.float16),
            ),
        ),
    ]
    general = (
        "y = (input @ weight.T) * scales + bias, computed in float32 and returned in "
        "input.dtype; compare with helper.w8_a16_forward."
    )
    return [CheckCase(text, args, _expect_w8a16(*args), general) for text, args in specs]


def check_w8_a16_forward(function: Callable) -> CheckReport:
    """Exercise of lesson 07: ``my_w8_a16_forward(weight, input, scales, bias=None)``, the
    forward pass of a W8A16 layer: int8 ``weight`` (out, in), float32 ``scales`` (out,),
    ``bias`` of shape (out,) or (1, out) or None, and a float input of any dtype.

    The reference is ``helper.w8_a16_forward``. The cases: the course's weight per row with
    one token and no bias (a (out, 1) scale gives a 3x3 output), a batch with a 4x3 weight (a
    transposed weight or column scales fail), a 3-D input, a bfloat16 input (the result must
    stay bfloat16) and a float16 input whose integer product overflows float16.
    """
    return run_checks("W8A16 forward", function, _w8a16_cases(), W8A16_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 08: replacing the linear layers of a model
# ---------------------------------------------------------------------------------------------

# A learner writes my_layers_to_replace(module, module_name_to_exclude): the dotted names of the
# nn.Linear layers that replace_linear_with_target would replace, without replacing anything.
# The reference is that function itself, run on a copy. The models are built on the meta
# device: no memory, no weights, and the learner's random number generator is left alone.
# Results are lists of strings, which same_result does not compare, so this checker finds the
# learner's mistake with its own comparison (_same_names) after run_checks.


class _TinyBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc_in = torch.nn.Linear(4, 8)
        self.act = torch.nn.ReLU()
        self.fc_out = torch.nn.Linear(8, 4)


class _TinyLM(torch.nn.Module):
    """Like the lesson's tiny model: an embedding, two linears, a block, an lm_head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.linear_1 = torch.nn.Linear(4, 4)
        self.linear_2 = torch.nn.Linear(4, 4, bias=False)
        self.block = _TinyBlock()
        self.lm_head = torch.nn.Linear(4, 10, bias=False)


class _EncoderLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(4, 4)
        self.out_proj = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 4)
        )


class _Encoder(torch.nn.Module):
    """Two encoder layers with nested linears (layers.0.out_proj, layers.0.mlp.2, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([_EncoderLayer(), _EncoderLayer()])
        self.pooler = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 3)


class _TextClassifier(torch.nn.Module):
    """A head like DistilBERT's: a pre_classifier layer before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.features = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)
        )
        self.pre_classifier = torch.nn.Linear(4, 4)
        self.dropout = torch.nn.Dropout(0.1)
        self.classifier = torch.nn.Linear(4, 2)


class _Stack(torch.nn.Module):
    """Twelve linear layers in a ModuleList: layers.0 ... layers.11, then a head."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(12)])
        self.head = torch.nn.Linear(4, 2)


def _linear_paths(module) -> list[tuple[str, torch.nn.Module]]:
    return [(p, m) for p, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


def _ancestors(path: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b', 'a.b.c']: the dotted paths from the top down to ``path``."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _layers_top_level(module, module_name_to_exclude):
    return [
        name
        for name, child in module.named_children()
        if isinstance(child, torch.nn.Linear) and name not in module_name_to_exclude
    ]


def _layers_recursive(module, exclude, prefix="", own_names=False, leaves=False):
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if name in exclude or path in exclude:
            continue
        if isinstance(child, torch.nn.Linear) or (leaves and not list(child.children())):
            names.append(name if own_names else path)
        else:
            names += _layers_recursive(child, exclude, path + ".", own_names, leaves)
    return names


def _layers_own_names(module, module_name_to_exclude):
    return _layers_recursive(module, module_name_to_exclude, own_names=True)


def _layers_own_names_short_exclusion(module, module_name_to_exclude):
    names = []
    for name, child in module.named_children():
        if name in module_name_to_exclude:
            continue
        if isinstance(child, torch.nn.Linear):
            names.append(name)
        else:
            names += _layers_own_names_short_exclusion(child, module_name_to_exclude)
    return names


def _layers_every_leaf(module, module_name_to_exclude):
    return _layers_recursive(module, module_name_to_exclude, leaves=True)


def _layers_no_exclusion(module, module_name_to_exclude):
    return [path for path, _ in _linear_paths(module)]


def _layers_count(module, module_name_to_exclude):
    return len(_layers_recursive(module, module_name_to_exclude))


def _layers_where(rule):
    """A learner's walk over named_modules() that keeps a linear layer unless ``rule`` says so."""

    def function(module, module_name_to_exclude):
        exclude = list(module_name_to_exclude)
        return [path for path, _ in _linear_paths(module) if not rule(path, exclude)]

    return function


_layers_substring = _layers_where(lambda path, ex: any(e in path for e in ex))
_layers_prefix = _layers_where(lambda path, ex: any(path.startswith(e) for e in ex))
_layers_full_path = _layers_where(lambda path, ex: path in ex)
_layers_paths_and_parents = _layers_where(lambda path, ex: any(a in ex for a in _ancestors(path)))
_layers_own_name = _layers_where(lambda path, ex: path.split(".")[-1] in ex)
_layers_name_or_path = _layers_where(lambda path, ex: path in ex or path.split(".")[-1] in ex)
_layers_parts = _layers_where(lambda path, ex: any(part in ex for part in path.split(".")))

_SKIP_RULE = (
    "At every level, skip a child (and everything inside it) when its own name or its dotted "
    "path is in the list: `if name in module_name_to_exclude or path in "
    "module_name_to_exclude: continue`."
)

_OWN_NAMES = "returns each layer's own name (fc_in) instead of its dotted path (block.fc_in)"
_OWN_NAMES_HINT = (
    "build the path on the way down, prefix + name, with prefix = parent's path + '.'; or "
    "take the names named_modules() gives. Short names are ambiguous: every encoder layer "
    "has its own out_proj."
)

LAYERS_TO_REPLACE_MISTAKES = (
    Mistake(
        "returns how many layers would be replaced, not their names",
        _layers_count,
        "return the list of dotted names itself; len() of it is the count.",
    ),
    Mistake(
        "only looks at the model's direct children: it never looks inside a child such as `block`",
        _layers_top_level,
        "a layer inside a block is a child of the block, not of the model. When a child is not "
        "an nn.Linear, call your function on it too (recursion), or walk "
        "module.named_modules(), which visits every level.",
    ),
    Mistake(_OWN_NAMES, _layers_own_names, _OWN_NAMES_HINT),
    Mistake(_OWN_NAMES, _layers_own_names_short_exclusion, _OWN_NAMES_HINT),
    Mistake(
        "lists every module without children (embeddings, activations, norms), not only the "
        "nn.Linear layers",
        _layers_every_leaf,
        "only nn.Linear layers are replaced: test isinstance(child, nn.Linear).",
    ),
    Mistake(
        "ignores module_name_to_exclude",
        _layers_no_exclusion,
        "leave out the excluded layers. " + _SKIP_RULE,
    ),
    Mistake(
        "matches the names in the list as substrings: 'classifier' also excludes "
        "'pre_classifier', and 'layers.1' also excludes 'layers.10'",
        _layers_substring,
        "on two strings, `a in b` tests for a substring. Compare whole names: `name in "
        "module_name_to_exclude` on the list itself tests membership. " + _SKIP_RULE,
    ),
    Mistake(
        "matches the names in the list as prefixes of the paths (startswith): 'out_proj' never "
        "matches a nested layer, and 'layers.1' also excludes 'layers.10'",
        _layers_prefix,
        "compare whole names, not the start of a string. " + _SKIP_RULE,
    ),
    Mistake(
        "compares only each linear layer's full dotted path with the list: neither a short name "
        "such as 'out_proj' nor an excluded container such as 'block' leaves anything out",
        _layers_full_path,
        _SKIP_RULE + " 'lm_head' and 'out_proj' then work at any depth, 'layers.1' picks one "
        "layer, and 'block' keeps everything inside block.",
    ),
    Mistake(
        "compares dotted paths only: a short name such as 'out_proj' never matches a nested layer",
        _layers_paths_and_parents,
        "the replace functions compare a module's own name too, so one short name excludes it "
        "at any depth (every encoder layer's out_proj). " + _SKIP_RULE,
    ),
    Mistake(
        "compares only each linear layer's own name: an excluded container ('block') or a "
        "dotted path ('layers.1') leaves nothing out",
        _layers_own_name,
        _SKIP_RULE + " Excluding 'block' keeps block.fc_in and block.fc_out in float.",
    ),
    Mistake(
        "does not skip the layers inside an excluded module: excluding 'block' should keep "
        "block.fc_in and block.fc_out in float",
        _layers_name_or_path,
        "when a child's name or path is in the list, skip it without looking inside. " + _SKIP_RULE,
    ),
    Mistake(
        "matches short names only: a dotted path such as 'layers.1' never matches",
        _layers_parts,
        "the list may also hold dotted paths, to pick one module among several with the same "
        "short name. " + _SKIP_RULE,
    ),
)


def _expected_layers(module, module_name_to_exclude) -> list[str]:
    """What ``helper.replace_linear_with_target`` replaces, found by running it on a copy."""

    replaced = replace_linear_with_target(
        copy.deepcopy(module), W8A16LinearLayer, module_name_to_exclude
    )
    return layer_names(replaced, W8A16LinearLayer)


def _is_names(result: Any) -> bool:
    return isinstance(result, list | tuple | set | frozenset) and all(
        isinstance(name, str) for name in result
    )


def _shown(names: Sequence[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:6])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 6 else "")


def _expect_names(expected: Sequence[str]) -> Callable[[Any], str | None]:
    """A check that the result holds exactly the names in ``expected``, in any order."""

    def check(result: Any) -> str | None:
        if not _is_names(result):
            return (
                f"expected a list of dotted names (strings), got {type(result).__name__} {result!r}"
            )
        names = list(result)
        twice = sorted({name for name in names if names.count(name) > 1})
        missing = [name for name in expected if name not in names]
        extra = [name for name in names if name not in expected]
        problems = []
        if missing:
            problems.append(f"missing {_shown(missing)}")
        if extra:
            problems.append(f"should not list {_shown(dict.fromkeys(extra))}")
        if twice:
            problems.append(f"lists {_shown(twice)} more than once")
        return "; ".join(problems) or None

    return check


def _same_names(a: tuple[Any, BaseException | None], b: tuple[Any, BaseException | None]) -> bool:
    """Two outcomes ``(result, error)`` agree: the same names in any order, or the same value,
    or the same kind of exception."""
    (result_a, error_a), (result_b, error_b) = a, b
    if error_a is not None or error_b is not None:
        return type(error_a) is type(error_b)
    if _is_names(result_a) and _is_names(result_b):
        return sorted(result_a) == sorted(result_b)
    return same_result(result_a, result_b)


def _layers_to_replace_cases() -> list[CheckCase]:
    """The cases of ``check_layers_to_replace``: models that tell the classic mistakes apart."""
    with torch.device("meta"):
        tiny, encoder, text, stack = _TinyLM(), _Encoder(), _TextClassifier(), _Stack()
    specs = [
        ("the lesson's tiny model, excluding ['lm_head']", tiny, ["lm_head"]),
        (
            "the tiny model, excluding ['block'] (a module that holds two linear layers)",
            tiny,
            ["block"],
        ),
        (
            "a two-layer encoder, excluding ['out_proj', 'head'] (every layer has an out_proj)",
            encoder,
            ["out_proj", "head"],
        ),
        (
            "a text classifier with pre_classifier and classifier, excluding ['classifier']",
            text,
            ["classifier"],
        ),
        (
            "a stack of 12 layers, excluding ['layers.1', 'head'] (a dotted path)",
            stack,
            ["layers.1", "head"],
        ),
        (
            "the text classifier, excluding ['lm_head'], a name it does not have",
            text,
            ["lm_head"],
        ),
    ]
    general = (
        "Walk the model like replace_linear_with_target: skip a child whose name or dotted path "
        "is in the list (with everything inside it), list it if it is an nn.Linear, and "
        "otherwise look inside it."
    )
    return [
        CheckCase(text, (model, exclude), _expect_names(_expected_layers(model, exclude)), general)
        for text, model, exclude in specs
    ]


def check_layers_to_replace(function: Callable) -> CheckReport:
    """Exercise of lesson 08: ``my_layers_to_replace(module, module_name_to_exclude)``, the
    dotted names of the ``nn.Linear`` layers that ``replace_linear_with_target`` would replace
    (in any order).

    The reference is ``replace_linear_with_target`` itself, run on a copy. The cases: the
    lesson's tiny model (nested linears, a top-level lm_head), the same model with a whole
    block excluded, an encoder whose layers each have an ``out_proj`` (a short name that must
    match at any depth), a classifier with a ``pre_classifier`` (a substring of
    ``classifier``), ``layers.1`` among twelve layers (a dotted path, and a prefix of
    ``layers.10``), and an exclusion that matches nothing.
    """
    cases = _layers_to_replace_cases()
    report = run_checks("Layers to replace", function, cases)
    if report.status == "failed":
        outcomes = [_call(function, case) for case in cases]
        report.mistake = next(
            (
                mistake
                for mistake in LAYERS_TO_REPLACE_MISTAKES
                if all(
                    _same_names(outcome, _call(mistake.function, case))
                    for outcome, case in zip(outcomes, cases, strict=True)
                )
            ),
            None,
        )
    return report


# ---------------------------------------------------------------------------------------------
# Lesson 09: a real model, offline
# ---------------------------------------------------------------------------------------------

# The learner writes my_model_size(model): the bytes of every parameter and buffer, each tensor
# once, as models.model_size(model).total counts them. The cases are tiny modules built here,
# so the checker runs in milliseconds (no MiniLM).


class _TiedTinyLM(torch.nn.Module):
    """An embedding table (10 tokens x 4) and an output layer that shares its weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.lm_head = torch.nn.Linear(4, 10, bias=False)
        self.lm_head.weight = self.embed.weight  # tied: one tensor, two names


class _WithPositions(torch.nn.Module):
    """A linear layer and a non-persistent int64 buffer, like BERT's ``position_ids``."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(3, 2)
        self.register_buffer("positions", torch.arange(8).expand((1, -1)), persistent=False)


def _size_cases_models() -> list[tuple[str, torch.nn.Module, str]]:

    with torch.random.fork_rng(devices=[]):  # leave the learner's random numbers alone
        torch.manual_seed(0)  # the values do not matter, only the shapes and dtypes
        return _size_models(W8A16LinearLayer)


def _size_models(W8A16LinearLayer: type) -> list[tuple[str, torch.nn.Module, str]]:
    return [
        (
            "a float32 nn.Linear(4, 2): 8 weights and 2 biases",
            torch.nn.Linear(4, 2),
            "4 bytes per float32 number: count bytes, tensor.numel() * tensor.element_size().",
        ),
        (
            "nn.Linear(8, 4), then a W8A16LinearLayer(4, 3) whose int8 weights, scales and bias "
            "are buffers",
            torch.nn.Sequential(torch.nn.Linear(8, 4), W8A16LinearLayer(4, 3)),
            "a W8A16LinearLayer has no parameters: its int8 weights, scales and bias are "
            "buffers. Add model.buffers() to model.parameters().",
        ),
        (
            "a float16 nn.Linear(6, 4), then a bfloat16 W8A16LinearLayer(4, 3)",
            torch.nn.Sequential(
                torch.nn.Linear(6, 4, dtype=torch.float16),
                W8A16LinearLayer(4, 3, dtype=torch.bfloat16),
            ),
            "the bytes per element depend on the dtype: 2 for float16 and bfloat16, 1 for int8, "
            "4 for float32: tensor.element_size().",
        ),
        (
            "a tiny language model whose output layer shares the embedding's weight (tied)",
            _TiedTinyLM(),
            "the two layers share one tensor, which takes memory once. model.parameters() gives "
            "it once; a state dict or a loop over every module's own tensors gives it twice.",
        ),
        (
            "a layer with a buffer that the state dict does not hold (persistent=False)",
            _WithPositions(),
            "a non-persistent buffer is not saved in the state dict, but it takes memory all "
            "the same: count model.buffers(), not model.state_dict().",
        ),
    ]


def _expect_bytes(expected: int) -> Callable[[Any], str | None]:
    """A check that the result is the number ``expected`` (an int, a float or a 1-element
    tensor with that value)."""

    def check(result: Any) -> str | None:
        value = (
            result.item() if isinstance(result, torch.Tensor) and result.numel() == 1 else result
        )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"expected a number of bytes, got {type(result).__name__}"
        if not math.isclose(float(value), expected, rel_tol=1e-9, abs_tol=1e-9):
            return f"got {float(value):g}, expected {expected} bytes"
        return None

    return check


def _tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    return list(model.parameters()) + list(model.buffers())


def _size_elements(model):
    return sum(t.numel() for t in _tensors(model))


def _size_parameter_elements(model):
    return sum(p.numel() for p in model.parameters())


def _size_parameters_only(model):
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _size_four_bytes(model):
    return 4 * sum(t.numel() for t in _tensors(model))


def _size_parameters_four_bytes(model):
    return 4 * sum(p.numel() for p in model.parameters())


def _size_state_dict(model):
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _size_every_module_recursively(model):
    return sum(
        t.numel() * t.element_size()
        for module in model.modules()
        for t in list(module.parameters()) + list(module.buffers())
    )


def _size_each_module_once(model):
    return sum(
        t.numel() * t.element_size()
        for module in model.modules()
        for t in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
    )


def _size_right(model):
    return sum(t.numel() * t.element_size() for t in _tensors(model))


def _size_megabytes(model):
    return _size_right(model) / 1e6


def _size_mebibytes(model):
    return _size_right(model) / 2**20


def _size_bits(model):
    return 8 * _size_right(model)


_BYTES = (
    "Add up tensor.numel() * tensor.element_size() over list(model.parameters()) + "
    "list(model.buffers())."
)

MODEL_SIZE_MISTAKES = (
    Mistake(
        "counts the parameters (numbers), not their bytes, and leaves out the buffers",
        _size_parameter_elements,
        "a parameter count (22.7 M for MiniLM) is not a size: each number takes "
        "tensor.element_size() bytes, and the buffers take memory too. " + _BYTES,
    ),
    Mistake(
        "counts numbers (elements), not bytes",
        _size_elements,
        "each element takes tensor.element_size() bytes: 4 for float32, 2 for bfloat16, 1 "
        "for int8. " + _BYTES,
    ),
    Mistake(
        "assumes 4 bytes per number and leaves out the buffers",
        _size_parameters_four_bytes,
        "4 bytes is right for float32 only, and a W8A16 layer keeps its int8 weights in "
        "buffers. " + _BYTES,
    ),
    Mistake(
        "assumes 4 bytes for every number",
        _size_four_bytes,
        "that is float32 only: int8 takes 1 byte, float16 and bfloat16 2, int64 8. Use "
        "tensor.element_size().",
    ),
    Mistake(
        "leaves out the buffers",
        _size_parameters_only,
        "a W8A16LinearLayer keeps its int8 weights, scales and bias as buffers (an int8 "
        "tensor cannot be a Parameter), so the quantized layers count as 0 bytes. Add "
        "model.buffers().",
    ),
    Mistake(
        "adds up the state dict",
        _size_state_dict,
        "a state dict lists a shared (tied) tensor under each of its names, and leaves out "
        "non-persistent buffers, which still take memory. Use model.parameters() and "
        "model.buffers(), which give each tensor once.",
    ),
    Mistake(
        "counts the tensors of every module recursively, so nested tensors count several times",
        _size_every_module_recursively,
        "model.modules() includes the model itself and every submodule, and module.parameters() "
        "already descends into submodules: each tensor is counted once per module above it. "
        "Call model.parameters() and model.buffers() once, on the model.",
    ),
    Mistake(
        "counts a tensor shared by two layers (tied weights) twice",
        _size_each_module_once,
        "the embedding and the output layer hold the same tensor: it takes memory once. "
        "model.parameters() gives it once.",
    ),
    Mistake(
        "returns megabytes, not bytes",
        _size_megabytes,
        "return the number of bytes; format_bytes(n) or n / 1e6 is for printing.",
    ),
    Mistake(
        "returns mebibytes (MiB, bytes / 2**20), not bytes",
        _size_mebibytes,
        "return the number of bytes; divide only when you print.",
    ),
    Mistake(
        "counts bits, not bytes",
        _size_bits,
        "element_size() is already in bytes: do not multiply by 8.",
    ),
)


def _model_size_cases() -> list[CheckCase]:
    """The cases of ``check_model_size``: small modules that tell the classic mistakes apart.
    (``models`` is imported only here: importing it adds real weights to the explorer's menu.)"""
    from support.models import model_size

    return [
        CheckCase(description, (model,), _expect_bytes(model_size(model).total), hint)
        for description, model, hint in _size_cases_models()
    ]


def check_model_size(function: Callable) -> CheckReport:
    """Exercise of lesson 09: ``my_model_size(model)``, the bytes of a model's parameters and
    buffers, each tensor once (the reference is ``models.model_size(model).total``).

    The cases: a float32 ``nn.Linear`` (bytes, not numbers), a model with a
    ``W8A16LinearLayer`` (its int8 weights are buffers), float16 and bfloat16 layers (bytes
    per element by dtype), tied weights (one tensor, two names) and a non-persistent buffer
    (not in the state dict). A number equal to the answer passes, as an int, a float or a
    1-element tensor.
    """
    return run_checks("Model size in bytes", function, _model_size_cases(), MODEL_SIZE_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 10: accuracy you can see
# ---------------------------------------------------------------------------------------------

# The learner writes my_fake_quantize(weight, n_bits, group_size): symmetric quantization at
# n_bits with one scale per group of group_size consecutive weights of each row, dequantized
# at once, so the result is a float tensor of the weight's shape (what fake_quantize_linears
# puts back into a model). Every case avoids exact rounding ties, so float32 and float64 ways
# of computing it give the same levels.


def _fake_groups_reference(weight: torch.Tensor, n_bits: int, group_size: int) -> torch.Tensor:
    """``helper.fake_quantize(weight, n_bits, "per_group", group_size)``."""

    return fake_quantize(weight, n_bits, "per_group", group_size=group_size)


def _fake_groups_variant(
    weight: torch.Tensor,
    n_bits: int,
    group_size: int,
    *,
    q_max: Callable[[int], int] = lambda n: 2 ** (n - 1) - 1,
    magnitude: bool = True,
    blocks: str = "groups",
    keepdim: bool = True,
    floor: bool = True,
    rounding: Callable = torch.round,
    clamp: bool = True,
    dequantize: bool = True,
    reshape_back: bool = True,
) -> torch.Tensor:
    """The right answer, or one classic mistake, depending on the keywords. ``blocks`` is
    ``"groups"`` (right), ``"columns"`` (groups cut down the columns), ``"rows"`` (one scale
    per row) or ``"tensor"`` (one scale)."""
    top = q_max(n_bits)
    if blocks == "columns":
        grouped = weight.T.reshape(-1, group_size)
    elif blocks == "rows":
        grouped = weight.reshape(weight.shape[0], -1)
    elif blocks == "tensor":
        grouped = weight.reshape(1, -1)
    else:
        grouped = weight.reshape(-1, group_size)
    values = grouped.abs() if magnitude else grouped
    scale = values.amax(dim=-1, keepdim=keepdim) / top
    if floor:
        scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = rounding(grouped / scale)
    if clamp:
        q = q.clamp(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)
    result = q * scale if dequantize else q
    if not reshape_back:
        return result
    if blocks == "columns":
        return result.reshape(weight.shape[1], weight.shape[0]).T
    return result.reshape(weight.shape)


def _fake_groups_mistake(**keywords: Any) -> Callable:
    """A wrong answer: ``_fake_groups_variant`` with ``keywords``."""
    return lambda weight, n_bits, group_size: _fake_groups_variant(
        weight, n_bits, group_size, **keywords
    )


_Q_MAX_HINT = (
    "the largest level of a signed n-bit integer is q_max = 2 ** (n_bits - 1) - 1: 127 at 8 "
    "bits, 7 at 4 bits, 1 at 2 bits. The scale is each group's largest magnitude / q_max, and "
    "the clamp range is [-2 ** (n_bits - 1), q_max]."
)

FAKE_GROUPS_MISTAKES = (
    *(
        Mistake(
            "always divides by 127: it ignores n_bits (the course's helper does the same)",
            _fake_groups_mistake(q_max=lambda n: 127, clamp=clamp),
            _Q_MAX_HINT + " With 127 at every bit width, a 4-bit or 2-bit weight keeps 8-bit "
            "precision, and the accuracy you measure is not the low-bit one.",
        )
        for clamp in (False, True)
    ),
    *(
        Mistake(
            "takes q_max = 2 ** n_bits - 1, the largest *unsigned* n-bit number",
            _fake_groups_mistake(q_max=lambda n: 2**n - 1, clamp=clamp),
            _Q_MAX_HINT + " 2 ** n_bits - 1 (15 at 4 bits) is the top of an unsigned range; "
            "symmetric signed levels reach half of that.",
        )
        for clamp in (False, True)
    ),
    Mistake(
        "takes q_max = 2 ** (n_bits - 1), one level too many (like dividing by 128 at 8 bits)",
        _fake_groups_mistake(q_max=lambda n: 2 ** (n - 1)),
        _Q_MAX_HINT,
    ),
    Mistake(
        "takes q_max = 2 ** (n_bits - 1), one level too many, and does not clamp",
        _fake_groups_mistake(q_max=lambda n: 2 ** (n - 1), clamp=False),
        _Q_MAX_HINT,
    ),
    Mistake(
        "takes each group's largest value instead of its largest magnitude (no abs)",
        _fake_groups_mistake(magnitude=False),
        "the scale must also cover the most negative value: take each group's largest "
        "*magnitude*, grouped.abs().amax(dim=-1, keepdim=True).",
    ),
    Mistake(
        "takes each group's largest value instead of its largest magnitude (no abs)",
        _fake_groups_mistake(magnitude=False, clamp=False),
        "the scale must also cover the most negative value: take each group's largest "
        "*magnitude*, grouped.abs().amax(dim=-1, keepdim=True).",
    ),
    Mistake(
        "cuts the groups down the columns instead of along each row",
        _fake_groups_mistake(blocks="columns"),
        "a group is group_size consecutive weights of one *row* (the input features of one "
        "output): weight.reshape(-1, group_size) cuts each row into groups, because a row's "
        "elements are next to each other in memory. weight.T.reshape(...) groups columns.",
    ),
    Mistake(
        "uses one scale per row: it ignores group_size",
        _fake_groups_mistake(blocks="rows"),
        "cut every row into groups of group_size first, grouped = weight.reshape(-1, "
        "group_size), and take the largest magnitude of each group (dim=-1).",
    ),
    Mistake(
        "uses one scale for the whole tensor",
        _fake_groups_mistake(blocks="tensor"),
        "every group needs its own scale: grouped.abs().amax(dim=-1, keepdim=True) on "
        "grouped = weight.reshape(-1, group_size), not the whole tensor's maximum.",
    ),
    Mistake(
        "leaves out keepdim=True, so the scales line up with the wrong axis",
        _fake_groups_mistake(keepdim=False),
        "pass keepdim=True: amax(dim=-1) has shape (groups,), and broadcasting lines that up "
        "with the *last* axis, the elements of a group. Shape (groups, 1) gives every group "
        "its own scale.",
    ),
    Mistake(
        "has no floor under the scale: an all-zero group gets scale 0 and 0 / 0 = NaN",
        _fake_groups_mistake(floor=False),
        "floor the scale at a tiny positive number, scale.clamp(min=torch.finfo(torch.float32)"
        ".eps): a group of zeros then comes back as zeros.",
    ),
    Mistake(
        "cuts off the fraction instead of rounding",
        _fake_groups_mistake(rounding=torch.trunc),
        "round to the nearest level with torch.round; torch.trunc and .to(torch.int8) drop "
        "the fraction (0.9 -> 0).",
    ),
    Mistake(
        "returns the integer levels: it never dequantizes",
        _fake_groups_mistake(dequantize=False),
        "fake quantization returns real values: multiply the rounded levels back by their "
        "scale, q * scale, so the result can replace the float weight.",
    ),
    Mistake(
        "returns the integer levels as int8: it never dequantizes",
        lambda weight, n_bits, group_size: _fake_groups_variant(
            weight, n_bits, group_size, dequantize=False
        ).to(torch.int8),
        "fake quantization returns real values: multiply the rounded levels back by their "
        "scale, q * scale, so the result can replace the float weight.",
    ),
    Mistake(
        "returns the groups, shape (groups, group_size), not the weight's shape",
        _fake_groups_mistake(reshape_back=False),
        "finish with .reshape(weight.shape): the result must fit where the weight was.",
    ),
)


def _float64_as_float32(function: Callable) -> Callable:
    """``function`` with a float64 result turned into float32, so that an answer computed in
    float64 is recognised like its float32 twin. ``wraps`` keeps the learner's source
    visible to the not-attempted test."""

    @functools.wraps(function)
    def normalized(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if isinstance(result, torch.Tensor) and result.dtype == torch.float64:
            return result.to(torch.float32)
        return result

    return normalized


def check_fake_quantize_per_group(function: Callable) -> CheckReport:
    """Exercise of lesson 10: ``my_fake_quantize(weight, n_bits, group_size)`` returning the
    weight after a symmetric round trip at ``n_bits`` with one scale per group of
    ``group_size`` consecutive weights of each row: a float tensor of the weight's shape.

    The reference is ``helper.fake_quantize(weight, n_bits, "per_group", group_size)``. The
    cases tell the classic mistakes apart: a 2x8 weight in groups of 4 at 4 bits (a group
    whose largest magnitude is negative; 4 groups of 4, so a missing ``keepdim`` runs without
    an error), a realistic 4x8 weight at 2 bits (where ``q_max`` is 1), the test tensor at 8
    bits in groups of 3 (one group per row), and a weight with an all-zero group at 3 bits.
    """

    small = torch.tensor(
        [
            [0.31, -0.92, 0.18, 0.55, 0.07, 0.12, -0.04, 0.09],
            [-0.66, 0.23, 0.41, -0.13, 1.37, -0.48, 0.86, 0.29],
        ]
    )
    realistic = varied_rows_weight(4, 8, seed=1)
    test = torch.tensor(_TEST_TENSOR)
    pruned = torch.tensor(
        [[0.0, 0.0, 0.0, 0.52, -0.37, 0.14], [0.21, -0.08, 0.33, 0.6, 0.45, -0.7]]
    )
    general = (
        "grouped = weight.reshape(-1, group_size); scale = grouped.abs().amax(dim=-1, "
        "keepdim=True) / (2 ** (n_bits - 1) - 1), floored at eps; q = torch.round(grouped / "
        "scale).clamp(-2 ** (n_bits - 1), 2 ** (n_bits - 1) - 1); return (q * scale)"
        ".reshape(weight.shape)."
    )
    specs = [
        ("a 2x8 weight, 4 bits, groups of 4", (small, 4, 4), general),
        (
            "a realistic 4x8 weight, varied_rows_weight(4, 8, seed=1), 2 bits, groups of 4",
            (realistic, 2, 4),
            "at 2 bits q_max = 2 ** (2 - 1) - 1 = 1: each weight becomes -scale, 0 or scale.",
        ),
        ("the lesson's test tensor, 8 bits, groups of 3 (one per row)", (test, 8, 3), general),
        (
            "a 2x6 weight whose first group is all zeros, 3 bits, groups of 3",
            (pruned, 3, 3),
            "an all-zero group has largest magnitude 0: floor the scale so that 0 / scale is "
            "0, not NaN.",
        ),
    ]
    cases = [
        CheckCase(text, args, expect_close(_fake_groups_reference(*args)), hint)
        for text, args, hint in specs
    ]
    wrapped = _float64_as_float32(function) if callable(function) else function
    return run_checks("Fake quantization per group", wrapped, cases, FAKE_GROUPS_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 11: save and load
# ---------------------------------------------------------------------------------------------

# The learner writes my_w8a16_bytes(in_features, out_features, bias=True, dtype=torch.float32):
# the bytes of a W8A16LinearLayer's tensors, which is what the layer adds to a safetensors
# file (without the header). The reference builds the layer on the meta device (no memory,
# no random numbers) and adds up its state dict. Every wrong function below differs from the
# right sum, out * in + 4 * out + (out * dtype.itemsize if bias else 0), in one place.


def _layer_bytes_reference(in_features, out_features, bias, dtype) -> int:

    with torch.device("meta"):
        layer = W8A16LinearLayer(in_features, out_features, bias=bias, dtype=dtype)
    return sum(t.numel() * t.element_size() for t in layer.state_dict().values())


def _expect_layer_bytes(expected: int) -> Callable[[Any], str | None]:
    """A check that the result is the number of bytes ``expected`` (an int, a whole float or
    a 1-element tensor)."""

    def check(result: Any) -> str | None:
        value = result
        if isinstance(result, torch.Tensor):
            if result.numel() != 1:
                return f"expected one number, got a tensor of shape {tuple(result.shape)}"
            value = result.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"expected a number of bytes, got {type(result).__name__}"
        if not math.isclose(float(value), expected, rel_tol=0, abs_tol=1e-6):
            shown = f"{int(value):,}" if float(value).is_integer() else f"{float(value):,.6g}"
            return f"got {shown}, expected {expected:,} bytes"
        return None

    return check


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _bytes_mistake(weights=1, scales=4, bias=None, bias_when_absent=False, rows=True):
    """A W8A16 byte count with one thing changed: ``weights`` and ``scales`` are bytes per
    number (``None``: the layer's dtype), ``bias`` the bytes per bias number (``None``: the
    layer's dtype, 0: left out), ``rows=False`` one scale per input column."""

    def function(in_features, out_features, has_bias=True, dtype=torch.float32):
        size = _itemsize(dtype)
        total = in_features * out_features * (size if weights is None else weights)
        total += (out_features if rows else in_features) * (size if scales is None else scales)
        if has_bias or bias_when_absent:
            total += out_features * (size if bias is None else bias)
        return total

    return function


def _bytes_weights_only(in_features, out_features, bias=True, dtype=torch.float32):
    return in_features * out_features


def _bytes_one_scale(in_features, out_features, bias=True, dtype=torch.float32):
    return in_features * out_features + 4 + (out_features * _itemsize(dtype) if bias else 0)


def _bytes_float_linear(in_features, out_features, bias=True, dtype=torch.float32):
    return _itemsize(dtype) * out_features * (in_features + (1 if bias else 0))


def _bytes_numbers(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * (in_features + 1 + (1 if bias else 0))


def _bytes_four_each(in_features, out_features, bias=True, dtype=torch.float32):
    return 4 * _bytes_numbers(in_features, out_features, bias, dtype)


def _bytes_right(in_features, out_features, bias=True, dtype=torch.float32):
    bias_bytes = out_features * _itemsize(dtype) if bias else 0
    return in_features * out_features + 4 * out_features + bias_bytes


def _bytes_bits(in_features, out_features, bias=True, dtype=torch.float32):
    return 8 * _bytes_right(in_features, out_features, bias, dtype)


def _bytes_kilobytes(in_features, out_features, bias=True, dtype=torch.float32):
    return _bytes_right(in_features, out_features, bias, dtype) / 1000


def _bytes_kibibytes(in_features, out_features, bias=True, dtype=torch.float32):
    return _bytes_right(in_features, out_features, bias, dtype) / 1024


_LAYER_BYTES = (
    "A W8A16LinearLayer holds int8_weights (out, in) at 1 byte each, scales (out,) in float32 "
    "at 4 bytes each whatever the dtype, and a bias (1, out) in the layer's dtype "
    "(dtype.itemsize bytes each), or no bias."
)

W8A16_BYTES_MISTAKES = (
    Mistake(
        "counts the int8 weights only",
        _bytes_weights_only,
        "the scales and the bias are saved too: without its scales nobody can dequantize the "
        "weights. " + _LAYER_BYTES,
    ),
    Mistake(
        "forgets the scales",
        _bytes_mistake(scales=0),
        "one float32 scale per output row is saved with the int8 weights (4 * out_features "
        "bytes): the file is useless without them.",
    ),
    Mistake(
        "forgets the bias",
        _bytes_mistake(bias=0),
        "the bias stays in float and is saved with the layer: out_features * dtype.itemsize "
        "bytes when bias=True.",
    ),
    Mistake(
        "counts the scales in the layer's dtype",
        _bytes_mistake(scales=None),
        "W8A16LinearLayer keeps its scales in float32 whatever the layer's dtype (a bfloat16 "
        "scale can make a weight wrap from 127 to -128): 4 bytes per scale, also in a "
        "bfloat16 or float16 layer.",
    ),
    Mistake(
        "counts the bias in float32 whatever the layer's dtype",
        _bytes_mistake(bias=4),
        "the bias is kept in the layer's dtype: 2 bytes per number in a bfloat16 or float16 "
        "layer. torch.float32.itemsize is 4, torch.bfloat16.itemsize is 2.",
    ),
    Mistake(
        "counts the bias as int8",
        _bytes_mistake(bias=1),
        "only the weights are quantized; the bias stays in the layer's float dtype "
        "(dtype.itemsize bytes per number).",
    ),
    Mistake(
        "counts a bias even when bias=False",
        _bytes_mistake(bias_when_absent=True),
        "a layer built with bias=False has no bias tensor at all (layer.bias is None): "
        "nothing to save.",
    ),
    Mistake(
        "counts one scale for the whole layer",
        _bytes_one_scale,
        "W8A16LinearLayer quantizes per output row: one float32 scale per row, "
        "4 * out_features bytes.",
    ),
    Mistake(
        "counts one scale per input column",
        _bytes_mistake(rows=False),
        "the scales are per output row: their shape is (out_features,), so "
        "4 * out_features bytes, not 4 * in_features.",
    ),
    Mistake(
        "counts the weights in the layer's float dtype, as if they were not quantized",
        _bytes_mistake(weights=None),
        "the point of the layer: its weights are int8, 1 byte each.",
    ),
    Mistake(
        "counts the float nn.Linear that the layer replaces",
        _bytes_float_linear,
        "that is the layer before quantization. " + _LAYER_BYTES,
    ),
    Mistake(
        "counts numbers (elements), not bytes",
        _bytes_numbers,
        "each number takes bytes according to its dtype. " + _LAYER_BYTES,
    ),
    Mistake(
        "counts 4 bytes for every number",
        _bytes_four_each,
        "4 bytes is float32 only: the weights are int8 (1 byte), and a bfloat16 or float16 "
        "bias takes 2 bytes per number.",
    ),
    Mistake(
        "returns bits, not bytes",
        _bytes_bits,
        "an int8 number is 1 byte: do not multiply by 8.",
    ),
    Mistake(
        "returns kilobytes (bytes / 1000), not bytes",
        _bytes_kilobytes,
        "return the number of bytes; divide only when you print.",
    ),
    Mistake(
        "returns kibibytes (bytes / 1024), not bytes",
        _bytes_kibibytes,
        "return the number of bytes; divide only when you print.",
    ),
)

# (in_features, out_features, bias, dtype, description, hint)
_LAYER_BYTES_CASES = (
    (64, 64, True, torch.float32, "the digits model's hidden1", _LAYER_BYTES),
    (
        64,
        32,
        True,
        torch.float32,
        "the digits model's hidden2 (64 inputs, 32 outputs)",
        "the weights are (out, in); the scales and the bias have one number per output, "
        "out_features of them.",
    ),
    (
        32,
        10,
        False,
        torch.float32,
        "without a bias",
        "with bias=False the layer has no bias tensor: only weights and scales.",
    ),
    (
        384,
        1536,
        True,
        torch.bfloat16,
        "a MiniLM feed-forward layer in bfloat16",
        "in a bfloat16 layer the bias takes 2 bytes per number (dtype.itemsize), but the "
        "scales stay float32: 4 bytes each.",
    ),
    (
        16,
        8,
        False,
        torch.float16,
        "float16, without a bias",
        "the weights are int8 in every layer; the scales float32; no bias here.",
    ),
)


def _w8a16_bytes_cases() -> list[CheckCase]:
    """The cases of ``check_w8a16_bytes``: shapes, biases and dtypes that tell the mistakes
    apart."""
    cases = []
    for in_features, out_features, bias, dtype, what, hint in _LAYER_BYTES_CASES:
        expected = _layer_bytes_reference(in_features, out_features, bias, dtype)
        description = (
            f"W8A16LinearLayer({in_features}, {out_features}, bias={bias}, "
            f"dtype={dtype_name(dtype)}), {what}"
        )
        cases.append(
            CheckCase(
                description,
                (in_features, out_features, bias, dtype),
                _expect_layer_bytes(expected),
                hint,
            )
        )
    return cases


def check_w8a16_bytes(function: Callable) -> CheckReport:
    """Exercise of lesson 11: ``my_w8a16_bytes(in_features, out_features, bias=True,
    dtype=torch.float32)``, the bytes of a ``W8A16LinearLayer``'s tensors (what it adds to a
    safetensors file, header aside): ``out * in`` int8 weights, ``4 * out`` for the float32
    scales, ``out * dtype.itemsize`` for the bias if there is one.

    The cases: the digits model's two hidden layers (in and out differ in the second), a layer
    without a bias, a bfloat16 layer with a bias and a float16 layer without one. A number
    equal to the answer passes, as an int, a float or a 1-element tensor.
    """
    return run_checks(
        "Bytes of a W8A16 layer", function, _w8a16_bytes_cases(), W8A16_BYTES_MISTAKES
    )


# ---------------------------------------------------------------------------------------------
# Lesson 12: weight packing
# ---------------------------------------------------------------------------------------------


# The learner writes my_unpack_2bit(packed): a 1-D uint8 tensor of bytes, each holding four
# 2-bit values with the first value in the lowest bits (the course's order), back to a 1-D
# uint8 tensor four times as long. The reference is helper.unpack_weights(packed, 2).


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


def _unpack2_mistake(**keywords: Any) -> Callable:
    """A wrong answer: ``_unpack2_variant`` with ``keywords``."""
    return lambda packed: _unpack2_variant(packed, **keywords)


_UNPACK2_RECIPE = (
    "value i of a byte is (byte >> 2 * i) & 3 for i = 0, 1, 2, 3: shift it down to the lowest "
    "two bits, then keep only those."
)

UNPACK2_MISTAKES = (
    Mistake(
        "takes the values from the highest bits first",
        _unpack2_mistake(shifts=(6, 4, 2, 0)),
        "packing puts the *first* value in the lowest bits (bits 0 and 1), so it needs no shift "
        "at all; the last one sits in bits 6 and 7. 177 = 0b10_11_00_01 unpacks to [1, 0, 3, "
        "2], read from the right. " + _UNPACK2_RECIPE,
    ),
    Mistake(
        "masks with 2, the number of bits, instead of 0b11 = 3",
        _unpack2_mistake(mask=2),
        "the mask must have a 1 in each bit to keep: two bits means 0b11 = 2**2 - 1 = 3. "
        "2 = 0b10 keeps only the higher of the two bits.",
    ),
    Mistake(
        "masks with 2**bits = 4 instead of 2**bits - 1 = 3",
        _unpack2_mistake(mask=4),
        "4 = 0b100 keeps one bit just *above* the value. The mask for two bits is "
        "0b11 = 2**2 - 1 = 3.",
    ),
    Mistake(
        "masks with 15 (0b1111, four bits): the next value's bits come along",
        _unpack2_mistake(mask=15),
        "a 2-bit value needs a 2-bit mask, 0b11 = 3; 0b1111 is the mask for 4-bit values.",
    ),
    Mistake(
        "forgets the mask: each value keeps the bits of the values above it",
        _unpack2_mistake(mask=None),
        "after the shift, the values that were above it are still there: 177 >> 2 is "
        "0b101100 = 44, not 0. Finish with & 3 (0b11) to keep only the lowest two bits. "
        "Only the last value, shifted by 6, needs no mask.",
    ),
    Mistake(
        "shifts by the position (0, 1, 2, 3) instead of the position times 2 bits",
        _unpack2_mistake(shifts=(0, 1, 2, 3)),
        "value i starts at bit 2 * i, because each value before it takes two bits: shift by "
        "0, 2, 4 and 6.",
    ),
    Mistake(
        "gets only the first value of each byte right, the others come out 0: it shifts "
        "left, or masks before it shifts",
        _unpack2_mistake(mask_first=True),
        "move the value down to the lowest two bits *first*, with a right shift, byte >> 2 * i, "
        "and mask *after*: (byte & 3) >> 2 * i and (byte << 2 * i) & 3 are 0 for every i > 0.",
    ),
    Mistake(
        "puts all first values first, then all second values, and so on (torch.cat) instead "
        "of keeping each byte's four values together",
        _unpack2_mistake(layout="concatenate"),
        "the four values of byte 0 come first, then the four of byte 1: put the four columns "
        "side by side with torch.stack(columns, dim=-1), which gives shape (n, 4), then "
        ".reshape(-1).",
    ),
    Mistake(
        "returns one row of four values per byte, shape (n, 4), instead of one flat tensor",
        _unpack2_mistake(layout="columns"),
        "finish with .reshape(-1) (or .flatten()): the result is a 1-D tensor with four values "
        "per byte, byte 0's first.",
    ),
    Mistake(
        "returns int64 values instead of uint8",
        _unpack2_mistake(dtype=torch.int64),
        "keep every operand uint8: shifts written as torch.tensor([0, 2, 4, 6]) are int64 and "
        "turn the result into int64 (8 bytes per value, the opposite of packing). Make them "
        "with dtype=torch.uint8, or finish with .to(torch.uint8).",
    ),
)


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
    concatenated instead of interleaved fail) and all 256 bytes.
    """
    return run_checks("Unpack 2-bit values", function, _unpack2_cases(), UNPACK2_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Lesson 13: beyond min-max
# ---------------------------------------------------------------------------------------------

# The learner writes my_mse_search(tensor, n_bits, ratios): the clipping range alpha = c *
# max|r| (one range for the whole tensor) whose round trip on the course's symmetric grid,
# q = clamp(round(r / s), -q_max, q_max) with s = alpha / q_max, has the smallest MSE among the
# candidate ratios c. The reference is helper.clipping_mse_curve; a learner's range passes if
# it is a candidate whose MSE equals the best (to 1e-5: float32 and float64 sums may order a
# near-tie differently; the cases have none). Every wrong function below differs from the
# right search in one place.


def _mse_search_variant(
    tensor: torch.Tensor,
    n_bits: int,
    ratios: Sequence[float],
    *,
    q_max: Callable[[int], int] = lambda n: 2 ** (n - 1) - 1,
    q_low: Callable[[int], int] | None = None,
    magnitude: bool = True,
    rounding: bool = True,
    clamp: bool = True,
    dequantize: bool = True,
    error: Callable[[torch.Tensor], torch.Tensor] = lambda e: e.square().mean(),
    pick: Callable[[torch.Tensor], int] = lambda mse: int(mse.argmin()),
    answer: str = "range",
) -> Any:
    """The right search, or one classic mistake, depending on the keywords."""
    r = tensor  # float32, as a learner computes it
    top = q_max(n_bits)
    low = -top if q_low is None else q_low(n_bits)
    peak = (r.abs() if magnitude else r).max()
    errors = []
    for ratio in ratios:
        scale = ratio * peak / top
        q = r / scale
        if rounding:
            q = torch.round(q)
        if clamp:
            q = q.clamp(low, top)
        back = q * scale if dequantize else q
        errors.append(error(back - r))
    errors = torch.stack(errors)
    best = pick(errors)
    if answer == "ratio":
        return float(ratios[best])
    if answer == "mse":
        return float(errors[best])
    return float(ratios[best] * peak)


def _mse_search_mistake(**keywords: Any) -> Callable:
    """A wrong answer: ``_mse_search_variant`` with ``keywords``."""
    return lambda tensor, n_bits, ratios: _mse_search_variant(tensor, n_bits, ratios, **keywords)


_SEARCH_Q_MAX_HINT = (
    "the symmetric grid's largest level is q_max = 2 ** (n_bits - 1) - 1 (127 at 8 bits, 7 at "
    "4, 1 at 2), and the scale of a range alpha is s = alpha / q_max."
)

MSE_SEARCH_MISTAKES = (
    Mistake(
        "always divides by 127: it ignores n_bits",
        _mse_search_mistake(q_max=lambda n: 127),
        _SEARCH_Q_MAX_HINT + " With 127 at every bit width the search measures 8-bit errors "
        "and finds the 8-bit range.",
    ),
    Mistake(
        "takes q_max = 2 ** n_bits - 1, the largest *unsigned* n-bit number",
        _mse_search_mistake(q_max=lambda n: 2**n - 1),
        _SEARCH_Q_MAX_HINT + " 2 ** n_bits - 1 (15 at 4 bits) is the top of an unsigned range.",
    ),
    Mistake(
        "takes q_max = 2 ** (n_bits - 1), one level too many",
        _mse_search_mistake(q_max=lambda n: 2 ** (n - 1)),
        _SEARCH_Q_MAX_HINT,
    ),
    Mistake(
        "measures only the rounding error (it never clamps, or compares with the clipped "
        "tensor), so the smallest range always wins",
        _mse_search_mistake(clamp=False),
        "clamp the levels to [-q_max, q_max]: that is what clips the values beyond alpha, and "
        "compare the round trip with the *original* tensor, so the clipping error counts. "
        "Without it a smaller range only ever looks better.",
    ),
    Mistake(
        "never rounds, so only the clipping error counts and min-max always wins",
        _mse_search_mistake(rounding=False),
        "round to the nearest level, torch.round(tensor / s), before clamping: the rounding "
        "error is the half of the trade-off that a larger range makes worse.",
    ),
    Mistake(
        "clamps to q_min = -2 ** (n_bits - 1) on the negative side: its grid is not symmetric",
        _mse_search_mistake(q_low=lambda n: -(2 ** (n - 1))),
        "clamp to [-q_max, q_max]: a clipped value saturates at -alpha or alpha. The extra "
        "code -2 ** (n_bits - 1) stays unused, as with min-max (where no value reaches it).",
    ),
    Mistake(
        "scales the ratios by the largest value instead of the largest magnitude (no abs)",
        _mse_search_mistake(magnitude=False),
        "the candidate ranges are ratio * tensor.abs().max(): a tensor whose largest "
        "magnitude is negative needs the abs.",
    ),
    Mistake(
        "compares the integer levels with the real values: it never dequantizes (q * s)",
        _mse_search_mistake(dequantize=False),
        "dequantize before measuring: back = q * s, then the error is back - tensor.",
    ),
    Mistake(
        "measures the mean absolute error instead of the mean squared error",
        _mse_search_mistake(error=lambda e: e.abs().mean()),
        "the error to minimise is the MSE, ((back - tensor) ** 2).mean(): it weighs the "
        "large errors of clipped values more than the absolute error does.",
    ),
    Mistake(
        "picks the range with the largest MSE instead of the smallest",
        _mse_search_mistake(pick=lambda mse: int(mse.argmax())),
        "keep the candidate with the *smallest* MSE (argmin, or min over (mse, range) pairs).",
    ),
    Mistake(
        "returns the best ratio, not the clipping range",
        _mse_search_mistake(answer="ratio"),
        "return the range itself, alpha = best_ratio * tensor.abs().max(), in the tensor's "
        "units: that is what r_range and quantize_clipped take.",
    ),
    Mistake(
        "returns the smallest MSE, not the clipping range that gives it",
        _mse_search_mistake(answer="mse"),
        "remember which range gave the smallest MSE and return that range, not the MSE.",
    ),
)


def _search_cases() -> list[tuple[str, tuple, str]]:
    """(description, (tensor, n_bits, ratios), hint): every case has one clear best ratio."""

    tenths = [k / 10 for k in range(1, 11)]
    outlier = seeded_randn(400, seed=11)
    outlier[7] = 9.0
    negative = seeded_laplace(20000, seed=4)
    negative[3] = -12.0
    uniform = torch.linspace(-3.0, 3.0, 241)
    general = (
        "for each ratio: alpha = ratio * tensor.abs().max(), s = alpha / q_max, back = "
        "torch.round(tensor / s).clamp(-q_max, q_max) * s, mse = ((back - tensor) ** 2).mean()"
        "; return the alpha with the smallest mse."
    )
    return [
        (
            "400 normal values and one outlier (9.0), 4 bits, ratios 0.1 to 1.0",
            (outlier, 4, tenths),
            general,
        ),
        (
            "the same tensor at 2 bits (levels -alpha, 0, alpha)",
            (outlier, 2, tenths),
            "at 2 bits q_max = 1: every value becomes -alpha, 0 or alpha.",
        ),
        (
            "20,000 Laplace values whose largest magnitude is negative (-12.0), 2 bits",
            (negative, 2, [k / 20 for k in range(1, 21)]),
            "the candidate ranges are ratios of the largest *magnitude*, here 12.",
        ),
        (
            "241 evenly spread values from -3 to 3, 8 bits: nothing to clip",
            (uniform, 8, [0.5, 0.8, 0.9, 0.95, 1.0]),
            "values spread evenly have no rare extremes: clipping them only adds error, so "
            "the best range is min-max, 1.0 * max|r| = 3.",
        ),
        (
            "a 2-D weight, varied_rows_weight(8, 16, seed=2), 3 bits, one range for all",
            (varied_rows_weight(8, 16, seed=2), 3, tenths),
            "take the largest magnitude of the whole tensor, whatever its shape.",
        ),
    ]


def _search_mse(tensor: torch.Tensor, n_bits: int, absmax: float) -> float:
    """The MSE of ``tensor``'s round trip clipped at ``absmax`` (helper, float64 mean)."""

    back = fake_quantize_clipped(tensor, tuple(tensor.shape), absmax, n_bits=n_bits)
    return (back - tensor).double().square().mean().item()


def _expect_best_range(tensor: torch.Tensor, n_bits: int, ratios: Sequence[float]):
    """A check that the result is the candidate range with the smallest MSE."""

    block = tuple(tensor.shape)
    peak = absmax_minmax(tensor, block).item()
    curve = clipping_mse_curve(tensor, block, ratios, n_bits=n_bits).flatten()
    best = int(curve.argmin())
    expected, best_mse = ratios[best] * peak, _search_mse(tensor, n_bits, ratios[best] * peak)

    def check(result: Any) -> str | None:
        if isinstance(result, torch.Tensor):
            if result.numel() != 1:
                return (
                    f"expected one number (the clipping range), got a tensor of shape "
                    f"{tuple(result.shape)}"
                )
            result = result.item()
        if isinstance(result, bool) or not isinstance(result, numbers.Real):
            return f"expected a number (the clipping range), got {type(result).__name__}"
        got = float(result)
        if math.isclose(got, expected, rel_tol=1e-6):
            return None
        candidate = any(math.isclose(got, c * peak, rel_tol=1e-6) for c in ratios)
        if candidate and math.isfinite(got):
            mse = _search_mse(tensor, n_bits, got)
            if mse <= best_mse * (1 + 1e-5):
                return None  # a tie, broken the other way
            return (
                f"range {got:.6g} has MSE {mse:.6g}, but ratio {ratios[best]:g} gives range "
                f"{expected:.6g} with MSE {best_mse:.6g}"
            )
        return (
            f"got {got:.6g}, which is not one of the candidate ranges ratio * max|r| "
            f"(max|r| = {peak:.6g}); expected {expected:.6g} (ratio {ratios[best]:g})"
        )

    return check


def check_mse_search(function: Callable) -> CheckReport:
    """Exercise of lesson 13: ``my_mse_search(tensor, n_bits, ratios)`` returning the
    clipping range ``alpha = ratio * max|r|`` (one number) whose round trip on the symmetric
    grid ``-q_max..q_max`` has the smallest MSE among the candidate ``ratios``.

    The cases tell the classic mistakes apart: an outlier at 4 and at 2 bits, a Laplace tensor
    whose largest magnitude is negative, evenly spread values at 8 bits (where min-max wins)
    and a 2-D weight at 3 bits.
    """
    cases = [
        CheckCase(text, args, _expect_best_range(*args), hint)
        for text, args, hint in _search_cases()
    ]
    return run_checks("MSE-optimal clipping range", function, cases, MSE_SEARCH_MISTAKES)
