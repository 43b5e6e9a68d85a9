"""The webhook service: POST /mutate (AdmissionReview v1), /healthz, /readyz, /metrics; TLS; `main()`.

Thin shell around the pure core: read the body (bounded in size and time), check its shape, take the
namespace's PodDefaults from the watch-fed cache (no apiserver call), run `mutate`, answer with a JSON
Patch. Anything unexpected becomes a clear 400/413 or an allowed no-op, never a 500: the apiserver turns
a webhook failure into a failed pod creation for every user of the namespace.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from webhook import constants as c
from webhook.cache import PodDefaultCache
from webhook.drain import DRAIN_SIGNAL, CloseWhenDraining, Drain
from webhook.logs import log
from webhook.metrics import Metrics
from webhook.model import (
    AdmissionRequest,
    AdmissionResponse,
    AdmissionReview,
    CompiledPodDefault,
    PodShape,
    Status,
    is_pod_request,
    shape_error,
)
from webhook.mutate import PodDefaultConflict, mutate
from webhook.patch import make_patch
from webhook.settings import Settings

logger = logging.getLogger("webhook.app")

MAX_WARNINGS = 5


class Recorder(Protocol):
    def record(self, pd: CompiledPodDefault, message: str) -> None: ...


class BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Iterative depth check, so hostile nesting cannot exhaust the stack later (deepcopy, pydantic)."""
    # A value at depth d sits in a container at depth d - 1, so the answer is whether some non-empty
    # container lies at depth >= limit; only containers are pushed (scalars are most of a pod).
    if not isinstance(value, (dict, list)):
        return limit < 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth >= limit and children:
            return True
        stack.extend([(v, depth + 1) for v in children if isinstance(v, (dict, list))])
    return False


