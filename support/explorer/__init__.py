"""The interactive quantization explorer: sliders and menus, and what they do to the error.

Controls (tensor, size, seed, dtype, bit width, mode, range, granularity, group size) on top,
what they do below: the scale(s) and zero point(s), the error measured and estimated, whether
the estimate applies, what the range clips, the memory, and one picture that is redrawn in
place. The logic is plain Python (``QuantizationExplorer.compute``), so tests can drive it
without a browser; ``build_widgets`` only wires ipywidgets to it.

Use it from a notebook with ``from support.explorer import explore`` and ``explore()``. The
quantization it shows comes from ``helper.py`` (``quantize_blockwise`` and
``dequantize_affine``, whatever the mode and granularity; with a clipped range, section 13's
``clipping_absmax`` and ``quantize_clipped``; on the grids of lesson 14 that the dtype menu
also offers, float8 e4m3fn and e5m2 and NF4, section 14's ``quantize_to_grid`` and
``dequantize_from_grid`` with the granularity's block size); this package is machinery you
need not read.

The grids of lesson 14 are fixed formats: the bits slider is pinned to their width (8 or 4)
and greyed out, and so are the mode and the range menu, which apply to integer dtypes only;
the numbers say so. Their estimate is ``s^2/12`` with every value's own step (the gap
between the two grid values around it: ``grid_step_mse``), and the histogram draws the grid
values times the scale, leaving out those closer than ``MIN_GRID_GAP_PX`` pixels to one
drawn (float8's crowd around 0), with the count drawn in its title.

How it stays quick: the picture is drawn once in full (axes, labels, colour bars, histogram),
then every change redraws only the artists that change (images, cell numbers, colour-bar
labels, titles, grid lines) over a saved copy of that background (blitting, with matplotlib's
public ``set_animated``, ``canvas.copy_from_bbox``, ``canvas.restore_region`` and
``Figure.draw_artist``). The figure is cut into regions (each heatmap with its colour bar and
title, the histogram, the suptitle) whose changing artists draw nowhere else; a region's
pixels are saved as drawn, under a key of what was drawn there, and when a setting comes back
they are put back instead of drawn again (``drawing._SavedPixels``); so is a background
(the histogram's bars, axes and legend) that comes back (``drawing._SavedBackgrounds``).
Pillow encodes the pixels as PNG with zlib at a low compression level (``png_bytes``). The
layout is computed once per tensor shape, with room for the longest labels, and never again.
Tests check that this draws exactly the pixels an ordinary full draw of the same state draws.

The modules, and the way their imports point (each imports only those above it, plus
``helper`` and ``support.examples``; nothing imports this package but its users):

* ``settings``: the menus, the tensor menu (``TENSOR_SOURCES``, ``register_tensor_source``)
  and the controls (``ExplorerControl``, ``EXPLORER_CONTROLS``);
* ``compute``: the quantizer (``explorer_quantize``) and what the explorer says about the
  error (``estimate_check``), in plain Python;
* ``drawing``: the picture (blitted matplotlib figures, PNG bytes);
* ``widget``: ``QuantizationExplorer`` and ``explore``.

This file only re-exports their public names, so ``from support.explorer import ...`` works
as it did when the explorer was one module. A constant is read where it is defined: to change
one at run time, set it there (``support.explorer.drawing.MAX_GRID_LINES``). The tensor menu
is the exception: ``register_tensor_source`` and new explorers use whatever dict
``support.explorer.TENSOR_SOURCES`` names.
"""

# Every public name of the modules; those beyond __all__ (EXPLORER_SIZES, MSE_SEARCH,
# GRID_COLORS, png_bytes, ...) are re-exported too, as the single module had them.
from support.explorer.compute import (  # noqa: F401
    ESTIMATE_FACTOR,
    FEW_VALUES,
    MSE_BLOCK_COST,
    MSE_SEARCH,
    MSE_SEARCH_COARSE,
    MSE_SEARCH_WORK,
    QuantizerResult,
    estimate_check,
    explorer_block_size,
    explorer_clip_range,
    explorer_quantize,
    explorer_quantize_to_grid,
    format_number,
    grid_step_mse,
    mse_search_size,
    packed_bytes,
    unreachable_level,
)
from support.explorer.drawing import (  # noqa: F401
    ANNOTATE_MAX_COLUMNS,
    COUNT_BASELINE,
    GRID_COLORS,
    HISTOGRAM_BINS,
    MAX_GRID_LINES,
    MIN_GRID_GAP_PX,
    PNG_COMPRESS_LEVEL,
    drawing_for,
    png_bytes,
)
from support.explorer.settings import (  # noqa: F401
    BUILTIN_TENSOR_SOURCES,
    EXPLORER_CONTROLS,
    EXPLORER_DTYPES,
    EXPLORER_GRANULARITIES,
    EXPLORER_GRIDS,
    EXPLORER_GROUP_SIZES,
    EXPLORER_MODES,
    EXPLORER_RANGES,
    EXPLORER_SIZES,
    GRID_BITS,
    TENSOR_SOURCES,
    ExplorerControl,
    lesson_test_tensor,
    outlier_tensor,
    positive_tensor,
    random_normal_tensor,
    register_tensor_source,
)
from support.explorer.widget import QuantizationExplorer, explore

__all__ = [
    "TENSOR_SOURCES",
    "BUILTIN_TENSOR_SOURCES",
    "register_tensor_source",
    "lesson_test_tensor",
    "random_normal_tensor",
    "outlier_tensor",
    "positive_tensor",
    "EXPLORER_MODES",
    "EXPLORER_GRIDS",
    "EXPLORER_GRANULARITIES",
    "EXPLORER_GROUP_SIZES",
    "EXPLORER_RANGES",
    "ExplorerControl",
    "EXPLORER_CONTROLS",
    "QuantizerResult",
    "explorer_block_size",
    "mse_search_size",
    "explorer_clip_range",
    "explorer_quantize",
    "explorer_quantize_to_grid",
    "grid_step_mse",
    "format_number",
    "packed_bytes",
    "unreachable_level",
    "estimate_check",
    "QuantizationExplorer",
    "explore",
]
