"""Draining before shutdown: `Connection: close` once signalled, on the ASGI app and on a real uvicorn socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn
from poddefault_builders import pod, review
from support import wait_for

from webhook.app import create_app
from webhook.cache import PodDefaultCache
from webhook.drain import Drain
from webhook.drain import main as drain_main
from webhook.settings import Settings


def app_with(drain: Drain):
    cache = PodDefaultCache()
    cache.replace([], "1")
    return create_app(Settings(), cache, drain=drain)


async def test_responses_ask_to_close_the_connection_only_once_draining():
    drain = Drain()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(drain)), base_url="http://w") as client:
        before = await client.post("/mutate", json=review(pod()))
        assert before.status_code == 200 and before.headers.get("connection") is None
        drain.start()
        for response in (await client.post("/mutate", json=review(pod())), await client.get("/healthz")):
            assert response.status_code == 200
            assert response.headers.get_list("connection") == ["close"]
        assert (await client.post("/mutate", json=review(pod()))).json()["response"]["allowed"] is True


def http_get(sock: socket.socket, path: str) -> bytes:
    """One HTTP/1.1 request on a kept-alive socket; the raw response head and body."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: w\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\nok" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_real_server_closes_kept_alive_connections_after_the_next_answer_once_draining():
    drain = Drain()
    config = uvicorn.Config(app_with(drain), host="127.0.0.1", port=0, log_config=None, lifespan="off",
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10, what="uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert b"200 OK" in http_get(sock, "/healthz")
            assert b"200 OK" in http_get(sock, "/healthz"), "the connection is kept alive before draining"
            drain.start()
            answer = http_get(sock, "/healthz")
            assert b"200 OK" in answer and b"connection: close" in answer.lower()
            assert sock.recv(1) == b"", "the server closed the connection after that answer"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_drain_command_signals_the_server_process_then_waits():
    # A stand-in server process that reports the drain signal on stdout.
    child = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         "signal.signal(signal.SIGUSR1, lambda *a: (print('drained', flush=True), sys.exit(0)))\n"
         "print('ready', flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        drain_main(["--pid", str(child.pid), "--seconds", "0.3"])
        assert time.monotonic() - started >= 0.3
        assert child.stdout.readline().strip() == "drained"
        assert child.wait(timeout=5) == 0
    finally:
        child.kill()
        child.wait()


def test_the_drain_command_refuses_bad_arguments_and_a_missing_process(capsys):
    with pytest.raises(SystemExit) as bad:
        drain_main(["--seconds", "-1"])
    assert bad.value.code == 2 and "--seconds" in capsys.readouterr().err
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(SystemExit) as missing:
        drain_main(["--pid", str(gone.pid), "--seconds", "0"])
    assert missing.value.code == 1 and f"no process {gone.pid}" in capsys.readouterr().err
