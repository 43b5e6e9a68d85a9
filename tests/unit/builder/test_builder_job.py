"""render_job: the Kaniko Job for a checked request (table-driven on what the request and settings change)."""

from __future__ import annotations

from typing import Any

import pytest

from builder import constants as c
from builder.job import KANIKO_CAPABILITIES, dedupe_key, render_job
from builder.model import BuildRequest
from builder.settings import Settings
from builder.validate import check_request

REG = "registry.local:5000"
HASH = "sha256:" + "ab" * 32


def render(settings: Settings | None = None, **over: Any) -> dict[str, Any]:
    settings = settings or Settings(registry=REG)
    b: dict[str, Any] = {"context": {"pvc": "workspace", "path": "proj/app"}, "destination": f"{REG}/alice/app:v1"}
    b.update(over)
    return render_job(check_request(BuildRequest.model_validate(b), "alice", settings), settings, "alice", "alice-sa")


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def container(job: dict[str, Any]) -> dict[str, Any]:
    [ctr] = pod(job)["containers"]
    return ctr


def args(job: dict[str, Any]) -> list[str]:
    return container(job)["args"]


def test_job_fails_once_and_is_bounded_and_cleaned_up_per_settings() -> None:
    s = Settings(registry=REG, active_deadline_seconds=600, ttl_seconds_after_finished=120)
    job = render(s)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert job["spec"]["ttlSecondsAfterFinished"] == 120
    assert pod(job)["restartPolicy"] == "Never"
    assert job["metadata"]["namespace"] == "alice"
    assert job["metadata"]["generateName"] == "build-"


def test_job_and_pod_carry_the_platform_labels() -> None:
    job = render()
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[c.LABEL_MANAGED_BY] == "notebook-platform"
        assert labels[c.LABEL_COMPONENT] == "build"
    assert job["metadata"]["labels"][c.LABEL_ACTIVE] == "true"


def test_workspace_is_mounted_read_only_with_the_context_folder_as_subpath() -> None:
    job = render()
    [vol] = [v for v in pod(job)["volumes"] if v["name"] == c.WORKSPACE_VOLUME]
    assert vol["persistentVolumeClaim"] == {"claimName": "workspace", "readOnly": True}
    [mount] = [m for m in container(job)["volumeMounts"] if m["name"] == c.WORKSPACE_VOLUME]
    assert mount == {"name": c.WORKSPACE_VOLUME, "mountPath": "/workspace", "readOnly": True, "subPath": "proj/app"}


def test_context_at_the_volume_root_mounts_without_subpath() -> None:
    [mount] = container(render(context={"pvc": "workspace", "path": "."}))["volumeMounts"]
    assert "subPath" not in mount


@pytest.mark.parametrize(
    ("over", "present", "absent"),
    [
        ({}, ["--context=dir:///workspace", "--dockerfile=/workspace/Dockerfile",
              f"--destination={REG}/alice/app:v1", "--digest-file=/dev/termination-log", "--cache=true",
              f"--cache-repo={REG}/alice/app/cache"], ["--cache=false", "--insecure"]),
        ({"cache": False}, ["--cache=false"], ["--cache=true", f"--cache-repo={REG}/alice/app/cache"]),
        ({"dockerfile": "docker/Dockerfile.gpu"}, ["--dockerfile=/workspace/docker/Dockerfile.gpu"], []),
        ({"buildArgs": {"B": "2", "A": "--destination=evil.io/x"}},
         ["--build-arg=A=--destination=evil.io/x", "--build-arg=B=2"], ["--destination=evil.io/x"]),
        ({"target": "runtime"}, ["--target=runtime"], []),
        ({"labels": {"org.opencontainers.image.source": "nb"}}, ["--label=org.opencontainers.image.source=nb"], []),
    ],
)
def test_kaniko_flags_follow_the_request(over: dict[str, Any], present: list[str], absent: list[str]) -> None:
    a = args(render(**over))
    for flag in present:
        assert flag in a
    for flag in absent:
        assert flag not in a


def test_build_args_are_sorted_single_argv_entries() -> None:
    a = args(render(buildArgs={"Z": "1", "A": "x y; rm -rf /"}))
    assert [x for x in a if x.startswith("--build-arg")] == ["--build-arg=A=x y; rm -rf /", "--build-arg=Z=1"]