def parse_review(body: bytes) -> AdmissionReview:
    """Bytes -> AdmissionReview with a request, or BadRequest(400) saying what is wrong."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest(400, f"JSON nested deeper than {c.MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(400, f"body is not JSON: {e}") from None
    if json_depth_exceeds(data, c.MAX_JSON_DEPTH):
        raise BadRequest(400, f"JSON nested deeper than {c.MAX_JSON_DEPTH} levels")
    if not isinstance(data, dict):
        raise BadRequest(400, "body is not a JSON object")
    if data.get("apiVersion") != c.ADMISSION_API_VERSION or data.get("kind") != c.ADMISSION_KIND:
        raise BadRequest(400, f"expected apiVersion {c.ADMISSION_API_VERSION} and kind {c.ADMISSION_KIND}, got "
                              f"{str(data.get('apiVersion'))[:64]!r} / {str(data.get('kind'))[:64]!r}")
    if not isinstance(data.get("request"), dict):
        raise BadRequest(400, "AdmissionReview without request")
    try:
        review = AdmissionReview.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise BadRequest(400, f"invalid AdmissionReview at {where}: {first['msg']}") from None
    return review


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refusing more than `limit` bytes (413) or a body that trickles in (408)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(400, "invalid Content-Length")
        if int(declared) > limit:
            raise BadRequest(413, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BadRequest(413, f"request body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(408, f"request body not received within {timeout:g}s") from None
    return b"".join(chunks)


class Admitter:
    """Turns one AdmissionRequest into an AdmissionResponse; holds the app's collaborators."""

    def __init__(self, settings: Settings, cache: PodDefaultCache, metrics: Metrics,
                 events: Recorder | None) -> None:
        self.settings, self.cache, self.metrics, self.events = settings, cache, metrics, events

    def admit(self, req: AdmissionRequest) -> tuple[AdmissionResponse, str, dict[str, Any]]:
        """The response, the outcome (for metrics) and fields for the log line."""
        fields: dict[str, Any] = {"uid": req.uid, "namespace": req.namespace, "name": req.name,
                                  "operation": req.operation, "dry_run": bool(req.dryRun)}
        allow = AdmissionResponse(uid=req.uid, allowed=True)
        if not is_pod_request(req) or req.operation != "CREATE":
            fields["skipped"] = "not a pod CREATE"
            return allow, "unchanged", fields
        if req.object is None:
            raise BadRequest(400, "pod CREATE without request.object")
        problem = shape_error(PodShape, req.object)
        if problem is not None:
            raise BadRequest(400, f"request.object is not a pod: {problem}")

        original = req.object
        pod = dict(original)
        meta = dict(pod.get("metadata") or {})
        if not meta.get("namespace"):  # CREATE objects often omit it; the request carries it
            meta["namespace"] = req.namespace or ""
        pod["metadata"] = meta
        fields.update(namespace=meta["namespace"], name=meta.get("name") or meta.get("generateName"))

        if not self.cache.ready:
            fields["error"] = "PodDefault cache not synced"
            return self._failure(req.uid, "PodDefault cache not synced yet; try again shortly"), "error", fields

        poddefaults = self.cache.for_namespace(meta["namespace"])
        warnings = [f"PodDefault {pd.name} ignored: {pd.error}" for pd in poddefaults if pd.error][:MAX_WARNINGS]
        try:
            mutation = mutate(pod, poddefaults)
        except PodDefaultConflict as e:
            fields.update(conflict=e.message, poddefaults=e.poddefaults)
            if self.events is not None and not req.dryRun:
                try:
                    self._record_events(e, poddefaults)
                except Exception:  # Events are best effort; the denial must go out regardless
                    log(logger, "event_record_failed", logging.WARNING, exc_info=True, **fields)
            denied = AdmissionResponse(uid=req.uid, allowed=False, warnings=warnings or None,
                                       status=Status(code=400, reason="BadRequest", message=e.message))
            return denied, "conflict", fields
        except Exception:
            log(logger, "admission_failed", logging.ERROR, exc_info=True, **fields)
            return self._failure(req.uid, "internal error applying PodDefaults"), "error", fields

        fields["applied"] = mutation.applied
        result = _without_filled_namespace(original, mutation.pod)
        ops = make_patch(original, result)
        if not ops:
            allow.warnings = warnings or None
            return allow, "unchanged", fields
        patch = base64.b64encode(json.dumps(ops, separators=(",", ":")).encode()).decode()
        fields["patch_ops"] = len(ops)
        return AdmissionResponse(uid=req.uid, allowed=True, patch=patch, patchType="JSONPatch",
                                 warnings=warnings or None), "mutated", fields

    def _failure(self, uid: str, message: str) -> AdmissionResponse:
        if self.settings.failure_policy == "Ignore":
            return AdmissionResponse(uid=uid, allowed=True, warnings=[f"PodDefaults not applied: {message}"])
        return AdmissionResponse(uid=uid, allowed=False, status=Status(code=503, reason="ServiceUnavailable",
                                                                       message=message))

    def _record_events(self, conflict: PodDefaultConflict, poddefaults: tuple[CompiledPodDefault, ...]) -> None:
        by_name = {pd.name: pd for pd in poddefaults}
        assert self.events is not None
        for name in conflict.poddefaults:
            pd = by_name.get(name)
            if pd is None:
                continue
            mine = [cf.describe() for cf in conflict.conflicts if name in (cf.first, cf.second)]
            self.events.record(pd, f"Pod {conflict.pod} was denied: {'; '.join(mine)}")


