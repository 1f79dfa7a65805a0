"""The people around the bot: users, groups, who follows the bot and who is in which group.

The world starts empty and permissive: with ``strict`` off (the default) the bot may
send to any chat id, as the emulator always allowed. With ``strict`` on, the bot API
answers the way YunHu does for a chat the bot cannot reach: ``1003`` for a user who has
not added the bot, ``-1`` for a group the bot is not in (or that does not exist), and
``-1`` for a media key that was never uploaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

NOT_FRIEND = "recvId值错误，该用户不是机器人好友"
"""YunHu's answer (``1003``) for a user who has not added the bot."""


def _check_id(name: str, value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or value.strip() != value:
        raise ValueError(f"{name} must be a non-empty id string without spaces, not {value!r}")
    return value


@dataclass(eq=False)
class User:
    """A YunHu user in the emulator's world (``emu.add_user(...)``).

    Attributes:
        user_id: The user's id (``senderId`` / ``userId`` in events).
        nickname: Shown as ``senderNickname`` and on the live page.
        avatar_url: ``senderAvatarUrl`` / ``avatarUrl`` in events (None: the default of
            :mod:`yunhu_stream.testing`).
        follows_bot: True once the user has added the bot (the bot may then message them).
    """

    user_id: str
    nickname: str
    avatar_url: str | None = None
    follows_bot: bool = True


@dataclass(eq=False)
class Group:
    """A group in the emulator's world (``emu.add_group(...)``).

    Attributes:
        group_id: The group's id (``chatId`` of its messages).
        name: Its name.
        members: The member user ids, in the order they joined.
        has_bot: True if the bot is a member (the bot may then send to it).
    """

    group_id: str
    name: str
    members: list[str] = field(default_factory=list)
    has_bot: bool = True


class Refused(Exception):
    """The world does not let the bot reach that chat: ``code`` and ``msg`` to answer."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class World:
    """Users and groups, and the strict-mode checks built on them."""

    def __init__(self, *, bot_id: str, strict: bool) -> None:
        self.bot_id = bot_id
        self.strict = strict
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}

    def add_user(
        self,
        user_id: str,
        nickname: str | None = None,
        *,
        avatar_url: str | None = None,
        follows_bot: bool = True,
    ) -> User:
        """Add (or replace) a user; the nickname defaults to the id."""
        uid = _check_id("user_id", user_id)
        if nickname is not None and (not isinstance(nickname, str) or not nickname):
            raise ValueError(f"nickname must be a non-empty string or None, not {nickname!r}")
        if avatar_url is not None and not isinstance(avatar_url, str):
            raise ValueError(f"avatar_url must be a string or None, not {avatar_url!r}")
        if not isinstance(follows_bot, bool):
            raise ValueError(f"follows_bot must be True or False, not {follows_bot!r}")
        user = User(uid, nickname or uid, avatar_url, follows_bot)
        self.users[uid] = user
        return user

    def add_group(
        self,
        group_id: str,
        name: str | None = None,
        *,
        members: Iterable[str | User] = (),
        has_bot: bool = True,
    ) -> Group:
        """Add (or replace) a group; members not added yet become users who do not follow
        the bot (being in a group says nothing about that)."""
        gid = _check_id("group_id", group_id)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty string or None, not {name!r}")
        if isinstance(members, (str, User)):
            raise ValueError("members must be an iterable of user ids or Users, not one of them")
        if not isinstance(has_bot, bool):
            raise ValueError(f"has_bot must be True or False, not {has_bot!r}")
        ids = [self.user(m, create=True).user_id for m in members]
        group = Group(gid, name or gid, list(dict.fromkeys(ids)), has_bot)
        self.groups[gid] = group
        return group

    def user(self, who: str | User, *, create: bool = False) -> User:
        """The user ``who`` names; with ``create``, an unknown id becomes a new user who
        does not follow the bot.

        Raises:
            ValueError: for an unknown user (without ``create``) or a bad id.
        """
        if isinstance(who, User):
            return who
        uid = _check_id("user", who)
        found = self.users.get(uid)
        if found is None:
            if not create:
                raise ValueError(f"no user {uid!r}: add it with emu.add_user({uid!r}, ...)")
            found = self.add_user(uid, follows_bot=False)
        return found

    def group(self, group_id: str) -> Group:
        """The group with that id.

        Raises:
            ValueError: if there is none.
        """
        gid = _check_id("group", group_id)
        if gid not in self.groups:
            raise ValueError(f"no group {gid!r}: add it with emu.add_group({gid!r}, ...)")
        return self.groups[gid]

    def check_reach(self, chat_type: str, chat_id: str) -> None:
        """In strict mode, refuse a chat the bot cannot reach, as YunHu answers it.

        Raises:
            Refused: ``1003`` for a user who does not follow the bot (or is unknown),
                ``-1`` for a group that does not exist or does not have the bot.
        """
        if not self.strict:
            return
        if chat_type == "user":
            user = self.users.get(chat_id)
            if user is None or not user.follows_bot:
                raise Refused(1003, NOT_FRIEND)
            return
        group = self.groups.get(chat_id)
        if group is None:
            raise Refused(-1, f"群(ID:{chat_id})不存在。")
        if not group.has_bot:
            raise Refused(-1, f"群(ID:{chat_id})中未添加当前机器人(ID: {self.bot_id})。")
