"""Lesson 08, replacing the linear layers of a model: ``check_layers_to_replace``.

A learner writes ``my_layers_to_replace(module, module_name_to_exclude)``: the dotted names of
the ``nn.Linear`` layers that ``replace_linear_with_target`` would replace, without replacing
anything. The reference is that function itself, run on a copy. The models are built on the
meta device: no memory, no weights, and the learner's random number generator is left alone.
Results are lists of strings, which ``same_result`` does not compare, so this checker finds the
learner's mistake with its own comparison (``_same_names``) after ``run_checks``.

Imports point one way: this module imports ``helper`` and ``support.exercises.core``;
``helper`` never imports it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch

from helper import W8A16LinearLayer, layer_names, replace_linear_with_target
from support.exercises.core import (
    CheckCase,
    CheckReport,
    _call,
    mistakes_from_rows,
    run_checks,
    same_result,
)

__all__ = [
    "LAYERS_TO_REPLACE_MISTAKES",
    "check_layers_to_replace",
]


class _TinyBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc_in = torch.nn.Linear(4, 8)
        self.act = torch.nn.ReLU()
        self.fc_out = torch.nn.Linear(8, 4)


class _TinyLM(torch.nn.Module):
    """Like the lesson's tiny model: an embedding, two linears, a block, an lm_head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.linear_1 = torch.nn.Linear(4, 4)
        self.linear_2 = torch.nn.Linear(4, 4, bias=False)
        self.block = _TinyBlock()
        self.lm_head = torch.nn.Linear(4, 10, bias=False)


class _EncoderLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(4, 4)
        self.out_proj = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 4)
        )


class _Encoder(torch.nn.Module):
    """Two encoder layers with nested linears (layers.0.out_proj, layers.0.mlp.2, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([_EncoderLayer(), _EncoderLayer()])
        self.pooler = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 3)


class _TextClassifier(torch.nn.Module):
    """A head like DistilBERT's: a pre_classifier layer before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.features = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)
        )
        self.pre_classifier = torch.nn.Linear(4, 4)
        self.dropout = torch.nn.Dropout(0.1)
        self.classifier = torch.nn.Linear(4, 2)


class _Stack(torch.nn.Module):
    """Twelve linear layers in a ModuleList: layers.0 ... layers.11, then a head."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(12)])
        self.head = torch.nn.Linear(4, 2)


def _linear_paths(module) -> list[tuple[str, torch.nn.Module]]:
    return [(p, m) for p, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


def _ancestors(path: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b', 'a.b.c']: the dotted paths from the top down to ``path``."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _layers_top_level(module, module_name_to_exclude):
    return [
        name
        for name, child in module.named_children()
        if isinstance(child, torch.nn.Linear) and name not in module_name_to_exclude
    ]


def _layers_recursive(module, exclude, prefix="", own_names=False, leaves=False):
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if name in exclude or path in exclude:
            continue
        if isinstance(child, torch.nn.Linear) or (leaves and not list(child.children())):
            names.append(name if own_names else path)
        else:
            names += _layers_recursive(child, exclude, path + ".", own_names, leaves)
    return names


def _layers_own_names(module, module_name_to_exclude):
    return _layers_recursive(module, module_name_to_exclude, own_names=True)


def _layers_own_names_short_exclusion(module, module_name_to_exclude):
    names = []
    for name, child in module.named_children():
        if name in module_name_to_exclude:
            continue
        if isinstance(child, torch.nn.Linear):
            names.append(name)
        else:
            names += _layers_own_names_short_exclusion(child, module_name_to_exclude)
    return names


def _layers_every_leaf(module, module_name_to_exclude):
    return _layers_recursive(module, module_name_to_exclude, leaves=True)


def _layers_no_exclusion(module, module_name_to_exclude):
    return [path for path, _ in _linear_paths(module)]


def _layers_count(module, module_name_to_exclude):
    return len(_layers_recursive(module, module_name_to_exclude))


def _layers_where(module, module_name_to_exclude, *, rule):
    """A learner's walk over named_modules() that keeps a linear layer unless ``rule`` says so."""
    exclude = list(module_name_to_exclude)
    return [path for path, _ in _linear_paths(module) if not rule(path, exclude)]


_SKIP_RULE = (
    "At every level, skip a child (and everything inside it) when its own name or its dotted "
    "path is in the list: `if name in module_name_to_exclude or path in "
    "module_name_to_exclude: continue`."
)

