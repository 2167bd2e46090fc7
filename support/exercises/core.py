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

import _thread
import ast
import copy
import functools
import inspect
import math
import numbers
import re
import reprlib
import signal
import textwrap
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from helper import dtype_name

__all__ = [
    "TIME_LIMIT_SECONDS",
    "shown",
    "loops_over_elements",
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
    #: positions of arguments the exercise asks the function to change (lesson 08's module)
    changes: tuple[int, ...] = ()


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
    known mistake the learner's function reproduces, if any. When none does, the report shows
    ``diagnosis`` (the first failing case: its input, what was expected and what came back) and
    ``recipe`` (the lesson's method), never a hint that belongs to another mistake. ``notes`` are
    remarks that do not fail anything (a loop the exercise forbids).
    """

    exercise: str
    status: str
    results: list[tuple[str, str | None, str]]
    mistake: Mistake | None = None
    recipe: str | None = None
    diagnosis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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
                if self.mistake is None and self.recipe is None:
                    lines.append(f"         hint: {hint}")
        if self.mistake is not None:
            lines.append(f"It looks like your function {self.mistake.description}.")
            lines.append(f"hint: {self.mistake.hint}")
        elif self.status == "failed" and self.recipe is not None:
            lines += self.diagnosis
            lines.append(f"recipe: {self.recipe}")
        lines += [f"note: {note}" for note in self.notes]
        if self.status == "passed":
            lines.append("Well done!")
        return "\n".join(lines)


#: How long one case may run before the checker stops it.
TIME_LIMIT_SECONDS = 10.0

_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxtuple = 120, 200, 8, 8
_SHOWN.maxdict, _SHOWN.maxset = 6, 6


def _short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (a plain text, not a repr)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: Any, limit: int = 300) -> str:
    """A short text for any value in a report: at most ``limit`` characters, and never an error
    (a value whose ``repr`` raises, a meta tensor, a list of a million elements).

    >>> shown(list(range(10**6)))
    '[0, 1, 2, 3, 4, 5, 6, 7, ...]'
    >>> shown(torch.ones(2, device="meta"))
    "tensor(..., device='meta', size=(2,))"
    """
    try:
        if isinstance(value, torch.Tensor) and value.numel() > 1000:
            text = f"tensor of shape {tuple(value.shape)}, dtype {dtype_name(value.dtype)}"
        else:
            text = _SHOWN.repr(value)
    except Exception as error:  # a repr that raises is the learner's object's own doing
        text = f"<a {type(value).__name__} whose repr raised {type(error).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


class _Skipped(Exception):
    """A case not run, because an earlier case ran out of time."""


class _OutOfTime(Exception):
    """A case ran longer than ``TIME_LIMIT_SECONDS`` and was stopped."""


def _run_with_time_limit(function: Callable, args: tuple, kwargs: dict) -> Any:
    """``function(*args, **kwargs)`` in this thread; if it runs past ``TIME_LIMIT_SECONDS`` a
    watchdog thread interrupts it, as the notebook's stop button would (a KeyboardInterrupt at
    the next Python step, or when the current PyTorch operation returns). A worker thread could
    not be stopped at all (an endless loop would go on in the background), and a separate
    process could not run a function defined in a notebook on every system. An interrupt the
    learner sends still arrives as usual. The lock makes "finished" and "stopped" exclusive."""
    lock, finished, fired = threading.Lock(), threading.Event(), threading.Event()
    # interrupt_main does nothing while SIGINT is ignored (a process started in the background,
    # e.g. `make test &`): Python's own handler is put in place for the call, then taken away.
    restore = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGINT
    ) in (signal.SIG_IGN, signal.SIG_DFL, None):
        restore = signal.signal(signal.SIGINT, signal.default_int_handler)

    def watchdog() -> None:
        if finished.wait(TIME_LIMIT_SECONDS):
            return
        with lock:
            if not finished.is_set():
                fired.set()
                _thread.interrupt_main()

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        try:
            result = function(*args, **kwargs)
        finally:
            with lock:
                finished.set()
        return result
    except KeyboardInterrupt:
        if fired.is_set():
            raise _OutOfTime from None
        raise
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, dtype, device and values (NaN equal to NaN; meta tensors by shape only)."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.is_meta or torch.equal(a, b):
        return True
    return a.is_floating_point() and bool(
        torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))
    )


def _same_input(a: Any, b: Any) -> bool:
    """True if an argument is as it was before the call (tensors, modules, containers)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return _same_tensor(a, b)
    if isinstance(a, torch.nn.Module) and isinstance(b, torch.nn.Module):
        kinds = [(n, type(m)) for n, m in a.named_modules()]
        if kinds != [(n, type(m)) for n, m in b.named_modules()]:
            return False
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(_same_tensor(sa[k], sb[k]) for k in sa)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same_input(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # an object that cannot say: not counted as changed
        return True


def _argument_name(function: Callable, index: int) -> str:
    """The learner's own name for positional argument ``index`` (``argument 2`` if unknown)."""
    try:
        return f"`{list(inspect.signature(function).parameters)[index]}`"
    except (TypeError, ValueError, IndexError):
        return f"argument {index + 1}"


def _call(function: Callable, case: CheckCase) -> tuple[Any, BaseException | None]:
    """``function(*case.args, **case.kwargs)`` on fresh copies; returns (result, exception).

    The copies are compared with the case's own arguments afterwards: a function that changed
    an argument the exercise does not ask it to change fails with a ``ValueError`` that names
    it. A case that runs out of time fails with a message that says so."""
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    try:
        result = _run_with_time_limit(function, args, kwargs)
    except _OutOfTime:
        return None, TimeoutError(
            f"still running after {TIME_LIMIT_SECONDS:g} s, so the checker stopped it: does "
            "it loop forever, or over many elements one at a time? (A cell of yours that runs "
            "too long stops with the notebook's stop button, Kernel > Interrupt.)"
        )
    except Exception as error:  # the learner's code may raise anything
        return None, error
    for index, (after, before) in enumerate(zip(args, case.args, strict=False)):
        if index not in case.changes and not _same_input(after, before):
            name = _argument_name(function, index)
            return None, ValueError(
                f"your function changed {name} in place: work on a copy, or compute into a "
                "new tensor (the caller's tensor must stay as it was)"
            )
    return result, None


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
            elif not _safely_same(result, expected):
                break
        else:
            return mistake
    return None


def _safely_same(a: Any, b: Any) -> bool:
    """``same_result``, but False (not a crash) for results it cannot compare: a meta tensor,
    an object whose comparison raises."""
    try:
        if any(isinstance(x, torch.Tensor) and x.is_meta for x in (a, b)):
            return False
        return same_result(a, b)
    except Exception:
        return False


def _differences(result: Any, expected: Any) -> str | None:
    """Where a tensor result differs from the expected one: up to five positions."""
    if not (isinstance(result, torch.Tensor) and isinstance(expected, torch.Tensor)):
        return None
    if result.shape != expected.shape or result.is_meta:
        return None
    try:
        differ = ~torch.isclose(result.double(), expected.double(), rtol=1e-5, atol=1e-5)
    except Exception:
        return None
    where = differ.nonzero().tolist()
    if not where:
        return None
    items = [
        f"{tuple(i) if len(i) > 1 else i[0]}: {result[tuple(i)].item():.6g} vs "
        f"{expected[tuple(i)].item():.6g}"
        for i in where[:5]
    ]
    more = f" (and {len(where) - 5} more)" if len(where) > 5 else ""
    return f"  differs at {', '.join(items)}{more} (yours vs expected)"


def _diagnosis(case: CheckCase, outcome: tuple[Any, BaseException | None]) -> list[str]:
    """The first failing case, shown neutrally: its input, what was expected, what came back."""
    result, error = outcome
    lines = [f"The first case that fails: {case.description}"]
    lines.append(f"  input: {', '.join(shown(arg, 160) for arg in case.args)}")
    expected = getattr(case.check, "expected", None)
    if expected is not None:
        lines.append(f"  expected: {shown(expected)}")
    if error is not None:
        lines.append(f"  got: {type(error).__name__}: {_short(str(error), 200)}")
    else:
        lines.append(f"  got: {shown(result)}")
        marked = _differences(result, expected)
        if marked:
            lines.append(marked)
    return lines


def run_checks(
    exercise: str,
    function: Callable,
    cases: Sequence[CheckCase],
    mistakes: Sequence[Mistake] = (),
    recipe: str | None = None,
) -> CheckReport:
    """Run a learner's ``function`` on every case and collect a ``CheckReport``.

    Each call gets its own copies of the arguments, so a function that changes its inputs
    cannot spoil later cases, and one that changes an argument fails that case (unless the
    case lists it in ``changes``). Each case may run ``TIME_LIMIT_SECONDS``. If the function
    returns ``None`` for every case, the exercise counts as not attempted yet, or, when the body
    is more than the handed-out stub, as a forgotten ``return``. If some case fails and the
    function reproduces one of ``mistakes`` on every case, the report names that mistake;
    otherwise it shows the first failing case and ``recipe``, the lesson's method.
    """
    if not callable(function):
        raise TypeError(f"pass your function itself, e.g. check(my_function), not {function!r}.")
    outcomes = []
    for case in cases:  # after a case that ran out of time the rest would too: skip them
        if outcomes and isinstance(outcomes[-1][1], _Skipped | TimeoutError):
            outcomes.append((None, _Skipped("not run: a case before this one ran out of time")))
        else:
            outcomes.append(_call(function, case))
    results = []
    for case, (result, error) in zip(cases, outcomes, strict=True):
        if isinstance(error, _Skipped):
            problem = str(error)
        elif error is not None:
            problem = f"raised {type(error).__name__}: {_short(str(error), 400)}"
        elif result is None:
            problem = "returned None"
        else:
            try:
                problem = case.check(result)
            except Exception as check_error:  # a result of an unexpected kind, e.g. (s, None)
                problem = f"returned {shown(result)}, which could not be checked ({check_error})"
            problem = None if problem is None else _short(problem, 600)
        results.append((case.description, problem, case.hint))
    if all(error is None and result is None for result, error in outcomes):
        status = "not attempted" if _is_stub(function) else "no return"
        return CheckReport(exercise, status, results)
    if all(problem is None for _, problem, _ in results):
        return CheckReport(exercise, "passed", results, recipe=recipe)
    report = CheckReport(
        exercise, "failed", results, _diagnose(outcomes, cases, mistakes), recipe=recipe
    )
    if report.mistake is None:
        first = next(i for i, (_, problem, _) in enumerate(results) if problem is not None)
        report.diagnosis = _diagnosis(cases[first], outcomes[first])
    return report


def loops_over_elements(function: Callable, parameters: Sequence[str] | None = None) -> list[int]:
    """The lines of ``function`` that loop in Python over the elements of a tensor argument: a
    ``while`` loop, or a ``for`` over an argument itself, or over ``range(...)`` of an
    expression that uses an argument (``range(len(packed))``, ``range(packed.numel())``). A
    loop over a fixed range, such as the 4 positions in a byte, does not count. Empty when
    the source cannot be read. Comprehensions count like ``for`` statements.

    >>> def f(packed):
    ...     for i in range(4):
    ...         pass
    ...     for byte in packed:
    ...         pass
    >>> loops_over_elements(f)
    [4]
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        names = set(parameters or inspect.signature(function).parameters)
    except (OSError, TypeError, SyntaxError, ValueError):
        return []
    start = getattr(function, "__code__", None)
    offset = start.co_firstlineno - 1 if start is not None else 0
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.While):
            lines.append(node.lineno + offset)
        elif isinstance(node, ast.For | ast.comprehension):
            used = {n.id for n in ast.walk(node.iter) if isinstance(n, ast.Name)}
            if used & names:
                line = getattr(node, "lineno", None) or node.iter.lineno
                lines.append(line + offset)
    return sorted(set(lines))


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

    check.expected = expected
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

    check.expected = expected
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
