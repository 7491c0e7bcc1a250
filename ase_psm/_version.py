"""The package version, read by ``pyproject.toml`` (setuptools' dynamic version) and the modules that
write or check it (checkpoints, the CLI's ``--version``)."""

__version__ = "0.2.0"
