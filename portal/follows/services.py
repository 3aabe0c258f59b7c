"""Follow and unfollow forces and themes, and switch the weekly digest on or off."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from flask import g
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..core.updates import changed_rows
from ..extensions import db
from ..models import Follow, Force, Theme, User


class Kind(enum.StrEnum):
    FORCE = "force"
    THEME = "theme"


Target = Force | Theme

_MODELS: dict[Kind, type[Force] | type[Theme]] = {Kind.FORCE: Force, Kind.THEME: Theme}


def find_target(kind: Kind | str, target_id: int) -> Target | None:
    """Return the force or theme with this id, or None."""
    model = _MODELS[Kind(kind)]
    found = db.session.get(model, target_id)
    return found if isinstance(found, Force | Theme) else None


def _column(kind: Kind):
    return Follow.force_id if kind is Kind.FORCE else Follow.theme_id


@dataclass(frozen=True)
class Followed:
    """The ids of what one user follows."""

    force_ids: frozenset[int] = field(default_factory=frozenset)
    theme_ids: frozenset[int] = field(default_factory=frozenset)

    def __contains__(self, item: tuple[Kind | str, int]) -> bool:
        kind, target_id = item
        ids = self.force_ids if Kind(kind) is Kind.FORCE else self.theme_ids
        return target_id in ids


def followed_ids(user: User) -> Followed:
    """Return the ids of the forces and themes `user` follows (one query)."""
    rows = db.session.execute(
        select(Follow.force_id, Follow.theme_id).where(Follow.user_id == user.id)
    ).all()
    return Followed(
        force_ids=frozenset(f for f, _ in rows if f is not None),
        theme_ids=frozenset(t for _, t in rows if t is not None),
    )


def followed_by_request_user(user: User) -> Followed:
    """Return what the signed-in user follows, read once per request."""
    if "followed" not in g:
        g.followed = followed_ids(user)
    return g.followed


def _forget_request_cache() -> None:
    g.pop("followed", None)


def follow(user: User, target: Target) -> bool:
    """Follow a force or theme; return False when `user` already followed it."""
    kind = Kind.FORCE if isinstance(target, Force) else Kind.THEME
    _forget_request_cache()
    exists = db.session.scalar(
        select(Follow.id).where(Follow.user_id == user.id, _column(kind) == target.id)
    )
    if exists is not None:
        return False
    values = {"force_id": target.id} if kind is Kind.FORCE else {"theme_id": target.id}
    db.session.add(Follow(user_id=user.id, **values))
    try:
        db.session.commit()
    except IntegrityError:
        # The same user followed it at the same moment (a double click, two tabs): the
        # unique constraint kept one row, and following twice is harmless.
        db.session.rollback()
        return False
    return True


def unfollow(user: User, target: Target) -> bool:
    """Stop following a force or theme; return False when `user` did not follow it."""
    kind = Kind.FORCE if isinstance(target, Force) else Kind.THEME
    _forget_request_cache()
    result = db.session.execute(
        delete(Follow).where(Follow.user_id == user.id, _column(kind) == target.id)
    )
    db.session.commit()
    return bool(changed_rows(result))


def set_wants_digest(user: User, wanted: bool) -> None:
    """Switch the weekly digest on or off; what the user follows stays as it is."""
    user.wants_digest = wanted
    db.session.commit()


def following(user: User) -> tuple[list[Force], list[Theme]]:
    """Return the forces and the themes `user` follows, in name and list order."""
    forces = db.session.scalars(
        select(Force)
        .join(Follow, Follow.force_id == Force.id)
        .where(Follow.user_id == user.id)
        .order_by(Force.name)
    ).all()
    themes = db.session.scalars(
        select(Theme)
        .join(Follow, Follow.theme_id == Theme.id)
        .where(Follow.user_id == user.id)
        .order_by(Theme.position, Theme.name)
    ).all()
    return list(forces), list(themes)


def all_themes() -> list[Theme]:
    """Return every theme in list order."""
    return list(db.session.scalars(select(Theme).order_by(Theme.position, Theme.name)))
