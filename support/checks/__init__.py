"""The argument checks of ``helper.py``, with messages that say what was wrong and what to pass.

Every public function of helper checks its arguments once, at the door, with one of these, and
then works with the checked values: a tensor is checked once, not again at every level below.
Each check returns the value in the form helper computes with (a float tensor, a Python int,
a tuple of ints) or raises a ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) that names the argument.

The checks live in one module per part of helper.py, all reachable as ``checks.name``:
``values`` (numbers, dtypes, tensors, scales, zero points, blocks: sections 1-9), ``layers``
(sections 10-11), ``packing`` (section 12), ``ranges`` (section 13 and the plots) and
``formats`` (sections 14 and 15).

Import direction: these modules import torch and ``support.constants``; ``helper`` imports this
package, and nothing here imports ``helper``.
"""

from support.checks.formats import *  # noqa: F403
from support.checks.layers import *  # noqa: F403
from support.checks.packing import *  # noqa: F403
from support.checks.ranges import *  # noqa: F403
from support.checks.values import *  # noqa: F403
