"""The Kubernetes I/O edge: typed `kubernetes_asyncio` calls returning plain dicts.

Responses are read raw (`_preload_content=False`) and parsed as JSON: the pure core works on dicts as the API
returns them, and skipping model deserialisation makes listing a thousand Jobs several times faster.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from kubernetes_asyncio import client as k
from kubernetes_asyncio import config as kconfig

from .settings import Settings

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
MAX_LOG_LINE = 64 * 1024


class LineSplitter:
    """Bytes in, lines out; a line longer than `limit` becomes `limit`-sized pieces counted from its start,
    so the same log always yields the same lines, however it arrives in chunks (log event ids rely on it)."""

    def __init__(self, limit: int = MAX_LOG_LINE) -> None:
        self.limit, self.buf = limit, b""

    def _pieces(self, raw: bytes) -> list[str]:
        return [raw[i:i + self.limit].decode(errors="replace") for i in range(0, max(len(raw), 1), self.limit)]

    def feed(self, chunk: bytes) -> list[str]:
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        out = [p for raw in lines for p in self._pieces(raw.rstrip(b"\r"))]
        # A long unfinished line: emit its whole pieces now, keep the tail.
        whole = len(self.buf) - len(self.buf) % self.limit
        if whole and len(self.buf) > self.limit:
            if whole == len(self.buf):
                whole -= self.limit
            out += self._pieces(self.buf[:whole])
            self.buf = self.buf[whole:]
        return out

    def close(self) -> list[str]:
        rest, self.buf = self.buf, b""
        return self._pieces(rest) if rest else []


class KubeError(Exception):
    """A non-2xx answer from the apiserver, with its Status reason and message."""

    def __init__(self, status: int, reason: str = "", message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


async def make_api_client(settings: Settings) -> k.ApiClient:
    """An ApiClient from the kubeconfig in the settings, else in-cluster, with a pool sized for streams."""
    cfg = k.Configuration()
    if settings.kubeconfig:
        await kconfig.load_kube_config(config_file=str(settings.kubeconfig), client_configuration=cfg)
    else:
        kconfig.load_incluster_config(client_configuration=cfg)
    cfg.connection_pool_maxsize = settings.kube_connection_pool
    return k.ApiClient(configuration=cfg)


async def _read(resp: Any) -> Obj:
    try:
        body = await resp.read()
    finally:
        resp.release()
    if not 200 <= resp.status < 300:
        try:
            status = json.loads(body)
        except ValueError:
            status = {"message": body.decode(errors="replace")[:500]}
        raise KubeError(resp.status, status.get("reason", ""), status.get("message", ""))
    return json.loads(body) if body else {}


async def _unless_missing(call: Awaitable[Any]) -> Obj | None:
    """The answer of a call on one named object, or None when it does not exist (404)."""
    try:
        return await _read(await call)
    except KubeError as e:
        if e.status == 404:
            return None
        raise


async def _events(resp: Any) -> AsyncIterator[Obj]:
    """Watch events from a raw watch response (one JSON object a line); an error answer raises KubeError."""
    try:
        if resp.status != 200:
            await _read(resp)
        async for line in resp.content:
            if line.strip():
                yield json.loads(line)
    finally:
        resp.release()


class Kube:
    """The handful of calls the builder makes, each one line over the typed client."""

    def __init__(self, api: k.ApiClient, timeout: float = 20.0) -> None:
        self.api = api
        # Typed as Any: with _preload_content=False the calls return raw responses, not what the stubs say.
        self.batch: Any = k.BatchV1Api(api)
        self.core: Any = k.CoreV1Api(api)
        self.authn: Any = k.AuthenticationV1Api(api)
        self.authz: Any = k.AuthorizationV1Api(api)
        self.timeout = timeout

    def _kw(self, **extra: Any) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.timeout, **extra}

    async def create_job(self, namespace: str, body: Obj, dry_run: bool = False) -> Obj:
        kw = self._kw(dry_run="All") if dry_run else self._kw()
        return await _read(await self.batch.create_namespaced_job(namespace, body, **kw))

    async def get_job(self, namespace: str, name: str) -> Obj | None:
        return await _unless_missing(self.batch.read_namespaced_job(name, namespace, **self._kw()))

    async def list_jobs(self, namespace: str, selector: str) -> list[Obj]:
        out = await _read(await self.batch.list_namespaced_job(namespace, label_selector=selector, **self._kw()))
        return out.get("items") or []

    async def patch_job(self, namespace: str, name: str, patch: Obj) -> Obj:
        return await _read(await self.batch.patch_namespaced_job(
            name, namespace, patch, **self._kw(_content_type=MERGE_PATCH)))

    async def delete_job(self, namespace: str, name: str) -> None:
        body = {"propagationPolicy": "Background"}
        try:
            await _read(await self.batch.delete_namespaced_job(name, namespace, body=body, **self._kw()))
        except KubeError as e:
            if e.status != 404:
                raise

    async def create_pod(self, namespace: str, body: Obj) -> Obj:
        return await _read(await self.core.create_namespaced_pod(namespace, body, **self._kw()))

    async def delete_pod(self, namespace: str, name: str) -> None:
        await _unless_missing(self.core.delete_namespaced_pod(name, namespace, **self._kw()))

    async def get_pvc(self, namespace: str, name: str) -> Obj | None:
        return await _unless_missing(self.core.read_namespaced_persistent_volume_claim(name, namespace, **self._kw()))

    async def list_pods(self, namespace: str, selector: str) -> list[Obj]:
        return (await self.list_pods_rv(namespace, selector))[0]

    async def list_pods_rv(self, namespace: str, selector: str) -> tuple[list[Obj], str]:
        """The pods and the list's resourceVersion, to watch from exactly there."""
        out = await _read(await self.core.list_namespaced_pod(namespace, label_selector=selector, **self._kw()))
        return out.get("items") or [], (out.get("metadata") or {}).get("resourceVersion", "")

    async def watch_pods(
        self, namespace: str, selector: str, timeout_seconds: int, resource_version: str = ""
    ) -> AsyncIterator[Obj]:
        """Watch events for the selected pods (after `resource_version`) until the server ends the watch."""
        extra = {"resource_version": resource_version} if resource_version else {}
        resp = await self.core.list_namespaced_pod(
            namespace, label_selector=selector, watch=True, timeout_seconds=timeout_seconds, **extra,
            _preload_content=False, _request_timeout=timeout_seconds + 10,
        )
        async for event in _events(resp):
            yield event

    def _everywhere(self, kind: str) -> Any:
        return {"jobs": self.batch.list_job_for_all_namespaces,
                "pods": self.core.list_pod_for_all_namespaces}[kind]

    async def list_everywhere(self, kind: str, selector: str) -> tuple[list[Obj], str]:
        """Every selected Job or pod ("jobs"/"pods") in the cluster, and the list's resourceVersion."""
        out = await _read(await self._everywhere(kind)(
            label_selector=selector, _preload_content=False, _request_timeout=max(self.timeout, 60)))
        return out.get("items") or [], (out.get("metadata") or {}).get("resourceVersion", "")

    async def watch_everywhere(self, kind: str, selector: str, resource_version: str, timeout_seconds: int
                               ) -> AsyncIterator[Obj]:
        """Watch events for every selected Job or pod after `resource_version`, with bookmarks."""
        resp = await self._everywhere(kind)(
            label_selector=selector, watch=True, resource_version=resource_version,
            allow_watch_bookmarks=True, timeout_seconds=timeout_seconds,
            _preload_content=False, _request_timeout=timeout_seconds + 30)
        async for event in _events(resp):
            yield event

    async def stream_log(self, namespace: str, pod: str, container: str, follow: bool) -> AsyncIterator[str]:
        """The container's log, line by line, following it while the container runs if asked to.

        Lines are split here, not by aiohttp's readline, so a huge line (a progress bar without newlines) is
        cut into pieces instead of failing the stream."""
        resp = await self.core.read_namespaced_pod_log(
            pod, namespace, container=container, follow=follow, _preload_content=False,
            _request_timeout=None if follow else self.timeout,
        )
        try:
            if resp.status != 200:
                await _read(resp)
            splitter = LineSplitter()
            async for chunk in resp.content.iter_any():
                for line in splitter.feed(chunk):
                    yield line
            for line in splitter.close():
                yield line
        finally:
            resp.release()

    async def token_review(self, token: str) -> Obj:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        return await _read(await self.authn.create_token_review(body, **self._kw()))

    async def subject_access_review(self, spec: Obj) -> Obj:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        return await _read(await self.authz.create_subject_access_review(body, **self._kw()))

    async def ping(self) -> bool:
        """Whether the apiserver answers (readiness)."""
        try:
            await _read(await k.VersionApi(self.api).get_code(**self._kw()))
            return True
        except Exception:
            return False
