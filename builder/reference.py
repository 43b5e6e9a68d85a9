"""Image references: parsing per the distribution grammar, and the per-namespace destination allow-list.

Pure functions. The allow-list compares parsed, normalised references, never raw strings, so that
`reg/ns/../other`, `reg/ns-evil/x` or `REG/ns/x` cannot pass as `reg/ns/...` by string prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# From the distribution/reference grammar (docker/distribution reference/regexp.go), written out here.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
PATH_COMPONENT_RE = re.compile(rf"^{_PATH_COMPONENT}$")
TAG_RE = re.compile(rf"^{_TAG}$")
DIGEST_RE = re.compile(rf"^{_DIGEST}$")
SHA256_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

DEFAULT_DOMAIN = "docker.io"
MAX_NAME_LENGTH = 255


class InvalidReference(ValueError):
    """The string is not an image reference (a 400, unlike a valid reference that is not allowed: 403)."""


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference; `domain` is lower-cased, since registry host names are case-insensitive."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """`domain/path`, the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


def parse_reference(ref: str) -> ImageReference:
    """Parses `[domain/]path[:tag][@digest]`, normalising a missing domain to docker.io (as Docker does)."""
    if not ref or len(ref) > 1024 or ref != ref.strip() or any(ord(c) < 33 or ord(c) == 127 for c in ref):
        raise InvalidReference("image reference is empty, too long or contains whitespace/control characters")
    name, digest = ref, None
    if "@" in ref:
        name, digest = ref.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid digest {digest!r}")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r}")
    parts = name.split("/")
    if len(parts) > 1 and _looks_like_domain(parts[0]):
        domain, components = parts[0], parts[1:]
        if not DOMAIN_RE.match(domain):
            raise InvalidReference(f"invalid registry host {domain!r}")
    else:
        domain, components = DEFAULT_DOMAIN, parts
        if len(parts) == 1:
            components = ["library", *parts]
    for c in components:
        if not PATH_COMPONENT_RE.match(c):
            raise InvalidReference(
                f"invalid repository path component {c!r} (lower-case letters, digits and . _ - separators only)"
            )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidReference(f"repository name longer than {MAX_NAME_LENGTH} characters")
    return ImageReference(domain.lower(), "/".join(components), tag, digest)


def parse_prefix(prefix: str) -> tuple[str, str]:
    """Splits an allow-list prefix `domain[/path...]` into a lower-cased domain and a path ('' = whole registry)."""
    domain, _, path = prefix.strip().rstrip("/").partition("/")
    if not DOMAIN_RE.match(domain) or any(not PATH_COMPONENT_RE.match(c) for c in path.split("/") if path):
        raise ValueError(f"invalid allowed-destination prefix {prefix!r}")
    return domain.lower(), path


def is_allowed(ref: ImageReference, prefixes: list[str]) -> bool:
    """True when the repository lies under one of the prefixes, compared component by component."""
    for prefix in prefixes:
        domain, path = parse_prefix(prefix)
        if ref.domain != domain:
            continue
        if not path or ref.path == path or ref.path.startswith(path + "/"):
            return True
    return False


def registry_host(ref_or_host: str) -> str:
    """The lower-cased `host[:port]` of a reference or of a bare host entry in the settings."""
    return ref_or_host.split("/", 1)[0].lower()
