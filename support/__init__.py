"""What the lessons use but a learner need not read: the machinery beside ``helper.py``.

``helper.py`` (one level up) is the textbook: the quantization, dequantization and plotting
functions in course order. This package holds the rest, and its imports point one way:

* lower side, imported by ``helper``: ``constants``, ``checks`` (argument checks and their
  messages), ``plots`` (the drawing halves of helper's ``plot_*`` functions) and ``fast``
  (the chunked, in-place kernels). None of them imports ``helper``.
* upper side, importing ``helper``: ``examples`` (example tensors), ``exercises`` (the "Try it"
  checkers, one module per lesson), ``explorer`` (the interactive explorer) and ``models``
  (the digits classifier, all-MiniLM-L6-v2, saving and loading). ``helper`` never imports them.

This file imports nothing, so that ``import helper`` (which imports the lower side) never
runs the upper side.
"""
