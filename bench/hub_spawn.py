"""Hub spawn benchmark: the pure form/selector work, namespace provisioning, and N concurrent real spawns.

    .venv/bin/python bench/hub_spawn.py [--users 50] [--kubeconfig .local/kubeconfig]
        [--hub-url http://10.250.0.1:30080] [--reserve-cpu 0.3] [--no-fit-cap] [--skip-provisioning] [--settle 1]
        [--no-baseline] [--quiet-busy 0.35] [--quiet-timeout 300]

1. Pure figures: form and selector work with 100 PodDefaults.
2. Namespace provisioning against the real apiserver (in-process, no hub), `--provision-users` users.
3. Spawns through the installed hub's REST API: `--users` users (`bench-<random>-<i>`) log in with the
   chart's shared password (read from its Secret), get a token, and all POST `/hub/api/users/{name}/server`
   at once with the smallest profile. Per user it records the request time, the time the hub reports the
   server ready (a 201 answer, else the `ready` event of the progress stream), and, from a watch on the
   notebook pods timestamped here on receipt, the pod's ADDED and Ready times.
   overhead = (hub ready - request) - (pod Ready - pod ADDED). It also reads the single-user server's
   "listening" log line (the container runtime's timestamp) to split the overhead, the hub's RSS and CPU
   (its process is found through /proc by the container's cgroup) before and after, then stops every
   server (DELETE .../server) and times that.
   Before the spawns it waits (`--quiet-busy`, at most `--quiet-timeout` s) until the machine's CPUs are at
   most 35% busy, so a run does not start inside the teardown of the one before it.
   Servers request CPU: the run is capped at what fits on the node, keeping `--reserve-cpu` cores of
   requests free for other users of the cluster (`--no-fit-cap` to spawn anyway, pods then stay Pending).
   At the end, also on failure, Ctrl-C or SIGTERM, the servers are stopped and the users' namespaces (with
   their PVCs) deleted. The hub users are deleted too with a token that has `admin:users`: `--admin-token`,
   or else one the script gets for the chart's first `admin_users` user with the generated admin password
   (the local install has `admin`); without either, a user may not delete itself, so its token is revoked.

4. Baseline (before the spawns; `--no-baseline` skips it): bench/jupyterhub_floor.py, the same number of
   starts at once in a JupyterHub on loopback whose spawner does nothing (JupyterHub's own per-start work),
   and the ratios `overhead_p50_s_over_floor` and `request_to_pod_added_p50_s_over_floor`.

Prints one line per figure; the last line is one JSON object with all of them. Traffic goes only to the
kubeconfig's apiserver, to `--hub-url` (the node address 10.250.0.1 or loopback) and to the baseline's
JupyterHub on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import secrets
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from jupyterhub_floor import floor_figures
from timing import process_figures, summary, wait_until_quiet

from hub_config import constants as k
from hub_config.form import configurations, labels_for_selection, render_form
from hub_config.namespaces import ensure_user_namespace, namespace_name
from hub_config.profiles import profile_list
from hub_config.settings import HubSettings

ROOT = Path(__file__).resolve().parent.parent
ALLOWED_HOSTS = {"10.250.0.1", "127.0.0.1", "localhost", "::1"}

def poddefaults(n: int) -> list[dict[str, Any]]:
    """A realistic mix: matchLabels, In, Exists, NotIn, plus hostile descriptions."""
    out = []
    for i in range(n):
        selector: dict[str, Any] = [
            {"matchLabels": {f"pd-{i}": "true"}},
            {"matchExpressions": [{"key": f"tier-{i % 5}", "operator": "In", "values": ["gold", "silver"]}]},
            {"matchExpressions": [{"key": f"gpu-{i}", "operator": "Exists"},
                                  {"key": "cpu-only", "operator": "DoesNotExist"}]},
            {"matchLabels": {f"x-{i}": "1"}, "matchExpressions": [{"key": "env", "operator": "NotIn",
                                                                   "values": ["prod"]}]},
        ][i % 4]
        out.append({"metadata": {"name": f"pd-{i:03d}"},
                    "spec": {"desc": f"<b>config {i}</b> & more", "selector": selector}})
    return out


def timed(fn: Any, repeat: int) -> float:
    """Seconds per call, best of 3 batches (the pure code is what we measure, not the scheduler)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def pure_figures() -> dict[str, float]:
    pds = poddefaults(100)
    names = [p["metadata"]["name"] for p in pds[:10]]
    settings = HubSettings(profiles=[{"slug": f"p{i}", "display_name": f"P{i}", "gpus": i % 2} for i in range(6)],
                           images=[{"slug": f"i{i}", "display_name": f"I{i}", "image": f"img:{i}"} for i in range(4)])
    profiles = profile_list(settings)
    base = {"component": "singleuser-server"}
    configs = configurations(pds, preselected=names[:3], base_labels=base)
    return {
        "labels_for_selection_10_of_100_us": timed(lambda: labels_for_selection(pds, names, base), 500) * 1e6,
        "configurations_100_ms": timed(lambda: configurations(pds, names[:3], base), 50) * 1e3,
        "render_form_100_ms": timed(lambda: render_form(profiles, configs, {}, "/hub/spawn-preview"), 50) * 1e3,
    }


