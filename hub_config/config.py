"""Settings -> JupyterHub/KubeSpawner traitlets config, in one function `jupyterhub_config.py` calls.

Kept out of `jupyterhub_config.py` so tests can call it on a fresh `Config` and so the config file stays
three lines an operator can read. Everything set here is plain `c.<Class>.<trait>`: an operator's extra
config loaded after it (the chart's `hub.extraConfig`) can override any of it with KubeSpawner's meaning.
"""

from __future__ import annotations

import sys
from typing import Any

from traitlets.config import Config

from hub_config import constants as k
from hub_config import gc_policy, spawn_gate, warm_up
from hub_config.database import is_sqlite_file, use_sqlite_wal
from hub_config.form import options_from_form
from hub_config.hooks import make_modify_pod_hook, make_options_form, make_pre_spawn_hook
from hub_config.messages import stopped_message
from hub_config.namespaces import managed_labels, namespace_template
from hub_config.preview import PREVIEW_ROUTE, make_preview_handler
from hub_config.profiles import profile_list
from hub_config.provisioner import Provisioner, make_post_auth_hook
from hub_config.settings import HubSettings, load_settings

SPAWNER_CLASS = "hub_config.spawner.NotebookSpawner"
# KubeSpawner's shared pod and event reflectors (all namespaces) list everything again whenever their watch
# ends, by default every 10 s. With a thousand Pod events in the cluster each relist is a 100 ms+ stall of the
# hub's event loop. A watch of 60 s, and a network timeout just above it, relist six times less often; a
# dead connection is still noticed within 90 s (KubeSpawner's default: 60 s).
REFLECTOR_WATCH_SECONDS = 60
REFLECTOR_REQUEST_TIMEOUT = 90
CULLER_SERVICE = "idle-culler"
WORKSPACE_VOLUME = "workspace"


def culler_service(settings: HubSettings) -> dict[str, Any]:
    """jupyterhub-idle-culler as a hub-managed service (the hub starts it and gives it a token)."""
    cull = settings.cull
    command = [
        sys.executable, "-m", "jupyterhub_idle_culler",
        f"--timeout={cull.timeout}", f"--cull-every={cull.every}",
        f"--concurrency={cull.concurrency}", f"--max-age={cull.max_age}",
    ]
    if cull.cull_users:
        command.append("--cull-users=True")
    return {"name": CULLER_SERVICE, "command": command}


def culler_role(settings: HubSettings) -> dict[str, Any]:
    """The scopes the culler documents as its minimum (plus deleting users only if it culls them)."""
    scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    if settings.cull.cull_users:
        scopes.append("admin:users")
    return {"name": CULLER_SERVICE, "scopes": scopes, "services": [CULLER_SERVICE]}


def _configure_auth(c: Config, settings: HubSettings, provisioner: Provisioner) -> None:
    c.JupyterHub.authenticator_class = settings.authenticator_class
    c.Authenticator.post_auth_hook = make_post_auth_hook(provisioner)
    c.Authenticator.allow_all = settings.allow_all
    if settings.allowed_users:
        c.Authenticator.allowed_users = set(settings.allowed_users)
    if settings.admin_users:
        c.Authenticator.admin_users = set(settings.admin_users)
    if settings.authenticator_class in ("shared-password", "SharedPasswordAuthenticator") or \
            settings.authenticator_class.endswith(".SharedPasswordAuthenticator"):
        if settings.shared_password:
            c.SharedPasswordAuthenticator.user_password = settings.shared_password.get_secret_value()
        if settings.admin_password:
            c.SharedPasswordAuthenticator.admin_password = settings.admin_password.get_secret_value()
    for cls, traits in settings.authenticator_config.items():
        for trait, value in traits.items():
            c[cls][trait] = value


def _configure_hub(c: Config, settings: HubSettings, provisioner: Provisioner) -> None:
    c.JupyterHub.bind_url = settings.bind_url
    c.JupyterHub.base_url = settings.base_url
    c.JupyterHub.hub_bind_url = settings.hub_bind_url
    if settings.hub_connect_url:
        c.JupyterHub.hub_connect_url = settings.hub_connect_url
    c.JupyterHub.db_url = settings.db_url
    if settings.db_sqlite_wal and is_sqlite_file(settings.db_url):
        use_sqlite_wal()
    if settings.cookie_secret_file:
        c.JupyterHub.cookie_secret_file = settings.cookie_secret_file
    c.JupyterHub.log_level = settings.log_level
    c.ConfigurableHTTPProxy.should_start = settings.proxy_should_start
    if settings.proxy_api_url:
        c.ConfigurableHTTPProxy.api_url = settings.proxy_api_url
    c.JupyterHub.cleanup_servers = False  # servers outlive hub restarts; KubeSpawner finds them again
    if settings.cull.enabled:
        c.JupyterHub.services = [culler_service(settings)]
        c.JupyterHub.load_roles = [culler_role(settings)]
    c.JupyterHub.extra_handlers = [(PREVIEW_ROUTE, make_preview_handler(settings, provisioner))]
    spawn_gate.install(settings.spawn_setup_concurrency, settings.spawn_setup_hold_max)


