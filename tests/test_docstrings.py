"""The tiny examples in the modules' docstrings are real: run them as doctests."""

import doctest

import pytest

import examples
import exercises
import explorer
import helper


def test_helper_docstring_examples_run_and_print_what_they_claim():
    """Every ``>>>`` example in helper.py gives exactly the output its docstring shows."""
    result = doctest.testmod(helper, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 40, "helper.py should keep its docstring examples"
    assert result.failed == 0


@pytest.mark.parametrize("module", [examples, exercises, explorer], ids=lambda m: m.__name__)
def test_other_modules_docstring_examples(module):
    """The examples in the modules beside helper.py run too (where they have any)."""
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
