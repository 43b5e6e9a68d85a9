"""Certificate reload: handshakes after a file change present the new certificate, without a restart.

Handshakes run over in-memory BIOs (no sockets), through the same SSLContext object uvicorn serves with.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from certgen import Pair, make_ca, make_server, write

from webhook.tls import CertReloader, server_context


def handshake(server_ctx: ssl.SSLContext, ca: Pair) -> bytes:
    """Runs a TLS handshake in memory; returns the DER certificate the server presented."""
    client_ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(20):
        done = 0
        for side in (client, server):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done == 2:
            break
    cert = client.getpeercert(binary_form=True)
    assert cert is not None
    return cert


def der(pair: Pair) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return pair.cert.public_bytes(Encoding.DER)


def bump_mtime(*paths: Path) -> None:
    for p in paths:  # file systems with coarse timestamps: make the change visible regardless
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_new_handshakes_get_the_renewed_certificate(tmp_path: Path):
    ca = make_ca()
    first, second = make_server(ca), make_server(ca)
    cert, key = write(first, tmp_path)
    ctx = server_context(cert, key)
    reloader = CertReloader(ctx, cert, key)
    assert handshake(ctx, ca) == der(first)
    assert reloader.check() is False  # nothing changed

    write(second, tmp_path)
    bump_mtime(cert, key)
    assert reloader.check() is True
    assert handshake(ctx, ca) == der(second)


def test_half_written_pair_keeps_the_old_certificate_until_both_files_match(tmp_path: Path):
    ca = make_ca()
    first, second = make_server(ca), make_server(ca)
    cert, key = write(first, tmp_path)
    ctx = server_context(cert, key)
    reloader = CertReloader(ctx, cert, key)

    cert.write_bytes(second.cert_pem)  # the key is still the old one
    bump_mtime(cert)
    assert reloader.check() is False
    assert handshake(ctx, ca) == der(first)

    key.write_bytes(second.key_pem)
    bump_mtime(key)
    assert reloader.check() is True
    assert handshake(ctx, ca) == der(second)


def test_missing_files_do_not_break_the_running_context(tmp_path: Path):
    ca = make_ca()
    pair = make_server(ca)
    cert, key = write(pair, tmp_path)
    ctx = server_context(cert, key)
    reloader = CertReloader(ctx, cert, key)
    cert.unlink()
    assert reloader.check() is False
    assert handshake(ctx, ca) == der(pair)


def test_server_context_refuses_tls_1_1(tmp_path: Path):
    cert, key = write(make_server(make_ca()), tmp_path)
    ctx = server_context(cert, key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        server_context(cert, cert)  # a certificate is not a key
