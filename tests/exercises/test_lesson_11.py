"""Tests for lesson 11 (save and load): the checker ``check_w8a16_bytes`` and facts the
lesson relies on (the size ratio of a W8A16 layer, ``torch.load(weights_only=True)``).

The learner-style functions below are written here, independently of the checker's own
``Mistake`` functions: each classic mistake must be rejected and named, every correct
variant must pass. Nothing here loads MiniLM, so the file runs in a few seconds. What the
lesson prints about saving the digits classifier and loading it into a meta skeleton is
tested in tests/test_models.py.
"""

from __future__ import annotations

import io
import pickle
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import (
    assert_leaves_the_random_state_alone,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
)
from safetensors.torch import save_file
from torch import nn

from helper import (
    W8A16LinearLayer,
)
from support.exercises import W8A16_BYTES_MISTAKES, check_w8a16_bytes
from support.models import (
    model_size,
    save_quantized,
)

BYTES_PER_NUMBER = {torch.float32: 4, torch.float16: 2, torch.bfloat16: 2, torch.float64: 8}

# ------------------------------------------------------------------------------------------
# Learner-style implementations of my_w8a16_bytes(in_features, out_features, bias, dtype)
# ------------------------------------------------------------------------------------------


def lesson_answer(in_features, out_features, bias=True, dtype=torch.float32):
    weights = out_features * in_features
    scales = out_features * 4
    bias_bytes = out_features * dtype.itemsize if bias else 0
    return weights + scales + bias_bytes


def with_finfo_bits(in_features, out_features, bias=True, dtype=torch.float32):
    """Bytes per number from the dtype's bits; the scales from torch.float32's."""
    float_bytes = torch.finfo(dtype).bits // 8
    scale_bytes = torch.finfo(torch.float32).bits // 8
    return out_features * (in_features + scale_bytes + (float_bytes if bias else 0))


def from_a_meta_layer(in_features, out_features, bias=True, dtype=torch.float32):
    """Ask the layer itself, built on the meta device, and return a tensor."""
    with torch.device("meta"):
        layer = W8A16LinearLayer(in_features, out_features, bias=bias, dtype=dtype)
    return torch.tensor(sum(t.numel() * t.element_size() for t in layer.state_dict().values()))


def from_a_table_as_float(in_features, out_features, bias=True, dtype=torch.float32):
    """A dict of bytes per dtype, and a float result."""
    size = float(in_features * out_features)  # int8
    size += 4.0 * out_features  # float32 scales
    if bias:
        size += BYTES_PER_NUMBER[dtype] * out_features
    return size


def from_empty_tensors(in_features, out_features, bias=True, dtype=torch.float32):
    """Real (small) tensors of the right shapes and dtypes: .nbytes of each."""
    tensors = [
        torch.empty(out_features, in_features, dtype=torch.int8),
        torch.empty(out_features, dtype=torch.float32),
    ]
    if bias:
        tensors.append(torch.empty(1, out_features, dtype=dtype))
    return sum(t.nbytes for t in tensors)


