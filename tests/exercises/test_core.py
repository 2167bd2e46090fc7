"""Tests for the mechanism every checker in exercises.py shares (``run_checks`` and its
report), and what every checker promises, whatever its exercise (one test for all of them).

The handed-out stub is "not attempted yet"; a body that computes but forgets ``return`` is told
so; a function that raises fails every case with its exception (no crash, no mistake named);
passing something that is not a function is a clear TypeError. The lesson-specific tests
(tests/exercises/test_lesson_NN.py) check each checker's cases and its classic mistakes;
``assert_names_mistake`` in conftest.py is the assertion they share for those.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import assert_changed_in_place

from support import exercises
from support.exercises import CheckCase, check_dequantization, run_checks

ROOT = Path(__file__).resolve().parents[2]

CHECKERS = [getattr(exercises, name) for name in exercises.__all__ if name.startswith("check_")]


def stub(*args, **kwargs):
    """The exercise as handed out."""
    # Your code here
    return None


def no_return(*args, **kwargs):
    """A body that computes something but never returns it."""
    answer = len(args) + len(kwargs)
    answer += 1


def raises(*args, **kwargs):
    """A body that crashes."""
    raise RuntimeError("boom")


def test_every_lesson_has_a_checker():
    """Lesson 01 has two checkers, lessons 02 and 04-13 one each."""
    assert len(CHECKERS) >= 13


@pytest.mark.parametrize("check", CHECKERS, ids=lambda check: check.__name__)
def test_the_stub_is_not_attempted(check):
    report = check(stub)
    assert report.status == "not attempted"
    assert "not attempted yet" in repr(report)


@pytest.mark.parametrize("check", CHECKERS, ids=lambda check: check.__name__)
def test_a_body_without_return_is_told_to_return(check):
    report = check(no_return)
    assert report.status == "no return"
    assert "forget `return`" in repr(report)


@pytest.mark.parametrize("check", CHECKERS, ids=lambda check: check.__name__)
def test_a_function_that_raises_fails_every_case_with_its_error(check):
    report = check(raises)
    assert report.status == "failed" and report.passed == 0
    assert all(problem == "raised RuntimeError: boom" for _, problem, _ in report.results)
    assert "raised RuntimeError: boom" in repr(report)
    assert report.mistake is None


@pytest.mark.parametrize("check", CHECKERS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("not_a_function", [None, "my_function"])
def test_not_a_function_is_a_clear_type_error(check, not_a_function):
    with pytest.raises(TypeError, match="pass your function itself"):
        check(not_a_function)


# ------------------------------------------------------------------------------------------
# run_checks itself
# ------------------------------------------------------------------------------------------


def test_run_checks_rejects_a_non_callable():
    """Passing the result instead of the function is a TypeError with a clear message."""
    with pytest.raises(TypeError, match="pass your function itself"):
        check_dequantization(torch.ones(1))  # the dequantized tensor, not the function


def test_run_checks_passes_fresh_copies_of_arguments():
    """Each case gets deep copies: the caller's tensors are never modified."""
    shared = torch.arange(4.0)
    cases = [
        CheckCase(f"case {i}", (shared,), lambda r: None if r == 6.0 else f"got {r}", "hint")
        for i in range(2)
    ]

    def sum_then_clear(t):
        total = t.sum().item()
        t.zero_()
        return total

    assert_changed_in_place(run_checks("sum", sum_then_clear, cases), "t")
    assert torch.equal(shared, torch.arange(4.0))


# ------------------------------------------------------------------------------------------
# What no learner function can do to a checker
# ------------------------------------------------------------------------------------------

ONE_CASE = [CheckCase("the only case", (torch.ones(3),), lambda r: None, "a hint")]


