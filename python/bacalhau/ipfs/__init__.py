"""IPFS: a Kubo RPC client (`client.py`) and an embedded Kubo node in a child process
(`embedded.py`, `worker.py`), used by the `ipfs` input source, the `ipfs` publisher and
`job get`. CIDs are made with Kubo's default import settings, so they equal `bacalhau cid`."""

from bacalhau.ipfs.client import IpfsClient, IpfsError, IpfsTimeout, endpoint_url, is_cid
from bacalhau.ipfs.embedded import EmbeddedIpfs

__all__ = ["EmbeddedIpfs", "IpfsClient", "IpfsError", "IpfsTimeout", "endpoint_url", "is_cid"]
