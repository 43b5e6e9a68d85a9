"""The webhook's self-signed certificates: a small controller that keeps them valid without restarts.

What it keeps current, every `cert_controller_interval` seconds, in every webhook replica:
- a TLS Secret (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`) holding a CA and a serving certificate for
  `<service>.<namespace>.svc`, renewed `cert_renew_before_days` before either expires;
- the `caBundle` of every webhook in the MutatingWebhookConfiguration, equal to the Secret's `ca.crt`.

Rotation never leaves a moment where the apiserver distrusts the certificate the pods serve:
- a new serving certificate is signed by the same CA, so the bundle already trusts it, and the old one stays
  valid for weeks while the kubelet refreshes the mounted files (the webhook reloads them, see `tls.py`);
- a new CA is added in front of the old one in `ca.crt` (the bundle), and the old one leaves the bundle only
  when it has expired; the serving certificate is reissued under the new CA on the next pass.

Several replicas run this at once. Every write carries the resourceVersion that was read (a Secret replace, a
MutatingWebhookConfiguration patch with the version as precondition); the loser of a race gets 409, reads
again, finds the winner's fresh certificate and has nothing left to do. What to write is a pure function of
what was read (`plan`), so all replicas converge on the same state.

The chart creates the Secret at install (Helm's `genCA`, kept across upgrades with `lookup`), so pods start
with valid files; from then on this controller owns its data. Certificates from Helm (RSA) are accepted as
they are; those made here use ECDSA P-256.

Contract for `webhook/app.py`: `await run_cert_controller(settings, api_client)` as one more background
task in `serve`, when `settings.cert_controller_enabled`; it runs until cancelled and never raises
otherwise (errors are logged and retried with backoff). `settings` is any object with the fields of
`CertControllerSettings` (the webhook `Settings` may inherit from it); `api_client` is a
`kubernetes_asyncio.client.ApiClient`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from webhook import constants as c
from webhook.logs import log

logger = logging.getLogger("webhook.certs")

CA_CERT_KEY = "ca.crt"
CA_KEY_KEY = "ca.key"
TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"
SECRET_TYPE = "kubernetes.io/tls"
CERTS_COMPONENT = "webhook-certs"
# Certificates start a little in the past, so a node whose clock runs behind still accepts them at once.
BACKDATE = dt.timedelta(minutes=5)
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class CertControllerSettings(BaseSettings):
    """The cert controller's `WEBHOOK_*` settings (the webhook `Settings` can inherit them as a mixin)."""

    model_config = SettingsConfigDict(env_prefix="WEBHOOK_", extra="ignore")

    cert_controller_enabled: bool = Field(False, description="Run the self-signed certificate controller. "
                                          "Off when cert-manager issues the certificates.")
    cert_secret_name: str = Field("notebook-platform-webhook-tls", description="TLS Secret the pods mount.")
    cert_namespace: str = Field("default", description="Namespace of the Secret and the Service "
                                "(the chart passes the pod's own namespace).")
    cert_service_name: str = Field("notebook-platform-webhook", description="Service the apiserver calls; "
                                   "the serving certificate is for <service>.<namespace>.svc.")
    cert_webhook_configuration: str = Field("notebook-platform-webhook", description="Name of the "
                                            "MutatingWebhookConfiguration whose caBundle is kept current.")
    cert_ca_validity_days: int = Field(3650, ge=2, description="Lifetime of a new CA.")
    cert_validity_days: int = Field(365, ge=2, description="Lifetime of a new serving certificate.")
    cert_renew_before_days: int = Field(30, ge=1, description="Renew a certificate (or the CA) this many "
                                        "days before it expires.")
    cert_controller_interval: float = Field(300.0, gt=0, description="Seconds between checks.")


class CertSettings(Protocol):
    cert_secret_name: str
    cert_namespace: str
    cert_service_name: str
    cert_webhook_configuration: str
    cert_ca_validity_days: int
    cert_validity_days: int
    cert_renew_before_days: int
    cert_controller_interval: float


