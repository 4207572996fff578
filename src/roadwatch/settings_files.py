"""Settings read from files: `NAME_FILE` names a file holding the value of `NAME`, the way
containers receive their secrets (Docker and Kubernetes secrets, systemd credentials)."""

import os
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from roadwatch.errors import ConfigurationError

# A secret is a line or a PEM block, not a dump: a wrong path is caught before it is read.
LARGEST = 64 * 1024


class FileVariables(PydanticBaseSettingsSource):
    """The value of every setting whose `<NAME>_FILE` variable is set, read from that file."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: dict[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self._environ = {k.upper(): v for k, v in (environ or os.environ).items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            variable = name.upper()
            path = self._environ.get(f"{variable}_FILE")
            if path is None:
                continue
            if variable in self._environ:
                raise ConfigurationError(f"set {variable} or {variable}_FILE, not both")
            values[name] = read_secret(Path(path), what=f"{variable}_FILE")
        return values


def read_secret(path: Path, *, what: str) -> str:
    """The file's text without its final line break; ConfigurationError naming `what` if
    it cannot be read."""
    try:
        with path.open("rb") as file:
            content = file.read(LARGEST + 1)
    except OSError as error:
        raise ConfigurationError(f"{what}: cannot read {path}: {error.strerror}") from None
    if len(content) > LARGEST:
        raise ConfigurationError(f"{what}: {path} is larger than {LARGEST // 1024} KiB")
    try:
        text = content.decode()
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what}: {path} is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")
