"""Lesson 08, replacing the linear layers of a model: two checkers.

* ``check_replace_linear_with_target_and_quantize`` (the exercise): the learner writes the
  course's ``replace_linear_with_target_and_quantize(module, target_class,
  module_name_to_exclude)``, which changes ``module`` in place. The cases use plain names only,
  with the course's rule: a name in the list keeps an ``nn.Linear`` child of that name in float,
  at any depth, and every other child is walked into, whatever its name. The reference is
  ``helper.replace_linear_with_target_and_quantize`` on a copy; the changed module is compared
  with it layer by layer (the course's ``new_module.bias = old_bias``, a ``(out,)`` Parameter,
  counts like our ``(1, out)`` buffer).
* ``check_layers_to_replace`` (the warm-up): ``my_layers_to_replace(module,
  module_name_to_exclude)``, the dotted names of the layers ``replace_linear_with_target`` would
  replace, under helper's rule: plain names as in the course, and dotted paths (our addition),
  which keep the module at that path with everything inside it.

Neither result can be compared by ``same_result`` (a module, a list of names), so both checkers
find the learner's known mistake with their own comparison after ``run_checks``.

Imports point one way: this module imports ``helper``, ``support.examples`` and
``support.exercises.core``; ``helper`` never imports it.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from helper import (
    W8A16LinearLayer,
    dtype_name,
    layer_names,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
)
from support.exercises.case_models import (
    Encoder,
    MiniDetr,
    Stack,
    TextClassifier,
    TinyLM,
    materialized,
)
from support.exercises.core import (
    CheckCase,
    CheckReport,
    Mistake,
    _call,
    _error_shape,
    _is_stub,
    mistakes_from_rows,
    run_checks,
    same_result,
)

__all__ = [
    "REPLACE_MISTAKES",
    "check_replace_linear_with_target_and_quantize",
    "LAYERS_TO_REPLACE_MISTAKES",
    "check_layers_to_replace",
]


def _shown(names: Sequence[str]) -> str:
    names = list(names)
    text = ", ".join(names[:6])
    return text + (f", ... ({len(names)} in all)" if len(names) > 6 else "")


# ---------------------------------------------------------------------------------------------
# The exercise: my_replace_linear_with_target_and_quantize(module, target_class, exclude)
# ---------------------------------------------------------------------------------------------

_REPLACE_EXERCISE = "Replace and quantize"

_REPLACE_RECIPE = (
    "Loop over module.named_children(). A child that is an nn.Linear and whose name is not in "
    "module_name_to_exclude becomes target_class(child.in_features, child.out_features, "
    "child.bias is not None, child.weight.dtype); the new layer quantizes child.weight, takes "
    "child.bias, and goes in with setattr(module, name, new). Any other child: call the "
    "function on it (recursion)."
)


def _excluded(rule: str, name: str, path: str, exclude: Sequence[str]) -> bool:
    """Whether a learner's test leaves a child out: by its own ``name`` (the course), its
    dotted ``path``, a substring of its name, or never."""
    if rule == "name":
        return name in exclude
    if rule == "path":
        return path in exclude
    if rule == "substring":
        return any(excluded in name for excluded in exclude)
    return False


def _replace_variant(
    module,
    target_class,
    module_name_to_exclude,
    prefix="",
    *,
    recurse=True,
    skip_containers=False,
    rule="name",
    bias=True,
    dtype=True,
    quantize=True,
):
    """The course's recursion, or one classic mistake, depending on the keywords: ``recurse``
    into non-linear children, ``skip_containers`` whose name is excluded, the exclusion
    ``rule`` (see ``_excluded``), carry the ``bias`` and the ``dtype`` over, ``quantize``."""
    for name, child in list(module.named_children()):
        path = prefix + name
        excluded = _excluded(rule, name, path, module_name_to_exclude)
        if skip_containers and excluded:
            continue
        if isinstance(child, nn.Linear):
            if excluded:
                continue
            options = (child.weight.dtype,) if dtype else ()
            new = target_class(
                child.in_features, child.out_features, child.bias is not None, *options
            )
            if quantize:
                new.quantize(child.weight.detach())
            if bias and child.bias is not None:
                new.bias.copy_(child.bias.detach().reshape(new.bias.shape))
            setattr(module, name, new)
        elif recurse:
            _replace_variant(
                child,
                target_class,
                module_name_to_exclude,
                path + ".",
                recurse=recurse,
                skip_containers=skip_containers,
                rule=rule,
                bias=bias,
                dtype=dtype,
                quantize=quantize,
            )


def _replace_by_dotted_name(module, target_class, module_name_to_exclude, *, rule, snapshot=True):
    """A walk over ``named_modules()`` that sets each new layer on the model under its dotted
    name: ``setattr(model, "block.fc_in", new)`` adds a child named "block.fc_in"."""
    walk = list(module.named_modules()) if snapshot else module.named_modules()
    for path, child in walk:
        name = path.rsplit(".", 1)[-1] if rule == "name" else path
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            new = target_class(
                child.in_features, child.out_features, child.bias is not None, child.weight.dtype
            )
            new.quantize(child.weight.detach())
            if child.bias is not None:
                new.bias.copy_(child.bias.detach().reshape(new.bias.shape))
            setattr(module, path, new)


_RECURSE = (
    "The course's test: `if isinstance(child, nn.Linear) and name not in "
    "module_name_to_exclude:` replace it, `else:` call the function on the child."
)
_DOTTED = (
    "sets each new layer on the model under its dotted name from named_modules(): "
    "setattr(model, 'block.fc_in', new) adds a new child whose name holds a dot, and the nested "
    "layer stays nn.Linear"
)
_DOTTED_HINT = (
    "setattr never reaches inside a child: it sets an attribute of the object you call it on. "
    "Walk with named_children() and recurse, so you always call setattr on the layer's own "
    "parent; or split the dotted name, parent, _, name = path.rpartition('.'), and call "
    "setattr(module.get_submodule(parent), name, new)."
)

# One row per classic mistake: (description, what differs from the course's walk, hint).
_REPLACE_ROWS = (
    (
        "never looks inside a child that is not a linear layer: nested layers (block.fc_in) "
        "stay nn.Linear",
        dict(recurse=False),
        "a layer inside a block is the block's child, not the model's. When a child is not an "
        "nn.Linear, call your function on it, with the same target_class and list. " + _RECURSE,
    ),
    (
        "skips a child whose name is in the list even when it is not a linear layer: the "
        "course checks the names on nn.Linear children only",
        dict(skip_containers=True),
        "a container named in the list ('block'; in DETR's list ['0', '1', '2', "
        "'class_labels_classifier'], encoder layers 0 to 2) must still be walked into: only "
        "linear layers of that name stay in float. " + _RECURSE,
    ),
    (
        "does not carry the bias over: the new layers keep a bias of zeros",
        dict(bias=False),
        "the new layer starts with a zero bias; give it the old one: "
        "new.bias.copy_(child.bias.detach().reshape(new.bias.shape)), or, as the course does, "
        "new.bias = child.bias (only when child.bias is not None).",
    ),
    (
        "replaces the layers named in module_name_to_exclude too",
        dict(rule="never"),
        "skip a linear child whose name is in the list: `name not in module_name_to_exclude`. "
        + _RECURSE,
    ),
    (
        "builds the new layers in float32: the old layer's dtype is not carried over",
        dict(dtype=False),
        "pass the old weight's dtype as the fourth argument: target_class(child.in_features, "
        "child.out_features, child.bias is not None, child.weight.dtype). A bfloat16 model "
        "must get bfloat16 layers.",
    ),
    (
        "does not quantize the weights: the new layers hold int8 zeros and scales of 1",
        dict(quantize=False),
        "that is the course's first function, replace_linear_with_target. Call "
        "new.quantize(child.weight) on each new layer (keep a reference to the old layer's "
        "weight before you replace it).",
    ),
    (_DOTTED, functools.partial(_replace_by_dotted_name, rule="path"), _DOTTED_HINT),
    (_DOTTED, functools.partial(_replace_by_dotted_name, rule="name"), _DOTTED_HINT),
    (
        _DOTTED,
        functools.partial(_replace_by_dotted_name, rule="path", snapshot=False),
        _DOTTED_HINT + " (Inside a named_modules() loop, adding a child also stops the loop with "
        "'dictionary changed size during iteration'.)",
    ),
    (
        "compares each layer's dotted path with the list: a plain name such as 'out_proj' then "
        "keeps only a top-level layer of that name",
        dict(rule="path"),
        "the course compares the child's own name, which is the same at every depth: "
        "'out_proj' keeps every layer's out_proj in float. " + _RECURSE,
    ),
    (
        "matches the names in the list as substrings: 'classifier' also keeps "
        "'pre_classifier' in float",
        dict(rule="substring"),
        "on two strings, `a in b` tests for a substring. `name in module_name_to_exclude`, on the "
        "list itself, tests for a whole name. " + _RECURSE,
    ),
)
REPLACE_MISTAKES = mistakes_from_rows(_REPLACE_ROWS, _replace_variant)


def _walk(module: nn.Module, prefix: str = ""):
    """``(path, key, child)`` for every module inside ``module``, following the registered
    children: ``key`` is the name a child was registered under, which may hold a dot when a
    learner called ``setattr(model, "block.fc_in", new)``."""
    for key, child in module._modules.items():
        if child is not None:
            path = prefix + key
            yield path, key, child
            yield from _walk(child, path + ".")


def _at(module: nn.Module, path: str) -> nn.Module | None:
    """The module at a dotted ``path`` (``None`` if there is none), found child by child."""
    try:
        return module.get_submodule(path)
    except AttributeError:
        return None


class _Replaced:
    """What the learner's function left: the changed ``module``, and what it returned. Its text
    in a report is the kind of each layer, so the expected and the got lines compare."""

    def __init__(self, module: nn.Module, returned: Any = None) -> None:
        self.module, self.returned = module, returned

    def __repr__(self) -> str:
        kinds = []
        for path, key, child in _walk(self.module):
            if isinstance(child, nn.Linear | W8A16LinearLayer) or "." in key:
                where = f"'{key}' set on its parent" if "." in key else path
                kinds.append(f"{where}: {type(child).__name__}")
        return "{" + ", ".join(kinds) + "}"


def _returning_the_module(function: Callable, idle: list[bool] | None = None) -> Callable:
    """``function`` as ``run_checks`` needs it: it changes its first argument in place and may
    return nothing, so the call returns that argument (in a ``_Replaced``). Each call appends
    to ``idle`` whether it did nothing at all (no module replaced, None returned)."""

    @functools.wraps(function)  # the report names the learner's arguments
    def run(module, target_class, module_name_to_exclude):
        before = [id(child) for child in module.modules()]
        returned = function(module, target_class, module_name_to_exclude)
        if idle is not None:
            idle.append(returned is None and [id(c) for c in module.modules()] == before)
        return _Replaced(module, returned)

    return run


class _ReplaceReport(CheckReport):
    """A ``CheckReport`` for an exercise that changes its argument and need not return: a
    body that did nothing is told what is missing."""

    def __repr__(self) -> str:
        if self.status == "no return":
            return (
                f"{self.exercise}: your function has a body, but it replaced no layer of "
                "`module` and returned None. The course's function returns nothing, so you did "
                "not forget `return`: put each new layer in place with setattr(module, name, "
                "new), and call the function on every child that is not an nn.Linear."
            )
        return super().__repr__()


def _same_tensors(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _bias_of(layer: nn.Module) -> torch.Tensor | None:
    bias = getattr(layer, "bias", None)
    return bias.detach().reshape(-1) if isinstance(bias, torch.Tensor) else None


def _layer_problems(path: str, mine: W8A16LinearLayer, expected: W8A16LinearLayer) -> list[str]:
    """What differs between a replaced layer and the expected one."""
    problems = []
    if mine.dtype != expected.dtype:
        problems.append(
            f"{path} has dtype {dtype_name(mine.dtype)}, expected "
            f"{dtype_name(expected.dtype)} (the old layer's)"
        )
    if not _same_tensors(mine.int8_weights, expected.int8_weights):
        zeros = bool((mine.int8_weights == 0).all())
        problems.append(
            f"{path}.int8_weights are not the quantized old weight"
            + (" (all zeros)" if zeros else "")
        )
    elif not torch.equal(mine.scales.reshape(-1).double(), expected.scales.double()):
        problems.append(f"{path}.scales are not max|row| / 127 of the old weight")
    bias, want = _bias_of(mine), _bias_of(expected)
    if want is None and bias is not None:
        problems.append(f"{path} has a bias; the old layer had none")
    elif want is not None and bias is None:
        problems.append(f"{path} has no bias; the old layer had one")
    elif want is not None and not torch.equal(bias.double(), want.double()):
        zeros = bool((bias == 0).all())
        problems.append(
            f"{path}.bias is not the old layer's bias" + (" (all zeros)" if zeros else "")
        )
    return problems


def _expect_replaced(expected: nn.Module) -> Callable[[Any], str | None]:
    """A check that the changed module matches ``expected`` layer by layer: the same modules
    under the same names, the chosen layers replaced (int8 weights, scales, bias, dtype), the
    excluded ones still ``nn.Linear``, and nothing added."""

    want = {path: child for path, _, child in _walk(expected)}

    def check(result: Any) -> str | None:
        model = result.module
        got = {path: _at(model, path) for path in want}
        added = [
            f"'{key}'" if "." in key else path
            for path, key, _ in _walk(model)
            if "." in key or path not in want
        ]
        still_float = [
            path
            for path, layer in want.items()
            if isinstance(layer, W8A16LinearLayer) and not isinstance(got[path], W8A16LinearLayer)
        ]
        replaced = [
            path
            for path, layer in want.items()
            if isinstance(layer, nn.Linear) and not isinstance(got[path], nn.Linear)
        ]
        problems = []
        if still_float:
            problems.append(f"not replaced: {_shown(still_float)}")
        if replaced:
            problems.append(f"should have stayed nn.Linear: {_shown(replaced)}")
        if added:
            problems.append(f"modules the model should not have: {_shown(added)}")
        for path, layer in want.items():
            if isinstance(layer, W8A16LinearLayer) and isinstance(got[path], W8A16LinearLayer):
                problems += _layer_problems(path, got[path], layer)
        if not problems:
            return None
        returned = result.returned
        if still_float and isinstance(returned, nn.Module) and returned is not model:
            problems.append("(your function returned another model; the task changes `module`)")
        return "; ".join(problems[:4]) + ("; ..." if len(problems) > 4 else "")

    check.expected = _Replaced(expected)
    return check


def _fingerprint(model: nn.Module, keys: tuple[str, ...] = ()) -> dict[tuple, Any]:
    """Everything that tells two changed models apart, by the tuple of registered names that
    leads to it (a child registered as "block.fc_in" is not block's fc_in): each module's kind
    (and a W8A16 layer's dtype) and each tensor, biases flattened (the course's (out,)
    Parameter and our (1, out) buffer count alike)."""
    found: dict[tuple, Any] = {
        keys: (type(model), model.dtype if isinstance(model, W8A16LinearLayer) else None)
    }
    for name, tensor in [*model._parameters.items(), *model._buffers.items()]:
        if tensor is not None:
            found[(*keys, name)] = tensor.detach().reshape(-1) if name == "bias" else tensor
    for name, child in model._modules.items():
        if child is not None:
            found.update(_fingerprint(child, (*keys, name)))
    return found


def _same_model(a: nn.Module, b: nn.Module) -> bool:
    """The same modules under the same names, with the same tensors (dtype, shape, values)."""
    found_a, found_b = _fingerprint(a), _fingerprint(b)
    if found_a.keys() != found_b.keys():
        return False
    for key, value in found_a.items():
        other = found_b[key]
        if isinstance(value, torch.Tensor):
            if not (
                isinstance(other, torch.Tensor) and _same_tensors(value.detach(), other.detach())
            ):
                return False
        elif value != other:
            return False
    return True


def _same_replacement(
    a: tuple[Any, BaseException | None], b: tuple[Any, BaseException | None]
) -> bool:
    """Two outcomes ``(result, error)`` agree: the same error, or the same changed model."""
    (result_a, error_a), (result_b, error_b) = a, b
    if error_a is not None or error_b is not None:
        return _error_shape(error_a) == _error_shape(error_b)
    try:
        return _same_model(result_a.module, result_b.module)
    except Exception:  # a learner's module that cannot be read like a model
        return False


def _replace_cases() -> list[CheckCase]:
    """The cases of ``check_replace_linear_with_target_and_quantize``: plain names only."""
    with torch.device("meta"):
        models = [TinyLM(), TinyLM(), Encoder(), MiniDetr(), TinyLM(), TextClassifier()]
    tiny, tiny_again, encoder, detr, half, text = (
        materialized(model, seed=10 * i) for i, model in enumerate(models)
    )
    specs = [
        ("the lesson's tiny model, excluding ['lm_head']", tiny, ["lm_head"]),
        (
            "the tiny model, excluding ['block', 'lm_head'] (block is not a linear layer: "
            "its two layers are replaced)",
            tiny_again,
            ["block", "lm_head"],
        ),
        (
            "a two-layer encoder, excluding ['out_proj'] (every layer has an out_proj)",
            encoder,
            ["out_proj"],
        ),
        (
            "a model named like DETR, excluding the course's list ['0', '1', '2', "
            "'class_labels_classifier'] (layers.0 and layers.1 are encoder layers, "
            "bbox_predictor.layers.0 to 2 linear layers)",
            detr,
            ["0", "1", "2", "class_labels_classifier"],
        ),
        ("the tiny model in bfloat16, excluding []", half.to(torch.bfloat16), []),
        (
            "a text classifier with pre_classifier and classifier, excluding ['classifier']",
            text,
            ["classifier"],
        ),
    ]
    cases = []
    for description, model, exclude in specs:
        expected = replace_linear_with_target_and_quantize(
            copy.deepcopy(model), W8A16LinearLayer, exclude
        )
        check = _expect_replaced(expected)
        args = (model, W8A16LinearLayer, exclude)
        cases.append(CheckCase(description, args, check, _REPLACE_RECIPE, changes=(0,)))
    return cases


def _known_mistake(
    function: Callable,
    cases: Sequence[CheckCase],
    mistakes: Sequence[Mistake],
    same: Callable[[Any, Any], bool],
    wrap: Callable[[Callable], Callable] = lambda f: f,
) -> Mistake | None:
    """The first of ``mistakes`` whose outcome agrees (``same``) with the learner's on every
    case, each run through ``wrap``."""
    outcomes = [_call(wrap(function), case) for case in cases]
    for mistake in mistakes:
        if all(
            same(outcome, _call(wrap(mistake.function), case))
            for outcome, case in zip(outcomes, cases, strict=True)
        ):
            return mistake
    return None


def _timed_out(report: CheckReport) -> bool:
    return any(problem and "TimeoutError" in problem for _, problem, _ in report.results)


def check_replace_linear_with_target_and_quantize(function: Callable) -> CheckReport:
    """Exercise of lesson 08: ``my_replace_linear_with_target_and_quantize(module,
    target_class, module_name_to_exclude)``, which replaces in place every ``nn.Linear`` of
    ``module`` (at any depth) by a quantized ``target_class`` layer, except the linear layers
    whose own name is in the list, as the course's function does. What it returns is not
    checked (the course's returns nothing).

    The reference is ``helper.replace_linear_with_target_and_quantize`` on a copy. The cases:
    the lesson's tiny model without its lm_head, the same with a container ('block') in the
    list, an encoder whose layers each have an out_proj, DETR's names in miniature with the
    course's DETR list, a bfloat16 model (the dtype carries over) and a classifier with a
    pre_classifier (whole names, not substrings).
    """
    cases = _replace_cases()
    if not callable(function):  # run_checks says what to pass instead
        return run_checks(_REPLACE_EXERCISE, function, cases)
    idle: list[bool] = []
    report = run_checks(
        _REPLACE_EXERCISE, _returning_the_module(function, idle), cases, recipe=_REPLACE_RECIPE
    )
    if len(idle) == len(cases) and all(idle):  # the stub, or a body that did nothing
        status = "not attempted" if _is_stub(function) else "no return"
        return _ReplaceReport(_REPLACE_EXERCISE, status, report.results)
    if report.status == "failed" and not _timed_out(report):
        report.mistake = _known_mistake(
            function, cases, REPLACE_MISTAKES, _same_replacement, _returning_the_module
        )
    return report


# ---------------------------------------------------------------------------------------------
# The warm-up: my_layers_to_replace(module, module_name_to_exclude)
# ---------------------------------------------------------------------------------------------


def _linear_paths(module) -> list[tuple[str, nn.Module]]:
    return [(p, m) for p, m in module.named_modules() if isinstance(m, nn.Linear)]


def _ancestors(path: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b', 'a.b.c']: the dotted paths from the top down to ``path``."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _layers_top_level(module, module_name_to_exclude):
    return [
        name
        for name, child in module.named_children()
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude
    ]


def _layers_walk(module, exclude, prefix="", *, own_names=False, leaves=False, paths=True):
    """helper's walk, listing each layer's own name (``own_names``) or every module without
    children (``leaves``) if asked, and skipping dotted ``paths`` unless told not to."""
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if paths and "." in path and path in exclude:
            continue
        is_linear = isinstance(child, nn.Linear)
        if is_linear or (leaves and not list(child.children())):
            if not (is_linear and name in exclude):
                names.append(name if own_names else path)
        else:
            names += _layers_walk(
                child, exclude, path + ".", own_names=own_names, leaves=leaves, paths=paths
            )
    return names


def _layers_count(module, module_name_to_exclude):
    return len(_layers_walk(module, module_name_to_exclude))


def _layers_where(module, module_name_to_exclude, *, rule):
    """A learner's walk over named_modules() that keeps a linear layer unless ``rule`` says so."""
    exclude = list(module_name_to_exclude)
    return [path for path, _ in _linear_paths(module) if not rule(path, exclude)]


def _own(path: str) -> str:
    return path.rsplit(".", 1)[-1]


_RULE = (
    "helper's rule: a plain name (no dot) leaves out the nn.Linear layers with that own name, "
    "at any depth, and never a container; a dotted path ('layers.1', 'layers.0') leaves out "
    "the module at that path with everything inside it."
)

_OWN_NAMES = "returns each layer's own name (fc_in) instead of its dotted path (block.fc_in)"
_OWN_NAMES_HINT = (
    "build the path on the way down, prefix + name, with prefix = parent's path + '.'; or "
    "take the names named_modules() gives. Short names are ambiguous: every encoder layer "
    "has its own out_proj."
)
_CONTAINERS = (
    "leaves out a whole module whose plain name is in the list ('block'; 'layers.0' for the "
    "name '0'): a plain name matches nn.Linear layers only"
)
_CONTAINERS_HINT = (
    "the course walks into every child that is not an nn.Linear, whatever its name: that is "
    "why DETR's list ['0', '1', '2', 'class_labels_classifier'] keeps 4 of its 100 linear layers, "
    "not its encoder layers 0 to 2. To leave out a whole module, name it by a dotted path. " + _RULE
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
    (_OWN_NAMES, functools.partial(_layers_walk, own_names=True), _OWN_NAMES_HINT),
    (_OWN_NAMES, functools.partial(_layers_walk, own_names=True, paths=False), _OWN_NAMES_HINT),
    (
        "lists every module without children (embeddings, activations, norms), not only the "
        "nn.Linear layers",
        functools.partial(_layers_walk, leaves=True),
        "only nn.Linear layers are replaced: test isinstance(child, nn.Linear).",
    ),
    (
        "ignores module_name_to_exclude",
        dict(rule=lambda path, ex: False),
        "leave out the excluded layers. " + _RULE,
    ),
    (
        "matches the names in the list as substrings: 'classifier' also excludes "
        "'pre_classifier', and 'layers.1' also excludes 'layers.10'",
        dict(rule=lambda path, ex: any(e in path for e in ex)),
        "on two strings, `a in b` tests for a substring. Compare whole names: `name in "
        "module_name_to_exclude` on the list itself tests membership. " + _RULE,
    ),
    (
        "matches the names in the list as prefixes of the paths (startswith): 'out_proj' never "
        "matches a nested layer, and 'layers.1' also excludes 'layers.10'",
        dict(rule=lambda path, ex: any(path.startswith(e) for e in ex)),
        "compare whole names, not the start of a string. " + _RULE,
    ),
    (
        "compares only each linear layer's full dotted path with the list: a plain name such "
        "as 'out_proj' never matches a nested layer, and a dotted path to a module that holds "
        "layers ('layers.0') leaves nothing out",
        dict(rule=lambda path, ex: path in ex),
        "compare a linear layer's own name (the last part of its path) with the list too, and "
        "skip a module whose dotted path is in the list with everything inside it. " + _RULE,
    ),
    (
        "compares only each linear layer's own name: a dotted path ('layers.1', 'layers.0') "
        "leaves nothing out",
        dict(rule=lambda path, ex: _own(path) in ex),
        "the list may also hold dotted paths, to pick one module among several with the same "
        "short name, or a whole module with everything inside. " + _RULE,
    ),
    (
        _CONTAINERS,
        dict(rule=lambda path, ex: any(a in ex for a in _ancestors(path))),
        _CONTAINERS_HINT,
    ),
    (
        _CONTAINERS,
        dict(rule=lambda path, ex: any(part in ex for part in path.split("."))),
        _CONTAINERS_HINT,
    ),
    (
        _CONTAINERS,
        dict(rule=lambda path, ex: _own(path) in ex or any(a in ex for a in _ancestors(path))),
        _CONTAINERS_HINT,
    ),
    (
        _CONTAINERS,  # the rule of this lesson (and of helper) before it followed the course
        dict(
            rule=lambda path, ex: (
                any(a in ex for a in _ancestors(path))
                or any(part in ex for part in path.split("."))
            )
        ),
        _CONTAINERS_HINT,
    ),
    (
        "does not skip the layers inside a module named by a dotted path: 'layers.0' should "
        "keep everything inside the first layer in float",
        dict(rule=lambda path, ex: path in ex or _own(path) in ex),
        "when a child's dotted path is in the list, skip it without looking inside. " + _RULE,
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


def _expect_names(expected: Sequence[str]) -> Callable[[Any], str | None]:
    """A check that the result holds exactly the names in ``expected``, in any order. Counts
    (``Counter``) keep it linear in the number of names."""

    wanted = set(expected)

    def check(result: Any) -> str | None:
        if not _is_names(result):
            return f"expected a list of dotted names (strings), got {type(result).__name__}"
        counts = Counter(result)
        twice = sorted(name for name, n in counts.items() if n > 1)
        missing = [name for name in expected if name not in counts]
        extra = [name for name in counts if name not in wanted]
        problems = []
        if missing:
            problems.append(f"missing {_shown(missing)}")
        if extra:
            problems.append(f"should not list {_shown(extra)}")
        if twice:
            problems.append(f"lists {_shown(twice)} more than once")
        return "; ".join(problems) or None

    check.expected = sorted(expected)
    return check


def _same_names(a: tuple[Any, BaseException | None], b: tuple[Any, BaseException | None]) -> bool:
    """Two outcomes ``(result, error)`` agree: the same names in any order, or the same value,
    or the same kind of exception."""
    (result_a, error_a), (result_b, error_b) = a, b
    if error_a is not None or error_b is not None:
        return type(error_a) is type(error_b)
    if _is_names(result_a) and _is_names(result_b):
        return Counter(result_a) == Counter(result_b)
    try:
        return same_result(result_a, result_b)
    except Exception:  # a learner's result that cannot be compared
        return False


_LAYERS_RECIPE = (
    "Walk the children as replace_linear_with_target does, carrying the dotted path: skip a "
    "child whose path has a dot and is in the list (with everything inside it); list an "
    "nn.Linear child unless its own name is in the list; look inside any other child."
)


def _layers_to_replace_cases() -> list[CheckCase]:
    """The cases of ``check_layers_to_replace``: models that tell the classic mistakes apart."""
    with torch.device("meta"):
        tiny, encoder, text, stack = TinyLM(), Encoder(), TextClassifier(), Stack()
    specs = [
        ("the lesson's tiny model, excluding ['lm_head']", tiny, ["lm_head"]),
        (
            "the tiny model, excluding ['block'] (a plain name, and block is not a linear layer)",
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
            "the encoder, excluding ['0'] (a plain name: the linear layers named 0, not "
            "the encoder layer layers.0)",
            encoder,
            ["0"],
        ),
        (
            "the encoder, excluding ['layers.0'] (a dotted path to a module that holds "
            "four linear layers)",
            encoder,
            ["layers.0"],
        ),
        (
            "the text classifier, excluding ['lm_head'], a name it does not have",
            text,
            ["lm_head"],
        ),
    ]
    return [
        CheckCase(text, (model, exclude), _expect_names(_expected_layers(model, exclude)), _RULE)
        for text, model, exclude in specs
    ]


def check_layers_to_replace(function: Callable) -> CheckReport:
    """Warm-up of lesson 08: ``my_layers_to_replace(module, module_name_to_exclude)``, the
    dotted names of the ``nn.Linear`` layers that ``replace_linear_with_target`` would replace
    (in any order), without replacing anything.

    The reference is ``replace_linear_with_target`` itself, run on a copy. The cases: the
    lesson's tiny model, the same with a container's plain name ('block', which excludes
    nothing), an encoder whose layers each have an ``out_proj`` (a plain name matches at any
    depth), a classifier with a ``pre_classifier`` (a substring of ``classifier``),
    ``layers.1`` among twelve layers (a dotted path, and a prefix of ``layers.10``), the
    plain name '0' (linear layers named 0, not the encoder layer layers.0), the dotted path
    'layers.0' (a whole encoder layer) and an exclusion that matches nothing.
    """
    cases = _layers_to_replace_cases()
    report = run_checks("Layers to replace", function, cases, recipe=_LAYERS_RECIPE)
    if report.status == "failed" and not _timed_out(report):
        report.mistake = _known_mistake(function, cases, LAYERS_TO_REPLACE_MISTAKES, _same_names)
    return report
