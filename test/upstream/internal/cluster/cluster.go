// Package cluster starts a whole Kubernetes cluster on loopback: etcd in this process, then
// kube-apiserver, kube-scheduler, kube-controller-manager and one node agent per node as child processes
// (internal/controlplane), each with the credentials and flags of a real cluster, and says when all of
// it is ready.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gpulet.dev/test/upstream/internal/controlplane"
	"gpulet.dev/test/upstream/internal/node"
	"gpulet.dev/test/upstream/internal/pki"
)

// Version is the Kubernetes release the cluster runs (go.mod pins k8s.io/kubernetes to it).
const Version = node.KubeletVersion

// Options of Up.
type Options struct {
	// Dir holds everything: kubeconfig, pki/, etcd/, logs/, nodes/<name>/. Made anew at each start.
	Dir string
	// Nodes to run an agent for.
	Nodes []string
	// Ready receives the one JSON line that says the cluster is ready.
	Ready io.Writer
}

// NodeInfo says where a node's agent looks for plugins.
type NodeInfo struct {
	Name        string `json:"name"`
	RegistryDir string `json:"registryDir"`
	PluginsDir  string `json:"pluginsDir"`
	StateDir    string `json:"stateDir"`
	// PodResourcesSocket serves the kubelet's pod-resources API v1 (internal/node/podresources.go), where a
	// kubelet with root dir StateDir has it: <root-dir>/pod-resources/kubelet.sock.
	PodResourcesSocket string `json:"podResourcesSocket"`
}

// ReadyLine is printed once, when every component is ready.
type ReadyLine struct {
	Ready        bool             `json:"ready"`
	Version      string           `json:"version"`
	Server       string           `json:"server"`
	Kubeconfig   string           `json:"kubeconfig"`
	Dir          string           `json:"dir"`
	Logs         string           `json:"logs"`
	Nodes        []NodeInfo       `json:"nodes"`
	FeatureGates []string         `json:"featureGates"`
	StartupMs    int64            `json:"startupMs"`
	PhasesMs     map[string]int64 `json:"phasesMs"`
}