# --- pure: names, certificates, the decision --------------------------------------------------------------


def dns_names(service: str, namespace: str) -> list[str]:
    """The names the serving certificate must cover; the apiserver dials `<service>.<namespace>.svc`."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc"]


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def not_after(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_after_utc


def renewal_due(cert: x509.Certificate, now: dt.datetime, renew_before: dt.timedelta) -> bool:
    """True when the certificate expires within `renew_before` of `now`, or is not yet valid."""
    now = _utc(now)
    return now >= cert.not_valid_after_utc - renew_before or now < cert.not_valid_before_utc


def cert_dns_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName))


def covers(cert: x509.Certificate, names: list[str]) -> bool:
    """Whether the certificate's DNS SANs include every name (the CN is ignored, as TLS clients do)."""
    return set(names) <= cert_dns_names(cert)


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether `ca`'s key signed `cert` (RSA or ECDSA, the two kinds we or Helm make)."""
    if cert.issuer != ca.subject:
        return False
    key = ca.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
    except (InvalidSignature, AssertionError):
        return False
    return True


def _public_bytes(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert: x509.Certificate, key: Any) -> bool:
    return _public_bytes(cert.public_key()) == _public_bytes(key.public_key())


def load_certs(pem: bytes | None) -> list[x509.Certificate]:
    """All certificates in a PEM bundle; [] if absent or unreadable."""
    if not pem:
        return []
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def load_key(pem: bytes | None) -> Any:
    if not pem:
        return None
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        return None


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(common_name: str, now: dt.datetime, validity: dt.timedelta) -> tuple[x509.Certificate, Any]:
    """A self-signed CA that may only sign end-entity certificates (pathlen 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _utc(now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_serving_cert(ca: x509.Certificate, ca_key: Any, names: list[str], now: dt.datetime,
                      validity: dt.timedelta) -> tuple[x509.Certificate, Any]:
    """A server certificate for `names`, signed by the CA, never outliving it."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _utc(now)
    end = min(now + validity, ca.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[-1])).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


@dataclass(frozen=True)
class Plan:
    """What the Secret's data should become; `data` is None when it is already right."""

    data: dict[str, bytes] | None
    reasons: list[str] = field(default_factory=list)


def plan(current: dict[str, bytes], names: list[str], now: dt.datetime, ca_validity: dt.timedelta,
         validity: dt.timedelta, renew_before: dt.timedelta, ca_common_name: str = "notebook-platform-webhook-ca"
         ) -> Plan:
    """Pure: the Secret data (PEM bytes by key) as read -> what to write, and why.

    The CA is the first certificate of `ca.crt` with the key in `ca.key`; further certificates in `ca.crt` are
    earlier CAs, kept in the bundle until they expire so certificates they signed stay trusted meanwhile.
    """
    now = _utc(now)
    reasons: list[str] = []
    bundle = load_certs(current.get(CA_CERT_KEY))
    ca_key = load_key(current.get(CA_KEY_KEY))
    ca = bundle[0] if bundle else None
    older = bundle[1:]

    if ca is None or ca_key is None or not key_matches(ca, ca_key):
        reasons.append("ca-missing-or-invalid")
        older = bundle  # whatever the apiserver trusted stays in the bundle until it expires
        ca, ca_key = make_ca(ca_common_name, now, ca_validity)
    elif renewal_due(ca, now, renew_before):
        reasons.append("ca-renewal-due")
        older = [ca, *older]
        ca, ca_key = make_ca(ca_common_name, now, ca_validity)
    ca_changed = bool(reasons)

    kept = [old for old in older if old.not_valid_after_utc > now and old != ca]
    if len(kept) != len(older):
        reasons.append("expired-ca-dropped")
    new_bundle = b"".join(_pem_cert(x) for x in [ca, *kept])

    serving = load_certs(current.get(TLS_CERT_KEY))
    serving_key = load_key(current.get(TLS_KEY_KEY))
    cert = serving[0] if serving else None
    if cert is None or serving_key is None or not key_matches(cert, serving_key):
        reasons.append("serving-cert-missing-or-invalid")
    elif not signed_by(cert, ca):
        reasons.append("serving-cert-not-from-current-ca")
    elif not covers(cert, names):
        reasons.append("serving-cert-names-changed")
    elif renewal_due(cert, now, renew_before):
        reasons.append("serving-cert-renewal-due")
    tls_crt, tls_key = current.get(TLS_CERT_KEY, b""), current.get(TLS_KEY_KEY, b"")
    if any(r.startswith("serving-cert") for r in reasons):
        cert, serving_key = make_serving_cert(ca, ca_key, names, now, validity)
        tls_crt, tls_key = _pem_cert(cert), _pem_key(serving_key)

    new = {CA_CERT_KEY: new_bundle, CA_KEY_KEY: _pem_key(ca_key) if ca_changed else current[CA_KEY_KEY],
           TLS_CERT_KEY: tls_crt, TLS_KEY_KEY: tls_key}
    if all(current.get(k) == v for k, v in new.items()):
        return Plan(None, [])
    return Plan(new, reasons or ["bundle-normalised"])


