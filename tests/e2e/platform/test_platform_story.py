"""The whole story on the installed platform (`make up`), as a data scientist and a platform engineer live it.

1. The platform engineer `kubectl apply`s, into the user's namespace, a Secret and a PodDefault with a plain
   env and a secret env (the Kubeflow paper's Fig. 7: `POD_DEFAULT: Testing is enabled` + a `secretKeyRef`).
2. In Chromium the user logs in through the proxy, ticks that configuration on the spawn form, starts a server
   and gets JupyterLab; a cell typed into a new notebook prints both variables (injected by the webhook).
3. From a cell, `build(...)` a Dockerfile in the workspace: phases and Kaniko's log lines show in the cell, the
   digest it returns is the registry's (`crane digest --insecure`), and the image runs as a pod.

Screenshots go to test-artifacts/platform-*.png (git-ignored).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from platform_e2e import Kernel, Platform, screenshot
from support import wait_for

from hub_config.namespaces import namespace_name

POD_DEFAULT_YAML = """\
apiVersion: v1
kind: Secret
metadata: {{name: testing-secret, namespace: {ns}}}
stringData: {{password: {secret}}}
---
apiVersion: kubeflow.org/v1alpha1
kind: PodDefault
metadata:
  name: testing
  namespace: {ns}
spec:
  desc: Testing is enabled
  selector:
    matchLabels:
      testing: "true"
  env:
  - name: POD_DEFAULT
    value: Testing is enabled
  - name: TEST_PASSWORD
    valueFrom:
      secretKeyRef:
        name: testing-secret
        key: password
"""

PRINT_ENV = ('import os; print("POD_DEFAULT=" + os.environ["POD_DEFAULT"]); '
             'print("TEST_PASSWORD=" + os.environ["TEST_PASSWORD"])')


@pytest.fixture(scope="module")
def user(platform: Platform) -> Iterator[dict[str, str]]:
    """A new user whose namespace a platform engineer prepared with kubectl before the first login: the
    hub adopts it at the first start (labels, quota, service account, workspace)."""
    name = f"e2e-{secrets.token_hex(4)}"
    ns = namespace_name(name, "nbp-")
    secret = secrets.token_hex(8)
    platform.kubectl("create", "namespace", ns)
    platform.kubectl("label", "namespace", ns, "notebook-platform.io/test=true")
    try:
        applied = platform.kubectl("apply", "-f", "-", input=POD_DEFAULT_YAML.format(ns=ns, secret=secret))
        assert "poddefault.kubeflow.org/testing created" in applied.stdout, applied.stdout
        yield {"name": name, "ns": ns, "secret": secret}
    finally:
        platform.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def hub_xsrf(context: Any, url: str) -> str:
    """The hub's XSRF cookie (path /hub/), which cookie-authenticated hub API calls must echo."""
    return next((c["value"] for c in context.cookies(f"{url}/hub/") if c["name"] == "_xsrf"), "")


