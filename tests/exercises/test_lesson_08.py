"""Tests for lesson 08 (replacing layers): its two checkers, the exercise
``check_replace_linear_with_target_and_quantize`` and the warm-up ``check_layers_to_replace``,
and the pitfall the lesson shows (``setattr`` with a dotted name).

The learner-style functions below are written here, independently of the checkers' own
``Mistake`` functions: each classic mistake must be rejected and named, every correct variant
must pass, and wrong answers that are no known mistake get the neutral report (the first
failing case and the recipe), never another mistake's hint. helper's ``layer_names`` and the
replacement functions are tested in tests/helper/test_11_layers.py; the facts the lesson
states about DETR, nn.MultiheadAttention, the course's LLMs and torchao in
tests/test_lesson_08_facts.py.
"""

from __future__ import annotations

import copy
import time

import pytest
import torch
from conftest import (
    Outer,
    assert_leaves_the_random_state_alone,
    assert_names_mistake,
    assert_neutral_report,
    assert_passed,
)
from torch import nn

from helper import (
    W8A16LinearLayer,
    layer_names,
    replace_linear_with_target,
    replace_linear_with_target_and_quantize,
)
from support.exercises import (
    LAYERS_TO_REPLACE_MISTAKES,
    REPLACE_MISTAKES,
    check_layers_to_replace,
    check_replace_linear_with_target_and_quantize,
)
from support.exercises.lesson08 import _expect_names

# ------------------------------------------------------------------------------------------
# Learner-style implementations of my_replace_linear_with_target_and_quantize
# ------------------------------------------------------------------------------------------


def new_layer(child, target_class):
    """A learner's own helper: the quantized layer for one nn.Linear, bias carried over as the
    course does it. The wrong answers below use it where their mistake lies elsewhere."""
    new = target_class(
        child.in_features, child.out_features, child.bias is not None, child.weight.dtype
    )
    new.quantize(child.weight)
    if child.bias is not None:
        new.bias = child.bias
    return new


def course_style(module, target_class, module_name_to_exclude):
    """As the course writes it: the old bias Parameter (out,) goes onto the new layer."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and not any([x == name for x in module_name_to_exclude]):
            old_bias = child.bias
            old_weight = child.weight
            new_module = target_class(
                child.in_features, child.out_features, old_bias is not None, child.weight.dtype
            )
            setattr(module, name, new_module)
            getattr(module, name).quantize(old_weight)
            if old_bias is not None:
                getattr(module, name).bias = old_bias
        else:
            course_style(child, target_class, module_name_to_exclude)


def copies_the_bias(module, target_class, module_name_to_exclude):
    """Keywords, the bias copied into the new layer's (1, out) buffer, returns the module."""
    for name, child in list(module.named_children()):
        if not isinstance(child, nn.Linear):
            copies_the_bias(child, target_class, module_name_to_exclude)
        elif name not in module_name_to_exclude:
            new = target_class(
                in_features=child.in_features,
                out_features=child.out_features,
                bias=child.bias is not None,
                dtype=child.weight.dtype,
            )
            new.quantize(child.weight.detach())
            if child.bias is not None:
                with torch.no_grad():
                    new.bias.copy_(child.bias.view(1, -1))
            setattr(module, name, new)
    return module


def with_named_modules_and_parents(module, target_class, module_name_to_exclude):
    """A snapshot of named_modules(), each layer set on its parent (the lesson's fix)."""
    for path, child in list(module.named_modules()):
        parent_path, _, name = path.rpartition(".")
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            setattr(module.get_submodule(parent_path), name, new_layer(child, target_class))


def with_a_stack(module, target_class, module_name_to_exclude):
    """No recursion: an explicit stack of modules to visit."""
    stack = [module]
    while stack:
        current = stack.pop()
        for name, child in list(current.named_children()):
            if isinstance(child, nn.Linear):
                if name in module_name_to_exclude:
                    continue
                layer = target_class(
                    child.in_features,
                    child.out_features,
                    child.bias is not None,
                    child.weight.dtype,
                )
                layer.quantize(child.weight.data)
                if child.bias is not None:
                    layer.bias.data = child.bias.data.reshape(1, -1).clone()
                current.add_module(name, layer)
            else:
                stack.append(child)


