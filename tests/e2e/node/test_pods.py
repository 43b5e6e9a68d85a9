"""Pods on the real node: our base image runs, Services answer by DNS name, exec and logs -f work."""

from __future__ import annotations

import subprocess
from typing import Any

from conftest import MANAGED, Node, logs, wait_phase
from support import Cluster, unique_name, wait_for

# A tiny HTTP server in Perl (perl-base is part of a Debian minbase root file system).
SERVER = r"""
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 16, ReuseAddr => 1) or die "listen: $!";
$| = 1; print "listening\n";
while (my $c = $s->accept) {
  my $line = <$c>;
  print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from $ENV{HOSTNAME}\n";
  close $c;
}
"""


def test_pod_from_base_image_runs_logs_and_exits_zero(node: Node, core: Any, namespace: str, run_pod: Any) -> None:
    name = run_pod(node.base_image, ["bash", "-c", ". /etc/os-release; echo \"hello from $PRETTY_NAME\"; exit 0"])
    pod = core.read_namespaced_pod(name, namespace)
    assert pod.spec.node_name == node.name
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert "hello from Debian GNU/Linux" in logs(core, namespace, name)


def test_deployment_behind_clusterip_service_answers_another_pod_by_dns_name(
    node: Node, kube_api: Any, core: Any, namespace: str, run_pod: Any
) -> None:
    from kubernetes import client

    apps: Any = client.AppsV1Api(kube_api)
    labels = {**MANAGED, "app": "web"}
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": MANAGED},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "web", "image": node.base_image, "command": ["perl", "-e", SERVER],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }]},
            },
        },
    })
    core.create_namespaced_service(namespace, {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": MANAGED},
        "spec": {"type": "ClusterIP", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
    wait_for(lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 2,
             timeout=120, what="2 ready web replicas")

    fqdn = f"web.{namespace}.svc.cluster.local"
    script = (f"getent hosts {fqdn}; for i in 1 2 3 4; do exec 3<>/dev/tcp/{fqdn}/80 && "
              "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3; exec 3<&-; done")
    name = run_pod(node.base_image, ["bash", "-c", script])
    out = logs(core, namespace, name)
    cluster_ip = core.read_namespaced_service("web", namespace).spec.cluster_ip
    assert out.splitlines()[0].split()[0] == cluster_ip, out
    assert "HTTP/1.0 200 OK" in out
    assert "hello from web-" in out


def test_kubectl_exec_and_logs_follow(node: Node, cluster: Cluster, core: Any, namespace: str) -> None:
    name = unique_name("exec")
    count = 5
    cluster.kubectl("-n", namespace, "run", name, f"--image={node.base_image}", "--restart=Never",
                    "--labels=app.kubernetes.io/managed-by=notebook-platform", "--command", "--",
                    "bash", "-c", f"for i in $(seq 1 {count}); do echo line-$i; sleep 1; done; sleep 2")
    wait_phase(core, namespace, name, {"Running"})
    out = cluster.kubectl("-n", namespace, "exec", name, "--", "bash", "-c", "echo exec-ok; cat /etc/debian_version")
    assert out.stdout.startswith("exec-ok\n")
    # logs -f returns when the container ends, with every line, in order.
    follow = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace,
         "logs", "-f", name], capture_output=True, text=True, timeout=60, check=True)
    assert follow.stdout.split() == [f"line-{i}" for i in range(1, count + 1)]