async def provisioning_figures(kubeconfig: Path, users: int) -> dict[str, float | None]:
    from kubernetes_asyncio import client, config

    api = await config.new_client_from_config(config_file=str(kubeconfig))
    settings = HubSettings(namespace_prefix="nbp-bench-", namespace_labels={k.TEST_LABEL: "true"},
                           builder={"url": "http://builder:8080", "registry": "registry:5000"})
    names = [f"bench-{secrets.token_hex(4)}" for _ in range(users)]
    first, again = [], []
    try:
        for user in names:
            ns = namespace_name(user, settings.namespace_prefix)
            t0 = time.perf_counter()
            await ensure_user_namespace(api, user, ns, settings)
            t1 = time.perf_counter()
            await ensure_user_namespace(api, user, ns, settings)
            first.append(t1 - t0)
            again.append(time.perf_counter() - t1)
        # One user, many concurrent spawns (e.g. several named servers at once).
        one = names[0]
        t0 = time.perf_counter()
        await asyncio.gather(*(ensure_user_namespace(api, one, namespace_name(one, settings.namespace_prefix),
                                                     settings) for _ in range(8)))
        concurrent = time.perf_counter() - t0
    finally:
        core = client.CoreV1Api(api)
        for user in names:
            with contextlib.suppress(client.ApiException):
                await core.delete_namespace(namespace_name(user, settings.namespace_prefix))
        await api.close()

    def p95(xs: list[float]) -> float:
        return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]

    return {
        "provision_first_p50_ms": statistics.median(first) * 1e3,
        "provision_first_p95_ms": p95(first) * 1e3,
        "provision_repeat_p50_ms": statistics.median(again) * 1e3,
        "provision_repeat_p95_ms": p95(again) * 1e3,
        "provision_8_concurrent_same_user_ms": concurrent * 1e3,
    }


# ---------------------------------------------------------------------------------------------------------
# The real thing: N users spawn at once through the installed hub's REST API.
# ---------------------------------------------------------------------------------------------------------

SINGLEUSER_SELECTOR = "component=singleuser-server"
# Lines the single-user server logs once it listens (jupyter_server / jupyterhub-singleuser).
LISTENING_MARKERS = ("is running at", "Jupyter Server", "running at:")


def check_target(url: str) -> None:
    """Traffic goes to the local node address or loopback only."""
    host = httpx.URL(url).host
    if host not in ALLOWED_HOSTS:
        raise SystemExit(f"--hub-url host {host!r} is not one of {sorted(ALLOWED_HOSTS)}")


