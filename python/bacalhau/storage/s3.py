"""The `s3` input source: objects of an S3 (or S3-compatible) bucket fetched before the run.

Params (reference §4.2, case-insensitive): `Bucket` (required), `Key`, `Filter`, `Region`,
`Endpoint`, `VersionID`, `ChecksumSHA256`, `Partition` `{Type, Pattern, StartIndex, EndIndex,
DateFormat}`.

* A `Key` not ending in `/` or `*` names one object: HeadObject (with `VersionID` if given),
  then GetObject; a `ChecksumSHA256` (base64, as S3 reports it, or hex) is compared with the
  object's S3 checksum when it has one and always with the SHA-256 of the downloaded bytes.
* Otherwise the key is a prefix (a trailing `*` is stripped; empty = whole bucket), listed
  page by page; directory markers (keys ending in `/`) are skipped and `Filter` is a regex
  searched in each full key.
* Objects are written under a per-input directory, at their key relative to the prefix's
  directory (`data/2024/a.txt` with prefix `data/20` lands at `2024/a.txt`), and that
  directory is mounted at `Target`. Keys that would leave it (`..`) are refused.
* With a job `Count` > 1 the runner passes `partition=(index, count)`: each object goes to
  the execution `fnv1a32(partition key) % count`; the partition key is, by `Partition.Type`,
  the whole relative key (`object`), the regex capture groups of `Pattern` joined (or the
  whole match; `regex`), `key[StartIndex:EndIndex]` (`substring`) or the date found in the key
  by `DateFormat` (`date`; Go layouts such as `2006-01-02` or strftime patterns). Objects whose
  key yields no partition key go to partition 0. `none` (the default) gives every execution
  every object.

`size()` sums the objects' sizes (the bidder's disk estimate), before any partitioning.
Credentials come from the standard AWS chain (`bacalhau.s3client`); blocking boto3 calls run
in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bacalhau import s3client
from bacalhau.errors import InputMismatch, StorageError
from bacalhau.executors.base import PreparedInput
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage.base import describe_input

CHUNK = 1 << 20
PARTITION_TYPES = ("none", "object", "regex", "substring", "date")
_DIR_PREFIX = "s3-"

# Go reference-time layout elements -> (strftime directive, regex of what it matches)
_GO_LAYOUT = [
    ("2006", "%Y", r"\d{4}"), ("January", "%B", r"[A-Za-z]+"), ("Jan", "%b", r"[A-Za-z]{3}"),
    ("01", "%m", r"\d{2}"), ("02", "%d", r"\d{2}"), ("15", "%H", r"\d{2}"),
    ("04", "%M", r"\d{2}"), ("05", "%S", r"\d{2}"), ("06", "%y", r"\d{2}"),
]
_STRFTIME = {"Y": r"\d{4}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
             "S": r"\d{2}", "y": r"\d{2}", "j": r"\d{3}", "b": r"[A-Za-z]{3}",
             "B": r"[A-Za-z]+", "%": "%"}


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a, as Go's `hash/fnv.New32a` (Bacalhau's partition hash)."""
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def date_regex(date_format: str) -> str:
    """A regex matching dates written in `date_format` (a Go layout or a strftime pattern)."""
    out, i = [], 0
    if "%" in date_format:
        while i < len(date_format):
            ch = date_format[i]
            if ch == "%" and i + 1 < len(date_format):
                out.append(_STRFTIME.get(date_format[i + 1], re.escape(date_format[i:i + 2])))
                i += 2
            else:
                out.append(re.escape(ch))
                i += 1
        return "".join(out)
    while i < len(date_format):
        for token, _, pattern in _GO_LAYOUT:
            if date_format.startswith(token, i):
                out.append(pattern)
                i += len(token)
                break
        else:
            out.append(re.escape(date_format[i]))
            i += 1
    return "".join(out)


