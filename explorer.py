"""The interactive quantization explorer: sliders and menus, and what they do to the error.

Controls (dtype, bit width, tensor, size, seed) on the left, what they do on the right: the
scale and zero point, the error measured and predicted, the memory, and one figure that is
redrawn in place. The logic is plain Python (``QuantizationExplorer.compute``), so tests can
drive it without a browser; ``build_widgets`` only wires ipywidgets to it.

Use it from a notebook with ``from explorer import explore`` and ``explore()``. The
quantization it shows comes from ``helper.py``; this module is machinery you need not read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from matplotlib.figure import Figure

from examples import (
    outlier_tensor,
    positive_tensor,
    random_normal_tensor,
    test_tensor,
)
from helper import (
    ANNOTATE_MAX_ELEMENTS,
    ERROR_CMAP,
    SUPPORTED_DTYPES,
    ErrorPanels,
    HeatmapPanel,
    as_2d,
    dtype_name,
    get_q_range,
    linear_dequantization,
    linear_quantization,
    quantization_error,
)

__all__ = [
    "TENSOR_SOURCES",
    "register_tensor_source",
    "lesson_test_tensor",
    "random_normal_tensor",
    "outlier_tensor",
    "positive_tensor",
    "ExplorerControl",
    "EXPLORER_CONTROLS",
    "explorer_quantize",
    "format_number",
    "QuantizationExplorer",
    "explore",
]

# Extending it is one line each:
#   register_tensor_source("my weights", lambda seed, size: weights)   # a new tensor
#   EXPLORER_CONTROLS.append(ExplorerControl("mode", "mode", "dropdown", "asymmetric",
#                                            options=("asymmetric", "symmetric")))
# A control's value reaches the quantizer (``QuantizationExplorer.quantizer``) as a keyword
# argument of the same name, so a later lesson pairs a new control with a quantizer that reads it.

#: Side lengths offered for the random tensors (``size`` x ``size``).
EXPLORER_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512)

#: The target dtypes by name, as the dtype menu offers them.
EXPLORER_DTYPES: dict[str, torch.dtype] = {dtype_name(d): d for d in SUPPORTED_DTYPES}

#: At most this many grid lines (representable levels) are drawn over the histogram; with
#: more levels (int16 has 65536) every k-th level is drawn.
MAX_GRID_LINES = 256

#: Number of histogram bins for tensors too large for the four annotated panels.
HISTOGRAM_BINS = 80


def lesson_test_tensor(seed: int = 0, size: int = 3) -> torch.Tensor:
    """The lessons' 3x3 test tensor (float32); ``seed`` and ``size`` are ignored."""
    return test_tensor()


#: The explorer's tensor menu: name -> ``source(seed, size)`` returning a float tensor.
TENSOR_SOURCES: dict[str, Callable[[int, int], torch.Tensor]] = {
    "lesson test tensor (3x3)": lesson_test_tensor,
    "random normal": random_normal_tensor,
    "normal with one outlier": outlier_tensor,
    "all positive": positive_tensor,
}


def register_tensor_source(name: str, source: Callable[[int, int], torch.Tensor]) -> None:
    """Add ``source`` to the explorer's tensor menu under ``name``.

    ``source(seed, size)`` returns the tensor to quantize; a fixed tensor may ignore both,
    e.g. ``register_tensor_source("layer 0 weights", lambda seed, size: model.w.detach())``.
    Explorers built afterwards list it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}.")
    if not callable(source):
        raise TypeError(f"source must be a function source(seed, size), got {source!r}.")
    TENSOR_SOURCES[name] = source


def _explorer_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"int8"`` -> ``torch.int8``; a torch dtype is checked and returned as it is."""
    if isinstance(dtype, str):
        if dtype not in EXPLORER_DTYPES:
            raise TypeError(f"unknown dtype {dtype!r}: choose one of {', '.join(EXPLORER_DTYPES)}.")
        return EXPLORER_DTYPES[dtype]
    get_q_range(dtype)  # a clear TypeError for anything that is not a supported dtype
    return dtype


def _dtype_bits(settings: dict[str, Any]) -> int:
    """The width in bits of the chosen dtype: the largest bit width the slider offers."""
    return torch.iinfo(_explorer_dtype(settings["dtype"])).bits


