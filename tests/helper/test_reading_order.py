"""helper.py reads like a textbook, top to bottom, with the machinery beside it.

The checks here are what the layout promises a learner who opens helper.py: every function
uses only names defined above it (no forward references), no validation helpers stand in it,
the course's functions come early, and the file stays short. And a maintainer: imports point
one way, from helper down to ``support.constants``, ``support.checks``, ``support.plots`` and
``support.fast``, which never import helper; no module of the package is over 900 lines.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HELPER = ROOT / "helper.py"
LOWER = ("support.constants", "support.checks", "support.plots", "support.fast")


def module_level_names(tree: ast.Module) -> dict[str, int]:
    """Every name defined at module level (functions, classes, assignments), with its line."""
    defined = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            defined.setdefault(node.name, node.lineno)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defined.setdefault(target.id, node.lineno)
    return defined


def imported_modules(path: pathlib.Path) -> set[str]:
    """The modules a file imports (``from support import checks`` counts as support.checks)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def test_no_function_or_class_uses_a_name_defined_further_down():
    tree = ast.parse(HELPER.read_text(encoding="utf-8"))
    defined = module_level_names(tree)
    forward = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.ClassDef):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                line = defined.get(sub.id)
                if line is not None and line > node.lineno and sub.id != node.name:
                    forward.append(f"{node.name} (line {node.lineno}) uses {sub.id} (line {line})")
    assert forward == []


def test_helper_is_short_and_the_course_functions_come_early():
    source = HELPER.read_text(encoding="utf-8")
    defined = module_level_names(ast.parse(source))
    assert source.count("\n") + 1 < 2000  # issue 17: under 2,000 lines with sections 14-15
    assert defined["linear_q_symmetric_per_channel"] < 900
    assert defined["W8A16LinearLayer"] < 1300
    assert not [name for name in defined if name.startswith("_check")]


def test_the_two_formulas_stand_in_the_one_liners():
    source = HELPER.read_text(encoding="utf-8")
    assert "torch.clamp(torch.round(r / scale) + zero_point, q_min, q_max)" in source
    assert "(scale * (q.to(torch.float32) - zero_point))" in source


def test_helper_imports_only_the_lower_side_of_the_package():
    support = {m for m in imported_modules(HELPER) if m.startswith("support.")}
    outside = {m for m in support if ".".join(m.split(".")[:2]) not in LOWER}
    assert support and outside == set()


LOWER_FILES = sorted(
    [ROOT / "support" / "constants.py", ROOT / "support" / "fast.py", ROOT / "support" / "plots.py"]
    + list((ROOT / "support" / "checks").glob("*.py"))
)


@pytest.mark.parametrize("path", LOWER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_lower_side_never_imports_helper_or_the_upper_side(path):
    imports = imported_modules(path)
    upper = {
        m for m in imports if m.startswith("support.") and ".".join(m.split(".")[:2]) not in LOWER
    }
    assert "helper" not in imports and upper == set()


def test_no_module_of_the_package_is_over_900_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "support").rglob("*.py")
        if (n := path.read_text(encoding="utf-8").count("\n") + 1) > 900
    }
    assert long == {}
