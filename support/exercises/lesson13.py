"""Lesson 13, beyond min-max: ``check_mse_search``.

The learner writes ``my_mse_search(tensor, n_bits, ratios)``: the clipping range
``alpha = c * max|r|`` (one range for the whole tensor) whose round trip on the course's
symmetric grid, ``q = clamp(round(r / s), -q_max, q_max)`` with ``s = alpha / q_max``, has the
smallest MSE among the candidate ratios ``c``. The reference is ``helper.clipping_mse_curve``; a
learner's range passes if it is a candidate whose MSE equals the best (to 1e-5: float32 and
float64 sums may order a near-tie differently; the cases have none). Every wrong function below
differs from the right search in one place.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch

from helper import absmax_minmax, clipping_mse_curve, fake_quantize_clipped
from support.examples import seeded_laplace, seeded_randn, varied_rows_weight
from support.exercises.core import CheckCase, CheckReport, mistakes_from_rows, run_checks

__all__ = [
    "MSE_SEARCH_MISTAKES",
    "MSE_SEARCH_RECIPE",
    "check_mse_search",
]


def _mse_search_variant(
    tensor: torch.Tensor,
    n_bits: int,
    ratios: Sequence[float],
    *,
    q_max: Callable[[int], int] = lambda n: 2 ** (n - 1) - 1,
    q_low: Callable[[int], int] | None = None,
    magnitude: bool = True,
    rounding: Callable[[torch.Tensor], torch.Tensor] | None = torch.round,
    clamp: bool | str = True,
    dequantize: bool = True,
    error: Callable[[torch.Tensor], torch.Tensor] = lambda e: e.square().mean(),
    pick: Callable[[torch.Tensor], int] = lambda mse: int(mse.argmin()),
    answer: str = "range",
) -> Any:
    """The right search, or one classic mistake, depending on the keywords: ``rounding`` is
    ``torch.round``, another function (``torch.floor``) or ``None``; ``clamp`` is ``True``
    (both sides), ``"max"`` (the top only) or ``False``."""
    r = tensor  # float32, as a learner computes it
    top = q_max(n_bits)
    low = -top if q_low is None else q_low(n_bits)
    peak = (r.abs() if magnitude else r).max()
    errors = []
    for ratio in ratios:
        scale = ratio * peak / top
        q = r / scale
        if rounding is not None:
            q = rounding(q)
        if clamp == "max":
            q = q.clamp(max=top)
        elif clamp:
            q = q.clamp(low, top)
        back = q * scale if dequantize else q
        errors.append(error(back - r))
    errors = torch.stack(errors)
    best = pick(errors)
    if answer == "ratio":
        return float(ratios[best])
    if answer == "mse":
        return float(errors[best])
    return float(ratios[best] * peak)


_SEARCH_Q_MAX_HINT = (
    "the symmetric grid's largest level is q_max = 2 ** (n_bits - 1) - 1 (127 at 8 bits, 7 at "
    "4, 1 at 2), and the scale of a range alpha is s = alpha / q_max."
)

# One row per classic mistake: (description, what differs from the right answer, hint).
_MSE_SEARCH_ROWS = (
    (
        "always divides by 127: it ignores n_bits",
        dict(q_max=lambda n: 127),
        _SEARCH_Q_MAX_HINT + " With 127 at every bit width the search measures 8-bit errors "
        "and finds the 8-bit range.",
    ),
    (
        "takes q_max = 2 ** n_bits - 1, the largest *unsigned* n-bit number",
        dict(q_max=lambda n: 2**n - 1),
        _SEARCH_Q_MAX_HINT + " 2 ** n_bits - 1 (15 at 4 bits) is the top of an unsigned range.",
    ),
    (
        "takes q_max = 2 ** (n_bits - 1), one level too many",
        dict(q_max=lambda n: 2 ** (n - 1)),
        _SEARCH_Q_MAX_HINT,
    ),
    (
        "measures only the rounding error (it never clamps, or compares with the clipped "
        "tensor), so the smallest range always wins",
        dict(clamp=False),
        "clamp the levels to [-q_max, q_max]: that is what clips the values beyond alpha, and "
        "compare the round trip with the *original* tensor, so the clipping error counts. "
        "Without it a smaller range only ever looks better.",
    ),
    (
        "never rounds, so only the clipping error counts and min-max always wins",
        dict(rounding=None),
        "round to the nearest level, torch.round(tensor / s), before clamping: the rounding "
        "error is the half of the trade-off that a larger range makes worse.",
    ),
    (
        "clamps only from above (clamp(max=q_max)): values below -alpha are never clipped",
        dict(clamp="max"),
        "clamp both sides, clamp(-q_max, q_max): a value below -alpha must saturate at "
        "-alpha as one above alpha saturates at alpha. Without the lower clamp the negative "
        "tail costs only rounding error, and the search picks too small a range.",
    ),
    (  # on these cases torch.ceil, torch.trunc and .int() pick the same ranges as floor
        "does not round to the nearest level: it rounds down (torch.floor), or up, or cuts "
        "off the fraction (torch.trunc, .int())",
        dict(rounding=torch.floor),
        "round to the nearest level with torch.round(tensor / s): torch.floor always goes "
        "down (2.9 -> 2), torch.ceil up, torch.trunc and .int() towards 0, so a value moves "
        "by up to a whole step instead of half a step, and the search weighs a larger "
        "rounding error against the clipping error.",
    ),
    (
        "clamps to q_min = -2 ** (n_bits - 1) on the negative side: its grid is not symmetric",
        dict(q_low=lambda n: -(2 ** (n - 1))),
        "clamp to [-q_max, q_max]: a clipped value saturates at -alpha or alpha. The extra "
        "code -2 ** (n_bits - 1) stays unused, as with min-max (where no value reaches it).",
    ),
    (
        "scales the ratios by the largest value instead of the largest magnitude (no abs)",
        dict(magnitude=False),
        "the candidate ranges are ratio * tensor.abs().max(): a tensor whose largest "
        "magnitude is negative needs the abs.",
    ),
    (
        "compares the integer levels with the real values: it never dequantizes (q * s)",
        dict(dequantize=False),
        "dequantize before measuring: back = q * s, then the error is back - tensor.",
    ),
    (
        "measures the mean absolute error instead of the mean squared error",
        dict(error=lambda e: e.abs().mean()),
        "the error to minimise is the MSE, ((back - tensor) ** 2).mean(): it weighs the "
        "large errors of clipped values more than the absolute error does.",
    ),
    (
        "picks the range with the largest MSE instead of the smallest",
        dict(pick=lambda mse: int(mse.argmax())),
        "keep the candidate with the *smallest* MSE (argmin, or min over (mse, range) pairs).",
    ),
    (
        "returns the best ratio, not the clipping range",
        dict(answer="ratio"),
        "return the range itself, alpha = best_ratio * tensor.abs().max(), in the tensor's "
        "units: that is what r_range and quantize_clipped take.",
    ),
    (
        "returns the smallest MSE, not the clipping range that gives it",
        dict(answer="mse"),
        "remember which range gave the smallest MSE and return that range, not the MSE.",
    ),
)
MSE_SEARCH_MISTAKES = mistakes_from_rows(_MSE_SEARCH_ROWS, _mse_search_variant)

#: The lesson's method, shown when a wrong answer matches none of the mistakes above.
MSE_SEARCH_RECIPE = (
    "for each ratio c: alpha = c * tensor.abs().max(), s = alpha / q_max with q_max = "
    "2 ** (n_bits - 1) - 1, back = torch.round(tensor / s).clamp(-q_max, q_max) * s, mse = "
    "((back - tensor) ** 2).mean(); return the alpha (one number) with the smallest mse."
)


def _search_cases() -> list[tuple[str, tuple, str]]:
    """(description, (tensor, n_bits, ratios), hint): every case has one clear best ratio."""

    tenths = [k / 10 for k in range(1, 11)]
    outlier = seeded_randn(400, seed=11)
    outlier[7] = 9.0
    negative = seeded_laplace(20000, seed=4)
    negative[3] = -12.0
    uniform = torch.linspace(-3.0, 3.0, 241)
    below_zero = -seeded_laplace(4000, seed=6).abs()  # every value negative
    general = (
        "for each ratio: alpha = ratio * tensor.abs().max(), s = alpha / q_max, back = "
        "torch.round(tensor / s).clamp(-q_max, q_max) * s, mse = ((back - tensor) ** 2).mean()"
        "; return the alpha with the smallest mse."
    )
    return [
        (
            "400 normal values and one outlier (9.0), 4 bits, ratios 0.1 to 1.0",
            (outlier, 4, tenths),
            general,
        ),
        (
            "the same tensor at 2 bits (levels -alpha, 0, alpha)",
            (outlier, 2, tenths),
            "at 2 bits q_max = 1: every value becomes -alpha, 0 or alpha.",
        ),
        (
            "20,000 Laplace values whose largest magnitude is negative (-12.0), 2 bits",
            (negative, 2, [k / 20 for k in range(1, 21)]),
            "the candidate ranges are ratios of the largest *magnitude*, here 12.",
        ),
        (
            "241 evenly spread values from -3 to 3, 8 bits: nothing to clip",
            (uniform, 8, [0.5, 0.8, 0.9, 0.95, 1.0]),
            "values spread evenly have no rare extremes: clipping them only adds error, so "
            "the best range is min-max, 1.0 * max|r| = 3.",
        ),
        (
            "a 2-D weight, varied_rows_weight(8, 16, seed=2), 3 bits, one range for all",
            (varied_rows_weight(8, 16, seed=2), 3, tenths),
            "take the largest magnitude of the whole tensor, whatever its shape.",
        ),
        (
            "4,000 Laplace values, all of them negative, 3 bits",
            (below_zero, 3, tenths),
            "the values beyond -alpha are clipped too: clamp both sides.",
        ),
    ]


def _search_mse(tensor: torch.Tensor, n_bits: int, absmax: float) -> float:
    """The MSE of ``tensor``'s round trip clipped at ``absmax`` (helper, float64 mean)."""

    back = fake_quantize_clipped(tensor, tuple(tensor.shape), absmax, n_bits=n_bits)
    return (back - tensor).double().square().mean().item()


