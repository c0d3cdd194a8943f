package node

import (
	"context"
	goruntime "runtime"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	kubeletutil "k8s.io/kubernetes/pkg/kubelet/util"
)

// KubeletVersion is what the Node reports as its kubelet (the Kubernetes release this module pins).
const KubeletVersion = "v1.37.2"

// initialNode is the Node this agent registers, after the kubelet's initialNode
// (pkg/kubelet/kubelet_node_status.go): the well-known hostname, OS and arch labels, plus the label the
// DaemonSet's node affinity selects GPU nodes by (daemonset/07-daemonset.yaml). No taints: the
// TaintNodesByCondition admission plugin adds node.kubernetes.io/not-ready, which the node-lifecycle
// controller removes once the node reports Ready.
func initialNode(name string) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				v1.LabelHostname:         name,
				v1.LabelOSStable:         goruntime.GOOS,
				v1.LabelArchStable:       goruntime.GOARCH,
				"nvidia.com/gpu.present": "true",
			},
		},
	}
}

// nodeStatus is the node's status, Ready or not, with room for pods (the scheduler's NodeResourcesFit
// needs allocatable pods, cpu and memory) and the loopback address.
func nodeStatus(now metav1.Time, ready bool) v1.NodeStatus {
	condition := v1.NodeCondition{
		Type:               v1.NodeReady,
		Status:             v1.ConditionTrue,
		Reason:             "KubeletReady",
		Message:            "gpulet test cluster node agent is posting ready status (no container runtime)",
		LastHeartbeatTime:  now,
		LastTransitionTime: now,
	}
	if !ready {
		condition.Status, condition.Reason, condition.Message = v1.ConditionFalse, "KubeletNotReady", "DRA manager starting"
	}
	resources := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("8"),
		v1.ResourceMemory: resource.MustParse("32Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	return v1.NodeStatus{
		Capacity:    resources,
		Allocatable: resources,
		Conditions:  []v1.NodeCondition{condition},
		Addresses:   []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "127.0.0.1"}},
		NodeInfo: v1.NodeSystemInfo{
			KubeletVersion:          KubeletVersion,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
			ContainerRuntimeVersion: "none://0",
		},
	}
}

// register creates the Node (or takes over an existing one) and posts a NotReady status, retrying until
// the API server accepts, as the kubelet's registerWithAPIServer does.
func register(ctx context.Context, client clientset.Interface, name string) error {
	return postStatus(ctx, client, name, false)
}

// markReady posts the Ready status.
func markReady(ctx context.Context, client clientset.Interface, name string) error {
	return postStatus(ctx, client, name, true)
}

func postStatus(ctx context.Context, client clientset.Interface, name string, ready bool) error {
	logger := klog.FromContext(ctx)
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Create(ctx, initialNode(name), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			node, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			logger.Info("Registering node failed, retrying", "node", name, "err", err)
			return false, nil
		}
		node.Status = nodeStatus(metav1.Now(), ready)
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			logger.Info("Posting node status failed, retrying", "node", name, "err", err)
			return false, nil
		}
		logger.Info("Node status posted", "node", name, "ready", ready)
		return true, nil
	})
}

// heartbeat renews the node's Lease in kube-node-lease with upstream's lease controller, as the kubelet
// does (pkg/kubelet/kubelet.go: lease.NewController with util.SetNodeOwnerFunc, 40 s lease renewed every
// 10 s), and re-posts the Ready condition every minute, so the node-lifecycle controller keeps the node
// Ready and untainted.
func heartbeat(ctx context.Context, client clientset.Interface, name string) {
	const leaseSeconds = 40
	lc := lease.NewController(clock.RealClock{}, client, name, leaseSeconds, nil, 10*time.Second, name,
		v1.NamespaceNodeLease, kubeletutil.SetNodeOwnerFunc(ctx, client, name))
	go lc.Run(ctx)
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			now := metav1.Now()
			for i := range node.Status.Conditions {
				if node.Status.Conditions[i].Type == v1.NodeReady {
					node.Status.Conditions[i].LastHeartbeatTime = now
				}
			}
			_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
			return err
		})
		if err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Info("Posting node status failed", "err", err)
		}
	}, time.Minute)
}

// getNode reads the Node (the DRA manager's GetNodeFunc: it needs the Node's name and UID to wipe the
// node's ResourceSlices).
func getNode(client clientset.Interface, name string) func(context.Context) (*v1.Node, error) {
	return func(ctx context.Context) (*v1.Node, error) {
		// Unwrapped: the DRA manager tells "not registered yet" by apierrors.IsNotFound.
		return client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
}
