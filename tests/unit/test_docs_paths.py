"""Every file the README and docs/ name exists, and every test they name by its function."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# A path or file name in backticks: `src/roadwatch/errors.py`, `bench/results/`, `retry.py`,
# `tests/integration/test_retention.py::test_name`.
NAMED = re.compile(
    r"`((?:[\w.-]+/)*[\w.-]+\.(?:py|md|toml|txt|yml|yaml|json|sh|html|js|css)(?:::\w+)?"
    r"|(?:src|tests|docs|bench|scripts|\.ci)/[\w./-]*)`"
)
# Where a path written short is taken from.
ROOTS = ("", "src/", "src/roadwatch/", "tests/integration/", "tests/unit/")


def _documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _tracked() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return set(listed)


def _found(name: str, files: set[str]) -> list[Path]:
    """Every file the name can stand for: a bare file name, any of that name."""
    if "/" not in name.rstrip("/"):
        return [REPO / f for f in sorted(files) if f.rsplit("/", 1)[-1] == name]
    return [REPO / root / name for root in ROOTS if (REPO / root / name).exists()]


@pytest.mark.parametrize("document", _documents(), ids=lambda p: p.name)
def test_every_file_a_document_names_exists(document: Path) -> None:
    files = _tracked()
    missing = []
    for named in sorted(set(NAMED.findall(document.read_text()))):
        name, _, function = named.partition("::")
        found = _found(name, files)
        if function:
            found = [f for f in found if re.search(rf"def {function}\b", f.read_text())]
        if not found:
            missing.append(named)
    assert missing == []


def test_a_missing_file_or_test_is_found_missing() -> None:
    files = _tracked()
    assert _found("tests/integration/test_api.py", files) == []
    assert _found("no_such_module.py", files) == []
    assert _found("retry.py", files)
    assert _found("kafka/reader.py", files)
