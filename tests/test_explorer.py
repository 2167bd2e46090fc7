"""The interactive explorer (explorer.py), driven without a browser.

Every control value is set the way a learner sets it (through the widget's ``.value``, which
runs the same observer the browser triggers), and the numbers the explorer shows are checked
against helper's own functions called directly.
"""

import gc
import math
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import examples
import explorer as explorer_module
import helper
from explorer import (
    EXPLORER_CONTROLS,
    EXPLORER_DTYPES,
    EXPLORER_SIZES,
    TENSOR_SOURCES,
    ExplorerControl,
    QuantizationExplorer,
    explore,
    explorer_quantize,
    format_number,
    register_tensor_source,
)
from helper import (
    get_q_range,
    get_q_scale_and_zero_point,
    linear_dequantization,
    linear_q_with_scale_and_zero_point,
    quantization_error,
)

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEST_TENSOR = [[191.6, -13.5, 728.6], [92.14, 295.5, -184], [0, 684.6, 245.5]]
DEFAULT_TENSOR = "lesson test tensor (3x3)"
# Every (dtype, bit width) the controls offer: 2 up to the dtype's own width.
DTYPE_BITS = [
    (name, bits)
    for name, dtype in EXPLORER_DTYPES.items()
    for bits in range(2, torch.iinfo(dtype).bits + 1)
]


def expected(tensor_name: str, size: int, seed: int, dtype_name: str, n_bits: int) -> dict:
    """The explorer's numbers, computed step by step with helper's lesson functions."""
    tensor = TENSOR_SOURCES[tensor_name](seed, size)
    dtype = EXPLORER_DTYPES[dtype_name]
    scale, zero_point = get_q_scale_and_zero_point(tensor, dtype, n_bits)
    quantized = linear_q_with_scale_and_zero_point(tensor, scale, zero_point, dtype, n_bits)
    dequantized = linear_dequantization(quantized, scale, zero_point)
    q_min, q_max = get_q_range(dtype, n_bits)
    return {
        "shape": tuple(tensor.shape),
        "q_min": q_min,
        "q_max": q_max,
        "scale": scale,
        "zero_point": zero_point,
        "mse": quantization_error(tensor, dequantized).item(),
        "max_error": (dequantized - tensor).abs().max().item(),
        "theory_mse": scale**2 / 12,
        "bytes_before": 4 * tensor.numel(),
        "bytes_after": tensor.numel() * torch.iinfo(dtype).bits // 8,
        "bytes_packed": math.ceil(tensor.numel() * n_bits / 8),
        "levels": 2**n_bits,
        "levels_used": len(set(quantized.flatten().tolist())),
        "message": None,
    }


def assert_shows(explorer: QuantizationExplorer, numbers: dict) -> None:
    """The HTML widget shows these numbers, each in its element."""
    html = explorer.numbers_widget.value
    assert f'<span class="qe-mse">{format_number(numbers["mse"])}</span>' in html
    assert f'<span class="qe-scale">{format_number(numbers["scale"])}</span>' in html
    assert f'<span class="qe-zero-point">{numbers["zero_point"]}</span>' in html
    assert f'<span class="qe-theory-mse">{format_number(numbers["theory_mse"])}</span>' in html
    assert f'<span class="qe-max-error">{format_number(numbers["max_error"])}</span>' in html
    for key in ("bytes_before", "bytes_after", "bytes_packed"):
        css = key.replace("_", "-")
        assert f'<span class="qe-{css}">{numbers[key]:,}</span>' in html
    levels = f"{numbers['levels_used']:,} of {numbers['levels']:,}"
    assert f'<span class="qe-levels">{levels}</span>' in html
    assert "if packed" in html
    assert "qe-message" not in html


@pytest.fixture
def explorer():
    explorer = QuantizationExplorer()
    explorer.build_widgets()
    return explorer


def set_controls(explorer: QuantizationExplorer, **values) -> None:
    """Set widget values as a learner would; each assignment runs the observer."""
    for name, value in values.items():
        explorer.widgets[name].value = value


# -- the numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype_name", "n_bits"), DTYPE_BITS)
@pytest.mark.parametrize("tensor_name", list(TENSOR_SOURCES))
def test_compute_matches_helper_for_every_dtype_bits_and_tensor(tensor_name, dtype_name, n_bits):
    numbers = QuantizationExplorer().compute(dtype_name, n_bits, tensor_name, 8, 3)
    want = expected(tensor_name, 8, 3, dtype_name, n_bits)
    assert {key: numbers[key] for key in want} == want
    assert (numbers["dtype"], numbers["n_bits"], numbers["tensor_name"]) == (
        dtype_name,
        n_bits,
        tensor_name,
    )


