"""Pure(ish): the content hash of a build context, honouring `.dockerignore` the way Docker does.

Used by the client to let the API reuse a finished build of identical content. The hash covers what the
build can see: every non-ignored file's path, type, permission bits and bytes (symlinks by their target, not
followed), plus the Dockerfile and `.dockerignore` themselves, which are always part of a build even when
ignored. Only reading files is I/O; the ignore rules are pure functions tested on their own.

Rules (from Docker's patternmatcher): lines starting with `#` are comments; patterns are trimmed, cleaned and
made relative (a leading `/` dropped); `*` and `?` do not cross `/`, `**` does; `!pattern` re-includes; the
last matching pattern wins; a pattern matching a parent directory matches everything below it.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def parse_dockerignore(text: str) -> list[str]:
    """The patterns of a .dockerignore file, normalised as Docker does."""
    out = []
    for i, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if i == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/") or "/"
        out.append(("!" if invert else "") + line)
    return out


def _compile(pattern: str) -> re.Pattern[str]:
    out, i, n = "^", 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                # "**" at the end matches everything below; elsewhere any number of directories (even none).
                out += ".*" if i >= n else "(?:.*/)?"
                continue
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if end == -1:
                out += re.escape(ch)
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out += "[" + body.replace("\\", "\\\\") + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def compile_patterns(patterns: Iterable[str]) -> list[Pattern]:
    out = []
    for p in patterns:
        exclusion = p.startswith("!")
        body = p[1:] if exclusion else p
        out.append(Pattern(p, exclusion, _compile(body)))
    return out


def is_ignored(path: str, patterns: list[Pattern]) -> bool:
    """Whether a context-relative posix path is excluded (Docker's MatchesOrParentMatches)."""
    parent = posixpath.dirname(path)
    parents = parent.split("/") if parent else []
    matched = False
    for pat in patterns:
        if pat.exclusion != matched:
            continue
        match = bool(pat.regex.match(path))
        if not match and parents:
            match = any(pat.regex.match("/".join(parents[: i + 1])) for i in range(len(parents)))
        if match:
            matched = not pat.exclusion
    return matched


def iter_context(root: Path, patterns: list[Pattern], always: Iterable[str] = ()) -> Iterator[str]:
    """Context-relative paths (sorted, directories included) that a build would see."""
    keep = set(always)
    has_exceptions = any(p.exclusion for p in patterns)

    def walk(rel: str) -> Iterator[str]:
        with os.scandir(root / rel if rel else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            ignored = is_ignored(child, patterns) and child not in keep
            is_dir = entry.is_dir(follow_symlinks=False)
            if not ignored:
                yield child
            if is_dir and (not ignored or has_exceptions):
                yield from walk(child)

    yield from walk("")


def content_hash(root: str | os.PathLike[str], dockerfile: str = "Dockerfile") -> str:
    """`sha256:<hex>` of the context at `root` as a build sees it."""
    base = Path(root)
    ignore_file = base / DOCKERIGNORE
    text = ignore_file.read_text(errors="replace") if ignore_file.is_file() else ""
    patterns = compile_patterns(parse_dockerignore(text))
    always = {posixpath.normpath(dockerfile), DOCKERIGNORE}
    h = hashlib.sha256()
    for rel in iter_context(base, patterns, always):
        full = base / rel
        st = os.lstat(full)
        mode = stat.S_IMODE(st.st_mode) & 0o7777
        if stat.S_ISLNK(st.st_mode):
            kind, digest = "l", os.readlink(full)
        elif stat.S_ISDIR(st.st_mode):
            kind, digest = "d", ""
        elif stat.S_ISREG(st.st_mode):
            kind, digest = "f", _file_digest(full)
        else:
            continue  # sockets, fifos, devices: not part of an image build
        h.update(json.dumps([kind, oct(mode), rel, digest]).encode() + b"\n")
    # A Dockerfile outside the context folder is not supported by the API, so nothing else to add.
    return "sha256:" + h.hexdigest()


def _file_digest(path: Path) -> str:
    d = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            d.update(block)
    return d.hexdigest()
