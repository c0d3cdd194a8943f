package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	"k8s.io/kubernetes/pkg/kubelet/cm/resourceupdates"
)

// CDIAnnotation carries, on a running pod, each container's CDI device IDs (JSON: container name → IDs):
// what the kubelet would hand the container runtime (kubecontainer.RunContainerOptions.CDIDevices).
const CDIAnnotation = "gpulet.dev/cdi-devices"

// worker keeps the pods bound to the node in step with the DRA manager, one pod at a time per key.
type worker struct {
	manager  *dra.Manager
	node     clientset.Interface
	admin    clientset.Interface
	pods     corelisters.PodLister
	recorder record.EventRecorder
	nodeName string
	queue    workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// gone holds the last state of pods deleted from the API server, until they are unprepared.
	gone map[string]*v1.Pod
	// running is the UIDs of pods this agent has started.
	running map[types.UID]bool
}

func newWorker(m *dra.Manager, node, admin clientset.Interface, pods corelisters.PodLister, rec record.EventRecorder, nodeName string) *worker {
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[string](200*time.Millisecond, retryDelay)
	return &worker{
		manager: m, node: node, admin: admin, pods: pods, recorder: rec, nodeName: nodeName,
		queue:   workqueue.NewTypedRateLimitingQueue(limiter),
		gone:    map[string]*v1.Pod{},
		running: map[types.UID]bool{},
	}
}

func (w *worker) handler() cache.ResourceEventHandler {
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			w.queue.Add(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*v1.Pod); ok {
				key, _ := cache.MetaNamespaceKeyFunc(pod)
				w.mu.Lock()
				w.gone[key] = pod
				w.mu.Unlock()
				w.queue.Add(key)
			}
		},
	}
}

func (w *worker) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		w.queue.ShutDown()
	}()
	for {
		key, quit := w.queue.Get()
		if quit {
			return
		}
		err := w.sync(ctx, key)
		if err != nil {
			klog.FromContext(ctx).Info("Pod sync failed, will retry", "pod", key, "err", err)
			w.queue.AddRateLimited(key)
		} else {
			w.queue.Forget(key)
		}
		w.queue.Done(key)
	}
}

func (w *worker) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := w.pods.Pods(ns).Get(name)
	w.mu.Lock()
	last := w.gone[key]
	w.mu.Unlock()
	// A pod removed from the API server (force-deleted, or after our own final delete): release its claims.
	if last != nil && (apierrors.IsNotFound(err) || (err == nil && pod.UID != last.UID)) {
		if err := w.manager.UnprepareResources(ctx, last); err != nil {
			return err
		}
		w.mu.Lock()
		delete(w.gone, key)
		delete(w.running, last.UID)
		w.mu.Unlock()
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case pod.DeletionTimestamp != nil:
		return w.terminate(ctx, pod)
	case pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed:
		return w.manager.UnprepareResources(ctx, pod)
	default:
		w.mu.Lock()
		started := w.running[pod.UID]
		w.mu.Unlock()
		if started {
			return nil
		}
		return w.start(ctx, pod)
	}
}

// start prepares the pod's claims (manager.go PrepareResources, where kuberuntime's SyncPod calls it), asks
// the manager for each container's CDI devices (manager.go GetResources, as the container manager's
// GenerateRunContainerOptions does), records them on the pod and marks it Running.
func (w *worker) start(ctx context.Context, pod *v1.Pod) error {
	if err := w.manager.PrepareResources(ctx, pod); err != nil {
		// The kubelet's event (pkg/kubelet/kuberuntime/kuberuntime_manager.go, events.FailedPrepareDynamicResources).
		w.recorder.Eventf(pod, v1.EventTypeWarning, "FailedPrepareDynamicResources", "Failed to prepare dynamic resources: %v", err)
		return err
	}
	devices := map[string][]string{}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		info, err := w.manager.GetResources(pod, c)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		ids := make([]string, 0, len(info.CDIDevices))
		for _, d := range info.CDIDevices {
			ids = append(ids, d.Name)
		}
		devices[c.Name] = ids
	}
	if err := w.annotate(ctx, pod, devices); err != nil {
		return err
	}
	if err := w.markRunning(ctx, pod); err != nil {
		return err
	}
	w.mu.Lock()
	w.running[pod.UID] = true
	w.mu.Unlock()
	klog.FromContext(ctx).Info("Pod running", "pod", klog.KObj(pod), "cdiDevices", devices)
	return nil
}

