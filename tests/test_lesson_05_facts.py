"""The facts lesson 05 (granularity) and its cheat-sheet section state, measured outside the
notebook: what halving the group size buys on the lesson's 256x256 weight, and how much the
rows of a real model's weights differ (MiniLM, offline).
"""

from __future__ import annotations

import pytest
import torch

from helper import (
    bits_per_weight,
    dequantize_affine,
    granularity_block_size,
    linear_dequantization,
    linear_q_symmetric_per_channel,
    quantize_blockwise,
    sqnr_db,
)
from support.examples import varied_rows_weight


def _group_sqnrs(n_bits: int) -> list[tuple[float, float]]:
    """(SQNR in dB, bits per weight) for groups of 128, 64, 32, 16 and 8 of the lesson's weight."""
    weight = varied_rows_weight(256, 256, seed=0)
    measured = []
    for group_size in (128, 64, 32, 16, 8):
        block = granularity_block_size(weight.shape, "per_group", group_size=group_size)
        q, scale, zero_point = quantize_blockwise(weight, block, n_bits=n_bits, symmetric=True)
        back = dequantize_affine(q, block, scale, zero_point)
        measured.append((sqnr_db(weight, back), bits_per_weight(weight.shape, block, n_bits)))
    return measured


@pytest.mark.parametrize("n_bits", [8, 4])
def test_each_halving_of_the_group_buys_more_sqnr_but_less_per_bit(n_bits):
    """Cell 29's claim, corrected: from groups of 128 down to 8 each halving gains more dB
    than the one before, and fewer dB per extra bit per weight."""
    measured = _group_sqnrs(n_bits)
    gains = [b[0] - a[0] for a, b in zip(measured[:-1], measured[1:], strict=True)]
    per_bit = [
        (b[0] - a[0]) / (b[1] - a[1]) for a, b in zip(measured[:-1], measured[1:], strict=True)
    ]
    assert all(later > earlier for earlier, later in zip(gains[:-1], gains[1:], strict=True))
    assert all(later < earlier for earlier, later in zip(per_bit[:-1], per_bit[1:], strict=True))
    if n_bits == 8:
        assert [round(g, 2) for g in gains] == [0.76, 0.97, 1.11, 1.48]
        assert [round(p, 2) for p in per_bit] == [3.05, 1.94, 1.11, 0.74]


def test_minilm_rows_differ_far_less_than_100x_and_rows_win_23_of_37_layers():
    """Cells 1 and 33 and the cheat sheet: across MiniLM's 37 linear weights the largest
    row max|w| over the smallest runs from 1.8 to 59.7 (median 4.2), and one scale per row
    has the smaller MSE than one per column in 23 of them."""
    models = pytest.importorskip("support.models")
    minilm = models.load_minilm()
    ratios, row_wins = [], 0
    for module in minilm.modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight
            row_absmax = w.abs().amax(dim=1)
            ratios.append((row_absmax.max() / row_absmax.min()).item())
            mse = []
            for dim in (0, 1):
                q, s = linear_q_symmetric_per_channel(w, dim=dim)
                mse.append((linear_dequantization(q, s, 0) - w).square().mean().item())
            row_wins += mse[0] < mse[1]
    ratios = torch.tensor(ratios)
    assert ratios.numel() == 37
    assert round(ratios.min().item(), 1) == 1.8
    assert round(ratios.median().item(), 1) == 4.2
    assert round(ratios.max().item(), 1) == 59.7
    assert row_wins == 23


def test_a_row_scale_comes_out_of_the_product_and_a_column_scale_does_not():
    """The general reason of cell 33: F.linear with per-row dequantized weights equals the
    integer product times the row scales, whatever the weight; per-column scales must stay
    inside the sum (here: folded into the input, as lesson 06 shows)."""
    weight = varied_rows_weight(8, 16, seed=3)
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q, s_rows = linear_q_symmetric_per_channel(weight, dim=0)
    dequantized_first = torch.nn.functional.linear(x, s_rows.double() * q.double())
    scaled_after = torch.nn.functional.linear(x, q.double()) * s_rows.double().reshape(-1)
    assert torch.allclose(dequantized_first, scaled_after, rtol=1e-12, atol=1e-12)
    q_c, s_columns = linear_q_symmetric_per_channel(weight, dim=1)
    exact = torch.nn.functional.linear(x, s_columns.double() * q_c.double())
    folded_into_input = torch.nn.functional.linear(x * s_columns.double(), q_c.double())
    assert torch.allclose(exact, folded_into_input, rtol=1e-12, atol=1e-12)
