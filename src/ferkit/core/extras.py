"""Optional extras: whether torch (`ferkit[train]`) is installed, checked without importing it."""

from __future__ import annotations

from importlib.util import find_spec

from ferkit.core.errors import FerkitError


def has_torch() -> bool:
    """True when torch can be imported; finding it is cheap, importing it takes seconds."""
    try:
        return find_spec("torch") is not None
    except ImportError:  # a finder that refuses torch outright (the no-torch tests use one)
        return False


def require_torch() -> None:
    """Fail in one line, naming the extra to install, when torch is missing."""
    if not has_torch():
        raise FerkitError("this command needs torch: pip install 'ferkit[train]'")