def _without_filled_namespace(original: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The mutated pod as the patch must produce it: with the namespace as the request object had it
    (the apiserver fills it in later; a patch that adds it is not ours to send)."""
    orig_meta = original.get("metadata")
    if isinstance(orig_meta, dict) and orig_meta.get("namespace"):
        return result
    result = dict(result)
    meta = dict(result.get("metadata") or {})
    if isinstance(orig_meta, dict) and "namespace" in orig_meta:
        meta["namespace"] = orig_meta["namespace"]
    else:
        meta.pop("namespace", None)
    if orig_meta is None and not meta:
        result.pop("metadata", None)
    else:
        result["metadata"] = meta
    return result


def create_app(settings: Settings | None = None, cache: PodDefaultCache | None = None,
               metrics: Metrics | None = None, events: Recorder | None = None,
               drain: Drain | None = None) -> FastAPI:
    """The ASGI app. Background work (watch, certificate reload) is started by `serve`, not here, so
    tests can hand in a cache they fill themselves. `drain` switches responses to `Connection: close`
    when the replica is about to stop (webhook/drain.py)."""
    settings = settings or Settings()  # type: ignore[call-arg]
    cache = cache if cache is not None else PodDefaultCache()
    metrics = metrics or Metrics()
    metrics.bind_cache(lambda: len(cache), lambda: cache.ready, lambda: cache.last_sync)
    admitter = Admitter(settings, cache, metrics, events)
    app = FastAPI(title="notebook-platform PodDefault webhook", version="0.1.0")
    app.state.cache, app.state.metrics, app.state.admitter = cache, metrics, admitter
    app.state.drain = drain = drain or Drain()
    app.add_middleware(CloseWhenDraining, drain=drain)

    review_schema = {"$ref": "#/components/schemas/AdmissionReview"}

    @app.post("/mutate", response_model=AdmissionReview, response_model_exclude_none=True,
              openapi_extra={"requestBody": {"required": True,
                                             "content": {"application/json": {"schema": review_schema}}}},
              responses={400: {"description": "Malformed AdmissionReview"}, 413: {"description": "Body too large"}})
    async def mutate_pod(request: Request) -> Response:
        """Applies the matching PodDefaults to a pod being created; answers with a JSON Patch."""
        start = time.perf_counter()
        try:
            review = parse_review(await read_body(request, settings.max_body_bytes, settings.body_timeout))
            assert review.request is not None
            response, outcome, fields = admitter.admit(review.request)
        except BadRequest as e:
            metrics.rejected_requests.labels(str(e.status)).inc()
            log(logger, "request_rejected", logging.WARNING, status=e.status, detail=e.detail[:300])
            return JSONResponse({"detail": e.detail}, status_code=e.status)
        except Exception:  # a bug must not become a 500 the apiserver cannot explain
            metrics.rejected_requests.labels("400").inc()
            log(logger, "request_failed", logging.ERROR, exc_info=True)
            return JSONResponse({"detail": "could not process the AdmissionReview"}, status_code=400)
        elapsed = time.perf_counter() - start
        metrics.latency.observe(elapsed)
        metrics.admissions.labels(outcome).inc()
        log(logger, "admission", outcome=outcome, duration_ms=round(elapsed * 1000, 3), **fields)
        body = AdmissionReview(response=response).model_dump(exclude_none=True)
        return JSONResponse(body)

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        """The process serves HTTP."""
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse, responses={503: {"description": "Cache not synced"}})
    async def readyz() -> Response:
        """Ready once the PodDefault cache has completed its first list."""
        if not cache.ready:
            return JSONResponse({"detail": "PodDefault cache not synced yet"}, status_code=503)
        return PlainTextResponse("ok")

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    return app


# --- process entry point --------------------------------------------------------------------------------


async def serve(settings: Settings) -> None:
    """Runs the server with the watch and the certificate reloader until the server stops."""
    import uvicorn
    from kubernetes_asyncio import config as kconfig
    from kubernetes_asyncio.client import ApiClient

    from webhook.events import EventRecorder, kube_event_creator
    from webhook.tls import CertReloader

    if settings.kubeconfig:
        api_client = await kconfig.new_client_from_config(config_file=str(settings.kubeconfig))
    else:
        kconfig.load_incluster_config()
        api_client = ApiClient()
    metrics = Metrics()
    cache = PodDefaultCache()
    events = EventRecorder(kube_event_creator(api_client), metrics, settings.event_timeout, settings.event_interval)
    drain = Drain()
    app = create_app(settings, cache, metrics, events, drain)

    tls = bool(settings.cert_file and settings.key_file)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            ssl_certfile=str(settings.cert_file) if tls else None,
                            ssl_keyfile=str(settings.key_file) if tls else None,
                            timeout_keep_alive=30, lifespan="off")
    config.load()
    background = [asyncio.create_task(cache.run(api_client, settings.resync_period), name="poddefault-cache")]
    if settings.cert_controller_enabled:  # self-signed mode: keep the Secret and the caBundle current
        from webhook.certs import run_cert_controller

        background.append(asyncio.create_task(run_cert_controller(settings, api_client), name="cert-controller"))
    if tls:
        assert config.ssl is not None and settings.cert_file and settings.key_file
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        reloader = CertReloader(config.ssl, settings.cert_file, settings.key_file)
        background.append(asyncio.create_task(reloader.run(settings.cert_check_interval), name="cert-reload"))
    else:
        log(logger, "tls_disabled", logging.WARNING, detail="no cert_file/key_file: serving plain HTTP")

    def start_draining() -> None:
        drain.start()
        log(logger, "draining", detail="answering with Connection: close until SIGTERM")

    asyncio.get_running_loop().add_signal_handler(DRAIN_SIGNAL, start_draining)
    log(logger, "starting", host=settings.host, port=settings.port, tls=tls)
    try:
        await uvicorn.Server(config).serve()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await events.drain()
        await api_client.close()


def main() -> None:
    """Console script `notebook-platform-webhook`: settings from WEBHOOK_* variables."""
    from webhook import logs

    settings = Settings()  # type: ignore[call-arg]  # every field has a default; mypy does not see env input
    logs.configure(settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
