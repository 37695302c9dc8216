"""boto3, configured by :func:`infracalc.storage.make_s3_client`, against the real S3 server."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator

import pytest
import requests

from infracalc.storage import make_s3_client
from tests.fixtures.servers import S3Server

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024  # the S3 minimum for every part but the last


@pytest.fixture
def bucket(s3: S3Server) -> Iterator[str]:
    client = make_s3_client(s3.settings)
    name = "test-" + secrets.token_hex(4)
    client.create_bucket(Bucket=name)
    yield name
    for item in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def test_bucket_is_created(s3: S3Server, bucket: str) -> None:
    names = [entry["Name"] for entry in make_s3_client(s3.settings).list_buckets()["Buckets"]]
    assert bucket in names


def test_multipart_upload_with_per_part_sha256(s3: S3Server, bucket: str) -> None:
    client = make_s3_client(s3.settings)
    parts_data = [secrets.token_bytes(PART), secrets.token_bytes(PART), secrets.token_bytes(1234)]
    upload = client.create_multipart_upload(Bucket=bucket, Key="data/sample.bin", ChecksumAlgorithm="SHA256")
    parts = []
    for number, data in enumerate(parts_data, start=1):
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        answer = client.upload_part(
            Bucket=bucket,
            Key="data/sample.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
            ChecksumSHA256=checksum,
        )
        assert answer["ChecksumSHA256"] == checksum
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum})
    client.complete_multipart_upload(
        Bucket=bucket, Key="data/sample.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    stored = client.get_object(Bucket=bucket, Key="data/sample.bin")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(b"".join(parts_data)).digest()


def test_part_with_wrong_checksum_is_refused(s3: S3Server, bucket: str) -> None:
    client = make_s3_client(s3.settings)
    upload = client.create_multipart_upload(Bucket=bucket, Key="corrupt.bin", ChecksumAlgorithm="SHA256")
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    with pytest.raises(client.exceptions.ClientError):
        client.upload_part(
            Bucket=bucket,
            Key="corrupt.bin",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"the real bytes",
            ChecksumSHA256=wrong,
        )
    client.abort_multipart_upload(Bucket=bucket, Key="corrupt.bin", UploadId=upload["UploadId"])
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)


def test_presigned_get(s3: S3Server, bucket: str) -> None:
    client = make_s3_client(s3.settings)
    client.put_object(Bucket=bucket, Key="export.csv", Body=b"a,b\n1,2\n")
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "export.csv"}, ExpiresIn=60)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"a,b\n1,2\n"
    tampered = url.replace("export.csv", "other.csv")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_wrong_secret_is_refused(s3: S3Server) -> None:
    from dataclasses import replace

    client = make_s3_client(replace(s3.settings, secret_key="not-the-secret"))
    with pytest.raises(client.exceptions.ClientError):
        client.list_buckets()
