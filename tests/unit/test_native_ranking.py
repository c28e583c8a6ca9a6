"""The native NodeTable and "not enough nodes" message, through the built module."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bacalhau import _native
from bacalhau._native import NodeTable, RankingError, not_enough_nodes_message

pytestmark = pytest.mark.unit


def node(node_id: str, **over: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "node_id": node_id,
        "engines": ["docker", "wasm"],
        "publishers": ["local", "s3"],
        "storages": ["s3", "urldownload"],
        "labels": {"region": "eu", "cores": "8"},
        "max_job": (4.0, 8_000_000_000, 100_000_000_000, 1),
        "max_capacity": (4.0, 8_000_000_000, 100_000_000_000, 1),
        "available": (4.0, 8_000_000_000, 100_000_000_000, 1),
        "queued": (0.0, 0, 0, 0),
        "version": (1, 5, 0),
    }
    facts.update(over)
    return facts


def job(**over: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "engine": "docker",
        "publisher": "local",
        "storages": [],
        "constraints": [],
        "resources": (0.5, 512_000_000, 0, 0),
        "previous": {},
        "min_version": (1, 0, 4),
    }
    req.update(over)
    return req


def table(*nodes: dict[str, Any]) -> NodeTable:
    t = NodeTable()
    for n in nodes:
        t.upsert(n)
    return t


def by_id(ranks: list[tuple[str, int, bool, str, bool]]) -> dict[str, tuple[int, bool, str, bool]]:
    return {r[0]: r[1:] for r in ranks}


def test_upsert_remove_len() -> None:
    t = table(node("n-1"), node("n-2"))
    assert len(t) == 2
    t.upsert(node("n-1", engines=["wasm"]))
    assert len(t) == 2
    t.remove("n-1")
    t.remove("n-unknown")
    assert len(t) == 1
    assert [r[0] for r in t.rank(job(), 0)] == ["n-2"]


def test_suitable_node_rank_is_the_chain_sum() -> None:
    [(node_id, rank, suitable, reason, retryable)] = table(node("n-1")).rank(job(), 1)
    assert node_id == "n-1" and suitable and reason == "" and not retryable
    # engines 10 + publishers 10 + storages 10 + labels 0 + max usage 10 + over-sub 0
    # + version 10 + previous 30 + capacity 100 + random 0..4
    assert 180 <= rank <= 184


@pytest.mark.parametrize(
    ("node_over", "job_over", "reason", "retryable"),
    [
        ({"engines": ["wasm"]}, {}, 'does not support engine "docker", only: wasm', False),
        ({}, {"publisher": "ipfs"}, 'does not support publisher "ipfs", only: local, s3', False),
        ({}, {"storages": ["ipfs"]}, 'does not support input source "ipfs"', False),
        ({}, {"constraints": [("region", "in", ["us"])]}, "label constraint region in (us)", False),
        (
            {"max_job": (0.2, 8e9, 1e11, 1)},
            {},
            "job requires more CPU (0.5) than the maximum available (0.2)",
            True,
        ),
        ({"available": (0, 0, 0, 0), "queued": (10, 0, 0, 0)}, {}, "node busy: CPU", True),
        ({"max_capacity": (0, 0, 0, 0)}, {}, "node busy", True),
        ({"version": (1, 0, 3)}, {}, "node version 1.0.3 is older than the minimum", False),
        ({}, {"previous": {"n-1": (2, False, False)}}, "already ran on this node 2 times", False),
        ({}, {"previous": {"n-1": (1, True, False)}}, "live execution", False),
        ({}, {"previous": {"n-1": (1, False, True)}}, "rejected a bid", False),
    ],
)
def test_each_ranker_rejects_with_its_reason(
    node_over: dict[str, Any], job_over: dict[str, Any], reason: str, retryable: bool
) -> None:
    [(_, rank, suitable, got, got_retryable)] = table(node("n-1", **node_over)).rank(
        job(**job_over), 0
    )
    assert (rank, suitable) == (-1, False)
    assert reason in got
    assert got_retryable is retryable


def test_soft_scores() -> None:
    base = by_id(table(node("n-1")).rank(job(), 5))["n-1"][0]
    ranks = by_id(
        table(node("n-1")).rank(
            job(
                constraints=[
                    ("cores", "gt", ["4"]),
                    ("favour_region", "=", ["eu"]),
                    ("favour_zone", "exists", []),
                ]
            ),
            5,
        )
    )
    assert ranks["n-1"][0] == base + 10 + 10  # hard match 10, one soft match 10
    one_ran = by_id(table(node("n-1")).rank(job(previous={"n-1": (1, False, False)}), 5))
    assert one_ran["n-1"][0] == base - 30
    no_resources = by_id(table(node("n-1")).rank(job(resources=(0, 0, 0, 0)), 5))
    assert no_resources["n-1"][0] == base - 10
    dev = by_id(table(node("n-1", version=(0, 0, 1))).rank(job(), 5))
    assert dev["n-1"][0] == base
    unknown = by_id(table(node("n-1", version=None)).rank(job(), 5))
    assert unknown["n-1"][0] == base - 10


@pytest.mark.parametrize(
    ("constraint", "matches"),
    [
        (("region", "in", ["eu", "us"]), True),
        (("region", "notin", ["eu"]), False),
        (("zone", "notin", ["a"]), True),
        (("region", "exists", []), True),
        (("zone", "!", []), True),
        (("region", "=", ["eu"]), True),
        (("region", "==", ["us"]), False),
        (("region", "!=", ["us"]), True),
        (("cores", "gt", ["8"]), False),
        (("cores", "lt", ["9"]), True),
        (["cores", "GT", ["2"]], True),
    ],
)
def test_selector_operators(constraint: Any, matches: bool) -> None:
    [r] = table(node("n-1")).rank(job(constraints=[constraint]), 0)
    assert r[2] is matches


def test_order_and_determinism() -> None:
    nodes = [node(f"n-{i:02d}", available=(i / 5, 8e9 * i / 20, 1e11, 1)) for i in range(20)]
    nodes[3]["engines"] = ["wasm"]
    nodes[7]["available"] = (0, 0, 0, 0)
    nodes[7]["queued"] = (10, 0, 0, 0)
    forward = table(*nodes)
    backward = table(*reversed(nodes))
    for seed in (0, 7, 2**64 - 1, -3):
        ranks = forward.rank(job(), seed)
        assert ranks == backward.rank(job(), seed) == forward.rank(job(), seed)
        keys = [(not r[2], -r[1], r[0]) for r in ranks]
        assert keys == sorted(keys)
        assert [r[0] for r in ranks if not r[2]] == ["n-03", "n-07"]


def test_bad_input_names_the_key() -> None:
    t = NodeTable()
    with pytest.raises(ValueError, match="node_id"):
        t.upsert({"engines": ["docker"]})
    with pytest.raises(TypeError, match="engines"):
        t.upsert(node("n-1", engines="docker"))
    with pytest.raises(ValueError, match="max_job"):
        t.upsert(node("n-1", max_job=(1, 2, 3)))
    with pytest.raises(TypeError, match="labels"):
        t.upsert(node("n-1", labels=["a"]))
    with pytest.raises(ValueError, match="max_jobs"):
        t.upsert({"node_id": "n-1", "max_jobs": (1, 1, 1, 1)})
    with pytest.raises(TypeError, match="NodeFacts"):
        t.upsert(["n-1"])  # type: ignore[arg-type]
    with pytest.raises(RankingError, match="max_capacity"):
        t.upsert(node("n-1", max_capacity=(-1, 0, 0, 0)))
    assert len(t) == 0
    t.upsert(node("n-1"))
    with pytest.raises(TypeError, match="constraints"):
        t.rank(job(constraints=["region=eu"]), 0)
    with pytest.raises(TypeError, match="previous"):
        t.rank(job(previous={"n-1": 1}), 0)
    with pytest.raises(ValueError, match="min_version"):
        t.rank(job(min_version=(1, 0)), 0)
    with pytest.raises(RankingError, match="unknown operator"):
        t.rank(job(constraints=[("region", "like", ["eu"])]), 0)
    with pytest.raises(RankingError, match="integer"):
        t.rank(job(constraints=[("cores", "gt", ["many"])]), 0)


def test_exceptions_are_exposed_once() -> None:
    assert issubclass(_native.RankingError, Exception)
    assert _native.RankingError.__module__ == "bacalhau._native"
    from bacalhau import errors

    assert errors.RankingError is _native.RankingError


def test_not_enough_nodes_message() -> None:
    t = table(
        node("n-aaaaaaaa-1111", engines=["wasm"]),
        node("n-bbbbbbbb-2222", available=(0, 0, 0, 0), queued=(10, 0, 0, 0)),
        node("n-cccccccc-3333", engines=["wasm"]),
        node("n-dddddddd-4444"),
    )
    msg = not_enough_nodes_message(3, t.rank(job(), 0))
    lines = msg.split("\n")
    assert lines[0] == "not enough nodes to run job. requested: 3, available: 4, suitable: 1."
    assert lines[1] == '• 2 of 4 nodes: does not support engine "docker", only: wasm'
    assert lines[2].startswith("• Node n-bbbbbbbb: node busy: CPU")
    assert len(lines) == 3
    assert not_enough_nodes_message(1, []) == (
        "not enough nodes to run job. requested: 1, available: 0, suitable: 0."
    )


def test_rank_releases_the_gil() -> None:
    t = table(*(node(f"n-{i}") for i in range(2000)))
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(len(t.rank(job(), 1)))) for _ in range(4)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [2000] * 4


def test_concurrent_upserts_and_ranks() -> None:
    t = table(*(node(f"n-{i}") for i in range(500)))
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(500, 1500):
                t.upsert(node(f"n-{i}"))
                if i % 3 == 0:
                    t.remove(f"n-{i - 400}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(50):
                ranks = t.rank(job(), 2)
                assert len({r[0] for r in ranks}) == len(ranks)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer),
        *(threading.Thread(target=reader) for _ in range(3)),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(t) == 1500 - len(range(501, 1500, 3))


# ---------------------------------------------------------------- rank(job, seed, limit)


def test_rank_with_limit_is_the_prefix_of_the_full_ranking() -> None:
    nodes = [node(f"n-{i:03d}", available=(i % 5, 8e9 * (i % 7) / 7, 1e11, 1)) for i in range(200)]
    for n in nodes[::9]:
        n["engines"] = ["wasm"]
    t = table(*nodes)
    full = t.rank(job(), 7)
    suitable = [r for r in full if r[2]]
    for limit in (0, 1, 5, 1000):
        r = t.rank(job(), 7, limit)
        assert isinstance(r, _native.Ranking)
        assert r.top == suitable[:limit]
        assert (r.available, r.suitable) == (200, len(suitable))
    assert t.rank(job(), 7, None).top == suitable
    r = t.rank(job(), 7, 3)
    assert r.reasons == [('does not support engine "docker", only: wasm', 23, "n-000", False)]
    assert not r.retryable
    assert r.message(300) == not_enough_nodes_message(300, full)


def test_ranking_counts_busy_nodes_per_dimension() -> None:
    t = table(
        node("n-aaaaaaaa-1", available=(0, 0, 0, 0), queued=(10, 0, 0, 0)),
        node("n-bbbbbbbb-2", available=(0, 0, 0, 0), queued=(20, 0, 0, 0)),
        node("n-cccccccc-3", engines=["wasm"]),
    )
    r = t.rank(job(), 0, 1)
    assert r.top == [] and r.retryable
    assert r.message(1).split("\n") == [
        "not enough nodes to run job. requested: 1, available: 3, suitable: 0.",
        "• 2 of 3 nodes: node busy: CPU in use and queued with this job exceeds the limit",
        '• Node n-cccccccc: does not support engine "docker", only: wasm',
    ]
    with pytest.raises(TypeError, match="limit"):
        t.rank(job(), 0, "two")  # type: ignore[call-overload]


def test_classes_and_capacity_updates() -> None:
    t = table(*(node(f"n-{i}") for i in range(50)), node("n-x", labels={"region": "us"}))
    assert len(t) == 51 and t.class_count() == 2
    assert t.update_capacity("n-1", (4, 8e9, 1e11, 1), (0, 0, 0, 0), (10, 0, 0, 0))
    assert not t.update_capacity("n-unknown", (1, 1, 1, 1), (1, 1, 1, 1), (0, 0, 0, 0))
    assert by_id(t.rank(job(), 0))["n-1"][1] is False  # now busy
    with pytest.raises(RankingError, match="available"):
        t.update_capacity("n-1", (1, 1, 1, 1), (-1, 1, 1, 1), (0, 0, 0, 0))
    t.remove("n-x")
    assert t.class_count() == 1
