"""Result publishers behind one `Publisher` protocol (see `base.py`): `local` (tar.gz served
over HTTP), `s3` and `noop`."""

from bacalhau.publishers.base import Publisher
from bacalhau.publishers.local import LocalPublisher
from bacalhau.publishers.noop import NoopPublisher
from bacalhau.publishers.s3 import S3Publisher

__all__ = ["LocalPublisher", "NoopPublisher", "Publisher", "S3Publisher"]
