"""One read of a golden image serves every WebAppScaling that clones it.

Each WebAppScaling re-reads its golden image every `GOLDEN_RECHECK_SECONDS` while it is ready, and once
more before a round clones from it. A fleet of a thousand objects made from a handful of images would
otherwise send a GET per object every recheck (33 a second at 1,000 objects and 30 s), all for the same
few objects. Reads are shared per source (kind, namespace, name) and per operator process:

- a read younger than the caller's `max_age` is returned as it is;
- callers that arrive while a read of the same source is in flight wait for that read (one request, not
  one per object, when every loop starts at once after a restart);
- a failed read (other than 403, which is an answer: "not readable") is not kept: the next caller reads.

The same holds for the clone authorization of a source namespace (a SelfSubjectAccessReview), which
depends on the operator's identity and the namespace only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from webapp_scaler.k8s import Kube

T = TypeVar("T")

FRESH_SECONDS = 2.0
"""A read this recent counts as fresh for a round about to clone: the rounds of many objects cloning
from one image within two seconds share it (a deletion inside that window can still see one clone
started, as it could between any read and the create that follows it)."""


@dataclass(frozen=True, slots=True)
class SourceRead:
    source: dict[str, Any] | None  # None: it does not exist
    readable: bool  # False: the operator may not read it (403)


@dataclass
class _Shared(Generic[T]):
    """Values by key, each with the time it was read, and the reads in flight."""

    values: dict[Any, tuple[float, T]] = field(default_factory=dict)
    in_flight: dict[Any, asyncio.Future[tuple[float, T]]] = field(default_factory=dict)

    async def get(self, key: Any, now: float, max_age: float, read: Callable[[], Awaitable[T]]) -> tuple[float, T]:
        """(when it was read, the value)."""
        kept = self.values.get(key)
        if kept is not None and now - kept[0] < max_age:
            return kept
        pending = self.in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[float, T]] = asyncio.get_running_loop().create_future()
        self.in_flight[key] = future
        try:
            value = await read()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            self.values[key] = (now, value)
            future.set_result((now, value))
            return now, value
        finally:
            del self.in_flight[key]


@dataclass
class GoldenImageReads:
    """Process-wide: shared by every WebAppScaling's loop (see the module docstring)."""

    sources: _Shared[SourceRead] = field(default_factory=_Shared)
    clone_permissions: _Shared[bool] = field(default_factory=_Shared)

    async def source(
        self, kube: Kube, kind: str, namespace: str, name: str, now: float, *, max_age: float
    ) -> tuple[float, SourceRead]:
        """(when it was read, what was read)."""

        async def read() -> SourceRead:
            try:
                return SourceRead(await kube.get_golden_image(kind, namespace, name), readable=True)
            except ApiException as error:
                if error.status != 403:
                    raise
                return SourceRead(None, readable=False)

        return await self.sources.get((kind, namespace, name), now, max_age, read)

    async def clone_allowed(self, kube: Kube, namespace: str, now: float, *, max_age: float) -> bool:
        _, allowed = await self.clone_permissions.get(namespace, now, max_age, lambda: kube.can_clone_from(namespace))
        return allowed
