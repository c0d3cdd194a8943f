// Package pki makes the cluster's certificates and keys: one CA that signs the API server's serving
// certificate and every client certificate, and the key pair that signs ServiceAccount tokens.
//
// Identities follow upstream's conventions (the API server's x509 authenticator maps a client
// certificate's CommonName to the user name and its Organizations to groups; see
// k8s.io/apiserver/pkg/authentication/request/x509/x509.go, CommonNameUserConversion):
// system:masters for the administrator, system:node:<name> in system:nodes for a node (what the Node
// authorizer and the NodeRestriction admission plugin recognise), system:kube-scheduler and
// system:kube-controller-manager for the control-plane components (bound by the bootstrap RBAC policy,
// plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// validity of every certificate: the cluster is made anew at each start, a day is plenty.
const validity = 24 * time.Hour

// CA is a certificate authority that signs serving and client certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// Pair is a certificate and its key, PEM-encoded, and where they were written.
type Pair struct {
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// NewCA makes a self-signed CA and writes ca.crt and ca.key into dir.
func NewCA(dir, commonName string) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, Key: key, CertPEM: certPEM(der)}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := write(filepath.Join(dir, "ca.crt"), ca.CertPEM); err != nil {
		return nil, err
	}
	return ca, write(filepath.Join(dir, "ca.key"), kp)
}

// Serving signs a TLS serving certificate for the loopback addresses and writes <name>.crt, <name>.key.
func (ca *CA) Serving(dir, name string) (*Pair, error) {
	return ca.sign(dir, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client signs a client certificate for user (CommonName) in groups (Organization) and writes
// <name>.crt, <name>.key.
func (ca *CA) Client(dir, name, user string, groups ...string) (*Pair, error) {
	return ca.sign(dir, name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) sign(dir, name string, tmpl *x509.Certificate) (*Pair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore = ca.Cert.NotBefore
	tmpl.NotAfter = ca.Cert.NotAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", name, err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	p := &Pair{CertPEM: certPEM(der), KeyPEM: kp, CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if err := write(p.CertFile, p.CertPEM); err != nil {
		return nil, err
	}
	return p, write(p.KeyFile, p.KeyPEM)
}

// ServiceAccountKey writes the key pair that signs ServiceAccount tokens: sa.key (the API server's
// --service-account-signing-key-file) and sa.pub (its --service-account-key-file).
func ServiceAccountKey(dir string) (keyFile, pubFile string, err error) {
	key, err := newKey()
	if err != nil {
		return "", "", err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := write(keyFile, kp); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, write(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

func write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
