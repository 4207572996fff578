class RoadwatchError(Exception):
    """The root of every error roadwatch raises on purpose."""


class ConfigurationError(RoadwatchError):
    """A setting holds a value roadwatch cannot work with."""
