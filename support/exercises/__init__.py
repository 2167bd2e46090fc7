"""Exercise checkers: the instant feedback under each lesson's "Try it" cell.

A checker runs the learner's function on reference cases and reports, case by case, what is
right and what is wrong. Each checker also knows the classic mistakes of its exercise, written
out as small wrong functions (``Mistake``): when the learner's function gives exactly what one
of them gives, the report names that mistake and gives its hint, instead of a hint about the
case that happened to catch it.

You use these from the notebooks (``from support.exercises import check_dequantization``); you
need not read them to follow the course. The quantization itself lives in ``helper.py``.
``core`` holds the mechanism, and each lesson with an exercise has its own module
(``lesson01``, ``lesson02``, ``lesson04`` ... ``lesson15``) with its cases, mistakes and
``check_*`` function. This file only gathers their public names.

Imports point one way: the modules here import ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports them.
"""

from support.exercises.core import (
    CheckCase,
    CheckReport,
    Mistake,
    expect_close,
    expect_integers,
    run_checks,
    same_result,
)
from support.exercises.lesson01 import (
    DEQUANTIZE_MISTAKES,
    QUANTIZE_MISTAKES,
    check_dequantization,
    check_quantize,
)
from support.exercises.lesson02 import SCALE_AND_ZERO_POINT_MISTAKES, check_scale_and_zero_point
from support.exercises.lesson04 import SYMMETRIC_MISTAKES, check_linear_q_symmetric
from support.exercises.lesson05 import (
    DEQUANTIZE_PER_GROUP_MISTAKES,
    PER_CHANNEL_MISTAKES,
    PER_GROUP_MISTAKES,
    check_linear_dequantization_per_group,
    check_linear_q_symmetric_per_channel,
    check_linear_q_symmetric_per_group,
)
from support.exercises.lesson06 import W8A32_MISTAKES, check_w8a32
from support.exercises.lesson07 import (
    W8A16_LAYER_MISTAKES,
    W8A16_MISTAKES,
    check_w8_a16_forward,
    check_w8a16_layer,
)
from support.exercises.lesson08 import (
    LAYERS_TO_REPLACE_MISTAKES,
    REPLACE_MISTAKES,
    check_layers_to_replace,
    check_replace_linear_with_target_and_quantize,
)
from support.exercises.lesson09 import MODEL_SIZE_MISTAKES, check_model_size
from support.exercises.lesson10 import FAKE_GROUPS_MISTAKES, check_fake_quantize_per_group
from support.exercises.lesson11 import W8A16_BYTES_MISTAKES, check_w8a16_bytes
from support.exercises.lesson12 import UNPACK2_MISTAKES, check_unpack_2bit
from support.exercises.lesson13 import MSE_SEARCH_MISTAKES, check_mse_search
from support.exercises.lesson14 import DECODE_E4M3FN_MISTAKES, check_decode_e4m3fn
from support.exercises.lesson15 import STE_MISTAKES, check_fake_quantize_ste

__all__ = [
    "CheckCase",
    "Mistake",
    "CheckReport",
    "same_result",
    "run_checks",
    "expect_close",
    "expect_integers",
    "QUANTIZE_MISTAKES",
    "check_quantize",
    "DEQUANTIZE_MISTAKES",
    "check_dequantization",
    "SCALE_AND_ZERO_POINT_MISTAKES",
    "check_scale_and_zero_point",
    "SYMMETRIC_MISTAKES",
    "check_linear_q_symmetric",
    "PER_CHANNEL_MISTAKES",
    "check_linear_q_symmetric_per_channel",
    "PER_GROUP_MISTAKES",
    "check_linear_q_symmetric_per_group",
    "DEQUANTIZE_PER_GROUP_MISTAKES",
    "check_linear_dequantization_per_group",
    "W8A32_MISTAKES",
    "check_w8a32",
    "W8A16_MISTAKES",
    "check_w8_a16_forward",
    "W8A16_LAYER_MISTAKES",
    "check_w8a16_layer",
    "LAYERS_TO_REPLACE_MISTAKES",
    "check_layers_to_replace",
    "REPLACE_MISTAKES",
    "check_replace_linear_with_target_and_quantize",
    "MODEL_SIZE_MISTAKES",
    "check_model_size",
    "FAKE_GROUPS_MISTAKES",
    "check_fake_quantize_per_group",
    "W8A16_BYTES_MISTAKES",
    "check_w8a16_bytes",
    "UNPACK2_MISTAKES",
    "check_unpack_2bit",
    "MSE_SEARCH_MISTAKES",
    "check_mse_search",
    "DECODE_E4M3FN_MISTAKES",
    "check_decode_e4m3fn",
    "STE_MISTAKES",
    "check_fake_quantize_ste",
]
