"""INSTRUCTOR-ONLY reference implementation: one module per technique.

Never shipped to students (the release build drops this folder and a test proves it) and never imported by public
code. Every graded function is re-exported here by its graded name, e.g. ``utils.reference.compute_saliency_maps``.
Each module lists its graded names in ``__all__``.
"""
from __future__ import annotations

import importlib
import pkgutil

__all__: list[str] = []

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", []):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