def with_the_helper(module, target_class, module_name_to_exclude):
    return replace_linear_with_target_and_quantize(module, target_class, module_name_to_exclude)


def no_recursion(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            setattr(module, name, new_layer(child, target_class))


def skips_excluded_containers(module, target_class, module_name_to_exclude):
    """The old lesson's rule: a name in the list stops the walk, container or not."""
    for name, child in module.named_children():
        if name in module_name_to_exclude:
            continue
        if isinstance(child, nn.Linear):
            setattr(module, name, new_layer(child, target_class))
        else:
            skips_excluded_containers(child, target_class, module_name_to_exclude)


def forgets_the_bias(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            new = target_class(
                child.in_features, child.out_features, child.bias is not None, child.weight.dtype
            )
            new.quantize(child.weight)
            setattr(module, name, new)
        else:
            forgets_the_bias(child, target_class, module_name_to_exclude)


def ignores_the_list(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, new_layer(child, target_class))
        else:
            ignores_the_list(child, target_class, module_name_to_exclude)


def default_dtype(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            new = target_class(child.in_features, child.out_features, bias=child.bias is not None)
            new.quantize(child.weight.detach())
            if child.bias is not None:
                new.bias.copy_(child.bias.detach())
            setattr(module, name, new)
        else:
            default_dtype(child, target_class, module_name_to_exclude)


def never_quantizes(module, target_class, module_name_to_exclude):
    """The course's replace_linear_with_target, handed in as the quantizing one."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            old_bias = child.bias
            new = target_class(
                child.in_features, child.out_features, old_bias is not None, child.weight.dtype
            )
            setattr(module, name, new)
            if old_bias is not None:
                getattr(module, name).bias = old_bias
        else:
            never_quantizes(child, target_class, module_name_to_exclude)


def setattr_with_the_dotted_name(module, target_class, module_name_to_exclude):
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            setattr(module, name, new_layer(child, target_class))


def setattr_with_the_dotted_name_own_name_excluded(module, target_class, module_name_to_exclude):
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.Linear) and name.split(".")[-1] not in module_name_to_exclude:
            setattr(module, name, new_layer(child, target_class))


def setattr_inside_the_live_walk(module, target_class, module_name_to_exclude):
    for name, child in module.named_modules():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            setattr(module, name, new_layer(child, target_class))


def compares_paths(module, target_class, module_name_to_exclude, prefix=""):
    for name, child in module.named_children():
        path = prefix + name
        if isinstance(child, nn.Linear) and path not in module_name_to_exclude:
            setattr(module, name, new_layer(child, target_class))
        elif not isinstance(child, nn.Linear):
            compares_paths(child, target_class, module_name_to_exclude, path + ".")


def substring_names(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        skip = any(excluded in name for excluded in module_name_to_exclude)
        if isinstance(child, nn.Linear) and not skip:
            setattr(module, name, new_layer(child, target_class))
        elif not isinstance(child, nn.Linear):
            substring_names(child, target_class, module_name_to_exclude)


REPLACE_MISTAKEN = [
    (no_recursion, "never looks inside a child that is not a linear layer"),
    (skips_excluded_containers, "skips a child whose name is in the list"),
    (forgets_the_bias, "does not carry the bias over"),
    (ignores_the_list, "replaces the layers named in module_name_to_exclude too"),
    (default_dtype, "builds the new layers in float32"),
    (never_quantizes, "does not quantize the weights"),
    (setattr_with_the_dotted_name, "sets each new layer on the model under its dotted name"),
    (
        setattr_with_the_dotted_name_own_name_excluded,
        "sets each new layer on the model under its dotted name",
    ),
    (setattr_inside_the_live_walk, "sets each new layer on the model under its dotted name"),
    (compares_paths, "compares each layer's dotted path with the list"),
    (substring_names, "matches the names in the list as substrings"),
]

# ------------------------------------------------------------------------------------------
# check_replace_linear_with_target_and_quantize
# ------------------------------------------------------------------------------------------


def my_replace_linear_with_target_and_quantize(module, target_class, module_name_to_exclude):
    # Your code here
    return None


def test_the_stub_is_not_attempted_yet():
    """The stub as handed out: the report says "not attempted yet", no case runs as failed."""
    report = check_replace_linear_with_target_and_quantize(
        my_replace_linear_with_target_and_quantize
    )
    assert report.status == "not attempted"
    assert "not attempted yet" in repr(report)


@pytest.mark.parametrize(
    "function",
    [
        course_style,
        copies_the_bias,
        with_named_modules_and_parents,
        with_a_stack,
        with_the_helper,
    ],
    ids=lambda f: f.__name__,
)
def test_correct_replacements_pass(function):
    """The course's code (bias as a (out,) Parameter), a copy into the (1, out) buffer,
    named_modules() with setattr on each parent, an explicit stack and helper's own function
    all pass every case."""
    assert_passed(check_replace_linear_with_target_and_quantize(function), cases=6)


@pytest.mark.parametrize(
    ("function", "description"),
    REPLACE_MISTAKEN,
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_classic_replacement_mistakes_are_rejected_and_named(function, description):
    """Each mistake fails, the report names it and shows its hint."""
    report = check_replace_linear_with_target_and_quantize(function)
    assert_names_mistake(report, description, start=True)


def test_every_replacement_mistake_is_covered_by_a_learner_function_here():
    """Every Mistake of the checker is the first match of some learner function here."""
    reports = [check_replace_linear_with_target_and_quantize(f) for f, _ in REPLACE_MISTAKEN]
    assert {id(report.mistake) for report in reports} == {id(m) for m in REPLACE_MISTAKES}


def test_the_case_messages_say_what_differs():
    """The failing cases say which layers are wrong and how, by their dotted names."""
    problems = [
        p for _, p, _ in check_replace_linear_with_target_and_quantize(no_recursion).results
    ]
    assert problems[0] == "not replaced: block.fc_in, block.fc_out"
    problems = [
        p for _, p, _ in check_replace_linear_with_target_and_quantize(ignores_the_list).results
    ]
    assert problems[0] == "should have stayed nn.Linear: lm_head"
    report = check_replace_linear_with_target_and_quantize(forgets_the_bias)
    assert "linear_1.bias is not the old layer's bias (all zeros)" in report.results[0][1]
    report = check_replace_linear_with_target_and_quantize(default_dtype)
    assert report.results[4][1].startswith("linear_1 has dtype float32, expected bfloat16")
    report = check_replace_linear_with_target_and_quantize(setattr_with_the_dotted_name)
    assert (
        "modules the model should not have: 'block.fc_in', 'block.fc_out'" in (report.results[0][1])
    )


def scales_twice_too_large(module, target_class, module_name_to_exclude):
    course_style(module, target_class, module_name_to_exclude)
    for layer in module.modules():
        if isinstance(layer, target_class):
            layer.scales.mul_(2)


def only_the_first_layer(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            setattr(module, name, new_layer(child, target_class))
            return


def no_recursion_and_no_bias(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            new = target_class(
                child.in_features, child.out_features, child.bias is not None, child.weight.dtype
            )
            new.quantize(child.weight)
            setattr(module, name, new)


def swapped_features(module, target_class, module_name_to_exclude):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            new = target_class(child.out_features, child.in_features, child.bias is not None)
            new.quantize(child.weight)
            setattr(module, name, new)
        else:
            swapped_features(child, target_class, module_name_to_exclude)


@pytest.mark.parametrize(
    "function",
    [scales_twice_too_large, only_the_first_layer, no_recursion_and_no_bias, swapped_features],
    ids=lambda f: f.__name__,
)
def test_unknown_replacement_mistakes_get_the_neutral_report(function):
    """No known mistake matches: the report shows the first failing case and the recipe, and
    no hint, not even one of another mistake."""
    assert_neutral_report(
        check_replace_linear_with_target_and_quantize(function),
        "Loop over module.named_children()",
        REPLACE_MISTAKES,
        "The first case that fails: the lesson's tiny model",
        "expected: {linear_1: W8A16LinearLayer",
    )


def test_a_changed_exclusion_list_fails_and_is_named():
    """The function may change `module`, but not the list it was given."""

    def adds_the_head(module, target_class, module_name_to_exclude):
        module_name_to_exclude.append("lm_head")
        course_style(module, target_class, module_name_to_exclude)

    report = check_replace_linear_with_target_and_quantize(adds_the_head)
    problems = [p for _, p, _ in report.results if p is not None]
    assert problems and all(
        "your function changed `module_name_to_exclude` in place" in p for p in problems
    )


def test_a_function_that_returns_a_new_model_is_told_the_task_changes_module():
    def replaced_copy(module, target_class, module_name_to_exclude):
        return replace_linear_with_target_and_quantize(
            copy.deepcopy(module), target_class, module_name_to_exclude
        )

    report = check_replace_linear_with_target_and_quantize(replaced_copy)
    assert report.status == "failed"
    assert "your function returned another model" in report.results[0][1]


def test_a_body_that_replaces_nothing_is_told_what_is_missing():
    """A body that changes nothing and returns None: not "not attempted", and not "forget
    return" either, since the course's function returns nothing."""

    def builds_but_never_sets(module, target_class, module_name_to_exclude):
        for _name, child in module.named_children():
            if isinstance(child, nn.Linear):
                new_layer(child, target_class)

    report = check_replace_linear_with_target_and_quantize(builds_but_never_sets)
    assert report.status == "no return"
    text = repr(report)
    assert "it replaced no layer of `module` and returned None" in text
    assert "setattr(module, name, new)" in text


def test_a_body_that_replaces_some_layers_gets_case_messages():
    """Replacing nothing in one case (no top-level linear layer) is a case failure, not "no
    return": the other cases changed the model."""
    report = check_replace_linear_with_target_and_quantize(no_recursion)
    assert report.status == "failed"
    assert report.results[2][1].startswith("not replaced: layers.0.q_proj")


def test_the_replacement_checker_leaves_the_random_number_generator_alone():
    """The cases' weights come from seeded_randn, the models are built on the meta device."""
    assert_leaves_the_random_state_alone(
        lambda: check_replace_linear_with_target_and_quantize(course_style)
    )


# ------------------------------------------------------------------------------------------
# Learner-style implementations of the warm-up, my_layers_to_replace(module, exclude)
# ------------------------------------------------------------------------------------------


def lesson_answer(module, module_name_to_exclude, prefix=""):
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if "." in path and path in module_name_to_exclude:
            continue  # a dotted path: the module with everything inside
        if isinstance(child, nn.Linear):
            if name not in module_name_to_exclude:
                names.append(path)
        else:
            names += lesson_answer(child, module_name_to_exclude, path + ".")
    return names


def with_named_modules(module, module_name_to_exclude):
    """named_modules(), excluding by own name, or by a dotted path at any level above."""
    result = []
    for path, layer in module.named_modules():
        if not isinstance(layer, nn.Linear):
            continue
        parts = path.split(".")
        if parts[-1] in module_name_to_exclude:
            continue
        levels = [".".join(parts[: i + 1]) for i in range(1, len(parts))]
        if any(level in module_name_to_exclude for level in levels):
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
            if prefix and path in module_name_to_exclude:
                continue
            if isinstance(child, nn.Linear):
                if name not in module_name_to_exclude:
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
        if isinstance(child, nn.Linear) and name not in module_name_to_exclude:
            names.append(name)
    return names


def short_names(module, module_name_to_exclude):
    names = []
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            if name not in module_name_to_exclude:
                names.append(name)
        else:
            names.extend(short_names(child, module_name_to_exclude))
    return names


def short_names_with_paths_excluded(module, module_name_to_exclude):
    """Excludes like the helper, but returns the short names that named_modules() splits off."""
    kept = set(lesson_answer(module, module_name_to_exclude))
    return [path.rsplit(".", 1)[-1] for path, _ in module.named_modules() if path in kept]


def every_leaf(module, module_name_to_exclude, prefix=""):
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if "." in path and path in module_name_to_exclude:
            continue
        if list(child.children()):
            names += every_leaf(child, module_name_to_exclude, path + ".")
        elif not (isinstance(child, nn.Linear) and name in module_name_to_exclude):
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


def own_name_only(module, module_name_to_exclude):
    names = []
    for name, m in module.named_modules():
        own = name.rsplit(".", 1)[-1]
        if isinstance(m, nn.Linear) and own not in module_name_to_exclude:
            names.append(name)
    return names


def old_rule(module, module_name_to_exclude, prefix=""):
    """The lesson's answer before the rule changed: a name or path in the list skips the child
    with everything inside it, container or not."""
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if name in module_name_to_exclude or path in module_name_to_exclude:
            continue
        if isinstance(child, nn.Linear):
            names.append(path)
        else:
            names += old_rule(child, module_name_to_exclude, path + ".")
    return names


def any_part_of_the_path(module, module_name_to_exclude):
    names = []
    for path, m in module.named_modules():
        if isinstance(m, nn.Linear) and not set(path.split(".")) & set(module_name_to_exclude):
            names.append(path)
    return names


def paths_and_parents(module, module_name_to_exclude, prefix=""):
    """Recursion that compares dotted paths only, never a child's own name."""
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


def path_check_without_the_dot_rule(module, module_name_to_exclude, prefix=""):
    """Skips any child whose path is in the list, a top-level container named 'block' too."""
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if path in module_name_to_exclude:
            continue
        if isinstance(child, nn.Linear):
            if name not in module_name_to_exclude:
                names.append(path)
        else:
            names += path_check_without_the_dot_rule(child, module_name_to_exclude, path + ".")
    return names


def dotted_paths_only_on_linears(module, module_name_to_exclude, prefix=""):
    """Checks name and path, but only for the linear layers: a dotted module is entered."""
    names = []
    for name, child in module.named_children():
        path = prefix + name
        if isinstance(child, nn.Linear):
            if name not in module_name_to_exclude and path not in module_name_to_exclude:
                names.append(path)
        else:
            names += dotted_paths_only_on_linears(child, module_name_to_exclude, path + ".")
    return names


MISTAKEN = [
    (counts_them, "returns how many layers would be replaced"),
    (top_level_only, "only looks at the model's direct children"),
    (short_names, "returns each layer's own name"),
    (short_names_with_paths_excluded, "returns each layer's own name"),
    (every_leaf, "lists every module without children"),
    (ignores_exclusions, "ignores module_name_to_exclude"),
    (substring, "matches the names in the list as substrings"),
    (startswith, "matches the names in the list as prefixes"),
    (full_path_only, "compares only each linear layer's full dotted path"),
    (own_name_only, "compares only each linear layer's own name"),
    (old_rule, "leaves out a whole module whose plain name is in the list"),
    (any_part_of_the_path, "leaves out a whole module whose plain name is in the list"),
    (path_check_without_the_dot_rule, "leaves out a whole module whose plain name is in the list"),
    (paths_and_parents, "leaves out a whole module whose plain name is in the list"),
    (dotted_paths_only_on_linears, "does not skip the layers inside a module named by a dotted"),
]

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
    assert_passed(check_layers_to_replace(function), cases=8)


@pytest.mark.parametrize(
    ("function", "description"),
    MISTAKEN,
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_classic_mistakes_are_rejected_and_named(function, description):
    """Each mistake fails, the report names it and shows its hint."""
    report = check_layers_to_replace(function)
    assert_names_mistake(report, description, start=True)


def test_every_checker_mistake_is_covered_by_a_learner_function_here():
    """The parametrized test above names each of the checker's mistakes, and every mistake
    function is the first to match some learner function here (none is shadowed)."""
    reports = [check_layers_to_replace(function) for function, _ in MISTAKEN]
    assert {id(report.mistake) for report in reports} == {
        id(mistake) for mistake in LAYERS_TO_REPLACE_MISTAKES
    }


def test_failure_messages_say_what_is_missing_and_what_is_extra():
    """The substring mistake misses pre_classifier and layers.10 / layers.11, by name; the old
    rule misses the layers of block and of layers.0."""
    problems = [problem for _, problem, _ in check_layers_to_replace(substring).results]
    assert problems[3] == "missing pre_classifier"
    assert problems[4] == "missing layers.10, layers.11"
    problems = [problem for _, problem, _ in check_layers_to_replace(ignores_exclusions).results]
    assert problems[0] == "should not list lm_head"
    problems = [problem for _, problem, _ in check_layers_to_replace(old_rule).results]
    assert problems[1] == "missing block.fc_in, block.fc_out"
    assert problems[5] == "missing layers.0.q_proj, layers.0.out_proj, layers.0.mlp.2"


def listed_backwards_with_the_head(module, module_name_to_exclude):
    return [*reversed(lesson_answer(module, module_name_to_exclude)), "lm_head"]


def paths_with_slashes(module, module_name_to_exclude):
    return [name.replace(".", "/") for name in lesson_answer(module, module_name_to_exclude)]


def only_the_excluded(module, module_name_to_exclude):
    kept = set(lesson_answer(module, module_name_to_exclude))
    return [p for p, m in module.named_modules() if isinstance(m, nn.Linear) and p not in kept]


@pytest.mark.parametrize(
    "function",
    [listed_backwards_with_the_head, paths_with_slashes, only_the_excluded],
    ids=lambda f: f.__name__,
)
def test_unknown_warm_up_mistakes_get_the_neutral_report(function):
    """No known mistake matches: the first failing case and the recipe, no hint."""
    assert_neutral_report(
        check_layers_to_replace(function),
        "Walk the children as replace_linear_with_target does",
        LAYERS_TO_REPLACE_MISTAKES,
        "expected: [",
    )


def test_a_warm_up_that_replaces_the_layers_fails_naming_the_module():
    """The warm-up lists names without replacing anything: changing the model fails."""

    def replace_then_list(module, module_name_to_exclude):
        replace_linear_with_target(module, W8A16LinearLayer, module_name_to_exclude)
        return layer_names(module, W8A16LinearLayer)

    report = check_layers_to_replace(replace_then_list)
    assert report.status == "failed"
    assert all("your function changed `module` in place" in p for _, p, _ in report.results)


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


def test_the_name_comparison_is_linear_in_the_number_of_names():
    """30,000 names (which took 55 s with names.count per name) are compared in well under a
    second."""
    expected = [f"layers.{i}" for i in range(30_000)]
    check = _expect_names(expected)
    start = time.perf_counter()
    assert check(list(reversed(expected))) is None
    assert check(expected + expected[:2]) == "lists layers.0, layers.1 more than once"
    assert time.perf_counter() - start < 1.0


def test_checker_leaves_the_random_number_generator_alone():
    """The checker's models are built on the meta device: no random draws in the notebook."""
    assert_leaves_the_random_state_alone(lambda: check_layers_to_replace(lesson_answer))


# ------------------------------------------------------------------------------------------
# The lesson's facts, checked outside the notebook
# ------------------------------------------------------------------------------------------


def test_setattr_with_a_dotted_name_adds_a_new_module_and_leaves_the_nested_one():
    """The pitfall of section 11a: named_modules() + setattr on the root."""
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