def _expect_best_range(tensor: torch.Tensor, n_bits: int, ratios: Sequence[float]):
    """A check that the result is the candidate range with the smallest MSE."""

    block = tuple(tensor.shape)
    peak = absmax_minmax(tensor, block).item()
    curve = clipping_mse_curve(tensor, block, ratios, n_bits=n_bits).flatten()
    best = int(curve.argmin())
    expected, best_mse = ratios[best] * peak, _search_mse(tensor, n_bits, ratios[best] * peak)

    def check(result: Any) -> str | None:
        if isinstance(result, torch.Tensor):
            if result.numel() != 1:
                return (
                    f"expected one number (the clipping range), got a tensor of shape "
                    f"{tuple(result.shape)}"
                )
            result = result.item()
        if isinstance(result, bool) or not isinstance(result, numbers.Real):
            return f"expected a number (the clipping range), got {type(result).__name__}"
        got = float(result)
        if math.isclose(got, expected, rel_tol=1e-6):
            return None
        candidate = any(math.isclose(got, c * peak, rel_tol=1e-6) for c in ratios)
        if candidate and math.isfinite(got):
            mse = _search_mse(tensor, n_bits, got)
            if mse <= best_mse * (1 + 1e-5):
                return None  # a tie, broken the other way
            return (
                f"range {got:.6g} has MSE {mse:.6g}, but ratio {ratios[best]:g} gives range "
                f"{expected:.6g} with MSE {best_mse:.6g}"
            )
        return (
            f"got {got:.6g}, which is not one of the candidate ranges ratio * max|r| "
            f"(max|r| = {peak:.6g}); expected {expected:.6g} (ratio {ratios[best]:g})"
        )

    check.expected = expected
    return check


def check_mse_search(function: Callable) -> CheckReport:
    """Exercise of lesson 13: ``my_mse_search(tensor, n_bits, ratios)`` returning the
    clipping range ``alpha = ratio * max|r|`` (one number) whose round trip on the symmetric
    grid ``-q_max..q_max`` has the smallest MSE among the candidate ``ratios``.

    The cases tell the classic mistakes apart: an outlier at 4 and at 2 bits, a Laplace tensor
    whose largest magnitude is negative, evenly spread values at 8 bits (where min-max wins),
    a 2-D weight at 3 bits and all-negative values at 3 bits (where a one-sided clamp clips
    nothing).
    """
    cases = [
        CheckCase(text, args, _expect_best_range(*args), hint)
        for text, args, hint in _search_cases()
    ]
    return run_checks(
        "MSE-optimal clipping range", function, cases, MSE_SEARCH_MISTAKES, recipe=MSE_SEARCH_RECIPE
    )
