package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"gpulet.dev/test/upstream/internal/controlplane"
)

// startupTimeout bounds the wait for each stage; a loaded 2-core machine needs far less.
const startupTimeout = 3 * time.Minute

// waiter polls the API server as the administrator until a condition holds, and gives up at once when a
// component exits meanwhile.
type waiter struct {
	client *clientset.Clientset
	procs  []*controlplane.Proc
	logDir string
}

func newWaiter(kubeconfig string, procs []*controlplane.Proc, logDir string) (*waiter, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	c, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &waiter{client: c, procs: procs, logDir: logDir}, nil
}

// anyExit delivers the first component that exits.
func (w *waiter) anyExit() <-chan *controlplane.Proc {
	ch := make(chan *controlplane.Proc, len(w.procs))
	for _, p := range w.procs {
		go func() {
			<-p.Done()
			ch <- p
		}()
	}
	return ch
}

// until polls cond every 100 ms; it fails when ctx ends, the timeout passes or a component exits.
func (w *waiter) until(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	exits := w.anyExit()
	deadline := time.Now().Add(startupTimeout)
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", startupTimeout, what, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-exits:
			return fmt.Errorf("waiting for %s: %w; last lines of %s:\n%s", what, p.ExitError(),
				filepath.Join(w.logDir, p.Name+".log"), tail(filepath.Join(w.logDir, p.Name+".log"), 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// apiServerReady waits for /readyz (every post-start hook, RBAC bootstrap roles among them).
func (w *waiter) apiServerReady(ctx context.Context) error {
	return w.until(ctx, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		status := 0
		res := w.client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		return status == 200, res.Error()
	})
}

// componentsReady waits for the scheduler's and the controller manager's leader Leases (each takes its
// Lease once its informers have synced, right before it starts working), for each node to be Ready and
// free of the not-ready taint, and for the "default" ServiceAccount (pods are admitted only once it exists).
func (w *waiter) componentsReady(ctx context.Context, nodes []string) error {
	for _, lease := range []string{"kube-scheduler", "kube-controller-manager"} {
		if err := w.until(ctx, lease+" leader Lease", func(ctx context.Context) (bool, error) {
			l, err := w.client.CoordinationV1().Leases("kube-system").Get(ctx, lease, metav1.GetOptions{})
			return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", err
		}); err != nil {
			return err
		}
	}
	for _, name := range nodes {
		if err := w.until(ctx, "node "+name+" Ready and untainted", func(ctx context.Context) (bool, error) {
			n, err := w.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return nodeReady(n) && len(n.Spec.Taints) == 0, nil
		}); err != nil {
			return err
		}
	}
	return w.until(ctx, "ServiceAccount default/default", func(ctx context.Context) (bool, error) {
		_, err := w.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

func nodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
