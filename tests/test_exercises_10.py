"""Tests for lesson 10 (accuracy you can see): its checker, check_fake_quantize_per_group, the
helper.py functions the lesson adds (fake_quantize, fake_quantize_linears,
linears_bits_per_weight, predict, plot_digits, plot_accuracy_vs_bits), and the numbers the
notebook prints.

The checker is run on learner-style functions written here, independently of the checker's
own Mistake functions: the stub, correct variants, each classic mistake, and functions that
raise or forget to return.

The notebook's accuracies are argmaxes of float32 matrix products, whose last bits differ
between CPUs. They are the same everywhere only if no test image has two scores that close:
``test_no_prediction_the_notebook_counts_is_near_a_tie`` checks the gap between the two
largest scores of every image, for every model the notebook measures.
"""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure
from test_exercises_contract import assert_names_mistake
from torch import nn

import helper
from helper import (
    fake_quantize,
    fake_quantize_linears,
    linears_bits_per_weight,
    plot_accuracy_vs_bits,
)
from support.exercises import FAKE_GROUPS_MISTAKES, check_fake_quantize_per_group
from support.models import plot_digits, predict

matplotlib.use("Agg")

EPS = torch.finfo(torch.float32).eps

# ------------------------------------------------------------------------------------------
# Learner-style answers
# ------------------------------------------------------------------------------------------


def fq_correct(weight, n_bits, group_size):
    """The lesson's solution."""
    q_max = 2 ** (n_bits - 1) - 1
    groups = weight.reshape(-1, group_size)
    scale = groups.abs().amax(dim=-1, keepdim=True) / q_max
    scale = scale.clamp(min=torch.finfo(torch.float32).eps)
    q = torch.round(groups / scale).clamp(-(2 ** (n_bits - 1)), q_max)
    return (q * scale).reshape(weight.shape)


