"""The object store of imports and exports: streamed multipart uploads, governance tags, presigned downloads.

Every object lives in one bucket under its project (``projects/<project>/imports/<id>/<name>``,
``projects/<project>/exports/<id>/v<version>/<name>``) and carries the S3 tag
``governance=CASD|INFRACALC``, so that the store itself says who governs each object; a
governance switch re-tags the project's prefix with :meth:`ObjectStore.retag`, which only touches
objects whose tag differs and can therefore be run again until it completes.

Uploads are multipart and keep memory constant whatever the file's size: the body is copied into
part buffers (8 MiB), and at most ``parts_in_flight`` (4) full parts are hashed or sent to S3 while
the next one fills, so an upload holds at most five part buffers, reused from part to part. Each
part is sent with its SHA-256, which the S3 server checks, and the whole file's SHA-256 is computed
on the way: a worker thread computes both digests of a part in one pass, part after part in the
file's order, while the event loop goes on receiving. Whatever goes wrong during an upload (the
size cap, an empty body, a client that disconnects, a cancelled task, an S3 error), the multipart
upload is aborted before the error propagates: no object and no orphaned parts are left behind.

Parts may be sent by a client of their own, made with ``make_s3_client(settings, sign_payload=False)``:
a part's checksum header is signed and checked by S3 against the body, so signing the body as well
(botocore's default over plain HTTP) would only hash every byte once more on each side.

boto3 is synchronous: every call runs in a worker thread, so the event loop keeps serving.

    store = ObjectStore(make_s3_client(settings), "infracalc", part_client=make_s3_client(settings, sign_payload=False))
    stored = await store.put_stream(key, request.stream(), governance=Governance.INFRACALC, max_bytes=cap)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from infracalc.db import Governance
from infracalc.errors import InfracalcError
from infracalc.storage import S3Client

#: Size of every multipart part but the last (S3's minimum is 5 MiB).
DEFAULT_PART_SIZE = 8 * 1024 * 1024
#: Parts hashed or sent to S3 at once while the next one arrives: an upload holds at most (this + 1) part buffers.
DEFAULT_PARTS_IN_FLIGHT = 4
#: S3's smallest part but the last.
MINIMUM_PART_SIZE = 5 * 1024 * 1024
#: The tag naming an object's governance owner.
GOVERNANCE_TAG = "governance"
#: How long a presigned download stays valid by default: 15 minutes.
DOWNLOAD_SECONDS = 900

#: Bytes hashed at a time by both digests of a part, so that each step is read from the cache once.
_HASH_STEP = 1024 * 1024

_T = TypeVar("_T")

logger = logging.getLogger(__name__)


class ObjectStoreError(InfracalcError):
    """The object store refused or failed an operation; the message says which and why."""


class ObjectTooLarge(ObjectStoreError):
    """More bytes arrived than the upload's cap allows."""


class EmptyObject(ObjectStoreError):
    """The upload carried no bytes."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object written by :meth:`ObjectStore.put_stream` or :meth:`ObjectStore.put_file`."""

    key: str
    #: Bytes stored.
    size: int
    #: Hex SHA-256 of the whole object.
    sha256: str
    #: Hex SHA-256 of each multipart part, in order (each checked by the S3 server on arrival).
    part_sha256: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IncompleteUpload:
    """A multipart upload begun and neither completed nor aborted: its parts take room until it is aborted."""

    key: str
    upload_id: str = field(repr=False)
    #: When it began (timezone-aware).
    initiated: datetime


@dataclass(frozen=True, slots=True)
class RetagReport:
    """What :meth:`ObjectStore.retag` did: objects whose tag it changed, and objects already right."""

    changed: int
    unchanged: int


