"""The facts lesson 06 (weights and activations) and its cheat-sheet section state, checked in
general rather than on the lesson's one example: which scales can leave the matrix product's
sum, and how long an int32 sum of int8 products stays exact.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helper import (
    linear_dequantization_per_group,
    linear_q_symmetric_per_channel,
    linear_q_symmetric_per_group,
    quantized_linear_W8A32_without_bias,
)
from support.examples import seeded_randn, varied_rows_weight

SHAPES = [(3, 6, 1), (16, 64, 4), (5, 96, 7)]  # (outputs, inputs, tokens)


@pytest.mark.parametrize(("outputs", "inputs", "tokens"), SHAPES)
def test_a_row_scale_may_multiply_the_output_of_f_linear(outputs, inputs, tokens):
    """Per output row: F.linear of the integers, times the scales along the last axis, is
    the dequantize-first output (the course's L4 w8_a16_forward order)."""
    weight = varied_rows_weight(outputs, inputs, seed=outputs)
    x = seeded_randn(tokens, inputs, seed=inputs)
    q, s = linear_q_symmetric_per_channel(weight, dim=0)
    first = quantized_linear_W8A32_without_bias(x, q, s, 0)
    after = F.linear(x, q.float()) * s.reshape(-1)
    assert torch.allclose(first, after, rtol=1e-5, atol=1e-6)
    if tokens == 1 and outputs > 1:  # an (out, 1) scale broadcasts a (1, out) output
        assert (F.linear(x, q.float()) * s).shape == (outputs, outputs)


@pytest.mark.parametrize(("outputs", "inputs", "tokens"), SHAPES)
def test_a_column_scale_folds_into_the_activations(outputs, inputs, tokens):
    """Per input column: the scale stays inside the sum; multiplying the input by it first
    gives the dequantize-first output."""
    weight = varied_rows_weight(outputs, inputs, seed=outputs)
    x = seeded_randn(tokens, inputs, seed=inputs)
    q, s = linear_q_symmetric_per_channel(weight, dim=1)
    first = quantized_linear_W8A32_without_bias(x, q, s, 0)
    assert torch.allclose(first, F.linear(x * s, q.float()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("group_size", [2, 3, 32])
def test_block_scales_cost_one_multiplication_per_partial_sum(group_size):
    """Per block along the sum: one partial sum per block, times its scale, summed."""
    outputs, inputs, tokens = 4, 96, 3
    weight = varied_rows_weight(outputs, inputs, seed=1)
    x = seeded_randn(tokens, inputs, seed=2)
    q, s = linear_q_symmetric_per_group(weight, group_size)
    blocks = inputs // group_size
    partial = torch.einsum(
        "bki,oki->bok",
        x.view(tokens, blocks, group_size),
        q.float().view(outputs, blocks, group_size),
    )
    blockwise = (partial * s.view(outputs, blocks)).sum(dim=-1)
    dequantized = F.linear(x, linear_dequantization_per_group(q, s, group_size))
    assert torch.allclose(blockwise, dequantized, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("largest", "fits"), [(128 * 128, 131_071), (255 * 255, 33_025)])
def test_int32_holds_the_worst_case_sum_up_to_the_stated_length(largest, fits):
    """131,071 worst-case int8 products fit in int32 and 131,072 do not; with zero points
    (|q - z| up to 255), 33,025 and 33,026. Computed in int64, so nothing wraps here."""
    limit = torch.iinfo(torch.int32).max
    for n, ok in ((fits, True), (fits + 1, False)):
        terms = torch.full((n,), largest, dtype=torch.int64)
        assert (int(terms.sum()) <= limit) is ok
    assert torch.iinfo(torch.int32).max // largest == fits
