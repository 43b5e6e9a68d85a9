"""The cert controller's pure core: when to renew, what a certificate covers, what to write."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from webhook import certs

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
NAMES = certs.dns_names("nbp-webhook", "platform")
CA_LIFE, LIFE, RENEW = 3650 * DAY, 365 * DAY, 30 * DAY


def plan(current: dict[str, bytes], now: dt.datetime = NOW, names: list[str] = NAMES) -> certs.Plan:
    return certs.plan(current, names, now, CA_LIFE, LIFE, RENEW)


def fresh() -> dict[str, bytes]:
    p = plan({})
    assert p.data is not None
    return p.data


def cert_of(data: dict[str, bytes], key: str = certs.TLS_CERT_KEY) -> x509.Certificate:
    return certs.load_certs(data[key])[0]


def cert_with_validity(start: dt.datetime, end: dt.datetime) -> x509.Certificate:
    ca, _ = certs.make_ca("t", start + certs.BACKDATE, end - start - certs.BACKDATE)
    return ca


# --- names ---------------------------------------------------------------------------------------------------

def test_serving_names_include_the_service_dns_name_the_apiserver_dials() -> None:
    assert certs.dns_names("svc", "ns") == ["svc", "svc.ns", "svc.ns.svc"]


def test_a_new_serving_certificate_covers_every_service_name_and_is_a_server_certificate() -> None:
    cert = cert_of(fresh())
    assert certs.cert_dns_names(cert) == set(NAMES)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_the_ca_may_sign_leaf_certificates_only() -> None:
    ca = cert_of(fresh(), certs.CA_CERT_KEY)
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is True and bc.path_length == 0


# --- renewal_due -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "due"), [
    (NOW, False),                                   # just issued
    (NOW + 300 * DAY, False),                       # 65 days left, margin is 30
    (NOW + 335 * DAY - dt.timedelta(hours=1), False),  # just outside the margin
    (NOW + 335 * DAY, True),                        # exactly 30 days left
    (NOW + 364 * DAY, True),                        # about to expire
    (NOW + 400 * DAY, True),                        # expired
    (NOW - DAY, True),                              # not yet valid (clock went back)
])
def test_renewal_is_due_inside_the_margin_before_expiry_or_before_validity(now: dt.datetime, due: bool) -> None:
    cert = cert_with_validity(NOW, NOW + 365 * DAY)
    assert certs.renewal_due(cert, now, RENEW) is due


def test_renewal_due_accepts_naive_utc_times() -> None:
    cert = cert_with_validity(NOW, NOW + 365 * DAY)
    assert certs.renewal_due(cert, (NOW + 400 * DAY).replace(tzinfo=None), RENEW) is True


# --- plan ------------------------------------------------------------------------------------------------------

def test_an_empty_secret_gets_a_ca_and_a_serving_certificate_signed_by_it() -> None:
    p = plan({})
    assert p.data is not None and "ca-missing-or-invalid" in p.reasons
    ca, cert = cert_of(p.data, certs.CA_CERT_KEY), cert_of(p.data)
    assert certs.signed_by(cert, ca)
    assert certs.key_matches(cert, certs.load_key(p.data[certs.TLS_KEY_KEY]))
    assert certs.key_matches(ca, certs.load_key(p.data[certs.CA_KEY_KEY]))


def test_a_current_secret_needs_no_write() -> None:
    data = fresh()
    assert plan(data, NOW + 100 * DAY) == certs.Plan(None, [])


def test_serving_certificate_renewal_keeps_the_ca_so_the_bundle_already_trusts_it() -> None:
    data = fresh()
    later = NOW + 340 * DAY
    p = plan(data, later)
    assert p.data is not None and p.reasons == ["serving-cert-renewal-due"]
    assert p.data[certs.CA_CERT_KEY] == data[certs.CA_CERT_KEY]
    assert p.data[certs.CA_KEY_KEY] == data[certs.CA_KEY_KEY]
    new = cert_of(p.data)
    assert new.serial_number != cert_of(data).serial_number
    assert certs.signed_by(new, cert_of(data, certs.CA_CERT_KEY))
    assert not certs.renewal_due(new, later, RENEW)


def test_ca_renewal_puts_the_new_ca_first_and_keeps_the_old_one_trusted() -> None:
    data = fresh()
    old_ca = cert_of(data, certs.CA_CERT_KEY)
    later = old_ca.not_valid_after_utc - 10 * DAY
    p = plan(data, later)
    assert p.data is not None and "ca-renewal-due" in p.reasons
    bundle = certs.load_certs(p.data[certs.CA_CERT_KEY])
    assert len(bundle) == 2 and bundle[1] == old_ca and bundle[0] != old_ca
    assert certs.signed_by(cert_of(p.data), bundle[0])
    # Next pass: nothing more to do.
    assert plan(p.data, later + DAY).data is None


def test_an_expired_previous_ca_leaves_the_bundle() -> None:
    data = fresh()
    old_ca = cert_of(data, certs.CA_CERT_KEY)
    rotated = plan(data, old_ca.not_valid_after_utc - 10 * DAY).data
    assert rotated is not None
    after = old_ca.not_valid_after_utc + DAY
    p = plan(rotated, after)
    assert p.data is not None and p.reasons == ["expired-ca-dropped"]
    assert certs.load_certs(p.data[certs.CA_CERT_KEY]) == certs.load_certs(rotated[certs.CA_CERT_KEY])[:1]
    assert p.data[certs.TLS_CERT_KEY] == rotated[certs.TLS_CERT_KEY]


def test_a_renamed_service_gets_a_certificate_for_its_new_name() -> None:
    names = certs.dns_names("renamed", "platform")
    p = plan(fresh(), names=names)
    assert p.data is not None and p.reasons == ["serving-cert-names-changed"]
    assert certs.covers(cert_of(p.data), names)


@pytest.mark.parametrize("broken", [
    {certs.TLS_CERT_KEY: b"not a certificate"},
    {certs.TLS_KEY_KEY: b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"},
    {certs.TLS_KEY_KEY: b""},
])
def test_an_unreadable_serving_pair_is_reissued_under_the_same_ca(broken: dict[str, bytes]) -> None:
    data = {**fresh(), **broken}
    p = plan(data)
    assert p.data is not None and p.reasons == ["serving-cert-missing-or-invalid"]
    assert p.data[certs.CA_KEY_KEY] == data[certs.CA_KEY_KEY]


def test_a_serving_key_from_another_pair_is_detected() -> None:
    data, other = fresh(), fresh()
    p = plan({**data, certs.TLS_KEY_KEY: other[certs.TLS_KEY_KEY]})
    assert p.data is not None and p.reasons == ["serving-cert-missing-or-invalid"]


def test_a_serving_certificate_from_a_foreign_ca_is_reissued() -> None:
    data, other = fresh(), fresh()
    p = plan({**data, certs.TLS_CERT_KEY: other[certs.TLS_CERT_KEY], certs.TLS_KEY_KEY: other[certs.TLS_KEY_KEY]})
    assert p.data is not None and p.reasons == ["serving-cert-not-from-current-ca"]


def test_a_lost_ca_key_means_a_new_ca_while_the_old_one_stays_in_the_bundle() -> None:
    data = fresh()
    p = plan({**data, certs.CA_KEY_KEY: b""})
    assert p.data is not None and p.reasons[0] == "ca-missing-or-invalid"
    bundle = certs.load_certs(p.data[certs.CA_CERT_KEY])
    assert bundle[1] == cert_of(data, certs.CA_CERT_KEY)
    assert certs.signed_by(cert_of(p.data), bundle[0])


def test_a_serving_certificate_never_outlives_its_ca() -> None:
    p = certs.plan({}, NAMES, NOW, 100 * DAY, 365 * DAY, 10 * DAY)
    assert p.data is not None
    assert cert_of(p.data).not_valid_after_utc <= cert_of(p.data, certs.CA_CERT_KEY).not_valid_after_utc


def _rsa_pair(subject: str, issuer: x509.Name | None, issuer_key: rsa.RSAPrivateKey | None, names: list[str],
              ca: bool, days: int) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - DAY).not_valid_after(NOW + days * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
    return builder.sign(issuer_key or key, hashes.SHA256()), key


def test_rsa_certificates_like_helms_gen_ca_are_accepted_as_they_are() -> None:
    ca, ca_key = _rsa_pair("notebook-platform-webhook-ca", None, None, [], ca=True, days=3650)
    cert, key = _rsa_pair(NAMES[-1], ca.subject, ca_key, NAMES, ca=False, days=365)
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL
    data = {
        certs.CA_CERT_KEY: ca.public_bytes(serialization.Encoding.PEM),
        certs.CA_KEY_KEY: ca_key.private_bytes(serialization.Encoding.PEM, pkcs1, serialization.NoEncryption()),
        certs.TLS_CERT_KEY: cert.public_bytes(serialization.Encoding.PEM),
        certs.TLS_KEY_KEY: key.private_bytes(serialization.Encoding.PEM, pkcs1, serialization.NoEncryption()),
    }
    assert plan(data).data is None
    renewed = plan(data, NOW + 340 * DAY)
    assert renewed.data is not None and renewed.reasons == ["serving-cert-renewal-due"]
    assert certs.signed_by(cert_of(renewed.data), ca)


# --- the Secret and the webhook configuration -------------------------------------------------------------------

def test_secret_data_round_trips_and_the_secret_is_labelled() -> None:
    data = fresh()
    secret = certs.secret_manifest("tls", "ns", data)
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "notebook-platform"
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "webhook-certs"
    assert certs.decode_secret_data(secret) == data


def test_undecodable_secret_values_read_as_empty() -> None:
    assert certs.decode_secret_data({"data": {"tls.crt": "***"}}) == {"tls.crt": b""}
    assert certs.decode_secret_data(None) == {}


def _mwc(*bundles: str | None) -> dict:
    hooks = [{"name": f"w{i}.example.com", "clientConfig": ({"caBundle": b} if b else {})}
             for i, b in enumerate(bundles)]
    return {"metadata": {"name": "m", "resourceVersion": "42"}, "webhooks": hooks}


def test_ca_bundle_patch_sets_only_stale_webhooks_at_the_read_version() -> None:
    bundle = b"PEM"
    enc = base64.b64encode(bundle).decode()
    patch = certs.ca_bundle_patch(_mwc(enc, None, "b2xk"), bundle)
    assert patch == {"metadata": {"resourceVersion": "42"},
                     "webhooks": [{"name": "w1.example.com", "clientConfig": {"caBundle": enc}},
                                  {"name": "w2.example.com", "clientConfig": {"caBundle": enc}}]}


def test_ca_bundle_patch_is_none_when_every_webhook_is_current() -> None:
    bundle = b"PEM"
    assert certs.ca_bundle_patch(_mwc(base64.b64encode(bundle).decode()), bundle) is None


def test_controller_settings_read_webhook_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_CERT_CONTROLLER_ENABLED", "true")
    monkeypatch.setenv("WEBHOOK_CERT_RENEW_BEFORE_DAYS", "7")
    monkeypatch.setenv("WEBHOOK_CERT_NAMESPACE", "platform")
    s = certs.CertControllerSettings()
    assert s.cert_controller_enabled is True and s.cert_renew_before_days == 7 and s.cert_namespace == "platform"
