package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"

	"gpulet.dev/test/upstream/internal/controlplane"
	"gpulet.dev/test/upstream/internal/etcd"
)

// attempts bounds the retries when a port found free was taken before the component bound it.
const attempts = 3

func addressInUse(text string) bool { return strings.Contains(text, "address already in use") }

// startEtcd starts etcd on two free loopback ports.
func startEtcd(dir string) (*etcd.Server, error) {
	var last error
	for range attempts {
		ports, err := controlplane.FreePorts(2)
		if err != nil {
			return nil, err
		}
		s, err := etcd.Start(dir, ports[0], ports[1])
		if err == nil {
			return s, nil
		}
		if !addressInUse(err.Error()) {
			return nil, err
		}
		last = err
		_ = os.RemoveAll(dir)
	}
	return nil, last
}

// startAPIServer starts kube-apiserver on a free loopback port and waits for /readyz. writeAdmin writes the
// administrator's kubeconfig, adminKubeconfig, for the server's URL (the waiter reads it).
func startAPIServer(ctx context.Context, api controlplane.APIServer, logDir, adminKubeconfig string, writeAdmin func(server string) error) (*controlplane.Proc, string, *waiter, error) {
	var last error
	for range attempts {
		ports, err := controlplane.FreePorts(1)
		if err != nil {
			return nil, "", nil, err
		}
		api.Port = ports[0]
		server := fmt.Sprintf("https://127.0.0.1:%d", api.Port)
		if err := writeAdmin(server); err != nil {
			return nil, "", nil, err
		}
		proc, err := controlplane.Start("kube-apiserver", api.Flags(), logDir)
		if err != nil {
			return nil, "", nil, err
		}
		w, err := newWaiter(adminKubeconfig, []*controlplane.Proc{proc}, logDir)
		if err == nil {
			err = w.apiServerReady(ctx)
		}
		if err == nil {
			return proc, server, w, nil
		}
		proc.Stop(0)
		if !addressInUse(err.Error()) {
			return nil, "", nil, err
		}
		last = err
	}
	return nil, "", nil, last
}
