"""The object store of imports and exports, against the real S3 server (versitygw)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import requests

from infracalc.casd.objects import MINIMUM_PART_SIZE, EmptyObject, ObjectStore, ObjectStoreError, ObjectTooLarge
from infracalc.db import Governance
from infracalc.storage import make_s3_client
from tests.fixtures.servers import S3Server

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(s3: S3Server) -> AsyncIterator[ObjectStore]:
    """A store on a bucket of its own, created by the store itself, emptied afterwards."""
    objects = ObjectStore(make_s3_client(s3.settings), "test-" + secrets.token_hex(6), part_size=MINIMUM_PART_SIZE)
    assert await objects.ensure_bucket() is True
    assert await objects.ensure_bucket() is False  # a second call finds it and changes nothing
    yield objects
    for key in await objects.keys(""):
        await objects.delete(key)
    objects.client.delete_bucket(Bucket=objects.bucket)


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class ClientWentAway(Exception):
    """What a request body raises when the client disconnects half-way."""


async def broken_after(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in chunks_of(data):
        yield chunk
    raise ClientWentAway


async def nothing_left(store: ObjectStore) -> bool:
    return await store.keys("") == [] and await store.pending_uploads() == []


async def test_a_stream_is_stored_in_checked_parts_with_its_digest_and_tag(store: ObjectStore) -> None:
    data = secrets.token_bytes(2 * MINIMUM_PART_SIZE + 1234)

    stored = await store.put_stream(
        "projects/p/imports/i1/data.bin", chunks_of(data), governance=Governance.CASD, max_bytes=len(data)
    )

    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.part_sha256 == (
        hashlib.sha256(data[:MINIMUM_PART_SIZE]).hexdigest(),
        hashlib.sha256(data[MINIMUM_PART_SIZE : 2 * MINIMUM_PART_SIZE]).hexdigest(),
        hashlib.sha256(data[2 * MINIMUM_PART_SIZE :]).hexdigest(),
    )
    assert b"".join([chunk async for chunk in store.read(stored.key)]) == data
    assert await store.governance_of(stored.key) is Governance.CASD
    assert await store.pending_uploads() == []


async def test_chunks_larger_than_a_part_are_cut_into_parts(store: ObjectStore) -> None:
    data = secrets.token_bytes(3 * MINIMUM_PART_SIZE + 7)

    stored = await store.put_stream(
        "big-chunks.bin", chunks_of(data, size=len(data)), governance="CASD", max_bytes=len(data)
    )

    assert len(stored.part_sha256) == 4
    assert stored.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_file_is_stored_and_read_back_to_a_file(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "table.csv"
    source.write_bytes(b"region,count\nParis,12\n")

    stored = await store.put_file("projects/p/exports/e1/v1/table.csv", source, governance="INFRACALC")
    copy = tmp_path / "copy.csv"
    await store.download_to(stored.key, copy)

    assert copy.read_bytes() == source.read_bytes()
    assert await store.exists(stored.key)
    assert await store.governance_of(stored.key) is Governance.INFRACALC


async def test_more_bytes_than_the_cap_abort_the_upload(store: ObjectStore) -> None:
    data = secrets.token_bytes(MINIMUM_PART_SIZE + 10)

    with pytest.raises(ObjectTooLarge, match=f"limit of {MINIMUM_PART_SIZE} bytes"):
        await store.put_stream("big.bin", chunks_of(data), governance="CASD", max_bytes=MINIMUM_PART_SIZE)

    assert await nothing_left(store)


async def test_an_empty_body_is_refused(store: ObjectStore) -> None:
    with pytest.raises(EmptyObject, match="empty"):
        await store.put_stream("empty.bin", chunks_of(b""), governance="CASD", max_bytes=100)

    assert await nothing_left(store)


async def test_a_client_that_goes_away_half_way_leaves_nothing(store: ObjectStore) -> None:
    # More than one part was sent before the body broke off.
    data = secrets.token_bytes(MINIMUM_PART_SIZE + 4096)

    with pytest.raises(ClientWentAway):
        await store.put_stream("cut.bin", broken_after(data), governance="CASD", max_bytes=10 * len(data))

    assert await nothing_left(store)


async def test_a_cancelled_upload_leaves_nothing(store: ObjectStore) -> None:
    arrived = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield secrets.token_bytes(MINIMUM_PART_SIZE)  # one whole part, sent at once
        arrived.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b""

    upload = asyncio.create_task(store.put_stream("stalled.bin", stalls(), governance="CASD", max_bytes=1 << 30))
    await arrived.wait()
    await asyncio.sleep(0.5)  # let the first part reach the server
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload

    assert await nothing_left(store)


async def test_retag_changes_only_what_differs_and_can_be_run_again(store: ObjectStore) -> None:
    for key in ("projects/p/imports/a/x.csv", "projects/p/exports/b/v1/y.csv", "projects/q/imports/c/z.csv"):
        await store.put_stream(key, chunks_of(b"1,2\n"), governance="INFRACALC", max_bytes=100)
    await store.set_governance("projects/p/exports/b/v1/y.csv", "CASD")

    first = await store.retag("projects/p/", Governance.CASD)
    again = await store.retag("projects/p/", Governance.CASD)

    assert (first.changed, first.unchanged) == (1, 1)
    assert (again.changed, again.unchanged) == (0, 2)
    assert await store.governance_of("projects/p/imports/a/x.csv") is Governance.CASD
    assert await store.governance_of("projects/q/imports/c/z.csv") is Governance.INFRACALC


async def test_retagging_keeps_other_tags(store: ObjectStore) -> None:
    key = "projects/p/imports/a/x.csv"
    await store.put_stream(key, chunks_of(b"1\n"), governance="INFRACALC", max_bytes=100)
    store.client.put_object_tagging(
        Bucket=store.bucket,
        Key=key,
        Tagging={"TagSet": [{"Key": "governance", "Value": "INFRACALC"}, {"Key": "kept", "Value": "yes"}]},
    )

    assert await store.set_governance(key, "CASD") is True

    tags = store.client.get_object_tagging(Bucket=store.bucket, Key=key)["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == {"governance": "CASD", "kept": "yes"}


async def test_a_presigned_url_downloads_without_credentials_until_it_expires(store: ObjectStore) -> None:
    key = "projects/p/exports/e/v1/résultats 2024.csv"
    await store.put_stream(key, chunks_of(b"a,b\n1,2\n"), governance="INFRACALC", max_bytes=100)

    answer = requests.get(store.presigned_download(key, filename="résultats 2024.csv"), timeout=10)
    short = store.presigned_download(key, filename="x.csv", expires_in=1)
    time.sleep(2)
    expired = requests.get(short, timeout=10)

    assert answer.status_code == 200
    assert answer.content == b"a,b\n1,2\n"
    assert "filename*=UTF-8''r%C3%A9sultats%202024.csv" in answer.headers["Content-Disposition"]
    assert expired.status_code == 403


async def test_missing_objects(store: ObjectStore) -> None:
    await store.delete("never/was.bin")  # not an error

    assert await store.exists("never/was.bin") is False
    with pytest.raises(ObjectStoreError, match="refused get_object"):
        [chunk async for chunk in store.read("never/was.bin")]


def test_parts_smaller_than_s3_allows_are_refused(s3: S3Server) -> None:
    with pytest.raises(ValueError, match="at least"):
        ObjectStore(make_s3_client(s3.settings), "any", part_size=1024)
