"""Fetch an original from a URL, safely (server-side request forgery is the threat).

- Only http and https, only hosts named in `fetch.allowed_hosts`, no credentials in the URL.
- DNS is resolved once, here; every address it returns must be public (not
  private, loopback, link-local such as the 169.254.169.254 metadata service,
  CGNAT, multicast, reserved or unspecified; IPv4-mapped IPv6 is unwrapped
  first) unless it lies in `fetch.allowed_networks`. The connection then goes
  to that checked address, with the original Host header and TLS server name,
  so a second lookup (DNS rebinding) cannot swap in another address.
- Redirects are followed only to the same host, each hop checked again, at
  most `fetch.max_redirects` times.
- Connect, read and total time limits; the body is counted while it streams
  (after any content decoding, so a gzip bomb counts at full size) and cut off
  at the upload limit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from proxy.config import FetchSettings


class FetchRefused(Exception):
    """The URL may not be fetched (scheme, host, address or redirect): HTTP 403/400."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class FetchFailed(Exception):
    """The remote server did not deliver an image body in time: HTTP 422."""


class FetchTooLarge(Exception):
    """The remote body is larger than the upload limit: HTTP 413."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_allowed(addr: Address, allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Public unicast addresses, or ones inside an explicitly allowed network."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if any(addr in net for net in allowed):
        return True
    return addr.is_global and not addr.is_multicast


def _ip_address(host: str | int) -> Address:
    """The address in a socket address from getaddrinfo, without an IPv6 zone (`fe80::1%eth0`)."""
    if not isinstance(host, str):  # an AF_INET or AF_INET6 address is text; other families never answer a host name
        raise TypeError(f"getaddrinfo returned a socket address that is not an IP address: {host!r}")
    return ipaddress.ip_address(host.split("%")[0])


class Fetcher:
    def __init__(self, settings: FetchSettings, max_bytes: int) -> None:
        self.settings = settings
        self.max_bytes = max_bytes
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks)
        timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    @property
    def enabled(self) -> bool:
        return bool(self.settings.allowed_hosts)

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str) -> bytes:
        if not self.enabled:
            raise FetchRefused("import from a URL is disabled (no fetch.allowed_hosts configured)")
        try:
            async with asyncio.timeout(self.settings.total_timeout_s):
                return await self._follow(url)
        except TimeoutError:
            raise FetchFailed(f"fetching took longer than {self.settings.total_timeout_s:g} s") from None

    async def _follow(self, url: str) -> bytes:
        target = self._checked_url(url)
        first_host = target.host
        for _ in range(self.settings.max_redirects + 1):
            location = await self._get(target)
            if isinstance(location, bytes):
                return location
            target = self._checked_url(str(target.join(location)))
            if target.host != first_host:
                raise FetchRefused(f"redirect to another host ({target.host}) refused")
        raise FetchFailed(f"more than {self.settings.max_redirects} redirects")

    def _checked_url(self, url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise FetchRefused(f"not a valid URL: {url!r}", 400) from None
        if parsed.scheme not in ("http", "https"):
            raise FetchRefused("only http and https URLs can be imported", 400)
        if parsed.userinfo:
            raise FetchRefused("URLs with credentials are refused", 400)
        host = parsed.host.lower()
        if host not in self.settings.allowed_hosts:
            raise FetchRefused(f"host {host!r} is not in fetch.allowed_hosts")
        return parsed

    async def _resolve(self, url: httpx.URL) -> Address:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchFailed(f"cannot resolve {url.host}: {exc}") from None
        addresses = [_ip_address(info[4][0]) for info in infos]
        refused = [str(a) for a in addresses if not address_allowed(a, self._networks)]
        if not addresses or refused:
            raise FetchRefused(f"{url.host} resolves to a non-public address ({', '.join(refused) or 'none'})")
        return addresses[0]

    async def _get(self, url: httpx.URL) -> bytes | str:
        """The body of a 200, or the Location of a redirect."""
        addr = await self._resolve(url)
        pinned = url.copy_with(host=str(addr))  # connect to the address we checked, nothing else
        headers = {"host": url.netloc.decode("ascii"), "accept": "image/*", "accept-encoding": "identity"}
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        try:
            async with self._client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
                if response.is_redirect:
                    location: str = response.headers.get("location", "")  # httpx types get() as Any
                    return location
                if response.status_code != 200:
                    raise FetchFailed(f"the remote server answered {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchTooLarge(f"the remote image is larger than {self.max_bytes} bytes")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FetchTooLarge(f"the remote image is larger than {self.max_bytes} bytes")
                return bytes(body)
        except httpx.TimeoutException:
            raise FetchFailed("the remote server was too slow") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(f"fetching failed: {type(exc).__name__}") from None
