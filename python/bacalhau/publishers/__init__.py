"""Result publishers behind one `Publisher` protocol (see `base.py`): `local` (tar.gz served
over HTTP) and `noop`."""

from bacalhau.publishers.base import Publisher
from bacalhau.publishers.local import LocalPublisher
from bacalhau.publishers.noop import NoopPublisher

__all__ = ["LocalPublisher", "NoopPublisher", "Publisher"]