def test_an_endless_loop_is_stopped_and_the_case_named(monkeypatch):
    """A function that never returns is interrupted after the time limit; the report names the
    case and says how to stop a cell; the later cases are not run (they would most likely
    loop too, and each would cost the learner another time limit)."""
    from support.exercises import core

    monkeypatch.setattr(core, "TIME_LIMIT_SECONDS", 0.3)

    def forever(t):
        while True:
            t = t + 0

    cases = ONE_CASE + [CheckCase("a second case", (torch.zeros(2),), lambda r: None, "hint")]
    report = run_checks("loop", forever, cases)
    assert report.status == "failed" and report.passed == 0
    text = repr(report)
    assert "the only case: raised TimeoutError: still running after 0.3 s" in text
    assert "a second case: not run: a case before this one ran out of time" in text
    assert "Kernel > Interrupt" in text


def test_an_endless_loop_is_stopped_where_sigint_is_ignored():
    """A process started in the background (`make test &`) ignores SIGINT, and then
    interrupt_main does nothing: the checker puts Python's handler in place for the call, and
    the ignored state back afterwards."""
    code = textwrap.dedent(
        """
        import signal
        from unittest import mock
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from support.exercises import check_quantize, core

        def endless(tensor, scale, zero_point, dtype=None):
            while True:
                pass

        with mock.patch.object(core, "TIME_LIMIT_SECONDS", 0.3):
            report = check_quantize(endless)
        print(report.status, signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.stdout.split() == ["failed", "True"], done.stderr


def test_a_slow_but_finishing_function_is_not_stopped(monkeypatch):
    from support.exercises import core

    monkeypatch.setattr(core, "TIME_LIMIT_SECONDS", 2.0)
    assert run_checks("quick", lambda t: t.sum(), ONE_CASE).status == "passed"


@pytest.mark.parametrize(
    "result",
    [torch.ones(3, device="meta"), list(range(10**6)), "x" * 5_000_000],
    ids=["meta", "million-list", "5MB-string"],
)
def test_odd_results_give_a_short_report_not_a_crash(result):
    """A meta tensor, a million-element list, a 5 MB string: a clear failure, a short report,
    and the comparison with every known mistake guarded."""

    def odd(*args, **kwargs):
        return result

    for check in CHECKERS:
        report = check(odd)
        assert report.status == "failed", check.__name__
        assert len(repr(report)) < 20_000, check.__name__


def test_a_result_whose_repr_raises_gives_a_clear_report():
    class Rude:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    report = check_dequantization(lambda q, s, z: Rude())
    assert report.status == "failed"
    assert "whose repr raised RuntimeError" in repr(report) or "Rude" in repr(report)


def test_no_known_mistake_gives_a_neutral_diagnosis_and_the_recipe():
    """When no known mistake matches, the report shows the first failing case (its input,
    what was expected, what came back, where they differ) and the lesson's recipe, and no
    case's own hint."""
    from support.exercises.core import expect_close

    cases = [
        CheckCase(
            "doubles [1, 2, 3]",
            (torch.tensor([1.0, 2.0, 3.0]),),
            expect_close(torch.tensor([2.0, 4.0, 6.0])),
            "HINT-A",
        ),
        CheckCase(
            "doubles [5]", (torch.tensor([5.0]),), expect_close(torch.tensor([10.0])), "HINT-B"
        ),
    ]
    report = run_checks("double", lambda t: t * 2 + (t > 2.5), cases, recipe="return 2 * t")
    text = repr(report)
    assert report.status == "failed" and "HINT" not in text
    assert "The first case that fails: doubles [1, 2, 3]" in text
    assert "expected: tensor([2., 4., 6.])" in text and "got: tensor([2., 4., 7.])" in text
    assert "differs at 2: 7 vs 6" in text and text.endswith("recipe: return 2 * t")


def test_loops_over_elements_finds_a_loop_over_an_argument_only():
    from support.exercises.core import loops_over_elements

    def per_position(packed):
        values = [(packed >> (2 * i)) & 3 for i in range(4)]
        return torch.stack(values, dim=-1).reshape(-1)

    def per_element(packed):
        out = []
        for index in range(len(packed)):
            out.append(packed[index])
        return out

    def per_value(packed):
        return [int(v) for v in packed.tolist()]  # a comprehension is a loop too

    assert loops_over_elements(per_position) == []
    assert len(loops_over_elements(per_element)) == 1
    assert len(loops_over_elements(per_value)) == 1
