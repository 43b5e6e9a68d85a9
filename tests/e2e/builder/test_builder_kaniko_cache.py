"""Kaniko's layer cache through the builder REST API, on the installed platform.

A user (namespace provisioned as the hub does it, workspace claim of the RWX class, the notebook service
account's token) has a Dockerfile on the workspace volume: the local registry's base image, a slow `RUN` (a few
seconds of real work whose output is random, so a rebuilt layer can never equal a cached one), and a small
`COPY` last. The first build is cold; then only the copied file changes and the same repository is built again.
The second build must take the `RUN` layer from the cache (`<repository>/cache`, the builder's default
`BUILDER_CACHE_REPO_TEMPLATE`), which shows three ways: Kaniko's log says so, the image shares that layer
byte for byte with the first one, and only the last layer and the digest differ. Durations (POST -> `built`)
are printed, not asserted: bench/builder_api.py --kaniko measures them.
"""

from __future__ import annotations

import json
import subprocess

from builder_e2e import BuilderUser, BuildRun, base_image, run_build, run_to_end, write_files
from platform_e2e import LOCAL, Platform
from support import unique_name

# Kaniko's INFO lines (executor/pkg/executor/build.go) for a cache miss, a hit, and the layer it stores.
MISS = "No cached layer found for cmd RUN"
HIT = "Using caching version of cmd: RUN"
STORE = "to cache now"  # "Pushing layer <cache repo>:<key> to cache now"

DOCKERFILE = """\
FROM {base}
# The slow layer: compresses 8 MiB of fresh random data six times (a few seconds of CPU, ~8 MiB of output).
RUN mkdir /opt/slow && head -c 8388608 /dev/urandom > /opt/slow/data.bin \\
 && for i in 1 2 3 4 5 6; do gzip -9 -c /opt/slow/data.bin | sha256sum; done > /opt/slow/SUMS
COPY stamp.txt /stamp.txt
CMD ["cat", "/stamp.txt", "/opt/slow/SUMS"]
"""


def crane(*args: str) -> str:
    out = subprocess.run([str(LOCAL / "bin" / "crane"), *args, "--insecure"], capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout


def layers(ref: str) -> list[str]:
    return [layer["digest"] for layer in json.loads(crane("manifest", ref))["layers"]]


def summary(label: str, run: BuildRun) -> str:
    return (f"{label}: {run.name} {run.seconds:.1f} s (POST -> built), phases {run.phases()}, "
            f"{len(run.lines)} log lines")


def test_second_build_with_only_the_last_layer_changed_takes_the_run_layer_from_kaniko_cache(
    platform: Platform, builder_user: BuilderUser
) -> None:
    user, ns = builder_user, builder_user.namespace
    base = base_image(platform)
    repo = f"{platform.registry}/{ns}/cached"
    stamp1, stamp2 = unique_name("one"), unique_name("two")
    write_files(platform, user, base, "proj", {"Dockerfile": DOCKERFILE.format(base=base), "stamp.txt": stamp1 + "\n"})
    body = {"context": {"pvc": user.pvc, "path": "proj"}, "cache": True}

    cold = run_build(user, {**body, "destination": f"{repo}:v1"})
    assert cold.phases()[0] == "waiting" and cold.phases()[-1] == "built", cold.phases()
    assert "building" in cold.phases(), cold.phases()
    assert cold.digest == platform.crane_digest(f"{repo}:v1")
    assert MISS in cold.log and HIT not in cold.log, cold.log
    assert STORE in cold.log, cold.log
    assert crane("ls", f"{repo}/cache").split(), "the cold build stored no layer in the cache repository"

    # Only the file of the last layer changes; same repository, next tag.
    write_files(platform, user, base, "proj", {"stamp.txt": stamp2 + "\n"})
    warm = run_build(user, {**body, "destination": f"{repo}:v2"})
    assert warm.phases()[-1] == "built", warm.phases()
    assert warm.digest == platform.crane_digest(f"{repo}:v2")
    assert warm.digest != cold.digest
    assert HIT in warm.log and MISS not in warm.log, warm.log
    assert STORE not in warm.log, warm.log

    # The RUN layer is the cached one, byte for byte (a rebuild would differ: its output is random).
    before, after = layers(f"{repo}@{cold.digest}"), layers(f"{repo}@{warm.digest}")
    assert len(before) == len(after) == 3, (before, after)
    assert after[:2] == before[:2], "base and RUN layers should be shared"
    assert after[2] != before[2], "the COPY layer should differ"

    # The new image runs: the new file, and the output of the RUN layer the first build produced.
    pod = unique_name("cached")
    platform.kubectl("-n", ns, "run", pod, f"--image={repo}@{warm.digest}", "--restart=Never",
                     "--overrides", json.dumps({"spec": {"serviceAccountName": user.service_account,
                                                         "automountServiceAccountToken": False}}),
                     "--labels=app.kubernetes.io/managed-by=notebook-platform,app.kubernetes.io/component=e2e")
    assert run_to_end(platform, ns, pod, timeout=180) == "Succeeded"
    shown = platform.kubectl("-n", ns, "logs", pod).stdout.splitlines()
    assert shown[0] == stamp2 and len(shown) == 7, shown

    ratio = cold.seconds / warm.seconds
    print(f"\n{summary('cold', cold)}\n{summary('one layer changed', warm)}\nratio {ratio:.2f}")
    for label, run in (("cold", cold), ("warm", warm)):
        marks = {k: run.first(k) for k in ("Retrieving image manifest", "Checking for cached layer", "Unpacking",
                                           "Taking snapshot", "Pushing layer", "Pushing image to")}
        print(f"{label} first line times (s from POST): " +
              ", ".join(f"{k}: {v:.1f}" for k, v in marks.items() if v is not None))