@dataclass(slots=True)
class Partition:
    """`Partition` params of an s3 source, validated."""

    type: str = "none"
    pattern: str = ""
    start: int = 0
    end: int = 0
    date_format: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Partition:
        """From the `Partition` param; raises ValueError with the problem."""
        if raw in (None, "", {}):
            return cls()
        if not isinstance(raw, dict):
            raise ValueError("Partition must be an object {Type, Pattern, StartIndex, "
                             "EndIndex, DateFormat}")
        spec = SpecConfig("partition", raw)
        kind = str(spec.param("Type") or "none").strip().lower()
        if kind not in PARTITION_TYPES:
            raise ValueError(f'Partition.Type "{spec.param("Type")}" is not one of '
                             + ", ".join(PARTITION_TYPES))
        part = cls(type=kind, pattern=str(spec.param("Pattern") or ""),
                   date_format=str(spec.param("DateFormat") or ""))
        try:
            part.start = int(spec.param("StartIndex") or 0)
            part.end = int(spec.param("EndIndex") or 0)
        except (TypeError, ValueError):
            raise ValueError("Partition.StartIndex and EndIndex must be integers") from None
        if kind == "regex":
            if not part.pattern:
                raise ValueError("Partition.Type regex needs Partition.Pattern")
            try:
                re.compile(part.pattern)
            except re.error as exc:
                raise ValueError(f"Partition.Pattern is not a valid regex: {exc}") from None
        if kind == "substring" and not (0 <= part.start < part.end):
            raise ValueError("Partition.Type substring needs 0 <= StartIndex < EndIndex")
        if kind == "date" and not part.date_format:
            raise ValueError("Partition.Type date needs Partition.DateFormat (e.g. 2006-01-02)")
        return part

    def key_of(self, relative_key: str) -> str | None:
        """The string hashed for an object, or None (-> partition 0)."""
        if self.type == "object":
            return relative_key
        if self.type == "regex":
            match = re.search(self.pattern, relative_key)
            if match is None:
                return None
            groups = [g for g in match.groups() if g is not None]
            return "".join(groups) if match.re.groups else match.group(0)
        if self.type == "substring":
            if self.end > len(relative_key):
                return None
            return relative_key[self.start:self.end]
        if self.type == "date":
            match = re.search(date_regex(self.date_format), relative_key)
            return match.group(0) if match else None
        return None

    def index_of(self, relative_key: str, count: int) -> int:
        key = self.key_of(relative_key)
        if key is None:
            return 0
        return fnv1a32(key.encode()) % count


@dataclass(slots=True)
class S3Object:
    key: str
    size: int
    relative: str  # where it lands under the input's directory


def _decode_checksum(value: str) -> bytes | None:
    """The 32 digest bytes of a base64 (S3's form) or hex SHA-256 checksum, or None."""
    text = value.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _is_single_object(key: str) -> bool:
    return bool(key) and not key.endswith(("/", "*"))


def _prefix_dir(prefix: str) -> str:
    """The 'directory' part of a key prefix: `data/20` -> `data/`, `data/` -> `data/`."""
    return prefix[: prefix.rfind("/") + 1]


def _relative(key: str, prefix_dir: str) -> str | None:
    """The object's path under the input's directory, or None when it would escape it."""
    rel = key[len(prefix_dir):] if key.startswith(prefix_dir) else key
    parts = PurePosixPath(rel).parts
    if not parts or any(p in ("..", ".") for p in parts) or rel.startswith("/"):
        return None
    return str(PurePosixPath(*parts))


