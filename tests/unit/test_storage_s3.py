"""`s3` inputs against a real S3 protocol server (moto_server on 127.0.0.1): single objects,
prefixes, `*`, Filter, VersionID, ChecksumSHA256, size probe and partitioning by Count."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from bacalhau.errors import InputMismatch, StorageError
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage import StorageProvider
from bacalhau.storage.s3 import Partition, S3Storage, date_regex, fnv1a32

pytestmark = pytest.mark.unit


def s3_input(endpoint: str, bucket: str, key: str = "", target: str = "/inputs",
             **params: Any) -> InputSource:
    source = SpecConfig("s3", {"Bucket": bucket, "Key": key, "Endpoint": endpoint,
                               "Region": "us-east-1", **params})
    return InputSource(source, alias=f"s3://{bucket}/{key}", target=target)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def data(s3: Any) -> str:
    bucket = s3.bucket("in")
    s3.put(bucket, "data/a.txt", "alpha\n")
    s3.put(bucket, "data/sub/b.txt", "beta beta\n")
    s3.put(bucket, "data/sub/", b"")  # a directory marker: skipped
    s3.put(bucket, "data/c.csv", "x,y\n")
    s3.put(bucket, "other/d.txt", "delta\n")
    return bucket


def test_protocol_and_install() -> None:
    storage = S3Storage()
    assert isinstance(storage, StorageProvider)
    assert storage.types == ("s3",)
    assert storage.is_installed()


def test_fnv1a32_matches_go_hash_fnv() -> None:
    # published FNV-1a 32-bit test vectors (also what Go's fnv.New32a gives)
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


@pytest.mark.parametrize("params, needle", [
    ({"Key": "x"}, "Params.Bucket"),
    ({"Bucket": "b", "Filter": "("}, "Filter is not a valid regex"),
    ({"Bucket": "b", "Key": "p/", "ChecksumSHA256": "A" * 43 + "="}, "need a Key naming one"),
    ({"Bucket": "b", "Key": "k", "ChecksumSHA256": "nope"}, "base64"),
    ({"Bucket": "b", "Partition": {"Type": "hash"}}, "Partition.Type"),
    ({"Bucket": "b", "Partition": {"Type": "regex"}}, "needs Partition.Pattern"),
    ({"Bucket": "b", "Partition": {"Type": "substring", "StartIndex": 3, "EndIndex": 1}},
     "StartIndex < EndIndex"),
    ({"Bucket": "b", "Partition": {"Type": "date"}}, "DateFormat"),
])
def test_check_names_each_problem(params: dict[str, Any], needle: str) -> None:
    problems = S3Storage().check(SpecConfig("s3", params))
    assert any(needle in p for p in problems), problems


def test_check_accepts_lowercase_params() -> None:
    # the Bacalhau CLI sends lower-case param names
    assert S3Storage().check(SpecConfig("s3", {"bucket": "b", "key": "k"})) == []


async def test_prefix_is_listed_and_keys_keep_their_paths(s3: Any, data: str,
                                                          tmp_path: Path) -> None:
    storage = S3Storage()
    src = s3_input(s3.endpoint, data, "data/")
    prepared = await storage.prepare(src, tmp_path)
    assert prepared.target == "/inputs"
    assert tree(prepared.host_path) == {"a.txt": b"alpha\n", "sub/b.txt": b"beta beta\n",
                                        "c.csv": b"x,y\n"}
    assert await storage.size(src.source) == len(b"alpha\nbeta beta\nx,y\n")
    await storage.cleanup(prepared)
    assert not prepared.host_path.exists()


async def test_star_strips_and_lands_relative_to_the_prefix_dir(s3: Any, data: str,
                                                                tmp_path: Path) -> None:
    prepared = await S3Storage().prepare(s3_input(s3.endpoint, data, "data/su*"), tmp_path)
    assert tree(prepared.host_path) == {"sub/b.txt": b"beta beta\n"}


async def test_filter_is_a_regex_on_the_key(s3: Any, data: str, tmp_path: Path) -> None:
    src = s3_input(s3.endpoint, data, "data/", Filter=r"\.txt$")
    prepared = await S3Storage().prepare(src, tmp_path)
    assert sorted(tree(prepared.host_path)) == ["a.txt", "sub/b.txt"]


async def test_empty_key_lists_the_whole_bucket(s3: Any, data: str, tmp_path: Path) -> None:
    prepared = await S3Storage().prepare(s3_input(s3.endpoint, data, ""), tmp_path)
    assert sorted(tree(prepared.host_path)) == ["data/a.txt", "data/c.csv", "data/sub/b.txt",
                                                "other/d.txt"]


async def test_single_object_with_checksum(s3: Any, data: str, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"alpha\n").digest()
    storage = S3Storage()
    for form in (base64.b64encode(digest).decode(), digest.hex()):
        src = s3_input(s3.endpoint, data, "data/a.txt", ChecksumSHA256=form)
        prepared = await storage.prepare(src, tmp_path)
        assert tree(prepared.host_path) == {"a.txt": b"alpha\n"}
        assert await storage.size(src.source) == 6


async def test_wrong_checksum_fails_clearly_and_leaves_nothing(s3: Any, data: str,
                                                              tmp_path: Path) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    actual = base64.b64encode(hashlib.sha256(b"alpha\n").digest()).decode()
    src = s3_input(s3.endpoint, data, "data/a.txt", target="/in/a", ChecksumSHA256=wrong)
    with pytest.raises(StorageError) as err:
        await S3Storage().prepare(src, tmp_path)
    message = str(err.value)
    assert f"s3://{data}/data/a.txt" in message and "/in/a" in message
    assert wrong in message and actual in message
    assert "the object changed or the checksum is wrong" in message
    assert list(tmp_path.iterdir()) == []


async def test_s3_checksum_of_the_object_is_compared_before_download(
        s3: Any, tmp_path: Path) -> None:
    bucket = s3.bucket("sum")
    answer = s3.put(bucket, "k.bin", b"payload", ChecksumAlgorithm="SHA256")
    assert answer["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"payload").digest()
                                                        ).decode()
    wrong = base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(StorageError, match="checksum mismatch") as err:
        await S3Storage().prepare(s3_input(s3.endpoint, bucket, "k.bin", ChecksumSHA256=wrong),
                                  tmp_path)
    assert answer["ChecksumSHA256"] in str(err.value)
    # the size probe the bidder runs sees it too, so the bid can be rejected
    with pytest.raises(InputMismatch, match="the object changed or the checksum is wrong"):
        await S3Storage().size(s3_input(s3.endpoint, bucket, "k.bin",
                                        ChecksumSHA256=wrong).source)


async def test_size_probe_leaves_unverifiable_checksums_to_the_download(
        s3: Any, data: str) -> None:
    """An object stored without an S3 checksum cannot be checked before it is read: the probe
    gives its size and the download verifies it (see the test above)."""
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    src = s3_input(s3.endpoint, data, "data/a.txt", ChecksumSHA256=wrong)
    assert await S3Storage().size(src.source) == 6


async def test_version_id_pins_an_older_version(s3: Any, tmp_path: Path) -> None:
    bucket = s3.bucket("ver")
    s3.client.put_bucket_versioning(Bucket=bucket,
                                    VersioningConfiguration={"Status": "Enabled"})
    first = s3.put(bucket, "v.txt", "one\n")["VersionId"]
    s3.put(bucket, "v.txt", "two\n")
    storage = S3Storage()
    old = await storage.prepare(s3_input(s3.endpoint, bucket, "v.txt", VersionID=first),
                                tmp_path / "old")
    new = await storage.prepare(s3_input(s3.endpoint, bucket, "v.txt"), tmp_path / "new")
    assert tree(old.host_path) == {"v.txt": b"one\n"}
    assert tree(new.host_path) == {"v.txt": b"two\n"}


async def test_missing_bucket_or_key_names_the_input(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"input \"s3://no-such-bucket-x/k\"") as err:
        await S3Storage().prepare(s3_input(s3.endpoint, "no-such-bucket-x", "k"), tmp_path)
    assert "credentials" in err.value.hint
    assert await S3Storage().size(SpecConfig("s3", {"Bucket": "no-such-bucket-x",
                                                    "Endpoint": s3.endpoint})) is None


# -- partitioning -----------------------------------------------------------------------------

KEYS = [f"logs/2024-01-{day:02d}/part-{n}.log" for day in (1, 2, 3) for n in range(4)]


@pytest.fixture
def logs(s3: Any) -> str:
    bucket = s3.bucket("part")
    for key in KEYS:
        s3.put(bucket, key, key)
    return bucket


async def partitions(s3: Any, bucket: str, tmp_path: Path, count: int,
                     partition: dict[str, Any] | None) -> list[set[str]]:
    storage = S3Storage()
    params = {"Partition": partition} if partition else {}
    out = []
    for index in range(count):
        prepared = await storage.prepare(s3_input(s3.endpoint, bucket, "logs/", **params),
                                         tmp_path / str(index), partition=(index, count))
        out.append(set(tree(prepared.host_path)))
    return out


@pytest.mark.parametrize("partition, key_of", [
    ({"Type": "object"}, lambda rel: rel),
    ({"Type": "regex", "Pattern": r"part-(\d)"}, lambda rel: rel.split("part-")[1][0]),
    ({"Type": "substring", "StartIndex": 0, "EndIndex": 10}, lambda rel: rel[:10]),
    ({"Type": "date", "DateFormat": "2006-01-02"}, lambda rel: rel[:10]),
])
async def test_partitions_split_objects_by_fnv_hash(
        s3: Any, logs: str, tmp_path: Path, partition: dict[str, Any], key_of: Any) -> None:
    count = 3
    parts = await partitions(s3, logs, tmp_path, count, partition)
    relative = [k[len("logs/"):] for k in KEYS]
    assert set().union(*parts) == set(relative)  # every object lands somewhere ...
    assert sum(len(p) for p in parts) == len(relative)  # ... exactly once
    for rel in relative:
        assert rel in parts[fnv1a32(key_of(rel).encode()) % count]


async def test_partition_none_gives_every_execution_everything(s3: Any, logs: str,
                                                               tmp_path: Path) -> None:
    parts = await partitions(s3, logs, tmp_path, 2, None)
    assert parts[0] == parts[1] == {k[len("logs/"):] for k in KEYS}


async def test_keys_without_a_partition_key_go_to_partition_zero(s3: Any, logs: str,
                                                                 tmp_path: Path) -> None:
    parts = await partitions(s3, logs, tmp_path, 3, {"Type": "regex", "Pattern": "nomatch"})
    assert len(parts[0]) == len(KEYS) and parts[1] == parts[2] == set()


def test_date_formats() -> None:
    assert date_regex("2006-01-02") == r"\d{4}\-\d{2}\-\d{2}"
    assert Partition.parse({"type": "date", "dateFormat": "%Y/%m/%d"}).key_of(
        "x/2024/05/06/y") == "2024/05/06"
    assert Partition.parse({"Type": "date", "DateFormat": "20060102"}).key_of("a_20240506.csv"
                                                                             ) == "20240506"


async def test_bidder_knows_the_disk_an_s3_prefix_needs_before_bidding(s3: Any,
                                                                       data: str) -> None:
    from bacalhau.compute.bidder import Bidder
    from bacalhau.config import Config
    from bacalhau.models import Execution, Job, Resources, Task
    from bacalhau.publishers.noop import NoopPublisher
    from tests.unit.test_compute_bidder import CheckingExecutor

    task = Task(name="main", engine=SpecConfig("test"), publisher=SpecConfig("noop"),
                input_sources=[s3_input(s3.endpoint, data, "data/")])
    job = Job(id="j-1", name="j", type="batch", tasks=[task])
    total = len(b"alpha\nbeta beta\nx,y\n")

    def bidder(disk: int) -> Bidder:
        return Bidder(Config(), {"test": CheckingExecutor()}, {"s3": S3Storage()},
                      {"noop": NoopPublisher()}, Resources(cpu=1, memory=10**9, disk=disk))

    fits = await bidder(10**6).bid(Execution(id="e-1", job_id=job.id, job=job))
    assert fits.accepted, fits.reasons
    assert fits.usage.disk == total
    too_small = await bidder(total - 1).bid(Execution(id="e-2", job_id=job.id, job=job))
    assert not too_small.accepted
    assert any("not have enough resources" in r for r in too_small.reasons)
