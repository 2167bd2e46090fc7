"""Tests for helper.py section 8, symmetric mode (course lesson L3-A):
``get_q_scale_symmetric``, ``linear_q_symmetric`` and ``plot_symmetric_vs_asymmetric``.

The expected numbers are the course's inputs with values worked out here from the formulas,
and PyTorch's symmetric observers (which divide by 127.5 where the course divides by 127).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from conftest import TEST_TENSOR, f32
from matplotlib.figure import Figure
from torch.ao.quantization import MinMaxObserver

import helper
from helper import (
    choose_qparams_affine,
    get_q_scale_symmetric,
    linear_dequantization,
    linear_q_symmetric,
)
from support import plots

# ------------------------------------------------------------------------------------------
# The course's numbers (L3-A) and PyTorch's symmetric observer
# ------------------------------------------------------------------------------------------


def test_course_symmetric_scale_per_tensor():
    """L3-A: s = max|r| / 127 = 728.5999755859375 / 127 = 5.737007681779035 (a float)."""
    scale = get_q_scale_symmetric(TEST_TENSOR)
    assert type(scale) is float
    assert scale == f32(728.6) / 127 == 5.737007681779035


def test_course_symmetric_quantize_per_tensor():
    """L3-A: q = round(r / s), values worked out by hand; dequantized error within s/2."""
    q, scale = linear_q_symmetric(TEST_TENSOR)
    assert scale == 5.737007681779035
    # round(191.6 / 5.737) = round(33.397) = 33, round(-13.5 / 5.737) = round(-2.353) = -2, ...
    expected = torch.tensor([[33, -2, 127], [16, 52, -32], [0, 119, 43]], dtype=torch.int8)
    assert torch.equal(q, expected)
    from_formula = [[round(v / scale) for v in row] for row in TEST_TENSOR.double().tolist()]
    assert q.tolist() == from_formula
    deq = linear_dequantization(q, scale, 0)
    assert (deq - TEST_TENSOR).abs().max().item() <= scale / 2 + 1e-4
    # the course's MSE for symmetric mode is larger than asymmetric's 1.573 (L2-B)
    assert (deq - TEST_TENSOR).square().mean().item() == pytest.approx(2.5092, abs=1e-3)


def test_course_symmetric_uint8_uses_the_midpoint_zero_point():
    """uint8: z = 128 (the midpoint, like PyTorch), s = max|r| / (255 - 128) = the int8 scale."""
    scale, zero_point = choose_qparams_affine(TEST_TENSOR, (3, 3), torch.uint8, symmetric=True)
    assert zero_point.item() == 128
    assert scale.item() == f32(728.6) / (255 - 128) == get_q_scale_symmetric(TEST_TENSOR)
    assert get_q_scale_symmetric(TEST_TENSOR, torch.uint8) == scale.item()
    q_uint8, _ = linear_q_symmetric(TEST_TENSOR, torch.uint8)
    q_int8, _ = linear_q_symmetric(TEST_TENSOR, torch.int8)
    # the same grid, shifted by 128; and 0 stays exact
    assert torch.equal(q_uint8.to(torch.int64), q_int8.to(torch.int64) + 128)
    assert q_uint8[2, 0].item() == 128


def test_pytorch_symmetric_observer_divides_by_127_5():
    """PyTorch's symmetric observers: s = max|r| / 127.5 and z = 128 for quint8 (documented).

    helper keeps the course's 127: its scale is larger by 127.5 / 127.
    """
    observer = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric)
    observer(TEST_TENSOR)
    torch_scale, torch_zero_point = observer.calculate_qparams()
    assert torch_zero_point.item() == 128
    assert torch_scale.item() == pytest.approx(728.6 / 127.5, rel=1e-6)
    ours = get_q_scale_symmetric(TEST_TENSOR, torch.uint8)
    assert ours / torch_scale.item() == pytest.approx(127.5 / 127, rel=1e-6)


# ------------------------------------------------------------------------------------------
# The lesson's plot: plot_symmetric_vs_asymmetric
# ------------------------------------------------------------------------------------------


def panel_text(ax) -> str:
    """The text box of a panel (levels in use, MSE, SQNR)."""
    return "\n".join(text.get_text() for text in ax.texts)


def test_plot_has_an_asymmetric_and_a_symmetric_panel():
    """Two panels, titled with each mode's scale and zero point, closed for pyplot."""
    before = plt.get_fignums()
    fig = helper.plot_symmetric_vs_asymmetric(TEST_TENSOR)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before
    top, bottom = fig.axes
    assert top.get_title() == "asymmetric: s = 3.579, z = -77"
    assert bottom.get_title() == "symmetric: s = 5.737, z = 0"
    assert "MSE = 1.573" in panel_text(top) and "MSE = 2.509" in panel_text(bottom)
    assert "levels in use: 9 of 256" in panel_text(top)
    assert bottom.get_xlabel() and top.get_ylabel() == "count"
    assert fig.legends and fig.get_suptitle() == "9 values on two int8 grids"


def test_plot_draws_one_line_per_level_and_marks_the_used_ones():
    """At 4 bits: 16 level lines per panel, red where used; the one-signed tensor uses 7 of
    16 symmetric levels."""
    positive = torch.arange(1.0, 11.0)
    fig = helper.plot_symmetric_vs_asymmetric(positive, n_bits=4)
    for ax in fig.axes:
        unused, used = ax.collections[:2]
        assert len(unused.get_segments()) + len(used.get_segments()) == 16
    assert "levels in use: 7 of 16" in panel_text(fig.axes[1])


def test_plot_thins_out_unused_levels_of_int16():
    """int16's 65,536 levels: at most MAX_LEVEL_LINES unused lines are drawn (plus used ones)."""
    fig = helper.plot_symmetric_vs_asymmetric(torch.tensor([-1.0, 0.5, 2.0]), torch.int16)
    unused, used = fig.axes[0].collections[:2]
    assert len(unused.get_segments()) <= plots.MAX_LEVEL_LINES
    assert len(used.get_segments()) == 3


@pytest.mark.parametrize("tensor", [torch.zeros(4), torch.full((2, 2), 5.0)], ids=["zeros", "5s"])
def test_plot_handles_constant_tensors(tensor):
    """A constant (or all-zero) tensor still plots, as one narrow bar."""
    fig = helper.plot_symmetric_vs_asymmetric(tensor, torch.uint8)
    assert "levels in use: 1 of 256" in panel_text(fig.axes[0])


def test_plot_rejects_bad_bins_and_does_not_modify_its_input():
    """bins must be a whole number >= 1; the tensor is left as it was."""
    tensor = TEST_TENSOR.clone()
    with pytest.raises(ValueError, match="bins"):
        helper.plot_symmetric_vs_asymmetric(tensor, bins=0)
    helper.plot_symmetric_vs_asymmetric(tensor, bins=5)
    assert torch.equal(tensor, TEST_TENSOR)
