"""The pinned environment: requirements.txt, binder/ and pyproject.toml agree.

requirements.txt is what `make venv` (and so CI) installs; binder/requirements.txt is
what Binder installs. Both must pin the same packages to the same versions, and torch
must stay pinned to exactly 2.13.0: an unpinned torch pulls a multi-GB CUDA build.
"""

import re
import shutil
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TORCH_PIN = "torch==2.13.0"
BINDER_RUNTIME = "python-3.11"
PYTORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
EDITABLE_SELF = "-e ."
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!-]*)$")


def _lines(path: Path) -> list[str]:
    """Meaningful lines of a requirements file: comments and blank lines dropped."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            out.append(line)
    return out


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_problems(root: Path) -> list[str]:
    """Everything wrong with the requirement files under `root` (empty list: all good)."""
    problems: list[str] = []
    files = {
        "requirements.txt": root / "requirements.txt",
        "binder/requirements.txt": root / "binder" / "requirements.txt",
    }
    parsed: dict[str, list[str]] = {}
    for label, path in files.items():
        if not path.is_file():
            problems.append(f"{label}: missing")
            continue
        lines = _lines(path)
        if label.startswith("binder/"):
            if PYTORCH_CPU_INDEX not in lines:
                problems.append(f"{label}: lacks '{PYTORCH_CPU_INDEX}'")
            lines = [line for line in lines if line != PYTORCH_CPU_INDEX]
        for line in lines:
            if line != EDITABLE_SELF and not PIN.match(line):
                problems.append(f"{label}: not an exact '==' pin: {line!r}")
        if EDITABLE_SELF not in lines:
            problems.append(f"{label}: lacks '{EDITABLE_SELF}' (editable install of helper.py)")
        if TORCH_PIN not in lines:
            problems.append(f"{label}: torch is not pinned as '{TORCH_PIN}'")
        names = [_normalize(m.group(1)) for m in map(PIN.match, lines) if m]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"{label}: listed more than once: {duplicates}")
        parsed[label] = lines

    if len(parsed) == 2:
        main, binder = (set(parsed[label]) for label in files)
        for line in sorted(main - binder):
            problems.append(f"only in requirements.txt: {line!r}")
        for line in sorted(binder - main):
            problems.append(f"only in binder/requirements.txt: {line!r}")

    runtime = root / "binder" / "runtime.txt"
    if not runtime.is_file():
        problems.append("binder/runtime.txt: missing")
    elif runtime.read_text(encoding="utf-8").strip() != BINDER_RUNTIME:
        problems.append(f"binder/runtime.txt: expected {BINDER_RUNTIME!r}")
    return problems


def pins(root: Path) -> dict[str, str]:
    """{normalized name: version} pinned in root/requirements.txt."""
    found = {}
    for line in _lines(root / "requirements.txt"):
        m = PIN.match(line)
        if m:
            found[_normalize(m.group(1))] = m.group(2)
    return found


def test_repository_requirements_are_consistent():
    assert requirement_problems(ROOT) == []


def test_expected_pins():
    got = pins(ROOT)
    assert got["torch"] == "2.13.0"
    assert {"numpy", "matplotlib", "jupyterlab", "ipywidgets", "ipykernel", "nbval"} <= set(got)
    assert {"pytest", "pytest-timeout", "hypothesis", "ruff", "playwright", "nbconvert"} <= set(got)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the requirement files, to break on purpose."""
    for rel in ("requirements.txt", "binder/requirements.txt", "binder/runtime.txt"):
        dest = tmp_path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, dest)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    """Replace the line that is exactly `old` (comments never match) with `new`."""
    text, count = re.subn(rf"(?m)^{re.escape(old)}$", new, path.read_text("utf-8"), count=1)
    assert count == 1, f"no line {old!r} in {path}"
    path.write_text(text, encoding="utf-8")


def test_unchanged_copy_is_clean(repo_copy: Path):
    assert requirement_problems(repo_copy) == []


@pytest.mark.parametrize(
    ("rel", "old", "new", "expected"),
    [
        # a version that differs between the two files
        ("binder/requirements.txt", "numpy==2.4.6", "numpy==2.4.5", "numpy"),
        ("requirements.txt", "ruff==0.17.6", "ruff==0.17.7", "ruff"),
        # torch pinned to another version
        ("requirements.txt", TORCH_PIN, "torch==2.14.1", "torch is not pinned"),
        # a range instead of an exact pin
        ("requirements.txt", "matplotlib==3.11.2", "matplotlib>=3.11.2", "not an exact"),
        ("binder/requirements.txt", TORCH_PIN, "torch", "not an exact"),
        # a package only in one file
        ("requirements.txt", "pytest==9.2.0", "pytest==9.2.0\nsix==1.16.0", "only in"),
        # the same pin twice
        (
            "requirements.txt",
            "hypothesis==6.170.17",
            "hypothesis==6.170.17\nhypothesis==6.170.17",
            "more than once",
        ),
        # editable self-install dropped
        ("binder/requirements.txt", EDITABLE_SELF, "", "lacks '-e .'"),
        # the CPU index dropped from binder
        ("binder/requirements.txt", PYTORCH_CPU_INDEX, "", "lacks '--extra-index-url"),
        # wrong Binder Python
        ("binder/runtime.txt", BINDER_RUNTIME, "python-3.12", "runtime.txt"),
    ],
)
def test_broken_copy_is_caught(repo_copy: Path, rel: str, old: str, new: str, expected: str):
    _edit(repo_copy / rel, old, new)
    problems = requirement_problems(repo_copy)
    assert problems, f"editing {rel} ({old!r} -> {new!r}) went unnoticed"
    assert any(expected in p for p in problems), problems


def test_comments_and_blank_lines_are_ignored(repo_copy: Path):
    path = repo_copy / "requirements.txt"
    path.write_text("\n# a comment\n\n" + path.read_text(encoding="utf-8") + "\n\n", "utf-8")
    assert requirement_problems(repo_copy) == []


def test_installed_versions_match_pins():
    """The environment running the tests is the pinned one (a stale venv fails here)."""
    wrong = {}
    for name, version in pins(ROOT).items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        # torch reports its build as a local version label: 2.13.0+cpu
        if installed is None or installed.split("+", 1)[0] != version:
            wrong[name] = (version, installed)
    assert wrong == {}


def test_pyproject_exposes_every_module_and_runs_strict_nbval():
    """helper.py and the support package beside it are installed, so that
    ``from support.explorer import ...`` works from notebooks/; ruff knows both as first-party,
    and no other module stands at the top level (no shims)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["project"]["requires-python"] == ">=3.11"
    assert config["project"].get("dependencies", []) == []
    modules = sorted(path.stem for path in ROOT.glob("*.py"))
    assert modules == ["helper"]
    assert config["tool"]["setuptools"]["py-modules"] == ["helper"]
    packages = sorted(path.parent.name for path in ROOT.glob("*/__init__.py"))
    assert packages == ["support"]
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == ["support", "support.*"]
    first_party = config["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    assert sorted(first_party) == ["helper", "support"]
    pytest_opts = config["tool"]["pytest"]["ini_options"]
    addopts = pytest_opts["addopts"]
    assert "--nbval" in addopts and "--nbval-lax" not in addopts
    sanitize = addopts[addopts.index("--nbval-sanitize-with") + 1]
    assert (ROOT / sanitize).is_file()
    assert set(pytest_opts["testpaths"]) == {"tests", "notebooks"}
    assert not any("ignore" in f for f in pytest_opts.get("filterwarnings", []))
