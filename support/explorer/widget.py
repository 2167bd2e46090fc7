"""The explorer itself: ``QuantizationExplorer`` (its numbers, its picture, its widgets) and
``explore``.

Part of ``support.explorer`` (see the package's docstring). Imports point one way: this module
imports ``helper``, ``support.explorer.settings``, ``compute`` and ``drawing``; only the
package's ``__init__`` imports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from matplotlib.figure import Figure

from helper import FLOAT8_FORMATS, PACK_BITS, get_q_range, quantization_error
from support.explorer.compute import (
    _as_result,
    _blocks_phrase,
    _busiest_share,
    _clipping_check,
    _format_param,
    _grid,
    _ordinal,
    _percent,
    estimate_check,
    explorer_quantize,
    format_number,
    grid_step_mse,
    packed_bytes,
    unreachable_level,
)
from support.explorer.drawing import _HistogramDrawing, _PanelsDrawing, drawing_for
from support.explorer.settings import (
    _CORE_SETTINGS,
    EXPLORER_CONTROLS,
    GRID_BITS,
    ExplorerControl,
    _explorer_dtype,
    _format_label,
    _tensor_sources,
)


class QuantizationExplorer:
    """Quantize a tensor with the settings of a few controls and show what it costs.

    ``compute(...)`` returns the numbers the explorer shows; ``render(...)`` also draws them
    and returns PNG bytes; ``build_widgets()`` wires ipywidgets controls to them and ``show()``
    displays the result. Every change redraws one figure in place (a new figure is built only
    when the tensor's shape or the layout changes), and only its changing artists, so updates
    are quick and never pile up. Settings that do not work together (say 12 bits in int8, or
    a group size that does not divide the rows) show the error's message instead.

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
        self.sources = _tensor_sources() if sources is None else sources
        self.quantizer = quantizer
        self.dpi = dpi
        self.widgets: dict[str, Any] = {}
        self.numbers_widget = None  # ipywidgets.HTML, made by build_widgets
        self.image_widget = None  # ipywidgets.Image, made by build_widgets
        self.box = None
        self._drawing: _PanelsDrawing | _HistogramDrawing | None = None
        self._syncing = False
        self._unpinned: dict[str, Any] = {}  # a pinned control's value from before its pin

    # -- the numbers ----------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """The current value of every control (the defaults before the widgets exist). A
        greyed-out control gives its default: its value is not used (the range menu keeps
        its choice while the mode is asymmetric, and min-max is what asymmetric mode gets).
        A pinned control gives its pinned value (the bits of a float8 or NF4 grid)."""
        defaults = {control.name: control.default for control in self.controls}
        if not self.widgets:
            return self._pin(defaults)
        values = {name: widget.value for name, widget in self.widgets.items()}
        for control in self.controls:
            if control.active_from is not None and not control.active_from(values):
                values[control.name] = defaults[control.name]
        return self._pin(values)

    def _pin(self, values: dict[str, Any], given: Sequence[str] = ()) -> dict[str, Any]:
        """``values`` with every pinned control (``ExplorerControl.fixed_from``) set to its
        pinned value, except those named in ``given`` (set explicitly by the caller)."""
        for control in self.controls:
            if control.fixed_from is None or control.name in given:
                continue
            fixed = control.fixed_from(values)
            if fixed is not None:
                values[control.name] = fixed
        return values

    def tensor(self, tensor_name: str, size: int = 16, seed: int = 0) -> torch.Tensor:
        """The tensor the menu entry ``tensor_name`` makes for ``size`` and ``seed``."""
        if tensor_name not in self.sources:
            raise ValueError(
                f"unknown tensor {tensor_name!r}: choose one of {', '.join(self.sources)}."
            )
        tensor = self.sources[tensor_name](seed, size)
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            got = f"a {tensor.dtype} tensor" if isinstance(tensor, torch.Tensor) else repr(tensor)
            raise ValueError(
                f"the tensor source {tensor_name!r} returned {got[:80]}: a source must return a "
                "float torch.Tensor (see register_tensor_source)."
            )
        return tensor

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

        ``options`` are the other controls' values (``mode``, ``range_method``,
        ``granularity``, ``group_size``); a control left out takes its default. ``dtype`` is a
        name of the dtype menu (``"int8"``, ..., ``"float8 e4m3fn"``, ``"float8 e5m2"``,
        ``"nf4"``) or a torch dtype. On a float8 or NF4 grid, a fixed format, ``n_bits`` is
        ``None`` or the format's width (8 or 4), the mode does not change the result and the
        range is min-max (see ``explorer_quantize_to_grid``). Keys: the
        settings themselves, ``grid`` (helper's name of the grid, ``"e4m3fn"``, ``"e5m2"`` or
        ``"nf4"``, else ``None``),
        ``shape``, ``q_min``/``q_max`` (on a grid: the codes, 0 to the number of grid values
        minus 1), ``block_size`` and ``n_scales`` (blocks, one scale
        each), ``scale`` and ``zero_point`` (numbers for one block, else tensors of one value
        per block; on a grid the zero point is ``None``), ``mse`` (``quantization_error``),
        ``max_error`` (largest absolute error), ``theory_mse`` (``s**2 / 12``, averaged over the
        elements; on a grid with every value's local step: ``grid_step_mse``), ``estimate`` and
        ``estimate_note`` (see ``estimate_check``), ``bytes_before`` (float32),
        ``bytes_after`` (stored in ``dtype``), ``bytes_params`` (the scales as float32, and
        the zero points in ``dtype`` unless symmetric), ``bytes_packed`` (packed as lesson 12
        packs a weight, every row padded to whole bytes; ``None`` for a width its packer
        refuses: see ``packed_bytes``), ``levels``/``levels_used``, ``unreachable_level`` (the
        code symmetric mode never produces, else ``None``: see ``unreachable_level``),
        ``message``: ``None``, or
        what was wrong with the settings (then the numbers are ``None``), and for the range:
        ``clip_range`` (``None`` unless the range clips, else every block's ``alpha``: a
        number for one block, else a tensor), ``clipped`` (how many values lie beyond their
        block's ``alpha``), ``clip_mse`` (their share of the MSE: the sum of their squared
        errors over all the values) and ``range_note`` (how the range was chosen). With a
        clipped range, ``estimate`` judges ``s**2 / 12`` on the values inside the range:
        the clipping error is not rounding, and ``theory_mse`` leaves it out. Never raises
        for bad settings.
        """
        settings = {control.name: control.default for control in self.controls}
        settings.update(options)
        settings.update(dtype=dtype, n_bits=n_bits, tensor_name=tensor_name, size=size, seed=seed)
        return self._run(settings)[0]

    def _run(self, settings: dict[str, Any]) -> tuple[dict[str, Any], tuple | None]:
        """``compute``'s numbers plus what to draw (``None`` if the settings fail)."""
        keys = ("shape", "q_min", "q_max", "block_size", "n_scales", "scale", "zero_point")
        keys += ("mse", "max_error", "theory_mse", "estimate", "estimate_note", "bytes_before")
        keys += ("bytes_after", "bytes_params", "bytes_packed", "levels", "levels_used")
        keys += ("unreachable_level",)
        keys += ("clip_range", "clipped", "clip_mse", "range_note", "grid")
        numbers = dict(settings, **dict.fromkeys(keys + ("message",)))
        extra = {k: v for k, v in settings.items() if k not in _CORE_SETTINGS}
        try:
            tensor = self.tensor(settings["tensor_name"], settings["size"], settings["seed"])
            dtype, n_bits = _explorer_dtype(settings["dtype"]), settings["n_bits"]
            if isinstance(dtype, str):  # a float8 or NF4 grid: the codes are indices into it
                q_min, q_max = 0, len(_grid(dtype)) - 1
            else:
                q_min, q_max = get_q_range(dtype, n_bits)
            result = _as_result(self.quantizer(tensor, dtype, n_bits, **extra), tensor)
            mse = quantization_error(tensor, result.dequantized).item()
        except (ValueError, TypeError) as error:
            numbers["message"] = str(error)
            return numbers, None
        grid = dtype if isinstance(dtype, str) else None
        if grid is not None and n_bits is None:
            n_bits = numbers["n_bits"] = GRID_BITS[grid]
        quantized, dequantized, block_size = result.quantized, result.dequantized, result.block_size
        scales = torch.as_tensor(result.scale, dtype=torch.float64)
        n_scales = scales.numel()
        if n_scales == 1:  # one block: plain numbers, as the lessons' functions return them
            scale = scales.item()
            zero_point = None if grid else int(torch.as_tensor(result.zero_point).item())
            theory_mse = scale**2 / 12
        else:  # blocks are all the same size: the average over elements is over blocks
            scale, zero_point = result.scale, result.zero_point
            theory_mse = scales.square().mean().item() / 12
        if grid is not None:  # not evenly spaced: each value's own step
            theory_mse = grid_step_mse(tensor, grid, scales, block_size)
        n_values = tensor.numel()
        busiest = partial(_busiest_share, quantized, scales, block_size, q_min)
        clip, clipped, clip_mse, clip_range = None, 0, 0.0, None
        if result.clip_range is None:
            estimate, note = estimate_check(
                mse,
                theory_mse,
                n_values,
                busiest,
                n_values // n_scales,
                estimate="s\u00b2/12" if grid is None else "step\u00b2/12",
            )
        else:
            alpha = torch.as_tensor(result.clip_range, dtype=torch.float64)
            clip_range = alpha.item() if alpha.numel() == 1 else alpha
            clipped, clip_mse, estimate, note = _clipping_check(
                tensor, dequantized, alpha, scales, block_size, busiest, n_values // n_scales
            )
            clip = (alpha, clipped)
        stores_zero = settings.get("mode") != "symmetric" and grid is None
        unreachable = None
        if self.quantizer is explorer_quantize and grid is None:  # one's own may use q_min
            unreachable = unreachable_level(q_min, q_max, settings.get("mode"))
        numbers.update(
            shape=tuple(tensor.shape),
            q_min=q_min,
            q_max=q_max,
            block_size=tuple(block_size),
            n_scales=n_scales,
            scale=scale,
            zero_point=zero_point,
            mse=mse,
            max_error=(dequantized - tensor).abs().max().item(),
            theory_mse=theory_mse,
            estimate=estimate,
            estimate_note=note,
            bytes_before=n_values * tensor.element_size(),
            bytes_after=quantized.numel() * quantized.element_size(),
            bytes_params=n_scales * (4 + (quantized.element_size() if stores_zero else 0)),
            bytes_packed=packed_bytes(tuple(quantized.shape), n_bits, 8 * quantized.element_size()),
            levels=q_max - q_min + 1,
            levels_used=int(
                torch.bincount(quantized.reshape(-1).to(torch.int64) - q_min).count_nonzero()
            ),
            unreachable_level=unreachable,
            clip_range=clip_range,
            clipped=clipped,
            clip_mse=clip_mse,
            range_note=result.range_note,
            grid=grid,
        )
        blocks = _blocks_phrase(tuple(tensor.shape), tuple(block_size))
        drawn = (tensor, quantized, dequantized, dtype, n_bits, scale, zero_point, blocks, clip)
        return numbers, drawn

    # -- the picture ----------------------------------------------------------------------

    @property
    def figure(self) -> Figure | None:
        """The figure the last ``render`` drew into (``None`` before the first)."""
        return None if self._drawing is None else self._drawing.figure

    def _layout_for(self, tensor: torch.Tensor) -> _PanelsDrawing | _HistogramDrawing:
        """The drawing for this tensor: the current one if the layout and shape still fit."""
        self._drawing = drawing_for(tensor, self._drawing, self.dpi)
        return self._drawing

    def render(self, **settings: Any) -> tuple[dict[str, Any], bytes | None]:
        """Compute the numbers for ``settings`` and draw them; returns ``(numbers, png)``.

        ``png`` is ``None`` when the settings fail (``numbers["message"]`` says why).
        """
        numbers, results = self._run(self._pin({**self.settings, **settings}, given=settings))
        if results is None:
            return numbers, None
        self._draw(numbers, results)
        return numbers, self._drawing.png()

    def _draw(self, numbers: dict[str, Any], results: tuple) -> None:
        """Update the drawing's artists for ``results`` (nothing is rendered yet)."""
        tensor, dtype, n_bits = results[0], results[3], results[4]
        drawing = self._layout_for(tensor)
        drawing.update(*results)
        grid = numbers["grid"] is not None
        how = ["absmax scale" if grid else numbers.get("mode"), numbers.get("granularity")]
        if numbers["clip_range"] is not None and isinstance(numbers.get("range_method"), str):
            how.insert(1, f"{numbers['range_method']} range")
        if how[-1] == "per group":
            how[-1] = f"per group of {numbers.get('group_size')}"
        how = "".join(f", {text}" for text in how if isinstance(text, str))
        what = _format_label(dtype) if grid else f"{n_bits}-bit {_format_label(dtype)}"
        drawing.suptitle.set_text(
            f"{numbers['tensor_name']}, {what}{how}: "
            f"MSE = {format_number(numbers['mse'])}, "
            f"largest error = {format_number(numbers['max_error'])}"
        )

    @staticmethod
    def html(numbers: dict[str, Any]) -> str:
        """The numbers as a small HTML table (or the message, if the settings failed).

        Each number sits in an element with a stable class (``qe-scale``, ``qe-zero-point``,
        ``qe-mse``, ``qe-theory-mse``, ``qe-max-error``, ``qe-levels`` (and ``qe-levels-note``
        in symmetric mode: the level it cannot reach), ``qe-estimate``,
        ``qe-bytes-before``, ``qe-bytes-after``, ``qe-bytes-params``, ``qe-bytes-packed``,
        ``qe-message``; with a clipped range also ``qe-clip-range``, ``qe-clipped`` and
        ``qe-range``, how it was chosen) for tests and styling.
        """
        import html

        if numbers["message"] is not None:
            return (
                '<div class="qe-numbers"><p class="qe-message" style="color:#b00020">'
                f"<b>These settings do not work together:</b> {html.escape(numbers['message'])}"
                "</p></div>"
            )
        dtype = _format_label(_explorer_dtype(numbers["dtype"]))
        grid = numbers.get("grid")
        values = math.prod(numbers["shape"])
        n_scales = numbers["n_scales"]
        blocks = _blocks_phrase(numbers["shape"], numbers["block_size"])
        if grid is None:
            zero_point = _format_param(numbers["zero_point"], "zero point")
            estimate_label = "s\u00b2/12 (estimate)"
        else:
            zero_point = "none: r\u2032 = s \u00b7 grid value"
            estimate_label = "step\u00b2/12 (estimate)"
        cells = [
            ("scale s", "qe-scale", _format_param(numbers["scale"], "scale", blocks)),
            ("zero point z", "qe-zero-point", zero_point),
            ("MSE (measured)", "qe-mse", format_number(numbers["mse"])),
            (estimate_label, "qe-theory-mse", format_number(numbers["theory_mse"])),
            ("max error", "qe-max-error", format_number(numbers["max_error"])),
            ("levels in use", "qe-levels", f"{numbers['levels_used']:,} of {numbers['levels']:,}"),
        ]
        levels_note = ""
        if numbers.get("unreachable_level") is not None:
            low, high = numbers["unreachable_level"] + 1, numbers["q_max"]
            levels_note = (
                f'<br><small class="qe-levels-note">the {_ordinal(numbers["levels"])} level, '
                f"{numbers['unreachable_level']}, cannot be reached: the symmetric grid has "
                f"{high - low + 1:,}, {low}..{high}</small>"
            )
        range_note = ""
        if numbers.get("clip_range") is not None:
            alpha = _format_param(numbers["clip_range"], "range", blocks)
            clipped = numbers["clipped"]
            cells += [
                ("range \u00b1\u03b1", "qe-clip-range", alpha),
                ("clipped", "qe-clipped", f"{clipped:,} ({_percent(clipped / values)})"),
            ]
            range_note = (
                f'<p class="qe-range" style="line-height:1.4"><b>Range \u00b1\u03b1:</b> '
                f"{html.escape(numbers.get('range_note') or '')}</p>"
            )
        head = "".join(f'<th style="padding:0 1em">{label}</th>' for label, _, _ in cells)
        row = "".join(
            f'<td style="padding:0 1em;text-align:center"><span class="{css}">{text}</span>'
            f"{levels_note if css == 'qe-levels' else ''}</td>"
            for _, css, text in cells
        )
        colour = {"applies": "#1b5e20", "few values": "#555555"}.get(numbers["estimate"], "#b00020")
        estimate = numbers["estimate"].replace(" ", "-")
        before, after, params, packed = (
            numbers[k] for k in ("bytes_before", "bytes_after", "bytes_params", "bytes_packed")
        )
        scales = "1 scale" if n_scales == 1 else f"{n_scales:,} scales"
        no_zeros = numbers.get("mode") == "symmetric" or grid is not None
        zeros = "" if no_zeros else " and zero points"
        if n_scales == 1 and zeros:
            zeros = " and zero point"
        grid_note = "" if grid is None else QuantizationExplorer._grid_html(grid, dtype)
        stored = dtype if grid is None or grid in FLOAT8_FORMATS else "uint8 codes"
        return (
            '<div class="qe-numbers">'
            f"<table><tr>{head}</tr><tr>{row}</tr></table>{grid_note}{range_note}"
            f'<p class="qe-estimate qe-estimate-{estimate}" style="color:{colour};'
            f'line-height:1.4">{html.escape(numbers["estimate_note"])}</p>'
            f'<p class="qe-memory" style="line-height:1.4">Memory of the {values:,} values: '
            f'<span class="qe-bytes-before">{before:,}</span> bytes as float32 &rarr; '
            f'<span class="qe-bytes-after">{after:,}</span> bytes stored as {stored} '
            f"({before / after:.3g}x smaller), plus {scales}{zeros}: "
            f'<span class="qe-bytes-params">{params:,}</span> bytes; '
            f"{QuantizationExplorer._packed_html(numbers)}</p>"
            "</div>"
        )

    @staticmethod
    def _grid_html(grid: str, label: str) -> str:
        """What a float8 or NF4 grid is, how the explorer quantizes onto it, and why the bits,
        the mode and the range controls are greyed out (they apply to integer dtypes)."""
        values = _grid(grid)
        top, width = values.abs().max().item(), GRID_BITS[grid]
        scale = f"s = max|block| / {top:g}"
        if top == 1:
            scale = "s = max|block| (its largest grid value is 1: QLoRA's absmax)"
        if grid in FLOAT8_FORMATS:
            fmt = FLOAT8_FORMATS[grid]
            what = (
                f"a fixed {width}-bit float format (1 sign, {fmt.exponent_bits} exponent and "
                f"{fmt.mantissa_bits} mantissa bits, bias {fmt.bias}): {len(values)} finite "
                f"values from -{top:g} to {top:g}, evenly spaced between neighbouring powers of "
                "two with a step that doubles from one to the next (the subnormals near 0 share "
                "the smallest), so they are finest near 0"
            )
            tie = "; a tie goes to the even float8 encoding, as PyTorch's cast rounds"
        else:
            what = (
                f"QLoRA's fixed {width}-bit format: {len(values)} levels at quantiles of a normal "
                f"distribution, from {values.min().item():g} to {top:g}, with an exact 0"
            )
            tie = ""
        return (
            f'<p class="qe-grid" style="line-height:1.4"><b>{label}</b> is {what}. Every '
            f"block gets one scale {scale} and every value goes to the "
            f"nearest grid value (helper.quantize_to_grid{tie}); the codes are indices into the "
            f"grid. The bits slider is pinned to {width}; the mode and the range menu apply to "
            "integer dtypes only and are greyed out. The estimate step\u00b2/12 uses every "
            "value's own step: the gap between the two grid values around it, times s.</p>"
        )

    @staticmethod
    def _packed_html(numbers: dict[str, Any]) -> str:
        """The memory line's end: the bytes packed as lesson 12 packs a weight, or why not."""
        bits, packed, shape = numbers["n_bits"], numbers["bytes_packed"], numbers["shape"]
        if packed is None:
            return (
                f'if packed: <span class="qe-bytes-packed">not packable</span> at {bits} bits '
                "per value, since lesson 12's pack_weights (course lesson L5, weight packing) "
                f"packs {', '.join(map(str, PACK_BITS[:-1]))} or {PACK_BITS[-1]} bits per value, "
                "whole values to a byte."
            )
        values = math.prod(shape)
        if bits == 8 * numbers["bytes_after"] // max(values, 1):  # the dtype's own width
            return (
                f'if packed at {bits} bits per value: <span class="qe-bytes-packed">{packed:,}'
                "</span> bytes, as stored: the values fill their dtype, nothing to pack."
            )
        columns = shape[-1] if shape else 1
        rows = values // max(columns, 1)
        per_row = -(-columns // (8 // bits))
        return (
            f'if packed at {bits} bits per value: <span class="qe-bytes-packed">{packed:,}</span>'
            f" bytes, as lesson 12 packs a weight: {8 // bits} per byte along each row, every "
            f"row padded to whole bytes ({rows:,} row{'s' * (rows != 1)} &times; {per_row:,} "
            f"byte{'s' * (per_row != 1)}; course lesson L5, weight packing)."
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
        """Update slider maxima, pinned values and greyed-out controls that follow other
        controls (the bits follow the dtype, and are pinned on a float8 or NF4 grid; the mode
        and the range follow the dtype, the group size the granularity)."""
        self._syncing = True  # a clamped value must not trigger a redraw of its own
        try:
            settings = self.settings
            for control in self.controls:
                widget = self.widgets[control.name]
                fixed = None if control.fixed_from is None else control.fixed_from(settings)
                if fixed is not None and control.name not in self._unpinned:
                    self._unpinned[control.name] = widget.value  # before a new maximum clamps it
                if control.high_from is not None:
                    try:
                        widget.max = control.high_from(settings)
                    except (ValueError, TypeError):
                        pass  # the redraw shows what is wrong with the settings
                if fixed is not None:
                    widget.value = fixed
                elif control.name in self._unpinned:  # unpinned: the value from before
                    before = self._unpinned.pop(control.name)
                    if control.kind == "slider":
                        before = min(max(before, widget.min), widget.max)
                    widget.value = before
                active = control.active_from is None or control.active_from(settings)
                widget.disabled = fixed is not None or not active
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
