"""Tests for lesson 08 (replacing layers): the checker ``check_layers_to_replace`` and the
pitfall the lesson shows (``setattr`` with a dotted name).

The learner-style functions below are written here, independently of the checker's own
``Mistake`` functions: each classic mistake must be rejected and named, every correct
variant must pass. helper's ``layer_names`` and the facts the lesson prints about the
replacement are tested in tests/helper/test_11_layers.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import (
    Outer,
    assert_leaves_the_random_state_alone,
    assert_names_mistake,
    assert_passed,
)
from torch import nn

from helper import (
    W8A16LinearLayer,
    layer_names,
    replace_linear_with_target,
)
from support.exercises import LAYERS_TO_REPLACE_MISTAKES, check_layers_to_replace

# ------------------------------------------------------------------------------------------
# Learner-style implementations of my_layers_to_replace(module, module_name_to_exclude)
# ------------------------------------------------------------------------------------------


def lesson_answer(module, module_name_to_exclude, prefix=""):
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if name in module_name_to_exclude or path in module_name_to_exclude:
            continue
        if isinstance(child, nn.Linear):
            names.append(path)
        else:
            names += lesson_answer(child, module_name_to_exclude, path + ".")
    return names


def with_named_modules(module, module_name_to_exclude):
    """Walk named_modules() and exclude a layer when any level of its path is excluded."""
    result = []
    for path, layer in module.named_modules():
        if not isinstance(layer, nn.Linear):
            continue
        parts = path.split(".")
        levels = [".".join(parts[: i + 1]) for i in range(len(parts))]
        if any(level in module_name_to_exclude for level in levels):
            continue
        if any(part in module_name_to_exclude for part in parts):
            continue
        result.append(path)
    return result


def as_a_set_with_a_stack(module, module_name_to_exclude):
    """No recursion: an explicit stack of (path, module), returning a set."""
    found, stack = set(), [("", module)]
    while stack:
        prefix, current = stack.pop()
        for name, child in current.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if name in module_name_to_exclude or path in module_name_to_exclude:
                continue
            if isinstance(child, nn.Linear):
                found.add(path)
            else:
                stack.append((path, child))
    return found


def by_replacing_a_copy(module, module_name_to_exclude):
    """Let the helper do it on a copy, then ask which layers changed."""
    replaced = replace_linear_with_target(
        copy.deepcopy(module), W8A16LinearLayer, module_name_to_exclude
    )
    return tuple(layer_names(replaced, W8A16LinearLayer))


def counts_them(module, module_name_to_exclude):
    return len(lesson_answer(module, module_name_to_exclude))


def top_level_only(module, module_name_to_exclude):
    names = []
    for name, child in module.named_children():
        if name in module_name_to_exclude:
            continue
        if isinstance(child, nn.Linear):
            names.append(name)
    return names


def short_names(module, module_name_to_exclude):
    names = []
    for name, child in module.named_children():
        if name in module_name_to_exclude:
            continue
        if isinstance(child, nn.Linear):
            names.append(name)
        else:
            names.extend(short_names(child, module_name_to_exclude))
    return names


def every_leaf(module, module_name_to_exclude, prefix=""):
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if name in module_name_to_exclude or path in module_name_to_exclude:
            continue
        grandchildren = list(child.children())
        if grandchildren:
            names += every_leaf(child, module_name_to_exclude, path + ".")
        else:
            names.append(path)
    return names


def ignores_exclusions(module, module_name_to_exclude):
    return [name for name, m in module.named_modules() if isinstance(m, nn.Linear)]


def substring(module, module_name_to_exclude):
    names = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            if not any(excluded in name for excluded in module_name_to_exclude):
                names.append(name)
    return names


def startswith(module, module_name_to_exclude):
    names = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear) and not name.startswith(tuple(module_name_to_exclude)):
            names.append(name)
    return names


def full_path_only(module, module_name_to_exclude):
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear) and name not in module_name_to_exclude
    ]


def paths_and_parents(module, module_name_to_exclude, prefix=""):
    """Recursion that compares dotted paths only, never a child's own short name."""
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if path in module_name_to_exclude:
            continue
        if isinstance(child, nn.Linear):
            names.append(path)
        else:
            names += paths_and_parents(child, module_name_to_exclude, path + ".")
    return names


def own_name_only(module, module_name_to_exclude):
    names = []
    for name, m in module.named_modules():
        own = name.rsplit(".", 1)[-1]
        if isinstance(m, nn.Linear) and own not in module_name_to_exclude:
            names.append(name)
    return names


def does_not_skip_excluded_blocks(module, module_name_to_exclude, prefix=""):
    """Checks name and path, but only for the linear layers: excluded blocks are entered."""
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if isinstance(child, nn.Linear):
            if name not in module_name_to_exclude and path not in module_name_to_exclude:
                names.append(path)
        else:
            names += does_not_skip_excluded_blocks(child, module_name_to_exclude, path + ".")
    return names


def short_names_at_every_level(module, module_name_to_exclude, prefix=""):
    """Recursion that compares the short name at every level, never the dotted path."""
    names = []
    for name, child in module.named_children():
        if name in module_name_to_exclude:
            continue
        path = prefix + name
        if isinstance(child, nn.Linear):
            names.append(path)
        else:
            names += short_names_at_every_level(child, module_name_to_exclude, path + ".")
    return names


