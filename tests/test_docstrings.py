"""The tiny examples in the modules' docstrings are real: run them as doctests."""

import doctest
import inspect

import pytest

import helper
from support import examples, exercises, explorer, models
from support.explorer import compute, drawing, settings, widget

# The explorer is a package: its functions live in these modules (doctest and the docstring
# check below look only at what a module defines itself, not at what it re-exports).
EXPLORER_MODULES = [settings, compute, drawing, widget]


def test_helper_docstring_examples_run_and_print_what_they_claim():
    """Every ``>>>`` example in helper.py gives exactly the output its docstring shows."""
    result = doctest.testmod(helper, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 40, "helper.py should keep its docstring examples"
    assert result.failed == 0


@pytest.mark.parametrize(
    "module", [examples, exercises, *EXPLORER_MODULES], ids=lambda m: m.__name__
)
def test_other_modules_docstring_examples(module):
    """The examples in the modules beside helper.py run too (where they have any)."""
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


MODULES = [helper, examples, exercises, explorer, *EXPLORER_MODULES, models]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_public_function_and_class_has_a_docstring(module):
    """Learners open these files: every public function, class and method says what it does."""
    missing = []
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            if not inspect.getdoc(value):
                missing.append(name)
        if inspect.isclass(value):
            for attribute, member in vars(value).items():
                if inspect.isfunction(member) and not attribute.startswith("_"):
                    if not member.__doc__:
                        missing.append(f"{name}.{attribute}")
    assert missing == []


@pytest.mark.parametrize("module", [helper, exercises], ids=lambda m: m.__name__)
def test_all_lists_every_public_name_defined_in_the_module(module):
    """``__all__`` is the contents list: every public function, class and constant is in it."""
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", module.__name__) == module.__name__
        and name not in {"annotations", "Any", "NamedTuple", "Figure", "F", "nn", "plt"}
    }
    assert defined <= set(module.__all__), sorted(defined - set(module.__all__))
