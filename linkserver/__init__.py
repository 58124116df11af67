"""LinkServer: an event server organised as a tree of contexts."""

__version__ = "0.1.0"
