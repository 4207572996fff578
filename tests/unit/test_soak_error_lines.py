"""The soak's check of the processes' logs: an ERROR line, or a traceback printed outside
the log's format, fails it; warnings, which every fault brings, do not."""

from pathlib import Path

import orjson
from soak.checks import nothing_logged_as_error


def _log(path: Path, *lines: dict[str, str] | str) -> Path:
    path.write_text(
        "".join(
            (line if isinstance(line, str) else orjson.dumps(line).decode()) + "\n"
            for line in lines
        )
    )
    return path


def test_warnings_alone_hold(tmp_path: Path) -> None:
    logs = [
        _log(tmp_path / "api-1.log", {"level": "warning", "logger": "x", "message": "retrying"}),
        _log(tmp_path / "indexer-1.log", {"level": "info", "message": "started"}, "plain text"),
    ]
    checked = nothing_logged_as_error(logs)
    assert checked.held, checked.figure
    assert checked.figure == "0 error lines in 2 process logs"


def test_an_error_line_or_a_bare_traceback_fails_and_is_named(tmp_path: Path) -> None:
    logs = [
        _log(
            tmp_path / "api-1.log",
            {"level": "warning", "message": "retrying"},
            {
                "level": "error",
                "logger": "uvicorn.error",
                "message": "Exception in ASGI application\n",
            },
        ),
        _log(tmp_path / "deliverer-2.log", "Traceback (most recent call last):", '  File "x.py"'),
    ]
    checked = nothing_logged_as_error(logs)
    assert not checked.held
    assert checked.figure.startswith("2 error lines in 2 process logs; the first: ")
    assert "api-1: uvicorn.error: Exception in ASGI application" in checked.figure
    assert "deliverer-2: Traceback" in checked.figure
