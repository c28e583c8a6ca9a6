"""Input sources behind one `StorageProvider` protocol (see `base.py`): `inline`, `local` /
`localDirectory` and `urlDownload`. A provider may serve several type names (`types`)."""

from bacalhau.storage.base import StorageProvider, describe_input
from bacalhau.storage.inline import InlineStorage
from bacalhau.storage.local import LocalStorage
from bacalhau.storage.url import URLDownloadStorage, URLStorage

__all__ = [
    "InlineStorage",
    "LocalStorage",
    "StorageProvider",
    "URLDownloadStorage",
    "URLStorage",
    "describe_input",
]
