"""An independent libp2p peer (py-libp2p, on trio) that joins a bacalhau-py node and waits for
its NodeInfo on gossipsub: the interop proof of tests/integration/test_libp2p_interop.py.

Runs in the SEPARATE venv made by scripts/p2p_interop_venv.sh (it must not import bacalhau):

    $(scripts/p2p_interop_venv.sh) scripts/p2p_interop_client.py \\
        /ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW... [timeout_s]

Stack: TCP + Noise + yamux, gossipsub /meshsub/1.1.0 with signed messages (strict signing),
no swarm key (py-libp2p's PSK layer is not interoperable with go/rust pnet, so the network
must be open). Prints one JSON line: {"ok": true, "from": <signer peer id>, "topic": ...,
"node_id": <NodeInfo.NodeID>, "node_type": ..., "self": <our peer id>, "protocol": ...} and
exits 0, or {"ok": false, "error": ...} and exits 1.
"""

from __future__ import annotations

import json
import sys
import zlib

import multiaddr
import trio

TOPIC = "bacalhau/node-info/1"


def decode_envelope(data: bytes) -> dict:
    """bacalhau's envelope: version byte 1, big-endian CRC-32 of the rest, JSON body."""
    if len(data) < 5 or data[0] != 1:
        raise ValueError("not a version-1 bacalhau envelope")
    if int.from_bytes(data[1:5], "big") != zlib.crc32(data[5:]):
        raise ValueError("envelope checksum mismatch")
    return json.loads(data[5:])


async def main(target: str, timeout: float) -> dict:
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service import background_trio_service

    host = new_host(key_pair=create_new_key_pair(), muxer_preference="YAMUX")
    gossipsub = GossipSub(protocols=[PROTOCOL_ID_V11, PROTOCOL_ID], degree=6, degree_low=4,
                          degree_high=12, heartbeat_interval=1)
    pubsub = Pubsub(host, gossipsub, strict_signing=True)
    result: dict = {"ok": False, "self": str(host.get_id())}
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    async with (host.run(listen_addrs=listen), background_trio_service(pubsub),
                background_trio_service(gossipsub)):
        await pubsub.wait_until_ready()
        subscription = await pubsub.subscribe(TOPIC)
        info = info_from_p2p_addr(multiaddr.Multiaddr(target))
        with trio.move_on_after(timeout) as scope:
            await host.connect(info)
            result["connected"] = True
            message = await subscription.get()
            doc = decode_envelope(message.data)
            node = (doc.get("payload") or {}).get("NodeInfo") or {}
            result.update(ok=True, topic=TOPIC, signer=str(ID(message.from_id)),
                          node_id=node.get("NodeID"), node_type=node.get("NodeType"),
                          signed=bool(message.signature),
                          protocol=str(gossipsub.peer_protocol.get(info.peer_id, "")))
        if scope.cancelled_caught:
            result["error"] = f"no NodeInfo on {TOPIC} within {timeout:g}s"
    return result


if __name__ == "__main__":
    target_addr = sys.argv[1]
    wait_s = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    try:
        outcome = trio.run(main, target_addr, wait_s)
    except Exception as exc:  # reported, not raised: the test prints the reason
        outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(outcome), flush=True)
    sys.exit(0 if outcome.get("ok") else 1)