class S3Storage:
    """Fetches `s3` inputs with boto3 (standard AWS credential chain)."""

    types = ("s3",)
    # the runner passes `partition=(index, count)` to prepare()
    wants_partition = True

    def is_installed(self) -> bool:
        return s3client.boto3_available()

    def check(self, source: SpecConfig, *, read_write: bool = False) -> list[str]:
        problems: list[str] = []
        bucket = source.param("Bucket")
        if not isinstance(bucket, str) or not bucket.strip():
            problems.append("s3 source needs Params.Bucket, the bucket name")
        key = source.param("Key")
        if key is not None and not isinstance(key, str):
            problems.append("s3 source Params.Key must be a string")
        if read_write:
            problems.append("s3 sources are read-only: drop ReadWrite")
        flt = source.param("Filter")
        if flt:
            try:
                re.compile(str(flt))
            except re.error as exc:
                problems.append(f"s3 source Params.Filter is not a valid regex: {exc}")
        checksum = source.param("ChecksumSHA256")
        if checksum and _decode_checksum(str(checksum)) is None:
            problems.append("s3 source Params.ChecksumSHA256 must be a SHA-256 digest in "
                            "base64 (as S3 reports it) or hex")
        if (checksum or source.param("VersionID")) and not _is_single_object(str(key or "")):
            problems.append("s3 source ChecksumSHA256/VersionID need a Key naming one object "
                            "(not a prefix ending in / or *)")
        try:
            Partition.parse(source.param("Partition"))
        except ValueError as exc:
            problems.append(f"s3 source {exc}")
        return problems

    async def size(self, source: SpecConfig) -> int | None:
        if self.check(source):
            return None
        try:
            objects = await asyncio.to_thread(self._objects, source)
        except InputMismatch:
            raise  # S3 itself reports another checksum: the bidder rejects the bid
        except StorageError:
            return None
        return sum(o.size for o in objects)

    async def prepare(self, input_source: InputSource, work_dir: Path, *,
                      partition: tuple[int, int] = (0, 1)) -> PreparedInput:
        what = describe_input(input_source)
        source = input_source.source
        problems = self.check(source)
        if problems:
            raise StorageError(f"{what}: {problems[0]}")
        objects = await asyncio.to_thread(self._objects, source, what)
        index, count = partition
        if count > 1:
            part = Partition.parse(source.param("Partition"))
            if part.type != "none":
                objects = [o for o in objects if part.index_of(o.relative, count) == index]
        root = Path(work_dir) / f"{_DIR_PREFIX}{uuid.uuid4().hex[:12]}"
        root.mkdir(parents=True)
        try:
            await asyncio.to_thread(self._download, source, objects, root, what)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return PreparedInput(source=input_source, host_path=root, target=input_source.target)

    async def cleanup(self, prepared: PreparedInput) -> None:
        if prepared.host_path.name.startswith(_DIR_PREFIX):
            await asyncio.to_thread(shutil.rmtree, prepared.host_path, True)

    # -- blocking parts (worker threads) -------------------------------------------------------

    def _where(self, source: SpecConfig) -> str:
        endpoint = source.param("Endpoint")
        return f"s3://{source.param('Bucket')}/{source.param('Key') or ''}" + (
            f" at {endpoint}" if endpoint else "")

    def _fail(self, what: str, source: SpecConfig, exc: Exception) -> StorageError:
        return StorageError(
            f"{what}: cannot read {self._where(source)}: {s3client.error_text(exc)}",
            hint="check the bucket, key, region and endpoint, and that this node's AWS "
                 "credentials (environment, shared files or instance role) may read them")

    def _objects(self, source: SpecConfig, what: str = "s3 input") -> list[S3Object]:
        """The objects the source names (one, or a listing), with their landing paths."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = s3client.client_for(source)
        bucket = str(source.param("Bucket"))
        key = str(source.param("Key") or "")
        try:
            if _is_single_object(key):
                args: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
                if version := source.param("VersionID"):
                    args["VersionId"] = str(version)
                head = client.head_object(**args)
                self._check_head(source, head, what)
                rel = _relative(key, _prefix_dir(key))
                if rel is None:
                    raise StorageError(f'{what}: object key "{key}" cannot be written safely')
                return [S3Object(key, int(head.get("ContentLength", 0)), rel)]
            prefix = key[:-1] if key.endswith("*") else key
            pattern = re.compile(str(source.param("Filter"))) if source.param("Filter") else None
            base = _prefix_dir(prefix)
            found: list[S3Object] = []
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix)
            for page in pages:
                for item in page.get("Contents") or []:
                    name = item["Key"]
                    if name.endswith("/") or (pattern and not pattern.search(name)):
                        continue
                    rel = _relative(name, base)
                    if rel is None:
                        raise StorageError(
                            f'{what}: object key "{name}" would be written outside the '
                            "input's directory; refusing it",
                            hint="use a Filter that leaves such keys out")
                    found.append(S3Object(name, int(item.get("Size", 0)), rel))
            return found
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(what, source, exc) from exc

    def _check_head(self, source: SpecConfig, head: dict[str, Any], what: str) -> None:
        expected = source.param("ChecksumSHA256")
        reported = head.get("ChecksumSHA256")
        if not expected or not reported or "-" in str(reported):  # multipart: not comparable
            return
        if _decode_checksum(str(expected)) != _decode_checksum(str(reported)):
            raise self._mismatch(source, what, str(expected), str(reported))

    def _mismatch(self, source: SpecConfig, what: str, expected: str,
                  actual: str) -> StorageError:
        return InputMismatch(
            f"{what}: checksum mismatch for {self._where(source)}: expected ChecksumSHA256 "
            f"{expected} but the object has {actual}; the object changed or the checksum is "
            "wrong",
            hint="fix ChecksumSHA256 in the job's input source, or pin the object with "
                 "VersionID")

    def _download(self, source: SpecConfig, objects: list[S3Object], root: Path,
                  what: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = s3client.client_for(source)
        bucket = str(source.param("Bucket"))
        expected = source.param("ChecksumSHA256")
        for obj in objects:
            dest = root / obj.relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            args: dict[str, Any] = {"Bucket": bucket, "Key": obj.key}
            if (version := source.param("VersionID")) and len(objects) == 1:
                args["VersionId"] = str(version)
            digest = hashlib.sha256()
            try:
                body = client.get_object(**args)["Body"]
                with dest.open("wb") as f:
                    for chunk in body.iter_chunks(CHUNK):
                        digest.update(chunk)
                        f.write(chunk)
            except (ClientError, BotoCoreError) as exc:
                raise self._fail(what, source, exc) from exc
            if expected and digest.digest() != _decode_checksum(str(expected)):
                actual = base64.b64encode(digest.digest()).decode()
                raise self._mismatch(source, what, str(expected), actual)
