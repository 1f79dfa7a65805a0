"""Name each public class and function after the module users import it from."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any


def publish(namespace: MutableMapping[str, Any], names: Iterable[str]) -> None:
    """Set ``__module__`` of every class and function in ``names`` to this public module.

    Objects defined in a private module (a ``_``-prefixed part in its name) get the
    public module's name, so reprs, tracebacks, pickles and docs show the import path
    users write (``yunhu_stream.Bot``, not ``yunhu_stream._client.Bot``). Objects that
    already live in a public module keep it (``errors`` is imported first).
    """
    public = namespace["__name__"]
    for name in names:
        obj = namespace[name]
        module = getattr(obj, "__module__", None)
        if callable(obj) and isinstance(module, str) and any(
            part.startswith("_") for part in module.split(".")
        ):
            obj.__module__ = public