_OWN_NAMES = "returns each layer's own name (fc_in) instead of its dotted path (block.fc_in)"
_OWN_NAMES_HINT = (
    "build the path on the way down, prefix + name, with prefix = parent's path + '.'; or "
    "take the names named_modules() gives. Short names are ambiguous: every encoder layer "
    "has its own out_proj."
)

# One row per classic mistake: (description, the wrong function, or the rule by which it
# leaves out a linear layer, hint).
_LAYERS_TO_REPLACE_ROWS = (
    (
        "returns how many layers would be replaced, not their names",
        _layers_count,
        "return the list of dotted names itself; len() of it is the count.",
    ),
    (
        "only looks at the model's direct children: it never looks inside a child such as `block`",
        _layers_top_level,
        "a layer inside a block is a child of the block, not of the model. When a child is not "
        "an nn.Linear, call your function on it too (recursion), or walk "
        "module.named_modules(), which visits every level.",
    ),
    (_OWN_NAMES, _layers_own_names, _OWN_NAMES_HINT),
    (_OWN_NAMES, _layers_own_names_short_exclusion, _OWN_NAMES_HINT),
    (
        "lists every module without children (embeddings, activations, norms), not only the "
        "nn.Linear layers",
        _layers_every_leaf,
        "only nn.Linear layers are replaced: test isinstance(child, nn.Linear).",
    ),
    (
        "ignores module_name_to_exclude",
        _layers_no_exclusion,
        "leave out the excluded layers. " + _SKIP_RULE,
    ),
    (
        "matches the names in the list as substrings: 'classifier' also excludes "
        "'pre_classifier', and 'layers.1' also excludes 'layers.10'",
        dict(rule=lambda path, ex: any(e in path for e in ex)),
        "on two strings, `a in b` tests for a substring. Compare whole names: `name in "
        "module_name_to_exclude` on the list itself tests membership. " + _SKIP_RULE,
    ),
    (
        "matches the names in the list as prefixes of the paths (startswith): 'out_proj' never "
        "matches a nested layer, and 'layers.1' also excludes 'layers.10'",
        dict(rule=lambda path, ex: any(path.startswith(e) for e in ex)),
        "compare whole names, not the start of a string. " + _SKIP_RULE,
    ),
    (
        "compares only each linear layer's full dotted path with the list: neither a short name "
        "such as 'out_proj' nor an excluded container such as 'block' leaves anything out",
        dict(rule=lambda path, ex: path in ex),
        _SKIP_RULE + " 'lm_head' and 'out_proj' then work at any depth, 'layers.1' picks one "
        "layer, and 'block' keeps everything inside block.",
    ),
    (
        "compares dotted paths only: a short name such as 'out_proj' never matches a nested layer",
        dict(rule=lambda path, ex: any(a in ex for a in _ancestors(path))),
        "the replace functions compare a module's own name too, so one short name excludes it "
        "at any depth (every encoder layer's out_proj). " + _SKIP_RULE,
    ),
    (
        "compares only each linear layer's own name: an excluded container ('block') or a "
        "dotted path ('layers.1') leaves nothing out",
        dict(rule=lambda path, ex: path.split(".")[-1] in ex),
        _SKIP_RULE + " Excluding 'block' keeps block.fc_in and block.fc_out in float.",
    ),
    (
        "does not skip the layers inside an excluded module: excluding 'block' should keep "
        "block.fc_in and block.fc_out in float",
        dict(rule=lambda path, ex: path in ex or path.split(".")[-1] in ex),
        "when a child's name or path is in the list, skip it without looking inside. " + _SKIP_RULE,
    ),
    (
        "matches short names only: a dotted path such as 'layers.1' never matches",
        dict(rule=lambda path, ex: any(part in ex for part in path.split("."))),
        "the list may also hold dotted paths, to pick one module among several with the same "
        "short name. " + _SKIP_RULE,
    ),
)
LAYERS_TO_REPLACE_MISTAKES = mistakes_from_rows(_LAYERS_TO_REPLACE_ROWS, _layers_where)


def _expected_layers(module, module_name_to_exclude) -> list[str]:
    """What ``helper.replace_linear_with_target`` replaces, found by running it on a copy."""

    replaced = replace_linear_with_target(
        copy.deepcopy(module), W8A16LinearLayer, module_name_to_exclude
    )
    return layer_names(replaced, W8A16LinearLayer)


