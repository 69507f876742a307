"""orchestrator: change the session consistency of GaussDB(for MySQL) / TaurusDB proxies across a fleet."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("orchestrator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
