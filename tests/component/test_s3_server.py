"""The bundled S3 server (versitygw) answers the calls the archive makes, as S3 does.

A check of the server itself, before the archive relies on it: each S3 call the s3
backend uses (``overseer.archive_s3``), with the answers the backend reads.
"""

from __future__ import annotations

import pytest

from tests.support import s3server


def test_the_calls_the_archive_makes(s3_server: s3server.S3Server) -> None:
    s3 = s3server.client(s3_server)
    s3.create_bucket(Bucket="conformance")
    data = bytes(range(256)) * 64
    for offset in (0, 16384, 32768):
        s3.put_object(Bucket="conformance", Key=f"a/stdout/{offset:016d}", Body=data)
    s3.put_object(Bucket="conformance", Key="a/manifest.json", Body=b"{}")
    s3.put_object(Bucket="conformance", Key="b/manifest.json", Body=b"{}")

    head = s3.head_object(Bucket="conformance", Key="a/stdout/0000000000016384")
    assert head["ContentLength"] == len(data)
    ranged = s3.get_object(
        Bucket="conformance", Key="a/stdout/0000000000000000", Range="bytes=100-299"
    )
    assert ranged["ContentRange"] == f"bytes 100-299/{len(data)}"
    assert ranged["Body"].read() == data[100:300]

    top = s3.list_objects_v2(Bucket="conformance", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/"]
    page = s3.list_objects_v2(Bucket="conformance", Prefix="a/stdout/", MaxKeys=2)
    assert [o["Key"][-5:] for o in page["Contents"]] == ["00000", "16384"]
    assert page["IsTruncated"] is True
    rest = s3.list_objects_v2(
        Bucket="conformance", Prefix="a/stdout/", ContinuationToken=page["NextContinuationToken"]
    )
    assert [(o["Key"][-5:], o["Size"]) for o in rest["Contents"]] == [("32768", len(data))]
    after = s3.list_objects_v2(
        Bucket="conformance", Prefix="a/stdout/", StartAfter="a/stdout/0000000000016383"
    )
    assert [o["Key"][-5:] for o in after["Contents"]] == ["16384", "32768"]

    s3.put_object(Bucket="conformance", Key="a/manifest.json", Body=b'{"v": 2}')  # overwrite
    assert s3.get_object(Bucket="conformance", Key="a/manifest.json")["Body"].read() == b'{"v": 2}'

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="conformance", Prefix="a/")["Contents"]]
    deleted = s3.delete_objects(
        Bucket="conformance", Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
    )
    assert not deleted.get("Errors")
    assert s3.list_objects_v2(Bucket="conformance", Prefix="a/")["KeyCount"] == 0
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="conformance", Key="a/manifest.json")
