"""Recovery: finish a partly shown message by editing it, or send the whole text.

When a stream breaks after part of the message may be showing, the delivery hands
over here. :meth:`Recovery.find_partial` looks for the message the failed attempt
left in the chat; :meth:`Recovery.finish` keeps it up to date with ``bot/edit``
while the caller goes on writing, then gives it the whole text, or sends the whole
text with ``bot/send`` (clearing a leftover partial message it knows of).

Recognising our own partial message (docs/reliability.md, "Which message recovery
edits"): a message is ours only if all of these hold —

* it is a bot message created no earlier than the failed attempt (less clock skew),
  that this Bot did not deliver and that no other recovery of this Bot has claimed;
* its text is a prefix of the bytes *this attempt sent* (not of everything written);
* it has stopped changing: looked at twice, a short while apart, its text is the
  same (our connection is dead, so our message cannot grow; a live stream of
  another reply can);
* it could not be the message of another stream of this Bot in the same chat (its
  text is not a prefix of what that stream sent); while one could be, the choice
  waits for that stream to finish;
* if some of the candidates left carry the streamed-message label (``content.tip``, which
  YunHu puts on every ``bot/send-stream`` message), the others are dropped: the partial
  message is a streamed one, so a ``bot/send`` message that happens to match cannot be it;
* among the candidates left it is the only one, or strictly the longest.

When no message passes, nothing is edited: the whole text is sent fresh.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._content import content
from ._exceptions import YunhuError
from ._types import MessageInfo

if TYPE_CHECKING:
    from ._delivery import Delivery

LOOKBACK_MESSAGES = 50
"""How many of the chat's latest messages are searched for the partial message."""

CLOCK_SKEW_MS = 10_000
"""How far YunHu's clock may run behind ours when comparing send times."""

SETTLE_SECONDS = 0.3
"""How long apart the two looks at the chat are (a live stream changes in between)."""

EDIT_GROWTH = 4
EDIT_SMALL = 16 * 1024
"""Past EDIT_SMALL characters, an edit goes out only once the text grew by 1/EDIT_GROWTH
since the last one, so the bytes all edits carry stay within a small multiple of the
text instead of growing with its square; smaller messages are edited at every
``edit_interval`` that brought new text."""


