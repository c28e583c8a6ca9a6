"""Input sources behind one `StorageProvider` protocol (see `base.py`): `inline`, `local` /
`localDirectory`, `urlDownload` and `s3`. A provider may serve several type names (`types`)."""

from bacalhau.storage.base import StorageProvider, describe_input
from bacalhau.storage.inline import InlineStorage
from bacalhau.storage.local import LocalStorage
from bacalhau.storage.s3 import S3Storage
from bacalhau.storage.url import URLDownloadStorage, URLStorage

__all__ = [
    "InlineStorage",
    "LocalStorage",
    "S3Storage",
    "StorageProvider",
    "URLDownloadStorage",
    "URLStorage",
    "describe_input",
]
