// Package node is a node agent built on the kubelet's own DRA manager: it registers a Node, watches the
// pods bound to it, and prepares and unprepares their ResourceClaims through
// k8s.io/kubernetes/pkg/kubelet/cm/dra exactly where the kubelet does (before the pod sandbox would be
// created, kuberuntime_manager.go SyncPod; after its containers stopped, kubelet.go SyncTerminatedPod),
// with DRA drivers registered through the kubelet's plugin manager watching a registry dir. There is no
// container runtime: a prepared pod gets the CDI device IDs the runtime would have received, per
// container, in the annotation gpulet.dev/cdi-devices, and is marked Running.
package node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"
	pluginregistrationv1 "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	"k8s.io/kubernetes/pkg/kubelet/config"
	"k8s.io/kubernetes/pkg/kubelet/pluginmanager"
)

// Options of the node agent.
type Options struct {
	NodeName string
	// Kubeconfig of the node's own identity (system:node:<name>): everything the kubelet does goes through
	// it, so the Node authorizer and NodeRestriction judge it as they judge a kubelet.
	Kubeconfig string
	// AdminKubeconfig writes the one thing a kubelet cannot: the CDI annotation on the pod (NodeRestriction
	// forbids a node to update a pod's metadata).
	AdminKubeconfig string
	// RegistryDir is watched for plugin registration sockets (the kubelet's plugins_registry).
	RegistryDir string
	// StateDir holds the DRA manager's checkpoint (the kubelet's root dir).
	StateDir string
	// FeatureGates as on the command line ("A=true,B=false").
	FeatureGates string
	// PodResourcesSocket is where the kubelet's pod-resources API v1 is served (the kubelet's
	// <root-dir>/pod-resources/kubelet.sock); empty: not served.
	PodResourcesSocket string
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, o Options) error {
	logger := klog.FromContext(ctx).WithValues("node", o.NodeName)
	ctx = klog.NewContext(ctx, logger)

	// The DRA manager reads the process-wide feature gates (utilfeature.DefaultFeatureGate), as in the kubelet.
	if err := setFeatureGates(o.FeatureGates); err != nil {
		return err
	}
	wiped := make(chan struct{})
	nodeClient, err := client(o.Kubeconfig, "kubelet/"+KubeletVersion, observeWipe(o.NodeName, wiped))
	if err != nil {
		return err
	}
	adminClient, err := client(o.AdminKubeconfig, "gpulet-cluster-node-agent", nil)
	if err != nil {
		return err
	}
	for _, dir := range []string{o.RegistryDir, o.StateDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}

	if err := register(ctx, nodeClient, o.NodeName); err != nil {
		return fmt.Errorf("register node %s: %w", o.NodeName, err)
	}

	// Events as the kubelet records them (source component "kubelet", host = the node).
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: nodeClient.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: o.NodeName})

	// The pods bound to this node, as the kubelet's API source watches them (field selector spec.nodeName).
	factory := informers.NewSharedInformerFactoryWithOptions(nodeClient, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
		}))
	podInformer := factory.Core().V1().Pods()
	podLister := podInformer.Lister()

	// pkg/kubelet/cm/dra/manager.go: NewManager(logger, kubeClient, stateFileDirectory).
	manager, err := dra.NewManager(logger, nodeClient, o.StateDir)
	if err != nil {
		return fmt.Errorf("DRA manager: %w", err)
	}
	// pkg/kubelet/config/sources.go: NewSourcesReady; ready once the pod informer has synced (the
	// kubelet's "api" source).
	sourcesReady := config.NewSourcesReady(func(sets.Set[string]) bool { return podInformer.Informer().HasSynced() })
	activePods := func() []*v1.Pod {
		pods, err := podLister.List(labels.Everything())
		if err != nil {
			return nil
		}
		active := make([]*v1.Pod, 0, len(pods))
		for _, p := range pods {
			if p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed {
				active = append(active, p)
			}
		}
		return active
	}
	// manager.go: Start(ctx, activePods, getNode, sourcesReady) creates the DRA plugin manager (which
	// deletes the node's ResourceSlices once at start, as a starting kubelet does) and the reconcile loop.
	if err := manager.Start(ctx, activePods, getNode(nodeClient, o.NodeName), sourcesReady); err != nil {
		return fmt.Errorf("start DRA manager: %w", err)
	}
	defer manager.Stop()
	if o.PodResourcesSocket != "" {
		if err := servePodResources(ctx, o.PodResourcesSocket, podLister, activePods, manager); err != nil {
			return err
		}
	}

	// pkg/kubelet/pluginmanager/plugin_manager.go: NewPluginManager(sockDir, recorder), AddHandler, Run —
	// the kubelet's plugin watcher on the registry dir, with the DRA manager's registration handler
	// (GetWatcherHandler) for plugin type "DRAPlugin" (pluginregistration/v1 constants.go).
	plugins := pluginmanager.NewPluginManager(o.RegistryDir, recorder)
	plugins.AddHandler(pluginregistrationv1.DRAPlugin, manager.GetWatcherHandler())
	go plugins.Run(ctx, sourcesReady, ctx.Done())

	w := newWorker(manager, nodeClient, adminClient, podLister, recorder, o.NodeName)
	if _, err := podInformer.Informer().AddEventHandler(w.handler()); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		return fmt.Errorf("pod informer did not sync")
	}
	go w.healthUpdates(ctx, manager.Updates())

	// Ready only once the DRA manager has deleted the node's ResourceSlices, as every starting kubelet does
	// (dra_plugin_manager.go wipeResourceSlices): a driver that publishes after the node is Ready never
	// loses its slices to that start-up wipe.
	select {
	case <-wiped:
	case <-ctx.Done():
		return nil
	}
	if err := markReady(ctx, nodeClient, o.NodeName); err != nil {
		return err
	}
	heartbeat(ctx, nodeClient, o.NodeName)
	logger.Info("Node agent running", "registryDir", o.RegistryDir)
	w.run(ctx)
	factory.Shutdown()
	return nil
}

func client(kubeconfig, userAgent string, wrap transport.WrapperFunc) (*clientset.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.UserAgent = userAgent
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	cfg.QPS, cfg.Burst = 50, 100
	return clientset.NewForConfig(cfg)
}

func setFeatureGates(spec string) error {
	gates := map[string]bool{}
	for _, kv := range strings.Split(spec, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("feature gate %q: want NAME=true|false", kv)
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("feature gate %q: %w", kv, err)
		}
		gates[k] = b
	}
	return utilfeature.DefaultMutableFeatureGate.SetFromMap(gates)
}

// observeWipe closes wiped after the first successful DELETE of the node's ResourceSlice collection
// (field selector spec.nodeName=<node>) made through the wrapped client: the DRA manager's start-up wipe.
func observeWipe(nodeName string, wiped chan struct{}) transport.WrapperFunc {
	var once sync.Once
	selector := fields.OneTermEqualSelector(resourceapi.ResourceSliceSelectorNodeName, nodeName).String()
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			res, err := rt.RoundTrip(req)
			if err == nil && req.Method == http.MethodDelete && req.URL.Path == "/apis/resource.k8s.io/v1/resourceslices" &&
				req.URL.Query().Get("fieldSelector") == selector && res.StatusCode < 300 {
				once.Do(func() { close(wiped) })
			}
			return res, err
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// retryDelay bounds how often one pod is retried after an error (the kubelet's pod workers back off too).
const retryDelay = 30 * time.Second
