"""The explorer's picture: one matplotlib figure per layout, redrawn in place.

Part of ``support.explorer`` (see the package's docstring, "How it stays quick"). Imports
point one way: this module imports ``helper``, ``support.explorer.settings`` and ``compute``;
``widget`` imports it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from itertools import pairwise
from typing import Any, NamedTuple

import torch
from matplotlib.figure import Figure

from helper import SUPPORTED_DTYPES, dtype_name, get_q_range
from support.explorer.compute import _grid, _percent
from support.explorer.settings import EXPLORER_GRIDS, _format_label
from support.plots import (
    ANNOTATE_MAX_ELEMENTS,
    ERROR_CMAP,
    QUANTIZED_CMAP,
    VALUE_CMAP,
    HeatmapPanel,
    as_2d,
)

#: At most this many grid lines (representable levels) are drawn per grid over the histogram;
#: with more levels (int16 has 65536) every k-th level is drawn.
MAX_GRID_LINES = 256

#: On a grid that is not evenly spaced (float8, NF4) a grid value is drawn only if it lies at
#: least this many pixels from the last one drawn, going out from 0 (float8's values crowd
#: around 0: e4m3fn has 253, and over half of them lie within 1/64 of its largest one).
MIN_GRID_GAP_PX = 3

#: The explorer writes the values into the heatmap cells when the tensor has at most this many
#: columns (and at most ``helper.ANNOTATE_MAX_ELEMENTS`` values); narrower cells stay plain.
ANNOTATE_MAX_COLUMNS = 4

#: The colours of the two grids drawn over the histogram: the block with the largest scale,
#: and the block with the smallest (with one scale per channel or group).
GRID_COLORS = ("tab:red", "tab:green")

#: Number of histogram bins for tensors too large for the four annotated panels.
HISTOGRAM_BINS = 80

#: Where the histogram's bars start on its log count axis: a bin with one value (an outlier)
#: rises from here to 1, a bar tall enough to see; empty bins stay flat on it.
COUNT_BASELINE = 0.2

#: zlib level for the explorer's PNG pictures, written by Pillow (0-9): measured on the 3x3
#: figure, 1 took 4.1 ms where Pillow's default 6 took 6.0, for a picture 5% larger.
PNG_COMPRESS_LEVEL = 1

# -- the picture: panels whose changing parts are redrawn alone --------------------------------

#: The widest colour-bar label the layout leaves room for (nice numbers in "%.4g"; a wider
#: one runs into the space between panels).
_WIDEST_LABEL = "-0.00025"
#: At most this many labels on a colour bar.
_COLORBAR_LABELS = 8


def png_bytes(rgba) -> bytes:
    """An RGBA pixel buffer (height x width x 4, like ``canvas.buffer_rgba()``) as PNG bytes:
    8-bit RGB (the figure is opaque), written by Pillow with zlib at ``PNG_COMPRESS_LEVEL``.

    >>> import numpy as np
    >>> png_bytes(np.zeros((2, 3, 4), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    import io

    import numpy as np
    from PIL import Image

    pixels = np.ascontiguousarray(rgba, dtype=np.uint8)
    height, width = pixels.shape[:2]
    image = Image.frombuffer("RGBA", (width, height), pixels, "raw", "RGBA", 0, 1)
    png = io.BytesIO()
    image.convert("RGB").save(png, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return png.getvalue()


def _explorer_figure(width: float, height: float, dpi: float) -> Figure:
    """A figure outside pyplot (nothing to close, never shown twice) that renders with Agg,
    with constrained layout (used once, see ``_BlitDrawing.freeze_layout``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    figure.get_layout_engine().set(wspace=0.05)
    FigureCanvasAgg(figure)
    return figure


def _label(value: float) -> str:
    """A colour-bar label: four significant digits."""
    return f"{value:.4g}"


class _BlitPanel(HeatmapPanel):
    """helper's ``HeatmapPanel``, made for redrawing alone (blitting).

    The image always spans the colour map's fixed range [0, 1] (the data is scaled into it),
    so the colour bar itself never changes and stays in the background; its tick marks and
    labels, the cell numbers, the image and the title are animated artists, redrawn on top.
    """

    def __init__(self, ax, shape: tuple[int, int], cmap: str, widest_title: str) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.markers import TICKRIGHT
        from matplotlib.ticker import MaxNLocator
        from matplotlib.transforms import ScaledTranslation

        super().__init__(ax, shape, cmap)
        if shape[1] > ANNOTATE_MAX_COLUMNS:  # cells too narrow for a number: leave them out
            for text in self.texts:
                text.remove()
            self.texts = []
        # No tick marks on the heatmap: they would cross the spines, which are redrawn over
        # the image, and a full draw puts them in another order (different pixels).
        ax.tick_params(length=0, pad=5)
        for axis in (ax.xaxis, ax.yaxis):  # rows and columns are whole numbers
            axis.set_major_locator(MaxNLocator(integer=True))
        bar = self.colorbar.ax
        self.widest_title = widest_title
        self.ticks = Line2D(
            [], [], marker=TICKRIGHT, linestyle="", color="black", markersize=3.5,
            markeredgewidth=0.8, transform=bar.transAxes, clip_on=False,
        )  # fmt: skip
        bar.add_artist(self.ticks)
        offset = ScaledTranslation(7 / 72, 0, ax.figure.dpi_scale_trans)
        self.labels = [
            bar.text(1, 0.5, "", transform=bar.transAxes + offset, va="center", fontsize=9)
            for _ in range(_COLORBAR_LABELS)
        ]
        self.ax.title.set_fontsize(11)
        for artist in [self.ticks, *self.labels]:
            artist.set_in_layout(False)  # the layout leaves room for them with placeholders
        for artist in self.animated():
            artist.set_animated(True)
        self.state: tuple | None = None  # the arguments of the last update (see _Region)

    def animated(self) -> list:
        """The artists an update changes, in drawing order (the spines go over the image)."""
        spines = list(self.ax.spines.values())
        return [self.image, *spines, *self.texts, self.ticks, *self.labels, self.ax.title]

    def layout_placeholders(self, on: bool) -> None:
        """While the layout is computed: the widest title and colour-bar label in place."""
        self.colorbar.set_ticks([0.5] if on else [], labels=[_WIDEST_LABEL] if on else [])
        self.ax.set_title(self.widest_title if on else "", fontsize=11)

    def update(
        self, data: torch.Tensor, title: str, vmin: float, vmax: float, integer: bool = False
    ) -> None:
        """Show ``data`` (2-D, the panel's shape) with colours spanning ``[vmin, vmax]``."""
        from matplotlib.ticker import MaxNLocator

        self.state = (_fingerprint(data), title, vmin, vmax, integer)
        if vmax <= vmin:  # a constant panel still needs a non-empty colour range
            vmin, vmax = vmin - 0.5, vmax + 0.5
        width = vmax - vmin
        self.image.set_data(((data - vmin) / width).numpy())
        self.ax.set_title(title, fontsize=11)
        for text, value in zip(self.texts, data.flatten().tolist(), strict=False):
            red, green, blue, _ = self.colormap((value - vmin) / width)
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
            text.set_text(f"{int(value)}" if integer else f"{value:.4g}")
            text.set_color("black" if light else "white")
        locator = MaxNLocator(nbins=5, integer=integer, min_n_ticks=2)
        ticks = [t for t in locator.tick_values(vmin, vmax) if vmin <= t <= vmax]
        ticks = ticks[:_COLORBAR_LABELS]
        positions = [(t - vmin) / width for t in ticks]
        self.ticks.set_data([1.0] * len(ticks), positions)
        for i, label in enumerate(self.labels):
            visible = i < len(ticks)
            label.set_visible(visible)
            if visible:
                label.set_y(positions[i])
                label.set_text(_label(ticks[i]))


def _fingerprint(values: torch.Tensor | float | int) -> tuple:
    """Values as a short key: their dtype, their shape and a 16-byte BLAKE2b digest of their
    bytes (two given tensors of one dtype and shape that differ share it with a chance of
    2**-128).

    >>> _fingerprint(torch.tensor([1.0, 2.0]))[:2]
    ('torch.float32', (2,))
    """
    import hashlib

    if isinstance(values, float):  # a Python float is a double: keep every bit
        values = torch.tensor(values, dtype=torch.float64)
    tensor = torch.as_tensor(values).detach().contiguous()
    digest = hashlib.blake2b(tensor.numpy().tobytes(), digest_size=16).digest()
    return (str(tensor.dtype), tuple(tensor.shape), digest)


class _Region(NamedTuple):
    """A part of the figure (whole pixels) and the animated artists drawn in it: they draw
    nowhere else, and no other animated artist draws here. ``state()`` returns everything
    that sets their pixels (tests compare the result with an ordinary full draw)."""

    bbox: Any  # a matplotlib Bbox in display pixels
    artists: list
    state: Callable[[], Hashable]


class _SavedPixels:
    """The pixels of regions as drawn before, under ``(region number, state)``.

    Over one background, a region's pixels depend only on its artists' state (see
    ``_Region``). So the first time a state is drawn its pixels are saved
    (``canvas.copy_from_bbox``); when it comes back they are put back
    (``canvas.restore_region``): exactly the pixels drawing them again gives. At most
    ``MAX_BYTES`` are kept, the least recently used dropped first.
    """

    MAX_BYTES = 32 * 2**20  # about 150 heatmaps of the four-panel figure at 72 dpi

    def __init__(self) -> None:
        self.entries: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0

    def clear(self) -> None:
        """Forget every saved region (the background under them changed)."""
        self.entries.clear()
        self.bytes = 0

    def get(self, key: tuple) -> Any:
        """The saved pixels for ``key``, or ``None``."""
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return entry[0]

    def put(self, key: tuple, pixels: Any, size: int) -> None:
        """Keep ``pixels`` (``size`` bytes) under ``key``; drop the oldest beyond the bound."""
        self.entries[key] = (pixels, size)
        self.bytes += size
        while self.bytes > self.MAX_BYTES and len(self.entries) > 1:
            _, (_, dropped) = self.entries.popitem(last=False)
            self.bytes -= dropped


class _SavedBackgrounds(_SavedPixels):
    """The backgrounds of a figure as drawn before, under their ``background_key()``: a
    background depends on nothing else, so putting its pixels back is drawing it again. At
    most ``MAX_BYTES`` (about 8 backgrounds of the histogram figure at 72 dpi, 1 MB each)."""

    MAX_BYTES = 8 * 2**20


class _BlitDrawing:
    """One figure, drawn in full once, then redrawn by blitting its animated artists.

    ``rgba()`` draws the figure without its animated artists (the background) and saves the
    pixels under ``background_key()``, the first time a key comes up; when a key comes back
    (the histogram's legend with one grid, then two, then one again) it restores the saved
    pixels (``_SavedBackgrounds``). Then it draws the animated artists on top, region by
    region (see ``_Region``): a region whose state was drawn before over this background gets
    its saved pixels back (``_SavedPixels``, under the background's key and the state) instead.
    """

    figure: Figure
    shape: tuple[int, int]
    regions: list[_Region]

    def __init__(self, shape: tuple[int, int], figure: Figure) -> None:
        self.shape, self.figure = shape, figure
        self._background = None
        self._background_key: Any = None
        self.full_draws = 0  # how often the background was drawn (for tests)
        self.saved = _SavedPixels()
        self.backgrounds = _SavedBackgrounds()

    def animated(self) -> list:
        """Every animated artist, in drawing order."""
        return [artist for region in self.regions for artist in region.artists]

    def background_key(self) -> Any:
        """Anything that changes the background; a new value means a full draw."""
        return None

    def freeze_layout(self, panels: Sequence[_BlitPanel], columns: Sequence[Sequence]) -> list:
        """Lay the figure out once, with room for the widest labels, and keep it. Returns the
        strips of the figure below the suptitle, one per column of axes (see ``_strips``)."""
        for panel in panels:
            panel.layout_placeholders(True)
        self.suptitle = self.figure.suptitle("Layout placeholder (Xg)", fontsize=12, animated=True)
        self.figure.canvas.draw()  # constrained layout runs here
        self.figure.set_layout_engine("none")  # keep the positions it found
        strips = self._strips(columns)
        for panel in panels:
            panel.layout_placeholders(False)
        return strips

    def _strips(self, columns: Sequence[Sequence]) -> list:
        """Cut the figure into a band at the top (for the suptitle) and, below it, one strip
        per column of axes, left to right, measured with the widest titles and labels in
        place: each cut lies halfway between the neighbours' extents (tick labels, titles and
        legends included). The last element is the band."""
        from matplotlib.transforms import Bbox

        width, height = self.figure.canvas.get_width_height()
        extents = [Bbox.union([ax.get_tightbbox() for ax in axes]) for axes in columns]
        top = max(extent.y1 for extent in extents)
        cut = round((top + self.suptitle.get_window_extent().y0) / 2)
        xs = [0, *(round((a.x1 + b.x0) / 2) for a, b in pairwise(extents)), width]
        strips = [Bbox.from_extents(x0, 0, x1, cut) for x0, x1 in pairwise(xs)]
        return [*strips, Bbox.from_extents(0, cut, width, height)]

    def suptitle_region(self, band) -> _Region:
        """The region of the suptitle: the band at the top of the figure."""
        return _Region(band, [self.suptitle], self.suptitle.get_text)

    def rgba(self):
        """Draw (blit) the current state; returns the canvas's RGBA buffer."""
        canvas = self.figure.canvas
        key = self.background_key()
        if self._background is None or key != self._background_key:
            background = self.backgrounds.get(key)
            if background is None:  # a background not drawn before (or forgotten)
                canvas.draw()  # everything that is not animated
                background = canvas.copy_from_bbox(self.figure.bbox)
                width, height = canvas.get_width_height()
                self.backgrounds.put(key, background, 4 * width * height)
                self.full_draws += 1
            else:
                canvas.restore_region(background)
            self._background, self._background_key = background, key
        else:
            canvas.restore_region(self._background)
        for number, region in enumerate(self.regions):
            state = (number, key, region.state())  # over this background
            pixels = self.saved.get(state)
            if pixels is None:
                for artist in region.artists:
                    self.figure.draw_artist(artist)
                size = 4 * round(region.bbox.width) * round(region.bbox.height)
                self.saved.put(state, canvas.copy_from_bbox(region.bbox), size)
            else:
                canvas.restore_region(pixels)
        return canvas.buffer_rgba()

    def full_render(self):
        """The same state drawn the ordinary way, every artist in one ``draw`` (for tests:
        its pixels must equal ``rgba()``'s). Returns a copy of the RGBA pixels."""
        import numpy as np

        artists = self.animated()
        for artist in artists:
            artist.set_animated(False)
        try:
            self.figure.canvas.draw()
            pixels = np.array(self.figure.canvas.buffer_rgba())
        finally:
            for artist in artists:
                artist.set_animated(True)
            self._background = None  # the canvas now holds a full picture, not a background
        return pixels

    def png(self) -> bytes:
        """The current state as PNG bytes (see ``png_bytes``)."""
        return png_bytes(self.rgba())


def _widest_quantized_title() -> str:
    """The longest title the quantized panel can get (the layout leaves room for it)."""
    titles = [_quantized_title(torch.iinfo(d).bits, d) for d in SUPPORTED_DTYPES]
    titles += [_quantized_title(None, grid) for grid in EXPLORER_GRIDS.values()]
    return max(titles, key=len)


def _quantized_title(n_bits: int | None, dtype: torch.dtype | str) -> str:
    """The quantized panel's title: the integers q, or on a float8 or NF4 grid the grid values
    (``r' = s * q``; the codes are their indices)."""
    if isinstance(dtype, str):
        return f"Grid value q, {_format_label(dtype)}"
    return f"Quantized q, {n_bits}-bit {dtype_name(dtype)}"


class _PanelsDrawing(_BlitDrawing):
    """The explorer's layout for small tensors: four annotated heatmaps (original, quantized,
    dequantized, absolute error), as ``helper.plot_quantization_errors`` draws them."""

    TITLES = ("Original r", None, "Dequantized r'", "Absolute error |r - r'|")

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        super().__init__(shape, _explorer_figure(13, 3.6, dpi))
        axes = self.figure.subplots(1, 4)
        cmaps = (VALUE_CMAP, QUANTIZED_CMAP, VALUE_CMAP, ERROR_CMAP)
        titles = [t or _widest_quantized_title() for t in self.TITLES]
        self.panels = [
            _BlitPanel(ax, shape, cmap, title)
            for ax, cmap, title in zip(axes, cmaps, titles, strict=True)
        ]
        columns = [[panel.ax, panel.colorbar.ax] for panel in self.panels]
        *strips, band = self.freeze_layout(self.panels, columns)
        self.regions = [
            _Region(strip, panel.animated(), lambda panel=panel: panel.state)
            for strip, panel in zip(strips, self.panels, strict=True)
        ]
        self.regions.append(self.suptitle_region(band))

    def update(
        self, original, quantized, dequantized, dtype, n_bits, scale, zero_point, blocks, clip=None
    ):
        """Redraw the four panels for new results (tensors of this layout's shape). A clipped
        range (``clip``) shows in the cells: clipped values sit on the end levels. On a float8
        or NF4 grid (``dtype`` names it) the quantized panel shows the grid values of the
        codes, ``r' / s``."""
        grid = isinstance(dtype, str)
        if grid:
            quantized = _grid(dtype)[quantized.long()]
        r, q, r2 = as_2d(original), as_2d(quantized), as_2d(dequantized)
        error = (r - r2).abs()
        low, high = min(r.min(), r2.min()).item(), max(r.max(), r2.max()).item()
        original_panel, quantized_panel, dequantized_panel, error_panel = self.panels
        original_panel.update(r, self.TITLES[0], low, high)
        quantized_panel.update(
            q, _quantized_title(n_bits, dtype), q.min().item(), q.max().item(), integer=not grid
        )
        dequantized_panel.update(r2, self.TITLES[2], low, high)
        error_panel.update(error, self.TITLES[3], 0.0, error.max().item())


class _HistogramDrawing(_BlitDrawing):
    """The explorer's layout for larger tensors: a histogram of the values (log counts, so a
    single outlier shows) with the quantization grid over it, and a heatmap of the error.

    With one scale per channel or group there is one grid per block: the grids of the blocks
    with the smallest and the largest scale are drawn, and the title says how many are not.
    A clipped range (symmetric mode) draws dashed lines at ``-alpha`` and ``alpha`` of those
    blocks, on their end levels: the values beyond them are clipped. On a float8 or NF4 grid
    the lines are the grid values times the block's scale; those closer than
    ``MIN_GRID_GAP_PX`` pixels to one drawn are left out, and the title says how many are drawn.
    """

    def __init__(self, shape: tuple[int, int], dpi: float) -> None:
        from matplotlib.collections import LineCollection

        super().__init__(shape, _explorer_figure(13, 3.6, dpi))
        hist_ax, error_ax = self.figure.subplots(1, 2, width_ratios=(1.6, 1))
        self.hist_ax = hist_ax
        self.bars = hist_ax.stairs(
            [1.0], [0.0, 1.0], baseline=COUNT_BASELINE, fill=True, color="tab:blue", alpha=0.6
        )
        (self.extremes,) = hist_ax.plot(
            [0.0, 1.0], [0.0, 0.0], "^", color="black", markersize=7, clip_on=False,
            transform=hist_ax.get_xaxis_transform(),  # x in data units, y in axes units
        )  # fmt: skip
        hist_ax.set_yscale("log")
        self.grids = [
            LineCollection(
                [],
                colors=color,
                linewidths=0.8,
                alpha=0.7,
                transform=hist_ax.get_xaxis_transform(),
                animated=True,
                zorder=2.6,  # over the spines and ticks, as they are drawn over the background
            )
            for color in GRID_COLORS
        ]
        for grid in self.grids:
            hist_ax.add_collection(grid, autolim=False)
        self.clip_lines = LineCollection(
            [],
            linewidths=2.0,
            linestyles=(0, (4, 2)),
            transform=hist_ax.get_xaxis_transform(),
            animated=True,
            zorder=2.65,  # over the grids
        )
        hist_ax.add_collection(self.clip_lines, autolim=False)
        hist_ax.set_xlabel("value")
        hist_ax.set_ylabel("count (log scale)")
        widest = (  # 512 x 512 in groups of 2, or of 128 in int16 with a clipped range
            "262,144 values, 2,048 clipped (0.78%), 65,536 levels per grid (1 in 256 drawn)\n"
            "131,072 grids (one per group of 2): widest and finest drawn, 131,070 not drawn"
        )
        self.error_panel = _BlitPanel(error_ax, shape, ERROR_CMAP, "Absolute error |r - r'|")
        hist_ax.set_title(widest, fontsize=11)
        self._legend_key: tuple[int, bool, bool] = (0, False, False)
        self._set_legend(2, True)  # the longest legend, so the layout leaves room for it
        columns = [[hist_ax], [error_ax, self.error_panel.colorbar.ax]]
        hist_strip, error_strip, band = self.freeze_layout([self.error_panel], columns)
        hist_ax.title.set_animated(True)
        self._grid_state: tuple | None = None  # the arguments of the last _update_grids
        own = [*self.grids, self.clip_lines, hist_ax.title]  # the x range: in the background
        self.regions = [
            _Region(hist_strip, own, lambda: self._grid_state),
            _Region(error_strip, self.error_panel.animated(), lambda: self.error_panel.state),
            self.suptitle_region(band),
        ]
        self._values: torch.Tensor | None = None
        self._histogram_version = 0
        self._xlim: tuple[float, float] | None = None

    def background_key(self) -> Any:
        return (self._histogram_version, self._xlim, self._legend_key)

    def update(
        self, original, quantized, dequantized, dtype, n_bits, scale, zero_point, blocks, clip=None
    ):
        """Redraw the histogram, the grid(s), the clipping range and the error heatmap for new
        results. ``clip`` is ``None``, or ``(alpha per block, number of values clipped)``."""
        values = original.detach().flatten().to(torch.float64)
        r_min, r_max = values.min().item(), values.max().item()
        if self._values is None or not torch.equal(values, self._values):
            self._set_histogram(values, r_min, r_max)
        grid = isinstance(dtype, str)
        if grid:  # the lines' places depend on the x range: set it first
            chosen, (grid_low, grid_high) = self._value_grids(scale)
            n_grids = len(chosen)
        else:
            text, (grid_low, grid_high), n_grids = self._update_grids(
                dtype, n_bits, scale, zero_point, blocks, clip, values.numel()
            )
        self._set_legend(n_grids, clip is not None, grid)
        self._set_xlim(min(r_min, grid_low, 0.0), max(r_max, grid_high, 0.0))
        if grid:
            text = self._update_value_grids(dtype, scale, chosen, blocks, values.numel())
        self.hist_ax.set_title(text, fontsize=11)
        error = as_2d((original - dequantized).abs())
        self.error_panel.update(error, "Absolute error |r - r'|", 0.0, error.max().item())

    def _set_histogram(self, values: torch.Tensor, r_min: float, r_max: float) -> None:
        """New values: new bars (empty bins sit at the baseline) and extreme markers."""
        if r_max <= r_min:
            r_min, r_max = r_min - 0.5, r_max + 0.5
        counts, edges = torch.histogram(values, bins=HISTOGRAM_BINS, range=(r_min, r_max))
        heights = counts.clamp(min=COUNT_BASELINE).numpy()
        self.bars.set_data(heights, edges.numpy(), baseline=COUNT_BASELINE)
        self.hist_ax.set_ylim(COUNT_BASELINE, 3 * max(counts.max().item(), 1.0))
        self.extremes.set_xdata([values.min().item(), values.max().item()])
        self._values = values
        self._histogram_version += 1

    def _set_xlim(self, low: float, high: float) -> None:
        """Keep the x range while it holds everything and is not much too wide (so a new bit
        width or mode rarely redraws the background); else fit it again, with a margin."""
        old = self._xlim
        if high <= low:
            low, high = low - 0.5, high + 0.5
        if old is None or low < old[0] or high > old[1] or high - low < 0.6 * (old[1] - old[0]):
            pad = 0.04 * (high - low)
            self._xlim = (low - pad, high + pad)
            self.hist_ax.set_xlim(*self._xlim)

    def _set_legend(self, n_grids: int, clipping: bool = False, grid: bool = False) -> None:
        """The legend names the drawn grids (one, or the finest and the widest) and, with a
        clipped range, the dashed lines at its ends. ``grid``: a float8 or NF4 grid."""
        if (n_grids, clipping, grid) == self._legend_key:
            return
        from matplotlib.legend_handler import HandlerTuple
        from matplotlib.lines import Line2D

        handles = [self.bars, self.extremes]
        labels = ["values (histogram)", "smallest and largest value"]
        if n_grids == 1:
            labels.append("levels r = s \u00b7 grid value" if grid else "levels r = s (q - z)")
        else:
            labels += ["levels, block with the largest s", "levels, block with the smallest s"]
        for color in GRID_COLORS[:n_grids]:
            handles.append(Line2D([], [], color=color, alpha=0.7))
        if clipping:
            dashed = [
                Line2D([], [], color=color, linewidth=2.0, linestyle=(0, (4, 2)))
                for color in GRID_COLORS[:n_grids]
            ]
            handles.append(dashed[0] if n_grids == 1 else tuple(dashed))
            labels.append(
                "clipping range \u00b1\u03b1"
                if n_grids == 1
                else "their clipping ranges \u00b1\u03b1"
            )
        # Beside the axes, where no grid line crosses it: it stays in the background.
        self.hist_ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=9,
            handler_map={tuple: HandlerTuple(ndivide=None)},
        )
        self._legend_key = (n_grids, clipping, grid)

    def _update_grids(self, dtype, n_bits, scale, zero_point, blocks, clip, n_values):
        """Place the grid lines at the representable levels, and the clipping range's lines;
        returns (title, x range, grids drawn).

        A clipped range rounds to the symmetric grid ``-q_max..q_max`` around the zero point
        (``helper.quantize_clipped``): its end levels are ``-alpha`` and ``alpha``, and the
        storage type's extra code ``q_min`` is not a level of it."""
        clipping = None if clip is None else (_fingerprint(clip[0]), clip[1])
        self._grid_state = (str(dtype), n_bits, _fingerprint(scale), _fingerprint(zero_point))
        self._grid_state += (blocks, clipping, n_values)
        q_min, q_max = get_q_range(dtype, n_bits)
        scales = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
        zeros = torch.as_tensor(zero_point).reshape(-1).expand(scales.shape)
        n_blocks = scales.numel()
        if clip is not None:  # the symmetric grid's lowest code
            q_min = 2 * int(zeros[0]) - q_max
        levels = q_max - q_min + 1
        step = math.ceil(levels / MAX_GRID_LINES)
        chosen = [int(scales.argmax())] + ([int(scales.argmin())] if n_blocks > 1 else [])
        low, high = math.inf, -math.inf
        ends = []
        for grid, color, index in zip(self.grids, GRID_COLORS, chosen + [None], strict=False):
            if index is None:
                grid.set_segments([])
                continue
            s, z = scales[index].item(), int(zeros[index])
            q = torch.cat(
                [
                    torch.arange(z, q_min - 1, -step).flip(0),
                    torch.arange(z + step, q_max + 1, step),
                ]
            ).to(torch.float64)
            x = s * (q - z)
            ones = torch.ones_like(x)
            grid.set_segments(torch.stack([x, 0 * ones, x, ones], 1).reshape(-1, 2, 2).numpy())
            low, high = min(low, s * (q_min - z)), max(high, s * (q_max - z))
            if clip is not None:
                alpha = clip[0].reshape(-1)[index].item()
                ends += [
                    ([(-alpha, 0.0), (-alpha, 1.0)], color),
                    ([(alpha, 0.0), (alpha, 1.0)], color),
                ]
        self.clip_lines.set_segments([segment for segment, _ in ends])
        if ends:
            self.clip_lines.set_color([color for _, color in ends])
        shown = f" (1 in {step} drawn)" if step > 1 else ""
        count = f"{n_values:,} values"
        if n_blocks == 1:
            text = f"{count}, {levels:,} levels{shown}"
            if clip is not None:
                alpha = clip[0].reshape(-1)[0].item()
                text += f"\nrange \u00b1{_label(alpha)}: {_clipped_text(clip[1], n_values)}"
            return text, (low, high), 1
        if clip is not None:
            count += f", {_clipped_text(clip[1], n_values)}"
        text = (
            f"{count}, {levels:,} levels per grid{shown}\n{n_blocks:,} grids ({blocks}): "
            f"widest and finest drawn, {n_blocks - 2:,} not drawn"
        )
        return text, (low, high), 2

    def _value_grids(self, scale) -> tuple[list[int], tuple[float, float]]:
        """On a float8 or NF4 grid: the blocks whose grids are drawn (the largest scale, and
        the smallest if there are several) and the x range they span."""
        scales = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
        chosen = [int(scales.argmax())] + ([int(scales.argmin())] if scales.numel() > 1 else [])
        return chosen, (-scales.max().item(), scales.max().item())

    def _update_value_grids(self, grid: str, scale, chosen: list[int], blocks, n_values) -> str:
        """Place the lines of a float8 or NF4 grid (``r = s * g`` for every grid value ``g``)
        for the chosen blocks, within the x range already set; returns the title.

        Going out from 0 on each side, a grid value is drawn only if it lies at least
        ``MIN_GRID_GAP_PX`` pixels from the last one drawn: every line drawn is a grid value,
        and the title says how many are."""
        values = _grid(grid).double()
        scales = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
        low, high = self._xlim
        min_gap = MIN_GRID_GAP_PX * (high - low) / self.hist_ax.bbox.width
        self._grid_state = (grid, _fingerprint(scale), blocks, n_values, min_gap)
        drawn = []
        for artist, index in zip(self.grids, chosen + [None], strict=False):
            if index is None:
                artist.set_segments([])
                continue
            x = _thinned(scales[index].item() * values, min_gap)
            ones = torch.ones_like(x)
            artist.set_segments(torch.stack([x, 0 * ones, x, ones], 1).reshape(-1, 2, 2).numpy())
            drawn.append(len(x))
        self.clip_lines.set_segments([])
        levels, n_blocks = len(values), scales.numel()
        count = f"{n_values:,} values"
        apart = f"at least {MIN_GRID_GAP_PX} px apart"
        if n_blocks == 1:
            shown = "" if drawn[0] == levels else f", {drawn[0]} drawn ({apart})"
            return f"{count}, {levels} grid values{shown}"
        shown = f"{drawn[0]} and {drawn[1]} drawn" if drawn != [levels] * 2 else "all drawn"
        return (
            f"{count}, {levels} grid values per grid, {shown} ({apart})\n{n_blocks:,} grids "
            f"({blocks}): widest and finest drawn, {n_blocks - 2:,} not drawn"
        )


def _thinned(x: torch.Tensor, min_gap: float) -> torch.Tensor:
    """The sorted values ``x`` (0 among them) that are drawn: going out from 0 on each side,
    those at least ``min_gap`` from the last one kept.

    >>> _thinned(torch.tensor([-4.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0]), 0.6).tolist()
    [-4.0, -1.0, 0.0, 1.0, 2.0]
    """
    kept = [0.0]
    for sign in (1.0, -1.0):
        last = 0.0
        for distance in sorted((sign * x)[sign * x > 0].tolist()):  # going out from 0
            if distance - last >= min_gap:
                kept.append(sign * distance)
                last = distance
    return torch.tensor(sorted(kept), dtype=x.dtype)


def drawing_for(
    tensor: torch.Tensor, current: _PanelsDrawing | _HistogramDrawing | None, dpi: float
) -> _PanelsDrawing | _HistogramDrawing:
    """The drawing for ``tensor``: ``current`` if its layout and shape still fit, else a new
    one (four annotated panels for small tensors, a histogram and a heatmap for larger)."""
    small = tensor.numel() <= ANNOTATE_MAX_ELEMENTS
    kind = _PanelsDrawing if small else _HistogramDrawing
    shape = tuple(as_2d(tensor).shape)
    if isinstance(current, kind) and current.shape == shape:
        return current
    return kind(shape, dpi)


def _clipped_text(clipped: int, n_values: int) -> str:
    """How many values a range clips, in words.

    >>> _clipped_text(53, 4096), _clipped_text(0, 9)
    ('53 clipped (1.3%)', 'none clipped')
    """
    if clipped == 0:
        return "none clipped"
    return f"{clipped:,} clipped ({_percent(clipped / n_values)})"