def _is_names(result: Any) -> bool:
    return isinstance(result, list | tuple | set | frozenset) and all(
        isinstance(name, str) for name in result
    )


def _shown(names: Sequence[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:6])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 6 else "")


def _expect_names(expected: Sequence[str]) -> Callable[[Any], str | None]:
    """A check that the result holds exactly the names in ``expected``, in any order."""

    def check(result: Any) -> str | None:
        if not _is_names(result):
            return (
                f"expected a list of dotted names (strings), got {type(result).__name__} {result!r}"
            )
        names = list(result)
        twice = sorted({name for name in names if names.count(name) > 1})
        missing = [name for name in expected if name not in names]
        extra = [name for name in names if name not in expected]
        problems = []
        if missing:
            problems.append(f"missing {_shown(missing)}")
        if extra:
            problems.append(f"should not list {_shown(dict.fromkeys(extra))}")
        if twice:
            problems.append(f"lists {_shown(twice)} more than once")
        return "; ".join(problems) or None

    return check


def _same_names(a: tuple[Any, BaseException | None], b: tuple[Any, BaseException | None]) -> bool:
    """Two outcomes ``(result, error)`` agree: the same names in any order, or the same value,
    or the same kind of exception."""
    (result_a, error_a), (result_b, error_b) = a, b
    if error_a is not None or error_b is not None:
        return type(error_a) is type(error_b)
    if _is_names(result_a) and _is_names(result_b):
        return sorted(result_a) == sorted(result_b)
    return same_result(result_a, result_b)


def _layers_to_replace_cases() -> list[CheckCase]:
    """The cases of ``check_layers_to_replace``: models that tell the classic mistakes apart."""
    with torch.device("meta"):
        tiny, encoder, text, stack = _TinyLM(), _Encoder(), _TextClassifier(), _Stack()
    specs = [
        ("the lesson's tiny model, excluding ['lm_head']", tiny, ["lm_head"]),
        (
            "the tiny model, excluding ['block'] (a module that holds two linear layers)",
            tiny,
            ["block"],
        ),
        (
            "a two-layer encoder, excluding ['out_proj', 'head'] (every layer has an out_proj)",
            encoder,
            ["out_proj", "head"],
        ),
        (
            "a text classifier with pre_classifier and classifier, excluding ['classifier']",
            text,
            ["classifier"],
        ),
        (
            "a stack of 12 layers, excluding ['layers.1', 'head'] (a dotted path)",
            stack,
            ["layers.1", "head"],
        ),
        (
            "the text classifier, excluding ['lm_head'], a name it does not have",
            text,
            ["lm_head"],
        ),
    ]
    general = (
        "Walk the model like replace_linear_with_target: skip a child whose name or dotted path "
        "is in the list (with everything inside it), list it if it is an nn.Linear, and "
        "otherwise look inside it."
    )
    return [
        CheckCase(text, (model, exclude), _expect_names(_expected_layers(model, exclude)), general)
        for text, model, exclude in specs
    ]


def check_layers_to_replace(function: Callable) -> CheckReport:
    """Exercise of lesson 08: ``my_layers_to_replace(module, module_name_to_exclude)``, the
    dotted names of the ``nn.Linear`` layers that ``replace_linear_with_target`` would replace
    (in any order).

    The reference is ``replace_linear_with_target`` itself, run on a copy. The cases: the
    lesson's tiny model (nested linears, a top-level lm_head), the same model with a whole
    block excluded, an encoder whose layers each have an ``out_proj`` (a short name that must
    match at any depth), a classifier with a ``pre_classifier`` (a substring of
    ``classifier``), ``layers.1`` among twelve layers (a dotted path, and a prefix of
    ``layers.10``), and an exclusion that matches nothing.
    """
    cases = _layers_to_replace_cases()
    report = run_checks("Layers to replace", function, cases)
    if report.status == "failed":
        outcomes = [_call(function, case) for case in cases]
        report.mistake = next(
            (
                mistake
                for mistake in LAYERS_TO_REPLACE_MISTAKES
                if all(
                    _same_names(outcome, _call(mistake.function, case))
                    for outcome, case in zip(outcomes, cases, strict=True)
                )
            ),
            None,
        )
    return report
