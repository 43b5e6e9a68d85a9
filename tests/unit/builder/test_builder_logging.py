"""Structured logs: one JSON object per line, extra fields (namespace, name) at the top level."""

from __future__ import annotations

import json
import logging

from builder.logging_json import JsonFormatter


def test_records_become_one_json_line_with_their_extra_fields() -> None:
    record = logging.makeLogRecord({"name": "builder.builds", "levelname": "INFO", "levelno": 20,
                                    "msg": "build %s", "args": ("created",),
                                    "namespace": "alice", "name_": "x"})
    record.__dict__["build"] = "build-abc"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["event"] == "build created" and data["level"] == "info" and data["logger"] == "builder.builds"
    assert data["namespace"] == "alice" and data["build"] == "build-abc"
    assert data["time"].endswith("Z")


def test_exceptions_are_kept_inside_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    data = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in data["exception"]