def cpu_quantity(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def mem_quantity(q: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * mult
    return float(q)


@dataclass
class PodTimes:
    """Local receipt times (time.time()) of watch events for one notebook pod."""

    added: float | None = None
    running: float | None = None
    ready: float | None = None
    deleted: float | None = None
    name: str = ""
    cpu_request: str | None = None
    mem_request: str | None = None
    phase: str = ""


@dataclass
class UserRun:
    name: str
    namespace: str
    token: str = ""
    token_id: str = ""
    login_s: float | None = None
    requested: float | None = None
    post_status: int | None = None
    ready: float | None = None
    error: str | None = None
    listening: float | None = None
    listening_line: str = ""
    stop_requested: float | None = None
    stopped: float | None = None
    stop_error: str | None = None


class PodWatch:
    """List+watch of notebook pods in all namespaces, kept only for the benchmark's namespaces."""

    def __init__(self, api: Any, namespaces: set[str]) -> None:
        self.api, self.namespaces = api, namespaces
        self.pods: dict[str, PodTimes] = {}
        self.task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    def _record(self, kind: str, obj: dict[str, Any], now: float) -> None:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        ns = meta.get("namespace")
        if ns not in self.namespaces:
            return
        t = self.pods.setdefault(ns, PodTimes(name=meta.get("name", "")))
        if kind == "DELETED":
            t.deleted = t.deleted or now
            return
        if t.added is None:
            t.added = now
        containers = (obj.get("spec") or {}).get("containers") or []
        if containers and t.cpu_request is None:
            requests = (containers[0].get("resources") or {}).get("requests") or {}
            t.cpu_request, t.mem_request = requests.get("cpu"), requests.get("memory")
        t.phase = status.get("phase", "")
        statuses = status.get("containerStatuses") or []
        if t.running is None and t.phase == "Running" and statuses and all(
                (s.get("state") or {}).get("running") for s in statuses):
            t.running = now
        if t.ready is None and any(c.get("type") == "Ready" and c.get("status") == "True"
                                   for c in status.get("conditions") or []):
            t.ready = now

    async def _run(self) -> None:
        from kubernetes_asyncio import client, watch

        core = client.CoreV1Api(self.api)
        while True:  # re-list after a watch ends or fails; cancelled at the end of the benchmark
            try:
                resp = await core.list_pod_for_all_namespaces(label_selector=SINGLEUSER_SELECTOR,
                                                              _preload_content=False)
                listed = json.loads(await resp.read())
                now = time.time()
                for pod in listed.get("items", []):
                    self._record("ADDED", pod, now)
                self.synced.set()
                w = watch.Watch()
                # A partial has no ":return:" docstring, so the client hands over the JSON without building
                # V1Pod models (milliseconds per event, which would delay the receipt times measured here).
                method = functools.partial(core.list_pod_for_all_namespaces)
                async with w.stream(method, label_selector=SINGLEUSER_SELECTOR,
                                    resource_version=listed["metadata"]["resourceVersion"],
                                    timeout_seconds=240, allow_watch_bookmarks=False) as stream:
                    async for event in stream:
                        self._record(event["type"], event["raw_object"], time.time())
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a broken watch is re-listed, not fatal
                print(f"# pod watch restarted: {e!r}", file=sys.stderr)
                await asyncio.sleep(0.5)

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.synced.wait(), 30)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


# -- the hub process on this machine ------------------------------------------------------------------------

def hub_process(container_id: str) -> int | None:
    """PID of the jupyterhub process in the hub container (found by its cgroup, then its command line)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if container_id not in (proc / "cgroup").read_text():
                continue
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"/jupyterhub") or part == b"jupyterhub" for part in cmd[:3]):
            return int(proc.name)
    return None


def cgroup_memory_mib(pod_uid: str, container_id: str) -> float | None:
    """The hub container's cgroup memory usage (v1 or v2 layout), None if not found."""
    for qos in ("burstable", "guaranteed", "besteffort", ""):
        for base in (Path("/sys/fs/cgroup/memory/kubepods"), Path("/sys/fs/cgroup/kubepods")):
            d = (base / qos if qos else base) / f"pod{pod_uid}" / container_id
            for name in ("memory.usage_in_bytes", "memory.current"):
                with contextlib.suppress(OSError, ValueError):
                    return int((d / name).read_text()) / 2**20
    return None


async def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- hub REST calls ----------------------------------------------------------------------------------------

async def get_token(http: httpx.AsyncClient, user: str, password: str) -> tuple[str, str]:
    """Logs the user in (the login form creates the hub user), then asks for a token with the password."""
    async with httpx.AsyncClient(base_url=str(http.base_url), trust_env=False, timeout=30) as browser:
        await browser.get("/hub/login")
        r = await browser.post("/hub/login", data={"username": user, "password": password,
                                                   "_xsrf": browser.cookies.get("_xsrf", "")})
        if r.status_code != 302:
            raise RuntimeError(f"login of {user} failed: {r.status_code}")
    r = await http.post(f"/hub/api/users/{user}/tokens",
                        json={"auth": {"username": user, "password": password},
                              "note": "bench/hub_spawn.py", "expires_in": 3600})
    r.raise_for_status()
    return str(r.json()["token"]), str(r.json()["id"])


async def wait_progress_ready(http: httpx.AsyncClient, run: UserRun, timeout: float) -> None:
    """Follows the spawn's progress event stream; ready time = local receipt of the `ready` event."""
    headers = {"Authorization": f"token {run.token}"}
    async with asyncio.timeout(timeout):
        async with http.stream("GET", f"/hub/api/users/{run.name}/server/progress", headers=headers,
                               timeout=httpx.Timeout(10, read=timeout)) as r:
            if r.status_code != 200:
                run.error = f"progress {r.status_code}: {(await r.aread())[:200]!r}"
                return
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("ready"):
                    run.ready = time.time()
                    return
                if event.get("failed"):
                    run.error = f"spawn failed: {event.get('message')}"
                    return
    run.error = run.error or "progress stream ended without ready"


async def spawn_one(http: httpx.AsyncClient, run: UserRun, options: dict[str, Any], timeout: float) -> None:
    headers = {"Authorization": f"token {run.token}"}
    run.requested = time.time()
    try:
        r = await http.post(f"/hub/api/users/{run.name}/server", json=options, headers=headers,
                            timeout=httpx.Timeout(60))
        run.post_status = r.status_code
        if r.status_code == 201:
            run.ready = time.time()  # finished within the hub's slow_spawn_timeout
        elif r.status_code == 202:
            await wait_progress_ready(http, run, timeout)
        else:
            run.error = f"POST {r.status_code}: {r.text[:300]}"
    except (httpx.HTTPError, TimeoutError) as e:
        run.error = f"{type(e).__name__}: {e}"


async def stop_one(http: httpx.AsyncClient, run: UserRun, timeout: float) -> None:
    """DELETE the server; stopped = hub answered 204, or its model shows no server (polled every 0.25 s)."""
    headers = {"Authorization": f"token {run.token}"}
    run.stop_requested = time.time()
    try:
        r = await http.delete(f"/hub/api/users/{run.name}/server", headers=headers, timeout=httpx.Timeout(60))
        if r.status_code == 204:
            run.stopped = time.time()
            return
        if r.status_code != 202:
            run.stop_error = f"DELETE {r.status_code}: {r.text[:200]}"
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            g = await http.get(f"/hub/api/users/{run.name}", headers=headers)
            if g.status_code == 200 and not (g.json().get("servers") or {}).get(""):
                run.stopped = time.time()
                return
        run.stop_error = "stop timed out"
    except httpx.HTTPError as e:
        run.stop_error = f"{type(e).__name__}: {e}"


async def listening_time(core: Any, namespace: str, pod: str) -> tuple[float | None, str]:
    """When the single-user server logged that it listens (container runtime's timestamp of that line)."""
    from datetime import datetime

    with contextlib.suppress(Exception):
        text = await core.read_namespaced_pod_log(pod, namespace, timestamps=True, limit_bytes=200_000)
        for line in str(text).splitlines():
            stamp, _, message = line.partition(" ")
            if any(m in message for m in LISTENING_MARKERS):
                # RFC 3339 with nanoseconds: keep microseconds for fromisoformat.
                head, _, frac = stamp.rstrip("Z").partition(".")
                return (datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp(),
                        message[:200])
    return None, ""


# -- cluster facts ------------------------------------------------------------------------------------------

async def hub_facts(api: Any, namespace: str) -> dict[str, Any]:
    """Shared password, settings, and the hub pod's uid/container id, from the chart's objects."""
    from kubernetes_asyncio import client

    core = client.CoreV1Api(api)
    secrets_ = await core.list_namespaced_secret(namespace, label_selector=f"{k.COMPONENT_KEY}=hub")
    secret = next(s for s in secrets_.items if s.data and "shared-password" in s.data)

    def text(key: str) -> str:
        return base64.b64decode(secret.data[key]).decode()

    settings = yaml.safe_load(text("settings.yaml"))
    pods = await core.list_namespaced_pod(namespace, label_selector=f"{k.COMPONENT_KEY}=hub")
    pod = next(p for p in pods.items if p.status.phase == "Running")
    container_id = pod.status.container_statuses[0].container_id.split("://", 1)[-1]
    admins = settings.get("admin_users") or []
    admin = (admins[0], text("admin-password")) if admins and "admin-password" in secret.data else None
    return {"password": text("shared-password"), "settings": settings,
            "admin": admin, "pod_uid": pod.metadata.uid, "container_id": container_id}


def smallest_profile(settings: dict[str, Any]) -> tuple[str, float, float]:
    """(slug, cpu request in cores, memory request in bytes) of the profile that requests least."""
    lr = settings.get("limit_range") or {}
    cands = []
    for p in settings.get("profiles") or []:
        cpu = p.get("cpu_guarantee")
        cpu = float(cpu) if cpu is not None else cpu_quantity(lr.get("default_request_cpu", "100m"))
        mem = mem_quantity(str(p.get("mem_guarantee") or lr.get("default_request_memory", "256Mi")))
        cands.append((cpu, mem, p["slug"]))
    cpu, mem, slug = min(cands)
    return slug, cpu, mem


async def node_headroom(api: Any) -> dict[str, float]:
    """Allocatable minus the requests of every non-terminated pod, summed over nodes (one node here)."""
    from kubernetes_asyncio import client

    core = client.CoreV1Api(api)
    nodes = await core.list_node()
    cpu = sum(cpu_quantity(n.status.allocatable["cpu"]) for n in nodes.items)
    mem = sum(mem_quantity(n.status.allocatable["memory"]) for n in nodes.items)
    pods_alloc = sum(int(n.status.allocatable["pods"]) for n in nodes.items)
    pods = await core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded,status.phase!=Failed")
    used_cpu = used_mem = 0.0
    for p in pods.items:
        for c in p.spec.containers:
            req = (c.resources.requests if c.resources else None) or {}
            used_cpu += cpu_quantity(req.get("cpu", "0"))
            used_mem += mem_quantity(req.get("memory", "0"))
    return {"cpu_free": cpu - used_cpu, "mem_free": mem - used_mem, "pods_free": pods_alloc - len(pods.items),
            "cpu_allocatable": cpu}


async def delete_namespaces(api: Any, namespaces: list[str], timeout: float) -> list[str]:
    """Deletes the namespaces (and so their PVCs) and waits until they are gone; returns leftovers."""
    from kubernetes_asyncio import client

    core = client.CoreV1Api(api)
    for ns in namespaces:
        with contextlib.suppress(client.ApiException):
            await core.delete_namespace(ns)
    deadline = time.monotonic() + timeout
    left = list(namespaces)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(1)
        existing = {n.metadata.name for n in (await core.list_namespace()).items}
        left = [ns for ns in left if ns in existing]
    return left


async def spawn_figures(args: argparse.Namespace) -> dict[str, Any]:
    from kubernetes_asyncio import client, config

    check_target(args.hub_url)
    api = await config.new_client_from_config(config_file=str(args.kubeconfig))
    core = client.CoreV1Api(api)
    facts = await hub_facts(api, args.namespace)
    slug, cpu_req, mem_req = smallest_profile(facts["settings"])
    room = await node_headroom(api)
    fit = int(min((room["cpu_free"] - args.reserve_cpu) / cpu_req, room["mem_free"] / mem_req,
                  room["pods_free"] - 5))
    users = args.users if args.no_fit_cap else max(0, min(args.users, fit))
    out: dict[str, Any] = {
        "spawn_users_requested": args.users, "spawn_users": users, "profile": slug,
        "profile_cpu_request": cpu_req, "profile_mem_request_mib": mem_req / 2**20,
        "node_cpu_free_before": round(room["cpu_free"], 3), "reserve_cpu": args.reserve_cpu,
        "users_that_fit": fit,
    }
    if users < args.users:
        print(f"# only {users} of {args.users} fit: each server requests {cpu_req * 1000:.0f}m CPU and "
              f"{mem_req / 2**20:.0f} MiB; the node has {room['cpu_free'] * 1000:.0f}m CPU and "
              f"{room['mem_free'] / 2**30:.1f} GiB unrequested, minus {args.reserve_cpu * 1000:.0f}m kept "
              "for other users of the cluster", file=sys.stderr)
    if users == 0:
        await api.close()
        return out
    tag = secrets.token_hex(3)
    runs = [UserRun(name=f"bench-{tag}-{i}", namespace=namespace_name(f"bench-{tag}-{i}",
                                                                     facts["settings"]["namespace_prefix"]))
            for i in range(users)]
    watch = PodWatch(api, {r.namespace for r in runs})
    pid = hub_process(facts["container_id"])
    limits = httpx.Limits(max_connections=users * 2 + 10, max_keepalive_connections=users * 2 + 10)
    http = httpx.AsyncClient(base_url=args.hub_url, limits=limits, timeout=httpx.Timeout(30),
                             trust_env=False)
    spawn_timeout = float(facts["settings"].get("start_timeout", 300)) + 60
    admin_token: str | None = args.admin_token
    admin_token_id = ""
    try:
        sem = asyncio.Semaphore(8)

        async def login(run: UserRun) -> None:
            async with sem:
                start = time.time()
                run.token, run.token_id = await get_token(http, run.name, facts["password"])
                run.login_s = time.time() - start

        await asyncio.gather(*(login(r) for r in runs))
        if not admin_token and facts["admin"]:  # the chart's admin (local values): its token deletes the users
            admin_token, admin_token_id = await get_token(http, *facts["admin"])
        await watch.start()
        await asyncio.sleep(args.settle)  # let the hub settle after the logins (a person reads the form)
        if args.quiet_busy < 1:  # not inside a previous run's teardown (50 pods, volumes, namespaces going away)
            out["quiet_wait_s"], out["machine_busy_before"] = await wait_until_quiet(args.quiet_busy,
                                                                                     args.quiet_timeout)
        before = process_figures(pid)
        out["hub_pid"] = pid
        out["hub_rss_before_mib"] = before["rss_mib"]
        out["hub_cgroup_mem_before_mib"] = cgroup_memory_mib(facts["pod_uid"], facts["container_id"])
        out["load_before"] = await load_avg()

        t0 = time.time()
        await asyncio.gather(*(spawn_one(http, r, {"profile": slug}, spawn_timeout) for r in runs))
        out["spawn_wall_s"] = time.time() - t0
        await asyncio.sleep(1)  # the last watch events
        after = process_figures(pid)
        out["hub_rss_after_mib"] = after["rss_mib"]
        out["hub_cgroup_mem_after_mib"] = cgroup_memory_mib(facts["pod_uid"], facts["container_id"])
        if before["cpu_s"] is not None and after["cpu_s"] is not None:
            out["hub_cpu_s_during_spawns"] = after["cpu_s"] - before["cpu_s"]
        out["load_after_spawns"] = await load_avg()
        for r in runs:
            pod = watch.pods.get(r.namespace)
            if pod and pod.name and r.ready:
                r.listening, r.listening_line = await listening_time(core, r.namespace, pod.name)

        t1 = time.time()
        await asyncio.gather(*(stop_one(http, r, 120) for r in runs if r.ready or r.post_status in (201, 202)))
        out["stop_wall_s"] = time.time() - t1
        await asyncio.sleep(1)
        out["hub_rss_after_stop_mib"] = process_figures(pid)["rss_mib"]
    finally:
        leftover = await cleanup(http, api, runs, args.cleanup_timeout, admin_token)
        out["hub_users_deleted"] = bool(admin_token)
        if admin_token_id:
            with contextlib.suppress(httpx.HTTPError):
                await http.delete(f"/hub/api/users/{facts['admin'][0]}/tokens/{admin_token_id}",
                                  headers={"Authorization": f"token {admin_token}"})
        await watch.stop()
        await http.aclose()
        await api.close()
        out["leftover_namespaces"] = leftover
    out.update(spawn_results(runs, watch.pods))
    if args.raw:
        args.raw.write_text(json.dumps({"runs": [vars(r) | {"token": "", "token_id": ""} for r in runs],
                                        "pods": {ns: vars(p) for ns, p in watch.pods.items()}}, indent=1))
    return out


async def cleanup(http: httpx.AsyncClient, api: Any, runs: list[UserRun], timeout: float,
                  admin_token: str | None) -> list[str]:
    """Stops what still runs, deletes the hub users where allowed, then the namespaces (PVCs with them)."""
    async def one(run: UserRun) -> None:
        if not run.token:
            return
        headers = {"Authorization": f"token {run.token}"}
        with contextlib.suppress(httpx.HTTPError):
            if run.stopped is None:
                await http.delete(f"/hub/api/users/{run.name}/server", headers=headers, timeout=30)
            if admin_token:
                r = await http.delete(f"/hub/api/users/{run.name}", timeout=30,
                                      headers={"Authorization": f"token {admin_token}"})
                if r.status_code in (204, 404):
                    return
            r = await http.delete(f"/hub/api/users/{run.name}", headers=headers, timeout=30)
            if r.status_code == 403:  # users may not delete themselves; revoke the token at least
                await http.delete(f"/hub/api/users/{run.name}/tokens/{run.token_id}", headers=headers, timeout=30)

    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*(one(r) for r in runs)), 120)
    return await delete_namespaces(api, [r.namespace for r in runs], timeout)


