"""One lifecycle for everything that owns a resource: a state enum and ``aclose()``.

``Bot``, ``Emulator``, ``BotApp`` and ``Dispatcher`` share it: ``async with`` opens
the object once (entering it twice, or after it closed, is an error), and
``aclose()`` closes it, idempotently, whatever state it is in.
"""

from __future__ import annotations

import enum
from types import TracebackType
from typing import ClassVar, TypeVar

from ._exceptions import ClosedError

_L = TypeVar("_L", bound="Lifecycle")


class LifecycleState(enum.Enum):
    """Where a resource is in its life."""

    NEW = "new"  #: created; not opened yet (a Bot may still be used: it opens lazily)
    OPEN = "open"  #: opened by ``async with`` or ``start()``
    CLOSING = "closing"  #: ``aclose()`` is running
    CLOSED = "closed"  #: closed; it cannot be opened again


class Lifecycle:
    """Mixin: ``state``, a guarded ``__aenter__`` and an idempotent ``aclose()``.

    Subclasses implement :meth:`_open` and :meth:`_close`, and set
    :attr:`_closed_error` to the error raised when a closed object is reused.
    """

    _closed_error: ClassVar[type[ClosedError]] = ClosedError
    _state: LifecycleState = LifecycleState.NEW

    @property
    def state(self) -> LifecycleState:
        """The current :class:`LifecycleState`."""
        return self._state

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has begun."""
        return self._state in (LifecycleState.CLOSING, LifecycleState.CLOSED)

    def _check_not_closed(self) -> None:
        if self.closed:
            raise self._closed_error(f"this {type(self).__name__} has been closed")

    async def _enter(self) -> None:
        """Open: NEW → OPEN. Anything else is refused."""
        self._check_not_closed()
        if self._state is not LifecycleState.NEW:
            raise RuntimeError(f"this {type(self).__name__} is already open")
        try:
            await self._open()
        except BaseException:
            await self.aclose()
            raise
        self._state = LifecycleState.OPEN

    async def __aenter__(self: _L) -> _L:
        await self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release everything this object holds. Idempotent."""
        if self.closed:
            return
        self._state = LifecycleState.CLOSING
        try:
            await self._close()
        finally:
            self._state = LifecycleState.CLOSED

    async def _open(self) -> None:
        """Acquire the resource (override)."""

    async def _close(self) -> None:
        """Release the resource (override)."""
