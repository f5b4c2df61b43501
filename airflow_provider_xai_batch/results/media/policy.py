"""Which media URLs an export may fetch: a pure decision on the URL and on the addresses its host resolves to.

A result is data that came over the network, not an instruction. Only ``https`` URLs on xAI's
media hosts are fetched; a connection that points at a plain-``http`` or loopback service (the
emulator, a test double) may also fetch from exactly that service's own origin. Hosts that resolve
to private, link-local, loopback or otherwise special addresses are refused unless allowed, so a
hostile result cannot make the worker read its cloud metadata service or an internal API.

>>> policy = MediaPolicy.for_connection("https://api.x.ai")
>>> policy.refusal("https://imgen.x.ai/xai-imgen/a.jpeg") is None
True
>>> policy.refusal("http://imgen.x.ai/a.jpeg")
'only https URLs are fetched (http://imgen.x.ai/a.jpeg)'
>>> policy.refusal("https://169.254.169.254/latest/meta-data/")
'host 169.254.169.254 is not on the media allow-list'
>>> local = MediaPolicy.for_connection("http://127.0.0.1:8787")
>>> local.refusal("http://127.0.0.1:8787/media/b/r-0.png") is None, local.refusal("http://127.0.0.1:9/x") is None
(True, False)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# The hosts xAI serves generated images and videos from. Extend the list with the connection
# extra ``media_hosts`` or the operators' ``allow_media_hosts``; ``*.example.com`` allows subdomains.
DEFAULT_MEDIA_HOSTS: tuple[str, ...] = ("imgen.x.ai", "vidgen.x.ai")
# A generated video is tens of MB; this guards the worker's disk and time against a runaway answer.
DEFAULT_MAX_MEDIA_BYTES = 512 * 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOCAL_NAMES = {"localhost", "localhost.localdomain"}

Origin = tuple[str, str, int]


def _origin(url: str) -> Origin | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost`` or a loopback address literal)."""
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def special_address(address: str) -> str | None:
    """Why an address is not a public one (``"private"``, ``"loopback"`` ...), or ``None`` when it is.

    >>> special_address("10.0.0.7"), special_address("169.254.169.254"), special_address("104.18.1.1")
    ('private', 'link-local', None)
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unparseable"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return reason
    return None


def parse_hosts(value: object) -> tuple[str, ...]:
    """Hosts from a connection extra or an argument: a list, or one comma-separated string.

    >>> parse_hosts("media.example.com, *.cdn.example.com"), parse_hosts(None)
    (('media.example.com', '*.cdn.example.com'), ())
    """
    if value is None or value == "":
        return ()
    items: Iterable[object] = value.split(",") if isinstance(value, str) else value  # type: ignore[assignment]
    return tuple(str(item).strip().lower() for item in items if str(item).strip())


@dataclass(frozen=True)
class MediaPolicy:
    """The allow-list and limits one export fetches media under.

    ``hosts`` holds host names (``imgen.x.ai``), ``host:port`` pairs, or ``*.domain`` patterns.
    ``local_origins`` are the (scheme, host, port) origins of a plain-http or loopback service the
    connection itself points at; URLs on them are fetched as they are.
    """

    hosts: tuple[str, ...] = DEFAULT_MEDIA_HOSTS
    allow_private: bool = False
    max_bytes: int = DEFAULT_MAX_MEDIA_BYTES
    local_origins: frozenset[Origin] = field(default_factory=frozenset)

    @classmethod
    def for_connection(
        cls,
        base_url: str,
        *,
        extra_hosts: Iterable[str] = (),
        allow_private: bool = False,
        max_bytes: int | None = None,
    ) -> MediaPolicy:
        """The policy for a connection whose API lives at ``base_url``."""
        origin = _origin(base_url)
        local: frozenset[Origin] = frozenset()
        if origin is not None and (origin[0] == "http" or is_loopback_host(origin[1])):
            local = frozenset({origin})
        return cls(
            hosts=tuple(dict.fromkeys((*DEFAULT_MEDIA_HOSTS, *parse_hosts(list(extra_hosts))))),
            allow_private=allow_private,
            max_bytes=max_bytes if max_bytes is not None else DEFAULT_MAX_MEDIA_BYTES,
            local_origins=local,
        )

    def is_local_origin(self, url: str) -> bool:
        """Whether ``url`` is on the connection's own plain-http or loopback service."""
        origin = _origin(url)
        return origin is not None and origin in self.local_origins

    def refusal(self, url: str) -> str | None:
        """Why ``url`` must not be fetched, or ``None`` when it may be (addresses are checked apart)."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return f"not a URL ({url[:200]})"
        if parts.username is not None or parts.password is not None:
            return "URLs with credentials in them are not fetched"
        if self.is_local_origin(url):
            return None
        origin = _origin(url)
        if origin is None or origin[0] != "https":
            return f"only https URLs are fetched ({url[:200]})"
        _, host, port = origin
        if not self._host_allowed(host, port):
            return f"host {host} is not on the media allow-list"
        reason = special_address(host.strip("[]")) if _is_ip_literal(host) else None
        if reason is not None and not self.allow_private:
            return f"host {host} is a {reason} address"
        return None

    def address_refusal(self, url: str, addresses: Iterable[str]) -> str | None:
        """Why the addresses ``url``'s host resolved to must not be reached, or ``None``."""
        if self.is_local_origin(url) or self.allow_private:
            return None
        for address in addresses:
            reason = special_address(address)
            if reason is not None:
                host = urlsplit(url).hostname
                return f"host {host} resolves to a {reason} address ({address})"
        return None

    def _host_allowed(self, host: str, port: int) -> bool:
        for entry in self.hosts:
            name, _, entry_port = entry.partition(":") if not entry.startswith("[") else (entry, "", "")
            if entry_port and entry_port.isdigit() and int(entry_port) != port:
                continue
            if not entry_port and port != _DEFAULT_PORTS["https"]:
                continue
            if name.startswith("*."):
                if host.endswith(name[1:]) and host != name[2:]:
                    return True
            elif host == name:
                return True
        return False


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