@dataclass(frozen=True)
class ExplorerControl:
    """One control of the explorer, described as data so that adding one is one line.

    ``name`` is the keyword its value is passed under (to ``QuantizationExplorer.compute``
    and from there to the quantizer); ``kind`` is ``"dropdown"``, ``"slider"`` or ``"number"``.
    A dropdown lists ``options``, or calls ``options(explorer)`` when the widgets are built.
    Sliders and number fields run from ``low`` to ``high``; ``high_from(settings)``, if given,
    recomputes a slider's maximum from all current values whenever any of them changes.
    """

    name: str
    label: str
    kind: str
    default: Any
    options: Sequence | Callable[[Any], Sequence] = ()
    low: int = 0
    high: int = 0
    high_from: Callable[[dict[str, Any]], int] | None = None

    def make_widget(self, explorer: QuantizationExplorer):
        """The ipywidgets widget for this control, set to its default value."""
        import ipywidgets as widgets

        style = {"description_width": "initial"}
        if self.kind == "dropdown":
            options = self.options(explorer) if callable(self.options) else self.options
            return widgets.Dropdown(
                options=list(options), value=self.default, description=self.label, style=style
            )
        if self.kind == "slider":
            return widgets.IntSlider(
                value=self.default,
                min=self.low,
                max=self.high,
                description=self.label,
                continuous_update=True,
                style=style,
            )
        if self.kind == "number":
            return widgets.BoundedIntText(
                value=self.default,
                min=self.low,
                max=self.high,
                description=self.label,
                style=style,
                layout=widgets.Layout(width="160px"),
            )
        raise ValueError(f"unknown control kind {self.kind!r}: use dropdown, slider or number.")


#: The explorer's controls, in the order they are shown. Append to add one.
EXPLORER_CONTROLS: list[ExplorerControl] = [
    ExplorerControl(
        "tensor_name",
        "tensor",
        "dropdown",
        "lesson test tensor (3x3)",
        options=lambda explorer: tuple(explorer.sources),
    ),
    ExplorerControl("size", "size (random tensors)", "dropdown", 16, options=EXPLORER_SIZES),
    ExplorerControl("seed", "seed", "number", 0, low=0, high=2**31 - 1),
    ExplorerControl("dtype", "dtype", "dropdown", "int8", options=tuple(EXPLORER_DTYPES)),
    ExplorerControl("n_bits", "bits", "slider", 8, low=2, high=8, high_from=_dtype_bits),
]

#: The settings every explorer understands; any other control's value goes to the quantizer.
_CORE_SETTINGS = ("tensor_name", "size", "seed", "dtype", "n_bits")


def explorer_quantize(
    tensor: torch.Tensor, dtype: torch.dtype, n_bits: int
) -> tuple[torch.Tensor, float, int, torch.Tensor]:
    """The explorer's quantizer: asymmetric, per tensor (``linear_quantization``).

    Returns ``(quantized, scale, zero_point, dequantized)``.
    """
    quantized, scale, zero_point = linear_quantization(tensor, dtype, n_bits)
    return quantized, scale, zero_point, linear_dequantization(quantized, scale, zero_point)


def format_number(value: float) -> str:
    """How the explorer writes a measured number: six significant digits (``"1.06736"``)."""
    return f"{value:.6g}"


def _format_param(value: float | int | torch.Tensor) -> str:
    """A scale or zero point as text; per-channel tensors show their smallest and largest."""
    if isinstance(value, torch.Tensor):
        if value.numel() > 1:
            low, high = value.min().item(), value.max().item()
            return f"{format_number(low)} to {format_number(high)} ({value.numel()} values)"
        value = value.item()
    return str(value) if isinstance(value, int) else format_number(value)


#: A label may grow by this many characters before the explorer lays its figure out again;
#: the extra space between panels (``wspace`` below) leaves room for that.
RELAYOUT_CHARS = 2