def test_lesson_tensor_int8_gives_the_seed_facts():
    numbers = QuantizationExplorer().compute("int8", 8, DEFAULT_TENSOR)
    assert numbers["scale"] == pytest.approx(3.578823433670343, rel=1e-12)
    assert numbers["zero_point"] == -77
    assert (numbers["bytes_before"], numbers["bytes_after"], numbers["bytes_packed"]) == (36, 9, 9)
    assert torch.equal(explorer_module.lesson_test_tensor(), torch.tensor(TEST_TENSOR))


@pytest.mark.parametrize("size", EXPLORER_SIZES)
@pytest.mark.parametrize("tensor_name", [n for n in TENSOR_SOURCES if n != DEFAULT_TENSOR])
def test_every_size_of_the_random_tensors(tensor_name, size):
    numbers = QuantizationExplorer().compute("int8", 4, tensor_name, size, 0)
    assert numbers["shape"] == (size, size)
    want = expected(tensor_name, size, 0, "int8", 4)
    assert {key: numbers[key] for key in want} == want


@pytest.mark.parametrize("tensor_name", list(TENSOR_SOURCES))
def test_seeding_makes_every_tensor_reproducible(tensor_name):
    explorer = QuantizationExplorer()
    first = explorer.tensor(tensor_name, 16, 7)
    assert torch.equal(first, explorer.tensor(tensor_name, 16, 7))
    assert explorer.compute("int8", 4, tensor_name, 16, 7) == explorer.compute(
        "int8", 4, tensor_name, 16, 7
    )
    if tensor_name != DEFAULT_TENSOR:  # the lesson tensor is fixed; the others follow the seed
        assert not torch.equal(first, explorer.tensor(tensor_name, 16, 8))


def test_random_tensors_do_not_touch_the_global_random_state():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    for name in TENSOR_SOURCES:
        QuantizationExplorer().tensor(name, 8, 1)
    assert torch.equal(torch.rand(3), before)


def test_outlier_and_positive_tensors_are_what_their_names_say():
    outlier = examples.outlier_tensor(seed=2, size=16)
    assert outlier.max().item() == examples.OUTLIER_VALUE
    assert (outlier.abs() > 10).sum().item() == 1
    assert examples.positive_tensor(seed=2, size=16).min().item() > 0


def test_the_outlier_collapses_values_onto_few_levels():
    explorer = QuantizationExplorer()
    normal = explorer.compute("int8", 4, "random normal", 64, 0)
    outlier = explorer.compute("int8", 4, "normal with one outlier", 64, 0)
    assert outlier["scale"] > 10 * normal["scale"]
    assert outlier["levels_used"] <= 4 < normal["levels_used"]


def test_mse_grows_as_bits_shrink():
    explorer = QuantizationExplorer()
    mses = [
        explorer.compute("int8", bits, "random normal", 64, 0)["mse"] for bits in range(8, 1, -1)
    ]
    assert all(a < b for a, b in zip(mses, mses[1:], strict=False))


# -- the widgets ----------------------------------------------------------------------------


def test_every_control_value_through_the_widgets(explorer):
    for tensor_name in TENSOR_SOURCES:
        for dtype_name, n_bits in DTYPE_BITS:
            set_controls(explorer, tensor_name=tensor_name, size=4, seed=1)
            set_controls(explorer, dtype=dtype_name, n_bits=n_bits)
            assert explorer.settings["n_bits"] == n_bits
            assert_shows(explorer, expected(tensor_name, 4, 1, dtype_name, n_bits))


def test_sizes_and_seeds_through_the_widgets(explorer):
    set_controls(explorer, tensor_name="random normal", n_bits=5)
    for size in EXPLORER_SIZES:
        for seed in (0, 1, 2**31 - 1):
            set_controls(explorer, size=size, seed=seed)
            assert_shows(explorer, expected("random normal", size, seed, "int8", 5))


def test_defaults_show_the_lesson_tensor_in_int8(explorer):
    assert explorer.settings == {
        "tensor_name": DEFAULT_TENSOR,
        "size": 16,
        "seed": 0,
        "dtype": "int8",
        "n_bits": 8,
    }
    assert_shows(explorer, expected(DEFAULT_TENSOR, 16, 0, "int8", 8))
    assert bytes(explorer.image_widget.value).startswith(PNG_SIGNATURE)


def test_bit_slider_max_follows_the_dtype(explorer):
    slider = explorer.widgets["n_bits"]
    assert (slider.min, slider.max) == (2, 8)
    set_controls(explorer, dtype="int16")
    assert slider.max == 16 and slider.value == 8
    set_controls(explorer, n_bits=13)
    assert_shows(explorer, expected(DEFAULT_TENSOR, 16, 0, "int16", 13))
    set_controls(explorer, dtype="uint8")  # 13 bits do not fit: the slider clamps to 8
    assert (slider.max, slider.value) == (8, 8)
    assert_shows(explorer, expected(DEFAULT_TENSOR, 16, 0, "uint8", 8))