@pytest.mark.parametrize(
    ("insecure", "destination", "flags"),
    [
        ([], f"{REG}/alice/app", []),
        ([REG], f"{REG}/alice/app", ["--insecure", f"--insecure-registry={REG}"]),
        (["other.local:5000"], f"{REG}/alice/app", ["--insecure-registry=other.local:5000"]),
        (["REGISTRY.local:5000"], f"{REG}/alice/app", ["--insecure", f"--insecure-registry={REG}"]),
    ],
)
def test_insecure_flags_only_for_registries_configured_as_insecure(insecure, destination, flags) -> None:
    s = Settings(registry=REG, insecure_registries=insecure)
    a = args(render(s, destination=destination))
    assert [x for x in a if x.startswith("--insecure")] == flags
    assert "--insecure-pull" not in a
    assert not any(x.startswith("--skip-tls-verify") for x in a)


def test_push_secret_is_mounted_as_the_docker_config() -> None:
    job = render(pushSecret="regcred")
    [vol] = [v for v in pod(job)["volumes"] if v["name"] == c.DOCKER_CONFIG_VOLUME]
    assert vol["secret"]["secretName"] == "regcred"
    assert vol["secret"]["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]
    [mount] = [m for m in container(job)["volumeMounts"] if m["name"] == c.DOCKER_CONFIG_VOLUME]
    assert mount["mountPath"] == "/kaniko/.docker" and mount["readOnly"] is True


def test_without_push_secret_nothing_but_the_workspace_is_mounted() -> None:
    job = render()
    assert [v["name"] for v in pod(job)["volumes"]] == [c.WORKSPACE_VOLUME]


@pytest.mark.parametrize(("sa", "automount"), [(None, False), ("pusher", True)])
def test_service_account_token_is_mounted_only_when_one_is_asked_for(sa: str | None, automount: bool) -> None:
    job = render(serviceAccountName=sa) if sa else render()
    assert pod(job)["automountServiceAccountToken"] is automount
    assert pod(job).get("serviceAccountName") == sa


def test_security_context_is_baseline_compatible() -> None:
    job = render()
    sc = container(job)["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "NET_RAW" not in sc["capabilities"]["add"] and "SYS_ADMIN" not in sc["capabilities"]["add"]
    assert set(KANIKO_CAPABILITIES) <= {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
    assert pod(job)["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod(job) and "hostPID" not in pod(job)
    assert pod(job)["enableServiceLinks"] is False


def test_digest_comes_back_through_the_termination_message() -> None:
    ctr = container(render())
    assert ctr["terminationMessagePath"] == "/dev/termination-log"
    assert ctr["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "--digest-file=/dev/termination-log" in ctr["args"]


def test_image_resources_and_extra_args_come_from_settings() -> None:
    s = Settings(registry=REG, kaniko_image="k:1", cpu_limit="3", memory_request="2Gi",
                 ephemeral_storage_limit=None, kaniko_extra_args=["--reproducible"])
    ctr = container(render(s))
    assert ctr["image"] == "k:1"
    assert ctr["resources"]["limits"] == {"cpu": "3", "memory": "4Gi"}
    assert ctr["resources"]["requests"]["memory"] == "2Gi"
    assert ctr["args"][-1] == "--reproducible"


def test_annotations_carry_the_request_and_who_asked() -> None:
    job = render(contentHash=HASH)
    ann = job["metadata"]["annotations"]
    assert ann[c.ANNOTATION_REQUESTED_BY] == "alice-sa"
    assert ann[c.ANNOTATION_CONTENT_HASH] == HASH
    assert ann[c.ANNOTATION_DESTINATION] == f"{REG}/alice/app:v1"
    assert BuildRequest.model_validate_json(ann[c.ANNOTATION_REQUEST]).context.path == "proj/app"
    assert len(job["metadata"]["labels"][c.LABEL_DEDUPE_KEY]) <= 63


def test_dedupe_key_changes_with_anything_that_changes_the_image() -> None:
    s = Settings(registry=REG)

    def key(**over: Any) -> str | None:
        b: dict[str, Any] = {"context": {"pvc": "w", "path": "p"}, "destination": f"{REG}/alice/app:v1",
                             "contentHash": HASH}
        b.update(over)
        return dedupe_key(check_request(BuildRequest.model_validate(b), "alice", s))

    base = key()
    assert base is not None and base == key()
    assert key(contentHash=None) is None
    variants = [key(contentHash="sha256:" + "cd" * 32), key(destination=f"{REG}/alice/app:v2"),
                key(buildArgs={"A": "1"}), key(target="t"), key(dockerfile="Other"), key(labels={"a": "b"})]
    assert base not in variants and len(set(variants)) == len(variants)
    # The context folder does not change the image if the content hash is equal.
    assert key(context={"pvc": "w", "path": "elsewhere"}) == base
