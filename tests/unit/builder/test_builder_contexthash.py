"""Content hash of a build context and .dockerignore semantics (Docker's patternmatcher rules)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.contexthash import compile_patterns, content_hash, is_ignored, iter_context, parse_dockerignore


def ignored(patterns: str, path: str) -> bool:
    return is_ignored(path, compile_patterns(parse_dockerignore(patterns)))


def test_dockerignore_lines_are_normalised() -> None:
    text = "\ufeff# comment\n  *.pyc  \n\n/build/\n! keep.pyc\nfoo/../bar\n #not a comment\n"
    assert parse_dockerignore(text) == ["*.pyc", "build", "!keep.pyc", "bar", "#not a comment"]


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("*.pyc", "a.pyc", True),
        ("*.pyc", "sub/a.pyc", False),  # * does not cross /
        ("**/*.pyc", "sub/deep/a.pyc", True),
        ("**/*.pyc", "a.pyc", True),  # ** matches zero directories too
        ("data", "data/big/file.bin", True),  # a matching parent excludes what is below
        ("data/", "data/x", True),
        ("/data", "data/x", True),
        ("data", "mydata/x", False),
        ("data/*", "data/x", True),
        ("data/*", "data/x/y", True),  # parent data/x matches
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c]x", "bx", True),
        ("[!a-c]x", "bx", False),
        ("[!a-c]x", "dx", True),
        ("\\*x", "*x", True),
        ("\\*x", "ax", False),
        ("*\n!keep.txt", "keep.txt", False),  # exception re-includes
        ("*\n!keep.txt", "other.txt", True),
        ("!keep.txt\n*", "keep.txt", True),  # last match wins
        ("data\n!data/keep", "data/keep", False),
        ("data\n!data/keep", "data/other", True),
        ("logs/**", "logs/a/b.log", True),
        ("logs/**", "logs", False),
        ("a/**/z", "a/z", True),
        ("a/**/z", "a/b/c/z", True),
        (".git", ".git/HEAD", True),
        ("", "anything", False),
    ],
)
def test_dockerignore_matching(patterns: str, path: str, expected: bool) -> None:
    assert ignored(patterns, path) is expected


def make(tmp: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return tmp


def test_hash_is_stable_and_formatted(tmp_path: Path) -> None:
    make(tmp_path, {"Dockerfile": "FROM scratch\n", "app.py": "print(1)\n"})
    h = content_hash(tmp_path)
    assert h.startswith("sha256:") and len(h) == 71
    assert content_hash(tmp_path) == h


def test_hash_changes_with_content_names_modes_and_new_files(tmp_path: Path) -> None:
    make(tmp_path, {"Dockerfile": "FROM scratch\n", "app.py": "print(1)\n"})
    seen = {content_hash(tmp_path)}
    (tmp_path / "app.py").write_text("print(2)\n")
    seen.add(content_hash(tmp_path))
    os.chmod(tmp_path / "app.py", 0o755)
    seen.add(content_hash(tmp_path))
    (tmp_path / "app.py").rename(tmp_path / "main.py")
    seen.add(content_hash(tmp_path))
    (tmp_path / "empty").mkdir()
    seen.add(content_hash(tmp_path))
    os.symlink("main.py", tmp_path / "link")
    seen.add(content_hash(tmp_path))
    assert len(seen) == 6


def test_ignored_files_do_not_change_the_hash(tmp_path: Path) -> None:
    make(tmp_path, {"Dockerfile": "FROM scratch\n", ".dockerignore": "*.log\ndata\n", "app.py": "x"})
    h = content_hash(tmp_path)
    make(tmp_path, {"debug.log": "noise", "data/huge.bin": b"\0" * 1000})
    assert content_hash(tmp_path) == h
    make(tmp_path, {"sub/debug.log": "not ignored: *.log is top level only"})
    assert content_hash(tmp_path) != h


def test_dockerfile_and_dockerignore_count_even_when_ignored(tmp_path: Path) -> None:
    make(tmp_path, {"Dockerfile": "FROM scratch\n", ".dockerignore": "*\n"})
    h = content_hash(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    h2 = content_hash(tmp_path)
    (tmp_path / ".dockerignore").write_text("*\n!x\n")
    assert len({h, h2, content_hash(tmp_path)}) == 3


def test_exceptions_reach_inside_ignored_directories(tmp_path: Path) -> None:
    make(tmp_path, {"Dockerfile": "", "data/keep.csv": "1", "data/drop.csv": "2"})
    pats = compile_patterns(["data", "!data/keep.csv"])
    assert list(iter_context(tmp_path, pats, ["Dockerfile"])) == ["Dockerfile", "data/keep.csv"]


def test_symlinks_are_hashed_by_target_not_followed(tmp_path: Path) -> None:
    make(tmp_path, {"Dockerfile": ""})
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret").write_text("a")
    os.symlink(outside, tmp_path / "escape")
    h = content_hash(tmp_path)
    (outside / "secret").write_text("b")
    assert content_hash(tmp_path) == h