def test_one_change_redraws_once(explorer, monkeypatch):
    calls = []
    render = explorer.render
    monkeypatch.setattr(explorer, "render", lambda **kw: calls.append(kw) or render(**kw))
    set_controls(explorer, dtype="int16", n_bits=16)
    assert len(calls) == 2
    set_controls(explorer, dtype="int8")  # clamps the bits to 8: still one redraw
    assert len(calls) == 3


def test_image_is_png_and_changes_with_the_bits(explorer):
    images = set()
    for bits in range(8, 1, -1):
        set_controls(explorer, n_bits=bits)
        png = bytes(explorer.image_widget.value)
        assert png.startswith(PNG_SIGNATURE)
        images.add(png)
    assert len(images) == 7
    assert explorer.image_widget.layout.visibility == "visible"


def live_figures() -> int:
    gc.collect()
    return sum(type(obj) is Figure for obj in gc.get_objects())  # type(): no lazy imports


def test_one_figure_is_reused_while_the_shape_stays(explorer):
    figure = explorer.figure
    count = live_figures()
    for dtype_name, n_bits in DTYPE_BITS:
        set_controls(explorer, dtype=dtype_name, n_bits=n_bits)
        assert explorer.figure is figure
    assert live_figures() == count
    assert plt.get_fignums() == []  # nothing is left open in pyplot
    assert len(figure.axes) == 8  # four panels and their colour bars, never more
    assert all(len(ax.texts) == 9 for ax in figure.axes[:4])  # 3x3 cell texts, not stacked


def test_a_new_figure_only_when_the_shape_or_layout_changes(explorer):
    set_controls(explorer, tensor_name="random normal", size=16)
    histogram = explorer.figure
    assert len(histogram.axes) == 3  # histogram, error heatmap, colour bar
    set_controls(explorer, tensor_name="normal with one outlier", seed=4, n_bits=3)
    set_controls(explorer, tensor_name="all positive", dtype="int16", n_bits=16)
    assert explorer.figure is histogram
    set_controls(explorer, size=32)
    assert explorer.figure is not histogram
    set_controls(explorer, size=4)  # 16 values: the four annotated panels
    assert len(explorer.figure.axes) == 8
    assert all(len(ax.texts) == 16 for ax in explorer.figure.axes[:4])


def test_the_histogram_grid_is_thinned_for_int16():
    explorer = QuantizationExplorer()
    explorer.render(tensor_name="random normal", size=32, dtype="int16", n_bits=16)
    drawing = explorer._drawing
    assert len(drawing.grid.get_segments()) <= explorer_module.MAX_GRID_LINES + 1
    assert "65,536 levels, one in 256 drawn" in drawing.hist_ax.get_title()
    explorer.render(tensor_name="random normal", size=32, dtype="int8", n_bits=3)
    assert len(drawing.grid.get_segments()) == 8  # all 8 levels of 3 bits
    levels = sorted(segment[0][0] for segment in drawing.grid.get_segments())
    numbers = explorer.compute("int8", 3, "random normal", 32, 0)
    want = [numbers["scale"] * (q - numbers["zero_point"]) for q in range(-4, 4)]
    assert levels == pytest.approx(want)


# -- bad settings -------------------------------------------------------------------------


def test_bits_that_do_not_fit_the_dtype_give_a_message():
    explorer = QuantizationExplorer()
    numbers = explorer.compute("int8", 12)
    assert "n_bits=12 does not fit int8" in numbers["message"]
    assert numbers["mse"] is None and numbers["scale"] is None
    html = explorer.html(numbers)
    assert 'class="qe-message"' in html and "n_bits=12 does not fit int8" in html
    assert "Traceback" not in html
    assert explorer.render(n_bits=12)[1] is None


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"dtype": "int4"}, "unknown dtype 'int4'"),
        ({"dtype": torch.float16}, "floating-point type"),
        ({"tensor_name": "no such tensor"}, "unknown tensor 'no such tensor'"),
        ({"tensor_name": "random normal", "size": 0}, "size must be a whole number >= 1"),
        ({"tensor_name": "random normal", "seed": -1}, "seed must be a whole number >= 0"),
    ],
)
def test_other_bad_settings_give_a_message(settings, text):
    numbers = QuantizationExplorer().compute(**settings)
    assert text in numbers["message"]


