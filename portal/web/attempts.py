"""Limits on attempts that are counted before they are evaluated, and given back after.

Flask-Limiter either counts a request before its view runs (every request counts) or, with
`deduct_when`, after it (only failures count). The second lets a burst of parallel requests
all be evaluated before any of them is counted: 30 guesses at once got past a limit of 10.
Here a POST first takes a slot, atomically, in the limiter's own storage (memory, or Redis
with PORTAL_RATELIMIT_STORAGE_URL): the increment's result decides, so no two requests can
hold the same slot. When the view is done, the slot is given back unless the attempt is one
that counts (a wrong password, a message sent).

Windows slide: the count is the current fixed window's plus the previous window's, weighted
by how much of it still overlaps the last `seconds` and rounded up (limits' sliding-window
counter rounds down, which lets a burst across the windows' edge have one attempt more).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from math import ceil

from flask import current_app, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable, TooManyRequests

from ..extensions import limiter


@dataclass(frozen=True)
class AttemptLimit:
    """At most `amount` attempts per `seconds` for one key (an account, an address...)."""

    name: str
    amount: int
    seconds: int


class TooManyAttempts(TooManyRequests):
    """A 429 that says when to try again."""

    def __init__(self, limit: AttemptLimit, retry_after: int) -> None:
        super().__init__(retry_after=retry_after)
        self.limit = limit


#: Seconds a refused request is told to wait when the counters are down (Retry-After).
COUNTERS_RETRY_AFTER = 60


class CountersUnavailable(ServiceUnavailable):
    """A 503: the limits' counters (Redis when scaling out) cannot be read or written.

    Without them the portal cannot tell a person from a guessing machine, so what they limit
    is refused (fail closed) until they answer again; pages that count nothing still work.
    """

    def __init__(self) -> None:
        super().__init__(retry_after=COUNTERS_RETRY_AFTER)


@dataclass
class _Slot:
    key: str
    expiry: int
    returned: bool = False


class Attempt:
    """The slots one attempt holds; give them back when it turns out not to count."""

    def __init__(self, slots: list[_Slot]) -> None:
        self._slots = slots

    def give_back(self) -> None:
        for slot in self._slots:
            if not slot.returned:
                slot.returned = True
                try:
                    limiter.storage.incr(slot.key, slot.expiry, amount=-1)
                except Exception:  # the slot stays taken: too strict, never too lax
                    current_app.logger.exception("Rate-limit storage unavailable")


def take(*limits: tuple[AttemptLimit, str]) -> Attempt:
    """Take a slot in each (limit, key), or raise TooManyAttempts and take none."""
    slots: list[_Slot] = []
    if not current_app.config["RATELIMIT_ENABLED"]:
        return Attempt(slots)
    for limit, key in limits:
        slot, retry_after = _take_one(limit, key)
        if slot is None:
            Attempt(slots).give_back()
            raise TooManyAttempts(limit, retry_after)
        slots.append(slot)
    return Attempt(slots)


def refused(response) -> bool:
    """The usual `counts`: a form refused (400) keeps its slot, anything else gives it back."""
    return response.status_code == 400


def counted(
    *limits: tuple[AttemptLimit, Callable[[], str]], counts: Callable[[object], bool]
) -> Callable:
    """Decorate a view: each POST takes a slot first; `counts(response)` says if it keeps it."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if request.method != "POST":
                return view(*args, **kwargs)
            attempt = take(*((limit, key()) for limit, key in limits))
            try:
                response = current_app.make_response(view(*args, **kwargs))
            except HTTPException:  # refused before it was tried (a 404, say): not an attempt
                attempt.give_back()
                raise
            if not counts(response):
                attempt.give_back()
            return response

        return wrapper

    return decorate


def _take_one(limit: AttemptLimit, key: str) -> tuple[_Slot | None, int]:
    now = time.time()
    window = int(now // limit.seconds)
    base = f"attempts/{limit.name}/{key}"
    current = f"{base}/{window}"
    expiry = 2 * limit.seconds
    storage = limiter.storage
    count = _storage_call(storage.incr, current, expiry, amount=1)
    previous = max(0, _storage_call(storage.get, f"{base}/{window - 1}"))
    overlap = 1 - (now - window * limit.seconds) / limit.seconds
    # Rounded up: a burst that straddles the windows' edge gets no extra attempt.
    if ceil(previous * overlap) + count <= limit.amount:
        return _Slot(current, expiry), 0
    _storage_call(storage.incr, current, expiry, amount=-1)
    return None, ceil((window + 1) * limit.seconds - now)


def _storage_call(method, *args, **kwargs):
    # Without its counters the portal cannot tell a guess from a person: refuse, and say
    # the service is unavailable rather than fail with a 500 (or let everything through).
    try:
        return method(*args, **kwargs)
    except Exception as error:  # limits' StorageError (Redis down), or anything else: refuse
        current_app.logger.error(
            "Rate-limit storage unavailable: %s", getattr(error, "storage_error", error)
        )
        raise CountersUnavailable() from None
