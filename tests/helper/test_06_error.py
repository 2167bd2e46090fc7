"""Tests for helper.py section 6, the quantization error: ``quantization_error``.

``sqnr_db`` is checked by its docstring examples (test_docstrings.py) and through
``sqnr_db_per_row`` (test_10_weights_and_activations.py).
"""

from __future__ import annotations

import pytest
import torch
from conftest import seeded

from helper import quantization_error


def test_quantization_error_is_the_course_mse():
    """quantization_error is mean((deq - r) ** 2), as a 0-dim tensor, for mixed float dtypes."""
    r = seeded((5, 7), seed=33)
    deq = r + seeded((5, 7), seed=34, magnitude=0.01)
    error = quantization_error(r, deq)
    assert error.shape == ()
    assert torch.equal(error, (deq - r).square().mean())
    error64 = quantization_error(r.double(), deq)
    assert error64.item() == pytest.approx(((deq.double() - r.double()) ** 2).mean().item())
