"""When a user's namespace is provisioned: as soon as they log in, so their Start finds it ready.

Provisioning a new namespace is about ten API calls in three dependent phases, and the webhook must then learn
the new default PodDefaults before the first pod is admitted. Done inside the spawn, that is most of the hub's
share of a start when many users start at once (docs/benchmarks.md). A person logs in, then reads the spawn
form for seconds; an API client logs in before it can get a token. So the login starts provisioning in the
background (it never delays or fails a login), and the spawn awaits that same work if it is still running, or
skips it if it finished moments ago.

A namespace counts as fresh for `fresh_seconds` after a successful pass in this hub process, and only until
the user's server stops: every start after a stop (and every start after a hub restart) provisions fully,
which also repairs anything changed in the namespace since. Concurrent callers for one namespace share one
pass; a failed pass is not remembered, so the next caller tries again and sees the error.

After the namespace pass, the login also makes the user's workspace claim (`create_workspace`), so a first
start finds it bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from hub_config import background
from hub_config import constants as k
from hub_config.namespaces import ProvisionResult, ensure_user_namespace, namespace_name, namespace_template
from hub_config.settings import HubSettings

log = logging.getLogger(__name__)


class Provisioner:
    """Runs `ensure_user_namespace` at most once at a time per namespace, and not again while fresh."""

    def __init__(self, settings: HubSettings, fresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic,
                 ensure: Callable[..., Any] = ensure_user_namespace) -> None:
        self.settings, self.fresh_seconds, self.clock, self._ensure = settings, fresh_seconds, clock, ensure
        self._done: dict[str, float] = {}
        self._poddefaults_written: dict[str, float] = {}
        self._running: dict[str, asyncio.Future[ProvisionResult]] = {}

    def is_fresh(self, namespace: str) -> bool:
        done = self._done.get(namespace)
        return done is not None and self.clock() - done < self.fresh_seconds

    def wrote_poddefaults_within(self, namespace: str, seconds: float) -> bool:
        """Whether a pass applied PodDefaults to this namespace in the last `seconds`: the webhook learns them
        from its watch, so a pod admitted right now might miss them."""
        written = self._poddefaults_written.get(namespace)
        return written is not None and self.clock() - written < seconds

    def forget(self, namespace: str) -> None:
        """The next `ensure` for this namespace provisions fully (called when the user's server stops)."""
        self._done.pop(namespace, None)

    async def ensure(self, api: Any, username: str, namespace: str) -> ProvisionResult | None:
        """Provisions unless fresh (then None); joins a pass already running for the namespace."""
        if self.is_fresh(namespace):
            return None
        running = self._running.get(namespace)
        if running is None:
            running = asyncio.ensure_future(self._pass(api, username, namespace))
            self._running[namespace] = running
        return await asyncio.shield(running)

    async def _pass(self, api: Any, username: str, namespace: str) -> ProvisionResult:
        try:
            result: ProvisionResult = await self._ensure(api, username, namespace, self.settings)
            self._done[namespace] = self.clock()
            if result.applied_any(k.PODDEFAULT_KIND):
                self._poddefaults_written[namespace] = self.clock()
            return result
        finally:
            self._running.pop(namespace, None)

    def start_early(self, api: Any, username: str, namespace: str,
                    then: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Starts provisioning in the background, then `then` (the workspace claim); a failure is logged (the
        spawn will try again and say)."""
        async def run() -> None:
            try:
                await self.ensure(api, username, namespace)
                if then is not None:
                    await then()
            except Exception as e:
                log.warning("preparing %s at login failed (the spawn retries): %s", namespace, e)

        background.keep(asyncio.ensure_future(run()))


async def create_workspace(spawner: Any) -> bool:
    """Creates the user's workspace claim exactly as KubeSpawner would (its own manifest), unless it exists.

    Made at login, the claim is bound by the time the user presses Start: their first pod is not held back by
    the scheduler for an unbound claim (then retried with backoff, seconds), and a burst of first starts does
    not also make the cluster provision volumes. The spawner is marked `workspace_ready`, so its next start
    skips KubeSpawner's own create (a spawner that is not ours would make it and accept the 409). True if
    this call created the claim."""
    if not spawner.storage_pvc_ensure:
        return False
    try:
        await spawner.api.create_namespaced_persistent_volume_claim(spawner.namespace, spawner.get_pvc_manifest())
        created = True
    except ApiException as e:
        if e.status != 409:
            raise
        created = False
    spawner.workspace_ready = True  # the next start need not ask again (NotebookSpawner)
    return created


def new_users_workspace(users: Any, name: str) -> Callable[[], Awaitable[bool]]:
    """The workspace step for a user the login is about to create: by the time the namespace pass ends, the
    hub has created them (JupyterHub's `UserDict` finds users by name); if not, the spawn makes the claim."""
    async def then() -> bool:
        try:
            user = users[name]
        except KeyError:
            log.info("user %s not created yet; the first start makes their workspace claim", name)
            return False
        return await create_workspace(user.spawner)

    return then


def kubespawner_api_client(config: Any) -> Any:
    """The API client KubeSpawner itself uses: its shared `CoreV1Api` client, after loading the cluster config
    with the same arguments KubeSpawner passes (so the cached config and client are the very same ones)."""
    from kubespawner.clients import load_config, shared_client

    ks = config.KubeSpawner if "KubeSpawner" in config else {}
    load_config(host=ks.get("k8s_api_host"), ssl_ca_cert=ks.get("k8s_api_ssl_ca_cert"),
                verify_ssl=ks.get("k8s_api_verify_ssl"))
    return shared_client("CoreV1Api").api_client


def make_post_auth_hook(provisioner: Provisioner,
                        new_user_client: Callable[[Any], Any] = kubespawner_api_client
                        ) -> Callable[[Any, Any, dict[str, Any]], Any]:
    """`c.Authenticator.post_auth_hook`: start provisioning the namespace of the user's default server, then
    its workspace claim.

    A returning user's namespace and client are their own KubeSpawner's. A new user is *not* created here:
    JupyterHub creates them right after this hook and then calls the authenticator's `add_user` (which, for
    some authenticators, does real work), so their namespace is computed with the same slug rules
    (`namespace_name`), and only while KubeSpawner's namespace template is still ours. The auth model is
    returned unchanged; nothing here can fail the login."""
    settings = provisioner.settings

    def post_auth_hook(authenticator: Any, handler: Any, authenticated: dict[str, Any]) -> dict[str, Any]:
        name = str(authenticated.get("name") or "")
        try:
            user = handler.find_user(name)
            if user is not None:
                spawner = user.spawner
                if not spawner.active:
                    provisioner.start_early(spawner.api.api_client, user.name, spawner.namespace,
                                            then=lambda: create_workspace(spawner))
                return authenticated
            config = authenticator.config
            template = (config.KubeSpawner if "KubeSpawner" in config else {}).get("user_namespace_template")
            if template == namespace_template(settings):
                provisioner.start_early(new_user_client(config), name, namespace_name(name, settings.namespace_prefix),
                                        then=new_users_workspace(handler.users, name))
        except Exception as e:
            log.warning("could not start provisioning at login for %r: %s", name, e)
        return authenticated

    return post_auth_hook
