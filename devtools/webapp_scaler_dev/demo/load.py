"""Simulated shoppers going through the load balancer, and the ledger of what happened to each request.

Every user logs in, browses and fills a cart with think time in between, checks out and leaves (most log
out, the others just go and their session idles out). The number of concurrent users follows a ramp.
A **lost session** is a logged-in user who got an answer saying they are not logged in (the shop
forgets a session it does not hold: `user` is null, checkout answers 401) or whose request failed: the
thing a scale-in must never do.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import aiohttp

PRODUCT_IDS = ("1", "2", "3", "4")
SESSION_COOKIE = "JSESSIONID"


@dataclass(frozen=True)
class LoadProfile:
    """Concurrent users over time: base → peak, hold, back to base, hold (fractions of `duration_s`)."""

    duration_s: float
    base_users: int
    peak_users: int
    ramp_up: float = 0.35
    hold_peak: float = 0.15
    ramp_down: float = 0.25
    actions: tuple[int, int] = (3, 6)
    think_s: tuple[float, float] = (1.0, 3.0)
    logout_share: float = 0.7
    login_attempts: int = 5
    request_timeout_s: float = 10.0

    def users_at(self, elapsed: float) -> int:
        """The target number of concurrent users `elapsed` seconds into the run (0 after the end)."""
        if elapsed < 0 or elapsed >= self.duration_s:
            return 0
        x = elapsed / self.duration_s
        up_end = self.ramp_up
        hold_end = up_end + self.hold_peak
        down_end = hold_end + self.ramp_down
        span = self.peak_users - self.base_users
        if x < up_end:
            level = self.base_users + span * x / up_end
        elif x < hold_end:
            level = self.peak_users
        elif x < down_end:
            level = self.peak_users - span * (x - hold_end) / self.ramp_down
        else:
            level = self.base_users
        return round(level)


@dataclass
class LoadStats:
    """What the users saw; read by the live view while the users run (one event loop, no locks)."""

    target_users: int = 0
    active_users: int = 0
    users_started: int = 0
    users_done: int = 0
    users_turned_away: int = 0
    requests: int = 0
    errors: int = 0
    login_retries: int = 0
    checkouts: int = 0
    sessions_lost: int = 0
    served_by: Counter[str] = field(default_factory=Counter)
    served_while_draining: Counter[str] = field(default_factory=Counter)
    users_while_draining: dict[str, set[int]] = field(default_factory=dict)
    losses: list[str] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)
    session_ids: set[str] = field(default_factory=set)
    """Every application session id the users were given (the shop's JSESSIONID cookie): no log may show one."""

    def drained_users(self, vm: str) -> int:
        return len(self.users_while_draining.get(vm, ()))


class SessionLost(Exception):
    """A logged-in user's request answered as not logged in, or failed."""


class TurnedAway(Exception):
    """The user never got a session (no VM would take a new user); not a lost session."""


class LoadGenerator:
    """Runs users against `base_url` following `profile`; `draining()` names the VMs draining right now."""

    def __init__(
        self,
        base_url: str,
        profile: LoadProfile,
        *,
        draining: Callable[[], Collection[str]] = frozenset,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.profile = profile
        self.draining = draining
        self.stats = LoadStats()
        self.random = random.Random(seed)
        self.clock = clock
        self.started_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connector: aiohttp.TCPConnector | None = None
        self._last_answer: dict[int, float] = {}
        self._last_server: dict[int, str] = {}  # who answered each user last: a loss names both servers
        """user → when its last request was answered: a loss names the user's idle time before it, so a
        session that expired (a user stalled past the idle timeout) tells itself apart from one lost."""

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    async def run(self, *, hold_base_until: Callable[[], bool] | None = None, max_extra_s: float = 0.0) -> None:
        """Follow the profile; then, while `hold_base_until()` is false and for at most `max_extra_s`, keep
        the base number of users (so a scale-in under way can finish); then wait for every user to leave."""
        # A connection per request: HAProxy's graceful reload closes idle keep-alive connections, and a
        # request sent on one at that instant is reset. A browser retries it on a new connection without
        # telling anyone; aiohttp does not, so a kept-alive client would count the balancer's reload as a
        # lost session. The listening socket itself is handed over, so new connections never fail.
        self._connector = aiohttp.TCPConnector(limit=0, force_close=True)
        self.started_at = self.clock()
        try:
            while (elapsed := self.elapsed()) < self.profile.duration_s:
                self._spawn_up_to(self.profile.users_at(elapsed))
                await asyncio.sleep(0.25)
            extra_deadline = self.clock() + max_extra_s
            while hold_base_until is not None and not hold_base_until() and self.clock() < extra_deadline:
                self._spawn_up_to(self.profile.base_users)
                await asyncio.sleep(0.25)
            self.stats.target_users = 0
            if self._tasks:
                await asyncio.wait(set(self._tasks))
        finally:
            await self.cancel()

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._connector is not None:
            await self._connector.close()
            self._connector = None

    def _spawn_up_to(self, target: int) -> None:
        self.stats.target_users = target
        while self.stats.active_users < target:
            self.stats.users_started += 1
            self.stats.active_users += 1
            task = asyncio.create_task(self._user(self.stats.users_started))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # ---- one user --------------------------------------------------------------------------------
    async def _user(self, number: int) -> None:
        assert self._connector is not None
        name = f"shopper-{number}"
        timeout = aiohttp.ClientTimeout(total=self.profile.request_timeout_s)
        try:
            async with aiohttp.ClientSession(
                connector=self._connector,
                connector_owner=False,
                cookie_jar=aiohttp.CookieJar(unsafe=True),  # the balancer is an IP address
                timeout=timeout,
            ) as http:
                await self._login(http, number, name)
                await self._shop(http, number, name)
        except TurnedAway:
            self.stats.users_turned_away += 1
        except SessionLost as lost:
            self.stats.sessions_lost += 1
            if len(self.stats.losses) < 20:
                idle = self.clock() - self._last_answer.get(number, float("nan"))
                before = self._last_server.get(number) or "?"
                self.stats.losses.append(f"{name}: {lost} ({idle:.1f} s after its previous answer, by {before})")
        finally:
            self._last_answer.pop(number, None)
            self._last_server.pop(number, None)
            self.stats.active_users -= 1
            self.stats.users_done += 1

    async def _login(self, http: aiohttp.ClientSession, number: int, name: str) -> None:
        for attempt in range(self.profile.login_attempts):
            if attempt:
                self.stats.login_retries += 1
                await asyncio.sleep(1.0)
            try:
                status, body, server = await self._request(http, "POST", "/login", {"user": name})
            except (aiohttp.ClientError, TimeoutError):
                continue
            if status == 200 and body.get("user") == name:
                self._last_answer[number] = self.clock()
                self._last_server[number] = server
                self.stats.session_ids.update(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
                return
        raise TurnedAway(name)

    async def _shop(self, http: aiohttp.ClientSession, number: int, name: str) -> None:
        low, high = self.profile.actions
        await self._think()
        await self._logged_in(http, number, name, "POST", "/cart", {"product": self.random.choice(PRODUCT_IDS)})
        for _ in range(self.random.randint(low, high) - 1):
            await self._think()
            choice = self.random.random()
            if choice < 0.4:
                await self._logged_in(http, number, name, "GET", "/", None)
            elif choice < 0.7:
                await self._logged_in(http, number, name, "GET", "/cart", None)
            else:
                product = {"product": self.random.choice(PRODUCT_IDS)}
                await self._logged_in(http, number, name, "POST", "/cart", product)
        await self._think()
        body = await self._logged_in(http, number, name, "POST", "/checkout", {})
        if "order" not in body:
            raise SessionLost(f"checkout answered {body}")
        self.stats.checkouts += 1
        if self.random.random() < self.profile.logout_share:
            await self._think()
            body = await self._logged_in(http, number, name, "POST", "/logout", {})
            if body.get("logged_out") is not True:
                raise SessionLost("logout found no session")

    async def _logged_in(
        self,
        http: aiohttp.ClientSession,
        number: int,
        name: str,
        method: str,
        path: str,
        payload: dict[str, str] | None,
    ) -> dict[str, Any]:
        """A request of a logged-in user: anything but a 200 that knows the user is a lost session."""
        try:
            status, body, server = await self._request(http, method, path, payload)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SessionLost(f"{method} {path} failed: {type(error).__name__}") from error
        if status != 200:
            raise SessionLost(f"{method} {path} answered {status} (server {server})")
        if path not in ("/checkout", "/logout") and body.get("user") != name:
            raise SessionLost(f"{method} {path} answered as not logged in (server {server})")
        self._last_answer[number] = self.clock()
        self._last_server[number] = server
        if server:
            self.stats.served_by[server] += 1
            if server in self.draining():
                self.stats.served_while_draining[server] += 1
                self.stats.users_while_draining.setdefault(server, set()).add(number)
        return body

    async def _request(
        self, http: aiohttp.ClientSession, method: str, path: str, payload: dict[str, str] | None
    ) -> tuple[int, dict[str, Any], str]:
        self.stats.requests += 1
        try:
            async with http.request(method, self.base_url + path, json=payload) as response:
                body: Any = {}
                with contextlib.suppress(aiohttp.ContentTypeError, ValueError):
                    body = await response.json()
                if response.status != 200:
                    self.stats.errors += 1
                    self.stats.error_kinds[f"HTTP {response.status}"] += 1
                return response.status, body if isinstance(body, dict) else {}, response.headers.get("X-Served-By", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            self.stats.errors += 1
            self.stats.error_kinds[type(error).__name__] += 1
            raise

    async def _think(self) -> None:
        await asyncio.sleep(self.random.uniform(*self.profile.think_s))
