"""scanjobs: declarative, resumable scan jobs."""

__version__ = "0.1.0"
