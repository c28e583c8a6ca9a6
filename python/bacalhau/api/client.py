"""HTTP client for the Bacalhau v1 REST API (reference §3), async; `api.sync_client.Client` is
its blocking wrapper.

Every method returns the decoded wire JSON (plain dicts with Bacalhau's PascalCase keys), so
callers do not depend on the model classes. Failures from the server raise `ClientError`, whose
text is the server's `Message` followed by its `Hint`. Network failures surface as aiohttp's
`ClientConnectionError` / `asyncio.TimeoutError`; the CLI turns those into advice.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote

import orjson

from bacalhau.version import build_version_info

if TYPE_CHECKING:
    # Imported where used: a one-shot CLI command loads neither (see api.oneshot).
    import ssl

    import aiohttp

ORCHESTRATOR = "/api/v1/orchestrator"
AGENT = "/api/v1/agent"

T = TypeVar("T")

Params = list[tuple[str, str]]


class ClientError(Exception):
    """An error answer from the API, carrying the APIError body of reference §3.4."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.message: str = str(body.get("Message") or body.get("Error") or f"HTTP {status}")
        self.hint: str = str(body.get("Hint") or (AUTH_ENV_HINT if status == 401 else ""))
        self.code: str = str(body.get("Code") or "")
        self.request_id: str = str(body.get("RequestID") or "")
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message

    @classmethod
    def from_response(cls, status: int, raw: bytes) -> ClientError:
        """Build from an error response body, which is APIError JSON unless a proxy got in."""
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            text = raw.decode("utf-8", "replace").strip()
            body = {"Message": f"HTTP {status}: {text[:300]}" if text else f"HTTP {status}"}
        return cls(status, body)


AUTH_ENV_HINT = (
    "the node requires credentials: set BACALHAU_API_KEY (an API key, sent as a Bearer "
    "token) or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD (basic auth)"
)


