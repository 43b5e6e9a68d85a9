"""Webhook settings from `WEBHOOK_*` environment variables; the chart's values map one-to-one onto them.

The self-signed certificate controller's settings (`cert_*`) are declared with it, in `certs.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from webhook import constants as c
from webhook.certs import CertControllerSettings


class Settings(CertControllerSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOK_", extra="ignore")

    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(c.DEFAULT_PORT, ge=1, le=65535)
    cert_file: Path | None = Field(None, description="PEM certificate (chain); without it the server speaks "
                                   "plain HTTP, which the apiserver refuses: for local tools only.")
    key_file: Path | None = Field(None, description="PEM private key for cert_file.")
    cert_check_interval: float = Field(10.0, gt=0, description="Seconds between checks for renewed "
                                       "certificate files (mounted Secrets change in place).")
    kubeconfig: Path | None = Field(None, description="Kubeconfig file; unset means in-cluster config.")
    resync_period: float = Field(600.0, gt=0, description="Seconds between full re-lists of PodDefaults, "
                                 "a safety net under the watch.")
    failure_policy: Literal["Fail", "Ignore"] = Field(
        "Fail", description="On an internal error or before the cache is synced: deny the pod (Fail) or "
        "admit it unchanged (Ignore). Mirror the MutatingWebhookConfiguration's failurePolicy.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_body_bytes: int = Field(c.MAX_ADMISSION_BYTES, gt=0)
    body_timeout: float = Field(10.0, gt=0, description="Seconds to receive a request body (slow clients).")
    event_timeout: float = Field(5.0, gt=0, description="Seconds for recording one Kubernetes Event.")
    event_interval: float = Field(60.0, ge=0, description="Seconds before the same conflict Event is "
                                  "recorded again for the same PodDefault (retrying controllers).")