def failing_quantizer(tensor, dtype, n_bits, group_size=3):
    """A stand-in for a later lesson's per-group quantizer that checks its group size."""
    if tensor.shape[-1] % group_size:
        raise ValueError(f"group size {group_size} does not divide rows of {tensor.shape[-1]}")
    return explorer_quantize(tensor, dtype, n_bits)


def test_a_bad_combination_in_the_widgets_shows_a_message_not_a_traceback():
    group_size = ExplorerControl("group_size", "group size", "slider", 3, low=1, high=8)
    explorer = QuantizationExplorer(
        controls=[*EXPLORER_CONTROLS, group_size], quantizer=failing_quantizer
    )
    explorer.build_widgets()
    set_controls(explorer, group_size=2)  # 2 does not divide the 3 columns
    html = explorer.numbers_widget.value
    assert 'class="qe-message"' in html and "group size 2 does not divide rows of 3" in html
    assert "qe-mse" not in html
    assert explorer.image_widget.layout.visibility == "hidden"
    set_controls(explorer, group_size=3)
    assert explorer.image_widget.layout.visibility == "visible"
    assert bytes(explorer.image_widget.value).startswith(PNG_SIGNATURE)
    assert_shows(explorer, expected(DEFAULT_TENSOR, 16, 0, "int8", 8))


def test_a_message_is_escaped_html():
    def quantizer(tensor, dtype, n_bits):
        raise TypeError("<script>alert(1)</script> is not a tensor")

    numbers = QuantizationExplorer(quantizer=quantizer).compute()
    html = QuantizationExplorer.html(numbers)
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- extending it ---------------------------------------------------------------------------


def test_register_tensor_source_adds_a_menu_entry(monkeypatch):
    monkeypatch.setattr(explorer_module, "TENSOR_SOURCES", dict(TENSOR_SOURCES))
    weights = torch.tensor([[-2.0, -1.13, 0.42], [-1.51, 0.25, 1.62], [0.23, 1.35, 2.15]])
    register_tensor_source("real weight matrix", lambda seed, size: weights)
    explorer = QuantizationExplorer(sources=explorer_module.TENSOR_SOURCES)
    explorer.build_widgets()
    assert "real weight matrix" in explorer.widgets["tensor_name"].options
    set_controls(explorer, tensor_name="real weight matrix", n_bits=4)
    scale, zero_point = get_q_scale_and_zero_point(weights, torch.int8, 4)
    assert explorer.redraw()["scale"] == scale
    with pytest.raises(TypeError):
        register_tensor_source("not callable", weights)


def test_a_new_control_is_one_line_and_reaches_the_quantizer():
    seen = []

    def quantizer(tensor, dtype, n_bits, mode):
        seen.append(mode)
        return explorer_quantize(tensor, dtype, n_bits)

    mode = ExplorerControl("mode", "mode", "dropdown", "asymmetric", ("asymmetric", "symmetric"))
    explorer = QuantizationExplorer(controls=[*EXPLORER_CONTROLS, mode], quantizer=quantizer)
    explorer.build_widgets()
    set_controls(explorer, mode="symmetric")
    assert seen == ["asymmetric", "symmetric"]
    assert explorer.compute(mode="asymmetric")["mode"] == "asymmetric"


def test_explore_returns_the_widget_box():
    box = explore()
    assert type(box).__name__ == "VBox"
    assert "qe-explorer" in box._dom_classes
    controls, numbers, image = box.children
    assert [w.description for w in controls.children] == [c.label for c in EXPLORER_CONTROLS]
    assert "qe-mse" in numbers.value and bytes(image.value).startswith(PNG_SIGNATURE)


def test_importing_helper_does_not_import_ipywidgets():
    code = "import sys, helper; print('ipywidgets' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- the shared heatmap code still draws plot_quantization_errors as before -------------------


def test_plot_quantization_errors_is_unchanged_by_the_shared_panels():
    tensor = torch.tensor(TEST_TENSOR)
    scale, zero_point = get_q_scale_and_zero_point(tensor)
    quantized = linear_q_with_scale_and_zero_point(tensor, scale, zero_point)
    dequantized = linear_dequantization(quantized, scale, zero_point)
    figure = helper.plot_quantization_errors(tensor, quantized, dequantized)
    assert isinstance(figure, Figure) and plt.get_fignums() == []
    panels = [ax for ax in figure.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "Original tensor",
        "Quantized (int8, [-128, 127])",
        "Dequantized tensor",
        "Absolute error |original - dequantized|",
    ]
    assert [ax.texts[0].get_text() for ax in panels] == ["191.6", "-23", "193.3", "1.656"]
    assert all(len(ax.texts) == 9 for ax in panels)
    low, high = panels[0].images[0].get_clim()
    assert low == -184.0 and high == pytest.approx(dequantized.max().item())
    assert panels[1].images[0].get_clim() == (-128.0, 127.0)
