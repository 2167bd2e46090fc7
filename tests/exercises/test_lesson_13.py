"""Tests for lesson 13's checker, check_mse_search: the learner writes my_mse_search(tensor,
n_bits, ratios), the clipping range ratio * max|r| whose round trip on the symmetric grid
-q_max..q_max has the smallest MSE.

The checker runs on learner-style functions written here, independently of the checker's own
Mistake functions: the stub, a body without return, correct variants (loops or vectorised,
float32 or float64, numbers or tensors returned), and each classic mistake, which must be
named with its hint.
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_changed_in_place, assert_names_mistake, assert_passed

from support.exercises import MSE_SEARCH_MISTAKES, check_mse_search
from support.exercises.lesson13 import MSE_SEARCH_RECIPE

# ------------------------------------------------------------------------------------------
# Learner-style answers
# ------------------------------------------------------------------------------------------


def search_correct(tensor, n_bits, ratios):
    """The lesson's solution: a loop over the ratios, the best kept as it goes."""
    q_max = 2 ** (n_bits - 1) - 1
    peak = tensor.abs().max()
    best_mse, best_range = None, None
    for ratio in ratios:
        alpha = ratio * peak
        scale = alpha / q_max
        back = torch.round(tensor / scale).clamp(-q_max, q_max) * scale
        mse = ((back - tensor) ** 2).mean()
        if best_mse is None or mse < best_mse:
            best_mse, best_range = mse, alpha
    return best_range


def search_correct_vectorised_float64(tensor, n_bits, ratios):
    """Every ratio at once, in float64, returning a Python float."""
    r = tensor.double().flatten()
    q_max = 2 ** (n_bits - 1) - 1
    alphas = torch.tensor(ratios, dtype=torch.float64) * r.abs().max()
    scales = (alphas / q_max).unsqueeze(1)
    back = torch.clamp(torch.round(r / scales), -q_max, q_max) * scales
    mse = (back - r).pow(2).mean(dim=1)
    return alphas[mse.argmin()].item()


def search_correct_min_of_pairs(tensor, n_bits, ratios):
    """min over (mse, alpha) pairs, torch.clip and a 1-element tensor returned."""
    top = 2 ** (n_bits - 1) - 1
    largest = torch.max(torch.abs(tensor))
    pairs = []
    for c in ratios:
        s = c * largest / top
        deq = torch.clip(torch.round(tensor / s), min=-top, max=top) * s
        pairs.append((float(torch.mean((deq - tensor) ** 2)), c))
    _, c = min(pairs)
    return (c * largest).reshape(1)


def search_correct_helper(tensor, n_bits, ratios):
    from helper import absmax_minmax, clipping_mse_curve

    block = tuple(tensor.shape)
    curve = clipping_mse_curve(tensor, block, ratios, n_bits=n_bits).flatten()
    return ratios[int(curve.argmin())] * absmax_minmax(tensor, block)


def _search(tensor, n_bits, ratios, *, top=None, low=None, base=None, step=None, loss=None):
    """A loop like search_correct with one piece swapped (each mistake below sets one)."""
    q_max = 2 ** (n_bits - 1) - 1 if top is None else top
    q_low = -q_max if low is None else low
    peak = tensor.abs().max() if base is None else base(tensor)
    results = []
    for ratio in ratios:
        scale = ratio * peak / q_max
        back = (step or (lambda t, s: torch.round(t / s).clamp(q_low, q_max) * s))(tensor, scale)
        results.append(((loss or (lambda e: (e**2).mean()))(back - tensor), ratio * peak, ratio))
    return results


def search_always_127(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, top=127))[1]


def search_unsigned_q_max(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, top=2**n_bits - 1))[1]


def search_one_level_too_many(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, top=2 ** (n_bits - 1)))[1]


def search_no_clamp(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, step=lambda t, s: torch.round(t / s) * s))[1]


