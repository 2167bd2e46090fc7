"""Lesson 09, a real model, offline: ``check_model_size``.

The learner writes ``my_model_size(model)``: the bytes of every parameter and buffer, each
tensor once, as ``models.model_size(model).total`` counts them. The cases are tiny modules built
here, so the checker runs in milliseconds (no MiniLM).

Imports point one way: this module imports ``helper`` and ``support.exercises.core`` (and
``support.models``, only when the cases are built); ``helper`` never imports it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from helper import W8A16LinearLayer
from support.exercises.core import CheckCase, CheckReport, mistakes_from_rows, run_checks

__all__ = [
    "MODEL_SIZE_MISTAKES",
    "check_model_size",
]


class _TiedTinyLM(torch.nn.Module):
    """An embedding table (10 tokens x 4) and an output layer that shares its weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.lm_head = torch.nn.Linear(4, 10, bias=False)
        self.lm_head.weight = self.embed.weight  # tied: one tensor, two names


class _WithPositions(torch.nn.Module):
    """A linear layer and a non-persistent int64 buffer, like BERT's ``position_ids``."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(3, 2)
        self.register_buffer("positions", torch.arange(8).expand((1, -1)), persistent=False)


def _size_cases_models() -> list[tuple[str, torch.nn.Module, str]]:

    with torch.random.fork_rng(devices=[]):  # leave the learner's random numbers alone
        torch.manual_seed(0)  # the values do not matter, only the shapes and dtypes
        return _size_models(W8A16LinearLayer)


def _size_models(W8A16LinearLayer: type) -> list[tuple[str, torch.nn.Module, str]]:
    return [
        (
            "a float32 nn.Linear(4, 2): 8 weights and 2 biases",
            torch.nn.Linear(4, 2),
            "4 bytes per float32 number: count bytes, tensor.numel() * tensor.element_size().",
        ),
        (
            "nn.Linear(8, 4), then a W8A16LinearLayer(4, 3) whose int8 weights, scales and bias "
            "are buffers",
            torch.nn.Sequential(torch.nn.Linear(8, 4), W8A16LinearLayer(4, 3)),
            "a W8A16LinearLayer has no parameters: its int8 weights, scales and bias are "
            "buffers. Add model.buffers() to model.parameters().",
        ),
        (
            "a float16 nn.Linear(6, 4), then a bfloat16 W8A16LinearLayer(4, 3)",
            torch.nn.Sequential(
                torch.nn.Linear(6, 4, dtype=torch.float16),
                W8A16LinearLayer(4, 3, dtype=torch.bfloat16),
            ),
            "the bytes per element depend on the dtype: 2 for float16 and bfloat16, 1 for int8, "
            "4 for float32: tensor.element_size().",
        ),
        (
            "a tiny language model whose output layer shares the embedding's weight (tied)",
            _TiedTinyLM(),
            "the two layers share one tensor, which takes memory once. model.parameters() gives "
            "it once; a state dict or a loop over every module's own tensors gives it twice.",
        ),
        (
            "a layer with a buffer that the state dict does not hold (persistent=False)",
            _WithPositions(),
            "a non-persistent buffer is not saved in the state dict, but it takes memory all "
            "the same: count model.buffers(), not model.state_dict().",
        ),
    ]


def _expect_bytes(expected: int) -> Callable[[Any], str | None]:
    """A check that the result is the number ``expected`` (an int, a float or a 1-element
    tensor with that value)."""

    def check(result: Any) -> str | None:
        value = (
            result.item() if isinstance(result, torch.Tensor) and result.numel() == 1 else result
        )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"expected a number of bytes, got {type(result).__name__}"
        if not math.isclose(float(value), expected, rel_tol=1e-9, abs_tol=1e-9):
            return f"got {float(value):g}, expected {expected} bytes"
        return None

    check.expected = expected
    return check


def _tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    return list(model.parameters()) + list(model.buffers())


def _size_every_module_recursively(model):
    return sum(
        t.numel() * t.element_size()
        for module in model.modules()
        for t in list(module.parameters()) + list(module.buffers())
    )


def _size_each_module_once(model):
    return sum(
        t.numel() * t.element_size()
        for module in model.modules()
        for t in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
    )


def _size_right(model):
    return sum(t.numel() * t.element_size() for t in _tensors(model))


_BYTES = (
    "Add up tensor.numel() * tensor.element_size() over list(model.parameters()) + "
    "list(model.buffers())."
)

# One row per classic mistake: (description, the wrong count, hint).
_MODEL_SIZE_ROWS = (
    (
        "counts the parameters (numbers), not their bytes, and leaves out the buffers",
        lambda model: sum(p.numel() for p in model.parameters()),
        "a parameter count (22.7 M for MiniLM) is not a size: each number takes "
        "tensor.element_size() bytes, and the buffers take memory too. " + _BYTES,
    ),
    (
        "counts numbers (elements), not bytes",
        lambda model: sum(t.numel() for t in _tensors(model)),
        "each element takes tensor.element_size() bytes: 4 for float32, 2 for bfloat16, 1 "
        "for int8. " + _BYTES,
    ),
    (
        "assumes 4 bytes per number and leaves out the buffers",
        lambda model: 4 * sum(p.numel() for p in model.parameters()),
        "4 bytes is right for float32 only, and a W8A16 layer keeps its int8 weights in "
        "buffers. " + _BYTES,
    ),
    (
        "assumes 4 bytes for every number",
        lambda model: 4 * sum(t.numel() for t in _tensors(model)),
        "that is float32 only: int8 takes 1 byte, float16 and bfloat16 2, int64 8. Use "
        "tensor.element_size().",
    ),
    (
        "leaves out the buffers",
        lambda model: sum(p.numel() * p.element_size() for p in model.parameters()),
        "a W8A16LinearLayer keeps its int8 weights, scales and bias as buffers (an int8 "
        "tensor cannot be a Parameter), so the quantized layers count as 0 bytes. Add "
        "model.buffers().",
    ),
    (
        "adds up the state dict",
        lambda model: sum(t.numel() * t.element_size() for t in model.state_dict().values()),
        "a state dict lists a shared (tied) tensor under each of its names, and leaves out "
        "non-persistent buffers, which still take memory. Use model.parameters() and "
        "model.buffers(), which give each tensor once.",
    ),
    (
        "counts the tensors of every module recursively, so nested tensors count several times",
        _size_every_module_recursively,
        "model.modules() includes the model itself and every submodule, and module.parameters() "
        "already descends into submodules: each tensor is counted once per module above it. "
        "Call model.parameters() and model.buffers() once, on the model.",
    ),
    (
        "counts a tensor shared by two layers (tied weights) twice",
        _size_each_module_once,
        "the embedding and the output layer hold the same tensor: it takes memory once. "
        "model.parameters() gives it once.",
    ),
    (
        "returns megabytes, not bytes",
        lambda model: _size_right(model) / 1e6,
        "return the number of bytes; format_bytes(n) or n / 1e6 is for printing.",
    ),
    (
        "returns kibibytes (KiB, bytes / 1024), not bytes",
        lambda model: _size_right(model) / 1024,
        "return the number of bytes; divide (by 1024 for KiB, 1000 for kB) only when you print.",
    ),
    (
        "returns kilobytes (kB, bytes / 1000), not bytes",
        lambda model: _size_right(model) / 1000,
        "return the number of bytes; format_bytes(n) or n / 1e3 is for printing.",
    ),
    (
        "calls model.get_memory_footprint(), which only transformers models have: a plain "
        "nn.Module raises AttributeError",
        lambda model: model.get_memory_footprint(),
        "the course measures its hub models with get_memory_footprint(), a method of "
        "transformers' PreTrainedModel (lesson 09 shows it agrees with model_size there). "
        "Count for any nn.Module yourself: " + _BYTES,
    ),
    (
        "returns mebibytes (MiB, bytes / 2**20), not bytes",
        lambda model: _size_right(model) / 2**20,
        "return the number of bytes; divide only when you print.",
    ),
    (
        "counts bits, not bytes",
        lambda model: 8 * _size_right(model),
        "element_size() is already in bytes: do not multiply by 8.",
    ),
)
MODEL_SIZE_MISTAKES = mistakes_from_rows(_MODEL_SIZE_ROWS)


def _model_size_cases() -> list[CheckCase]:
    """The cases of ``check_model_size``: small modules that tell the classic mistakes apart.
    (``models`` is imported only here: importing it adds real weights to the explorer's menu.)"""
    from support.models import model_size

    return [
        CheckCase(description, (model,), _expect_bytes(model_size(model).total), hint)
        for description, model, hint in _size_cases_models()
    ]


def check_model_size(function: Callable) -> CheckReport:
    """Exercise of lesson 09: ``my_model_size(model)``, the bytes of a model's parameters and
    buffers, each tensor once (the reference is ``models.model_size(model).total``).

    The cases: a float32 ``nn.Linear`` (bytes, not numbers), a model with a
    ``W8A16LinearLayer`` (its int8 weights are buffers), float16 and bfloat16 layers (bytes
    per element by dtype), tied weights (one tensor, two names) and a non-persistent buffer
    (not in the state dict). A number equal to the answer passes, as an int, a float or a
    1-element tensor. None of them is a transformers model: ``get_memory_footprint()`` is not
    there.
    """
    return run_checks(
        "Model size in bytes", function, _model_size_cases(), MODEL_SIZE_MISTAKES, recipe=_BYTES
    )
