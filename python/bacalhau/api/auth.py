"""Who may call the API: users from `API.Auth.Users`, their credentials and capabilities, and
the middleware that checks each request (Bacalhau 1.7+ basic-auth / API-key users, reference §9).

Without users the API is anonymous (everything allowed), as in Bacalhau; `warn_if_exposed`
says so loudly when such a node listens beyond loopback. With users, every request except the
open endpoints must carry `Authorization: Basic b64(user:password)` or `Authorization: Bearer
<api key>`; a missing or wrong credential is a 401, a user lacking the capability a 403, both
APIError bodies with `Details.reason`.

Capabilities are `<read|write>:<job|node|agent>` with the wildcards `read:*`, `write:*`,
`*:<resource>` and `*`. GET/HEAD need `read`, any other method `write`. The resource comes
from the path: `/api/v1/orchestrator/jobs` job, `/api/v1/orchestrator/nodes` node,
`/api/v1/agent` agent; any other `/api/` path needs `write:node`. Paths outside `/api/` (the
web UI's static files, the legacy redirects to open endpoints) carry no data and stay open.

Browsers cannot set headers on a WebSocket, so the web UI offers its API key as a subprotocol
pair on the logs WebSocket: `Sec-WebSocket-Protocol: bacalhau-auth, <base64url(key)>` (see
`websocket_credential`). The logs route echoes only `bacalhau-auth`, never the key. Unlike a
query parameter, the key never lands in a URL (access logs, proxies, history); unlike a ticket
from a `POST`, it needs no server state and no `write` capability for a read-only user.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bacalhau.config import Config
from bacalhau.errors import BacalhauError, ConfigError, UnauthorizedError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

USERS_KEY = "API.Auth.Users"
WS_AUTH_PROTOCOL = "bacalhau-auth"
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
OPEN_PATHS = frozenset({
    "/api/v1/auth",
    "/api/v1/version",
    "/api/v1/agent/alive",
    "/api/v1/agent/version",
    "/api/v1/agent/authconfig",
    "/api/v1/openapi.json",
})
OPEN_PREFIXES = ("/api/v1/auth/",)
RESOURCES = (
    ("/api/v1/orchestrator/jobs", "job"),
    ("/api/v1/orchestrator/nodes", "node"),
    ("/api/v1/agent", "agent"),
)
CAPABILITIES = frozenset(
    f"{verb}:{resource}" for verb in ("read", "write") for resource in ("job", "node", "agent")
)
_WILDCARDS = frozenset({"*", "read:*", "write:*", "*:job", "*:node", "*:agent"})
_USERNAME = re.compile(r"^[A-Za-z0-9]{1,100}$")
_BCRYPT = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")

ENV_HINT = (
    "this node requires credentials: set BACALHAU_API_KEY (sent as a Bearer token) or "
    "BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD (basic auth) for the CLI"
)
AUTH_USER: Any = (
    web.RequestKey("auth_user", str) if hasattr(web, "RequestKey") else "bacalhau.auth_user"
)


class ForbiddenError(BacalhauError):
    status = 403
    code = "Forbidden"
    component = "APIServer"


@dataclass(slots=True)
class User:
    """One configured API user: exactly one of a password (plain or bcrypt) or an API key."""

    username: str = ""
    alias: str = ""
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    capabilities: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.username or self.alias or "api-key user"

    def may(self, needed: str) -> bool:
        return has_capability(self.capabilities, needed)


def has_capability(granted: Iterable[str], needed: str) -> bool:
    """True when `granted` (capability strings, wildcards allowed) covers `needed`."""
    verb, _, resource = needed.partition(":")
    wanted = {"*", needed, f"{verb}:*", f"*:{resource}"}
    return any(g in wanted for g in granted)


def required_capability(method: str, path: str) -> str | None:
    """The capability a request needs, or None for an open path."""
    if not path.startswith("/api/") or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    verb = "read" if method.upper() in ("GET", "HEAD") else "write"
    for prefix, resource in RESOURCES:
        if path == prefix or path.startswith(prefix + "/"):
            return f"{verb}:{resource}"
    return "write:node"


def _get(entry: dict[str, Any], key: str) -> Any:
    return next((v for k, v in entry.items() if str(k).lower() == key.lower()), None)


def _actions(entry: dict[str, Any], where: str) -> frozenset[str]:
    caps = _get(entry, "Capabilities") or []
    if not isinstance(caps, list):
        raise ConfigError(f"{where}.Capabilities: expected a list of {{Actions: [...]}}")
    out: set[str] = set()
    for i, cap in enumerate(caps):
        actions = _get(cap, "Actions") if isinstance(cap, dict) else cap
        if isinstance(actions, str):
            actions = [actions]
        if not isinstance(actions, list):
            raise ConfigError(f"{where}.Capabilities[{i}].Actions: expected a list of strings")
        for action in actions:
            text = str(action).strip().lower()
            if text not in CAPABILITIES and text not in _WILDCARDS:
                raise ConfigError(
                    f"{where}.Capabilities[{i}]: unknown action {action!r} (use read:job, "
                    "write:job, read:node, write:node, read:agent, write:agent, read:*, "
                    "write:* or *)")
            out.add(text)
    return frozenset(out)


def parse_users(raw: Any) -> list[User]:
    """`API.Auth.Users` -> users, checked as Bacalhau checks them (ConfigError naming the entry)."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{USERS_KEY}: expected a list of users")
    users: list[User] = []
    for i, entry in enumerate(raw):
        where = f"{USERS_KEY}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with Username/Password or APIKey")
        username = str(_get(entry, "Username") or "")
        password = str(_get(entry, "Password") or "")
        api_key = str(_get(entry, "APIKey") or "")
        if bool(password) == bool(api_key):
            raise ConfigError(f"{where}: give exactly one of Password (with Username) or APIKey")
        if password:
            if not _USERNAME.match(username):
                raise ConfigError(f"{where}.Username: required with a password; letters and "
                                  "digits only, at most 100")
            if not _BCRYPT.match(password) and not 10 <= len(password) <= 255:
                raise ConfigError(f"{where}.Password: must be 10 to 255 characters (or a "
                                  "bcrypt hash from `bacalhau auth hash-password`)")
        if api_key and not 20 <= len(api_key) <= 255:
            raise ConfigError(f"{where}.APIKey: must be 20 to 255 characters")
        users.append(User(username=username, alias=str(_get(entry, "Alias") or ""),
                          password=password, api_key=api_key,
                          capabilities=_actions(entry, where)))
    names = [u.username for u in users if u.username]
    if len(names) != len(set(names)):
        raise ConfigError(f"{USERS_KEY}: usernames must be unique")
    return users


