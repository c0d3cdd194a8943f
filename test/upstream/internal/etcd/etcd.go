// Package etcd runs one etcd member in this process, on loopback, for the API server.
//
// Upstream's integration tests start an etcd binary (test/integration/framework/etcd.go); this cluster
// embeds the same server through its library, go.etcd.io/etcd/server/v3/embed (embed.NewConfig,
// embed.StartEtcd, Etcd.Server.ReadyNotify, Etcd.Close), so no etcd binary is needed.
package etcd

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Server is a running etcd member.
type Server struct {
	etcd *embed.Etcd
	// ClientURL is what the API server's --etcd-servers names.
	ClientURL string
}

// Start starts etcd with its data in dir/data and its log in dir/etcd.log, listening on the given
// loopback ports, and waits until it serves.
func Start(dir string, clientPort, peerPort int) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "gpulet-cluster"
	cfg.Dir = filepath.Join(dir, "data")
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// No metrics listener of its own (the client port serves /metrics as usual).
	cfg.ListenMetricsUrls = nil
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	// A throw-away cluster on a shared machine: skip fsync (upstream's integration tests run etcd on
	// tmpfs for the same reason).
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("etcd was not ready within 60 s")
	}
	return &Server{etcd: e, ClientURL: client.String()}, nil
}

// Err reports a fatal error of the running server.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops etcd and waits for it.
func (s *Server) Close() { s.etcd.Close() }
