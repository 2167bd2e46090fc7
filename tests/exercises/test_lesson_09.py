"""Tests for lesson 09 (a real model, offline): the checker ``check_model_size``.

The learner-style functions below are written here, independently of the checker's own
``Mistake`` functions: each classic mistake must be rejected and named, every correct variant
must pass. The checker's cases are small modules, so nothing here loads MiniLM. The lesson's
size arithmetic on a quantized model is tested in tests/helper/test_11_layers.py.
"""

from __future__ import annotations

import pytest
import torch
from conftest import (
    assert_changed_in_place,
    assert_leaves_the_random_state_alone,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
    case_status,
)
from torch import nn

from support import models
from support.exercises import MODEL_SIZE_MISTAKES, check_model_size

# ------------------------------------------------------------------------------------------
# Learner-style implementations of my_model_size(model)
# ------------------------------------------------------------------------------------------


def size_lesson_answer(model):
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def size_nbytes_loop(model):
    total = 0
    for p in model.parameters():
        total += p.nbytes
    for b in model.buffers():
        total += b.nbytes
    return total


def size_named_dicts(model):
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return sum(t.numel() * t.dtype.itemsize for t in tensors.values())


def size_unique_ids(model):
    """Deduplicating by hand is fine too (and harmless when nothing is shared)."""
    unique = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.untyped_storage().nbytes() for t in unique.values())


def size_as_float(model):
    return float(sum(t.nbytes for t in [*model.parameters(), *model.buffers()]))


def size_as_tensor(model):
    return torch.tensor(sum(t.nbytes for t in [*model.parameters(), *model.buffers()]))


def size_with_helper(model):
    return models.model_size(model).total


def size_counts_parameters(model):
    return sum(p.numel() for p in model.parameters())


def size_counts_all_elements(model):
    return sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())


def size_parameters_times_four(model):
    n_parameters = sum(p.numel() for p in model.parameters())
    return n_parameters * 4


def size_everything_times_four(model):
    return sum(t.numel() * 4 for t in [*model.parameters(), *model.buffers()])


def size_parameters_only(model):
    return sum(p.nbytes for p in model.parameters())


def size_state_dict(model):
    return sum(t.nbytes for t in model.state_dict().values())


def size_every_module(model):
    total = 0
    for module in model.modules():
        for p in module.parameters():
            total += p.nbytes
        for b in module.buffers():
            total += b.nbytes
    return total


def size_named_modules_own_tensors(model):
    total = 0
    for _, module in model.named_modules():
        for p in module.parameters(recurse=False):
            total += p.nbytes
        for b in module.buffers(recurse=False):
            total += b.nbytes
    return total


def size_in_megabytes(model):
    return sum(t.nbytes for t in [*model.parameters(), *model.buffers()]) / 1_000_000


def size_in_mib(model):
    return sum(t.nbytes for t in [*model.parameters(), *model.buffers()]) / 1024 / 1024


def size_in_kib(model):
    return sum(t.nbytes for t in [*model.parameters(), *model.buffers()]) / 1024


def size_in_kilobytes(model):
    return sum(t.nbytes for t in [*model.parameters(), *model.buffers()]) / 1e3


def size_as_the_course_measures_it(model):
    return model.get_memory_footprint()


def size_in_bits(model):
    return sum(t.numel() * t.element_size() * 8 for t in [*model.parameters(), *model.buffers()])


# ------------------------------------------------------------------------------------------
# check_model_size
# ------------------------------------------------------------------------------------------

#: The checker's cases, in order (``case_status`` names each report's results by them).
CASES = ("linear", "w8a16", "16-bit", "tied", "non-persistent")


