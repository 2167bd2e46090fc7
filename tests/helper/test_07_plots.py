"""Tests for helper.py section 7, the plots: ``plot_quantization_errors``, what each panel
shows, its colours, and pyplot's state.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import pytest
import torch
from conftest import TEST_TENSOR
from matplotlib.figure import Figure

from helper import (
    get_q_range,
    linear_dequantization,
    linear_quantization,
    plot_quantization_errors,
)

COLOUR_BLIND_SAFE = {"viridis", "cividis", "magma", "inferno", "plasma"}


def quantized_triple(tensor, dtype=torch.int8, n_bits=None):
    """(original, quantized, dequantized) for ``tensor``."""
    q, scale, zero_point = linear_quantization(tensor, dtype, n_bits)
    return tensor, q, linear_dequantization(q, scale, zero_point)


def image_axes(fig: Figure):
    """The four heatmap axes (the colour bars are axes without images)."""
    return [ax for ax in fig.axes if ax.images]


@pytest.fixture(scope="module")
def course_plot():
    """The plot of the course's test tensor, drawn once for the module."""
    original, q, deq = quantized_triple(TEST_TENSOR)
    return plot_quantization_errors(original, q, deq), (original, q, deq)


def test_returns_a_figure_with_four_image_panels_and_colour_bars(course_plot):
    """A Figure with 4 heatmaps, each with its own colour bar (8 axes in all)."""
    fig, _ = course_plot
    assert isinstance(fig, Figure)
    assert len(image_axes(fig)) == 4
    assert all(len(ax.images) == 1 for ax in image_axes(fig))
    assert len(fig.axes) == 8


def test_panel_titles_name_the_four_stages(course_plot):
    """Titles, left to right: original, quantized (with dtype and range), dequantized, error."""
    fig, _ = course_plot
    titles = [ax.get_title().lower() for ax in image_axes(fig)]
    assert "original" in titles[0]
    assert "quantized" in titles[1] and "dequantized" not in titles[1]
    assert "int8" in titles[1] and "[-128, 127]" in titles[1]
    assert "dequantized" in titles[2]
    assert "error" in titles[3]


def test_each_panel_draws_exactly_its_data(course_plot):
    """The image arrays are the original, q, the dequantized tensor and |original - deq|."""
    fig, (original, q, deq) = course_plot
    arrays = [torch.from_numpy(ax.images[0].get_array().data) for ax in image_axes(fig)]
    expected = [
        original.double(),
        q.double(),
        deq.double(),
        (original.double() - deq.double()).abs(),
    ]
    for array, want in zip(arrays, expected, strict=True):
        assert torch.equal(array.double(), want)


def test_original_and_dequantized_share_colour_limits_covering_the_data(course_plot):
    """Both value panels use the joint data range, not the course's fixed 0..1."""
    fig, (original, _, deq) = course_plot
    axes = image_axes(fig)
    clim_original = axes[0].images[0].get_clim()
    clim_dequantized = axes[2].images[0].get_clim()
    assert clim_original == clim_dequantized
    low = min(original.min().item(), deq.min().item())
    high = max(original.max().item(), deq.max().item())
    assert clim_original == pytest.approx((low, high))
    assert clim_original != (0.0, 1.0)


def test_quantized_and_error_colour_limits(course_plot):
    """The quantized panel spans its integers; the error panel runs from 0 to the max error."""
    fig, (original, q, deq) = course_plot
    axes = image_axes(fig)
    assert axes[1].images[0].get_clim() == (q.min().item(), q.max().item())
    max_error = (original.double() - deq.double()).abs().max().item()
    assert max_error > 0
    assert axes[3].images[0].get_clim() == pytest.approx((0.0, max_error))


