from __future__ import annotations


def test_object_storage_path_reaches_local_s3(s3_bucket: str) -> None:
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(f"s3://{s3_bucket}/dir/hello.txt", conn_id="aws_test")
    path.write_text("hi")
    assert [p.name for p in ObjectStoragePath(f"s3://{s3_bucket}/dir/", conn_id="aws_test").iterdir()] == [
        "hello.txt"
    ]
    assert path.read_text() == "hi"