def fq_correct_float64_view(weight, n_bits, group_size):
    """In float64, through a (rows, groups, group_size) view, max(...).values and no clamp
    (|w / s| never passes q_max)."""
    rows, columns = weight.shape
    view = weight.double().reshape(rows, columns // group_size, group_size)
    top = 2 ** (n_bits - 1) - 1
    scale = torch.maximum(view.abs().max(dim=2, keepdim=True).values / top, torch.tensor(1e-9))
    return ((view / scale).round() * scale).reshape(rows, columns)


def fq_correct_unflatten(weight, n_bits, group_size):
    """unflatten, torch.where for the floor, and an int8 round trip of the levels."""
    groups = weight.unflatten(-1, (-1, group_size))
    absmax = groups.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(absmax > 0, absmax / (2 ** (n_bits - 1) - 1), torch.ones_like(absmax))
    levels = (groups / scale).round().clamp(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1)
    return (levels.to(torch.int8).float() * scale).flatten(-2)


def fq_correct_helper(weight, n_bits, group_size):
    return helper.fake_quantize(weight, n_bits, "per_group", group_size=group_size)


def fq_correct_blockwise(weight, n_bits, group_size):
    block = helper.granularity_block_size(weight.shape, "per_group", group_size=group_size)
    q, s, z = helper.quantize_blockwise(weight, block, n_bits=n_bits, symmetric=True)
    return helper.dequantize_affine(q, block, s, z)


def _levels(groups, scale, n_bits, clamp=True):
    q = torch.round(groups / scale)
    return q.clamp(-(2 ** (n_bits - 1)), 2 ** (n_bits - 1) - 1) if clamp else q


def fq_always_127(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 127).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_always_127_clamped(weight, n_bits, group_size):
    """Ignores n_bits but clamps to its range: at 4 bits everything beyond 7 saturates."""
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 127).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_unsigned_q_max(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2**n_bits - 1)).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_one_level_too_many(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 2 ** (n_bits - 1)).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_one_level_too_many_no_clamp(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / 2 ** (n_bits - 1)).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_no_abs(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_no_abs_no_clamp(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.max(dim=-1, keepdim=True).values / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (torch.round(groups / scale) * scale).reshape(weight.shape)


def fq_groups_down_columns(weight, n_bits, group_size):
    groups = weight.t().reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    back = _levels(groups, scale, n_bits) * scale
    return back.reshape(weight.shape[1], weight.shape[0]).t()


def fq_per_row(weight, n_bits, group_size):
    scale = (weight.abs().amax(dim=1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(weight, scale, n_bits) * scale


def fq_per_tensor(weight, n_bits, group_size):
    scale = (weight.abs().max() / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(weight, scale, n_bits) * scale


def fq_no_keepdim(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_no_floor(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)
    return (_levels(groups, scale, n_bits) * scale).reshape(weight.shape)


def fq_truncates(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return (torch.trunc(groups / scale) * scale).reshape(weight.shape)


def fq_returns_levels(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(groups, scale, n_bits).reshape(weight.shape)


def fq_returns_int8(weight, n_bits, group_size):
    return fq_returns_levels(weight, n_bits, group_size).to(torch.int8)


def fq_no_reshape_back(weight, n_bits, group_size):
    groups = weight.reshape(-1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / (2 ** (n_bits - 1) - 1)).clamp(min=EPS)
    return _levels(groups, scale, n_bits) * scale


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        fq_correct,
        fq_correct_float64_view,
        fq_correct_unflatten,
        fq_correct_helper,
        fq_correct_blockwise,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    report = check_fake_quantize_per_group(function)
    assert report.status == "passed", repr(report)
    assert report.passed == len(report.results) == 4
    assert "Well done" in repr(report)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (fq_always_127, "ignores n_bits"),
        (fq_always_127_clamped, "ignores n_bits"),
        (fq_unsigned_q_max, "unsigned"),
        (fq_one_level_too_many, "one level too many"),
        (fq_one_level_too_many_no_clamp, "does not clamp"),
        (fq_no_abs, "largest magnitude"),
        (fq_no_abs_no_clamp, "largest magnitude"),
        (fq_groups_down_columns, "down the columns"),
        (fq_per_row, "one scale per row"),
        (fq_per_tensor, "whole tensor"),
        (fq_no_keepdim, "keepdim"),
        (fq_no_floor, "no floor"),
        (fq_truncates, "cuts off the fraction"),
        (fq_returns_levels, "never dequantizes"),
        (fq_returns_int8, "as int8"),
        (fq_no_reshape_back, "not the weight's shape"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    report = check_fake_quantize_per_group(function)
    assert_names_mistake(report, words)


def test_a_mistake_in_float64_is_recognised_like_its_float32_twin():
    def always_127_float64(weight, n_bits, group_size):
        return fq_always_127(weight.double(), n_bits, group_size)

    report = check_fake_quantize_per_group(always_127_float64)
    assert report.mistake is not None and "ignores n_bits" in report.mistake.description


def test_the_mistakes_have_distinct_messages_where_they_differ():
    descriptions = [mistake.description for mistake in FAKE_GROUPS_MISTAKES]
    assert len(set(descriptions)) >= 12


def test_ignoring_n_bits_passes_only_the_8_bit_case():
    """The case at 8 bits is right for the 127 mistake: the other bit widths are needed."""
    report = check_fake_quantize_per_group(fq_always_127)
    passed = [description for description, problem, _ in report.results if problem is None]
    assert passed == ["the lesson's test tensor, 8 bits, groups of 3 (one per row)"]


def test_no_floor_fails_only_the_all_zero_group():
    report = check_fake_quantize_per_group(fq_no_floor)
    failed = [description for description, problem, _ in report.results if problem]
    assert failed == ["a 2x6 weight whose first group is all zeros, 3 bits, groups of 3"]


def test_missing_keepdim_runs_silently_on_four_groups_of_four():
    """2x8 in groups of 4 is a 4x4 view: the wrong broadcast raises nothing there."""
    report = check_fake_quantize_per_group(fq_no_keepdim)
    description, problem, _ = report.results[0]
    assert "2x8" in description and problem is not None and "raised" not in problem
    assert "raised RuntimeError" in report.results[1][1]


def test_integer_result_is_reported_as_not_a_float_tensor():
    report = check_fake_quantize_per_group(fq_returns_int8)
    assert "expected a float tensor, got int8" in report.results[0][1]


def test_checker_does_not_modify_the_learners_inputs():
    def destructive(weight, n_bits, group_size):
        result = fq_correct(weight.clone(), n_bits, group_size)
        weight.zero_()
        return result

    assert check_fake_quantize_per_group(destructive).status == "passed"


# ------------------------------------------------------------------------------------------
# helper.fake_quantize
# ------------------------------------------------------------------------------------------

W = torch.tensor([[0.9, -0.2, 0.5, 0.1], [0.03, -0.01, 0.02, 0.0]])


def test_fake_quantize_at_2_bits_is_minus_s_zero_or_s_per_block():
    per_tensor = fake_quantize(W, 2, "per_tensor")
    assert torch.allclose(per_tensor, torch.tensor([[0.9, 0, 0.9, 0], [0, 0, 0, 0]]))
    assert torch.equal(per_tensor[1], torch.zeros(4))
    per_row = fake_quantize(W, 2, "per_channel")
    assert torch.allclose(per_row, torch.tensor([[0.9, 0, 0.9, 0], [0.03, 0, 0.03, 0]]))


def test_fake_quantize_matches_a_hand_written_round_trip():
    from support.examples import varied_rows_weight

    weight = varied_rows_weight(8, 16, seed=3)
    for n_bits in (8, 4, 3, 2):
        expected = fq_correct(weight, n_bits, 4)
        assert torch.allclose(fake_quantize(weight, n_bits, "per_group", 4), expected)
        per_row = fq_correct(weight, n_bits, 16)
        assert torch.allclose(fake_quantize(weight, n_bits, "per_channel"), per_row)


def test_fake_quantize_of_an_integer_weight_is_float32():
    result = fake_quantize(torch.tensor([[3, -7, 1, 0]]), 4, "per_tensor")
    assert result.dtype == torch.float32
    assert torch.equal(result, torch.tensor([[3.0, -7.0, 1.0, 0.0]]))


def test_fake_quantize_keeps_shape_and_dtype_and_leaves_its_input_alone():
    weight = W.to(torch.bfloat16)
    before = weight.clone()
    result = fake_quantize(weight, 4, "per_group", group_size=2)
    assert result.dtype == torch.bfloat16 and result.shape == weight.shape
    assert torch.equal(weight, before)


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"granularity": "per_group", "group_size": 3}, ValueError, "does not divide"),
        ({"granularity": "per_group"}, TypeError, "group_size"),
        ({"granularity": "per_row"}, ValueError, "unknown granularity"),
        ({"n_bits": 0}, ValueError, "n_bits"),
    ],
)
def test_fake_quantize_bad_input(keywords, error, message):
    with pytest.raises(error, match=message):
        fake_quantize(W, **keywords)


# ------------------------------------------------------------------------------------------
# helper.fake_quantize_linears, linears_bits_per_weight, predict
# ------------------------------------------------------------------------------------------


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))


def test_fake_quantize_linears_returns_a_quantized_copy():
    model = small_model()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    quantized = fake_quantize_linears(model, 2, "per_channel")
    assert quantized is not model
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert torch.equal(quantized[0].weight, fake_quantize(model[0].weight.detach(), 2))
    assert torch.equal(quantized[2][0].weight, fake_quantize(model[2][0].weight.detach(), 2))
    assert torch.equal(quantized[0].bias, model[0].bias)  # biases stay in float


def test_fake_quantize_linears_only_the_named_layers():
    model = small_model()
    quantized = fake_quantize_linears(model, 2, "per_tensor", layers=["2.0"])
    assert torch.equal(quantized[0].weight, model[0].weight)
    assert not torch.equal(quantized[2][0].weight, model[2][0].weight)


@pytest.mark.parametrize(
    ("args", "keywords", "error", "message"),
    [
        ((small_model(),), {"layers": ["nope"]}, ValueError, "no nn.Linear named 'nope'"),
        ((small_model(),), {"layers": "0"}, TypeError, "list of names"),
        ((small_model(), 4, "per_group", 8), {}, ValueError, "does not divide"),
        (("model",), {}, TypeError, "torch.nn.Module"),
    ],
)
def test_fake_quantize_linears_bad_input(args, keywords, error, message):
    with pytest.raises(error, match=message):
        fake_quantize_linears(*args, **keywords)


def test_linears_bits_per_weight_weights_each_layer_by_its_size():
    model = small_model()  # 8x4 = 32 weights and 4x2 = 8 weights
    per_row = linears_bits_per_weight(model, 4, "per_channel")
    assert math.isclose(per_row, (32 * (4 + 32 / 8) + 8 * (4 + 32 / 4)) / 40)
    assert linears_bits_per_weight(model, 2, "per_group", group_size=2) == 18.0
    assert math.isclose(linears_bits_per_weight(model, 8, "per_tensor", scale_bits=16), 8.8)
    with pytest.raises(ValueError, match="no nn.Linear"):
        linears_bits_per_weight(nn.ReLU())


def test_predict_is_the_argmax_without_gradients():
    model = small_model()
    x = torch.rand(5, 8, generator=torch.Generator().manual_seed(0))
    guesses = predict(model, x)
    assert guesses.dtype == torch.int64 and guesses.shape == (5,)
    assert torch.equal(guesses, model(x).argmax(dim=-1))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        predict(lambda x: x, x)


# ------------------------------------------------------------------------------------------
# The plots
# ------------------------------------------------------------------------------------------


def test_plot_digits_titles_wrong_predictions_in_red():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    images = torch.rand(5, 64, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([1, 2, 3, 4, 5])
    fig = plot_digits(images, labels, torch.tensor([1, 2, 0, 4, 5]), columns=3, title="t")
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    assert len(fig.axes) == 6  # 2 rows of 3, the last one empty
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert titles == ["1", "2", "3 -> 0", "4", "5"]
    assert matplotlib.colors.same_color(fig.axes[2].title.get_color(), "tab:red")
    assert len(fig.axes[0].images) == 1 and fig.axes[0].images[0].get_array().shape == (8, 8)
    assert fig._suptitle.get_text() == "t"
    no_predictions = plot_digits(images.reshape(5, 8, 8), labels)
    assert [ax.get_title() for ax in no_predictions.axes] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("images", "labels", "keywords", "message"),
    [
        (torch.rand(3, 63), torch.zeros(3), {}, r"\(n, 64\)"),
        (torch.rand(0, 64), torch.zeros(0), {}, "n >= 1"),
        (torch.rand(3, 64), torch.zeros(2), {}, "labels"),
        (torch.rand(3, 64), None, {}, "labels"),
        (torch.rand(3, 64), torch.zeros(3), {"predictions": torch.zeros(4)}, "predictions"),
        (torch.rand(3, 64), torch.zeros(3), {"columns": 0}, "columns"),
    ],
)
def test_plot_digits_bad_input(images, labels, keywords, message):
    with pytest.raises(ValueError, match=message):
        plot_digits(images, labels, **keywords)


def test_plot_accuracy_vs_bits_draws_one_line_per_granularity():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    correct = {"per tensor": {8: 348, 4: 347, 2: 32}, "per channel": {8: 348, 4: 343, 2: 56}}
    fig = plot_accuracy_vs_bits(correct, 360, float_correct=348, n_classes=10, title="t")
    assert plt.get_fignums() == before
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["per tensor", "per channel", "float32 (348/360)", "guessing (1 in 10)"]
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2]  # 8, 4, 2 bits from left to right
    assert list(ax.lines[1].get_ydata()) == [100 * c / 360 for c in (348, 343, 56)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8 bits", "4 bits", "2 bits"]
    assert ax.get_title() == "t" and ax.get_xlabel() and ax.get_ylabel()


@pytest.mark.parametrize(
    ("correct", "n_test", "error", "message"),
    [
        ({}, 360, TypeError, "non-empty"),
        ({"a": {8: 1}}, 0, ValueError, "n_test"),
        ({"a": {8: 361}}, 360, ValueError, "not in 0..360"),
    ],
)
def test_plot_accuracy_vs_bits_bad_input(correct, n_test, error, message):
    with pytest.raises(error, match=message):
        plot_accuracy_vs_bits(correct, n_test)


# ------------------------------------------------------------------------------------------
# The numbers the notebook prints, and why they are the same on every CPU
# ------------------------------------------------------------------------------------------

GRANULARITIES = {
    "per tensor": ("per_tensor", None),
    "per channel": ("per_channel", None),
    "groups of 32": ("per_group", 32),
    "groups of 16": ("per_group", 16),
    "groups of 8": ("per_group", 8),
}

#: The notebook's table: images right out of 360, per bit width and granularity.
EXPECTED_RIGHT = {
    8: [348, 348, 348, 348, 348],
    4: [347, 343, 348, 346, 345],
    3: [333, 343, 342, 342, 347],
    2: [32, 56, 203, 195, 237],
}
#: One layer at a time at 2 bits (section 8).
EXPECTED_ONE_LAYER = {
    "hidden1": [33, 137, 207, 200, 273],
    "hidden2": [243, 322, 331, 325, 333],
    "classifier": [252, 289, 289, 313, 329],
}


@pytest.fixture(scope="module")
def digits():
    from support.models import digits_classifier, load_digits_split

    _, _, x_test, y_test = load_digits_split()
    return digits_classifier(), x_test, y_test


def notebook_models(model):
    """Every model whose predictions the notebook counts, with a name."""
    from helper import W8A16LinearLayer, replace_linear_with_target_and_quantize
    from support.models import digits_classifier

    yield "float32", model
    yield "W8A16", replace_linear_with_target_and_quantize(digits_classifier(), W8A16LinearLayer)
    yield (
        "W8A16, head in float",
        replace_linear_with_target_and_quantize(
            digits_classifier(), W8A16LinearLayer, ["classifier"]
        ),
    )
    for n_bits in EXPECTED_RIGHT:
        for label, (granularity, size) in GRANULARITIES.items():
            yield f"{n_bits} bits {label}", fake_quantize_linears(model, n_bits, granularity, size)
    for layer in EXPECTED_ONE_LAYER:
        for label, (granularity, size) in GRANULARITIES.items():
            quantized = fake_quantize_linears(model, 2, granularity, size, layers=[layer])
            yield f"2 bits {label}, only {layer}", quantized


def test_the_notebooks_accuracy_table(digits):
    model, x_test, y_test = digits
    for n_bits, expected in EXPECTED_RIGHT.items():
        counts = [
            int((predict(fake_quantize_linears(model, n_bits, g, size), x_test) == y_test).sum())
            for g, size in GRANULARITIES.values()
        ]
        assert counts == expected, n_bits
    for layer, expected in EXPECTED_ONE_LAYER.items():
        counts = [
            int(
                (
                    predict(fake_quantize_linears(model, 2, g, size, layers=[layer]), x_test)
                    == y_test
                ).sum()
            )
            for g, size in GRANULARITIES.values()
        ]
        assert counts == expected, layer


def test_no_prediction_the_notebook_counts_is_near_a_tie(digits):
    """The gap between an image's two largest scores is at least 5e-4 for every image and
    every model the notebook measures; float32 products of 64 terms differ between CPU
    kernels by about 1e-6 here, so no CPU can swap the two. (The smallest gap we measured
    was 6.2e-4, for the classifier layer alone at 2 bits per channel.)"""
    model, x_test, _ = digits
    for name, quantized in notebook_models(model):
        with torch.no_grad():
            top2 = quantized(x_test).topk(2, dim=-1).values
        gap = (top2[:, 0] - top2[:, 1]).min().item()
        assert gap > 5e-4, f"{name}: two scores only {gap:.2e} apart"


def test_the_printed_confidences_are_far_from_a_rounding_boundary(digits):
    """Section 6 prints the float model's top probability to 2 decimals for the 5 images
    that change at 4 bits per channel, and the median: none lies near a half-way point."""
    model, x_test, _ = digits
    changed = torch.tensor([57, 98, 127, 150, 322])
    four_bit = predict(fake_quantize_linears(model, 4, "per_channel"), x_test)
    assert torch.equal((four_bit != predict(model, x_test)).nonzero().flatten(), changed)
    with torch.no_grad():
        confidence = model(x_test).softmax(dim=-1).amax(dim=-1).double()
    for value in [*confidence[changed].tolist(), confidence.median().item()]:
        distance = abs(value * 100 - math.floor(value * 100) - 0.5)
        assert distance > 0.01, value
