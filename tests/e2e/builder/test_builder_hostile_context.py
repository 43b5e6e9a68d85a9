"""Hostile build contexts on a real volume: a context folder that is a symlink out of the volume.

The API refuses absolute paths and `..` itself (unit and integration tests), but it never sees the volume, so a
symlink inside the workspace that points outside it can only be stopped where the volume is mounted: the Job
mounts the context folder as a `subPath`, and the kubelet refuses a subPath that resolves outside the volume.
This shows that refusal really happens on the node and comes back to the caller as a failed build with the
reason, not a build of the host's files and not a build that waits until its deadline.
"""

from __future__ import annotations

import pytest
from builder_e2e import BuilderUser, base_image, run_build, write_files
from platform_e2e import Platform


def test_context_symlinked_out_of_the_volume_fails_the_build_with_the_kubelets_reason(
    platform: Platform, builder_user: BuilderUser
) -> None:
    user, ns = builder_user, builder_user.namespace
    base = base_image(platform)
    # `evil` -> /etc on the node; `good` -> a sibling folder inside the volume (allowed).
    write_files(platform, user, base, "real", {"Dockerfile": f"FROM {base}\nRUN true\n"})
    write_files(platform, user, base, "links", {}, links={"evil": "/etc", "good": "../real"})

    with pytest.raises(AssertionError) as refused:
        run_build(user, {"context": {"pvc": user.pvc, "path": "links/evil"}, "cache": False,
                         "destination": f"{platform.registry}/{ns}/evil:v1"}, timeout=300)
    message = str(refused.value)
    assert "failed" in message and "CreateContainerConfigError" in message, message
    assert "subpath" in message.lower(), message
    assert "context.path 'links/evil'" in message and "not a folder inside the volume" in message, message

    ok = run_build(user, {"context": {"pvc": user.pvc, "path": "links/good"}, "cache": False,
                          "destination": f"{platform.registry}/{ns}/good:v1"}, timeout=600)
    assert ok.digest == platform.crane_digest(f"{platform.registry}/{ns}/good:v1")
