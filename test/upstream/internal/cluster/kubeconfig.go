package cluster

import (
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"gpulet.dev/test/upstream/internal/pki"
)

// writeKubeconfig writes a self-contained kubeconfig (CA, certificate and key embedded) for one identity,
// with client-go's clientcmd (k8s.io/client-go/tools/clientcmd/api types, clientcmd.WriteToFile).
func writeKubeconfig(path, server string, caPEM []byte, id *pki.Pair, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["gpulet-cluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: id.CertPEM, ClientKeyData: id.KeyPEM}
	cfg.Contexts["gpulet-cluster"] = &clientcmdapi.Context{Cluster: "gpulet-cluster", AuthInfo: user}
	cfg.CurrentContext = "gpulet-cluster"
	return clientcmd.WriteToFile(*cfg, path)
}
