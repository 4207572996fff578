"""The detection store backends, known by the scheme of their URL."""

import pytest

from roadwatch.store_backends import UnknownBackend, backend_for


def test_a_backend_is_known_by_its_scheme_and_an_unknown_one_named_without_its_url() -> None:
    assert backend_for("postgres://a@b/c").name == "PostgreSQL"
    assert backend_for("mongodb://b/c").migrated is False
    for url in ("mysql://me:hunter2@db/x", "hunter2", "postgresql+asyncpg://me:hunter2@db/x"):
        with pytest.raises(UnknownBackend) as unknown:
            backend_for(url)
        assert "hunter2" not in str(unknown.value)
        assert "postgresql:// or mongodb://" in str(unknown.value)
