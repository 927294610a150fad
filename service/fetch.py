"""Outbound HTTP for image_url and webhooks, safe against SSRF.

Each hop: http(s) only -> resolve the name once -> every address must be public (or in
the allowlist) -> connect to that exact address, sending the original Host header and
TLS SNI, so a rebinding resolver cannot swap the address between check and connect.
Redirects are followed by hand and each target is checked again. Bodies are streamed
against a byte cap, and the whole download runs under one deadline.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from models.errors import AltTextError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata endpoints get their own reason: they are the usual SSRF target.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
             ipaddress.ip_address("100.100.100.200")}
_REDIRECTS = {301, 302, 303, 307, 308}
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")               # RFC 6052 well-known prefix: last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")       # RFC 8215 local-use: never public
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")             # deprecated ::a.b.c.d
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")   # SIIT ::ffff:0:a.b.c.d
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")


def embedded_ipv4(ip: IP) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, translated, NAT64,
    6to4, Teredo server and client): a packet to it may reach them."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip in _IPV4_TRANSLATED or ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return [low32]
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return list(ip.teredo)
    return []


def _classify(ip: IP) -> str | None:
    """The IPv4 or IPv6 rule alone, without looking inside."""
    if ip in _METADATA:
        return "metadata"
    if ip.is_unspecified:  # Linux connects 0.0.0.0 and :: to this host; said as it is
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "reserved"
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip in _SITE_LOCAL):
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


def refusal(ip: IP, allow: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> str | None:
    """Why ``ip`` may not be reached, or None. Only global unicast is reachable: an IPv6
    address is judged by every IPv4 address it embeds too, and outside 2000::/3 only the
    forms that merely carry a public IPv4 address (mapped, NAT64 well-known) pass.
    ``allow`` lists networks reachable anyway (an IPv4 network also admits its mapped form)."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if any(ip in net or (mapped is not None and mapped in net) for net in allow):
        return None
    for inner in embedded_ipv4(ip):
        reason = _classify(inner)
        if reason:
            return reason
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return "reserved"
        if mapped is not None or ip in _NAT64:
            return None  # the embedded IPv4 address passed
        if ip in _IPV4_COMPATIBLE and int(ip) > 1 or ip in _IPV4_TRANSLATED:
            return "reserved"  # deprecated forms: never needed for a public host
    reason = _classify(ip)
    if reason:
        return reason
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST:
        return "reserved"
    return None


class FetchError(AltTextError):
    """``code`` is the API error code: fetch_blocked, fetch_failed, image_too_large or timeout."""

    def __init__(self, code: str, reason: str, message: str) -> None:
        super().__init__(reason, message, code=code)


