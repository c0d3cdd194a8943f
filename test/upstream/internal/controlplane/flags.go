package controlplane

import (
	"fmt"
	"strings"
)

// FeatureGates are the DRA gates every component runs with (k8s.io/kubernetes pkg/features/kube_features.go
// at v1.37.2: all of them default to on in 1.37; they are named here so that the cluster keeps them on, and
// README lists them). DRADeviceTaintRules brings the DeviceTaintRule API that the device-taint-eviction
// controller also watches.
var FeatureGates = []string{
	"DynamicResourceAllocation=true",
	"DRADeviceTaints=true",              // KEP-5055, GA in 1.37
	"DRADeviceTaintRules=true",          // KEP-5055, GA in 1.37
	"DRAPartitionableDevices=true",      // KEP-4815, beta
	"DRAConsumableCapacity=true",        // KEP-5075, beta
	"DRAExtendedResource=true",          // KEP-5004, GA in 1.37
	"ResourceHealthStatus=true",         // KEP-4680, beta
	"DRAResourceClaimDeviceStatus=true", // KEP-4817, GA in 1.37
}

// FeatureGateFlag is the --feature-gates value.
func FeatureGateFlag() string { return "--feature-gates=" + strings.Join(FeatureGates, ",") }

// APIServer holds what the kube-apiserver command line names.
type APIServer struct {
	Port            int
	EtcdURL         string
	CertDir         string
	TLSCert, TLSKey string
	ClientCA        string
	SAKey, SAPub    string
}

// Issuer of ServiceAccount tokens (and their default audience), as kubeadm sets it.
const Issuer = "https://kubernetes.default.svc.cluster.local"

// Flags of kube-apiserver (cmd/kube-apiserver/app/options): loopback only, RBAC with the Node authorizer
// and NodeRestriction, the default admission plugins (ValidatingAdmissionPolicy among them,
// pkg/kubeapiserver/options/plugins.go DefaultOffAdmissionPlugins), resource.k8s.io/v1 and the DRA gates.
func (a APIServer) Flags() []string {
	return []string{
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", a.Port),
		"--advertise-address=127.0.0.1",
		// No Service "kubernetes" endpoints for a loopback address (as upstream's test server does).
		"--endpoint-reconciler-type=none",
		"--etcd-servers=" + a.EtcdURL,
		"--cert-dir=" + a.CertDir,
		"--tls-cert-file=" + a.TLSCert,
		"--tls-private-key-file=" + a.TLSKey,
		"--client-ca-file=" + a.ClientCA,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=" + Issuer,
		"--service-account-key-file=" + a.SAPub,
		"--service-account-signing-key-file=" + a.SAKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		"--runtime-config=resource.k8s.io/v1=true",
		FeatureGateFlag(),
		"--profiling=false",
		"--v=1",
	}
}

// Scheduler flags (cmd/kube-scheduler/app/options): its kubeconfig, no serving port, and leader election
// (its Lease kube-system/kube-scheduler is how the cluster knows it runs). The default profile includes
// the DynamicResources plugin whenever DynamicResourceAllocation is on.
func Scheduler(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--secure-port=0",
		"--leader-elect=true",
		FeatureGateFlag(),
		"--profiling=false",
		"--v=1",
	}
}

// ControllerManagerControllers are the controllers kube-controller-manager runs
// (cmd/kube-controller-manager/names/controller_names.go): ResourceClaims from templates, device-taint
// eviction, garbage collection (claims owned by their pods), ServiceAccounts (the ServiceAccount
// admission plugin needs each namespace's "default"), the root CA ConfigMap, and node lifecycle (it
// removes the node.kubernetes.io/not-ready taint that the TaintNodesByCondition admission plugin puts on
// a new Node once the node reports Ready, and watches its Lease).
var ControllerManagerControllers = []string{
	"resourceclaim-controller",
	"device-taint-eviction-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	"node-lifecycle-controller",
}

// ControllerManager flags (cmd/kube-controller-manager/app/options): each controller with its own
// ServiceAccount's credentials, as kubeadm runs it, so the bootstrap RBAC roles of those controllers
// (system:controller:resource-claim-controller, ...) are what is exercised.
func ControllerManager(kubeconfig, rootCA, saKey string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(ControllerManagerControllers, ","),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + saKey,
		"--root-ca-file=" + rootCA,
		"--secure-port=0",
		"--leader-elect=true",
		FeatureGateFlag(),
		"--profiling=false",
		"--v=1",
	}
}
