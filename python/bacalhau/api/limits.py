"""The API's guards against overload and eavesdropping: a per-client token-bucket rate limit
(429 APIError with `Retry-After`) and TLS (certificate and key from `API.TLS.CertFile`/`KeyFile`,
or a self-signed pair made in the data dir with `API.TLS.SelfSigned`).

The body size limit (413) and the handler timeout (503, WebSockets exempt) live in `app.py` and
`middleware.py`.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bacalhau.config import Config
from bacalhau.errors import ConfigError, api_error_body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_RATE = 1000.0  # requests per second per client, as Bacalhau's in-memory limiter
MAX_CLIENTS = 10_000   # buckets kept; the least recently seen client is forgotten first


class RateLimiter:
    """Token buckets per client key: `rate` tokens per second, at most `burst` stored."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst else max(rate, 1.0))
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @classmethod
    def from_config(cls, config: Config) -> RateLimiter | None:
        """None when `API.RateLimit.RequestsPerSecond` is 0 (no limit)."""
        try:
            rate = float(config.get("API.RateLimit.RequestsPerSecond", DEFAULT_RATE) or 0)
            burst = float(config.get("API.RateLimit.Burst", 0) or 0)
        except (TypeError, ValueError):
            raise ConfigError("API.RateLimit.RequestsPerSecond and .Burst must be numbers "
                              "(0 = no limit)") from None
        if rate < 0 or burst < 0:
            raise ConfigError("API.RateLimit.RequestsPerSecond and .Burst must be >= 0")
        return cls(rate, burst or None) if rate > 0 else None

    def take(self, key: str) -> float:
        """Spend one token of `key`'s bucket: 0.0 if allowed, else seconds until one is due."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


def client_key(request: web.Request) -> str:
    """The client a request is counted against: its remote address. Not its credential,
    which a flood could vary at will (and which may cost a bcrypt check to verify)."""
    return request.remote or ""


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limiter = request.app.get(RATE_LIMITER)
    if limiter is None:
        return await handler(request)
    wait = limiter.take(client_key(request))
    if wait <= 0:
        return await handler(request)
    from .middleware import json_response, request_id_of

    retry = max(1, math.ceil(wait))
    body = api_error_body(
        429, f"too many requests: this client may send {limiter.rate:g} per second",
        code="TooManyRequests", component="APIServer", request_id=request_id_of(request),
        hint=f"retry after {retry}s, or raise API.RateLimit.RequestsPerSecond on the node",
    )
    response = json_response(body, 429)
    response.headers["Retry-After"] = str(retry)
    return response


# ---------------------------------------------------------------------------------- TLS


def _path(config: Config, key: str) -> str:
    value = config.get(key) or ""
    return os.path.expanduser(str(value)) if value else ""


def server_ssl_context(config: Config) -> ssl.SSLContext | None:
    """The TLS context of the API, or None for plain HTTP (no cert configured)."""
    cert, key = _path(config, "API.TLS.CertFile"), _path(config, "API.TLS.KeyFile")
    self_signed = config.flag("API.TLS.SelfSigned")
    if bool(cert) != bool(key):
        raise ConfigError("API.TLS.CertFile and API.TLS.KeyFile go together: set both")
    if not cert and self_signed:
        cert_path, key_path = self_signed_pair(config.data_dir / "tls",
                                               str(config.get("API.Host") or "127.0.0.1"))
        cert, key = str(cert_path), str(key_path)
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"API.TLS: cannot load certificate {cert} with key {key}: {exc}",
                          hint="check the paths and that the key matches the certificate"
                          ) from None
    return context


def self_signed_pair(directory: Path, host: str) -> tuple[Path, Path]:
    """`<dir>/api.crt` and `<dir>/api.key` (mode 0600), made once: a self-signed certificate
    for `host`, localhost and 127.0.0.1, valid one year. For tests and trials, not production."""
    cert_path, key_path = directory / "api.crt", directory / "api.key"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        if host not in ("127.0.0.1", "0.0.0.0", "::", ""):
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bacalhau-py self-signed")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


__all__ = ["RATE_LIMITER", "RateLimiter", "rate_limit_middleware", "self_signed_pair",
           "server_ssl_context"]