// Up starts the cluster, prints the ready line, and runs until ctx ends; then it stops every component
// in reverse order. An error means a component failed (its log is named).
func Up(ctx context.Context, o Options) error {
	start := time.Now()
	phases := map[string]int64{}
	mark := func(name string, since time.Time) { phases[name] = time.Since(since).Milliseconds() }

	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	if err := reset(dir); err != nil {
		return err
	}
	pkiDir, logDir := filepath.Join(dir, "pki"), filepath.Join(dir, "logs")

	t := time.Now()
	ca, err := pki.NewCA(pkiDir, "gpulet-cluster-ca")
	if err != nil {
		return err
	}
	serving, err := ca.Serving(pkiDir, "apiserver")
	if err != nil {
		return err
	}
	saKey, saPub, err := pki.ServiceAccountKey(pkiDir)
	if err != nil {
		return err
	}
	admin, err := ca.Client(pkiDir, "admin", "kubernetes-admin", "system:masters")
	if err != nil {
		return err
	}
	mark("pki", t)

	t = time.Now()
	etcdServer, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return err
	}
	defer etcdServer.Close()
	mark("etcd", t)

	var procs []*controlplane.Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop(15 * time.Second)
		}
	}()
	started := func(p *controlplane.Proc, err error) error {
		if err == nil {
			procs = append(procs, p)
		}
		return err
	}

	t = time.Now()
	kubeconfigs := filepath.Join(dir, "kubeconfigs")
	adminKubeconfig := filepath.Join(kubeconfigs, "admin.kubeconfig")
	api := controlplane.APIServer{
		EtcdURL: etcdServer.ClientURL, CertDir: filepath.Join(dir, "apiserver"),
		TLSCert: serving.CertFile, TLSKey: serving.KeyFile, ClientCA: filepath.Join(pkiDir, "ca.crt"),
		SAKey: saKey, SAPub: saPub,
	}
	apiProc, server, w, err := startAPIServer(ctx, api, logDir, adminKubeconfig, func(server string) error {
		return writeKubeconfig(adminKubeconfig, server, ca.CertPEM, admin, "kubernetes-admin")
	})
	if err != nil {
		return err
	}
	procs = append(procs, apiProc)
	mark("kube-apiserver", t)

	t = time.Now()
	identities := []struct{ name, user string }{
		{"kube-scheduler", "system:kube-scheduler"},
		{"kube-controller-manager", "system:kube-controller-manager"},
	}
	for _, id := range identities {
		pair, err := ca.Client(pkiDir, id.name, id.user)
		if err != nil {
			return err
		}
		if err := writeKubeconfig(filepath.Join(kubeconfigs, id.name+".kubeconfig"), server, ca.CertPEM, pair, id.user); err != nil {
			return err
		}
	}
	if err := started(controlplane.Start("kube-scheduler", controlplane.Scheduler(filepath.Join(kubeconfigs, "kube-scheduler.kubeconfig")), logDir)); err != nil {
		return err
	}
	if err := started(controlplane.Start("kube-controller-manager", controlplane.ControllerManager(
		filepath.Join(kubeconfigs, "kube-controller-manager.kubeconfig"), filepath.Join(pkiDir, "ca.crt"), saKey), logDir)); err != nil {
		return err
	}

	nodes := make([]NodeInfo, 0, len(o.Nodes))
	for _, name := range o.Nodes {
		user := "system:node:" + name
		pair, err := ca.Client(pkiDir, "node-"+name, user, "system:nodes")
		if err != nil {
			return err
		}
		nodeKubeconfig := filepath.Join(kubeconfigs, "node-"+name+".kubeconfig")
		if err := writeKubeconfig(nodeKubeconfig, server, ca.CertPEM, pair, user); err != nil {
			return err
		}
		nd := filepath.Join(dir, "nodes", name)
		info := NodeInfo{Name: name, RegistryDir: filepath.Join(nd, "plugins_registry"), PluginsDir: filepath.Join(nd, "plugins"), StateDir: filepath.Join(nd, "kubelet")}
		info.PodResourcesSocket = filepath.Join(info.StateDir, "pod-resources", "kubelet.sock")
		for _, d := range []string{info.RegistryDir, info.PluginsDir, info.StateDir} {
			if err := os.MkdirAll(d, 0o750); err != nil {
				return err
			}
		}
		args := []string{
			"--node-name=" + name, "--kubeconfig=" + nodeKubeconfig, "--admin-kubeconfig=" + adminKubeconfig,
			"--registry-dir=" + info.RegistryDir, "--state-dir=" + info.StateDir,
			"--pod-resources-socket=" + info.PodResourcesSocket,
			"--feature-gates=" + strings.Join(controlplane.FeatureGates, ","),
		}
		if err := started(controlplane.Start("node-"+name, args, logDir)); err != nil {
			return err
		}
		nodes = append(nodes, info)
	}
	w.procs = procs
	if err := w.componentsReady(ctx, o.Nodes); err != nil {
		return err
	}
	mark("components", t)

	// The kubeconfig users are handed is written last: its presence means a usable cluster.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, ca.CertPEM, admin, "kubernetes-admin"); err != nil {
		return err
	}
	line := ReadyLine{
		Ready: true, Version: Version, Server: server, Kubeconfig: kubeconfig, Dir: dir, Logs: logDir,
		Nodes: nodes, FeatureGates: controlplane.FeatureGates, StartupMs: time.Since(start).Milliseconds(), PhasesMs: phases,
	}
	data, err := json.Marshal(line)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(o.Ready, "%s\n", data); err != nil {
		return err
	}

	// Run until asked to stop, or until a component dies.
	select {
	case <-ctx.Done():
		return nil
	case err := <-etcdServer.Err():
		return fmt.Errorf("etcd: %w", err)
	case p := <-w.anyExit():
		return fmt.Errorf("%w (log: %s)", p.ExitError(), filepath.Join(logDir, p.Name+".log"))
	}
}

// reset removes what an earlier run left in dir (only the entries Up makes).
func reset(dir string) error {
	for _, name := range []string{"kubeconfig", "cluster.json", "pki", "etcd", "apiserver", "kubeconfigs", "logs", "nodes"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return os.MkdirAll(dir, 0o755)
}
