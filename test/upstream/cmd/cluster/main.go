// Command cluster runs an upstream Kubernetes cluster on loopback for gpulet's tests: `cluster up`
// (the default) starts everything and prints one JSON line when it is ready; the other first arguments
// name the component this same binary runs as a child process, with upstream's own command:
//
//	kube-apiserver           k8s.io/kubernetes/cmd/kube-apiserver/app.NewAPIServerCommand
//	kube-scheduler           k8s.io/kubernetes/cmd/kube-scheduler/app.NewSchedulerCommand
//	kube-controller-manager  k8s.io/kubernetes/cmd/kube-controller-manager/app.NewControllerManagerCommand
//	node-<name>              the node agent on the kubelet's DRA manager (internal/node)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // as upstream's main packages do
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/klog/v2"

	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	"gpulet.dev/test/upstream/internal/cluster"
	"gpulet.dev/test/upstream/internal/node"
)

func main() {
	name, args := "up", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	var cmd *cobra.Command
	switch {
	case name == "kube-apiserver":
		cmd = apiserver.NewAPIServerCommand()
	case name == "kube-scheduler":
		cmd = scheduler.NewSchedulerCommand()
	case name == "kube-controller-manager":
		cmd = controllermanager.NewControllerManagerCommand()
	case strings.HasPrefix(name, "node-"):
		os.Exit(runNode(args))
	case name == "up":
		os.Exit(runUp(args))
	default:
		fmt.Fprintf(os.Stderr, "cluster: unknown command %q (up, kube-apiserver, kube-scheduler, kube-controller-manager, node-<name>)\n", name)
		os.Exit(2)
	}
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}

// signalContext ends at SIGTERM or SIGINT.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("cluster up", flag.ExitOnError)
	dir := fs.String("dir", ".gpulet/cluster", "directory of the cluster's files (made anew)")
	nodes := fs.String("nodes", "node-a", "comma-separated node names, one node agent each")
	_ = fs.Parse(args)
	// Stop with whoever started us (a test runner killed outright must not leave a cluster behind):
	// SIGTERM when the parent dies, as the components get from us (prctl PR_SET_PDEATHSIG).
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "cluster: prctl: %v\n", errno)
	}
	ctx, cancel := signalContext()
	defer cancel()
	err := cluster.Up(ctx, cluster.Options{Dir: *dir, Nodes: strings.Split(*nodes, ","), Ready: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		return 1
	}
	return 0
}

func runNode(args []string) int {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	var o node.Options
	fs.StringVar(&o.NodeName, "node-name", "", "node name")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "the node's kubeconfig (system:node:<name>)")
	fs.StringVar(&o.AdminKubeconfig, "admin-kubeconfig", "", "kubeconfig that may annotate pods")
	fs.StringVar(&o.RegistryDir, "registry-dir", "", "plugin registration dir")
	fs.StringVar(&o.StateDir, "state-dir", "", "DRA manager state dir")
	fs.StringVar(&o.FeatureGates, "feature-gates", "", "feature gates")
	fs.StringVar(&o.PodResourcesSocket, "pod-resources-socket", "", "serve the kubelet's pod-resources API v1 on this unix socket")
	klog.InitFlags(fs)
	_ = fs.Parse(args)
	ctx, cancel := signalContext()
	defer cancel()
	if err := node.Run(ctx, o); err != nil {
		klog.ErrorS(err, "node agent failed")
		klog.Flush()
		return 1
	}
	klog.Flush()
	return 0
}