def _configure_spawner(c: Config, settings: HubSettings, provisioner: Provisioner) -> None:
    s = c.KubeSpawner
    c.JupyterHub.spawner_class = SPAWNER_CLASS
    s.enable_user_namespaces = True
    s.slug_scheme = "safe"
    s.user_namespace_template = namespace_template(settings)
    s.user_namespace_labels = {**managed_labels(k.COMPONENT_USER_NAMESPACE), k.PODDEFAULTS_LABEL: k.PODDEFAULTS_ENABLED}
    s.common_labels = {
        "app.kubernetes.io/name": "jupyterhub", "app": "jupyterhub", "heritage": "jupyterhub",
        k.MANAGED_BY_KEY: k.MANAGED_BY, k.PART_OF_KEY: k.PART_OF,
    }
    s.image = settings.image
    s.image_pull_policy = settings.image_pull_policy
    s.profile_list = profile_list(settings)
    s.start_timeout = settings.start_timeout
    s.http_timeout = settings.http_timeout
    s.default_url = settings.default_url
    s.service_account = settings.notebook_service_account
    s.automount_service_account_token = True  # the notebook calls the builder with this token
    preview_url = settings.base_url.rstrip("/") + "/hub/spawn-preview"
    s.options_form = make_options_form(settings, preview_url)
    s.options_from_form = options_from_form
    s.pre_spawn_hook = make_pre_spawn_hook(provisioner)
    s.modify_pod_hook = make_modify_pod_hook(settings, provisioner)
    s.post_stop_hook = make_post_stop_hook(provisioner)
    c.ResourceReflector.timeout_seconds = REFLECTOR_WATCH_SECONDS
    c.ResourceReflector.restart_seconds = REFLECTOR_WATCH_SECONDS
    c.ResourceReflector.request_timeout = REFLECTOR_REQUEST_TIMEOUT


def _configure_storage(c: Config, settings: HubSettings) -> None:
    st, s = settings.storage, c.KubeSpawner
    s.storage_pvc_ensure = True
    s.pvc_name_template = st.pvc_name
    s.storage_capacity = st.capacity
    s.storage_access_modes = list(st.access_modes)
    if st.storage_class is not None:
        s.storage_class = st.storage_class
    s.storage_extra_labels = {k.WORKSPACE_LABEL: "true"}
    s.volumes = [{"name": WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
    s.volume_mounts = [{"name": WORKSPACE_VOLUME, "mountPath": st.home_dir}]
    s.environment = {k.ENV_WORKSPACE_PVC: "{pvc_name}", k.ENV_WORKSPACE_PATH: st.home_dir}


def make_post_stop_hook(provisioner: Provisioner) -> Any:
    def post_stop_hook(spawner: Any) -> None:
        """Says, once, that the server is gone and the workspace is not; the next start provisions fully."""
        provisioner.forget(spawner.namespace)
        spawner.log.info(stopped_message(spawner.user.name, spawner.name or "", spawner.namespace,
                                         spawner.pvc_name))

    return post_stop_hook


def configure(c: Config, settings: HubSettings) -> Config:
    """Fills `c` from settings and returns it."""
    provisioner = Provisioner(settings, settings.provision_fresh_seconds)
    _configure_hub(c, settings, provisioner)
    _configure_auth(c, settings, provisioner)
    _configure_spawner(c, settings, provisioner)
    _configure_storage(c, settings)
    return c


def configure_hub(c: Config) -> Config:
    """What a hub's config file calls: the settings from the environment, their traits, and, on the hub's
    running event loop, its garbage-collector policy (hub_config/gc_policy.py) and the start of its watches
    (hub_config/warm_up.py)."""
    settings = load_settings()
    configure(c, settings)
    policy = gc_policy.GcPolicy.from_settings(settings)
    gc_policy.start(policy)
    warm_up.start(then=gc_policy.freeze_unless_busy if policy.period_seconds > 0 else None)
    return c
