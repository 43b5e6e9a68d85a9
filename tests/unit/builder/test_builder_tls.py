"""Certificate reload: a rotated certificate is served on the next handshake, a broken pair is not loaded."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from builder.tls import CertReloader

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def make_cert(dir_: Path, cn: str) -> tuple[Path, Path]:
    cert, key = dir_ / f"{cn}.crt", dir_ / f"{cn}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def served_cn(server_ctx: ssl.SSLContext) -> str:
    """Handshake in memory and return the CN of the certificate the server presented."""
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for end in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    der = client.getpeercert(binary_form=True)
    assert der is not None
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True, text=True)
    return out.stdout.strip().split("CN", 1)[1].strip(" =")


def test_rotated_certificate_is_served_after_a_check(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    for src, dst in zip(make_cert(tmp_path, "old"), (cert, key), strict=True):
        shutil.copy(src, dst)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    reloader = CertReloader(ctx, cert, key)
    assert reloader.check() is False
    assert served_cn(ctx) == "old"

    new_cert, new_key = make_cert(tmp_path, "new")
    shutil.copy(new_cert, cert)
    assert reloader.check() is False  # key does not match yet: keep serving the old pair
    assert served_cn(ctx) == "old"
    shutil.copy(new_key, key)
    assert reloader.check() is True
    assert served_cn(ctx) == "new"