def test_colour_maps_are_colour_blind_safe(course_plot):
    """Every panel uses a perceptually uniform, colour-blind-safe colour map."""
    fig, _ = course_plot
    names = [ax.images[0].get_cmap().name for ax in image_axes(fig)]
    assert set(names) <= COLOUR_BLIND_SAFE
    assert names[0] == names[2], "original and dequantized must use one colour map"


def test_small_tensor_cells_are_annotated_with_their_values(course_plot):
    """A 3x3 tensor gets one text per cell in each panel; q cells show the integers."""
    fig, (_, q, _) = course_plot
    for ax in image_axes(fig):
        assert len(ax.texts) == q.numel()
    q_texts = [text.get_text() for text in image_axes(fig)[1].texts]
    assert q_texts == [str(v) for v in q.flatten().tolist()]


def test_large_tensor_has_no_cell_texts():
    """A 32x32 tensor is too big to annotate: no cell texts in any panel."""
    generator = torch.Generator().manual_seed(0)
    fig = plot_quantization_errors(*quantized_triple(torch.randn(32, 32, generator=generator)))
    assert len(image_axes(fig)) == 4
    assert all(len(ax.texts) == 0 for ax in image_axes(fig))


def test_figure_is_not_registered_with_pyplot():
    """The returned figure is closed for pyplot, so a notebook shows it once."""
    before = plt.get_fignums()
    fig = plot_quantization_errors(*quantized_triple(TEST_TENSOR))
    assert plt.get_fignums() == before
    assert fig.number not in plt.get_fignums()


def test_figure_renders_to_png(course_plot):
    """The figure draws without errors (Agg) into a non-empty PNG."""
    fig, _ = course_plot
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("dtype", "n_bits"), [(torch.int8, 4), (torch.uint8, None), (torch.int16, 12)]
)
def test_quantized_title_shows_dtype_bits_and_range(dtype, n_bits):
    """The quantized panel's title names the dtype, the bit width and [q_min, q_max]."""
    fig = plot_quantization_errors(*quantized_triple(TEST_TENSOR, dtype, n_bits), dtype, n_bits)
    q_min, q_max = get_q_range(dtype, n_bits)
    title = image_axes(fig)[1].get_title()
    assert f"[{q_min}, {q_max}]" in title and str(dtype).removeprefix("torch.") in title
    assert (f"{n_bits}-bit" in title) == (n_bits is not None)


@pytest.mark.parametrize(
    ("shape", "drawn"), [((), (1, 1)), ((5,), (1, 5)), ((2, 3, 4), (6, 4))], ids=str
)
def test_other_shapes_are_drawn_as_2d(shape, drawn):
    """0-d, 1-d and 3-d tensors are drawn as 2-D heatmaps of the same values."""
    generator = torch.Generator().manual_seed(1)
    original, q, deq = quantized_triple(torch.randn(shape, generator=generator))
    fig = plot_quantization_errors(original, q, deq)
    for ax, data in zip(image_axes(fig)[:3], (original, q, deq), strict=True):
        array = torch.from_numpy(ax.images[0].get_array().data)
        assert tuple(array.shape) == drawn
        assert torch.equal(array.double().flatten(), data.double().flatten())


def test_all_zero_tensor_plots_without_an_empty_colour_range():
    """All-zero data (zero error) still gets non-empty colour ranges and no NaN."""
    fig = plot_quantization_errors(*quantized_triple(torch.zeros(2, 2)))
    for ax in image_axes(fig):
        low, high = ax.images[0].get_clim()
        data = torch.from_numpy(ax.images[0].get_array().data)
        assert not bool(data.isnan().any())
        assert low < high and low <= data.min().item() <= data.max().item() <= high


def test_inputs_are_not_modified():
    """Plotting leaves the three tensors unchanged."""
    original, q, deq = quantized_triple(TEST_TENSOR.clone())
    copies = (original.clone(), q.clone(), deq.clone())
    plot_quantization_errors(original, q, deq)
    for tensor, copy in zip((original, q, deq), copies, strict=True):
        assert torch.equal(tensor, copy)
