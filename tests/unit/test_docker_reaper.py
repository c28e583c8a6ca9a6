"""The background container remover: order, failures, and waiting for it to drain."""

from __future__ import annotations

from bacalhau.executors.docker_reaper import ContainerReaper


def test_containers_are_removed_in_order_and_a_failure_does_not_stop_the_rest() -> None:
    removed: list[str] = []

    def remove(container: str) -> None:
        if container == "bad":
            raise RuntimeError("engine said no")
        removed.append(container)

    reaper = ContainerReaper(remove)
    for container in ("a", "bad", "b", "c"):
        reaper.submit(container)
    assert reaper.wait_idle(5)
    assert removed == ["a", "b", "c"]


def test_wait_idle_with_nothing_queued_returns_at_once() -> None:
    assert ContainerReaper(lambda c: None).wait_idle(0)
