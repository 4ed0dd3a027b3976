"""One read of a golden image serves every WebAppScaling made from it (operator/webapp_scaler/golden_reads.py):
in whole rounds against the fakes, and the shared reads on their own (in flight, failures, 403)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.unit.operator.fakes import NAMESPACE, World, ready_fleet, scaling
from webapp_scaler.golden_reads import FRESH_SECONDS, GoldenImageReads
from webapp_scaler.reconcile import GOLDEN_RECHECK_SECONDS, Reconciler


async def test_many_objects_made_from_one_image_read_it_once_per_recheck_interval() -> None:
    world = World()
    world.source.sessions = {"a": 20}
    runtime = world.runtime  # one process: one runtime for every loop
    reconcilers = [Reconciler(NAMESPACE, f"shop-{i}") for i in range(5)]
    view = ready_fleet(("a", "10.0.0.1", None))
    for _ in range(4):  # four rounds of five objects, 10 s apart: 40 s
        for reconciler in reconcilers:
            await reconciler.round(runtime, scaling(), view, world.event)
        world.now += 10
    assert len(world.kube.called("get_golden_image")) == 2  # at 0 s and once the 30 s had passed
    assert GOLDEN_RECHECK_SECONDS == 30


async def test_a_round_about_to_clone_reads_again_unless_another_object_just_did() -> None:
    world = World()
    runtime = world.runtime
    first, second = Reconciler(NAMESPACE, "shop"), Reconciler(NAMESPACE, "cart")
    view = ready_fleet(("a", "10.0.0.1", None))
    world.source.sessions = {"a": 20}
    await first.round(runtime, scaling(), view, world.event)
    await second.round(runtime, scaling(), view, world.event)
    assert len(world.kube.called("get_golden_image")) == 1

    world.source.sessions = {"a": 150}  # both want clones now
    world.now += 10
    await first.round(runtime, scaling(), view, world.event)
    assert len(world.kube.called("get_golden_image")) == 2, "a read 10 s old is not fresh enough to clone from"
    world.now += FRESH_SECONDS / 2
    await second.round(runtime, scaling(), view, world.event)
    assert len(world.kube.called("get_golden_image")) == 2, "the first object's read a second ago serves"
    assert len(world.kube.called("create_vm")) >= 2  # both cloned


async def test_a_golden_image_deleted_is_seen_by_every_object_at_its_next_fresh_read() -> None:
    world = World()
    runtime = world.runtime
    objects = [Reconciler(NAMESPACE, "shop"), Reconciler(NAMESPACE, "cart")]
    view = ready_fleet(("a", "10.0.0.1", None))
    world.source.sessions = {"a": 20}
    for reconciler in objects:
        await reconciler.round(runtime, scaling(), view, world.event)
    del world.kube.golden[("DataVolume", NAMESPACE, "golden")]
    world.source.sessions = {"a": 150}
    world.now += 5
    for reconciler in objects:
        await reconciler.round(runtime, scaling(), view, world.event)
    assert world.kube.called("create_vm") == []
    assert len(world.kube.called("get_golden_image")) == 2  # one fresh read, shared


class CountingKube:
    def __init__(self, answer: Any = None, error: ApiException | None = None) -> None:
        self.calls = 0
        self.answer, self.error = answer, error
        self.release = asyncio.Event()

    async def get_golden_image(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.answer

    async def can_clone_from(self, namespace: str) -> bool:
        self.calls += 1
        return namespace == "images"


async def test_callers_that_arrive_during_a_read_wait_for_it() -> None:
    kube, reads = CountingKube({"status": {"phase": "Succeeded"}}), GoldenImageReads()
    waiting = [
        asyncio.create_task(reads.source(kube, "DataVolume", "ns", "golden", 100.0, max_age=30)) for _ in range(50)
    ]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    kube.release.set()
    results = await asyncio.gather(*waiting)
    assert kube.calls == 1
    assert {at for at, _ in results} == {100.0}
    assert all(read.source == {"status": {"phase": "Succeeded"}} and read.readable for _, read in results)


async def test_a_failed_read_fails_its_waiters_and_is_not_kept() -> None:
    kube, reads = CountingKube(error=ApiException(status=500)), GoldenImageReads()
    waiting = [
        asyncio.create_task(reads.source(kube, "DataVolume", "ns", "golden", 100.0, max_age=30)) for _ in range(3)
    ]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    kube.release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, ApiException) and o.status == 500 for o in outcomes)
    kube.error = None
    _, read = await reads.source(kube, "DataVolume", "ns", "golden", 100.5, max_age=30)  # type: ignore[arg-type]
    assert kube.calls == 2 and read.source is None and read.readable  # read again: absent now


async def test_forbidden_is_an_answer_kept_like_any_other() -> None:
    kube, reads = CountingKube(error=ApiException(status=403)), GoldenImageReads()
    kube.release.set()
    for at in (100.0, 110.0):
        _, read = await reads.source(kube, "DataVolume", "ns", "golden", at, max_age=30)  # type: ignore[arg-type]
        assert (read.source, read.readable) == (None, False)
    assert kube.calls == 1


@pytest.mark.parametrize(("age", "calls"), [(1.0, 1), (31.0, 2)])
async def test_the_clone_permission_of_a_namespace_is_shared_for_max_age(age: float, calls: int) -> None:
    kube, reads = CountingKube(), GoldenImageReads()
    assert await reads.clone_allowed(kube, "images", 100.0, max_age=30)  # type: ignore[arg-type]
    assert await reads.clone_allowed(kube, "images", 100.0 + age, max_age=30)  # type: ignore[arg-type]
    assert not await reads.clone_allowed(kube, "elsewhere", 100.0, max_age=30)  # type: ignore[arg-type]
    assert kube.calls == calls + 1
