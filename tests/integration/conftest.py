from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import isolated_environment, tear_down_stack


@pytest.fixture
def isolated_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a second, private roadwatch stack on ports of its own."""
    env = isolated_environment(tmp_path / "state")
    yield env
    tear_down_stack(env)
