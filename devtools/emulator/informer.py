"""List + watch caches (informers) and a work queue: the client-go controller pattern, in threads.

Controllers read objects from the caches and are woken by keys on the queue; they never act on an
event's payload, so a missed or repeated event costs nothing (level-triggered reconciliation).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from emulator import kube
from emulator.logs import fields

log = logging.getLogger("emulator.informer")

Key = tuple[str, str, str]
"""(controller, namespace, name)."""
Handler = Callable[[str, kube.Obj], None]
"""Called with the event type (ADDED, MODIFIED, DELETED) and the object, on the informer's thread."""

WATCH_TIMEOUT = 50
# a key whose reconcile fails waits RETRY_BASE_SECONDS · 2^(failures − 1), at most RETRY_CAP_SECONDS, as
# client-go's per-item exponential rate limiter: an object the apiserver keeps refusing (a 422) is retried
# ever more rarely instead of hammering the apiserver, and one success forgets its failures
RETRY_BASE_SECONDS = 0.4
RETRY_CAP_SECONDS = 30.0


def retry_delay(failures: int, base: float = RETRY_BASE_SECONDS, cap: float = RETRY_CAP_SECONDS) -> float:
    """Seconds before the next try of a key that failed `failures` times in a row (1 or more)."""
    return min(base * 2.0 ** min(max(failures, 1) - 1, 30), cap)


class Store:
    """The latest state of every object of one kind that the informer has seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], kube.Obj] = {}

    def get(self, namespace: str, name: str) -> kube.Obj | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def objects(self, namespace: str | None = None) -> list[kube.Obj]:
        with self._lock:
            return [o for (ns, _), o in self._objects.items() if namespace is None or ns == namespace]

    def put(self, obj: kube.Obj) -> None:
        meta = obj["metadata"]
        with self._lock:
            self._objects[(meta.get("namespace", ""), meta["name"])] = obj

    def remove(self, obj: kube.Obj) -> None:
        meta = obj["metadata"]
        with self._lock:
            self._objects.pop((meta.get("namespace", ""), meta["name"]), None)

    def replace(self, objs: list[kube.Obj]) -> list[kube.Obj]:
        """Swap in a fresh list; returns the objects that vanished meanwhile."""
        fresh = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}
        with self._lock:
            gone = [o for key, o in self._objects.items() if key not in fresh]
            self._objects = fresh
        return gone


class Informer(threading.Thread):
    def __init__(
        self,
        api: kube.Kube,
        kind: kube.Kind,
        namespace: str | None,
        handler: Handler,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"informer-{kind.plural}", daemon=True)
        self.api, self.kind, self.namespace, self.handler, self.stop = api, kind, namespace, handler, stop
        self.store = Store()
        self.synced = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                version = self._relist()
                self.synced.set()
                while not self.stop.is_set():
                    version = self._watch(version)
            except ApiException as error:
                if error.status != 410:  # 410 Gone: our version is too old, relist
                    log.warning("watch failed", extra=fields(kind=self.kind.kind, status=error.status))
                    self.stop.wait(1.0)
            except Exception:
                log.exception("watch failed", extra=fields(kind=self.kind.kind))
                self.stop.wait(1.0)

    def _relist(self) -> str:
        listed = self.api.list(self.kind, self.namespace)
        items = listed.get("items") or []
        for item in items:  # lists carry neither apiVersion nor kind per item
            item.setdefault("apiVersion", self.kind.api_version)
            item.setdefault("kind", self.kind.kind)
        for gone in self.store.replace(items):
            self._emit("DELETED", gone)
        for item in items:
            self._emit("ADDED", item)
        return str(listed["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        for event in self.api.watch(self.kind, self.namespace, version, WATCH_TIMEOUT):
            if self.stop.is_set():
                break
            kind, obj = event["type"], event["object"]
            version = str(obj.get("metadata", {}).get("resourceVersion", version))
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self.store.remove(obj)
            else:
                self.store.put(obj)
            self._emit(kind, obj)
        return version

    def _emit(self, event: str, obj: kube.Obj) -> None:
        try:
            self.handler(event, obj)
        except Exception:
            log.exception("event handler failed", extra=fields(kind=self.kind.kind))


class WorkQueue:
    """Keys to reconcile: deduplicated, never handed to two workers at once, optionally delayed. It also
    counts each key's failures in a row, for all workers together: with a count per worker a key that
    moves between workers would keep being retried at the shortest delay."""

    def __init__(self, retry_base: float = RETRY_BASE_SECONDS, retry_cap: float = RETRY_CAP_SECONDS) -> None:
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self._failures: dict[Key, int] = {}
        self._cond = threading.Condition()
        self._ready: list[Key] = []
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._delayed: list[tuple[float, int, Key]] = []
        self._counter = 0
        self._shutdown = False

    def add(self, key: Key) -> None:
        with self._cond:
            if key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._ready.append(key)
                self._cond.notify()

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            self._counter += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, self._counter, key))
            self._cond.notify()

    def get(self) -> Key | None:
        """The next key, or None once the queue shuts down."""
        with self._cond:
            while True:
                if self._shutdown:
                    return None
                due = self._pop_due()
                for key in due:
                    if key not in self._dirty:
                        self._dirty.add(key)
                        if key not in self._processing:
                            self._ready.append(key)
                if self._ready:
                    key = self._ready.pop(0)
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                timeout = self._delayed[0][0] - time.monotonic() if self._delayed else None
                self._cond.wait(timeout)

    def done(self, key: Key) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._ready.append(key)
                self._cond.notify()

    def failed(self, key: Key) -> float:
        """Count one more failure of `key`; the delay before its retry."""
        with self._cond:
            count = self._failures[key] = self._failures.get(key, 0) + 1
        return retry_delay(count, self.retry_base, self.retry_cap)

    def forget(self, key: Key) -> None:
        """`key` reconciled: its next failure waits the shortest delay again."""
        with self._cond:
            self._failures.pop(key, None)

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def _pop_due(self) -> list[Key]:
        due: list[Key] = []
        clock = time.monotonic()
        while self._delayed and self._delayed[0][0] <= clock:
            due.append(heapq.heappop(self._delayed)[2])
        return due


Reconciler = Callable[[str, str], float | None]
"""Reconcile (namespace, name); returns seconds until it wants to run again, or None."""


def run_worker(queue: WorkQueue, reconcilers: dict[str, Reconciler]) -> None:
    while (key := queue.get()) is not None:
        controller, namespace, name = key
        again: float | None
        try:
            again = reconcilers[controller](namespace, name)
            queue.forget(key)
        except ApiException as error:
            again = queue.failed(key)
            level = logging.DEBUG if error.status == 409 else logging.WARNING
            log.log(
                level,
                "reconcile failed, retrying",
                extra=fields(
                    controller=controller,
                    namespace=namespace,
                    name=name,
                    status=error.status,
                    reason=_reason(error),
                    retry_in=again,
                ),
            )
        except Exception:
            again = queue.failed(key)
            log.exception("reconcile crashed", extra=fields(controller=controller, namespace=namespace, name=name))
        finally:
            queue.done(key)
        if again is not None:
            queue.add_after(key, again)


def _reason(error: ApiException) -> Any:
    return (error.body or error.reason or "")[:300] if isinstance(error.body, str | None) else error.reason
