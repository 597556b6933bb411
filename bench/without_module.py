"""Run a module as if a package were not installed: `python -m bench.without_module sniffio bench.direct ...`.

The hidden package's import fails the way a missing one does: the path finders scan every `sys.path` entry
first (that scan is the cost being measured), then `ModuleNotFoundError` is raised.
"""

from __future__ import annotations

import importlib.machinery
import runpy
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["hide", "main"]


class _Hidden:
    """A meta path finder that makes `name` (and its submodules) unimportable, after a real path scan."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self.name and not fullname.startswith(self.name + "."):
            return None
        importlib.machinery.PathFinder.find_spec(fullname + "_absent", sys.path)
        raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


def hide(name: str) -> None:
    """Make `name` unimportable from now on in this process."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
    sys.meta_path.insert(0, _Hidden(name))


def main() -> None:
    """Hide `argv[1]`, then run module `argv[2]` as `__main__` with the remaining arguments."""
    hidden, module, *rest = sys.argv[1:]
    hide(hidden)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
