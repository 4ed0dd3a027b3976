"""The emulator's work queue backs off a key the apiserver keeps refusing: exponentially, up to a cap, counted
for all workers together, and forgotten after one success — so a 422 is not retried every 0.4 s forever."""

from __future__ import annotations

import itertools
import threading

from kubernetes.client.exceptions import ApiException

from emulator import informer
from emulator.informer import Key, WorkQueue, run_worker


def test_the_delay_doubles_from_the_base_up_to_the_cap() -> None:
    delays = [informer.retry_delay(n) for n in range(1, 12)]
    assert delays[:4] == [0.4, 0.8, 1.6, 3.2]
    assert delays[-1] == informer.RETRY_CAP_SECONDS
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert max(delays) == informer.RETRY_CAP_SECONDS
    assert informer.retry_delay(10_000) == informer.RETRY_CAP_SECONDS  # no float overflow


class RecordingQueue(WorkQueue):
    """A queue that records the delay of every retry the workers schedule."""

    def __init__(self) -> None:
        super().__init__(retry_base=0.01, retry_cap=0.04)  # the real sequence, in milliseconds
        self.retries: list[float] = []
        self.lock = threading.Lock()

    def add_after(self, key: Key, delay: float) -> None:
        with self.lock:
            self.retries.append(delay)
        super().add_after(key, delay)


def test_workers_share_one_backoff_per_key_and_a_success_forgets_it() -> None:
    """Four workers, as the emulator runs: a key refused five times in a row waits 1, 2, 4, 4, 4 units
    (capped) whichever worker takes it; after it succeeds, its next failure waits one unit again."""
    queue = RecordingQueue()
    results = iter(["422"] * 5 + ["ok"] + ["422", "ok"])
    done = threading.Event()

    def reconcile(namespace: str, name: str) -> float | None:
        result = next(results, "end")
        if result == "422":
            raise ApiException(status=422, reason="Unprocessable Entity")
        if result == "ok":
            queue.add(("vm", namespace, name))  # as a watch event of its own write would
        else:
            done.set()
        return None

    workers = [threading.Thread(target=run_worker, args=(queue, {"vm": reconcile}), daemon=True) for _ in range(4)]
    for worker in workers:
        worker.start()
    queue.add(("vm", "ns", "shop-abcde"))
    try:
        assert done.wait(30), queue.retries
    finally:
        queue.shutdown()
        for worker in workers:
            worker.join(10)
    assert queue.retries == [0.01, 0.02, 0.04, 0.04, 0.04, 0.01]
