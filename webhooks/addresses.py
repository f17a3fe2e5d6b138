"""Which URLs a webhook may be sent to.

Only http:// and https://. Unless WEBHOOK_ALLOW_PRIVATE_URLS is on (it defaults to DEBUG, so
development and the tests can use 127.0.0.1), a URL is refused when its host is Milepost itself
(the host of SITE_URL or an ALLOWED_HOSTS entry) or when any address it resolves to is
loopback, private, link-local, unspecified, multicast or reserved: a team admin must not be
able to make the server call its own admin pages, the cloud metadata service or the database.

The rule is checked when an endpoint is saved and again before every delivery, and the delivery
connects to the very address that was checked, so a DNS answer that changes in between (DNS
rebinding) cannot slip a private address through.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedURL(ValueError):
    """A URL Milepost will not send to; the message says why, for the form."""


class UnresolvedHost(RefusedURL):
    """The host name has no address (may be temporary: a delivery retries it)."""


def split(url: str):
    """(scheme, host, port) of an http(s) URL, or RefusedURL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS:
        raise RefusedURL("Use an address starting with http:// or https://.")
    if not parts.hostname:
        raise RefusedURL("The address needs a host name.")
    if parts.username or parts.password:
        raise RefusedURL(
            "Leave user names and passwords out of the address; the signature tells the "
            "receiver the request came from Milepost."
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise RefusedURL("The port in the address is not a number from 1 to 65535.") from None
    return parts.scheme, parts.hostname.lower().rstrip("."), port


def own_hosts() -> list[str]:
    """Host names that are Milepost itself ('.example.com' in ALLOWED_HOSTS covers subdomains;
    '*' names no particular host and is ignored)."""
    hosts = [urlsplit(settings.SITE_URL).hostname or ""]
    hosts += [host for host in settings.ALLOWED_HOSTS if host != "*"]
    return [host.lower().rstrip(".") for host in hosts if host]


def is_own_host(host: str) -> bool:
    for own in own_hosts():
        if own.startswith("."):
            if host == own[1:] or host.endswith(own):
                return True
        elif host == own:
            return True
    return False


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnresolvedHost(f"Milepost could not find the host “{host}”.") from None
    addresses = []
    for *_, sockaddr in answers:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise UnresolvedHost(f"Milepost could not find the host “{host}”.")
    return addresses


def check_url(url: str) -> list[str]:
    """The addresses to connect to for `url` (in the resolver's order), or RefusedURL saying
    why it may not be used."""
    _, host, port = split(url)
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return resolve(host, port)
    if is_own_host(host):
        raise RefusedURL("That address is Milepost itself; webhooks must go to another server.")
    addresses = resolve(host, port)
    for address in addresses:
        if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
            raise RefusedURL(
                f"“{host}” points at a loopback, private, link-local or reserved address "
                f"({address}); webhooks must go to a public address."
            )
    return addresses
