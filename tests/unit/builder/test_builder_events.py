"""The log stream's event vocabulary, SSE encoding, resume ids and log line splitting."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given
from hypothesis import strategies as st

from builder import events as ev
from builder.kube import LineSplitter
from builder.model import BuildPhase, BuildStatus
from builder.stream import HEARTBEAT, with_heartbeats


def test_phases_map_to_binderhub_vocabulary() -> None:
    assert ev.phase_event(BuildStatus(phase=BuildPhase.PENDING, message="m"), "b")["phase"] == "waiting"
    assert ev.phase_event(BuildStatus(phase=BuildPhase.RUNNING), "b")["phase"] == "building"
    assert ev.phase_event(BuildStatus(phase=BuildPhase.RUNNING), "b", pushing=True)["phase"] == "pushing"
    built = ev.phase_event(BuildStatus(phase=BuildPhase.SUCCEEDED, digest="sha256:x", image="r/a@sha256:x"), "b")
    assert built["phase"] == "built" and built["digest"] == "sha256:x" and built["image"] == "r/a@sha256:x"
    failed = ev.phase_event(BuildStatus(phase=BuildPhase.FAILED, message="RUN false"), "b")
    assert failed == {"phase": "failed", "build": "b", "buildPhase": "Failed", "message": "RUN false"}
    cancelled = ev.phase_event(BuildStatus(phase=BuildPhase.CANCELLED), "b")
    assert cancelled["phase"] == "failed" and "cancelled" in cancelled["message"]


def test_push_lines_are_recognised() -> None:
    assert ev.is_push_line("INFO[0042] Pushing image to registry.local:5000/alice/app:v1")
    assert not ev.is_push_line("INFO[0010] Pushing layer registry.local:5000/alice/app/cache:abc to cache")
    # Kaniko pushes each cached RUN layer to <repo>/cache:<64-hex key> while later steps still run: not the push.
    assert not ev.is_push_line("INFO[0005] Pushing image to registry.local:5000/alice/app/cache:" + "a" * 64)


def test_sse_encoding_is_one_data_line_even_for_multiline_text() -> None:
    raw = ev.encode_sse(ev.log_event("a\nb\r\ndata: fake"), event_id=7).decode()
    assert raw.startswith("id: 7\n") and raw.endswith("\n\n")
    lines = raw.strip("\n").split("\n")
    assert len(lines) == 2
    assert json.loads(lines[1][len("data: "):])["message"] == "a\nb\r\ndata: fake"
    assert ev.encode_heartbeat().startswith(b":")


def test_last_event_id_parsing_is_forgiving() -> None:
    assert ev.parse_last_event_id(None) == 0
    assert ev.parse_last_event_id("12") == 12
    assert ev.parse_last_event_id(" 3 ") == 3
    assert ev.parse_last_event_id("-5") == 0
    assert ev.parse_last_event_id("abc") == 0


@given(st.binary(max_size=400), st.lists(st.integers(min_value=1, max_value=50), max_size=30))
def test_line_splitting_does_not_depend_on_chunking(data: bytes, cuts: list[int]) -> None:
    def split(chunks: list[bytes]) -> list[str]:
        s = LineSplitter(limit=16)
        out = [line for chunk in chunks for line in s.feed(chunk)]
        return out + s.close()

    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(data[pos:pos + cut])
        pos += cut
    chunks.append(data[pos:])
    whole = split([data])
    assert split(chunks) == whole
    assert all(len(line.encode("utf-8", "replace")) <= 16 * 3 for line in whole)


def test_long_lines_become_pieces() -> None:
    s = LineSplitter(limit=4)
    assert s.feed(b"abcdefghij\nxy") == ["abcd", "efgh", "ij"]
    assert s.close() == ["xy"]


async def test_heartbeats_fill_silences_and_items_pass_through() -> None:
    async def slow():
        yield 1
        await asyncio.sleep(0.25)
        yield 2

    got = [x async for x in with_heartbeats(slow(), 0.1)]
    assert got[0] == 1 and got[-1] == 2 and HEARTBEAT in got