@dataclass(frozen=True)
class Fetched:
    """A successful download: where it ended up after redirects, its media type and body."""

    url: str
    content_type: str
    body: bytes


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class Fetcher:
    def __init__(
        self,
        *,
        allow: Sequence[str] = (),
        timeout_s: float = 10.0,
        max_bytes: int = 20 * 2**20,
        max_redirects: int = 5,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.allow = [ipaddress.ip_network(net, strict=False) for net in allow]
        self.timeout_s, self.max_bytes, self.max_redirects = timeout_s, max_bytes, max_redirects
        self._resolve = resolver or system_resolve
        self._verify = verify
        self._http: httpx.AsyncClient | None = None

    @property
    def _client(self) -> httpx.AsyncClient:
        # Made on first use, inside the running event loop; aclose() lets a later loop make its own.
        if self._http is None:
            # No proxies from the environment (they would bypass the pinning), no pooled
            # connections (a kept-alive socket belongs to one host name, not one IP).
            self._http = httpx.AsyncClient(
                trust_env=False, follow_redirects=False, timeout=httpx.Timeout(self.timeout_s),
                limits=httpx.Limits(max_keepalive_connections=0), verify=self._verify,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def refusal(self, ip: IP) -> str | None:
        """Why ``ip`` may not be reached, or None (see ``refusal``)."""
        return refusal(ip, self.allow)

    async def check(self, url: str) -> None:
        """Raise FetchError now if ``url`` may not be reached (it is checked again on use)."""
        await self._pin(_parse(url))

    async def _pin(self, url: httpx.URL) -> tuple[str, str]:
        """(address to connect to, Host header) for ``url``, or FetchError."""
        if url.scheme not in ("http", "https"):
            raise FetchError("fetch_blocked", "scheme", f"Only http and https URLs are fetched, not {url.scheme!r}.")
        if url.userinfo:
            raise FetchError("fetch_blocked", "credentials", "URLs with credentials are not fetched.")
        host = url.raw_host.decode("ascii")
        if not host:
            raise FetchError("fetch_blocked", "no_host", "The URL has no host.")
        port = url.port or (443 if url.scheme == "https" else 80)
        verb = "is"
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            verb = "resolves to"
            try:
                addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await self._resolve(host, port)]
            except (OSError, UnicodeError) as exc:
                raise FetchError("fetch_failed", "dns", f"Could not resolve {host!r}.") from exc
        if not addresses:
            raise FetchError("fetch_failed", "dns", f"Could not resolve {host!r}.")
        for ip in addresses:  # any refused address refuses the name: no picking the safe one by luck
            reason = self.refusal(ip)
            if reason:
                what = reason.replace("_", "-")
                raise FetchError("fetch_blocked", reason,
                                 f"{host} {verb} {'an' if what[0] in 'aeiou' else 'a'} {what} address.")
        return str(addresses[0]), url.netloc.decode("ascii")  # netloc keeps a non-default port

    async def _open(self, method: str, url: httpx.URL, body: bytes | None, headers: dict[str, str]):
        ip, host_header = await self._pin(url)
        pinned = url.copy_with(host=ip, fragment=None)
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        request = self._client.build_request(method, pinned, content=body, headers={**headers, "Host": host_header},
                                             extensions=extensions)
        try:
            return await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", "timeout", f"{url.host} did not answer in time.") from exc
        except httpx.InvalidURL as exc:  # httpx parses a redirect's Location even when not following it
            raise FetchError("fetch_failed", "bad_redirect",
                             f"{url.host} redirected to an address that cannot be parsed.") from exc
        except httpx.HTTPError as exc:
            raise FetchError("fetch_failed", "connect",
                             f"Could not connect to {url.host}: {type(exc).__name__}.") from exc

    async def get(self, url: str) -> bytes:
        """The body at ``url``, following checked redirects, at most ``max_bytes``."""
        return (await self.fetch(url)).body

    async def fetch(self, url: str, *, accept: str = "image/*", headers: dict[str, str] | None = None) -> Fetched:
        """Like ``get``, also saying the final URL and media type (pages, robots.txt, sitemaps)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._get(url, {**(headers or {}), "Accept": accept})
        except TimeoutError as exc:
            raise FetchError("timeout", "timeout", f"The download took longer than {self.timeout_s:g} s.") from exc

    async def _get(self, url: str, headers: dict[str, str]) -> Fetched:
        current = _parse(url)
        for _ in range(self.max_redirects + 1):
            response = await self._open("GET", current, None, headers)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    current = _redirect_target(current, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchError("fetch_failed", f"http_{response.status_code}",
                                     f"{current.host} answered HTTP {response.status_code}.")
                body = await self._read_capped(response)
                ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
                return Fetched(str(current), ctype, body)
            finally:
                await response.aclose()
        raise FetchError("fetch_failed", "too_many_redirects", f"More than {self.max_redirects} redirects.")

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError("image_too_large", "bytes",
                             f"The image is {declared} bytes; the limit is {self.max_bytes}.")
        chunks, size = [], 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:  # stop reading: the sender may never stop
                    raise FetchError("image_too_large", "bytes", f"The image is over the {self.max_bytes}-byte limit.")
                chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", "timeout", "The download stalled.") from exc
        except httpx.HTTPError as exc:
            raise FetchError("fetch_failed", "read", f"The download failed: {type(exc).__name__}.") from exc
        return b"".join(chunks)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST without following redirects (webhooks); the status code. Raises FetchError."""
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._open("POST", _parse(url), body, headers)
                await response.aclose()
                return response.status_code
        except TimeoutError as exc:
            raise FetchError("timeout", "timeout", f"{url} did not answer in time.") from exc


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        return httpx.URL(urljoin(str(current), location))
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError("fetch_failed", "bad_redirect",
                         f"{current.host} redirected to an address that cannot be parsed.") from exc


def _parse(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError("fetch_blocked", "invalid_url", "The URL is not valid.") from exc