def only_the_weights(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * in_features


def without_scales(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * in_features + (out_features * dtype.itemsize if bias else 0)


def without_bias(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * in_features + 4 * out_features


def scales_in_the_layer_dtype(in_features, out_features, bias=True, dtype=torch.float32):
    per_row = in_features + dtype.itemsize + (dtype.itemsize if bias else 0)
    return out_features * per_row


def bias_always_float32(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * (in_features + 4 + (4 if bias else 0))


def bias_as_int8(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * (in_features + 4 + (1 if bias else 0))


def bias_counted_always(in_features, out_features, bias=True, dtype=torch.float32):
    return out_features * (in_features + 4 + dtype.itemsize)


def one_scale_in_all(in_features, out_features, bias=True, dtype=torch.float32):
    return in_features * out_features + 4 + (out_features * dtype.itemsize if bias else 0)


def scale_per_column(in_features, out_features, bias=True, dtype=torch.float32):
    return in_features * out_features + 4 * in_features + (out_features * dtype.itemsize) * bias


def float_weights(in_features, out_features, bias=True, dtype=torch.float32):
    size = dtype.itemsize
    return in_features * out_features * size + 4 * out_features + (out_features * size) * bias


def the_nn_linear(in_features, out_features, bias=True, dtype=torch.float32):
    return model_size(nn.Linear(in_features, out_features, bias=bias, dtype=dtype)).total


def counts_numbers(in_features, out_features, bias=True, dtype=torch.float32):
    with torch.device("meta"):
        layer = W8A16LinearLayer(in_features, out_features, bias=bias, dtype=dtype)
    return sum(t.numel() for t in layer.state_dict().values())


def everything_float32(in_features, out_features, bias=True, dtype=torch.float32):
    numbers = in_features * out_features + out_features + (out_features if bias else 0)
    return numbers * 4


def in_bits(in_features, out_features, bias=True, dtype=torch.float32):
    return lesson_answer(in_features, out_features, bias, dtype) * 8


def in_kilobytes(in_features, out_features, bias=True, dtype=torch.float32):
    return lesson_answer(in_features, out_features, bias, dtype) / 1e3


def in_kibibytes(in_features, out_features, bias=True, dtype=torch.float32):
    return lesson_answer(in_features, out_features, bias, dtype) / 2**10


def saved_file_size(in_features, out_features, bias=True, dtype=torch.float32):
    """Saves a real layer's state dict with safetensors and measures the file."""
    layer = W8A16LinearLayer(in_features, out_features, bias=bias, dtype=dtype)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "layer.safetensors"
        save_file(layer.state_dict(), path)
        return path.stat().st_size


def saved_model_file_size(in_features, out_features, bias=True, dtype=torch.float32):
    """The file of a model holding the layer (other tensor names), with a note in its
    metadata, measured as save_quantized returns it."""
    model = nn.Sequential(W8A16LinearLayer(in_features, out_features, bias=bias, dtype=dtype))
    with tempfile.TemporaryDirectory() as folder:
        return save_quantized(model, Path(folder) / "model.safetensors", note="W8A16, 1 layer")


MISTAKEN = [
    (only_the_weights, "counts the int8 weights only"),
    (without_scales, "forgets the scales"),
    (without_bias, "forgets the bias"),
    (scales_in_the_layer_dtype, "counts the scales in the layer's dtype"),
    (bias_always_float32, "counts the bias in float32"),
    (bias_as_int8, "counts the bias as int8"),
    (bias_counted_always, "counts a bias even when bias=False"),
    (one_scale_in_all, "counts one scale for the whole layer"),
    (scale_per_column, "counts one scale per input column"),
    (float_weights, "counts the weights in the layer's float dtype"),
    (the_nn_linear, "counts the float nn.Linear"),
    (counts_numbers, "counts numbers"),
    (everything_float32, "counts 4 bytes for every number"),
    (saved_file_size, "measures the safetensors file, header included"),
    (in_bits, "returns bits"),
    (in_kilobytes, "returns kilobytes"),
    (in_kibibytes, "returns kibibytes"),
]

# ------------------------------------------------------------------------------------------
# check_w8a16_bytes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [lesson_answer, with_finfo_bits, from_a_meta_layer, from_a_table_as_float, from_empty_tensors],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    """Arithmetic with itemsize or finfo bits, the meta layer's own tensors (a tensor result),
    a float result and real empty tensors all pass every case."""
    assert_passed(check_w8a16_bytes(function), cases=5)


@pytest.mark.parametrize(
    ("function", "description"), MISTAKEN, ids=lambda value: getattr(value, "__name__", "")
)
def test_classic_mistakes_are_rejected_and_named(function, description):
    """Each mistake fails, the report names it and shows its hint."""
    report = check_w8a16_bytes(function)
    assert_names_mistake(report, description, start=True)


def test_every_checker_mistake_is_covered_by_a_learner_function_here():
    """Each of the checker's mistakes is the one named for some learner function here."""
    reports = [check_w8a16_bytes(function) for function, _ in MISTAKEN]
    assert {id(report.mistake) for report in reports} == {
        id(mistake) for mistake in W8A16_BYTES_MISTAKES
    }


def test_no_mistake_function_passes_and_each_differs_from_the_others():
    """No Mistake gives the right answer on every case, and no two give the same answers
    (otherwise the second could never be named)."""
    args = [(64, 64, True, torch.float32), (64, 32, True, torch.float32)]
    args += [(32, 10, False, torch.float32), (384, 1536, True, torch.bfloat16)]
    args += [(16, 8, False, torch.float16)]
    answers = [tuple(float(m.function(*a)) for a in args) for m in W8A16_BYTES_MISTAKES]
    assert len(set(answers)) == len(answers)
    assert tuple(float(lesson_answer(*a)) for a in args) not in answers


def test_failure_messages_say_what_was_expected():
    """The scales-in-the-layer-dtype mistake passes the float32 cases and fails the two
    half-precision ones, with the expected bytes; the hint names float32 scales."""
    report = check_w8a16_bytes(scales_in_the_layer_dtype)
    problems = [problem for _, problem, _ in report.results]
    assert problems[:3] == [None, None, None]
    assert problems[3] == "got 595,968, expected 599,040 bytes"
    assert problems[4] == "got 144, expected 160 bytes"
    assert "float32" in report.mistake.hint
    assert "got 0.6, expected 4,608 bytes" in repr(
        check_w8a16_bytes(lambda i, o, b=True, d=torch.float32: 0.6)
    )


def test_odd_results_are_failures_not_crashes():
    """Strings, lists, booleans, several-element tensors and None: failed cases, no crash."""
    for result in ("4608", [4608], True, torch.tensor([4608, 1]), {"bytes": 4608}):
        report = check_w8a16_bytes(lambda i, o, b=True, d=torch.float32, result=result: result)
        assert report.status == "failed"
        assert report.passed == 0

    def crashes(in_features, out_features, bias=True, dtype=torch.float32):
        raise KeyError("boom")

    report = check_w8a16_bytes(crashes)
    assert report.status == "failed"
    assert all(problem == "raised KeyError: 'boom'" for _, problem, _ in report.results)


def test_a_file_measured_with_other_names_and_a_note_is_recognised_too():
    """Other tensor names and metadata change the header's length, not the mistake: the
    checker recognises a count that exceeds the right one by a padded header on every case."""
    report = check_w8a16_bytes(saved_model_file_size)
    assert_names_mistake(report, "measures the safetensors file, header included")
    assert "hint: a file holds 8 bytes of length and a JSON header" in repr(report)


def plus_eight(in_features, out_features, bias=True, dtype=torch.float32):
    """The right count plus 8 bytes: the length field without any header."""
    return lesson_answer(in_features, out_features, bias, dtype) + 8


def scales_per_row_and_column(in_features, out_features, bias=True, dtype=torch.float32):
    scales = 4 * (in_features + out_features)
    return in_features * out_features + scales + (out_features * dtype.itemsize if bias else 0)


def one_row_too_many(in_features, out_features, bias=True, dtype=torch.float32):
    return lesson_answer(in_features, out_features + 1, bias, dtype)


def bias_twice(in_features, out_features, bias=True, dtype=torch.float32):
    extra = out_features * dtype.itemsize if bias else 0
    return lesson_answer(in_features, out_features, bias, dtype) + extra


@pytest.mark.parametrize(
    "function",
    [plus_eight, scales_per_row_and_column, one_row_too_many, bias_twice],
    ids=lambda f: f.__name__,
)
def test_an_unrecognised_answer_gets_the_first_failing_case_and_the_recipe(function):
    """No known mistake matches: the report shows the first failing case (its input, the
    expected and the returned count) and the recipe; no hint of any mistake or case."""
    assert_neutral_report(
        check_w8a16_bytes(function),
        "add up the bytes of the layer's three tensors",
        W8A16_BYTES_MISTAKES,
        "expected: 4608",
    )


def test_rebinding_the_arguments_is_not_a_change_in_place():
    """This exercise's arguments are numbers, a bool and a dtype, which nothing can change in
    place (so no case of this checker can fail for a changed input); a function that only
    rebinds its names must not be reported as changing them."""

    def rebinds(in_features, out_features, bias=True, dtype=torch.float32):
        in_features, out_features = out_features, in_features  # a swap of local names only
        return lesson_answer(out_features, in_features, bias, dtype)

    assert_passed(check_w8a16_bytes(rebinds), cases=5)


def test_checker_leaves_the_random_number_generator_alone():
    """The reference layers are built on the meta device: no random draws in the notebook."""
    assert_leaves_the_random_state_alone(lambda: check_w8a16_bytes(lesson_answer))


# ------------------------------------------------------------------------------------------
# What the lesson prints
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_in", [1, 10, 32, 64, 384, 1536, 4096])
def test_per_layer_ratio_is_4_minus_28_over_in_plus_8(n_in):
    """float32 layer / W8A16 layer = 4 (in + 1) / (in + 8), for any number of outputs."""
    for n_out in (1, 7, 64):
        with torch.device("meta"):
            before = model_size(nn.Linear(n_in, n_out)).total
            after = model_size(W8A16LinearLayer(n_in, n_out)).total
        assert before * (n_in + 8) == after * 4 * (n_in + 1)
        assert after == lesson_answer(n_in, n_out)
        assert before / after == pytest.approx(4 - 28 / (n_in + 8))


def test_weights_only_refuses_a_pickle_that_calls_a_function():
    """The lesson's payload: torch.load(weights_only=True) refuses to call print."""

    class Surprise:
        def __reduce__(self):
            return (print, ("this line was printed by loading a file",))

    buffer = io.BytesIO()
    torch.save({"weight": torch.ones(3), "extra": Surprise()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global: GLOBAL print"):
        torch.load(buffer, weights_only=True)