def short_names_with_paths_excluded(module, module_name_to_exclude):
    """Excludes like the helper, but returns the short names that named_modules() splits off."""
    kept = set(lesson_answer(module, module_name_to_exclude))
    return [path.rsplit(".", 1)[-1] for path, _ in module.named_modules() if path in kept]


MISTAKEN = [
    (counts_them, "returns how many layers would be replaced"),
    (top_level_only, "only looks at the model's direct children"),
    (short_names, "returns each layer's own name"),
    (every_leaf, "lists every module without children"),
    (ignores_exclusions, "ignores module_name_to_exclude"),
    (substring, "matches the names in the list as substrings"),
    (startswith, "matches the names in the list as prefixes"),
    (full_path_only, "compares only each linear layer's full dotted path"),
    (paths_and_parents, "compares dotted paths only"),
    (own_name_only, "compares only each linear layer's own name"),
    (does_not_skip_excluded_blocks, "does not skip the layers inside an excluded module"),
    (short_names_at_every_level, "matches short names only"),
]

EXTRA = [(short_names_with_paths_excluded, "returns each layer's own name")]

# ------------------------------------------------------------------------------------------
# check_layers_to_replace
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [lesson_answer, with_named_modules, as_a_set_with_a_stack, by_replacing_a_copy],
    ids=lambda f: f.__name__,
)
def test_correct_variants_pass(function):
    """Recursion with a prefix, named_modules() with every level checked, an explicit stack
    returning a set, and the helper run on a copy all pass every case."""
    assert_passed(check_layers_to_replace(function), cases=6)


@pytest.mark.parametrize(
    ("function", "description"),
    MISTAKEN + EXTRA,
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_classic_mistakes_are_rejected_and_named(function, description):
    """Each mistake fails, the report names it and shows its hint."""
    report = check_layers_to_replace(function)
    assert_names_mistake(report, description, start=True)


def test_every_checker_mistake_is_covered_by_a_learner_function_here():
    """The parametrized test above names each of the checker's mistakes, and every mistake
    function is the first to match some learner function here (none is shadowed)."""
    reports = [check_layers_to_replace(function) for function, _ in MISTAKEN + EXTRA]
    assert {report.mistake.description for report in reports} == {
        mistake.description for mistake in LAYERS_TO_REPLACE_MISTAKES
    }
    assert {id(report.mistake) for report in reports} == {
        id(mistake) for mistake in LAYERS_TO_REPLACE_MISTAKES
    }


def test_failure_messages_say_what_is_missing_and_what_is_extra():
    """The substring mistake misses pre_classifier and layers.10 / layers.11, by name."""
    problems = [problem for _, problem, _ in check_layers_to_replace(substring).results]
    assert problems[3] == "missing pre_classifier"
    assert problems[4] == "missing layers.10, layers.11"
    problems = [problem for _, problem, _ in check_layers_to_replace(ignores_exclusions).results]
    assert problems[0] == "should not list lm_head"


def test_duplicates_and_odd_results_are_failures_not_crashes():
    """A name listed twice, numbers, strings, None mixed in: failed cases, never a crash."""

    def twice(module, module_name_to_exclude):
        names = lesson_answer(module, module_name_to_exclude)
        return names + names[:1]

    problems = [problem for _, problem, _ in check_layers_to_replace(twice).results]
    assert all("more than once" in problem for problem in problems)
    for result in (3, "linear_1", [1, 2], {"a": 1}, torch.zeros(2)):
        report = check_layers_to_replace(lambda m, e, result=result: result)
        assert report.status == "failed"
        assert report.passed == 0


def test_a_function_that_replaces_the_layers_does_not_spoil_later_cases():
    """Each case gets a fresh copy: replacing the layers in place changes nothing later."""

    def replace_then_list(module, module_name_to_exclude):
        replace_linear_with_target(module, W8A16LinearLayer, module_name_to_exclude)
        return layer_names(module, W8A16LinearLayer)

    assert check_layers_to_replace(replace_then_list).status == "passed"


def test_checker_leaves_the_random_number_generator_alone():
    """The checker's models are built on the meta device: no random draws in the notebook."""
    assert_leaves_the_random_state_alone(lambda: check_layers_to_replace(lesson_answer))


# ------------------------------------------------------------------------------------------
# helper.layer_names
# ------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------
# The lesson's facts, checked outside the notebook
# ------------------------------------------------------------------------------------------


def test_setattr_with_a_dotted_name_adds_a_new_module_and_leaves_the_nested_one():
    """The pitfall of section 9a: named_modules() + setattr on the root."""
    model = Outer()
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        for name, child in model.named_modules():
            if isinstance(child, nn.Linear):
                setattr(model, name, W8A16LinearLayer(2, 2))
    model = Outer()
    for name, _child in list(model.named_modules()):
        if name == "inner.fc":
            setattr(model, name, W8A16LinearLayer(2, 2))
    assert isinstance(model.inner.fc, nn.Linear)
    assert "inner.fc" in dict(model.named_children())
