"""The tiny examples in helper.py's docstrings are real: run them as doctests."""

import doctest

import helper


def test_helper_docstring_examples_run_and_print_what_they_claim():
    """Every ``>>>`` example in helper.py gives exactly the output its docstring shows."""
    result = doctest.testmod(helper, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10, "helper.py should keep its docstring examples"
    assert result.failed == 0
