"""Tests for helper.py section 1, integer dtypes and their ranges: ``get_q_range``.

The expected ranges are the course's (lesson L2-B) and ``torch.iinfo``'s, never helper's own.
Bad input (float and unsupported dtypes, bit widths out of range) is in test_bad_input.py.
"""

from __future__ import annotations

import pytest
import torch

from helper import get_q_range


def test_q_range_int8_is_course_range():
    """L2-B: the int8 range is [-128, 127], as plain Python ints."""
    q_range = get_q_range(torch.int8)
    assert q_range == (-128, 127)
    assert all(type(v) is int for v in q_range)


@pytest.mark.parametrize(
    ("dtype", "n_bits", "expected"),
    [
        (torch.uint8, None, (0, 255)),
        (torch.int16, None, (-32768, 32767)),
        (torch.int8, 4, (-8, 7)),
        (torch.int8, 2, (-2, 1)),
        (torch.uint8, 2, (0, 3)),
        (torch.uint8, 8, (0, 255)),
        (torch.int16, 12, (-2048, 2047)),
    ],
)
def test_q_range_matches_iinfo_and_bit_formula(dtype, n_bits, expected):
    """Full range is torch.iinfo; n_bits gives -2**(n-1)..2**(n-1)-1 or 0..2**n-1."""
    assert get_q_range(dtype, n_bits) == expected
    if n_bits is None:
        assert expected == (torch.iinfo(dtype).min, torch.iinfo(dtype).max)
