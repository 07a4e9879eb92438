"""Errors shared across the package (a leaf module: it imports nothing of the package, so any
module may raise them without an import cycle)."""

from __future__ import annotations


class OptionError(ValueError):
    """An invalid option value; shown to the user as a pytest usage error."""
