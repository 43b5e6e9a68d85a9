"""Names the builder shares with Kubernetes, the chart and its clients: one place for each.

The Build "resource" is virtual: it is served by this API and stored as a Job, but RBAC rules name it like any
other resource (`builds` in `builder.notebook-platform.io`), so an administrator grants it with a plain Role.
"""

from __future__ import annotations

from typing import Final

API_GROUP: Final = "builder.notebook-platform.io"
API_VERSION: Final = "v1"
API_GROUP_VERSION: Final = f"{API_GROUP}/{API_VERSION}"
RESOURCE: Final = "builds"
KIND: Final = "Build"
LIST_KIND: Final = "BuildList"

# Every object we create carries these (CONVENTIONS.md).
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
MANAGED_BY: Final = "notebook-platform"
COMPONENT_BUILD: Final = "build"
BUILD_SELECTOR: Final = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}={COMPONENT_BUILD}"
# The per-claim pod that tells the builder whether a context resolves inside the volume (volume_agent.py).
COMPONENT_VOLUME_AGENT: Final = "volume-agent"
AGENT_SELECTOR: Final = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}={COMPONENT_VOLUME_AGENT}"

# Set by the Job controller on the pods it creates (Kubernetes >= 1.27).
LABEL_JOB_NAME: Final = "batch.kubernetes.io/job-name"

# Labels are for selecting (values <= 63 chars); annotations carry the full request and results.
LABEL_DEDUPE_KEY: Final = f"{API_GROUP}/dedupe-key"
ANNOTATION_REQUEST: Final = f"{API_GROUP}/request"
ANNOTATION_CONTENT_HASH: Final = f"{API_GROUP}/content-hash"
ANNOTATION_DESTINATION: Final = f"{API_GROUP}/destination"
ANNOTATION_REQUESTED_BY: Final = f"{API_GROUP}/requested-by"
ANNOTATION_PHASE: Final = f"{API_GROUP}/phase"
ANNOTATION_CANCELLED_BY: Final = f"{API_GROUP}/cancelled-by"
ANNOTATION_AGENT_CLAIM: Final = f"{API_GROUP}/claim"
ANNOTATION_AGENT_TOKEN: Final = f"{API_GROUP}/agent-token"

CONTAINER_NAME: Final = "kaniko"
WORKSPACE_VOLUME: Final = "workspace"
DOCKER_CONFIG_VOLUME: Final = "docker-config"
WORKSPACE_MOUNT: Final = "/workspace"
DOCKER_CONFIG_DIR: Final = "/kaniko/.docker"
DOCKER_CONFIG_KEY: Final = ".dockerconfigjson"
TERMINATION_LOG: Final = "/dev/termination-log"

# Where a pod finds its own identity (the client reads it in a notebook).
SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_PREFIX: Final = "system:serviceaccount:"

DEFAULT_PORT: Final = 8080
API_PREFIX: Final = f"/api/{API_VERSION}"

# Recorded on the Job the first time the API sees the build finished, so later reads need no pod (pods go
# away; the Job stays until ttlSecondsAfterFinished) and a finished build can be found for reuse.
ANNOTATION_DIGEST: Final = f"{API_GROUP}/digest"
ANNOTATION_MESSAGE: Final = f"{API_GROUP}/message"
# Selects builds not yet seen finished, so the concurrency check lists a handful of Jobs, not all of them.
LABEL_ACTIVE: Final = f"{API_GROUP}/active"
