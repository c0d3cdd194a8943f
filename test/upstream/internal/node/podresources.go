package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"

	"k8s.io/kubernetes/pkg/kubelet/apis/podresources"
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
)

// servePodResources serves the kubelet's pod-resources API v1 on socket, as the kubelet does
// (pkg/kubelet/server/server.go ListenAndServePodResources: grpc.NewServer, then
// podresourcesapi.RegisterPodResourcesListerServer with pkg/kubelet/apis/podresources/server_v1.go
// NewV1PodResourcesServer), with the kubelet's own server and the providers this agent has: its pods and
// the DRA manager's claims. There are no device plugins, CPU or memory managers here: those providers
// answer empty, as the kubelet's do when nothing is assigned. The server stops when ctx ends.
func servePodResources(ctx context.Context, socket string, pods corelisters.PodLister, activePods func() []*v1.Pod, manager *dra.Manager) error {
	if err := os.MkdirAll(filepath.Dir(socket), 0o750); err != nil {
		return err
	}
	if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
		return err
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("pod-resources socket %s: %w", socket, err)
	}
	server := grpc.NewServer()
	podresourcesapi.RegisterPodResourcesListerServer(server, podresources.NewV1PodResourcesServer(ctx, podresources.PodResourcesProviders{
		Pods:             podsProvider{pods: pods, active: activePods},
		Devices:          noDevices{},
		Cpus:             noCPUs{},
		Memory:           noMemory{},
		DynamicResources: dynamicResources{manager: manager},
	}))
	go func() {
		<-ctx.Done()
		server.Stop()
	}()
	go func() {
		klog.FromContext(ctx).Info("Starting to serve the podresources API", "endpoint", socket)
		if err := server.Serve(l); err != nil {
			klog.FromContext(ctx).Error(err, "podresources server failed")
		}
	}()
	return nil
}

// podsProvider is podresources.PodsProvider over the pods bound to this node (the agent's informer).
type podsProvider struct {
	pods   corelisters.PodLister
	active func() []*v1.Pod
}

func (p podsProvider) GetActivePods() []*v1.Pod { return p.active() }

func (p podsProvider) GetPods() []*v1.Pod {
	pods, err := p.pods.List(labels.Everything())
	if err != nil {
		return nil
	}
	return pods
}

func (p podsProvider) GetPodByName(namespace, name string) (*v1.Pod, bool) {
	pod, err := p.pods.Pods(namespace).Get(name)
	return pod, err == nil
}

// dynamicResources is podresources.DynamicResourcesProvider exactly as the kubelet's container manager
// implements it (pkg/kubelet/cm/container_manager_linux.go GetDynamicResources), on the DRA manager's
// GetContainerClaimInfos (pkg/kubelet/cm/dra/manager.go).
type dynamicResources struct{ manager *dra.Manager }

func (d dynamicResources) GetDynamicResources(logger klog.Logger, pod *v1.Pod, container *v1.Container) []*podresourcesapi.DynamicResource {
	var containerDynamicResources []*podresourcesapi.DynamicResource
	containerClaimInfos, err := d.manager.GetContainerClaimInfos(pod, container)
	if err != nil {
		logger.Error(err, "Unable to get container claim info state")
		return []*podresourcesapi.DynamicResource{}
	}
	for _, containerClaimInfo := range containerClaimInfos {
		var claimResources []*podresourcesapi.ClaimResource
		for driverName, driverState := range containerClaimInfo.DriverState {
			var cdiDevices []*podresourcesapi.CDIDevice
			for _, device := range driverState.Devices {
				for _, cdiDeviceID := range device.CDIDeviceIDs {
					cdiDevices = append(cdiDevices, &podresourcesapi.CDIDevice{Name: cdiDeviceID})
				}
				resources := &podresourcesapi.ClaimResource{
					CdiDevices: cdiDevices,
					DriverName: driverName,
					PoolName:   device.PoolName,
					DeviceName: device.DeviceName,
					ShareId:    (*string)(device.ShareID),
				}
				claimResources = append(claimResources, resources)
			}
		}
		containerDynamicResources = append(containerDynamicResources, &podresourcesapi.DynamicResource{
			ClaimName:      containerClaimInfo.ClaimName,
			ClaimNamespace: containerClaimInfo.Namespace,
			ClaimResources: claimResources,
		})
	}
	return containerDynamicResources
}

type noDevices struct{}

func (noDevices) UpdateAllocatedDevices(klog.Logger)                                    {}
func (noDevices) GetDevices(string, string) []*podresourcesapi.ContainerDevices         { return nil }
func (noDevices) GetAllocatableDevices(klog.Logger) []*podresourcesapi.ContainerDevices { return nil }

type noCPUs struct{}

func (noCPUs) GetCPUs(*v1.Pod, *v1.Container) []int64 { return nil }
func (noCPUs) GetPodCPUs(string) []int64              { return nil }
func (noCPUs) GetAllocatableCPUs() []int64            { return nil }

type noMemory struct{}

func (noMemory) GetMemory(klog.Logger, *v1.Pod, *v1.Container) []*podresourcesapi.ContainerMemory {
	return nil
}
func (noMemory) GetPodMemory(klog.Logger, string) []*podresourcesapi.ContainerMemory { return nil }
func (noMemory) GetAllocatableMemory(klog.Logger) []*podresourcesapi.ContainerMemory { return nil }
