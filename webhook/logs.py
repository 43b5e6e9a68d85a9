"""Structured logs: one JSON object per line, one line per event, with namespace/name where there is one.

Call `log(logger, "event_name", namespace=..., name=..., **fields)`; uvicorn's own records go through the
same formatter, so a log pipeline sees nothing but JSON.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, _FIELDS, None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure(level: str = "INFO") -> None:
    """Routes the root logger (and uvicorn's) to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def log(logger: logging.Logger, event: str, level: int = logging.INFO, exc_info: bool = False,
        **fields: Any) -> None:
    """Logs one event with structured fields (kept out of the message so they stay queryable)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_FIELDS: fields}, exc_info=exc_info)