func (w *worker) annotate(ctx context.Context, pod *v1.Pod, devices map[string][]string) error {
	value, err := json.Marshal(devices)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         pod.UID, // a precondition: never annotate a namesake
		"annotations": map[string]string{CDIAnnotation: string(value)},
	}})
	if err != nil {
		return err
	}
	_, err = w.admin.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// markRunning posts the status a kubelet posts once every container runs (through the node's identity,
// pods/status).
func (w *worker) markRunning(ctx context.Context, pod *v1.Pod) error {
	current, err := w.node.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if current.UID != pod.UID {
		return fmt.Errorf("pod %s/%s was replaced", pod.Namespace, pod.Name)
	}
	now := metav1.Now()
	status := current.Status.DeepCopy()
	status.Phase = v1.PodRunning
	status.HostIP = "127.0.0.1"
	status.HostIPs = []v1.HostIP{{IP: "127.0.0.1"}}
	if status.StartTime == nil {
		status.StartTime = &now
	}
	for _, t := range []v1.PodConditionType{v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady} {
		setCondition(status, t, now)
	}
	status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, v1.ContainerStatus{
			Name:        c.Name,
			Image:       c.Image,
			ImageID:     "",
			ContainerID: "gpulet-cluster://" + string(pod.UID) + "/" + c.Name,
			Ready:       true,
			Started:     ptrTo(true),
			State:       v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}},
		})
	}
	current.Status = *status
	// Where the manager has device health for the pod's claims, show it (manager.go
	// UpdateAllocatedResourcesStatus, which the kubelet's status manager calls).
	w.manager.UpdateAllocatedResourcesStatus(klog.FromContext(ctx), current, &current.Status)
	_, err = w.node.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, current, metav1.UpdateOptions{})
	return err
}

func setCondition(status *v1.PodStatus, t v1.PodConditionType, now metav1.Time) {
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			if status.Conditions[i].Status != v1.ConditionTrue {
				status.Conditions[i].Status = v1.ConditionTrue
				status.Conditions[i].LastTransitionTime = now
			}
			return
		}
	}
	status.Conditions = append(status.Conditions, v1.PodCondition{Type: t, Status: v1.ConditionTrue, LastTransitionTime: now})
}

// terminate handles a pod being deleted: its (absent) containers are stopped, so its claims are unprepared
// (manager.go UnprepareResources, where the kubelet's SyncTerminatedPod calls it: after the containers
// stopped, before the status changes), then the pod is deleted for good, as the kubelet's status manager
// does (grace period 0, UID precondition).
func (w *worker) terminate(ctx context.Context, pod *v1.Pod) error {
	if err := w.manager.UnprepareResources(ctx, pod); err != nil {
		return err
	}
	w.mu.Lock()
	delete(w.running, pod.UID)
	w.mu.Unlock()
	err := w.node.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptrTo(int64(0)),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// healthUpdates re-posts the status of pods whose devices' health changed (the manager's Updates channel,
// fed by the drivers' DRAResourceHealth streams), with allocatedResourcesStatus filled in by the manager.
func (w *worker) healthUpdates(ctx context.Context, updates <-chan resourceupdates.Update) {
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-updates:
			for _, uid := range u.PodUIDs {
				w.mu.Lock()
				started := w.running[types.UID(uid)]
				w.mu.Unlock()
				if started {
					w.refreshHealth(ctx, types.UID(uid))
				}
			}
		}
	}
}

func (w *worker) refreshHealth(ctx context.Context, uid types.UID) {
	pods, err := w.pods.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if p.UID != uid {
			continue
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			pod, err := w.node.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || pod.UID != uid {
				return err
			}
			w.manager.UpdateAllocatedResourcesStatus(klog.FromContext(ctx), pod, &pod.Status)
			_, err = w.node.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
			return err
		})
		if err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Info("Posting device health failed", "pod", klog.KObj(p), "err", err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
