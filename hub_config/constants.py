"""Names the hub shares with the cluster, the webhook and the builder.

One place for each fact (CONVENTIONS.md): the webhook and builder keep their own copies in their own
constants modules, so a renamed key shows up as a failing integration test, not a silent mismatch.
"""

from __future__ import annotations

from typing import Final

# -- labels every object we create carries -------------------------------------------------------------
MANAGED_BY_KEY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "notebook-platform"
COMPONENT_KEY: Final = "app.kubernetes.io/component"
PART_OF_KEY: Final = "app.kubernetes.io/part-of"
PART_OF: Final = "notebook-platform"

# app.kubernetes.io/component values, one per kind of object the hub provisions
COMPONENT_USER_NAMESPACE: Final = "user-namespace"
COMPONENT_QUOTA: Final = "user-quota"
COMPONENT_NOTEBOOK_IDENTITY: Final = "notebook-identity"
COMPONENT_BUILDER_ACCESS: Final = "builder-access"
COMPONENT_DEFAULT_PODDEFAULT: Final = "default-poddefault"
COMPONENT_WORKSPACE: Final = "workspace"
COMPONENT_NOTEBOOK: Final = "notebook"
NOTEBOOK_CONTAINER: Final = "notebook"  # KubeSpawner's name for the single-user server's container

# -- our own keys -----------------------------------------------------------------------------------------
DOMAIN: Final = "notebook-platform.io"
# The PodDefault webhook only mutates pods in namespaces with this label (safe by default).
PODDEFAULTS_LABEL: Final = f"{DOMAIN}/poddefaults"
PODDEFAULTS_ENABLED: Final = "enabled"
# Which hub user owns a namespace: the label is a slug (label values are restricted), the annotation the
# exact JupyterHub name.
USER_LABEL: Final = f"{DOMAIN}/user"
USERNAME_ANNOTATION: Final = f"{DOMAIN}/username"
# Marks the workspace PVC so the builder can find the caller's volume without guessing names.
WORKSPACE_LABEL: Final = f"{DOMAIN}/workspace"
# Names of the configurations (PodDefaults) the user picked, recorded on the pod for humans and tooling.
CONFIGURATIONS_ANNOTATION: Final = f"{DOMAIN}/configurations"
# Tests mark what they create so leftovers are easy to find.
TEST_LABEL: Final = f"{DOMAIN}/test"

# -- Pod Security Admission ------------------------------------------------------------------------------
PSA_ENFORCE_KEY: Final = "pod-security.kubernetes.io/enforce"
PSA_ENFORCE_VERSION_KEY: Final = "pod-security.kubernetes.io/enforce-version"
PSA_WARN_KEY: Final = "pod-security.kubernetes.io/warn"
PSA_AUDIT_KEY: Final = "pod-security.kubernetes.io/audit"

# -- PodDefault CRD (Kubeflow's, unchanged) ----------------------------------------------------------------
PODDEFAULT_GROUP: Final = "kubeflow.org"
PODDEFAULT_VERSION: Final = "v1alpha1"
PODDEFAULT_PLURAL: Final = "poddefaults"
PODDEFAULT_KIND: Final = "PodDefault"
PODDEFAULT_API_VERSION: Final = f"{PODDEFAULT_GROUP}/{PODDEFAULT_VERSION}"
# The webhook records each PodDefault it applied as `<prefix><name>: <resourceVersion>` (Kubeflow's key).
PODDEFAULT_APPLIED_PREFIX: Final = "poddefault.admission.kubeflow.org/poddefault-"

# -- builder API (RBAC only: "builds" is checked by SubjectAccessReview, it need not be a CRD) --------------
BUILDER_API_GROUP: Final = "builder.notebook-platform.io"
BUILDER_RESOURCE: Final = "builds"
BUILDER_VERBS: Final = ("create", "get", "list", "delete")

# -- env names injected into notebooks ----------------------------------------------------------------------
ENV_BUILDER_URL: Final = "NBP_BUILDER_URL"
ENV_REGISTRY: Final = "NBP_REGISTRY"
ENV_WORKSPACE_PVC: Final = "NBP_WORKSPACE_PVC"
ENV_WORKSPACE_PATH: Final = "NBP_WORKSPACE_PATH"

# -- who we are when we write to the API -------------------------------------------------------------------
FIELD_MANAGER: Final = "notebook-platform-hub"

# -- form field names (the HTML form and options_from_form must agree) ------------------------------------
FORM_PROFILE: Final = "profile"
FORM_PROFILE_OPTION_PREFIX: Final = "profile-option-"
FORM_CONFIGURATION: Final = "configuration"
USER_OPTION_CONFIGURATIONS: Final = "configurations"
