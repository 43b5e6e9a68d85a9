// Command nbp-cri is the few CRI calls hack/node.sh needs (crictl cannot be fetched here):
//
//	nbp-cri -endpoint SOCKET ready   exit 0 when the runtime answers Status and says it is ready
//	nbp-cri -endpoint SOCKET ps      list pod sandboxes
//	nbp-cri -endpoint SOCKET rmp     stop and remove every pod sandbox
//
// `rmp` is how `make down` leaves nothing behind: stopping a sandbox through the CRI makes containerd
// run CNI DEL (veth, IPAM lease, the bridge plugin's masquerade chain, portmap rules) and remove the
// network namespace; removing it releases the container and sandbox mounts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	endpoint := flag.String("endpoint", "", "path of the CRI runtime's unix socket")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall deadline")
	flag.Parse()
	if *endpoint == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: nbp-cri -endpoint SOCKET ready|ps|rmp")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	switch flag.Arg(0) {
	case "ready":
		st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			fail(err)
		}
		for _, c := range st.GetStatus().GetConditions() {
			if c.Type == runtimeapi.RuntimeReady && !c.Status {
				fail(fmt.Errorf("runtime not ready: %s", c.Message))
			}
		}
	case "ps", "rmp":
		list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			fail(err)
		}
		failed := false
		for _, s := range list.Items {
			m := s.GetMetadata()
			fmt.Printf("%.13s %s/%s %s\n", s.Id, m.GetNamespace(), m.GetName(), s.State)
			if flag.Arg(0) != "rmp" {
				continue
			}
			if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
				fmt.Fprintf(os.Stderr, "nbp-cri: stop %.13s: %v\n", s.Id, err)
				failed = true
				continue
			}
			if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
				fmt.Fprintf(os.Stderr, "nbp-cri: remove %.13s: %v\n", s.Id, err)
				failed = true
			}
		}
		if failed {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: nbp-cri -endpoint SOCKET ready|ps|rmp")
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "nbp-cri:", err)
	os.Exit(1)
}