def search_compares_with_clipped(tensor, n_bits, ratios):
    """Measures the error against the clipped tensor: clipping never counts."""
    q_max = 2 ** (n_bits - 1) - 1
    peak = tensor.abs().max()
    errors = []
    for ratio in ratios:
        alpha, scale = ratio * peak, ratio * peak / q_max
        back = torch.round(tensor / scale).clamp(-q_max, q_max) * scale
        errors.append((((back - tensor.clamp(-alpha, alpha)) ** 2).mean(), alpha))
    return min(errors)[1]


def search_no_round(tensor, n_bits, ratios):
    def step(t, s):
        q_max = 2 ** (n_bits - 1) - 1
        return (t / s).clamp(-q_max, q_max) * s

    return min(_search(tensor, n_bits, ratios, step=step))[1]


def search_clamps_only_from_above(tensor, n_bits, ratios):
    """clamp(max=q_max) alone: the negative tail is never clipped."""
    q_max = 2 ** (n_bits - 1) - 1
    step = lambda t, s: torch.round(t / s).clamp(max=q_max) * s  # noqa: E731
    return min(_search(tensor, n_bits, ratios, step=step))[1]


def search_floor(tensor, n_bits, ratios):
    def step(t, s):
        q_max = 2 ** (n_bits - 1) - 1
        return torch.floor(t / s).clamp(-q_max, q_max) * s

    return min(_search(tensor, n_bits, ratios, step=step))[1]


def search_int_cast(tensor, n_bits, ratios):
    """.int() to get the levels: it cuts off the fraction, towards 0."""

    def step(t, s):
        q_max = 2 ** (n_bits - 1) - 1
        return (t / s).int().clamp(-q_max, q_max) * s

    return min(_search(tensor, n_bits, ratios, step=step))[1]


def search_clamps_to_q_min(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, low=-(2 ** (n_bits - 1))))[1]


def search_no_abs(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, base=lambda t: t.max()))[1]


def search_never_dequantizes(tensor, n_bits, ratios):
    q_max = 2 ** (n_bits - 1) - 1
    step = lambda t, s: torch.round(t / s).clamp(-q_max, q_max)  # noqa: E731
    return min(_search(tensor, n_bits, ratios, step=step))[1]


def search_mean_absolute_error(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, loss=lambda e: e.abs().mean()))[1]


def search_largest_mse(tensor, n_bits, ratios):
    return max(_search(tensor, n_bits, ratios))[1]


def search_returns_ratio(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios))[2]