def spawn_results(runs: list[UserRun], pods: dict[str, PodTimes]) -> dict[str, Any]:
    total, pod_start, overhead, before_pod, after_ready, detect, stop, pod_gone = ([] for _ in range(8))
    errors = []
    for r in runs:
        if r.error or r.ready is None or r.requested is None:
            errors.append(f"{r.name}: {r.error or 'not ready'}")
            continue
        p = pods.get(r.namespace)
        total.append(r.ready - r.requested)
        if p and p.added and p.ready:
            pod_start.append(p.ready - p.added)
            overhead.append((r.ready - r.requested) - (p.ready - p.added))
            before_pod.append(p.added - r.requested)
            after_ready.append(r.ready - p.ready)
            if r.listening:
                detect.append(r.ready - max(r.listening, p.ready))
        if r.stopped and r.stop_requested:
            stop.append(r.stopped - r.stop_requested)
            if p and p.deleted:
                pod_gone.append(p.deleted - r.stop_requested)
    listening = []
    for r in runs:
        ready = pods[r.namespace].ready if r.namespace in pods else None
        if r.listening and ready:
            listening.append(r.listening - ready)
    out: dict[str, Any] = {"spawns_ok": len(total), "spawns_failed": len(errors),
                           "post_201": sum(r.post_status == 201 for r in runs),
                           "post_202": sum(r.post_status == 202 for r in runs)}
    out.update(summary("login", [r.login_s for r in runs if r.login_s is not None]))
    out.update(summary("overhead", overhead))
    out.update(summary("pod_start", pod_start))
    out.update(summary("total_spawn", total))
    out.update(summary("request_to_pod_added", before_pod))
    out.update(summary("pod_ready_to_hub_ready", after_ready))
    out.update(summary("pod_ready_to_server_listening", listening))
    out.update(summary("server_listening_to_hub_ready", detect))
    out.update(summary("stop", stop))
    out.update(summary("stop_to_pod_deleted", pod_gone))
    out["overhead_target_met"] = (out["overhead_p50_s"] is not None and out["overhead_p50_s"] <= 1.0)
    out["pod_requests"] = sorted({f"{p.cpu_request}/{p.mem_request}" for p in pods.values()})
    if errors:
        out["errors"] = errors[:10]
    return out


