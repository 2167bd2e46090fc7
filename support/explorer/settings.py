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

from helper import SUPPORTED_DTYPES, dtype_name, get_q_range
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

#: The target dtypes by name, as the dtype menu offers them.
EXPLORER_DTYPES: dict[str, torch.dtype] = {dtype_name(d): d for d in SUPPORTED_DTYPES}

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


#: zlib level for the explorer's PNG pictures (0-9): 1 is several times quicker than
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


def _grouped(settings: dict[str, Any]) -> bool:
    """The group size matters only when the granularity is per group."""
    return settings.get("granularity") == "per group"


def _symmetric(settings: dict[str, Any]) -> bool:
    """The range menu works only in symmetric mode (helper's clipping ranges are symmetric)."""
    return settings.get("mode") == "symmetric"


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
    used, its default is. ``tooltip`` is shown when the pointer rests on the control.
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
    ExplorerControl("dtype", "dtype", "dropdown", "int8", options=tuple(EXPLORER_DTYPES)),
    ExplorerControl("n_bits", "bits", "slider", 8, low=2, high=8, high_from=_dtype_bits),
    ExplorerControl("mode", "mode", "dropdown", "asymmetric", options=EXPLORER_MODES),
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
            "clips the largest values. Symmetric mode only: these ranges are symmetric."
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
