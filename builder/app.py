"""The Builder REST API (FastAPI). Routes authenticate, check, and hand over to `builds`/`stream`.

Every refusal is `{"detail": "..."}` naming the reason or the field: 400 bad paths/references, 401 token, 403
RBAC/namespace/destination, 404, 409, 413 body size, 422 body shape (including unknown fields: a caller never
supplies pod spec), 429 namespace limit, 503 apiserver unreachable.
"""


import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import constants as c
from .agents import VolumeAgents
from .auth import Access, AuthError, Authorizer, Caller, Reviewer, bearer_token
from .builds import BuildService, LimitExceeded
from .cache import make_build_cache
from .events import parse_last_event_id
from .kube import Kube, KubeError, make_api_client
from .metrics import Metrics
from .model import Build, BuildList, BuildPhase, BuildRequest, ErrorResponse
from .settings import Settings
from .stream import build_events, plain_log
from .validate import RequestRejected, check_request

log = logging.getLogger("builder.app")
NAMESPACE_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Namespace = Annotated[str, Path(pattern=NAMESPACE_RE, max_length=63)]
Name = Annotated[str, Path(pattern=NAME_RE, max_length=253)]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


class BodyLimit:
    """413 for bodies over `limit` bytes: by Content-Length, or by reading a chunked body (bounded by the
    limit, which is small) before the app sees it. Raising from inside `receive` would not do: FastAPI turns
    errors while reading a body into a generic 400."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send)
                return
            more = message.get("more_body", False)
        replay = _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)
        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = b'{"detail":"request body larger than %d bytes"}' % self.limit
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A `receive` that returns the buffered messages, then defers to the real one (for disconnects)."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (the request cannot carry pod or Job settings)"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts) or "invalid request"


def create_app(settings: Settings | None = None, kube: Kube | None = None,
               reviewer: Reviewer | None = None) -> FastAPI:
    """The app. Without `kube`, the lifespan connects with the settings' kubeconfig (or in-cluster)."""
    settings = settings or Settings()
    metrics = Metrics()
    ready = {"ok": False, "checked": 0.0}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = None
        k = kube
        if k is None:
            owned = await make_api_client(settings)
            k = Kube(owned, settings.kube_request_timeout_seconds)
        app.state.kube = k
        # The watch cache needs a real apiserver: not made for a Kube a test hands in.
        cache = make_build_cache(k, agents=settings.volume_agent) if owned is not None and settings.watch_cache \
            else None
        agents = None
        if cache is not None:
            cache.start()
            if settings.volume_agent:
                agents = VolumeAgents(k, cache.agents, settings)
        app.state.cache = cache
        app.state.builds = BuildService(k, settings, cache, agents)
        app.state.auth = Authorizer(
            reviewer or k, ttl=settings.auth_cache_ttl_seconds, max_entries=settings.auth_cache_max_entries,
            restrict_service_accounts=settings.restrict_service_accounts_to_own_namespace,
        )
        reloader = getattr(app.state, "cert_reloader", None)
        reload_task = asyncio.create_task(reloader.run()) if reloader is not None else None
        try:
            yield
        finally:
            if reload_task is not None:
                reload_task.cancel()
            await app.state.auth.close()
            if cache is not None:
                await cache.stop()
            if agents is not None:
                await agents.close()
            if owned is not None:
                await owned.close()

    app = FastAPI(
        title="notebook-platform builder",
        version="1",
        description="Builds container images with Kaniko from a folder of a workspace volume.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics

    @app.middleware("http")
    async def observe_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(route, request.method, str(response.status_code)).observe(time.perf_counter() - start)
        return response

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(RequestRejected)
    async def on_rejected(_: Request, exc: RequestRejected) -> JSONResponse:
        headers = {"Retry-After": "10"} if isinstance(exc, LimitExceeded) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(AuthError)
    async def on_auth(_: Request, exc: AuthError) -> JSONResponse:
        metrics.auth.labels(str(exc.status)).inc()
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(KubeError)
    async def on_kube(request: Request, exc: KubeError) -> JSONResponse:
        log.error("kubernetes API error", extra={"path": request.url.path, "status": exc.status,
                                                 "reason": exc.reason, "error": exc.message})
        if exc.status == 403 and "exceeded quota" in exc.message:
            return JSONResponse({"detail": f"namespace quota: {exc.message}"}, status_code=429,
                                headers={"Retry-After": "30"})
        if exc.status in (400, 422):  # the apiserver refused the Job we rendered from this request
            return JSONResponse({"detail": f"Kubernetes refused the build Job: {exc.message}"}, status_code=400)
        if exc.status in (401, 403):
            detail = f"the builder's own Kubernetes credentials were refused: {exc.message}"
            return JSONResponse({"detail": detail}, status_code=500)
        return JSONResponse({"detail": f"Kubernetes API: {exc.reason} {exc.message}".strip()}, status_code=503)

    @app.exception_handler(OSError)
    async def on_io(_: Request, exc: OSError) -> JSONResponse:
        return JSONResponse({"detail": f"Kubernetes API unreachable: {exc}"}, status_code=503)

    def authorizer(verb: str) -> Callable[..., Awaitable[Caller]]:
        async def dependency(
            request: Request, namespace: Namespace, authorization: Annotated[str | None, Header()] = None
        ) -> Caller:
            token = bearer_token(authorization)
            return await request.app.state.auth.authorize(token, namespace, Access(verb))
        return dependency

    def svc(request: Request) -> BuildService:
        return request.app.state.builds  # type: ignore[no-any-return]

    base = f"{c.API_PREFIX}/namespaces/{{namespace}}/{c.RESOURCE}"

    @app.post(base, status_code=201, response_model=Build, responses={**ERRORS, 200: {"model": Build,
              "description": "An earlier successful build of the same content and destination (reused)."}})
    async def create_build(
        request: Request, response: Response, namespace: Namespace, body: BuildRequest,
        caller: Annotated[Caller, Depends(authorizer("create"))],
    ) -> Build:
        """Starts a build (201), or returns the earlier successful one when `contentHash` matches (200)."""
        try:
            checked = check_request(body, namespace, settings)
            auth: Authorizer = request.app.state.auth
            # The build reads the volume and may use a Secret and a service account: the caller must be
            # allowed those themselves, or a build would be a way around RBAC (a RUN step can read the
            # mounted push secret; a mounted service-account token acts as that account).
            extra = [Access("get", "persistentvolumeclaims", "", body.context.pvc)]
            if body.push_secret:
                extra.append(Access("get", "secrets", "", body.push_secret))
            if body.service_account_name:
                extra.append(Access("create", "serviceaccounts", "", body.service_account_name, "token"))
            for access in extra:
                ok, reason = await auth.allowed(caller, namespace, access)
                if not ok:
                    why = f" ({reason})" if reason else ""
                    raise AuthError(403, f"{caller.username} may not {access.describe()} in namespace "
                                         f"{namespace!r}, which this build would use{why}")
            build, created = await svc(request).create(namespace, checked, caller)
        except RequestRejected as e:
            metrics.builds.labels(f"rejected_{e.status}").inc()
            raise
        except AuthError as e:
            metrics.builds.labels(f"rejected_{e.status}").inc()
            raise
        metrics.builds.labels("created" if created else "reused").inc()
        if not created:
            response.status_code = 200
        return build

    @app.get(base, response_model=BuildList, responses=ERRORS)
    async def list_builds(
        request: Request, namespace: Namespace, caller: Annotated[Caller, Depends(authorizer("list"))],
        phase: BuildPhase | None = None,
    ) -> BuildList:
        """The namespace's builds (those whose Jobs still exist), oldest first; `?phase=` filters."""
        return BuildList(items=await svc(request).list(namespace, phase))

    @app.get(base + "/{name}", response_model=Build, responses=ERRORS)
    async def get_build(
        request: Request, namespace: Namespace, name: Name, caller: Annotated[Caller, Depends(authorizer("get"))],
    ) -> Build:
        build = await svc(request).get(namespace, name)
        if build is None:
            raise RequestRejected(404, "name", f"build {name!r} not found in namespace {namespace!r}")
        return build

    @app.delete(base + "/{name}", response_model=Build, responses=ERRORS)
    async def cancel_build(
        request: Request, namespace: Namespace, name: Name,
        caller: Annotated[Caller, Depends(authorizer("delete"))],
    ) -> Build:
        """Cancels a pending or running build: its pod stops and its phase becomes Cancelled."""
        build = await svc(request).cancel(namespace, name, caller)
        if build is None:
            raise RequestRejected(404, "name", f"build {name!r} not found in namespace {namespace!r}")
        metrics.cancels.inc()
        return build

    @app.get(base + "/{name}/logs", responses={**ERRORS, 200: {
        "description": "text/event-stream (default) or text/plain with ?follow=false",
        "content": {"text/event-stream": {}, "text/plain": {}}}})
    async def build_logs(
        request: Request, namespace: Namespace, name: Name, caller: Annotated[Caller, Depends(authorizer("get"))],
        follow: bool = True,
        last_event_id: Annotated[str | None, Header()] = None,
        last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
    ) -> Response:
        """Server-Sent Events: `{"phase": waiting|building|pushing|built|failed|log, ...}`; log events have ids
        (line numbers) so a reconnect with Last-Event-ID resumes; `: heartbeat` comments keep it alive."""
        service = svc(request)
        if not follow:
            try:
                text, phase = await plain_log(service, namespace, name)
            except LookupError:
                raise RequestRejected(404, "name", f"build {name!r} not found in namespace {namespace!r}") from None
            return PlainTextResponse(text, headers={"X-Build-Phase": phase})
        if await service.get_job(namespace, name) is None:
            raise RequestRejected(404, "name", f"build {name!r} not found in namespace {namespace!r}")
        start = parse_last_event_id(last_event_id or last_event_id_query)

        async def body() -> AsyncIterator[bytes]:
            metrics.streams.inc()
            try:
                async for chunk in build_events(service, namespace, name, start, settings.sse_heartbeat_seconds):
                    yield chunk
            finally:
                metrics.streams.dec()

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """Ready when the apiserver answers (checked at most every 5 s): every request needs it; and, with the
        watch cache, once it has listed the build Jobs and pods."""
        cache = getattr(request.app.state, "cache", None)
        if cache is not None and not cache.ready:
            return JSONResponse({"detail": "build cache not yet listed"}, status_code=503)
        now = time.monotonic()
        if now - ready["checked"] > 5 or not ready["ok"]:
            ready["ok"] = await request.app.state.kube.ping()
            ready["checked"] = now
        if ready["ok"]:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"detail": "Kubernetes API not reachable"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def main() -> None:
    """Console script `notebook-platform-builder`: JSON logs, uvicorn, settings from BUILDER_* variables."""
    import uvicorn

    from .logging_json import configure
    from .tls import CertReloader

    settings = Settings()
    configure(settings.log_level)
    app = create_app(settings)
    tls = {}
    if settings.tls_cert_file and settings.tls_key_file:
        tls = {"ssl_certfile": str(settings.tls_cert_file), "ssl_keyfile": str(settings.tls_key_file)}
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, proxy_headers=True,
                            timeout_graceful_shutdown=10, **tls)  # type: ignore[arg-type]
    config.load()
    if config.ssl is not None and settings.tls_cert_file and settings.tls_key_file:
        app.state.cert_reloader = CertReloader(config.ssl, settings.tls_cert_file, settings.tls_key_file,
                                               settings.tls_reload_seconds)
    uvicorn.Server(config).run()


