"""Fixtures for the hub's end-to-end tests.

The PodDefault webhook runs exactly as in its own integration tests: the same fixtures (`rest`,
`poddefault_crd`, `webhook`: a webhook process on loopback over TLS, registered with a
MutatingWebhookConfiguration for namespaces carrying its module-unique labels), loaded from
tests/integration/webhook/ rather than copied. A hub that should get its pods mutated puts `webhook.labels`
on its user namespaces (`HUB_NAMESPACE_LABELS`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_WEBHOOK_TESTS = Path(__file__).resolve().parents[2] / "integration" / "webhook"
if str(_WEBHOOK_TESTS) not in sys.path:
    sys.path.insert(0, str(_WEBHOOK_TESTS))  # webhook_it, imported by the webhook's conftest


def _load_webhook_fixtures():  # type: ignore[no-untyped-def]
    name = "nbp_webhook_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _WEBHOOK_TESTS / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_fixtures = _load_webhook_fixtures()
rest = _fixtures.rest
poddefault_crd = _fixtures.poddefault_crd
webhook = _fixtures.webhook
wait_for_service_account = _fixtures.wait_for_service_account