def _explorer_figure(width: float, height: float, dpi: float) -> Figure:
    """A figure outside pyplot (nothing to close, never shown twice) that renders with Agg,
    with constrained layout and some spare room between panels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    layout = ConstrainedLayoutEngine(wspace=0.05)
    figure = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _text_lengths(figure: Figure) -> tuple[int, ...]:
    """Roughly how much room the figure's labels need: the length of the longest tick label,
    offset text and title of every axes (colour bars included)."""
    lengths = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [text.get_text() for text in axis.get_ticklabels()]
            lengths.append(max(map(len, labels), default=0))
            lengths.append(len(axis.get_offset_text().get_text()))
        lengths.append(len(ax.get_title()))
    return tuple(lengths)


class _ExplorerDrawing:
    """What the explorer's layouts share: one figure, rendered to PNG, laid out only when needed.

    Constrained layout finds room for every label, but it costs more than drawing the figure.
    So it runs on the first render, and again only when a tick label or title has become
    more than ``RELAYOUT_CHARS`` characters longer than at the last layout; otherwise the axes
    keep their places.
    """

    figure: Figure
    shape: tuple[int, int]
    _laid_out_for: tuple[int, ...] | None = None

    def __init__(self, shape: tuple[int, int], figure: Figure) -> None:
        self.shape, self.figure = shape, figure
        self._layout = figure.get_layout_engine()

    def png(self) -> bytes:
        """The figure as PNG bytes, at the figure's own dpi."""
        import io

        lengths = _text_lengths(self.figure)
        old = self._laid_out_for
        relayout = old is None or any(
            new > was + RELAYOUT_CHARS for new, was in zip(lengths, old, strict=True)
        )
        if relayout:
            self.figure.set_layout_engine(self._layout)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        if relayout:
            self.figure.set_layout_engine(None)  # keep the positions it found
            self._laid_out_for = lengths
        return buffer.getvalue()


class _PanelsDrawing(_ExplorerDrawing):
    """The explorer's layout for small tensors: the four annotated heatmaps."""

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        super().__init__(shape, _explorer_figure(13, 3.5, dpi))
        self.panels = ErrorPanels(self.figure, shape)

    def update(self, original, quantized, dequantized, dtype, n_bits, scale, zero_point) -> None:
        """Redraw the four panels for new results (2-D tensors of this layout's shape)."""
        self.panels.update(as_2d(original), as_2d(quantized), as_2d(dequantized), dtype, n_bits)
        for panel in self.panels.panels:  # a narrower figure than plot_quantization_errors'
            panel.ax.title.set_fontsize(11)


class _HistogramDrawing(_ExplorerDrawing):
    """The explorer's layout for larger tensors: a histogram with the quantization grid on
    it, and a heatmap of the absolute error."""

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        from matplotlib.collections import LineCollection

        super().__init__(shape, _explorer_figure(13, 3.6, dpi))
        hist_ax, error_ax = self.figure.subplots(1, 2, width_ratios=(1.7, 1))
        self.hist_ax = hist_ax
        self.bars = hist_ax.stairs(
            [0.0], [0.0, 1.0], fill=True, color="tab:blue", alpha=0.6, label="values (histogram)"
        )
        self.grid = LineCollection(
            [],
            colors="tab:red",
            linewidths=0.8,
            alpha=0.6,
            transform=hist_ax.get_xaxis_transform(),  # x in data units, y from 0 to 1 of the axes
            label="representable levels r = s (q - z)",
        )
        hist_ax.add_collection(self.grid, autolim=False)
        hist_ax.set_xlabel("value")
        hist_ax.set_ylabel("count")
        hist_ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
        self.error_panel = HeatmapPanel(error_ax, shape, ERROR_CMAP)

    def update(self, original, quantized, dequantized, dtype, n_bits, scale, zero_point) -> None:
        """Redraw the histogram, the grid and the error heatmap for new results."""
        values = original.detach().flatten().to(torch.float64)
        r_min, r_max = values.min().item(), values.max().item()
        if r_max <= r_min:
            r_min, r_max = r_min - 0.5, r_max + 0.5
        counts, edges = torch.histogram(values, bins=HISTOGRAM_BINS, range=(r_min, r_max))
        self.bars.set_data(counts.numpy(), edges.numpy())
        levels_text = self._update_grid(dtype, n_bits, scale, zero_point)
        grid_low, grid_high = self._grid_range
        low, high = min(r_min, grid_low), max(r_max, grid_high)
        pad = 0.02 * (high - low)
        self.hist_ax.set_xlim(low - pad, high + pad)
        self.hist_ax.set_ylim(0, 1.15 * max(counts.max().item(), 1.0))
        self.hist_ax.set_title(f"{values.numel():,} values and {levels_text}", fontsize=11)
        error = as_2d((original - dequantized).abs())
        self.error_panel.update(
            error, "Absolute error |original - dequantized|", 0.0, error.max().item()
        )

    def _update_grid(self, dtype, n_bits, scale, zero_point) -> str:
        """Place the grid lines at the representable levels and describe them."""
        q_min, q_max = get_q_range(dtype, n_bits)
        levels = q_max - q_min + 1
        if isinstance(scale, torch.Tensor) and scale.numel() > 1:  # one grid per channel
            self.grid.set_segments([])
            self._grid_range = (0.0, 0.0)
            return f"{levels:,} levels per channel (grids not drawn)"
        scale, zero_point = float(scale), int(zero_point)
        step = math.ceil(levels / MAX_GRID_LINES)
        q = torch.cat(
            [
                torch.arange(zero_point, q_min - 1, -step).flip(0),
                torch.arange(zero_point + step, q_max + 1, step),
            ]
        ).to(torch.float64)
        x = scale * (q - zero_point)
        ones = torch.ones_like(x)
        self.grid.set_segments(torch.stack([x, 0 * ones, x, ones], 1).reshape(-1, 2, 2).numpy())
        self._grid_range = (scale * (q_min - zero_point), scale * (q_max - zero_point))
        shown = f", one in {step} drawn" if step > 1 else ""
        return f"{levels:,} levels{shown}"


