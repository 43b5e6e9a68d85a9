"""values.yaml <-> the services' settings classes, and values.schema.json: one-to-one, no drift, no typos."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import schema_gen
import yaml
from chart_support import ALL_ON, CHART, NAMESPACE, RELEASE, env_of, find, helm, render, values
from pydantic import BaseModel

COMPONENTS = ("webhook", "builder", "hub")


# --- one-to-one -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("component", COMPONENTS)
def test_values_settings_keys_are_exactly_the_settings_fields(component: str) -> None:
    in_values = set(values()[component]["settings"])
    in_code = schema_gen.settings_fields(component)
    assert in_values - in_code == set(), f"values.yaml {component}.settings has keys no settings class reads"
    assert in_code - in_values == set(), f"{component} settings fields missing from values.yaml"


def _nested_models(cls: type[BaseModel]) -> dict[str, type[BaseModel]]:
    out = {}
    for name, f in cls.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            out[name] = f.annotation
    return out


def test_hub_nested_settings_keys_match_their_models() -> None:
    (hub_cls,) = schema_gen.settings_classes()["hub"]
    hub_values = values()["hub"]["settings"]
    nested = _nested_models(hub_cls)
    assert set(nested) == {"limit_range", "pod_security", "builder", "storage", "cull"}
    for name, model in nested.items():
        assert set(hub_values[name]) == set(model.model_fields), name


@pytest.mark.parametrize("component", COMPONENTS)
def test_chart_derived_settings_are_real_fields(component: str) -> None:
    fields: set[str] = set()
    for cls in schema_gen.settings_classes()[component]:
        fields |= set(cls.model_fields)
    assert schema_gen.CHART_DERIVED[component] <= fields


def test_the_chart_sets_every_derived_webhook_setting_itself() -> None:
    env = env_of(find(render(), "Deployment", "-webhook"))
    for name in schema_gen.CHART_DERIVED["webhook"] - {"kubeconfig"}:
        assert f"WEBHOOK_{name.upper()}" in env, name


# --- what the services will read ----------------------------------------------------------------------------------

def _settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, Any], prefix: str, cls: type) -> Any:
    for key in list(__import__("os").environ):
        if key.startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(prefix) and isinstance(value, str):
            monkeypatch.setenv(key, value)
    return cls()


@pytest.mark.parametrize("values_files", [(), (str(ALL_ON),)], ids=["default", "all-on"])
@pytest.mark.parametrize(("component", "prefix"), [("webhook", "WEBHOOK_"), ("builder", "BUILDER_")])
def test_rendered_environment_parses_into_the_settings_values_say(
        monkeypatch: pytest.MonkeyPatch, values_files: tuple[str, ...], component: str, prefix: str) -> None:
    objs = render(*values_files)
    env = env_of(find(objs, "Deployment", f"-{component}"))
    wanted = values()[component]["settings"]
    if values_files:
        wanted = {**wanted, **yaml.safe_load(Path(values_files[0]).read_text())[component].get("settings", {})}
    for cls in schema_gen.settings_classes()[component]:
        parsed = _settings_from_env(monkeypatch, env, prefix, cls).model_dump(mode="json")
        for key in set(parsed) & set(wanted):
            assert parsed[key] == wanted[key], f"{component}.settings.{key}"


@pytest.mark.parametrize("values_files", [(), (str(ALL_ON),)], ids=["default", "all-on"])
def test_hub_settings_file_validates_with_the_derived_urls_filled_in(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, values_files: tuple[str, ...]) -> None:
    from hub_config.settings import load_settings

    objs = render(*values_files)
    secret = find(objs, "Secret", "-hub")
    path = tmp_path / "settings.yaml"
    path.write_bytes(base64.b64decode(secret["data"]["settings.yaml"]))
    for key in list(__import__("os").environ):
        if key.startswith("HUB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HUB_SETTINGS_FILE", str(path))
    s = load_settings()
    assert s.proxy_should_start is False
    assert s.proxy_api_url == f"http://{RELEASE}-notebook-platform-proxy-api:8001"
    assert s.hub_connect_url == f"http://{RELEASE}-notebook-platform-hub.{NAMESPACE}.svc:8081"
    if values_files:
        assert s.builder.url == "https://builder.example.com"
        assert s.shared_password is not None
        assert s.shared_password.get_secret_value() == "correct horse battery staple"
    else:
        assert s.builder.url == f"http://{RELEASE}-notebook-platform-builder.{NAMESPACE}.svc:8080"
        assert s.builder.registry == "registry.local:5000"
        # A generated password, also kept under its own key for NOTES.txt.
        assert s.shared_password is not None and len(s.shared_password.get_secret_value()) >= 8
        assert base64.b64decode(secret["data"]["shared-password"]).decode() == s.shared_password.get_secret_value()


def test_settings_changes_roll_the_pods_that_read_them() -> None:
    def checksum(objs: list[dict], suffix: str) -> str:
        return find(objs, "Deployment", suffix)["spec"]["template"]["metadata"]["annotations"]["checksum/settings"]

    base = render()
    changed = render(sets=("webhook.settings.log_level=DEBUG", "hub.settings.start_timeout=600"),
                     set_json={"builder.settings.cpu_limit": "3"})
    for suffix in ("-webhook", "-builder", "-hub"):
        assert checksum(base, suffix) != checksum(changed, suffix), suffix


# --- the schema ---------------------------------------------------------------------------------------------------

def test_schema_file_is_generated_from_the_current_settings_classes() -> None:
    assert (CHART / "values.schema.json").read_text() == schema_gen.render(), \
        "values.schema.json is stale: run .venv/bin/python tests/unit/chart/schema_gen.py"


@pytest.mark.parametrize(("args", "message"), [
    (("--set", "webhook.replica=3"), "additional properties 'replica' not allowed"),
    (("--set", "hub.settings.storage.capcity=1Gi"), "additional properties 'capcity' not allowed"),
    (("--set", "builder.settings.max_concurent_builds_per_namespace=2"), "max_concurent_builds_per_namespace"),
    (("--set", "certManager.enable=true"), "additional properties 'enable' not allowed"),
    (("--set", "webhook.replicas=two"), "/webhook/replicas"),
    (("--set", "webhook.settings.failure_policy=Sometimes"), "/webhook/settings/failure_policy"),
    (("--set", "webhook.timeoutSeconds=60"), "/webhook/timeoutSeconds"),
    (("--set", "webhook.drainSeconds=30"), "/webhook/drainSeconds"),
    (("--set", "webhook.namespaceSelector.matchLabel.a=b"), "additional properties 'matchLabel' not allowed"),
    (("--set-json", 'webhook.namespaceSelector.matchExpressions=[{"key": "a", "operator": "Equals"}]'),
     "/webhook/namespaceSelector/matchExpressions/0/operator"),
    (("--set", "webhook.settings.port=99999"), "/webhook/settings/port"),
    (("--set", "builder.settings.port=http"), "/builder/settings/port"),
    (("--set-string", "hub.settings.allow_all=yes"), "/hub/settings/allow_all"),
    (("--set-json", 'hub.settings.quota={"pods": 20}'), "/hub/settings/quota/pods"),
    (("--set-json", 'hub.settings.profiles=[{"slug": "a", "display_name": "A", "gpu": 1}]'), "'gpu' not allowed"),
])
def test_schema_rejects_typos_and_wrong_types_with_the_path(args: tuple[str, ...], message: str) -> None:
    out = helm("template", RELEASE, str(CHART), *args, check=False)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr


def test_lint_is_clean_in_strict_mode_for_default_and_all_on_values() -> None:
    for extra in ((), ("-f", str(ALL_ON))):
        out = helm("lint", "--strict", str(CHART), *extra, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout
