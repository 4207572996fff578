"""Each process loads only what it runs: every `roadwatch` command starts by importing the CLI,
so a library imported at the top of any command's module costs every process its start-up."""

import subprocess
import sys

import pytest

SERVERS_AND_WEB = {"fastapi", "uvicorn", "sqlalchemy", "pymongo", "alembic", "aiohttp"}


def _loaded(module: str) -> set[str]:
    """The top-level packages that importing `module` loads, in a fresh interpreter."""
    code = f"import sys, {module}; print(*sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return {name.split(".")[0] for name in done.stdout.split()}


@pytest.mark.parametrize(
    ("module", "present", "absent"),
    [
        ("roadwatch.cli", {"typer"}, SERVERS_AND_WEB),
        # Its store's client comes when the store is built, as the URL's scheme says.
        (
            "roadwatch.bootstrap.indexer",
            {"aiokafka"},
            {"fastapi", "aiohttp", "sqlalchemy", "pymongo"},
        ),
        ("roadwatch.bootstrap.deliverer", {"aiokafka", "aiohttp"}, {"fastapi", "pymongo"}),
    ],
)
def test_a_process_loads_what_it_runs_and_none_of_what_others_run(
    module: str, present: set[str], absent: set[str]
) -> None:
    loaded = _loaded(module)
    assert present <= loaded
    assert loaded & absent == set()


@pytest.mark.parametrize(
    ("url", "present", "absent"),
    [
        ("postgresql://roadwatch@127.0.0.1:1/x", {"sqlalchemy", "asyncpg"}, {"pymongo"}),
        ("mongodb://127.0.0.1:1/x", {"pymongo"}, {"sqlalchemy", "asyncpg"}),
    ],
)
def test_a_detection_store_loads_its_own_client_alone(
    url: str, present: set[str], absent: set[str]
) -> None:
    code = (
        "import sys; from roadwatch.bootstrap.stores import detection_store; "
        f"detection_store({url!r}); print(*sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert present <= loaded
    assert loaded & absent == set()