class Recovery:
    """One recovery of one message of a stream (see the module docstring)."""

    def __init__(self, delivery: Delivery) -> None:
        self._d = delivery
        self._blocked_by: set[object] = set()  # sibling streams the choice waits for
        self._blocked_remote: set[str] = set()  # other processes' streams it waits for

    # -- finding our partial message ----------------------------------------------------

    async def _look(self) -> list[dict[str, Any]] | None:
        d = self._d
        try:
            return await d.api.messages(d.recipient, before=LOOKBACK_MESSAGES)
        except YunhuError as exc:
            d.log.warning("recovery_lookup_failed", error=type(exc).__name__)
            return None

    def _candidates(self, items: list[dict[str, Any]]) -> dict[str, str]:
        """Messages (id → shown text) that may be the one the failed attempt left;
        only the streamed ones (labelled ``tip``) if there are any."""
        d = self._d
        sent = d.buffer.sent_text(d.attempt_sent)
        excluded = d.api.delivered
        out: dict[str, str] = {}
        streamed: set[str] = set()
        for item in items:
            body = item.get("content")
            shown = body.get("text") if isinstance(body, dict) else None
            msg_id, sent_at = item.get("msgId"), item.get("sendTime")
            if (
                item.get("senderType") == "bot"
                and isinstance(shown, str) and sent.startswith(shown)
                and isinstance(msg_id, str)
                and msg_id not in excluded and msg_id not in d.api.claimed
                and isinstance(sent_at, int)
                and sent_at >= d.attempt_started_ms - CLOCK_SKEW_MS
            ):
                out[msg_id] = shown
                if isinstance(body, dict) and body.get("tip"):
                    streamed.add(msg_id)
        if streamed:
            return {m: t for m, t in out.items() if m in streamed}
        return out

    async def find_partial(self) -> str | None:
        """The id of the message the failed attempt left in the chat, if it is certain.

        Returns None when there is none, when the chat cannot be read, or when it
        is not certain which message is ours (if another stream of this Bot could
        own the candidate, :meth:`finish` looks again once that stream has ended).
        """
        d = self._d
        self._blocked_by, self._blocked_remote = set(), set()
        items = await self._look()
        if not items:
            return None
        first = self._candidates(items)
        if not first:
            return None
        await asyncio.sleep(SETTLE_SECONDS)
        items = await self._look()
        if items is None:
            return None
        second = self._candidates(items)
        stable = {m: t for m, t in second.items() if first.get(m) == t}
        siblings = [s for s in d.api.streams if s is not d and s.recipient == d.recipient]
        mine: dict[str, str] = {}
        for msg_id, shown in stable.items():
            theirs = [s for s in siblings if s.sent_text().startswith(shown)]
            if theirs:
                self._blocked_by.update(theirs)
            else:
                mine[msg_id] = shown
        if mine and d.api.shared is not None:
            mine = await self._not_remote(mine, items)
        if not mine:
            return None
        ranked = sorted(((len(t.encode()), m) for m, t in mine.items()), reverse=True)
        if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
            d.log.warning("recovery_ambiguous", candidates=len(ranked))
            return None
        found = ranked[0][1]
        if d.api.shared is not None and not await d.api.shared.claim(found):
            return None  # another process's recovery took it
        d.api.claimed.add(found)
        return found

    async def _not_remote(self, mine: dict[str, str], items: list[dict[str, Any]]
                          ) -> dict[str, str]:
        """Drop candidates another process delivered, or that a stream of another
        process in this chat could still be writing (the choice then waits for it)."""
        d = self._d
        assert d.api.shared is not None
        chat = f"{d.recipient.type}:{d.recipient.id}"
        delivered = await d.api.shared.delivered(chat)
        remote = await d.api.shared.remote_streams(chat)
        sent_at = {i.get("msgId"): i.get("sendTime") for i in items}
        out: dict[str, str] = {}
        for msg_id, shown in mine.items():
            if msg_id in delivered:
                continue
            when = sent_at.get(msg_id)
            theirs = {k for k, (started, _) in remote.items()
                      if isinstance(when, int) and when >= started - CLOCK_SKEW_MS}
            if theirs:
                self._blocked_remote.update(theirs)
            else:
                out[msg_id] = shown
        return out

    async def _remote_ended(self) -> bool:
        """True once a remote stream the choice waited for has ended."""
        d = self._d
        if not self._blocked_remote or d.api.shared is None:
            return False
        live = await d.api.shared.remote_streams(f"{d.recipient.type}:{d.recipient.id}")
        return not self._blocked_remote <= live.keys()

    # -- finishing the message ----------------------------------------------------------

    async def finish(self, cause: YunhuError, found: str | None) -> MessageInfo:
        """Follow the writes with edits of ``found`` until the message is complete, then
        give it the whole text; or send the text fresh when no message is ours."""
        d = self._d
        buf, settings = d.buffer, d.settings
        buf.unbounded = True  # the text goes out by edit: writes must not wait for a body
        buf.deliver()
        d.log.warning("stream_recovering", error=type(cause).__name__,
                      found_msg_id=found, sent_bytes=d.attempt_sent)
        loop = asyncio.get_running_loop()
        next_edit, edited = loop.time(), -1
        while not buf.message_done():
            await d.wait_for_writes(settings.edit_interval)
            buf.deliver()
            if found is None and (
                (self._blocked_by and not self._blocked_by <= d.api.streams)
                or await self._remote_ended()
            ):
                found = await self.find_partial()  # a stream it could have been finished
            text = buf.message_text()
            size = len(text)
            now = loop.time()
            if (
                found and not buf.message_done() and now >= next_edit
                and size > edited + (edited // EDIT_GROWTH if edited > EDIT_SMALL else 0)
            ):
                next_edit = now + settings.edit_interval
                try:
                    await d.api.edit(found, d.recipient, d.content_type, content(text, None, None))
                    edited = size
                except YunhuError as exc:
                    d.log.warning("recovery_edit_failed", error=type(exc).__name__)
        buf.deliver()  # writes may have landed while the lookup was in flight
        text = buf.message_text()
        last = buf.eof and buf.split is None  # buttons and mentions go on the last message
        buttons, at = (d.buttons, d.at) if last else (None, None)
        if found is None:
            found = await self.find_partial()  # look again before sending it all again
        try:
            if found and await self._final_edit(found, text, buttons, at):
                if last:
                    d.decorated = found
                return MessageInfo(found, d.recipient.id, d.recipient.type, "stream+edit")
            info = await d.send_whole(text, parent_id=None, buttons=buttons, at=at)
            if found:
                await self._clear_leftover(found)
            return info
        finally:
            if found:
                d.api.claimed.discard(found)
                if d.api.shared is not None:
                    await d.api.shared.release(found)

    async def _final_edit(
        self, msg_id: str, text: str, buttons: Any, at: list[str] | None
    ) -> bool:
        """Give ``msg_id`` the whole text; True once the chat shows it (even if the answer
        to the edit was lost)."""
        d = self._d
        try:
            await d.api.edit(msg_id, d.recipient, d.content_type, content(text, buttons, at))
            return True
        except YunhuError as exc:
            d.log.warning("recovery_edit_failed", error=type(exc).__name__, final=True)
        items = await self._look()  # did it take effect after all?
        for item in items or ():
            body = item.get("content")
            if item.get("msgId") == msg_id and isinstance(body, dict):
                return body.get("text") == text
        return False

    async def _clear_leftover(self, msg_id: str) -> None:
        """Recall the partial message the text was sent again without."""
        d = self._d
        try:
            await d.api.recall(msg_id, d.recipient)
        except YunhuError as exc:
            d.log.warning("recovery_leftover_kept", msg_id=msg_id, error=type(exc).__name__)
