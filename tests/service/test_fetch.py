"""SSRF rules for image_url (and webhooks), each refusal proved against real local servers.

Loopback is refused by default, so tests that need to reach their own server allowlist
exactly 127.0.0.1/32 and then show that everything else is still refused."""
from __future__ import annotations

import asyncio
import time

import pytest

from service.fetch import Fetcher, FetchError
from tests.support.api import png
from tests.support.servers import LocalServer, self_signed

IMAGE = png("red")
ONLY_SERVER = ["127.0.0.1/32"]


def fetch(url: str, **kwargs) -> bytes:
    async def go():
        fetcher = Fetcher(**kwargs)
        try:
            return await fetcher.get(url)
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


def refused(url: str, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, **kwargs)
    return info.value


def resolver_for(table: dict[str, list[str]], calls: list | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


@pytest.fixture
def server():
    with LocalServer(IMAGE) as srv:
        yield srv


def test_allowlisted_server_is_fetched(server):
    assert fetch(server.url("/img"), allow=ONLY_SERVER) == IMAGE


def test_loopback_is_refused_by_default_and_never_contacted(server):
    err = refused(server.url("/img"))
    assert (err.code, err.reason) == ("fetch_blocked", "loopback")
    assert server.seen.requests == []


@pytest.mark.parametrize("address, reason", [
    ("10.1.2.3", "private"), ("192.168.0.10", "private"), ("172.16.5.5", "private"),
    ("169.254.1.1", "link_local"), ("169.254.169.254", "metadata"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"), ("fd00::1", "private"), ("fe80::1", "link_local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("100.64.0.1", "reserved"), ("224.0.0.1", "reserved"),
])
def test_names_resolving_to_internal_addresses_are_refused(address, reason):
    err = refused("http://images.example.org/cat.jpg", resolver=resolver_for({"images.example.org": [address]}))
    assert (err.code, err.reason) == ("fetch_blocked", reason)


def test_ip_literals_are_checked_too():
    assert refused("http://169.254.169.254/latest/meta-data/").reason == "metadata"
    assert refused("http://[::1]:8080/x").reason == "loopback"
    assert refused("http://2130706433/").code in ("fetch_blocked", "fetch_failed")  # 127.0.0.1 as an integer


def test_one_internal_address_among_public_ones_refuses_the_name():
    resolve = resolver_for({"mixed.example.org": ["93.184.216.34", "10.0.0.7"]})
    assert refused("http://mixed.example.org/x.png", resolver=resolve).reason == "private"


def test_allowlist_is_exact(server):
    # 127.0.0.1/32 is allowed; 127.0.0.2 is still loopback and still refused.
    assert refused(f"http://127.0.0.2:{server.port}/img", allow=ONLY_SERVER).reason == "loopback"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x.png", "gopher://example.org/",
                                 "http://user:pw@example.org/x.png", "not a url"])
def test_only_plain_http_urls(url):
    assert refused(url).code == "fetch_blocked"


def test_dns_is_resolved_once_and_the_connection_pinned(server):
    # "images.test" exists only in this resolver: the request can only reach the server if the
    # client connected to the address we checked, sending the name in the Host header.
    calls: list[str] = []
    resolve = resolver_for({"images.test": ["127.0.0.1"]}, calls)
    assert fetch(server.url("/img", host="images.test"), allow=ONLY_SERVER, resolver=resolve) == IMAGE
    assert calls == ["images.test"]
    assert server.seen.requests[-1]["host"] == f"images.test:{server.port}"


def test_rebinding_between_hops_is_caught(server):
    # First lookup says 127.0.0.1 (allowed), the next says 10.0.0.1: the redirect hop is refused.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])

    async def rebinding(host, port):
        return next(answers)

    url = server.url(f"/redirect?to=http://rebind.test:{server.port}/img", host="rebind.test")
    err = refused(url, allow=ONLY_SERVER, resolver=rebinding)
    assert (err.code, err.reason) == ("fetch_blocked", "private")
    assert [r["path"] for r in server.seen.requests] == ["/redirect"]


