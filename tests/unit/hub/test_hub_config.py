"""Settings loading (env, values file) and jupyterhub_config.py as JupyterHub loads it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from kubespawner import KubeSpawner
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from hub_config import constants as k
from hub_config.config import configure
from hub_config.settings import SETTINGS_FILE_ENV, HubSettings, load_settings

ROOT = Path(__file__).resolve().parents[3]
CONFIG_FILE = ROOT / "hub_config" / "jupyterhub_config.py"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)


def load_hub_config() -> Config:
    """Exactly what `jupyterhub -f hub_config/jupyterhub_config.py` does with the file."""
    return PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()


def test_config_file_sets_user_namespaces_storage_hooks_and_culler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SHARED_PASSWORD", "correct-horse")
    monkeypatch.setenv("HUB_STORAGE__STORAGE_CLASS", "shared-rwx")
    c = load_hub_config()
    s = c.KubeSpawner
    assert c.JupyterHub.spawner_class == "hub_config.spawner.NotebookSpawner"
    assert s.enable_user_namespaces is True and s.slug_scheme == "safe"
    assert s.user_namespace_template == "nbp-{username}"
    assert s.storage_pvc_ensure is True and s.storage_access_modes == ["ReadWriteMany"]
    assert s.storage_class == "shared-rwx" and s.pvc_name_template == "workspace"
    assert s.volume_mounts == [{"name": "workspace", "mountPath": "/home/jovyan"}]
    assert s.volumes[0]["persistentVolumeClaim"]["claimName"] == "{pvc_name}"
    assert s.storage_extra_labels == {k.WORKSPACE_LABEL: "true"}
    assert s.service_account == "notebook" and s.automount_service_account_token is True
    for hook in ("pre_spawn_hook", "modify_pod_hook", "options_form", "options_from_form", "post_stop_hook"):
        assert callable(s[hook]), hook
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.SharedPasswordAuthenticator.user_password == "correct-horse"
    assert c.Authenticator.allow_all is True
    (svc,) = c.JupyterHub.services
    assert svc["name"] == "idle-culler" and "--timeout=3600" in svc["command"]
    assert c.JupyterHub.load_roles[0]["services"] == ["idle-culler"]
    assert c.JupyterHub.extra_handlers[0][0].startswith("/spawn-preview")


def test_values_file_is_read_and_env_overrides_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "namespace_prefix: team-\n"
        "image: file-image:1\n"
        "storage: {capacity: 50Gi}\n"
        "cull: {timeout: 600}\n"
        "profiles:\n  - {slug: gpu, display_name: GPU, gpus: 1}\n"
    )
    monkeypatch.setenv(SETTINGS_FILE_ENV, str(values))
    monkeypatch.setenv("HUB_IMAGE", "env-image:2")
    settings = load_settings()
    assert settings.namespace_prefix == "team-" and settings.image == "env-image:2"
    assert settings.storage.capacity == "50Gi" and settings.cull.timeout == 600
    assert settings.profiles[0].gpus == 1
    c = load_hub_config()
    assert c.KubeSpawner.user_namespace_template == "team-{username}"
    assert c.KubeSpawner.image == "env-image:2"
    assert "--timeout=600" in c.JupyterHub.services[0]["command"]


def test_complex_values_from_env_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_QUOTA", json.dumps({"limits.cpu": "2"}))
    monkeypatch.setenv("HUB_ADMIN_USERS", json.dumps(["root"]))
    monkeypatch.setenv("HUB_CULL__ENABLED", "false")
    settings = load_settings()
    assert settings.quota == {"limits.cpu": "2"} and settings.admin_users == ["root"]
    c = configure(Config(), settings)
    assert c.Authenticator.admin_users == {"root"}
    assert "services" not in c.JupyterHub


def test_typo_in_values_file_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("namespce_prefix: oops-\n")
    monkeypatch.setenv(SETTINGS_FILE_ENV, str(values))
    with pytest.raises(ValueError, match="namespce_prefix"):
        load_settings()


def test_missing_values_file_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(SETTINGS_FILE_ENV, str(tmp_path / "absent.yaml"))
    with pytest.raises(FileNotFoundError):
        load_settings()


def test_short_shared_password_is_rejected() -> None:
    with pytest.raises(ValueError, match="8 characters"):
        HubSettings(shared_password="short")


def test_production_authenticator_by_class_name_with_its_own_traits() -> None:
    settings = HubSettings(authenticator_class="oauthenticator.generic.GenericOAuthenticator",
                           authenticator_config={"GenericOAuthenticator": {"client_id": "hub", "scope": ["openid"]}},
                           allow_all=False, allowed_users=["alice"])
    c = configure(Config(), settings)
    assert c.JupyterHub.authenticator_class == "oauthenticator.generic.GenericOAuthenticator"
    assert c.GenericOAuthenticator.client_id == "hub" and c.GenericOAuthenticator.scope == ["openid"]
    assert c.Authenticator.allowed_users == {"alice"} and c.Authenticator.allow_all is False
    assert "user_password" not in c.SharedPasswordAuthenticator


def test_shared_password_authenticator_accepts_the_config() -> None:
    from jupyterhub.authenticators.shared import SharedPasswordAuthenticator

    c = configure(Config(), HubSettings(shared_password="correct-horse", admin_users=["admin"],
                                        admin_password="a" * 32))
    auth = SharedPasswordAuthenticator(config=c)
    assert auth.user_password == "correct-horse" and auth.admin_users == {"admin"}


def test_generated_profile_list_is_valid_for_kubespawner() -> None:
    settings = HubSettings(
        profiles=[{"slug": "small", "display_name": "Small", "mem_limit": "2Gi"},
                  {"slug": "gpu", "display_name": "GPU", "gpus": 1}],
        images=[{"slug": "base", "display_name": "Base", "image": "base:1"}],
    )
    c = configure(Config(), settings)
    fake = SimpleNamespace()
    initialized = KubeSpawner._get_initialized_profile_list(fake, c.KubeSpawner.profile_list)
    assert [p["slug"] for p in initialized] == ["small", "gpu"]
    assert sum(bool(p.get("default")) for p in initialized) == 1
    # KubeSpawner's own mem_limit trait accepts the converted value.
    from jupyterhub.traitlets import ByteSpecification

    assert ByteSpecification().validate(None, initialized[0]["kubespawner_override"]["mem_limit"]) == 2 * 2**30
