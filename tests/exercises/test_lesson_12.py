"""Tests for lesson 12 (weight packing): its checker, check_unpack_2bit.

The checker is run on learner-style functions written here, independently of the checker's
own Mistake functions: the stub, a body without ``return``, correct variants (a loop over the
four positions, broadcasting with a tensor of shifts, arithmetic with ``//`` and ``%``, a
Python loop over the bytes, helper's own function), each classic mistake, and functions that
raise. A last group pins the facts the lesson's prose uses, with plain Python integers.
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_changed_in_place, assert_names_mistake, assert_passed

import helper
from support.exercises import UNPACK2_MISTAKES, check_unpack_2bit

# ------------------------------------------------------------------------------------------
# Learner-style answers
# ------------------------------------------------------------------------------------------


def unpack_correct(packed):
    """The lesson's solution."""
    values = [(packed >> (2 * i)) & 0b11 for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_broadcast(packed):
    """One broadcasting shift with a uint8 tensor of shifts."""
    shifts = torch.tensor([0, 2, 4, 6], dtype=torch.uint8)
    return ((packed[:, None] >> shifts) & 3).flatten()


def unpack_arithmetic(packed):
    """Division and remainder instead of shifts and masks."""
    out = torch.empty(len(packed) * 4, dtype=torch.uint8)
    for i in range(4):
        out[i::4] = (packed // 4**i) % 4
    return out


def unpack_python_loop(packed):
    """A plain Python loop over the bytes, the course's way."""
    values = []
    for byte in packed.tolist():
        for i in range(4):
            values.append((byte >> 2 * i) & 3)
    return torch.tensor(values, dtype=torch.uint8)


def unpack_int64_then_cast(packed):
    """int64 shifts, but converted back to uint8 at the end: right."""
    shifts = torch.tensor([0, 2, 4, 6])
    return ((packed.unsqueeze(1) >> shifts) & 3).reshape(-1).to(torch.uint8)


def unpack_helper(packed):
    return helper.unpack_weights(packed, 2)


def unpack_highest_first(packed):
    values = [(packed >> shift) & 3 for shift in (6, 4, 2, 0)]
    return torch.stack(values, dim=1).reshape(-1)


def unpack_mask_bits(packed):
    bits = 2
    values = [(packed >> (bits * i)) & bits for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_mask_power(packed):
    bits = 2
    values = [(packed >> (bits * i)) & (2**bits) for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_mask_four_bits(packed):
    values = [(packed >> (2 * i)) & 0b1111 for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_no_mask(packed):
    values = [packed >> (2 * i) for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_shift_by_position(packed):
    values = [(packed >> i) & 3 for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_shift_left(packed):
    values = [(packed << (2 * i)) & 3 for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_mask_then_shift(packed):
    out = torch.zeros(4 * packed.numel(), dtype=torch.uint8)
    for i in range(4):
        out[i::4] = (packed & 3) >> (2 * i)
    return out


def unpack_concatenated(packed):
    return torch.cat([(packed >> (2 * i)) & 3 for i in range(4)])


def unpack_columns(packed):
    return torch.stack([(packed >> (2 * i)) & 3 for i in range(4)], dim=1)


def unpack_int64(packed):
    shifts = torch.tensor([0, 2, 4, 6])
    return ((packed.unsqueeze(1) >> shifts) & 3).reshape(-1)


# ------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        unpack_correct,
        unpack_broadcast,
        unpack_arithmetic,
        unpack_python_loop,
        unpack_int64_then_cast,
        unpack_helper,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    assert_passed(check_unpack_2bit(function), cases=4)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (unpack_highest_first, "highest bits first"),
        (unpack_mask_bits, "masks with 2, the number of bits"),
        (unpack_mask_power, "masks with 2**bits = 4"),
        (unpack_mask_four_bits, "masks with 15"),
        (unpack_no_mask, "forgets the mask"),
        (unpack_shift_by_position, "shifts by the position"),
        (unpack_shift_left, "shifts left, or masks before it shifts"),
        (unpack_mask_then_shift, "shifts left, or masks before it shifts"),
        (unpack_concatenated, "torch.cat"),
        (unpack_columns, "shape (n, 4)"),
        (unpack_int64, "int64"),
    ],
    ids=lambda value: value.__name__ if callable(value) else value,
)
def test_each_classic_mistake_is_named_with_its_hint(function, words):
    report = check_unpack_2bit(function)
    assert_names_mistake(report, words)


def test_every_mistake_fails_and_is_recognised_as_itself():
    for mistake in UNPACK2_MISTAKES:
        report = check_unpack_2bit(mistake.function)
        assert report.status == "failed", mistake.description
        assert report.mistake.description == mistake.description


def test_concatenation_passes_the_one_byte_cases_only():
    report = check_unpack_2bit(unpack_concatenated)
    assert [p is None for _, p, _ in report.results] == [True, True, False, False]


def test_the_wrong_dtype_is_reported_as_such():
    report = check_unpack_2bit(unpack_int64)
    assert all(p == "expected dtype uint8, got int64" for _, p, _ in report.results)


def test_an_unknown_mistake_gets_the_case_hints():
    def plus_one(packed):
        return unpack_correct(packed) + 1

    report = check_unpack_2bit(plus_one)
    assert report.status == "failed" and report.mistake is None
    assert "hint: value i of a byte is (byte >> 2 * i) & 3" in repr(report)


def test_checker_does_not_modify_the_learners_inputs():
    def destructive(packed):
        result = unpack_correct(packed.clone())
        packed.zero_()
        return result

    assert_changed_in_place(check_unpack_2bit(destructive), "packed")


# ------------------------------------------------------------------------------------------
# The facts the lesson's prose rests on
# ------------------------------------------------------------------------------------------


def test_the_course_byte_and_its_bits():
    assert 1 | 0 << 2 | 3 << 4 | 2 << 6 == 177 == 0b10110001
    assert [(177 >> 2 * i) & 3 for i in range(4)] == [1, 0, 3, 2]
    assert 177 >> 2 == 44 == 0b101100
    assert 2 | 3 << 2 | 0 << 4 | 1 << 6 == 78  # the same values, highest bits first


def test_minus_one_in_int8_has_every_bit_set():
    assert torch.tensor([-1], dtype=torch.int8).view(torch.uint8).tolist() == [255]