@pytest.mark.parametrize("target, reason", [
    ("http://127.0.0.2:{port}/img", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://10.0.0.1/admin", "private"),
    ("file:///etc/passwd", "scheme"),
])
def test_redirects_to_refused_addresses_are_refused(server, target, reason):
    url = server.url("/redirect?to=" + target.format(port=server.port))
    err = refused(url, allow=ONLY_SERVER)
    assert (err.code, err.reason) == ("fetch_blocked", reason)
    assert [r["path"] for r in server.seen.requests] == ["/redirect"]


def test_redirects_are_followed_to_allowed_targets_and_counted(server):
    hop = server.url("/img")
    for _ in range(2):
        hop = server.url("/redirect?to=" + hop)
    assert fetch(hop, allow=ONLY_SERVER) == IMAGE
    assert refused(hop, allow=ONLY_SERVER, max_redirects=1).reason == "too_many_redirects"


def test_size_cap_while_streaming(server):
    start = time.monotonic()
    err = refused(server.url("/big"), allow=ONLY_SERVER, max_bytes=1_000_000)
    assert (err.code, err.reason) == ("image_too_large", "bytes")
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    assert server.sent_bytes < 50_000_000  # we hung up long before the 6 GB it would send


def test_declared_size_over_cap_is_refused_before_reading(server):
    err = refused(server.url("/declared-big"), allow=ONLY_SERVER, max_bytes=1_000_000)
    assert (err.code, err.reason) == ("image_too_large", "bytes")


def test_whole_download_deadline(server):
    start = time.monotonic()
    err = refused(server.url("/slow"), allow=ONLY_SERVER, timeout_s=1.0)
    assert err.code == "timeout"
    assert time.monotonic() - start < 5  # the server would drip for 500 s


def test_http_errors_and_dead_hosts_are_fetch_failed(server):
    assert refused(server.url("/status/404"), allow=ONLY_SERVER).reason == "http_404"
    with LocalServer() as dead:
        port = dead.port
    assert refused(f"http://127.0.0.1:{port}/img", allow=ONLY_SERVER).reason == "connect"
    assert refused("http://nowhere.invalid/x.png", resolver=resolver_for({})).reason == "dns"


def test_https_pins_the_address_but_verifies_the_name(tmp_path):
    contexts = self_signed(tmp_path, "images.test")
    if contexts is None:
        pytest.skip("openssl is not installed")
    server_ctx, client_ctx = contexts
    resolve = resolver_for({"images.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    with LocalServer(IMAGE, tls=server_ctx) as srv:
        url = srv.url("/img", host="images.test")
        assert fetch(url, allow=ONLY_SERVER, resolver=resolve, verify=client_ctx) == IMAGE
        # Same address, another name: the certificate does not match, so no bytes are trusted.
        err = refused(srv.url("/img", host="other.test"), allow=ONLY_SERVER, resolver=resolve, verify=client_ctx)
        assert (err.code, err.reason) == ("fetch_failed", "connect")


# --- IPv6 forms that carry an IPv4 address, and everything that is not global unicast ---------


@pytest.mark.parametrize("address, reason", [
    ("::ffff:0:10.0.0.1", "private"),          # SIIT translated
    ("::10.0.0.1", "private"),                 # IPv4-compatible
    ("::127.0.0.1", "loopback"),
    ("::169.254.169.254", "metadata"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a00:1", "private"),             # NAT64 well-known prefix -> 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b:1::808:808", "reserved"),        # NAT64 local-use prefix: never public
    ("2002:a00:1::", "private"),               # 6to4 -> 10.0.0.1
    ("2002:7f00:1::1", "loopback"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo (client 192.0.2.45)
    ("fec0::1", "private"),                    # site-local
    ("ff02::1", "reserved"), ("ff0e::1", "reserved"),
    ("::8.8.8.8", "reserved"),                 # deprecated compatible form, even of a public address
    ("2001:db8::1", "private"), ("100::1", "private"), ("4000::1", "reserved"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("::ffff:0.0.0.0", "unspecified"),
])
def test_embedded_ipv4_and_non_global_ipv6_are_refused(address, reason):
    err = refused("http://host.test/x.png", resolver=resolver_for({"host.test": [address]}))
    assert (err.code, err.reason) == ("fetch_blocked", reason)
    literal = refused(f"http://[{address}]/x.png" if ":" in address else f"http://{address}/x.png")
    assert literal.reason == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808", "2606:4700:4700::1111",
                                     "2002:808:808::1"])
def test_public_addresses_in_any_form_pass_the_check(address):
    from service.fetch import refusal
    import ipaddress

    assert refusal(ipaddress.ip_address(address)) is None


def test_the_unspecified_message_names_it():
    assert refused("http://0.0.0.0/x.png").message == "0.0.0.0 is an unspecified address."


# --- redirects whose Location cannot be used ---------------------------------------------------


@pytest.mark.parametrize("location", ["data:image/png;base64,iVBORw0KGgo=", "data:text/html,<script>alert(1)</script>",
                                      "javascript:alert(1)", "http://[::1"])
def test_a_redirect_that_cannot_be_parsed_is_fetch_failed(server, location):
    from urllib.parse import quote

    err = refused(server.url("/redirect?to=" + quote(location, safe="")), allow=ONLY_SERVER)
    assert err.code == "fetch_failed", (err.code, err.reason)
    assert err.reason in ("bad_redirect", "connect")
