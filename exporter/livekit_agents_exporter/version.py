"""The exporter's version, read from the installed distribution when there is one."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("livekit-agents-exporter")
except PackageNotFoundError:  # running from a source checkout
    __version__ = "0.1.0"
