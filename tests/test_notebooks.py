"""Checks on the stored notebooks that nbval does not make: how they were recorded and linked.

nbval re-runs each notebook and compares outputs; these tests check the things around that:
one clean top-to-bottom run, no stored errors or warnings, no machine paths, seeded random
tensors, no dead widget views, and the index / previous / next links of every lesson.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
LESSONS = [path for path in ALL if path.name != "00_index.ipynb"]


def load(path: Path) -> dict:
    """The notebook's JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook: dict) -> list[dict]:
    """The code cells that hold code."""
    return [c for c in notebook["cells"] if c["cell_type"] == "code" and "".join(c["source"])]


def markdown(notebook: dict) -> str:
    """All markdown of the notebook as one string."""
    return "\n".join(
        "".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"
    )


def test_there_are_notebooks_and_an_index():
    """The collection has its index and at least the first lessons."""
    names = [path.name for path in ALL]
    assert names[0] == "00_index.ipynb"
    assert "01_quantize_and_dequantize.ipynb" in names
    assert "02_scale_and_zero_point.ipynb" in names


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_outputs_come_from_one_clean_run(path):
    """Execution counts are 1, 2, 3, ... in order: one top-to-bottom run, nothing skipped."""
    counts = [cell["execution_count"] for cell in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_errors_warnings_paths_or_widget_views_are_stored(path):
    """No error or stderr outputs, no absolute machine paths, no widget views or state."""
    notebook = load(path)
    assert "widgets" not in notebook["metadata"]
    for cell in code_cells(notebook):
        for output in cell["outputs"]:
            assert output["output_type"] != "error", "".join(cell["source"])
            assert output.get("name") != "stderr", "".join(cell["source"])
            assert "application/vnd.jupyter.widget-view+json" not in output.get("data", {})
            text = json.dumps(output.get("text", "")) + json.dumps(output.get("data", {}))
            text = re.sub(r'"image/png": "[^"]*"', "", text)
            assert not re.search(r"/(tmp|root|home|work|Users)/", text), text[:200]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_random_tensors_are_seeded(path):
    """A notebook that draws random numbers seeds the generator first."""
    source = "\n".join("".join(cell["source"]) for cell in code_cells(load(path)))
    if re.search(r"torch\.(randn|rand|randint|normal)\(", source):
        assert "manual_seed" in source or "Generator" in source


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_ignored_outputs_say_why(path):
    """Every NBVAL_IGNORE_OUTPUT cell carries a comment line explaining itself."""
    for cell in code_cells(load(path)):
        lines = "".join(cell["source"]).splitlines()
        if lines and "NBVAL_IGNORE_OUTPUT" in lines[0]:
            assert len(lines) > 1 and lines[1].startswith("#") and len(lines[1]) > 20


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lessons_link_to_the_index_and_their_neighbours(path):
    """Each lesson links back to the index and to the lessons before and after it."""
    text = markdown(load(path))
    assert "(00_index.ipynb)" in text
    position = ALL.index(path)
    if position > 1:
        assert f"({ALL[position - 1].name})" in text
    if position + 1 < len(ALL):
        assert f"({ALL[position + 1].name})" in text


def test_index_lists_every_lesson_and_the_cheat_sheet():
    """The index links to every lesson notebook and to the cheat sheet."""
    text = markdown(load(NOTEBOOKS / "00_index.ipynb"))
    for path in LESSONS:
        assert f"({path.name})" in text
    assert "(cheatsheet.md)" in text
    assert (NOTEBOOKS / "cheatsheet.md").exists()


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lessons_end_with_an_exercise_whose_solution_is_hidden(path):
    """Each lesson has a try-it exercise and a collapsed <details> block with its answer."""
    text = markdown(load(path))
    assert re.search(r"try it", text, re.IGNORECASE)
    assert "<details>" in text and "</details>" in text


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_each_plot_is_shown_exactly_once(path):
    """A cell that calls plot_quantization_errors stores one picture, not two."""
    for cell in code_cells(load(path)):
        if "plot_quantization_errors(" in "".join(cell["source"]):
            images = [o for o in cell["outputs"] if "image/png" in o.get("data", {})]
            assert len(images) == 1, "".join(cell["source"])


def test_cheat_sheet_links_every_lesson_and_has_a_section_for_each():
    """The cheat sheet links to every lesson and has a heading ending in its number, e.g. (04)."""
    text = (NOTEBOOKS / "cheatsheet.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## .*\(([\d, ]+)\)$", text, flags=re.MULTILINE)
    numbers = {n.strip() for heading in headings for n in heading.split(",")}
    for path in LESSONS:
        assert f"({path.name})" in text
        assert path.name[:2] in numbers, path.name
    assert "to be written" not in text
