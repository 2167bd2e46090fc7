"""Facts lesson 13 states in its prose that no output cell of the lesson prints.

Each test names the cell whose sentence it backs. The numbers printed by the lesson itself
are checked by nbval; these are the ones written in the text only.
"""

import math

import torch

from helper import absmax_percentile, layer_names
from support.examples import seeded_randn
from support.models import digits_classifier


def clipped_per_row(weight: torch.Tensor, percentile: float) -> torch.Tensor:
    """How many magnitudes of every row lie beyond the row's ``percentile``-th percentile."""
    alpha = absmax_percentile(weight, (1, weight.shape[1]), percentile)
    return (weight.abs() > alpha.reshape(-1, 1)).sum(dim=1)


def test_percentile_99_clips_the_largest_weight_of_every_row_of_the_digits_classifier():
    """Cell c13-30: the classifier's rows hold 64 or 32 weights, and the 99th percentile of a
    row lies between its two largest magnitudes, so exactly the largest weight is clipped."""
    model = digits_classifier()
    widths = set()
    for name in layer_names(model):
        weight = model.get_submodule(name).weight.detach()
        widths.add(weight.shape[1])
        assert torch.equal(
            clipped_per_row(weight, 99.0), torch.ones(weight.shape[0], dtype=torch.long)
        )
    assert widths == {64, 32}


def test_percentile_99_clips_4_of_384_and_16_of_1536():
    """Cell c13-38: per row of MiniLM's encoder layers (384 or 1536 inputs), percentile 99
    clips about the largest 1%: 4 of 384 and 16 of 1536 magnitudes when no two are equal."""
    for width, clipped in ((384, 4), (1536, 16)):
        rows = seeded_randn(8, width, seed=1)
        assert torch.equal(clipped_per_row(rows, 99.0), torch.full((8,), clipped))
        # the interpolated percentile leaves n - 1 - floor((n - 1) * p / 100) magnitudes above it
        assert clipped == width - 1 - math.floor((width - 1) * 99.0 / 100)