def decode_secret_data(secret: dict[str, Any] | None) -> dict[str, bytes]:
    data = (secret or {}).get("data") or {}
    out: dict[str, bytes] = {}
    for key, value in data.items():
        try:
            out[key] = base64.b64decode(value)
        except (ValueError, TypeError):
            out[key] = b""
    return out


def encode_secret_data(data: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in data.items()}


def secret_manifest(name: str, namespace: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE, c.COMPONENT_LABEL: CERTS_COMPONENT}},
        "data": encode_secret_data(data),
    }


def ca_bundle_patch(mwc: dict[str, Any], bundle: bytes) -> dict[str, Any] | None:
    """A strategic merge patch setting every webhook's caBundle to `bundle`, preconditioned on the
    resourceVersion that was read; None when all are already equal."""
    encoded = base64.b64encode(bundle).decode()
    webhooks = mwc.get("webhooks") or []
    stale = [w["name"] for w in webhooks if (w.get("clientConfig") or {}).get("caBundle") != encoded]
    if not stale:
        return None
    return {
        "metadata": {"resourceVersion": mwc["metadata"]["resourceVersion"]},
        "webhooks": [{"name": n, "clientConfig": {"caBundle": encoded}} for n in stale],
    }


# --- I/O: one pass, and the loop ---------------------------------------------------------------------------


@dataclass
class PassResult:
    secret_written: bool = False
    ca_bundle_patched: bool = False
    reasons: list[str] = field(default_factory=list)


class _Conflict(Exception):
    pass


async def _call(coro: Any) -> dict[str, Any] | None:
    """Runs a raw (`_preload_content=False`) call: the body as a dict, None on 404, _Conflict on 409."""
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        resp = await coro
    except ApiException as e:
        if e.status == 404:
            return None
        if e.status == 409:
            raise _Conflict(e.reason) from e
        raise
    try:
        body = await resp.read()
    finally:
        resp.release()
    # Raw responses do not raise on error statuses: the status decides here.
    if resp.status == 404:
        return None
    if resp.status == 409:
        raise _Conflict(body.decode(errors="replace")[:300])
    if not 200 <= resp.status < 300:
        raise RuntimeError(f"apiserver answered {resp.status}: {body.decode(errors='replace')[:300]}")
    return json.loads(body) if body else {}


