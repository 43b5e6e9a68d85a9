"""TLS for the API: certificate and key read from files and reloaded when they change (cert-manager or the
chart rotates them in place), without dropping connections. The SSLContext is updated in place, so new
handshakes use the new certificate; it runs on the event loop, where handshakes happen."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("builder.tls")


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)  # follows symlinks: Secret volumes swap a ..data symlink
    return st.st_mtime_ns, st.st_size, st.st_ino


@dataclass
class CertReloader:
    context: ssl.SSLContext
    cert_file: Path
    key_file: Path
    interval: float = 30.0
    _seen: tuple[tuple[int, int, int], tuple[int, int, int]] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._seen = (_stamp(self.cert_file), _stamp(self.key_file))

    def check(self) -> bool:
        """Reloads if either file changed; True if it did. A half-written pair is retried on the next check."""
        now = (_stamp(self.cert_file), _stamp(self.key_file))
        if now == self._seen:
            return False
        try:
            # Try the pair on a scratch context first: a failed load_cert_chain can leave a live context with
            # the new certificate and the old key, which then fails every handshake.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(self.cert_file), str(self.key_file))
            self.context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, OSError) as e:
            log.warning("could not reload TLS certificate; keeping the old one", extra={"error": str(e)})
            return False
        self._seen = now
        log.info("TLS certificate reloaded", extra={"cert": str(self.cert_file)})
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except OSError as e:  # files briefly missing during a swap
                log.warning("TLS files not readable", extra={"error": str(e)})
