"""The spawn form in a real browser: headless Chromium (Debian's, via Playwright) against a real hub.

Log in, read the profiles and configurations (PodDefaults, with their descriptions) as a user sees them, ask
what a choice injects, pick a size and a configuration, press Start. The notebook pod is not meant to run
here: every profile has a node selector no node carries, so nothing is pulled and the pod stays Pending on
any cluster. What is checked is what the hub does: the pending page with its progress log, and the pod
object stored in the user's namespace, with the configuration labels the hub set and the env the PodDefault
webhook (the real one, on loopback over TLS) injected.

Screenshots of the form and the pending page go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import (
    ARTIFACTS,
    PASSWORD,
    delete_namespace,
    notebook_pods,
    prepare_user_namespace,
    run_hub,
    scheduling_failures,
)
from support import chromium_context, wait_for
from webhook_it import MODULE_LABEL, Rest, poddefault

from hub_config import constants as k

# A node label nothing carries: the pod is stored and scheduled against, never started.
NO_NODE_LABEL = f"{k.DOMAIN}/e2e-no-such-node"

TEAM = {"name": "team-datasets", "desc": "Team datasets: sets DATASETS_DIR to the shared folder",
        "label": f"{k.DOMAIN}/team-datasets", "env": ("DATASETS_DIR", "/data/team")}
SPARK = {"name": "spark", "desc": "Spark client: SPARK_MASTER points at the team cluster",
         "env": ("SPARK_MASTER", "spark://spark-master:7077")}
BROKEN = {"name": "broken", "desc": "Half-finished by a colleague"}


def profiles(token: str) -> list[dict[str, Any]]:
    pin = {NO_NODE_LABEL: f"none-{token}"}
    return [
        {"slug": "small", "display_name": "Small (1 CPU, 2 GiB)", "description": "Notebooks and light analysis",
         "default": True, "cpu_guarantee": 0.1, "cpu_limit": 1, "mem_guarantee": "512Mi", "mem_limit": "2Gi",
         "node_selector": pin},
        {"slug": "medium", "display_name": "Medium (2 CPU, 4 GiB)", "description": "Larger data frames",
         "cpu_guarantee": 0.2, "cpu_limit": 2, "mem_guarantee": "1Gi", "mem_limit": "4Gi", "node_selector": pin},
        {"slug": "gpu", "display_name": "One GPU", "description": "Waits for a node with a free NVIDIA GPU",
         "gpus": 1, "cpu_guarantee": 0.5, "cpu_limit": 2, "mem_guarantee": "2Gi", "mem_limit": "8Gi",
         "node_selector": pin},
    ]


@pytest.fixture(scope="module")
def browser_hub(cluster: Any, webhook: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A hub whose user namespaces this module's webhook serves."""
    work = tmp_path_factory.mktemp("browser-hub")
    env = {
        "HUB_NAMESPACE_LABELS": json.dumps({k.TEST_LABEL: "true", MODULE_LABEL: webhook.token}),
        "HUB_PROFILES": json.dumps(profiles(webhook.token)),
        # PodDefaults made just before the first start: let the preflight wait for the webhook's watch.
        "HUB_PREFLIGHT_WEBHOOK_WAIT": "20",
    }
    with run_hub(cluster, work, env) as url:
        yield {"url": url, "work": work, "token": webhook.token}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per module, with a fresh profile directory; never a downloaded browser."""
    with chromium_context(1000) as context:
        yield context


@pytest.fixture
def team_user(kube_api: Any, rest: Rest, webhook: Any) -> Iterator[tuple[str, str]]:
    """A new user whose namespace already holds the team's PodDefaults (put there with kubectl, say)."""
    user = f"e2e-{secrets.token_hex(4)}"
    ns = prepare_user_namespace(kube_api, user, webhook.labels)
    try:
        rest.ok("POST", rest.poddefaults(ns), poddefault(TEAM["name"], {
            "desc": TEAM["desc"], "selector": {"matchLabels": {TEAM["label"]: "true"}},
            "env": [{"name": TEAM["env"][0], "value": TEAM["env"][1]}]}))
        rest.ok("POST", rest.poddefaults(ns), poddefault(SPARK["name"], {
            "desc": SPARK["desc"],
            "selector": {"matchExpressions": [{"key": f"{k.DOMAIN}/spark", "operator": "Exists"}]},
            "env": [{"name": SPARK["env"][0], "value": SPARK["env"][1]}]}))
        # `In` with no values: no label set satisfies it, so the form must say so instead of offering it.
        rest.ok("POST", rest.poddefaults(ns), poddefault(BROKEN["name"], {
            "desc": BROKEN["desc"],
            "selector": {"matchExpressions": [{"key": f"{k.DOMAIN}/broken", "operator": "In", "values": []}]},
            "env": [{"name": "BROKEN", "value": "1"}]}))
        yield user, ns
    finally:
        delete_namespace(kube_api, ns)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_spawn_form_in_chromium_starts_pod_with_chosen_profile_and_configuration(
    browser_hub: dict[str, Any], chromium: Any, team_user: tuple[str, str], kube_api: Any,
) -> None:
    from playwright.sync_api import expect

    url, (user, ns) = browser_hub["url"], team_user
    page = chromium.new_page()
    try:
        # -- log in ------------------------------------------------------------------------------------------
        page.goto(f"{url}/hub/login")
        page.fill("#username_input", user)
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        page.goto(f"{url}/hub/spawn")
        expect(page.locator("h1")).to_have_text("Server Options")

        # -- the form: profiles and configurations with their descriptions -----------------------------------
        form = page.locator("#spawn_form .nbp-spawn-form")
        expect(form.locator(".nbp-profile")).to_have_count(3)
        for p in profiles("x"):
            row = form.locator(".nbp-profile", has=page.locator(f"#nbp-profile-{p['slug']}"))
            expect(row).to_contain_text(p["display_name"])
            expect(row).to_contain_text(p["description"])
        expect(page.locator("#nbp-profile-small")).to_be_checked()

        configs = form.locator(".nbp-configuration")
        for c in (TEAM, SPARK):
            row = configs.filter(has=page.locator(f"#nbp-cfg-{c['name']}"))
            expect(row).to_contain_text(c["name"])
            expect(row.locator(".nbp-desc")).to_have_text(c["desc"])
            expect(page.locator(f"#nbp-cfg-{c['name']}")).to_be_enabled()
            expect(page.locator(f"#nbp-cfg-{c['name']}")).not_to_be_checked()
        # The operator's default (builder) is pre-checked; the broken one is shown, greyed, with the reason.
        expect(page.locator("#nbp-cfg-builder")).to_be_checked()
        broken = configs.filter(has=page.locator(f"#nbp-cfg-{BROKEN['name']}"))
        expect(broken.locator(".nbp-desc")).to_have_text(BROKEN["desc"])
        expect(page.locator(f"#nbp-cfg-{BROKEN['name']}")).to_be_disabled()
        expect(broken.locator(".nbp-unavailable")).to_contain_text("unavailable")

        # -- choose: Medium + team-datasets, and ask the cluster what that injects ---------------------------
        page.check("#nbp-profile-medium")
        page.check(f"#nbp-cfg-{TEAM['name']}")
        page.click("#nbp-preview")
        preview = page.locator("#nbp-preview-out")
        expect(preview).to_contain_text(TEAM["env"][0], timeout=60_000)
        injected = json.loads(preview.inner_text())
        assert sorted(injected["poddefaults"]) == ["builder", TEAM["name"]], injected
        assert {"name": TEAM["env"][0], "value": TEAM["env"][1]} in injected["env"]
        # Only what admission added: JupyterHub's own (empty in a preview) variables are not "injected".
        assert {e["name"] for e in injected["env"]} == {k.ENV_BUILDER_URL, TEAM["env"][0]}, injected["env"]
        form_shot = screenshot(page, "hub-spawn-form.png")

        # -- start: the pending page with its progress log ---------------------------------------------------
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(f"**/hub/spawn-pending/{user}*", timeout=60_000)
        expect(page.locator("#progress-bar")).to_be_visible()
        expect(page.locator("#progress-message")).not_to_be_empty(timeout=30_000)
        # The scheduler's verdict (its FailedScheduling event, as stored in the apiserver) reaches the page's
        # event log, with the hub's one-sentence explanation in front.
        page.locator("#progress-details").evaluate("d => d.open = true")
        log = page.locator("#progress-log .progress-log-event")
        pods = wait_for(lambda: notebook_pods(kube_api, ns), timeout=60, what=f"notebook pod in {ns}")
        (pod,) = pods  # type: ignore[misc]

        def scheduler_reason_shown() -> str | None:
            shown = " ".join(log.all_inner_texts())
            return next((m for m in scheduling_failures(kube_api, ns, pod.metadata.name) if m in shown), None)

        reason = wait_for(scheduler_reason_shown, timeout=90, interval=1, what="FailedScheduling on the page")
        expect(log.filter(has_text=str(reason)).first).to_be_visible()
        pending_shot = screenshot(page, "hub-spawn-pending.png")
        pending_log = [t.strip() for t in log.all_inner_texts()]

        # -- the stored pod: chosen profile, configuration labels, injected env ------------------------------
        (pod,) = notebook_pods(kube_api, ns)
        labels, annotations = pod.metadata.labels, pod.metadata.annotations or {}
        assert labels[TEAM["label"]] == "true"
        assert labels[f"{k.DOMAIN}/builder"] == "true"
        assert f"{k.DOMAIN}/spark" not in labels
        assert set(annotations[k.CONFIGURATIONS_ANNOTATION].split(",")) == {"builder", TEAM["name"]}
        assert k.PODDEFAULT_APPLIED_PREFIX + TEAM["name"] in annotations
        assert k.PODDEFAULT_APPLIED_PREFIX + SPARK["name"] not in annotations
        main = next(c for c in pod.spec.containers if c.name == "notebook")
        env = {e.name: e.value for e in main.env or []}
        assert env[TEAM["env"][0]] == TEAM["env"][1]
        assert env[k.ENV_BUILDER_URL] == "http://builder:8080"
        assert "SPARK_MASTER" not in env and "BROKEN" not in env
        assert main.resources.limits["cpu"] == "2" and main.resources.limits["memory"] == str(4 * 2**30)
        assert pod.spec.node_selector == {NO_NODE_LABEL: f"none-{browser_hub['token']}"}
        assert pod.status.phase == "Pending"
        assert any(line.startswith("Waiting for a node") and str(reason) in line for line in pending_log), pending_log
        print(f"\nscreenshots: {form_shot} {pending_shot}\npending log: {pending_log}")
    finally:
        # Stop the pending server through the hub, as the page's "Stop Server" button would.
        xsrf = next((c["value"] for c in chromium.cookies(url) if c["name"] == "_xsrf"), "")
        page.request.delete(f"{url}/hub/api/users/{user}/server", headers={"X-XSRFToken": xsrf})
        page.close()

