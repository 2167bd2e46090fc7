"""Tests for the mechanism every checker in exercises.py shares (``run_checks`` and its
report), and what every checker promises, whatever its exercise (one test for all of them).

The handed-out stub is "not attempted yet"; a body that computes but forgets ``return`` is told
so; a function that raises fails every case with its exception (no crash, no mistake named);
passing something that is not a function is a clear TypeError. The lesson-specific tests
(tests/exercises/test_lesson_NN.py) check each checker's cases and its classic mistakes;
``assert_names_mistake`` in conftest.py is the assertion they share for those.
"""

from __future__ import annotations

import pytest
import torch

from support import exercises
from support.exercises import CheckCase, check_dequantization, run_checks

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

    assert run_checks("sum", sum_then_clear, cases).status == "passed"
    assert torch.equal(shared, torch.arange(4.0))
