"""The docker engine's images: is an image here or pullable (bid time), and pull it (run time).

Bid time (`problem`): present locally (cached `LOCAL_CACHE_S`), else the registry is asked for
its manifest (`docker manifest inspect`, no pull; the answer is cached `REMOTE_OK_CACHE_S` when
the image exists, `REMOTE_FAIL_CACHE_S` when not). A registry that does not answer within
`IMAGE_PROBE_TIMEOUT_S` does not refuse the bid: the pull at run time decides. With env
`SKIP_IMAGE_PULL` set, only local images run.

Registry credentials: config `Engines.Types.Docker.Registries`, a map from registry host
(`docker.io` for Docker Hub, `ghcr.io`, `localhost:5000`, ...) to `{Username, Password}`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from bacalhau.errors import ExecutorError
from bacalhau.executors.base import in_daemon_thread
from bacalhau.executors.docker_spec import explain

log = logging.getLogger(__name__)

IMAGE_PROBE_TIMEOUT_S = 10.0
LOCAL_CACHE_S = 10.0
REMOTE_OK_CACHE_S = 3600.0
REMOTE_FAIL_CACHE_S = 60.0


class DockerImages:
    """Image checks and pulls over the engine's API, with the node's registry credentials."""

    def __init__(self, api: Callable[[], Any], registries: Mapping[str, Any] | None = None
                 ) -> None:
        """`api()` gives the engine's APIClient (connected on first use)."""
        self._api = api
        self._registries = {str(k).lower(): v for k, v in (registries or {}).items()}
        self._local: dict[str, float] = {}  # image -> time seen locally
        self._remote: dict[str, tuple[float, str]] = {}  # image -> (time, problem)

    async def problem(self, image: str) -> str:
        """Bid time: "" when `image` is here or its registry has it, else the reason."""
        now = time.monotonic()
        seen = self._local.get(image)
        if seen is not None and now - seen < LOCAL_CACHE_S:
            return ""
        remote = self._remote.get(image)
        probe = in_daemon_thread("docker-image-probe", self._probe_image, image,
                           remote if remote and now - remote[0] < (
                               REMOTE_FAIL_CACHE_S if remote[1] else REMOTE_OK_CACHE_S)
                           else None)
        try:
            async with asyncio.timeout(IMAGE_PROBE_TIMEOUT_S):
                return await asyncio.shield(probe)
        except TimeoutError:
            log.info("registry did not answer for %s within %gs; the pull will tell", image,
                     IMAGE_PROBE_TIMEOUT_S)
            return ""

    def _probe_image(self, image: str, cached_remote: tuple[float, str] | None) -> str:
        """Blocking: "" when `image` is here or pullable, else the reason."""
        import docker.errors

        try:
            self._api().inspect_image(image)
            self._local[image] = time.monotonic()
            return ""
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            return f"this node cannot check image {image}: {explain(exc)}"
        if os.environ.get("SKIP_IMAGE_PULL"):
            return (f"image {image} is not available locally and image pulls are disabled "
                    "on this node (SKIP_IMAGE_PULL)")
        if cached_remote is not None:
            return cached_remote[1]
        try:
            self._api().inspect_distribution(image, auth_config=self.auth_for(image))
            problem = ""
        except docker.errors.APIError as exc:
            problem = (f"image {image} is not available locally and could not be pulled: "
                       f"{explain(exc)}")
        self._remote[image] = (time.monotonic(), problem)
        return problem

    def auth_for(self, image: str) -> dict[str, str] | None:
        """The registry credentials for `image` from `Engines.Types.Docker.Registries`."""
        from docker.auth import INDEX_NAME, resolve_repository_name
        from docker.utils import parse_repository_tag

        repository, _ = parse_repository_tag(image)
        try:
            registry, _ = resolve_repository_name(repository)
        except Exception:
            return None
        names = [registry.lower()]
        if registry == INDEX_NAME:
            names += ["index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"]
        for name in names:
            entry = self._registries.get(name)
            if isinstance(entry, Mapping):
                creds = {str(k).lower(): str(v) for k, v in entry.items()}
                auth = {"username": creds.get("username", ""),
                        "password": creds.get("password", ""), "serveraddress": registry}
                if creds.get("identitytoken"):
                    auth["identitytoken"] = creds["identitytoken"]
                return auth
        return None

    def ensure(self, image: str) -> None:
        """Blocking: the image is here afterwards, or ExecutorError says why not."""
        import docker.errors
        from docker.utils import parse_repository_tag

        try:
            self._api().inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise ExecutorError(f"could not inspect image {image}: {explain(exc)}") from exc
        prefix = f"image {image} is not available locally and could not be pulled: "
        if os.environ.get("SKIP_IMAGE_PULL"):
            raise ExecutorError(prefix + "image pulls are disabled on this node "
                                "(SKIP_IMAGE_PULL)")
        repository, tag = parse_repository_tag(image)
        log.info("pulling image %s", image)
        try:
            for event in self._api().pull(repository, tag=tag or "latest", stream=True,
                                       decode=True, auth_config=self.auth_for(image)):
                if isinstance(event, dict) and event.get("error"):
                    raise ExecutorError(prefix + str(event["error"]),
                                        hint=_pull_hint(image))
        except docker.errors.APIError as exc:
            self._remote[image] = (time.monotonic(), prefix + explain(exc))
            raise ExecutorError(prefix + explain(exc), hint=_pull_hint(image)) from exc
        self._local[image] = time.monotonic()


def _pull_hint(image: str) -> str:
    return (f"check the image name, or make {image} available on the node (docker pull / "
            "docker load), or give the node registry credentials in "
            "Engines.Types.Docker.Registries")
