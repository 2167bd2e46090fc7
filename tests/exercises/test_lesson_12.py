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
from conftest import (
    assert_changed_in_place,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
)

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


def unpack_mask_three_bits(packed):
    values = [(packed >> (2 * i)) & 0b111 for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_mask_one_bit(packed):
    bits = 2
    mask = (1 << (bits - 1)) - 1  # one bit: meant (1 << bits) - 1
    values = [(packed >> (bits * i)) & mask for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_shift_one_too_far(packed):
    values = [(packed >> (2 * i + 1)) & 3 for i in range(4)]
    return torch.stack(values, dim=-1).reshape(-1)


def unpack_positions_from_one(packed):
    values = [(packed >> (2 * position)) & 3 for position in range(1, 5)]
    return torch.stack(values, dim=-1).reshape(-1)


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
        (unpack_mask_three_bits, "masks with 7 (0b111), one bit too many"),
        (unpack_mask_one_bit, "masks with 1 (0b1), one bit too few"),
        (unpack_shift_one_too_far, "one bit too far"),
        (unpack_positions_from_one, "counting the positions from 1"),
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


def unknown_plus_one(packed):
    """Right values, each one too large."""
    return unpack_correct(packed) + 1


def unknown_all_reversed(packed):
    """The right values, the whole tensor in reverse order."""
    return unpack_correct(packed).flip(0)


def unknown_bytes_repeated(packed):
    """The bytes themselves, four times each: no unpacking at all."""
    return packed.repeat_interleave(4)


def unknown_two_values_per_byte(packed):
    """Unpacks as if the values were 4-bit: two per byte."""
    return torch.stack([packed & 15, packed >> 4], dim=-1).reshape(-1)


@pytest.mark.parametrize(
    "function",
    [
        unknown_plus_one,
        unknown_all_reversed,
        unknown_bytes_repeated,
        unknown_two_values_per_byte,
    ],
    ids=lambda f: f.__name__,
)
def test_an_unrecognised_answer_gets_the_first_failing_case_and_the_recipe(function):
    """No known mistake matches: the report shows the first failing case and the lesson's
    recipe, and no hint that belongs to a mistake (or to a case)."""
    assert_neutral_report(
        check_unpack_2bit(function), "value i of a byte is (byte >> 2 * i) & 3", UNPACK2_MISTAKES
    )


def test_a_loop_over_the_elements_passes_with_a_note():
    """The lesson forbids a loop over the elements, but the result is right: a note, not a
    failure, and it names the loop's line."""
    report = check_unpack_2bit(unpack_python_loop)
    text = repr(report)
    assert_passed(report, cases=4)
    assert len(report.notes) == 1, text
    line = unpack_python_loop.__code__.co_firstlineno + 3  # the `for byte in ...` line
    assert f"note: your function loops in Python over the elements (line {line})" in text


def test_a_loop_over_the_elements_with_an_index_gets_the_note_too():
    def by_index(packed):
        out = torch.empty(4 * len(packed), dtype=torch.uint8)
        for index in range(len(packed)):
            for i in range(4):
                out[4 * index + i] = (packed[index] >> 2 * i) & 3
        return out

    report = check_unpack_2bit(by_index)
    assert report.status == "passed" and len(report.notes) == 1, repr(report)


@pytest.mark.parametrize(
    "function",
    [unpack_correct, unpack_broadcast, unpack_arithmetic, unpack_int64_then_cast],
    ids=lambda f: f.__name__,
)
def test_a_loop_free_solution_gets_no_note(function):
    """A loop over the four positions in a byte is not a loop over the elements."""
    report = check_unpack_2bit(function)
    assert report.status == "passed" and report.notes == [], repr(report)
    assert "note:" not in repr(report)


def test_a_wrong_loop_gets_the_mistake_and_the_note():
    def looped_highest_first(packed):
        values = []
        for byte in packed.tolist():
            values += [(byte >> shift) & 3 for shift in (6, 4, 2, 0)]
        return torch.tensor(values, dtype=torch.uint8)

    report = check_unpack_2bit(looped_highest_first)
    assert_names_mistake(report, "highest bits first")
    assert "note: your function loops in Python" in repr(report)


def test_the_stub_gets_no_note():
    def my_unpack_2bit(packed):
        # Your code here
        return None

    report = check_unpack_2bit(my_unpack_2bit)
    assert report.status == "not attempted" and report.notes == []


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
