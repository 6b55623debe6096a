"""Which addresses a URL typed by a web visitor may reach (server-side request forgery guard).

A visitor of the app can type the language model's server URL. Without a guard the server would
POST to whatever that names: cloud metadata (169.254.169.254), its own loopback services, the
private network. ``UrlGuard`` refuses every address that is not globally routable (private,
loopback, link-local, shared, reserved, multicast) unless the operator lists the host (or
``host:port``) in ``llm_allowed_hosts``; loopback is allowed when the app itself is served on
loopback only (a local Ollama for a local user).

The check runs where the socket is opened (``guarded_http_client``), on the address actually
connected to: a redirect to a refused address and a name that resolves differently the second
time (DNS rebinding) are refused too, not only the URL as typed. The command line, run by the
machine's owner, has no guard.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

HINT = (
    "use a public server, or ask the person running Clusterlab to list this host in "
    "llm_allowed_hosts (under [clusterlab] in .streamlit/secrets.toml, or CLUSTERLAB_LLM_ALLOWED_HOSTS)"
)


class AddressRefused(OSError):
    """The guard refused to connect; ``reason`` says where the URL led and why not."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UrlGuard:
    allowed_hosts: tuple[str, ...] = ()  # "host" or "host:port", lower case
    allow_loopback: bool = False  # the app is served on loopback only

    def allowed(self, host: str, port: int) -> bool:
        host = host.strip("[]").lower()
        return host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to; raises ``AddressRefused`` if any is not allowed."""
        host = host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise AddressRefused(f"the host {host!r} could not be found") from None
        found = list(dict.fromkeys(info[4][0] for info in infos))
        if self.allowed(host, port):
            return found
        for address in found:
            reason = self._refusal(address)
            if reason:
                raise AddressRefused(
                    f"{host}:{port} leads to {address}, {reason}, which this server does not call"
                )
        return found

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        self.addresses(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))

    def _refusal(self, address: str) -> str:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            return "" if self.allow_loopback else "a loopback address (this server itself)"
        if ip.is_link_local:
            return "a link-local address (such as a cloud metadata service)"
        if not ip.is_global or ip.is_multicast:
            return "a private or reserved address"
        return ""


def guarded_http_client(guard: UrlGuard, timeout: float) -> Any:
    """An ``httpx2.Client`` (what the openai SDK uses) that connects only where ``guard`` allows,
    checked on every connection, redirects included; no proxies from the environment."""
    import httpcore2
    import httpx2

    class Backend(httpcore2.SyncBackend):
        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            addresses = guard.addresses(host, port)
            last: Exception | None = None
            for address in addresses:  # connect to the address that was checked, not the name
                try:
                    return super().connect_tcp(address, port, timeout, local_address, socket_options)
                except httpcore2.ConnectError as exc:
                    last = exc
            raise last or httpcore2.ConnectError(f"could not connect to {host}:{port}")

    class Transport(httpx2.HTTPTransport):
        def __init__(self) -> None:
            super().__init__(trust_env=False)
            self._pool = httpcore2.ConnectionPool(
                ssl_context=httpx2.create_ssl_context(trust_env=False), network_backend=Backend()
            )

    return httpx2.Client(transport=Transport(), timeout=timeout, follow_redirects=True, trust_env=False)


def refusal_in(exc: BaseException | None) -> AddressRefused | None:
    """The ``AddressRefused`` somewhere in an exception's causes (the SDK wraps it)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, AddressRefused):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