@pytest.mark.parametrize(
    "function",
    [
        size_lesson_answer,
        size_nbytes_loop,
        size_named_dicts,
        size_unique_ids,
        size_as_float,
        size_as_tensor,
        size_with_helper,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    """numel * element_size, nbytes, itemsize, hand-made deduplication, a float, a 0-dim
    tensor and models.model_size itself all pass every case."""
    assert_passed(check_model_size(function), cases=len(CASES))


MISTAKES = [
    (size_counts_parameters, "counts the parameters (numbers), not their bytes"),
    (size_counts_all_elements, "counts numbers (elements), not bytes"),
    (size_parameters_times_four, "assumes 4 bytes per number and leaves out the buffers"),
    (size_everything_times_four, "assumes 4 bytes for every number"),
    (size_parameters_only, "leaves out the buffers"),
    (size_state_dict, "adds up the state dict"),
    (size_every_module, "counts the tensors of every module recursively"),
    (size_named_modules_own_tensors, "counts a tensor shared by two layers"),
    (size_in_megabytes, "returns megabytes, not bytes"),
    (size_in_kib, "returns kibibytes"),
    (size_in_kilobytes, "returns kilobytes"),
    (size_as_the_course_measures_it, "calls model.get_memory_footprint()"),
    (size_in_mib, "returns mebibytes"),
    (size_in_bits, "counts bits, not bytes"),
]


@pytest.mark.parametrize(
    ("function", "description"), MISTAKES, ids=lambda value: getattr(value, "__name__", "")
)
def test_classic_mistakes_are_rejected_and_named(function, description):
    """Each mistake fails, the report names it and shows its hint."""
    report = check_model_size(function)
    assert_names_mistake(report, description, start=True)


def test_every_checker_mistake_is_covered_by_a_learner_function_here():
    """The parametrized test above names each of the checker's mistakes exactly once."""
    named = [check_model_size(function).mistake.description for function, _ in MISTAKES]
    assert sorted(named) == sorted(mistake.description for mistake in MODEL_SIZE_MISTAKES)


def test_each_mistake_fails_where_it_should():
    """The cases tell the mistakes apart for the reasons the hints give."""
    assert case_status(check_model_size(size_parameters_only), CASES) == {
        "linear": True,
        "w8a16": False,  # the W8A16 layer's buffers are missing
        "16-bit": False,
        "tied": True,
        "non-persistent": False,
    }
    assert case_status(check_model_size(size_state_dict), CASES) == {
        "linear": True,
        "w8a16": True,  # its buffers are persistent: the state dict holds them
        "16-bit": True,
        "tied": False,  # the shared weight twice
        "non-persistent": False,  # the non-persistent buffer missing
    }
    assert case_status(check_model_size(size_named_modules_own_tensors), CASES) == {
        "linear": True,
        "w8a16": True,
        "16-bit": True,
        "tied": False,
        "non-persistent": True,
    }
    assert case_status(check_model_size(size_everything_times_four), CASES) == {
        "linear": True,
        "w8a16": False,
        "16-bit": False,
        "tied": True,
        "non-persistent": False,  # int64 positions take 8 bytes each
    }


def test_failure_messages_give_both_numbers():
    """A wrong number is reported with the expected number of bytes."""
    report = check_model_size(size_parameters_only)
    problems = [problem for _, problem, _ in report.results]
    assert problems[1] == "got 144, expected 180 bytes"
    assert problems[4] == "got 32, expected 96 bytes"


def test_kib_is_named_and_gets_no_hint_about_buffers():
    """Returning KiB once got the case hint "Add model.buffers()": now it is named itself."""
    text = repr(check_model_size(size_in_kib))
    assert "It looks like your function returns kibibytes" in text
    assert "Add model.buffers()" not in text


def test_get_memory_footprint_is_named_with_the_attribute_error():
    report = check_model_size(size_as_the_course_measures_it)
    assert "raised AttributeError" in report.results[0][1]
    assert "get_memory_footprint" in report.results[0][1]
    assert_names_mistake(report, "calls model.get_memory_footprint()", start=True)


def size_of_the_first_tensor_only(model):
    return next(iter(model.parameters())).nbytes


def size_plus_one(model):
    return size_lesson_answer(model) + 1


def size_of_parameters_twice_and_no_buffers(model):
    return 2 * sum(p.nbytes for p in model.parameters())


@pytest.mark.parametrize(
    "function",
    [size_of_the_first_tensor_only, size_plus_one, size_of_parameters_twice_and_no_buffers],
    ids=lambda f: f.__name__,
)
def test_unknown_mistakes_get_the_neutral_report(function):
    """No known mistake matches: the first failing case, the expected and the returned
    number, and the recipe; no hint of another mistake."""
    assert_neutral_report(
        check_model_size(function),
        "Add up tensor.numel() * tensor.element_size()",
        MODEL_SIZE_MISTAKES,
        "got: ",
    )


def test_odd_results_are_failures_not_crashes():
    """Strings, booleans, lists, ModelSize objects: failed cases, never a checker crash."""
    for result in ("40 bytes", True, [40], models.ModelSize(40, {"float32": 40})):
        report = check_model_size(lambda model, result=result: result)
        assert report.status == "failed"
        assert report.passed == 0


def test_checker_leaves_the_global_random_state_alone():
    """Building the case models must not change the learner's random numbers."""
    assert_leaves_the_random_state_alone(lambda: check_model_size(size_lesson_answer))


def test_checker_does_not_let_a_mutating_function_spoil_later_cases():
    """Each case gets a fresh copy: a function that empties the model changes nothing."""

    def answer_then_break(model):
        size = size_lesson_answer(model)
        for name, _ in list(model.named_children()):
            setattr(model, name, nn.Identity())
        return size

    assert_changed_in_place(check_model_size(answer_then_break), "model")


# ------------------------------------------------------------------------------------------
# The lesson's size arithmetic on a small model (MiniLM itself runs in the notebook)
# ------------------------------------------------------------------------------------------
