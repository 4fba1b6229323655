"""Planning refuses what S3 would refuse, before any call; S3's non-retryable answers are permanent; the
memory budget counts downloads and renders together without deadlock (pure logic and in-memory fakes)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import jpeg_bytes
from worker.aws.errors import classify
from worker.aws.s3 import StoredObject
from worker.core.budget import MemoryBudget, MemoryBusy, budget_for, current_reservation
from worker.core.errors import (
    BadKey,
    ImageTooLarge,
    KeyTooLong,
    ObjectMissing,
    ServiceUnavailable,
    TransientError,
)
from worker.core.events import ObjectRef
from worker.core.keys import KeyLayout, check_source_key, source_key_digest
from worker.core.presets import DEFAULT_PRESETS, Preset, parse_presets
from worker.imaging import Limits, Rendition
from worker.runtime.pipeline import Pipeline, PipelineConfig
from worker.testing import MemoryStore, static_render

PRESETS = parse_presets(DEFAULT_PRESETS)
MIB = 1024 * 1024


@pytest.mark.parametrize(
    "rel",
    [
        "a/../b.jpg",
        "./b.jpg",
        "a//b.jpg",
        "/b.jpg",
        "a/./b.jpg",
        "..",
        "bad\x00.jpg",
        "tab\t.jpg",
        "\x7f.jpg",
        "nl\n.jpg",
        "x\x85.jpg",
        "lone\ud800.jpg",
    ],
)
def test_unsafe_source_keys_are_a_typed_bad_key(rel: str) -> None:
    with pytest.raises(BadKey):
        check_source_key(rel)
    with pytest.raises(BadKey):
        KeyLayout().plan("input/" + rel, PRESETS)


@pytest.mark.parametrize(
    "rel", ["a.jpg", "2024/beach photo.jpg", "été/ü.jpg", "a..b/c.d.jpg", "日本/写真.png"]
)
def test_ordinary_keys_plan_as_before(rel: str) -> None:
    planned = KeyLayout().plan("input/" + rel, PRESETS)
    assert [p.key for p in planned] == [p.key for p in KeyLayout().outputs("input/" + rel, PRESETS)]


def test_an_output_key_over_1024_bytes_is_key_too_long_at_planning() -> None:
    layout = KeyLayout()
    longest_suffix = max(len(f"/{p.name}.{p.extension}") for p in PRESETS)
    fits = "input/" + "k" * (1024 - len("thumbnails/") - longest_suffix)
    layout.plan(fits, PRESETS)
    with pytest.raises(KeyTooLong, match="1024"):
        layout.plan(fits + "k", PRESETS)
    # bytes, not characters: 340 three-byte characters are 1020 bytes
    with pytest.raises(KeyTooLong):
        layout.plan("input/" + "語" * 340, PRESETS)


def test_outputs_record_a_fixed_size_digest_of_the_source_key() -> None:
    assert len(source_key_digest("input/" + "é" * 700)) == 64
    assert source_key_digest("input/a.jpg") != source_key_digest("input/b.jpg")


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("KeyTooLongError", "key_too_long"),
        ("MetadataTooLarge", "metadata_too_large"),
        ("InvalidArgument", "invalid_argument"),
        ("InvalidRequest", "invalid_request"),
        ("EntityTooLarge", "entity_too_large"),
        ("InvalidObjectState", "invalid_object_state"),
    ],
)
def test_s3s_non_retryable_answers_are_permanent(code: str, reason: str) -> None:
    error = classify(client_error(code, 400), what="PutObject")
    assert (error.permanent, error.reason) == (True, reason)


def test_missing_or_denied_sources_are_permanent_and_other_answers_still_transient() -> None:
    for code, status in (("NoSuchKey", 404), ("AccessDenied", 403), ("404", 404), ("403", 403)):
        missing = classify(client_error(code, status), what="GetObject", missing_is_404_or_403=True)
        assert isinstance(missing, ObjectMissing)
        assert missing.permanent
        assert missing.reason == "object_missing"
    for code, status in (("SlowDown", 503), ("InternalError", 500), ("AccessDenied", 403)):
        assert not classify(client_error(code, status), what="PutObject").permanent


def pipeline(store: MemoryStore, limits: Limits | None = None, renderer: Any = static_render) -> Pipeline:
    config = PipelineConfig(frozenset({"b"}), KeyLayout(), PRESETS, limits=limits or Limits())
    return Pipeline(store, config, renderer=renderer)


async def test_refusals_at_planning_cost_no_call() -> None:
    store = MemoryStore({})
    long_key = "input/" + "é" * 600  # 1206 bytes of output key
    for key, reason in (("input/a/../b.jpg", "bad_key"), (long_key, "key_too_long")):
        outcome = await pipeline(store).process(ObjectRef("b", key, etag="e"))
        assert (outcome.status, outcome.reason) == ("permanent", reason)
    outcome = await pipeline(store).process(ObjectRef("b", "input/v.jpg", etag="e", version_id="v" * 2000))
    assert (outcome.status, outcome.reason) == ("permanent", "metadata_too_large")
    big = await pipeline(store, Limits(max_bytes=1000)).process(ObjectRef("b", "input/a.jpg", size=1001))
    assert (big.status, big.reason) == ("permanent", "image_too_large")
    assert store.calls == []


async def test_a_long_non_ascii_key_fits_the_metadata_limit() -> None:
    key = "input/" + "é" * 330  # 660 bytes; its percent-encoding alone would be 1,980
    store = MemoryStore({key: b"src"})
    outcome = await pipeline(store).process(ObjectRef("b", key, etag="etag-3"))
    assert outcome.reason == "rendered"
    meta = store.metadata[outcome.outputs[0]]
    assert meta["thumbx-source-key-sha256"] == source_key_digest(key)
    assert sum(len(k.encode()) + len(v.encode()) for k, v in meta.items()) < 2048


async def test_without_an_etag_one_head_of_the_source_makes_redelivery_cheap() -> None:
    source = jpeg_bytes(64, 48)
    store = MemoryStore({"input/a.jpg": source})
    first = await pipeline(store).process(ObjectRef("b", "input/a.jpg"))
    assert first.reason == "rendered"
    store.calls.clear()
    second = await pipeline(store).process(ObjectRef("b", "input/a.jpg"))
    assert (second.status, second.reason) == ("succeeded", "already_rendered")
    assert store.calls == [("head-source", "input/a.jpg"), ("head", "thumbnails/a.jpg/lg.jpg")]
    gone = await pipeline(store).process(ObjectRef("b", "input/gone.jpg"))
    assert (gone.status, gone.reason) == ("permanent", "object_missing")


async def test_the_budget_waits_on_the_loop_and_refuses_what_never_fits() -> None:
    budget = MemoryBudget(100)
    with pytest.raises(ImageTooLarge):
        async with budget.reserve(101):
            pass
    taken = threading.Event()
    release = threading.Event()

    def render_thread() -> None:  # a render elsewhere holds 60 in its thread
        with budget.hold(60):
            taken.set()
            release.wait(5)

    thread = threading.Thread(target=render_thread)
    thread.start()
    await asyncio.to_thread(taken.wait, 5)
    entered = asyncio.Event()

    async def download() -> None:
        async with budget.reserve(50):
            entered.set()

    task = asyncio.create_task(download())
    await asyncio.sleep(0.05)
    assert not entered.is_set(), "60 + 50 > 100: the download waits (and the loop runs on)"
    assert budget.in_use == 60
    release.set()  # the thread's release wakes the waiter on this loop
    await asyncio.wait_for(task, 5)
    await asyncio.to_thread(thread.join, 5)
    assert entered.is_set()
    assert budget.in_use == 0


async def test_renders_inside_a_full_budget_drop_their_bytes_wait_and_download_again() -> None:
    """Ten sources of 30 MiB fill a 300 MiB budget; each render needs 100 MiB more. Holding the bytes and
    waiting would deadlock; instead they give them back and come again, and all ten finish."""
    total = 300 * MIB
    limits = Limits(max_bytes=40 * MIB, memory_budget_bytes=total)
    budget = budget_for(total)
    peak = 0
    gate = threading.Barrier(2, timeout=5)

    def render_in_reservation(data: bytes, presets: Sequence[Preset], lim: Limits) -> list[Rendition]:
        nonlocal peak
        reservation = current_reservation()
        assert reservation is not None
        with reservation.render(100 * MIB):
            peak = max(peak, budget.in_use)
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait()  # two renders at once, so the others find the budget full
        return static_render(data, presets, lim)

    keys = [f"input/{i}.jpg" for i in range(10)]
    store = MemoryStore({key: b"x" * (30 * MIB) for key in keys})
    runner = pipeline(store, limits, render_in_reservation)
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(runner.process(ObjectRef("b", k, etag="e", size=30 * MIB)) for k in keys)), 60
    )
    assert [o.reason for o in outcomes] == ["rendered"] * 10
    assert 0 < peak <= total
    assert budget.in_use == 0
    assert sum(1 for op, _ in store.calls if op == "get") > 10, "some renders downloaded again"


def test_a_render_that_cannot_grow_raises_memory_busy_typed_transient() -> None:
    budget = MemoryBudget(100)

    async def run() -> None:
        async with budget.reserve(60) as reservation, budget.reserve(30):
            with pytest.raises(MemoryBusy) as busy, reservation.render(20):
                pass
            assert isinstance(busy.value, TransientError)
            assert busy.value.needed == 20
            with pytest.raises(ImageTooLarge), reservation.render(50):
                pass

    asyncio.run(run())


class EndlessBody:
    """A response body that says little and sends forever (S3 never does; a proxy or a bug might)."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aenter__(self) -> EndlessBody:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def readinto(self, buffer: Any) -> int:
        buffer[:] = b"x" * len(buffer)
        self.sent += len(buffer)
        return len(buffer)


