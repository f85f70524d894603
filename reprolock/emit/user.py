"""The image's non-root user: reused when the base image has it, created only with ids no
account of the base already holds.

The lock records the base's users and groups (``[targets.base.facts]``), so the decision is
made from the lock alone, the same way every time:

- ``root`` (or ``0``) runs as 0:0; nothing is created.
- A name the base already has (``ubuntu`` on Ubuntu 24.04, uid 1000) is **reused** with its
  uid and gid — unless that uid is 0, which is refused.
- A new name gets the first uid from 10001 up that no user of the base has and no group has
  as gid, and a group of the same name and id (or the base's group of that name, reused).
- A numeric uid the base has is that user; a new one is created under the name of its number.

A lock without facts (before lock-version 1.2) gets uid/gid 10001, as reprolock always did.
"""

from __future__ import annotations

from dataclasses import dataclass

from reprolock.errors import InputError
from reprolock.lock import BaseFacts

FIRST_UID = 10001  # above the ranges distributions hand out (1000-59999 is rarely reached)
_LAST_UID = 59999


@dataclass(frozen=True, slots=True, kw_only=True)
class UserPlan:
    name: str
    uid: int
    gid: int
    create_user: bool  # write the /etc/passwd line
    create_group: bool  # write the /etc/group line
    why: str  # for the Dockerfile's comment

    @property
    def ids(self) -> str:
        return f"{self.uid}:{self.gid}"


def plan_user(user: str, facts: BaseFacts | None, *, where: str) -> UserPlan:
    """How ``user`` (``image.user``) exists in the image built on a base with ``facts``."""
    if user in ("root", "0"):
        return UserPlan(
            name="root", uid=0, gid=0, create_user=False, create_group=False, why="root"
        )
    if facts is None:
        return UserPlan(
            name=user,
            uid=FIRST_UID,
            gid=FIRST_UID,
            create_user=True,
            create_group=True,
            why=f"the non-root user {user} ({FIRST_UID}), written without needing useradd",
        )
    users = {name: tuple(int(i) for i in ids.split(":")) for name, ids in facts.users}
    groups = {name: int(gid) for name, gid in facts.groups}
    by_uid = {ids[0]: name for name, ids in sorted(users.items())}
    if user.isdigit():
        uid = int(user)
        if uid in by_uid:
            name = by_uid[uid]
            return _reused(name, users[name], where)
        gid = uid
        return UserPlan(
            name=user,
            uid=uid,
            gid=gid,
            create_user=True,
            create_group=gid not in groups.values(),
            why=f"uid {uid}, which no account of the base holds",
        )
    if user in users:
        return _reused(user, users[user], where)
    if user in groups:
        gid = groups[user]
        uid = _free(set(by_uid) | (set(groups.values()) - {gid}), prefer=gid)
        return UserPlan(
            name=user,
            uid=uid,
            gid=gid,
            create_user=True,
            create_group=False,
            why=f"the non-root user {user} ({uid}) in the base's group {user} ({gid})",
        )
    uid = _free(set(by_uid) | set(groups.values()))
    return UserPlan(
        name=user,
        uid=uid,
        gid=uid,
        create_user=True,
        create_group=True,
        why=f"the non-root user {user} ({uid}), written without needing useradd",
    )


def _reused(name: str, ids: tuple[int, ...], where: str) -> UserPlan:
    uid, gid = ids[0], ids[1] if len(ids) > 1 else ids[0]
    if uid == 0:
        raise InputError(
            f"{where}: image.user {name} is uid 0 in the base image: the image would run as root.",
            hint="Choose another [image] user (a name the base does not have is created).",
        )
    return UserPlan(
        name=name,
        uid=uid,
        gid=gid,
        create_user=False,
        create_group=False,
        why=f"the base's user {name} ({uid}:{gid}), reused",
    )


def _free(taken: set[int], prefer: int | None = None) -> int:
    """The first id from `FIRST_UID` up that is not ``taken`` (``prefer`` when free and not
    below it)."""
    if prefer is not None and prefer >= FIRST_UID and prefer not in taken:
        return prefer
    for candidate in range(FIRST_UID, _LAST_UID + 1):
        if candidate not in taken:
            return candidate
    raise InputError(
        "the base image's accounts hold every id from 10001 to 59999; no uid is free.",
        hint="Set [image] user to one of its users to reuse it.",
    )
