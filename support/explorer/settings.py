"""The explorer's settings as plain data: its menus, its tensor menu and its controls.

Part of ``support.explorer`` (see the package's docstring). Imports point one way: this module
imports ``helper`` and ``support.examples`` and nothing else of the explorer (its type hints
name ``widget.QuantizationExplorer``, imported for type checkers only); ``compute``,
``drawing`` and ``widget`` import it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from helper import FLOAT8_FORMATS, SUPPORTED_DTYPES, dtype_name, get_q_range
from support.examples import outlier_tensor, positive_tensor, random_normal_tensor, test_tensor

if TYPE_CHECKING:
    from support.explorer.widget import QuantizationExplorer

# Extending it is one line each:
#   register_tensor_source("my weights", lambda seed, size: weights)   # a new tensor
#   EXPLORER_CONTROLS.append(ExplorerControl("rows", "rows", "slider", 8, low=1, high=64))
# A control's value reaches the quantizer (``QuantizationExplorer.quantizer``) as a keyword
# argument of the same name, so a later lesson pairs a new control with a quantizer that reads
# it (the range menu of lesson 13 is such a pair: ``range_method`` and ``explorer_quantize``).
# The quantizer returns a ``QuantizerResult``, whose block size tells the explorer which
# elements share a scale, and whose clipping range, if any, the histogram draws.

#: Side lengths offered for the random tensors (``size`` x ``size``).
EXPLORER_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512)

#: The integer target dtypes by name, as the dtype menu offers them.
EXPLORER_DTYPES: dict[str, torch.dtype] = {dtype_name(d): d for d in SUPPORTED_DTYPES}

#: The grids that are not evenly spaced (lesson 14), as the dtype menu offers them after the
#: integer dtypes: menu entry -> the grid's name in ``helper.grid_values``. They are fixed
#: formats: every block gets one scale ``s = max|block| / max|grid|`` and every value goes to
#: the nearest grid value (``helper.quantize_to_grid``); the bit width, the mode and the range
#: menu do not apply to them.
EXPLORER_GRIDS: dict[str, str] = {
    "float8 e4m3fn": "e4m3fn",
    "float8 e5m2": "e5m2",
    "nf4": "nf4",
}

#: The width in bits of each grid's codes: float8 codes are bytes, NF4 codes 4 bits.
GRID_BITS: dict[str, int] = {"e4m3fn": 8, "e5m2": 8, "nf4": 4}

#: The mode menu: asymmetric fits [r_min, r_max], symmetric [-max|r|, max|r|] with z = 0.
EXPLORER_MODES: tuple[str, ...] = ("asymmetric", "symmetric")

#: The granularity menu: name -> (helper's granularity, dim). Rows are dim 0 (a weight's
#: output channels), columns the last dim; groups run along the last dim (along each row).
EXPLORER_GRANULARITIES: dict[str, tuple[str, int]] = {
    "per tensor": ("per_tensor", 0),
    "per channel (rows)": ("per_channel", 0),
    "per channel (columns)": ("per_channel", -1),
    "per group": ("per_group", -1),
}

#: The group sizes offered when the granularity is "per group" (3 is the course's, L3-D).
EXPLORER_GROUP_SIZES: tuple[int, ...] = (2, 3, 4, 8, 16, 32, 64, 128)

#: The range menu (lesson 13): how symmetric mode chooses every block's range [-alpha, alpha].
#: name -> (method of ``helper.clipping_absmax``, percentile). Min-max clips nothing; the
#: others let the largest magnitudes saturate at the end levels, for a finer step. Helper's
#: clipping ranges are symmetric, so the menu works in symmetric mode only.
EXPLORER_RANGES: dict[str, tuple[str, float]] = {
    "min-max": ("min-max", 100.0),
    "percentile 99.9": ("percentile", 99.9),
    "percentile 99": ("percentile", 99.0),
    "MSE-optimal": ("mse", 100.0),
}


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

#: The menu entries the explorer itself defines (others come from ``register_tensor_source``,
#: e.g. the real weights that importing ``models`` adds).
BUILTIN_TENSOR_SOURCES: tuple[str, ...] = tuple(TENSOR_SOURCES)


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
    _tensor_sources()[name] = source


def _tensor_sources() -> dict[str, Callable[[int, int], torch.Tensor]]:
    """The tensor menu that ``support.explorer.TENSOR_SOURCES`` names now.

    That is ``TENSOR_SOURCES`` above, unless a test or a learner put another dict in its place
    on the package (``monkeypatch.setattr(support.explorer, "TENSOR_SOURCES", {...})``): then
    ``register_tensor_source`` and new explorers use that one, as when the explorer was a
    single module.
    """
    package = sys.modules.get(__package__)
    return getattr(package, "TENSOR_SOURCES", TENSOR_SOURCES)


def _explorer_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    """A dtype menu entry as the quantizer takes it: ``"int8"`` -> ``torch.int8``, and a grid
    (``EXPLORER_GRIDS``) -> its name in helper: ``"float8 e4m3fn"`` -> ``"e4m3fn"``. A torch
    dtype is checked and returned as it is, except ``torch.float8_e4m3fn`` and
    ``torch.float8_e5m2``, which name their grids.

    >>> _explorer_dtype("int8"), _explorer_dtype("nf4"), _explorer_dtype(torch.float8_e5m2)
    (torch.int8, 'nf4', 'e5m2')
    """
    if isinstance(dtype, str):
        if dtype in EXPLORER_GRIDS:
            return EXPLORER_GRIDS[dtype]
        if dtype not in EXPLORER_DTYPES:
            menu = ", ".join([*EXPLORER_DTYPES, *EXPLORER_GRIDS])
            raise TypeError(f"unknown dtype {dtype!r}: choose one of {menu}.")
        return EXPLORER_DTYPES[dtype]
    for name, fmt in FLOAT8_FORMATS.items():
        if dtype == fmt.dtype:
            return name
    get_q_range(dtype)  # a clear TypeError for anything that is not a supported dtype
    return dtype


def _format_label(dtype: torch.dtype | str) -> str:
    """How the explorer names a dtype or a grid (``_explorer_dtype``'s answer) in its text.

    >>> _format_label(torch.int8), _format_label("e4m3fn"), _format_label("nf4")
    ('int8', 'float8 e4m3fn', 'nf4')
    """
    if isinstance(dtype, str):
        return next(entry for entry, name in EXPLORER_GRIDS.items() if name == dtype)
    return dtype_name(dtype)


def _grid_bits(settings: dict[str, Any]) -> int | None:
    """The fixed width of the chosen grid (8 for float8, 4 for NF4); ``None`` for an integer
    dtype, whose bit width the learner chooses. An unknown dtype gives ``None`` too (the
    redraw says what is wrong with it)."""
    try:
        dtype = _explorer_dtype(settings["dtype"])
    except TypeError:
        return None
    return GRID_BITS[dtype] if isinstance(dtype, str) else None


def _integer_grid(settings: dict[str, Any]) -> bool:
    """The mode and the range menu apply to integer dtypes only: a float8 or NF4 grid is
    scaled by every block's absmax, with 0 a level of its own."""
    return _grid_bits(settings) is None


def _dtype_bits(settings: dict[str, Any]) -> int:
    """The width in bits of the chosen dtype (or grid): the largest bit width the slider
    offers."""
    dtype = _explorer_dtype(settings["dtype"])
    return GRID_BITS[dtype] if isinstance(dtype, str) else torch.iinfo(dtype).bits


def _grouped(settings: dict[str, Any]) -> bool:
    """The group size matters only when the granularity is per group."""
    return settings.get("granularity") == "per group"


def _symmetric(settings: dict[str, Any]) -> bool:
    """The range menu works only in symmetric mode (helper's clipping ranges are symmetric),
    and on integer dtypes only."""
    return settings.get("mode") == "symmetric" and _integer_grid(settings)


@dataclass(frozen=True)
class ExplorerControl:
    """One control of the explorer, described as data so that adding one is one line.

    ``name`` is the keyword its value is passed under (to ``QuantizationExplorer.compute``
    and from there to the quantizer); ``kind`` is ``"dropdown"``, ``"slider"`` or ``"number"``.
    A dropdown lists ``options``, or calls ``options(explorer)`` when the widgets are built.
    Sliders and number fields run from ``low`` to ``high``; ``high_from(settings)``, if given,
    recomputes a slider's maximum from all current values whenever any of them changes, and
    ``active_from(settings)``, if given, greys the control out while it returns False (the
    group size, unless the granularity is per group); a greyed-out control's value is not
    used, its default is. ``fixed_from(settings)``, if given, pins the control: while it
    returns a value (not ``None``), the control shows that value, greyed out, and that value
    is used (the bits slider shows a fixed format's width: 8 for float8, 4 for NF4); when it
    returns ``None`` again, the control gets back the value it had before. ``tooltip`` is
    shown when the pointer rests on the control.
    """

    name: str
    label: str
    kind: str
    default: Any
    options: Sequence | Callable[[Any], Sequence] = ()
    low: int = 0
    high: int = 0
    high_from: Callable[[dict[str, Any]], int] | None = None
    active_from: Callable[[dict[str, Any]], bool] | None = None
    tooltip: str = ""
    fixed_from: Callable[[dict[str, Any]], Any] | None = None

    def make_widget(self, explorer: QuantizationExplorer):
        """The ipywidgets widget for this control, set to its default value."""
        import ipywidgets as widgets

        style = {"description_width": "initial"}
        common = {"description": self.label, "style": style}
        if self.tooltip:
            common["tooltip"] = self.tooltip
        if self.kind == "dropdown":
            options = self.options(explorer) if callable(self.options) else self.options
            return widgets.Dropdown(options=list(options), value=self.default, **common)
        if self.kind == "slider":
            return widgets.IntSlider(
                value=self.default, min=self.low, max=self.high, continuous_update=True, **common
            )
        if self.kind == "number":
            return widgets.BoundedIntText(
                value=self.default,
                min=self.low,
                max=self.high,
                layout=widgets.Layout(width="160px"),
                **common,
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
    ExplorerControl(
        "dtype",
        "dtype",
        "dropdown",
        "int8",
        options=(*EXPLORER_DTYPES, *EXPLORER_GRIDS),
        tooltip=(
            "Where the values are stored: an integer dtype (an evenly spaced grid), or a grid "
            "that is not evenly spaced (lesson 14): float8 e4m3fn or e5m2, or NF4."
        ),
    ),
    ExplorerControl(
        "n_bits",
        "bits",
        "slider",
        8,
        low=2,
        high=8,
        high_from=_dtype_bits,
        fixed_from=_grid_bits,
        tooltip=(
            "How many bits of the integer dtype the quantizer uses. float8 and NF4 are fixed "
            "formats (8 and 4 bits): the slider is pinned to their width and greyed out."
        ),
    ),
    ExplorerControl(
        "mode",
        "mode",
        "dropdown",
        "asymmetric",
        options=EXPLORER_MODES,
        active_from=_integer_grid,
        tooltip=(
            "Integer dtypes only: asymmetric fits [r_min, r_max], symmetric [-max|r|, max|r|] "
            "with z = 0. float8 and NF4 always scale each block by max|r| (0 is a grid value)."
        ),
    ),
    ExplorerControl(
        "range_method",
        "range",
        "dropdown",
        "min-max",
        options=tuple(EXPLORER_RANGES),
        active_from=_symmetric,
        tooltip=(
            "How the symmetric range [-alpha, alpha] of every block is chosen (lesson 13): "
            "min-max clips nothing; a percentile of |r|, or the alpha with the smallest MSE, "
            "clips the largest values. Symmetric mode only: these ranges are symmetric. "
            "Integer dtypes only: float8 and NF4 take max|r| of every block."
        ),
    ),
    ExplorerControl(
        "granularity",
        "granularity",
        "dropdown",
        "per tensor",
        options=tuple(EXPLORER_GRANULARITIES),
    ),
    ExplorerControl(
        "group_size",
        "group size",
        "dropdown",
        3,
        options=EXPLORER_GROUP_SIZES,
        active_from=_grouped,
    ),
]

#: The settings every explorer understands; any other control's value goes to the quantizer.
_CORE_SETTINGS = ("tensor_name", "size", "seed", "dtype", "n_bits")