def auth_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`Authorization` from BACALHAU_API_KEY (Bearer) or BACALHAU_API_USERNAME +
    BACALHAU_API_PASSWORD (Basic), as Bacalhau's CLI reads them; {} when none is set."""
    env = os.environ if environ is None else environ
    key = env.get("BACALHAU_API_KEY", "").strip()
    if key:
        return {"Authorization": f"Bearer {key}"}
    user, password = env.get("BACALHAU_API_USERNAME", ""), env.get("BACALHAU_API_PASSWORD", "")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def client_ssl_context(*, insecure: bool = False, ca_file: str = "") -> ssl.SSLContext:
    """Client TLS: the system CAs (plus `ca_file`), or no verification at all with `insecure`
    (self-signed test nodes)."""
    import ssl

    context = ssl.create_default_context(cafile=ca_file or None)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def version_headers() -> dict[str, str]:
    """The `X-Bacalhau-*` build headers every request carries (reference §3)."""
    info = build_version_info()
    return {
        "X-Bacalhau-Git-Version": str(info.get("GitVersion", "")),
        "X-Bacalhau-Git-Commit": str(info.get("GitCommit", "")),
        "X-Bacalhau-Build-Date": str(info.get("BuildDate", "")),
        "X-Bacalhau-Build-OS": str(info.get("GOOS", "")),
        "X-Bacalhau-Arch": str(info.get("GOARCH", "")),
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _params(**kwargs: Any) -> Params:
    """Query parameters: drops empty values, spells bools as Go does, repeats list values."""
    out: Params = []
    for key, value in kwargs.items():
        name = key.replace("__", "-")
        if value is None or value == "" or value is False or value == 0:
            continue
        if isinstance(value, bool):
            out.append((name, _flag(value)))
        elif isinstance(value, list | tuple):
            out.extend((name, str(v)) for v in value if v != "")
        else:
            out.append((name, str(value)))
    return out


def _seg(value: str) -> str:
    return quote(value, safe="")


class AsyncClient:
    """Async client of one Bacalhau node's API. Use as `async with AsyncClient(...) as c:`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1234,
        *,
        timeout: float = 30.0,
        tls: bool = False,
        headers: dict[str, str] | None = None,
        insecure: bool = False,
        ca_file: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls
        self.base_url = f"{'https' if tls else 'http'}://{host}:{port}"
        self._ws_base = f"{'wss' if tls else 'ws'}://{host}:{port}"
        merged = {**version_headers(), **(headers or {})}
        # Credentials go only to this API, never to result URLs (S3 presigned, other hosts).
        self._auth = {k: v for k, v in merged.items() if k.lower() == "authorization"}
        self._headers = {k: v for k, v in merged.items() if k.lower() != "authorization"}
        self._ssl: ssl.SSLContext | None = (
            client_ssl_context(insecure=insecure, ca_file=ca_file) if tls else None)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use so that it binds to the loop that uses it.
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
    ) -> Any:
        import aiohttp

        data = None
        headers = dict(self._auth)
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        async with self._get_session().request(
            method,
            self.base_url + path,
            params=params or None,
            data=data,
            headers=headers,
            ssl=self._ssl if self._ssl is not None else True,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise ClientError.from_response(resp.status, raw)
            return orjson.loads(raw) if raw else {}

    # ----------------------------------------------------------------- jobs (§3.1)

    async def put_job(self, job: dict[str, Any], force: bool = False) -> dict[str, Any]:
        """Submit (or update, by Name) a job. Returns `{"JobID","EvaluationID","Warnings"}`."""
        return await self._request("PUT", f"{ORCHESTRATOR}/jobs", body={"Job": job, "Force": force})

    async def job_diff(self, job: dict[str, Any]) -> dict[str, Any]:
        """Diff a spec against the stored job of the same Name: `{"Diff","Warnings"}`."""
        return await self._request("PUT", f"{ORCHESTRATOR}/jobs/diff", body={"Job": job})

    async def get_job(
        self,
        job_id: str,
        *,
        include: Iterable[str] = (),
        namespace: str = "",
        job_version: int = 0,
        limit: int = 0,
    ) -> dict[str, Any]:
        """`{"Job", "History"?, "Executions"?}`; include may name `history` and `executions`."""
        params = _params(
            include=",".join(include),
            namespace=namespace,
            job_version=job_version,
            limit=limit,
        )
        return await self._request("GET", f"{ORCHESTRATOR}/jobs/{_seg(job_id)}", params=params)

    async def list_jobs(
        self,
        *,
        namespace: str = "",
        limit: int = 0,
        next_token: str = "",
        order_by: str = "",
        reverse: bool = False,
        labels: Iterable[str] = (),
    ) -> dict[str, Any]:
        """`{"Items": [Job], "NextToken"}`."""
        params = _params(
            namespace=namespace,
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            reverse=reverse,
            labels=list(labels),
        )
        return await self._request("GET", f"{ORCHESTRATOR}/jobs", params=params)

    async def job_history(
        self,
        job_id: str,
        *,
        event_type: str = "all",
        execution_id: str = "",
        since: int = 0,
        job_version: int = 0,
        all_versions: bool = False,
        namespace: str = "",
        limit: int = 0,
        next_token: str = "",
        long_poll_ms: int = 0,
    ) -> dict[str, Any]:
        """`{"Items": [JobHistory], "NextToken"}`; the token stays while the job is active.
        `long_poll_ms` (this implementation's servers only; others ignore it) holds an empty
        page up to that long for the job's next event (`api.routes.history_wait`)."""
        params = _params(
            event_type=event_type,
            execution_id=execution_id,
            since=since,
            job_version=job_version,
            all_job_versions=all_versions,
            namespace=namespace,
            limit=limit,
            next_token=next_token,
            long_poll_ms=long_poll_ms,
        )
        return await self._request(
            "GET", f"{ORCHESTRATOR}/jobs/{_seg(job_id)}/history", params=params
        )

    async def job_executions(
        self,
        job_id: str,
        *,
        job_version: int = 0,
        all_versions: bool = False,
        order_by: str = "",
        reverse: bool = False,
        namespace: str = "",
        limit: int = 0,
        next_token: str = "",
    ) -> dict[str, Any]:
        """`{"Items": [Execution], "NextToken"}`."""
        params = _params(
            job_version=job_version,
            all_job_versions=all_versions,
            order_by=order_by,
            reverse=reverse,
            namespace=namespace,
            limit=limit,
            next_token=next_token,
        )
        return await self._request(
            "GET", f"{ORCHESTRATOR}/jobs/{_seg(job_id)}/executions", params=params
        )

    async def job_versions(self, job_id: str, *, namespace: str = "") -> dict[str, Any]:
        """`{"Items": [Job], "NextToken"}`, one item per version."""
        return await self._request(
            "GET",
            f"{ORCHESTRATOR}/jobs/{_seg(job_id)}/versions",
            params=_params(namespace=namespace),
        )

    async def job_results(self, job_id: str, *, namespace: str = "") -> dict[str, Any]:
        """`{"Items": [SpecConfig], "NextToken"}`: the published results of the latest version."""
        return await self._request(
            "GET",
            f"{ORCHESTRATOR}/jobs/{_seg(job_id)}/results",
            params=_params(namespace=namespace),
        )

    async def stop_job(
        self, job_id: str, reason: str = "", *, namespace: str = ""
    ) -> dict[str, Any]:
        """`{"EvaluationID"}` (empty when the job was already terminal)."""
        return await self._request(
            "DELETE",
            f"{ORCHESTRATOR}/jobs/{_seg(job_id)}",
            # The reference's body is {"reason"}; swagger documents a `reason` query param.
            params=_params(namespace=namespace, reason=reason),
            body={"reason": reason},
        )

    async def rerun_job(
        self, job_id: str, *, job_version: int = 0, reason: str = "", namespace: str = ""
    ) -> dict[str, Any]:
        """`{"EvaluationID","JobID","JobVersion","Warnings"}`."""
        return await self._request(
            "PUT",
            f"{ORCHESTRATOR}/jobs/{_seg(job_id)}/rerun",
            params=_params(namespace=namespace),
            body={"JobID": job_id, "JobVersion": job_version, "Reason": reason},
        )

    async def stream_logs(
        self,
        job_id: str,
        *,
        execution_id: str = "",
        follow: bool = False,
        tail: bool = False,
        job_version: int = 0,
        all_versions: bool = False,
        namespace: str = "",
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the `value` of each logs WebSocket frame: `{"Type": 1|2, "Line": str}`.

        A frame carrying `error` raises `ClientError` (status 0) with that text.
        """
        params = _params(
            execution_id=execution_id,
            follow=follow,
            tail=tail,
            job_version=job_version,
            all_job_versions=all_versions,
            namespace=namespace,
        )
        import aiohttp

        path = f"{ORCHESTRATOR}/jobs/{_seg(job_id)}/logs"
        session = self._get_session()
        try:
            ws = await session.ws_connect(
                self._ws_base + path,
                params=params or None,
                headers=self._auth,
                ssl=self._ssl if self._ssl is not None else True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.timeout),
                heartbeat=None,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise await self._handshake_error(path, params, exc) from None
        async with ws:
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    frame = orjson.loads(msg.data)
                    if frame.get("error"):
                        raise ClientError(0, {"Message": str(frame["error"])})
                    value = frame.get("value")
                    if value:
                        yield value
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise ClientError(0, {"Message": f"log stream failed: {ws.exception()}"})

    async def _handshake_error(
        self, path: str, params: Params, exc: aiohttp.WSServerHandshakeError
    ) -> ClientError:
        # The handshake error drops the body; ask again without the upgrade to read the
        # APIError (e.g. "job not found") that the server sends before upgrading.
        import aiohttp

        if exc.status >= 400:
            try:
                await self._request("GET", path, params=params)
            except ClientError as err:
                return err
            except aiohttp.ClientError:
                pass
        return ClientError(exc.status, {"Message": f"log stream refused: HTTP {exc.status}"})

    # ----------------------------------------------------------------- nodes (§3.1)

    async def list_nodes(
        self,
        *,
        limit: int = 0,
        next_token: str = "",
        order_by: str = "",
        reverse: bool = False,
        labels: Iterable[str] = (),
        filter_approval: str = "",
        filter_status: str = "",
    ) -> dict[str, Any]:
        """`{"Nodes": [NodeState], "NextToken"}`."""
        params = _params(
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            reverse=reverse,
            labels=list(labels),
            filter__approval=filter_approval,
            filter__status=filter_status,
        )
        return await self._request("GET", f"{ORCHESTRATOR}/nodes", params=params)

    async def get_node(self, node_id: str) -> dict[str, Any]:
        """`{"Node": NodeState}`; node_id may be a prefix."""
        return await self._request("GET", f"{ORCHESTRATOR}/nodes/{_seg(node_id)}")

    async def node_action(self, node_id: str, action: str, message: str = "") -> dict[str, Any]:
        """approve / reject / delete a node: `{"Success": bool, "Error"?}`."""
        return await self._request(
            "PUT",
            f"{ORCHESTRATOR}/nodes/{_seg(node_id)}",
            body={"Action": action, "Message": message, "NodeID": node_id},
        )

    # ----------------------------------------------------------------- agent (§3.2)

    async def agent_alive(self) -> dict[str, Any]:
        """`{"Status": "OK"}`."""
        return await self._request("GET", f"{AGENT}/alive")

    async def agent_version(self) -> dict[str, Any]:
        """BuildVersionInfo of the node."""
        return await self._request("GET", f"{AGENT}/version")

    async def agent_node(self) -> dict[str, Any]:
        """NodeInfo of the node."""
        return await self._request("GET", f"{AGENT}/node")

    async def agent_config(self) -> dict[str, Any]:
        """`{"config": {...}}` with secrets redacted."""
        return await self._request("GET", f"{AGENT}/config")

    # ----------------------------------------------------------------- results

    async def download(self, url: str, dest: Path, *, timeout: float = 300.0) -> Path:
        """HTTP GET `url` (a published result, not an API path) into the file `dest`."""
        import aiohttp

        dest.parent.mkdir(parents=True, exist_ok=True)
        async with self._get_session().get(
            url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            if resp.status >= 400:
                raw = await resp.read()
                err = ClientError.from_response(resp.status, raw)
                raise ClientError(
                    resp.status, {**err.body, "Message": f"downloading {url}: {err.message}"}
                )
            with dest.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(1 << 16):
                    fh.write(chunk)
        return dest