@pytest.fixture(scope="module")
def server(platform: Platform, chromium: Any, user: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Log in, tick the configuration, start: the browser ends in JupyterLab. Yields the page and a token."""
    from playwright.sync_api import expect

    url, name = platform.url, user["name"]
    page = chromium.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{url}/hub/login")
        page.fill("#username_input", name)
        page.fill("#password_input", platform.password)
        screenshot(page, "platform-1-login.png")
        page.click("#login_submit")
        page.goto(f"{url}/hub/spawn")
        expect(page.locator("h1")).to_have_text("Server Options")
        cfg = page.locator("#nbp-cfg-testing")
        expect(cfg).to_be_enabled()
        row = page.locator(".nbp-configuration").filter(has=cfg)
        expect(row.locator(".nbp-desc")).to_have_text("Testing is enabled")
        cfg.check()
        expect(page.locator("#nbp-cfg-builder")).to_be_checked()  # the operator's default: builder URL
        screenshot(page, "platform-2-spawn-form.png")
        page.click("#spawn_form button[type=submit]")
        # A cold node pulls the notebook image from the local registry first.
        page.wait_for_url(f"**/user/{name}/lab**", timeout=600_000)
        expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=120_000)
        screenshot(page, "platform-3-jupyterlab.png")
        xsrf = hub_xsrf(chromium, url)
        resp = page.request.post(f"{url}/hub/api/users/{name}/tokens", headers={"X-XSRFToken": xsrf},
                                 data={"note": "e2e", "expires_in": 3600})
        assert resp.ok, resp.text()
        yield {"page": page, "token": resp.json()["token"]}
    finally:
        # Stop the server as the hub's "Stop My Server" button does (the workspace volume stays).
        page.request.delete(f"{url}/hub/api/users/{name}/server", headers={"X-XSRFToken": hub_xsrf(chromium, url)})
        page.close()


def test_configuration_chosen_in_chromium_reaches_jupyterlab_cell_with_plain_and_secret_env(
    platform: Platform, server: dict[str, Any], user: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    page = server["page"]
    # A new notebook from the launcher, one cell typed and run once its kernel is idle, as a user would.
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=120_000)
    editor = notebook.locator(".jp-Cell .cm-content").first
    editor.click()
    page.keyboard.insert_text(PRINT_ENV)
    expect(editor).to_contain_text("TEST_PASSWORD")
    try:
        page.keyboard.press("Shift+Enter")
        output = notebook.locator(".jp-OutputArea-output").first
        expect(output).to_contain_text("POD_DEFAULT=Testing is enabled", timeout=120_000)
        expect(output).to_contain_text(f"TEST_PASSWORD={user['secret']}")
    finally:
        shot = screenshot(page, "platform-4-cell-env.png")

    # The stored pod says why: the configuration's label, and the webhook's record of what it applied.
    pod = platform.kubectl("-n", user["ns"], "get", "pods", "-l", "component=singleuser-server",
                           "-o", "jsonpath={.items[0].metadata.labels.testing} "
                                 "{.items[0].metadata.annotations.poddefault\\.admission\\.kubeflow\\.org/poddefault-testing}"
                           ).stdout.split()
    assert pod[0] == "true" and pod[1].isdigit(), pod
    print(f"\nscreenshots: {shot}")


def test_build_from_notebook_cell_pushes_registry_digest_and_image_runs_as_pod(
    platform: Platform, server: dict[str, Any], user: dict[str, str]
) -> None:
    ns, word = user["ns"], secrets.token_hex(4)
    destination = f"{platform.registry}/{ns}/hello:v1"
    code = f"""
import pathlib
proj = pathlib.Path.home() / "hello"
proj.mkdir(exist_ok=True)
(proj / "Dockerfile").write_text('''FROM {platform.registry}/nbp/base:bookworm
COPY greeting.txt /greeting.txt
CMD ["cat", "/greeting.txt"]
''')
(proj / "greeting.txt").write_text("hello {word}\\n")
from builder.client import build
digest = build(proj, "{destination}")
print("DIGEST=" + digest)
"""
    kernel = Kernel(platform.url, user["name"], server["token"])
    try:
        cell = kernel.run(code, timeout=900)
    finally:
        kernel.close()
    shown = cell.stdout + cell.stderr
    phases = [o.get("text/plain", "") for o in cell.outputs]
    assert cell.error is None, f"{cell.error}\n{shown}\n{phases}"
    # The phase line updates in place (waiting -> building -> ... -> built) and Kaniko's own log lines
    # stream into the cell below it.
    seen = [p.split(" ")[1] for p in phases if p.startswith("builder: ")]
    for phase in ("waiting", "building", "built"):
        assert phase in seen, phases
    assert seen.index("waiting") < seen.index("building") < seen.index("built"), seen
    assert f"Pushing image to {destination}" in shown, shown
    digest = next(line.split("=", 1)[1] for line in cell.stdout.splitlines() if line.startswith("DIGEST="))
    assert digest.startswith("sha256:")
    assert platform.crane_digest(destination) == digest

    # The image runs as a pod in the user's namespace (pulled by digest from the local registry).
    pod = f"hello-{word}"
    platform.kubectl("-n", ns, "run", pod, f"--image={destination.rsplit(':', 1)[0]}@{digest}",
                     "--restart=Never", "--labels=app.kubernetes.io/managed-by=notebook-platform,"
                     "app.kubernetes.io/component=e2e")

    def finished() -> str | None:
        phase = platform.kubectl("-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.phase}").stdout
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_for(finished, timeout=180, interval=1, what=f"pod {ns}/{pod} finished") == "Succeeded"
    assert platform.kubectl("-n", ns, "logs", pod).stdout.strip() == f"hello {word}"
    print(f"\nbuild cell phases: {seen}\nbuild cell output:\n{shown}")