def search_returns_mse(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios))[0]


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        search_correct,
        search_correct_vectorised_float64,
        search_correct_min_of_pairs,
        search_correct_helper,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    assert_passed(check_mse_search(function), cases=6)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (search_always_127, "ignores n_bits"),
        (search_unsigned_q_max, "unsigned"),
        (search_one_level_too_many, "one level too many"),
        (search_no_clamp, "only the rounding error"),
        (search_compares_with_clipped, "only the rounding error"),
        (search_no_round, "never rounds"),
        (search_clamps_to_q_min, "q_min"),
        (search_clamps_only_from_above, "clamps only from above"),
        (search_floor, "does not round to the nearest level"),
        (search_int_cast, "does not round to the nearest level"),
        (search_no_abs, "largest magnitude"),
        (search_never_dequantizes, "never dequantizes"),
        (search_mean_absolute_error, "mean absolute error"),
        (search_largest_mse, "largest MSE"),
        (search_returns_ratio, "best ratio"),
        (search_returns_mse, "smallest MSE"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    report = check_mse_search(function)
    assert_names_mistake(report, words)


def test_every_mistake_has_its_own_description():
    descriptions = [mistake.description for mistake in MSE_SEARCH_MISTAKES]
    assert len(set(descriptions)) == len(descriptions) == 14


def test_ignoring_n_bits_passes_only_the_8_bit_case():
    report = check_mse_search(search_always_127)
    passed = [description for description, problem, _ in report.results if problem is None]
    assert passed == ["241 evenly spread values from -3 to 3, 8 bits: nothing to clip"]


def test_only_the_negative_cases_catch_the_missing_abs():
    report = check_mse_search(search_no_abs)
    failed = [description for description, problem, _ in report.results if problem]
    assert failed == [
        "20,000 Laplace values whose largest magnitude is negative (-12.0), 2 bits",
        "4,000 Laplace values, all of them negative, 3 bits",
    ]
    assert "not one of the candidate ranges" in report.results[2][1]


def test_a_tensor_of_ranges_is_reported_as_not_one_number():
    def all_ranges(tensor, n_bits, ratios):
        return torch.tensor(ratios) * tensor.abs().max()

    report = check_mse_search(all_ranges)
    assert "expected one number (the clipping range)" in report.results[0][1]


def test_a_worse_candidate_is_reported_with_both_mses():
    def second_best(tensor, n_bits, ratios):
        results = sorted(_search(tensor, n_bits, ratios))
        return results[1][1]

    report = check_mse_search(second_best)
    assert report.status == "failed"
    assert "has MSE" in report.results[0][1] and "gives range" in report.results[0][1]


def test_checker_does_not_modify_the_learners_inputs():
    def destructive(tensor, n_bits, ratios):
        result = search_correct(tensor.clone(), n_bits, list(ratios))
        tensor.zero_()
        ratios.clear()
        return result

    assert_changed_in_place(check_mse_search(destructive), "tensor")


# ------------------------------------------------------------------------------------------
# Wrong answers that no known mistake explains
# ------------------------------------------------------------------------------------------


def search_ratios_of_the_mean(tensor, n_bits, ratios):
    """Candidate ranges from the mean magnitude, not the largest."""
    return min(_search(tensor, n_bits, ratios, base=lambda t: t.abs().mean()))[1]


def search_q_max_one_too_small(tensor, n_bits, ratios):
    return min(_search(tensor, n_bits, ratios, top=max(2 ** (n_bits - 1) - 2, 1)))[1]


def search_dequantizes_with_alpha(tensor, n_bits, ratios):
    """Multiplies the levels by alpha instead of by the step s = alpha / q_max."""
    q_max = 2 ** (n_bits - 1) - 1
    peak = tensor.abs().max()
    best = None
    for ratio in ratios:
        alpha = ratio * peak
        levels = torch.round(tensor / (alpha / q_max)).clamp(-q_max, q_max)
        mse = ((levels * alpha - tensor) ** 2).mean()
        if best is None or mse < best[0]:
            best = (mse, alpha)
    return best[1]


def search_largest_error(tensor, n_bits, ratios):
    """Minimises the largest error instead of the mean squared error."""
    return min(_search(tensor, n_bits, ratios, loss=lambda e: e.abs().max()))[1]


@pytest.mark.parametrize(
    "function",
    [
        search_ratios_of_the_mean,
        search_q_max_one_too_small,
        search_dequantizes_with_alpha,
        search_largest_error,
    ],
    ids=lambda f: f.__name__,
)
def test_unknown_mistake_gets_the_first_failing_case_and_the_recipe(function):
    report = check_mse_search(function)
    text = repr(report)
    assert report.status == "failed" and report.mistake is None, text
    assert "It looks like your function" not in text
    assert "The first case that fails:" in text and f"recipe: {MSE_SEARCH_RECIPE}" in text
    assert "  expected: " in text  # the best range, one number
    for mistake in MSE_SEARCH_MISTAKES:
        assert mistake.hint not in text, mistake.description
    for _, _, hint in report.results:
        assert f"hint: {hint}" not in text


def test_the_one_sided_clamp_and_floor_no_longer_get_other_mistakes_hints():
    """Both used to be reported with another mistake's hint (the q_min clamp, and the case
    hint about the largest magnitude); now each gets its own."""
    one_sided = repr(check_mse_search(search_clamps_only_from_above))
    assert "clamp both sides, clamp(-q_max, q_max)" in one_sided
    assert "The extra code -2 ** (n_bits - 1) stays unused" not in one_sided
    floor = repr(check_mse_search(search_floor))
    assert "torch.floor always goes down" in floor
    assert "ratios of the largest *magnitude*" not in floor
