"""The user's side of the emulator: the world's users and groups, and what they do.

:class:`People` is the part of :class:`~yunhu_stream.emulator.Emulator` that plays the
users. ``emu.user_says(chat, text)`` records the user's message in the chat history
and POSTs the webhook event YunHu would send to :attr:`webhook_url`, so a bot under
test receives a real event and its reply lands in the same history. Clicks, follows,
group joins and menu presses work the same way. The bodies are built by
:mod:`yunhu_stream.testing`, so they are the ones a test would build by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import aiohttp

from .._exceptions import WebhookError
from .._types import Recipient
from ._store import Board, StoredMessage
from ._world import Group, User

if TYPE_CHECKING:
    from ._core import Core
    from ._media import Upload

DELIVERY_TIMEOUT = 10.0
"""Seconds a webhook POST may take before :class:`WebhookError`."""


@dataclass(frozen=True)
class Delivery:
    """One webhook event the emulator posted (``emu.deliveries``).

    Attributes:
        event_type: ``header.eventType`` of the body.
        body: The JSON body that was POSTed.
        url: Where it went (None: no :attr:`~People.webhook_url` was set, nothing was sent).
        status: The bot's HTTP status, None if it was not sent or not answered.
        response: The start of the bot's answer (up to 2,000 characters).
        message: The message the event recorded in a chat (a user's message), if any.
    """

    event_type: str
    body: dict[str, Any]
    url: str | None
    status: int | None = None
    response: str = ""
    message: StoredMessage | None = None


def _chat(chat: object) -> Recipient:
    if isinstance(chat, Recipient):
        return chat
    if isinstance(chat, str):
        return Recipient.parse(chat)
    raise ValueError(f"chat must be 'group:ID', 'user:ID' or a Recipient, not {chat!r}")


class People:
    """Users, groups and their actions; mixed into :class:`~yunhu_stream.emulator.Emulator`."""

    _core: Core
    _webhook_url: str | None
    _http: aiohttp.ClientSession | None
    deliveries: list[Delivery]

    # -- the world -----------------------------------------------------------------------

    @property
    def strict(self) -> bool:
        """Whether the bot API refuses chats the bot cannot reach (see docs/emulator.md)."""
        return self._core.world.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"strict must be True or False, not {value!r}")
        self._core.world.strict = value

    @property
    def users(self) -> Mapping[str, User]:
        """The world's users by id (read-only; add with :meth:`add_user`)."""
        return MappingProxyType(self._core.world.users)

    @property
    def groups(self) -> Mapping[str, Group]:
        """The world's groups by id (read-only; add with :meth:`add_group`)."""
        return MappingProxyType(self._core.world.groups)

    def add_user(
        self,
        user_id: str,
        nickname: str | None = None,
        *,
        avatar_url: str | None = None,
        follows_bot: bool = True,
    ) -> User:
        """Add a user (or replace the one with that id) and return it.

        Args:
            user_id: The user's id.
            nickname: Their nickname (default: the id).
            avatar_url: Their avatar (default: the one :mod:`yunhu_stream.testing` uses).
            follows_bot: Whether they have added the bot; in strict mode the bot can
                message only users who have.

        Raises:
            ValueError: for an empty id or a value of the wrong type.
        """
        return self._core.world.add_user(
            user_id, nickname, avatar_url=avatar_url, follows_bot=follows_bot
        )

    def add_group(
        self,
        group_id: str,
        name: str | None = None,
        *,
        members: Iterable[str | User] = (),
        has_bot: bool = True,
    ) -> Group:
        """Add a group (or replace the one with that id) and return it.

        Args:
            group_id: The group's id.
            name: Its name (default: the id).
            members: User ids or :class:`User` objects; unknown ids become users who
                have not added the bot.
            has_bot: Whether the bot is in it; in strict mode the bot can send only to
                groups it is in.

        Raises:
            ValueError: for an empty id or a value of the wrong type.
        """
        return self._core.world.add_group(group_id, name, members=members, has_bot=has_bot)

    @property
    def boards(self) -> list[Board]:
        """The boards in force (not dismissed, not expired), oldest first."""
        return self._core.boards.active()

    def board(self, chat: str | Recipient, member: str | None = None) -> Board | None:
        """The board ``member`` sees above ``chat`` (their own, else the chat's, else the
        one for everyone), or None."""
        who = _chat(chat)
        return self._core.boards.shown(who.type, who.id, member)

    @property
    def uploads(self) -> Mapping[str, Upload]:
        """Every uploaded image, video and file, by key (read-only)."""
        return MappingProxyType(self._core.uploads)

    # -- where events go -------------------------------------------------------------------

    @property
    def webhook_url(self) -> str | None:
        """The bot's webhook URL the users' events are POSTed to (None: not sent)."""
        return self._webhook_url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise ValueError(f"webhook_url must be an http(s) URL or None, not {url!r}")
        self._webhook_url = url

    async def deliver(
        self, body: dict[str, Any], *, message: StoredMessage | None = None,
        timeout: float = DELIVERY_TIMEOUT,
    ) -> Delivery:
        """POST one webhook body to :attr:`webhook_url` (any body, e.g. one built with
        :mod:`yunhu_stream.testing` for an event without a helper here).

        Returns:
            The :class:`Delivery`, also appended to ``emu.deliveries``. Without a
            webhook URL nothing is sent and its ``status`` is None.

        Raises:
            WebhookError: if the bot cannot be reached in ``timeout`` seconds or answers
                with an HTTP status >= 300.
        """
        event_type = str(body.get("header", {}).get("eventType", ""))
        url = self._webhook_url
        if url is None:
            delivery = Delivery(event_type, body, None, message=message)
            self.deliveries.append(delivery)
            return delivery
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(trust_env=False)
        reason = None
        status, text = None, ""
        try:
            async with self._http.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                status, text = resp.status, (await resp.text(errors="replace"))[:2000]
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(event_type, body, url, status, text, message)
        self.deliveries.append(delivery)
        self._core.changes.notify()
        if reason is None and status is not None and status >= 300:
            reason = f"HTTP {status}: {text[:200]}"
        if reason is not None:
            raise WebhookError(
                f"webhook {event_type} to {url} failed: {reason}", delivery=delivery
            )
        return delivery

    # -- what users do ------------------------------------------------------------------------

    def _sender(self, chat: Recipient, user: str | User | None) -> User:
        from ..testing import DEFAULT_USER_ID  # here: testing imports the emulator

        world = self._core.world
        if chat.type == "user":
            if user is not None and world.user(user, create=True).user_id != chat.id:
                raise ValueError(
                    f"a private chat is with the user who acts in it: chat={str(chat)!r} "
                    f"but user={user!r} (leave user out, or make them match)"
                )
            return world.user(chat.id, create=True)
        return world.user(DEFAULT_USER_ID if user is None else user, create=True)

    async def user_says(
        self,
        chat: str | Recipient,
        text: str,
        *,
        user: str | User | None = None,
        command: str | None = None,
        content_type: str = "text",
        at: Sequence[str] = (),
        parent_id: str | None = None,
        level: str = "member",
        timeout: float = DELIVERY_TIMEOUT,
    ) -> Delivery:
        """A user sends ``text`` in ``chat``: it joins the chat's history, then its
        ``message.receive.normal`` (or ``.instruction`` with ``command``) event is POSTed.

        Args:
            chat: ``"group:ID"``, or ``"user:ID"`` for the private chat with user ID.
            text: What they say.
            user: Who says it in a group (an id or :class:`User`; default
                ``yunhu_stream.testing.DEFAULT_USER_ID``); unknown ids become users.
            command: The command's name, making it an instruction.
            content_type, at, parent_id, level: As for
                :func:`yunhu_stream.testing.message_event`.
            timeout: Seconds the bot may take to answer the POST.

        Returns:
            The :class:`Delivery`; ``delivery.message`` is the recorded message.

        Raises:
            ValueError, TypeError: for bad arguments (nothing is recorded then).
            WebhookError: if the bot's webhook fails (the message stays recorded).
        """
        from ..testing import message_event

        who = _chat(chat)
        sender = self._sender(who, user)
        core = self._core
        message = StoredMessage(
            core.new_msg_id(), who.type, who.id, content_type, text,
            sender.user_id, sender.nickname, sender_type="user",
            at=list(at) or None, parent_id=parent_id,
            command_name=command or "", command_id=1 if command else 0,
        )
        body = message_event(
            text, chat=who, sender_id=sender.user_id, sender_nickname=sender.nickname,
            sender_level=level, command=command, content_type=content_type, at=at,
            parent_id=parent_id, bot_id=core.bot_id, msg_id=message.msg_id,
            time_ms=message.send_time,
        )
        core.store.add(message)
        return await self.deliver(body, message=message, timeout=timeout)

    async def user_clicks(
        self,
        message: str | StoredMessage,
        button: str,
        *,
        user: str | User | None = None,
        timeout: float = DELIVERY_TIMEOUT,
    ) -> Delivery:
        """A user clicks the report button (``actionType`` 3) whose text is ``button`` on
        one of the bot's messages: its ``button.report.inline`` event is POSTed.

        Raises:
            ValueError: for an unknown message or no report button with that text.
            WebhookError: if the bot's webhook fails.
        """
        from ..testing import button_event

        found = self._core.store.get(message if isinstance(message, str) else message.msg_id)
        if found is None or found.recalled:
            raise ValueError(f"no message {message!r} to click on (or it was recalled)")
        reports = [b for row in found.buttons or [] for b in row if b.get("actionType") == 3]
        match = next((b for b in reports if b.get("text") == button), None)
        if match is None:
            names = ", ".join(repr(b.get("text")) for b in reports) or "none"
            raise ValueError(f"no report button {button!r} on that message (it has: {names})")
        who = Recipient(found.chat_type, found.chat_id)  # type: ignore[arg-type]
        clicker = self._sender(who, user)
        body = button_event(
            str(match.get("value", "")), chat=who, user_id=clicker.user_id,
            msg_id=found.msg_id, bot_id=self._core.bot_id,
        )
        return await self.deliver(body, timeout=timeout)

    async def user_follows(
        self, user: str | User, *, timeout: float = DELIVERY_TIMEOUT
    ) -> Delivery:
        """A user adds the bot (``follows_bot`` becomes True); ``bot.followed`` is POSTed."""
        return await self._follow(user, True, timeout)

    async def user_unfollows(
        self, user: str | User, *, timeout: float = DELIVERY_TIMEOUT
    ) -> Delivery:
        """A user removes the bot (``follows_bot`` becomes False); ``bot.unfollowed`` is POSTed."""
        return await self._follow(user, False, timeout)

    async def _follow(self, user: str | User, followed: bool, timeout: float) -> Delivery:
        from ..testing import DEFAULT_AVATAR_URL, follow_event

        who = self._core.world.user(user, create=True)
        who.follows_bot = followed
        body = follow_event(
            who.user_id, followed=followed, nickname=who.nickname, bot_id=self._core.bot_id,
            avatar_url=who.avatar_url or DEFAULT_AVATAR_URL,
        )
        return await self.deliver(body, timeout=timeout)

    async def user_joins(
        self, group: str, user: str | User, *, timeout: float = DELIVERY_TIMEOUT
    ) -> Delivery:
        """A user joins a group of the world; ``group.join`` is POSTed."""
        return await self._membership(group, user, True, timeout)

    async def user_leaves(
        self, group: str, user: str | User, *, timeout: float = DELIVERY_TIMEOUT
    ) -> Delivery:
        """A user leaves a group of the world; ``group.leave`` is POSTed."""
        return await self._membership(group, user, False, timeout)

    async def _membership(
        self, group_id: str, user: str | User, joined: bool, timeout: float
    ) -> Delivery:
        from ..testing import DEFAULT_AVATAR_URL, group_event

        world = self._core.world
        group, who = world.group(group_id), world.user(user, create=True)
        if joined and who.user_id not in group.members:
            group.members.append(who.user_id)
        elif not joined and who.user_id in group.members:
            group.members.remove(who.user_id)
        body = group_event(
            group.group_id, who.user_id, joined=joined, nickname=who.nickname,
            avatar_url=who.avatar_url or DEFAULT_AVATAR_URL,
        )
        return await self.deliver(body, timeout=timeout)

    async def user_presses_menu(
        self,
        menu_id: str,
        *,
        chat: str | Recipient,
        user: str | User | None = None,
        menu_type: int = 1,
        menu_action: int = 1,
        timeout: float = DELIVERY_TIMEOUT,
    ) -> Delivery:
        """A user presses one of the bot's shortcut-menu entries; ``bot.shortcut.menu``
        is POSTed."""
        from ..testing import menu_event

        who = _chat(chat)
        presser = self._sender(who, user)
        body = menu_event(
            menu_id, chat=who, sender_id=presser.user_id, menu_type=menu_type,
            menu_action=menu_action, bot_id=self._core.bot_id,
        )
        return await self.deliver(body, timeout=timeout)