class Authenticator:
    """Checks credentials against the configured users. Passwords may be bcrypt hashes;
    checking one costs ~0.1 s, so it runs in a thread and successes are remembered (by a keyed
    digest, never the password itself). API keys are compared in constant time."""

    def __init__(self, users: list[User]) -> None:
        self.users = users
        self._by_name = {u.username: u for u in users if u.password}
        self._keyed = [u for u in users if u.api_key]
        self._salt = os.urandom(32)
        self._verified: set[bytes] = set()

    @classmethod
    def from_config(cls, config: Config) -> Authenticator:
        return cls(parse_users(config.get(USERS_KEY)))

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    def by_api_key(self, key: str) -> User | None:
        found: User | None = None
        given = key.encode()
        for user in self._keyed:  # no early exit: the time does not say which key matched
            if hmac.compare_digest(user.api_key.encode(), given):
                found = user
        return found

    async def by_password(self, username: str, password: str) -> User | None:
        user = self._by_name.get(username)
        if user is None:
            return None
        digest = hmac.new(self._salt, f"{username}\0{password}".encode(), "sha256").digest()
        if digest in self._verified:
            return user
        stored = user.password
        if _BCRYPT.match(stored):
            import bcrypt

            ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), stored.encode())
        else:
            ok = hmac.compare_digest(stored.encode(), password.encode())
        if ok:
            self._verified.add(digest)
            return user
        return None

    async def authenticate(self, header: str) -> User:
        """The user named by an Authorization header; UnauthorizedError when there is none."""
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if not scheme:
            raise _unauthorized("missing Authorization header")
        if scheme.lower() == "bearer" and credential:
            user = self.by_api_key(credential)
            if user is None:
                raise _unauthorized("invalid API key")
            return user
        if scheme.lower() == "basic" and credential:
            try:
                decoded = base64.b64decode(credential, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise _unauthorized("malformed basic credentials") from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise _unauthorized("malformed basic credentials")
            user = await self.by_password(username, password)
            if user is None:
                raise _unauthorized("invalid username or password")
            return user
        # the header is not echoed: a client may have put a bare secret there
        raise _unauthorized("unsupported Authorization scheme (use Basic or Bearer)")


def websocket_credential(request: web.Request) -> str:
    """`Bearer <key>` from a WebSocket upgrade offering the subprotocols `bacalhau-auth,
    <base64url(key)>` (how the web UI authenticates its logs WebSocket); "" when the request
    offers no `bacalhau-auth`. An offer without a well-formed key is a 401."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return ""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if WS_AUTH_PROTOCOL not in offered:
        return ""
    index = offered.index(WS_AUTH_PROTOCOL)
    encoded = offered[index + 1] if index + 1 < len(offered) else ""
    if not encoded:
        raise _unauthorized(f"the {WS_AUTH_PROTOCOL} WebSocket subprotocol must be followed by "
                            "the base64url-encoded API key")
    try:
        if not _BASE64URL.match(encoded):
            raise ValueError(encoded)
        padded = encoded.rstrip("=") + "=" * (-len(encoded.rstrip("=")) % 4)
        key = base64.urlsafe_b64decode(padded).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        # the offer is not echoed: it may be a bare secret
        raise _unauthorized(f"malformed API key in the {WS_AUTH_PROTOCOL} WebSocket "
                            "subprotocol (expected base64url)") from None
    return f"Bearer {key}"


def _unauthorized(reason: str) -> UnauthorizedError:
    return UnauthorizedError("Request Unauthorized", hint=ENV_HINT, details={"reason": reason})


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Let open paths and anonymous nodes through; otherwise authenticate and authorize."""
    auth = request.app.get(AUTHENTICATOR)
    if auth is None or not auth.enabled:
        return await handler(request)
    needed = required_capability(request.method, request.path)
    if needed is None or request.method == "OPTIONS":
        return await handler(request)
    header = request.headers.get("Authorization", "") or websocket_credential(request)
    user = await auth.authenticate(header)
    if not user.may(needed):
        raise ForbiddenError(
            "Request Forbidden",
            hint=f"the user needs the capability {needed} in {USERS_KEY}",
            details={"reason": f"user {user.name} lacks capability {needed}"},
        )
    request[AUTH_USER] = user.name
    return await handler(request)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(config: Config) -> bool:
    """Log a loud warning when the API listens beyond loopback without users; True if so."""
    host = str(config.get("API.Host") or "")
    if is_loopback(host) or parse_users(config.get(USERS_KEY)):
        return False
    log.warning(
        "\n" + "!" * 78 + "\n"
        f"!! The API listens on {host} WITHOUT AUTHENTICATION: anyone who reaches this port\n"
        "!! can submit and stop jobs and approve nodes. Configure API.Auth.Users (see\n"
        "!! docs/api.md), or bind to 127.0.0.1 with -c API.Host=127.0.0.1.\n" + "!" * 78
    )
    return True


# ---------------------------------------------------------------------------------- /api/v1/auth


async def list_auth_methods(request: web.Request) -> web.Response:
    """GET /api/v1/auth: the token-issuing methods (none: users send Basic or Bearer)."""
    from .middleware import json_response

    return json_response({"Methods": {}, "NextToken": ""})


async def auth_method(request: web.Request) -> web.Response:
    """GET/POST /api/v1/auth/{method}: no token-issuing method exists on this node."""
    from bacalhau.errors import NotFoundError

    raise NotFoundError(
        f"authentication method {request.match_info['method']!r} is not supported",
        component="APIServer",
        hint="send Authorization: Basic (username/password) or Bearer (API key) instead",
    )


def setup(app: web.Application, config: Config) -> None:
    """Install the users of `config` and the `/api/v1/auth` routes on `app`."""
    app[AUTHENTICATOR] = Authenticator.from_config(config)
    app.router.add_get("/api/v1/auth", list_auth_methods)
    app.router.add_get("/api/v1/auth/{method}", auth_method)
    app.router.add_post("/api/v1/auth/{method}", auth_method)


__all__ = ["AUTHENTICATOR", "WS_AUTH_PROTOCOL", "Authenticator", "ForbiddenError", "User",
           "auth_middleware", "has_capability", "parse_users", "required_capability", "setup",
           "warn_if_exposed", "websocket_credential"]
