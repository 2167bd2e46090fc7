"""Exercise checkers (being split into one module per lesson; for now all live in ``core``)."""

from support.exercises.core import *  # noqa: F403
from support.exercises.core import __all__  # noqa: F401