class LyingClient:
    def __init__(self, content_length: int) -> None:
        self.body = EndlessBody()
        self.content_length = content_length

    async def get_object(self, **_params: Any) -> dict[str, Any]:
        return {"ContentLength": self.content_length, "Body": self.body, "ETag": '"e"'}


async def test_s3store_never_reads_more_than_max_bytes_plus_one() -> None:
    from worker.aws.s3 import S3Store

    # over the limit: refused unread; under it but the body goes on: refused one byte past what it said
    for announced, error in (
        (3 * MIB, ImageTooLarge),
        (10, ServiceUnavailable),
        (2 * MIB, ImageTooLarge),
    ):
        client = LyingClient(announced)
        with pytest.raises(error):
            await S3Store(client).get("b", "input/a.jpg", max_bytes=2 * MIB)
        assert client.body.sent == (0 if announced > 2 * MIB else announced + 1)


async def test_admission_sees_the_content_length_before_the_body() -> None:
    from worker.aws.s3 import S3Store

    client = LyingClient(1000)
    seen: list[tuple[int, int]] = []

    def admit(length: int) -> None:
        seen.append((length, client.body.sent))
        raise MemoryBusy(length)

    with pytest.raises(MemoryBusy):
        await S3Store(client).get("b", "input/a.jpg", max_bytes=MIB, admit=admit)
    assert seen == [(1000, 0)]


class AdmittingStore(MemoryStore):
    """Calls ``admit`` with the object's length before handing over its bytes, as S3Store does."""

    async def get(self, bucket: str, key: str, **bounds: Any) -> StoredObject:
        if bounds.get("admit"):
            bounds["admit"](len(self.objects[key]))
        return await super().get(bucket, key)


async def test_a_source_larger_than_its_event_said_waits_for_room_instead_of_failing() -> None:
    total = 100 * MIB
    budget = budget_for(total)
    store = AdmittingStore({"input/a.jpg": b"x" * (30 * MIB)})
    runner = pipeline(store, Limits(max_bytes=40 * MIB, memory_budget_bytes=total))
    async with budget.reserve(50 * MIB) as other:
        job = asyncio.create_task(runner.process(ObjectRef("b", "input/a.jpg", etag="e", size=1)))
        for _ in range(100):
            if store.calls:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert not job.done(), "30 MiB read twice over does not fit beside 50: it waits, holding nothing"
        assert budget.in_use == other.amount
    outcome = await asyncio.wait_for(job, 5)
    assert outcome.reason == "rendered"
    assert [op for op, _ in store.calls].count("get") == 1, "refused at admission, then read once"
    assert budget.in_use == 0
