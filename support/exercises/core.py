"""The mechanism behind every "Try it" checker: cases, known mistakes and the report.

A checker runs the learner's function on reference cases (``CheckCase``) and reports, case by
case, what is right and what is wrong (``CheckReport``). It also knows the classic mistakes of
its exercise, written out as small wrong functions (``Mistake``): when the learner's function
gives exactly what one of them gives, the report names that mistake and gives its hint,
instead of a hint about the case that happened to catch it. ``run_checks`` does all of that;
``expect_close`` and ``expect_integers`` are the usual checks of a result, and
``mistakes_from_rows`` turns a table of mistakes into ``Mistake`` objects. The lesson modules
beside this one (``lesson01`` ... ``lesson13``) hold each lesson's cases, mistakes and
``check_*`` function.

Imports point one way: this module imports ``helper`` (for ``dtype_name``) and the lesson
modules import this one, ``helper`` and ``support.examples``; ``helper`` never imports them.
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

from helper import dtype_name

__all__ = [
    "CheckCase",
    "Mistake",
    "mistakes_from_rows",
    "CheckReport",
    "same_result",
    "run_checks",
    "expect_close",
    "expect_integers",
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


def mistakes_from_rows(
    rows: Sequence[tuple[str, Callable | dict[str, Any], str]],
    variant: Callable | None = None,
) -> tuple[Mistake, ...]:
    """The ``Mistake`` of each row ``(description, how, hint)`` of a table, in its order.

    ``how`` is the wrong function itself, or a dict of keywords: then the function is
    ``functools.partial(variant, **how)``, where ``variant`` is the lesson's right answer with
    keywords that change one thing or two.

    >>> def add(x, n=1):
    ...     return x + n
    >>> rows = [("adds 2", {"n": 2}, "add 1"), ("doubles", lambda x: 2 * x, "add 1")]
    >>> [(m.description, m.function(10)) for m in mistakes_from_rows(rows, add)]
    [('adds 2', 12), ('doubles', 20)]
    """
    return tuple(
        Mistake(
            description,
            functools.partial(variant, **how) if isinstance(how, dict) else how,
            hint,
        )
        for description, how, hint in rows
    )


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
# Shared by several lessons
# ---------------------------------------------------------------------------------------------

_linear = torch.nn.functional.linear  # F.linear(x, w) = x @ w.T

# The weight of lesson 06's example, used again by lesson 07's checker.
_COURSE_WEIGHT = ((-2.0, -1.13, 0.42), (-1.51, 0.25, 1.62), (0.23, 1.35, 2.15))


def _range_of(dtype: torch.dtype) -> tuple[int, int]:
    """``(q_min, q_max)``: the smallest and largest value of an integer dtype."""
    info = torch.iinfo(dtype)
    return info.min, info.max
