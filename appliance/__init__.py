"""monalisa: a gallery portrait whose eyes follow the visitor."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("monalisa")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
