"""Host names as the platform stores and filters them (architecture §3): one spelling per
host, so that what the collector stores and what a `host=` filter names compare equal."""

from __future__ import annotations

import re
from ipaddress import IPv6Address
from urllib.parse import quote, urlsplit

from viewstats.core.events import MAX_HOST, MAX_PAGE_URL

# A host name as a browser's URL spells it: labels of ASCII letters, digits and hyphens (lower
# case, as urllib gives them), 1 to 63 each. The host is shown on the dashboard and answered by
# `hosts` as stored, so anything else (markup, spaces, quotes) never becomes one.
_HOST_NAME = re.compile(r"[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*")


def url_host(url: str) -> str | None:
    """The host of `url` in its `host_name` spelling; None when it has none or it is not one."""
    try:
        host = urlsplit(url).hostname  # lower-cased by urllib
    except ValueError:
        return None
    return host_name(host) if host else None


# What a path keeps unquoted: RFC 3986's path characters and `%` (a browser's own escapes stay as
# they are). Everything else, `"` and `\\` and non-ASCII included, is percent-encoded, so an
# embed_url is printable ASCII that needs no escaping in JSON.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def page_url(url: str) -> str:
    """The page `url` names, as `embed_url` stores it: scheme, host (as `url_host` spells it),
    port and path, without user, query or fragment, which may carry a visitor's session or
    search; "" when it has no valid host or is not http(s). Longer than MAX_PAGE_URL, it is
    cut to its origin: a cut path would name a page that does not exist."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is no number, or out of range
        return ""
    scheme = parts.scheme.lower()
    host = url_host(url)
    if scheme not in ("http", "https") or host is None:
        return ""
    origin = f"{scheme}://{f'[{host}]' if ':' in host else host}" \
        + (f":{port}" if port is not None else "")
    page = origin + (quote(parts.path, safe=_PATH_SAFE) or "/")
    return page if len(page) <= MAX_PAGE_URL else origin + "/"


def host_name(host: str) -> str | None:
    """`host` as stored: a lower-case host name, IDNA-encoded (`xn--`) when it is not ASCII,
    or an IPv6 address; None when it is neither, or longer than DNS allows."""
    if ":" in host:  # only an IPv6 address, bracketed in a URL, holds one
        try:
            address = IPv6Address(host.removeprefix("[").removesuffix("]"))
        except ValueError:
            return None
        # A zone (`%eth0`) is free text, and names an interface of the viewer's machine.
        return None if address.scope_id else str(address)
    try:
        # Browsers send the ASCII form already; another client may not. Python's codec is
        # IDNA 2003, which differs from browsers' UTS 46 only on a few letters (e.g. ß).
        host = host.lower().encode("idna").decode("ascii")
    except UnicodeError:  # an empty or over-long label, or what IDNA refuses
        return None
    host = host.removesuffix(".")  # `example.com.` is example.com, fully qualified
    return host if len(host) <= MAX_HOST and _HOST_NAME.fullmatch(host) else None
