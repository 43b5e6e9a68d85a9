"""ReadWriteMany storage from the node's dynamic provisioner: two pods share one claim."""

from __future__ import annotations

from typing import Any

from conftest import Node, claim_volume, logs, wait_phase
from support import wait_for


def test_two_pods_on_one_rwx_claim_see_the_same_bytes(
    node: Node, core: Any, namespace: str, run_pod: Any, rwx_claim: Any
) -> None:
    claim = rwx_claim()
    bound = core.read_namespaced_persistent_volume_claim(claim, namespace).spec.volume_name
    volume = core.read_persistent_volume(bound)
    assert volume.spec.access_modes == ["ReadWriteMany"]
    assert volume.spec.node_affinity is None  # a shared file system: any node may mount it

    data = {"volumes": [claim_volume(claim)], "mounts": {"data": "/data"}}
    # The writer stays up while the reader runs, so both pods have the claim mounted at the same time.
    writer = run_pod(node.base_image, ["bash", "-c",
                     "head -c 1048576 /dev/urandom > /data/blob.tmp && mv /data/blob.tmp /data/blob && "
                     "sha256sum /data/blob && sleep 600"], until={"Running"}, prefix="writer", **data)
    written = wait_for(lambda: logs(core, namespace, writer).split()[:1], timeout=60, what="the writer's checksum")
    reader = run_pod(node.base_image, ["sha256sum", "/data/blob"], prefix="reader", **data)
    assert logs(core, namespace, reader).split()[:1] == written
    assert wait_phase(core, namespace, writer, {"Running"}) == "Running"
