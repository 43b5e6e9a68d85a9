"""Serving certificates that are reloaded when their files change, without a restart.

cert-manager (or a Secret update) rewrites the mounted files in place. OpenSSL copies the certificate
into each connection when the connection is created, so calling `load_cert_chain` again on the server's
one SSLContext switches every later handshake to the new pair while open connections keep theirs.

A half-written pair (new certificate, old key) must not reach that context: OpenSSL would keep the new
certificate without a matching key and every handshake would fail. So both files are read once, copied to
a private directory, checked on a scratch context, and only then loaded into the live one (from the same
copies, so what was checked is what is served). A failed check keeps the old pair; the next check retries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from pathlib import Path

from webhook.logs import log

logger = logging.getLogger("webhook.tls")


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+, as the apiserver speaks) loaded from the files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class CertReloader:
    def __init__(self, context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
        self.context = context
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self._stamp = self._read_stamp()
        self.reloads = 0

    def _read_stamp(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            # mtime, size and inode: a Secret volume swaps a symlink, which changes the inode, not always mtime
            return tuple((s.st_mtime_ns, s.st_size, s.st_ino)
                         for s in (os.stat(self.cert_file), os.stat(self.key_file)))
        except OSError:
            return None

    def check(self) -> bool:
        """Reloads if either file changed since the last successful load; True if it reloaded."""
        stamp = self._read_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        try:
            with tempfile.TemporaryDirectory(prefix="webhook-tls-") as tmp:
                cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
                cert.write_bytes(self.cert_file.read_bytes())
                key.touch(mode=0o600)
                key.write_bytes(self.key_file.read_bytes())
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)  # raises on a bad pair
                self.context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as e:
            log(logger, "tls_reload_failed", logging.WARNING, cert_file=str(self.cert_file), error=str(e))
            return False
        self._stamp = stamp
        self.reloads += 1
        log(logger, "tls_reloaded", cert_file=str(self.cert_file))
        return True

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()