class ObjectStore:
    """One bucket of an S3-compatible server, holding the projects' imports and exports."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        part_client: S3Client | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        parts_in_flight: int = DEFAULT_PARTS_IN_FLIGHT,
    ) -> None:
        """A store on ``bucket``; ``part_client``, when given, sends the parts of uploads (see the module's notes)."""
        if part_size < MINIMUM_PART_SIZE:
            raise ValueError(f"part_size must be at least {MINIMUM_PART_SIZE} bytes (S3's minimum), got {part_size}")
        if parts_in_flight < 1:
            raise ValueError(f"parts_in_flight must be at least 1, got {parts_in_flight}")
        self.client = client
        self.part_client = client if part_client is None else part_client
        self.bucket = bucket
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight

    def __repr__(self) -> str:
        return f"ObjectStore(bucket={self.bucket!r}, part_size={self.part_size})"

    async def ensure_bucket(self) -> bool:
        """Create the bucket unless it exists; return whether it was created.

        A bucket created here also gets the lifecycle rule that aborts multipart uploads left
        incomplete for a day: the backstop behind the aborts of :meth:`put_stream`, for a process
        killed mid-upload. Servers without lifecycle support (versitygw) go without it; an existing
        bucket's lifecycle is left to whoever manages it.
        """
        try:
            await self._call(self.client.head_bucket, Bucket=self.bucket)
        except ObjectStoreError:
            await self._call(self.client.create_bucket, Bucket=self.bucket)
        else:
            return False
        try:
            await self._call(
                self.client.put_bucket_lifecycle_configuration,
                Bucket=self.bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "abort-incomplete-uploads",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        }
                    ]
                },
            )
        except ObjectStoreError as error:
            logger.warning(
                "bucket %s has no lifecycle rule (%s): only the service's recovery sweep aborts incomplete uploads",
                self.bucket,
                error,
            )
        return True

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        governance: Governance | str,
        max_bytes: int,
        content_type: str = "application/octet-stream",
    ) -> StoredObject:
        """Store ``chunks`` at ``key`` as a multipart upload tagged with ``governance``.

        Raises:
            ObjectTooLarge: more than ``max_bytes`` arrived (checked as bytes arrive, before they are sent on).
            EmptyObject: ``chunks`` carried no byte.
            ObjectStoreError: the S3 server refused or failed a request.
            Whatever ``chunks`` raises (a client that went away), unchanged. In every case the upload is
            aborted first, so nothing is left in the bucket.
        """
        owner = Governance(governance)
        created = await self._call(
            self.client.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            Tagging=f"{GOVERNANCE_TAG}={owner.value}",
        )
        upload_id: str = created["UploadId"]
        try:
            stored = await self._send_parts(key, upload_id, chunks, max_bytes)
        except BaseException:
            # Shielded: a cancelled request must still not leave parts behind.
            with contextlib.suppress(ObjectStoreError):
                await asyncio.shield(self._abort(key, upload_id))
            raise
        return stored

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        governance: Governance | str,
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Store the file at ``path`` (spooled by the caller) at ``key``; see :meth:`put_stream`."""
        size = path.stat().st_size
        return await self.put_stream(
            key,
            _file_chunks(path, self.part_size),
            governance=governance,
            max_bytes=size if max_bytes is None else max_bytes,
            content_type=content_type,
        )

    async def read(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The object's bytes, in chunks of at most ``chunk_size``.

        Raises:
            ObjectStoreError: no such object, or the server failed.
        """
        answer = await self._call(self.client.get_object, Bucket=self.bucket, Key=key)
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, chunk_size):
                yield chunk
        finally:
            body.close()

    async def download_to(self, key: str, path: Path) -> None:
        """Write the object to ``path`` (replaced if it exists)."""
        with path.open("wb") as file:
            async for chunk in self.read(key):
                await asyncio.to_thread(file.write, chunk)

    async def delete(self, key: str) -> None:
        """Delete the object; deleting an object that is not there is not an error."""
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=key)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        try:
            await self._call(self.client.head_object, Bucket=self.bucket, Key=key)
        except ObjectStoreError as error:
            if _status(error) == HTTPStatus.NOT_FOUND:
                return False
            raise
        return True

    async def governance_of(self, key: str) -> Governance | None:
        """The object's governance tag, or None when it has none (or an unknown value)."""
        answer = await self._call(self.client.get_object_tagging, Bucket=self.bucket, Key=key)
        for tag in answer.get("TagSet", []):
            if tag["Key"] == GOVERNANCE_TAG:
                with contextlib.suppress(ValueError):
                    return Governance(tag["Value"])
        return None

    async def set_governance(self, key: str, governance: Governance | str) -> bool:
        """Tag the object with ``governance``, keeping its other tags.

        Returns:
            True when the tag changed, False when it was right already.
        """
        owner = Governance(governance)
        answer = await self._call(self.client.get_object_tagging, Bucket=self.bucket, Key=key)
        tags = {tag["Key"]: tag["Value"] for tag in answer.get("TagSet", [])}
        if tags.get(GOVERNANCE_TAG) == owner.value:
            return False
        tags[GOVERNANCE_TAG] = owner.value
        await self._call(
            self.client.put_object_tagging,
            Bucket=self.bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": name, "Value": value} for name, value in sorted(tags.items())]},
        )
        return True

    async def retag(self, prefix: str, governance: Governance | str) -> RetagReport:
        """Tag every object under ``prefix`` with ``governance``.

        Objects already tagged right are left alone, so a retag that failed half-way is finished by
        running it again.
        """
        changed = unchanged = 0
        for key in await self.keys(prefix):
            if await self.set_governance(key, governance):
                changed += 1
            else:
                unchanged += 1
        return RetagReport(changed=changed, unchanged=unchanged)

    async def keys(self, prefix: str) -> list[str]:
        """The keys of every object under ``prefix``, in S3's order (lexicographic)."""
        found: list[str] = []
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token is not None:
                arguments["ContinuationToken"] = token
            page = await self._call(self.client.list_objects_v2, **arguments)
            found.extend(item["Key"] for item in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    async def pending_uploads(self, prefix: str = "") -> list[str]:
        """Keys of the multipart uploads begun under ``prefix`` and neither completed nor aborted."""
        return [upload.key for upload in await self.incomplete_uploads(prefix)]

    async def incomplete_uploads(self, prefix: str = "") -> list[IncompleteUpload]:
        """The multipart uploads begun under ``prefix`` and neither completed nor aborted, every page of them."""
        found: list[IncompleteUpload] = []
        markers: dict[str, str] = {}
        while True:
            page = await self._call(self.client.list_multipart_uploads, Bucket=self.bucket, Prefix=prefix, **markers)
            found.extend(
                IncompleteUpload(key=item["Key"], upload_id=item["UploadId"], initiated=item["Initiated"])
                for item in page.get("Uploads", [])
            )
            if not page.get("IsTruncated"):
                return found
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    async def abort_upload(self, upload: IncompleteUpload) -> None:
        """Abort an incomplete multipart upload: its parts are deleted."""
        await self._abort(upload.key, upload.upload_id)

    async def clear(self, prefix: str) -> int:
        """Abort every incomplete upload and delete every object under ``prefix``; return how many were removed.

        Raises:
            ObjectStoreError: the store failed part-way (run it again: what is gone stays gone).
        """
        removed = 0
        for upload in await self.incomplete_uploads(prefix):
            await self.abort_upload(upload)
            removed += 1
        for key in await self.keys(prefix):
            await self.delete(key)
            removed += 1
        return removed

    def presigned_download(self, key: str, *, filename: str, expires_in: int = DOWNLOAD_SECONDS) -> str:
        """A URL that downloads the object as ``filename`` without credentials, valid ``expires_in`` seconds.

        Signing is local: no request reaches the server until the URL is used.
        """
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
            },
            ExpiresIn=expires_in,
        )
        return url

    async def _send_parts(self, key: str, upload_id: str, chunks: AsyncIterable[bytes], max_bytes: int) -> StoredObject:
        whole = hashlib.sha256()
        cutter = _PartCutter(self.part_size, max_bytes)
        parts: dict[int, tuple[dict[str, Any], str]] = {}
        in_flight: set[asyncio.Task[None]] = set()
        numbers = itertools.count(1)
        # Done once the latest part is in the whole file's digest: each part waits for the one before.
        hashed: asyncio.Future[None] | None = None

        async def send_part(
            number: int, buffer: bytearray, previous: asyncio.Future[None] | None, done_hashing: asyncio.Future[None]
        ) -> None:
            try:
                if previous is not None:
                    await previous
                # Off the event loop (hashlib releases the GIL): the next parts keep arriving meanwhile.
                digest = await asyncio.to_thread(_digest_part, whole, buffer)
            finally:
                done_hashing.set_result(None)  # even on failure, so that no later part waits forever
            answer = await self._call(
                self.part_client.upload_part,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                # A bytearray goes out in one send as it is (botocore wraps bytes in a file read 16 KiB at a time).
                Body=buffer,
                ChecksumSHA256=base64.b64encode(digest).decode(),
            )
            parts[number] = (
                {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer["ChecksumSHA256"]},
                digest.hex(),
            )
            cutter.give_back(buffer)

        async def send(buffer: bytearray) -> None:
            # At most ``parts_in_flight`` parts are hashed or sent at a time while the next one fills.
            while len(in_flight) >= self.parts_in_flight:
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                in_flight.difference_update(done)
                for task in done:
                    task.result()
            nonlocal hashed
            previous, hashed = hashed, asyncio.get_running_loop().create_future()
            in_flight.add(asyncio.create_task(send_part(next(numbers), buffer, previous, hashed)))

        try:
            async with contextlib.aclosing(cutter.parts(chunks)) as buffers:
                async for buffer in buffers:
                    await send(buffer)
        finally:
            # Every part still being sent finishes (or fails) before the upload is completed or
            # aborted: a part arriving after the abort could otherwise outlive it.
            results = await asyncio.gather(*in_flight, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        ordered = [parts[number] for number in sorted(parts)]
        await self._call(
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [part for part, _ in ordered]},
        )
        return StoredObject(
            key=key, size=cutter.size, sha256=whole.hexdigest(), part_sha256=tuple(digest for _, digest in ordered)
        )

    async def _abort(self, key: str, upload_id: str) -> None:
        await self._call(self.client.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id)

    async def _call(self, method: Callable[..., _T], **arguments: Any) -> _T:
        try:
            return await asyncio.to_thread(method, **arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise ObjectStoreError(f"the object store refused {method.__name__} ({code})") from error
        except BotoCoreError as error:
            # The error names the endpoint and the request (an upload id): the log has them, the message not.
            logger.warning("S3 %s failed: %s", method.__name__, error)
            raise ObjectStoreError(f"the object store could not be reached ({method.__name__})") from error


def _status(error: ObjectStoreError) -> int | None:
    cause = error.__cause__
    if isinstance(cause, ClientError):
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


class _PartCutter:
    """Cuts a stream into part buffers, reusing the buffers given back once their part is stored."""

    def __init__(self, part_size: int, max_bytes: int) -> None:
        self.part_size = part_size
        self.max_bytes = max_bytes
        #: Bytes received so far.
        self.size = 0
        self._free: list[bytearray] = []

    def give_back(self, buffer: bytearray) -> None:
        """``buffer``'s part is stored: it may be filled again."""
        self._free.append(buffer)

    async def parts(self, chunks: AsyncIterable[bytes]) -> AsyncGenerator[bytearray, None]:
        """Full buffers of ``part_size`` bytes, then the rest (shorter; never empty).

        Raises:
            ObjectTooLarge: more than ``max_bytes`` arrived (before they are passed on).
            EmptyObject: ``chunks`` carried no byte.
        """
        buffer = bytearray(self.part_size)
        filled = 0
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise ObjectTooLarge(f"the file is larger than the limit of {self.max_bytes} bytes")
            with memoryview(chunk) as view:
                taken = 0
                while taken < len(view):  # a chunk may fill several parts
                    step = min(len(view) - taken, self.part_size - filled)
                    buffer[filled : filled + step] = view[taken : taken + step]
                    filled += step
                    taken += step
                    if filled == self.part_size:
                        yield buffer
                        buffer = self._free.pop() if self._free else bytearray(self.part_size)
                        filled = 0
        if self.size == 0:
            raise EmptyObject("the file is empty")
        if filled:
            del buffer[filled:]  # the last part: this buffer is not filled again
            yield buffer


def _digest_part(whole: hashlib._Hash, part: bytearray) -> bytes:
    """The part's SHA-256, adding the part to ``whole`` on the way: both digests in one pass over memory."""
    digest = hashlib.sha256()
    with memoryview(part) as view:
        for start in range(0, len(view), _HASH_STEP):
            piece = view[start : start + _HASH_STEP]
            digest.update(piece)
            whole.update(piece)
    return digest.digest()


async def _file_chunks(path: Path, size: int) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, size):
            yield chunk


__all__ = [
    "DOWNLOAD_SECONDS",
    "EmptyObject",
    "IncompleteUpload",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectTooLarge",
    "RetagReport",
    "StoredObject",
]
