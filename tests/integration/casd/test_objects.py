"""The object store of imports and exports, against the real S3 server (versitygw)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    objects = ObjectStore(
        make_s3_client(s3.settings),
        "test-" + secrets.token_hex(6),
        part_client=make_s3_client(s3.settings, sign_payload=False),  # as the service makes it
        part_size=MINIMUM_PART_SIZE,
    )
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


PART = MINIMUM_PART_SIZE


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def headers_of(request: Any) -> dict[str, str]:
    """A prepared request's headers, as text (botocore holds some as bytes once signed)."""
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()}


def part_number(request: Any) -> int:
    """The part number of an ``UploadPart`` request."""
    return int(parse_qs(urlsplit(request.url).query)["partNumber"][0])


@pytest.mark.parametrize("size", [1, PART - 1, PART, PART + 1, 2 * PART, 3 * PART + 7])
async def test_the_digests_are_those_of_the_bytes_around_part_boundaries(store: ObjectStore, size: int) -> None:
    data = secrets.token_bytes(size)

    # Chunks of an odd size: parts begin and end inside chunks.
    stored = await store.put_stream(f"cut/{size}.bin", chunks_of(data, size=100_003), governance="CASD", max_bytes=size)

    assert stored.size == size
    assert stored.sha256 == sha256(data)
    assert stored.part_sha256 == tuple(sha256(data[start : start + PART]) for start in range(0, size, PART))
    assert b"".join([chunk async for chunk in store.read(stored.key)]) == data


async def test_parts_go_with_a_signed_checksum_in_place_of_a_signed_body(store: ObjectStore) -> None:
    sent: list[dict[str, str]] = []
    store.part_client.meta.events.register(
        "before-send.s3.UploadPart", lambda request, **_: sent.append(headers_of(request))
    )
    data = secrets.token_bytes(PART + 10)

    stored = await store.put_stream("unsigned.bin", chunks_of(data), governance="CASD", max_bytes=len(data))

    assert stored.sha256 == sha256(data)
    assert len(sent) == 2
    for headers in sent:
        assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
        signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        assert "x-amz-checksum-sha256" in signed


async def test_a_store_without_a_part_client_signs_each_part_s_body(s3: S3Server, store: ObjectStore) -> None:
    signing = ObjectStore(make_s3_client(s3.settings), store.bucket, part_size=PART)
    sent: dict[int, str] = {}
    signing.part_client.meta.events.register(
        "before-send.s3.UploadPart",
        lambda request, **_: sent.update({part_number(request): headers_of(request)["X-Amz-Content-SHA256"]}),
    )
    data = secrets.token_bytes(PART + 10)

    stored = await signing.put_stream("signed.bin", chunks_of(data), governance="CASD", max_bytes=len(data))

    assert stored.sha256 == sha256(data)
    assert sent == {1: sha256(data[:PART]), 2: sha256(data[PART:])}


@pytest.mark.parametrize(
    ("event", "code"),
    [
        # The checksum is changed before signing: S3 finds that the body does not match it.
        ("before-sign", "BadDigest"),
        # Changed after signing (as on the wire): the signature no longer holds, since it covers the checksum.
        ("before-send", "SignatureDoesNotMatch"),
    ],
)
async def test_a_part_refused_while_others_are_in_flight_aborts_the_upload(
    store: ObjectStore, event: str, code: str
) -> None:
    sent: list[int] = []

    def tamper(request: Any, **_: Any) -> None:
        number = part_number(request)
        sent.append(number)
        if number == 2:
            del request.headers["x-amz-checksum-sha256"]
            request.headers["x-amz-checksum-sha256"] = base64.b64encode(hashlib.sha256(b"other").digest()).decode()

    store.part_client.meta.events.register(f"{event}.s3.UploadPart", tamper)
    data = secrets.token_bytes(4 * PART + 1)

    with pytest.raises(ObjectStoreError, match=rf"refused upload_part \({code}\)"):
        await store.put_stream("tampered.bin", chunks_of(data), governance="CASD", max_bytes=len(data))

    assert len(sent) > 2  # later parts were on their way when part 2 was refused
    assert await nothing_left(store)


async def test_an_upload_holds_one_part_buffer_more_than_the_parts_in_flight(s3: S3Server, store: ObjectStore) -> None:
    narrow = ObjectStore(store.client, store.bucket, part_client=store.part_client, part_size=PART, parts_in_flight=2)
    bodies: list[Any] = []
    narrow.part_client.meta.events.register(
        "before-parameter-build.s3.UploadPart", lambda params, **_: bodies.append(params["Body"])
    )
    data = secrets.token_bytes(5 * PART + 1)

    stored = await narrow.put_stream("reused.bin", chunks_of(data), governance="CASD", max_bytes=len(data))

    assert stored.sha256 == sha256(data)
    assert len(bodies) == 6
    assert len({id(body) for body in bodies}) <= 3  # the list keeps every body alive: ids are not reused