def ratios_to_floor(figures: dict[str, Any]) -> dict[str, float]:
    """The installed hub's figures over JupyterHub's own floor at the same concurrency (same machine, same run)."""
    floor = figures.get("floor_request_to_start_p50_s")
    if not floor:
        return {}
    return {f"{name}_over_floor": figures[name] / floor
            for name in ("overhead_p50_s", "request_to_pod_added_p50_s") if figures.get(name) is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent spawns through the hub")
    parser.add_argument("--provision-users", type=int, default=10, help="users for the provisioning section")
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / ".local" / "kubeconfig")
    parser.add_argument("--hub-url", default="http://10.250.0.1:30080")
    parser.add_argument("--namespace", default="notebook-platform", help="the chart's release namespace")
    parser.add_argument("--reserve-cpu", type=float, default=0.3,
                        help="cores of requests to leave free on the node for other users")
    parser.add_argument("--no-fit-cap", action="store_true", help="spawn --users even if they do not fit")
    parser.add_argument("--skip-provisioning", action="store_true")
    parser.add_argument("--quiet-busy", type=float, default=0.35,
                        help="before the spawns, wait until the machine's CPUs are at most this busy (1: no wait)")
    parser.add_argument("--quiet-timeout", type=float, default=300, help="wait at most this long for that")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds between the last login and the spawns (the hub provisions namespaces at login)")
    parser.add_argument("--skip-spawns", action="store_true")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the baseline: JupyterHub alone, same users at once (bench/jupyterhub_floor.py)")
    parser.add_argument("--cleanup-timeout", type=float, default=300)
    parser.add_argument("--raw", type=Path, help="write per-user timestamps (JSON) to this file")
    parser.add_argument("--admin-token", default=os.environ.get("HUB_ADMIN_TOKEN"),
                        help="a hub token with admin:users, to delete the benchmark users (env HUB_ADMIN_TOKEN)")
    args = parser.parse_args()
    figures: dict[str, Any] = {"users": args.users}
    figures.update(pure_figures())
    if not args.kubeconfig.is_file():
        figures["provision_first_p50_ms"] = None
        figures["overhead_p50_s"] = None
    else:
        if not args.skip_provisioning:
            figures.update(asyncio.run(provisioning_figures(args.kubeconfig, args.provision_users)))
        if not args.skip_spawns:
            if not args.no_baseline:
                figures.update(asyncio.run(floor_figures(args.users)))
            figures.update(asyncio.run(with_sigterm(spawn_figures(args))))
            figures.update(ratios_to_floor(figures))
    for key, value in figures.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    print(json.dumps({"bench": "hub_spawn", **{key: (round(v, 3) if isinstance(v, float) else v)
                                              for key, v in figures.items()}}))


async def with_sigterm(coro: Any) -> Any:
    """Runs `coro`; SIGTERM cancels it like Ctrl-C does, so its cleanup runs."""
    task = asyncio.ensure_future(coro)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


if __name__ == "__main__":
    main()
