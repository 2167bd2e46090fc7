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
    assert_passed(check_mse_search(function), cases=5)


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
    assert len(set(descriptions)) == len(descriptions) == 12


def test_ignoring_n_bits_passes_only_the_8_bit_case():
    report = check_mse_search(search_always_127)
    passed = [description for description, problem, _ in report.results if problem is None]
    assert passed == ["241 evenly spread values from -3 to 3, 8 bits: nothing to clip"]


def test_the_negative_outlier_case_catches_the_missing_abs_alone():
    report = check_mse_search(search_no_abs)
    failed = [description for description, problem, _ in report.results if problem]
    assert failed == ["20,000 Laplace values whose largest magnitude is negative (-12.0), 2 bits"]
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
