"""Runs INSIDE the aleph-cid venv (scripts/aleph_cid_venv.sh), never in the project venv.

Reads a JSON request on stdin: {"items": [{"path": str, "kind": "file" | "dir",
"cid_version": 0 | 1}], "repeat": int} and prints {"cids": [str], "seconds": [float]}: each
item's CID as aleph-cid computes it and the best wall time over `repeat` runs. Files go through
`CidHasher` (1 MiB reads), folders through `hash_folder` (which, like Kubo's HTTP add of a file
set, includes hidden files and leaves empty folders out).
"""

import json
import sys
import time

import aleph_cid


def file_cid(path: str, cid_version: int) -> str:
    hasher = (aleph_cid.CidHasher.for_ipfs() if cid_version == 0
              else aleph_cid.CidHasher.for_ipfs_v1_raw_leaves())
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            hasher.update(block)
    return hasher.finalize()


def one(item: dict) -> str:
    if item["kind"] == "file":
        return file_cid(item["path"], item["cid_version"])
    return aleph_cid.hash_folder(item["path"], cid_version=item["cid_version"],
                                 follow_symlinks=False)


def main() -> None:
    request = json.load(sys.stdin)
    cids, seconds = [], []
    for item in request["items"]:
        best = float("inf")
        for _ in range(max(1, int(request.get("repeat", 1)))):
            start = time.perf_counter()
            cid = one(item)
            best = min(best, time.perf_counter() - start)
        cids.append(cid)
        seconds.append(best)
    json.dump({"cids": cids, "seconds": seconds}, sys.stdout)


if __name__ == "__main__":
    main()
