// Command etcd is upstream etcd's server, built from its Go module. It lives in its own module
// so that etcd's gRPC and OpenTelemetry versions do not mix with Kubernetes'.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