async def ensure_secret(settings: CertSettings, api: Any, now: dt.datetime) -> tuple[bytes, PassResult]:
    """Brings the Secret up to date (create or replace at the read resourceVersion); returns its CA bundle."""
    from kubernetes_asyncio.client import CoreV1Api

    core: Any = CoreV1Api(api)  # raw calls: the stubs do not describe dict bodies or _content_type
    name, ns = settings.cert_secret_name, settings.cert_namespace
    names = dns_names(settings.cert_service_name, ns)
    days = dt.timedelta(days=1)
    result = PassResult()
    for _ in range(5):
        secret = await _call(core.read_namespaced_secret(name, ns, _preload_content=False))
        current = decode_secret_data(secret)
        p = plan(current, names, now, settings.cert_ca_validity_days * days, settings.cert_validity_days * days,
                 settings.cert_renew_before_days * days)
        if p.data is None:
            return current[CA_CERT_KEY], result
        try:
            if secret is None:
                await _call(core.create_namespaced_secret(ns, secret_manifest(name, ns, p.data),
                                                          _preload_content=False))
            else:
                # Keep metadata (Helm's labels and annotations) and the resourceVersion: a replace at a stale
                # version fails with 409 instead of overwriting another replica's fresh certificate.
                secret["data"] = {**(secret.get("data") or {}), **encode_secret_data(p.data)}
                if await _call(core.replace_namespaced_secret(name, ns, secret, _preload_content=False)) is None:
                    continue  # deleted between read and write: create it on the next round
        except _Conflict:
            log(logger, "cert_secret_conflict", namespace=ns, name=name)
            continue
        result.secret_written, result.reasons = True, p.reasons
        log(logger, "cert_secret_written", namespace=ns, name=name, reasons=p.reasons)
        return p.data[CA_CERT_KEY], result
    raise RuntimeError(f"Secret {ns}/{name}: still conflicting after 5 attempts")


async def ensure_ca_bundle(settings: CertSettings, api: Any, bundle: bytes) -> bool:
    """Sets the caBundle of every webhook in the configuration; False if it is missing or already right."""
    from kubernetes_asyncio.client import AdmissionregistrationV1Api

    adm: Any = AdmissionregistrationV1Api(api)
    name = settings.cert_webhook_configuration
    for _ in range(5):
        mwc = await _call(adm.read_mutating_webhook_configuration(name, _preload_content=False))
        if mwc is None:
            log(logger, "webhook_configuration_missing", logging.WARNING, name=name)
            return False
        patch = ca_bundle_patch(mwc, bundle)
        if patch is None:
            return False
        try:
            await _call(adm.patch_mutating_webhook_configuration(
                name, patch, _content_type=STRATEGIC_MERGE_PATCH, _preload_content=False))
        except _Conflict:
            continue
        log(logger, "ca_bundle_patched", name=name, webhooks=[w["name"] for w in patch["webhooks"]])
        return True
    raise RuntimeError(f"MutatingWebhookConfiguration {name}: still conflicting after 5 attempts")


async def reconcile(settings: CertSettings, api: Any, now: dt.datetime | None = None) -> PassResult:
    """One pass: the Secret first, then the bundle that trusts it."""
    bundle, result = await ensure_secret(settings, api, now or dt.datetime.now(dt.UTC))
    result.ca_bundle_patched = await ensure_ca_bundle(settings, api, bundle)
    return result


async def run_cert_controller(settings: CertSettings, api: Any) -> None:
    """Reconciles now and then every `cert_controller_interval` seconds (with jitter, so replicas do not
    write in lockstep), until cancelled. Failures are logged and retried with capped exponential backoff."""
    failures = 0
    while True:
        try:
            await reconcile(settings, api)
            failures = 0
            delay = settings.cert_controller_interval * random.uniform(0.8, 1.2)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            failures += 1
            delay = min(settings.cert_controller_interval, 2.0 ** min(failures, 8))
            log(logger, "cert_reconcile_failed", logging.WARNING, error=str(e)[:300], retry_in=round(delay, 1),
                exc_info=failures == 1)
        await asyncio.sleep(delay)
