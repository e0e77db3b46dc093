"""Shipped training recipes: TOML files of settings, `ferkit train --config NAME`. Torch-free,
so `ferkit train --help` can list them."""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).parent


def recipe_names() -> list[str]:
    """Names of the recipes shipped with ferkit (`ferkit train --config robust`)."""
    return sorted(p.stem for p in RECIPES.glob("*.toml"))
