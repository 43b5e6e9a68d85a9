"""Every name the webhook shares with Kubernetes, the chart and the other services, in one place.

The PodDefault API and its annotation prefix are Kubeflow's, kept byte for byte so that existing
PodDefault YAML and tools that read the bookkeeping annotations keep working.
"""

from __future__ import annotations

from typing import Final

# The PodDefault custom resource (Kubeflow's group and version, unchanged).
GROUP: Final = "kubeflow.org"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
PLURAL: Final = "poddefaults"
KIND: Final = "PodDefault"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# Annotations on pods (Kubeflow's prefix).
ANNOTATION_PREFIX: Final = "poddefault.admission.kubeflow.org"
EXCLUDE_ANNOTATION: Final = f"{ANNOTATION_PREFIX}/exclude"
APPLIED_ANNOTATION_PREFIX: Final = f"{ANNOTATION_PREFIX}/poddefault-"
# Static pods mirrored by the kubelet carry this annotation; they cannot be changed, so never touch them.
MIRROR_POD_ANNOTATION: Final = "kubernetes.io/config.mirror"

# Kubeflow leaves command/args of the Istio sidecar alone; so do we.
ISTIO_PROXY_CONTAINER: Final = "istio-proxy"

# The namespace label that makes the MutatingWebhookConfiguration's namespaceSelector send pods here.
NAMESPACE_LABEL: Final = "notebook-platform.io/poddefaults"
NAMESPACE_LABEL_VALUE: Final = "enabled"

# Labels every object we create carries.
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "notebook-platform"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
COMPONENT_VALUE: Final = "poddefault-webhook"

# Kubernetes Events we record on PodDefaults.
EVENT_COMPONENT: Final = "notebook-platform-webhook"
EVENT_REASON_CONFLICT: Final = "PodDefaultConflict"

# AdmissionReview.
ADMISSION_API_VERSION: Final = "admission.k8s.io/v1"
ADMISSION_KIND: Final = "AdmissionReview"
# The apiserver refuses webhook request bodies above 3 MiB, so anything larger is not from it.
MAX_ADMISSION_BYTES: Final = 3 * 1024 * 1024
# A real pod nests about a dozen levels deep; far deeper JSON is hostile and would only cost stack.
MAX_JSON_DEPTH: Final = 64

DEFAULT_PORT: Final = 8443