class QuantizationExplorer:
    """Quantize a tensor with the settings of a few controls and show what it costs.

    ``compute(...)`` returns the numbers the explorer shows; ``render(...)`` also draws them
    and returns PNG bytes; ``build_widgets()`` wires ipywidgets controls to them and ``show()``
    displays the result. Every change redraws one figure in place (a new figure is built only
    when the tensor's shape or the layout changes), so updates are quick and never pile up.
    Settings that do not work together (say 12 bits in int8) show the error's message instead.

    ``controls`` defaults to ``EXPLORER_CONTROLS``, ``sources`` to ``TENSOR_SOURCES`` and
    ``quantizer`` to ``explorer_quantize``; ``dpi`` sets the resolution of the picture.
    """

    def __init__(
        self,
        controls: Sequence[ExplorerControl] | None = None,
        sources: dict[str, Callable[[int, int], torch.Tensor]] | None = None,
        quantizer: Callable[..., tuple] = explorer_quantize,
        dpi: int = 72,
    ) -> None:
        self.controls = list(EXPLORER_CONTROLS if controls is None else controls)
        self.sources = TENSOR_SOURCES if sources is None else sources
        self.quantizer = quantizer
        self.dpi = dpi
        self.widgets: dict[str, Any] = {}
        self.numbers_widget = None  # ipywidgets.HTML, made by build_widgets
        self.image_widget = None  # ipywidgets.Image, made by build_widgets
        self.box = None
        self._drawing: _PanelsDrawing | _HistogramDrawing | None = None
        self._syncing = False

    # -- the numbers ----------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """The current value of every control (the defaults before the widgets exist)."""
        if self.widgets:
            return {name: widget.value for name, widget in self.widgets.items()}
        return {control.name: control.default for control in self.controls}

    def tensor(self, tensor_name: str, size: int = 16, seed: int = 0) -> torch.Tensor:
        """The tensor the menu entry ``tensor_name`` makes for ``size`` and ``seed``."""
        if tensor_name not in self.sources:
            raise ValueError(
                f"unknown tensor {tensor_name!r}: choose one of {', '.join(self.sources)}."
            )
        return self.sources[tensor_name](seed, size)

    def compute(
        self,
        dtype: str | torch.dtype = "int8",
        n_bits: int = 8,
        tensor_name: str = "lesson test tensor (3x3)",
        size: int = 16,
        seed: int = 0,
        **options: Any,
    ) -> dict[str, Any]:
        """The numbers the explorer shows for these settings, as a dict.

        Keys: the settings themselves, ``shape``, ``q_min``/``q_max``, ``scale``,
        ``zero_point``, ``mse`` (``quantization_error``), ``max_error`` (largest absolute
        error), ``theory_mse`` (``scale**2 / 12``), ``bytes_before`` (float32),
        ``bytes_after`` (stored in ``dtype``), ``bytes_packed`` (``n_bits`` per value, rounded
        up to whole bytes), ``levels``/``levels_used`` and ``message``: ``None``, or what was
        wrong with the settings (then the numbers are ``None``). Never raises for bad settings.
        """
        settings = dict(
            dtype=dtype, n_bits=n_bits, tensor_name=tensor_name, size=size, seed=seed, **options
        )
        return self._run(settings)[0]

    def _run(self, settings: dict[str, Any]) -> tuple[dict[str, Any], tuple | None]:
        """``compute``'s numbers plus the tensors to draw (``None`` if the settings fail)."""
        keys = ("shape", "q_min", "q_max", "scale", "zero_point", "mse", "max_error")
        keys += ("theory_mse", "bytes_before", "bytes_after", "bytes_packed", "levels")
        numbers = dict(settings, **dict.fromkeys(keys + ("levels_used", "message")))
        extra = {k: v for k, v in settings.items() if k not in _CORE_SETTINGS}
        try:
            tensor = self.tensor(settings["tensor_name"], settings["size"], settings["seed"])
            dtype, n_bits = _explorer_dtype(settings["dtype"]), settings["n_bits"]
            q_min, q_max = get_q_range(dtype, n_bits)
            quantized, scale, zero_point, dequantized = self.quantizer(
                tensor, dtype, n_bits, **extra
            )
            mse = quantization_error(tensor, dequantized).item()
        except (ValueError, TypeError) as error:
            numbers["message"] = str(error)
            return numbers, None
        if isinstance(scale, torch.Tensor):  # one scale per channel or group: average s^2/12
            theory = torch.broadcast_to(scale.to(torch.float64), tensor.shape).square().mean()
            theory_mse = theory.item() / 12
        else:
            theory_mse = scale**2 / 12
        numbers.update(
            shape=tuple(tensor.shape),
            q_min=q_min,
            q_max=q_max,
            scale=scale,
            zero_point=zero_point,
            mse=mse,
            max_error=(dequantized - tensor).abs().max().item(),
            theory_mse=theory_mse,
            bytes_before=tensor.numel() * tensor.element_size(),
            bytes_after=quantized.numel() * quantized.element_size(),
            bytes_packed=math.ceil(quantized.numel() * n_bits / 8),
            levels=q_max - q_min + 1,
            levels_used=torch.unique(quantized).numel(),
        )
        return numbers, (tensor, quantized, dequantized, dtype, n_bits, scale, zero_point)

    # -- the picture ----------------------------------------------------------------------

    @property
    def figure(self) -> Figure | None:
        """The figure the last ``render`` drew into (``None`` before the first)."""
        return None if self._drawing is None else self._drawing.figure

    def _layout_for(self, tensor: torch.Tensor) -> _PanelsDrawing | _HistogramDrawing:
        """The drawing for this tensor: the current one if the layout and shape still fit."""
        small = tensor.numel() <= ANNOTATE_MAX_ELEMENTS
        kind = _PanelsDrawing if small else _HistogramDrawing
        shape = tuple(as_2d(tensor).shape)
        if not (isinstance(self._drawing, kind) and self._drawing.shape == shape):
            self._drawing = kind(shape, self.dpi)
        return self._drawing

    def render(self, **settings: Any) -> tuple[dict[str, Any], bytes | None]:
        """Compute the numbers for ``settings`` and draw them; returns ``(numbers, png)``.

        ``png`` is ``None`` when the settings fail (``numbers["message"]`` says why).
        """
        numbers, results = self._run({**self.settings, **settings})
        if results is None:
            return numbers, None
        tensor, quantized, dequantized, dtype, n_bits, scale, zero_point = results
        drawing = self._layout_for(tensor)
        drawing.update(tensor, quantized, dequantized, dtype, n_bits, scale, zero_point)
        drawing.figure.suptitle(
            f"{numbers['tensor_name']} in {n_bits}-bit {dtype_name(dtype)}: "
            f"MSE = {format_number(numbers['mse'])}, "
            f"largest error = {format_number(numbers['max_error'])}",
            fontsize=13,
        )
        return numbers, drawing.png()

    @staticmethod
    def html(numbers: dict[str, Any]) -> str:
        """The numbers as a small HTML table (or the message, if the settings failed).

        Each number sits in an element with a stable class (``qe-scale``, ``qe-zero-point``,
        ``qe-mse``, ``qe-theory-mse``, ``qe-max-error``, ``qe-levels``, ``qe-bytes-before``,
        ``qe-bytes-after``, ``qe-bytes-packed``, ``qe-message``) for tests and styling.
        """
        import html

        if numbers["message"] is not None:
            return (
                '<div class="qe-numbers"><p class="qe-message" style="color:#b00020">'
                f"<b>These settings do not work together:</b> {html.escape(numbers['message'])}"
                "</p></div>"
            )
        dtype = dtype_name(_explorer_dtype(numbers["dtype"]))
        bits, values = numbers["n_bits"], math.prod(numbers["shape"])
        cells = [
            ("scale s", "qe-scale", _format_param(numbers["scale"])),
            ("zero point z", "qe-zero-point", _format_param(numbers["zero_point"])),
            ("MSE (measured)", "qe-mse", format_number(numbers["mse"])),
            ("s\u00b2/12 (theory)", "qe-theory-mse", format_number(numbers["theory_mse"])),
            ("max error", "qe-max-error", format_number(numbers["max_error"])),
            ("levels in use", "qe-levels", f"{numbers['levels_used']:,} of {numbers['levels']:,}"),
        ]
        head = "".join(f'<th style="padding:0 1em">{label}</th>' for label, _, _ in cells)
        row = "".join(
            f'<td style="padding:0 1em;text-align:center"><span class="{css}">{text}</span></td>'
            for _, css, text in cells
        )
        before, after, packed = (
            numbers[k] for k in ("bytes_before", "bytes_after", "bytes_packed")
        )
        return (
            '<div class="qe-numbers">'
            f"<table><tr>{head}</tr><tr>{row}</tr></table>"
            f'<p class="qe-memory" style="line-height:1.4">Memory of the {values:,} values: '
            f'<span class="qe-bytes-before">{before:,}</span> bytes as float32 &rarr; '
            f'<span class="qe-bytes-after">{after:,}</span> bytes stored as {dtype} '
            f"({before / after:.3g}x smaller); "
            f'if packed at {bits} bits per value: <span class="qe-bytes-packed">{packed:,}</span>'
            f" bytes ({values:,} &times; {bits} bits, rounded up to whole bytes).</p>"
            "</div>"
        )

    # -- the widgets ----------------------------------------------------------------------

    def build_widgets(self):
        """Make the controls, the numbers and the picture as one ipywidgets box and draw once.

        Changing any control redraws: the picture is PNG bytes in an ``ipywidgets.Image`` and
        the numbers are an ``ipywidgets.HTML``, so nothing is appended or flickers.
        """
        import ipywidgets as widgets

        self.widgets = {control.name: control.make_widget(self) for control in self.controls}
        self.numbers_widget = widgets.HTML()
        self.image_widget = widgets.Image(
            format="png", layout=widgets.Layout(max_width="100%", height="auto")
        )
        self._sync_limits()
        for widget in self.widgets.values():
            widget.observe(self._on_change, names="value")
        controls = widgets.HBox(
            list(self.widgets.values()), layout=widgets.Layout(flex_flow="row wrap")
        )
        self.box = widgets.VBox([controls, self.numbers_widget, self.image_widget])
        self.box.add_class("qe-explorer")
        self.redraw()
        return self.box

    def show(self) -> None:
        """Display the explorer in the notebook (building the widgets first if needed)."""
        from IPython.display import display

        display(self.box if self.box is not None else self.build_widgets())

    def redraw(self) -> dict[str, Any]:
        """Recompute and redraw for the current settings; returns the numbers shown."""
        numbers, png = self.render()
        self.numbers_widget.value = self.html(numbers)
        if png is None:
            self.image_widget.layout.visibility = "hidden"
        else:
            self.image_widget.value = png
            self.image_widget.layout.visibility = "visible"
        return numbers

    def _sync_limits(self) -> None:
        """Update slider maxima that follow other controls (the bits follow the dtype)."""
        self._syncing = True  # a clamped value must not trigger a redraw of its own
        try:
            settings = self.settings
            for control in self.controls:
                if control.high_from is not None:
                    try:
                        self.widgets[control.name].max = control.high_from(settings)
                    except (ValueError, TypeError):
                        pass  # the redraw shows what is wrong with the settings
        finally:
            self._syncing = False

    def _on_change(self, change: dict) -> None:
        """Observer of every control: adjust dependent limits, then redraw once."""
        if self._syncing:
            return
        self._sync_limits()
        self.redraw()


def explore(**kwargs: Any):
    """Build a ``QuantizationExplorer`` and return its widget box (the last line of a cell
    shows it). Keyword arguments go to ``QuantizationExplorer``."""
    return QuantizationExplorer(**kwargs).build_widgets()
