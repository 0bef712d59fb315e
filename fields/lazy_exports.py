"""A package's public names imported on first use (PEP 562), so that importing the package, or one of
its light modules such as `fields.errors`, does not pull in torch, pycolmap and the rest."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, public: dict[str, str]) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """(__all__, __getattr__, __dir__) for `package`, whose public names live in the modules `public` maps them to."""

    def getattr_(name: str) -> Any:
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(public[name]), name)

    names = sorted(public)
    return names, getattr_, lambda: names
