package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// scheme knows the API groups the manifests may use.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// decodeStrict decodes one YAML document into its official Kubernetes type the way the
// API server's strict field validation does: an unknown, duplicate or wrongly-cased field
// anywhere, a kind the scheme does not know, or a malformed value (a quantity, an
// int-or-string) is an error.
func decodeStrict(doc []byte) (runtime.Object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return nil, err
	}
	obj, err := scheme.New(gv.WithKind(tm.Kind))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	// YAML → JSON refusing duplicate keys, then the API server's own JSON decoding:
	// case-sensitive (encoding/json would take "clusterIp" for clusterIP) and strict.
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strictErrs...))
	}
	return obj, nil
}

// manifest is one decoded document and where it came from.
type manifest struct {
	file string
	obj  runtime.Object
}

func splitDocs(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// loadManifests decodes every YAML file under k8s/ (the applied ones and the example
// secrets).
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	var files []string
	err := filepath.WalkDir("k8s", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" {
				files = append(files, p)
			} else {
				return fmt.Errorf("%s: not a .yaml file", p)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitDocs(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, doc := range docs {
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s (document %d): %v", f, i+1, err)
				continue
			}
			out = append(out, manifest{file: f, obj: obj})
		}
	}
	if len(out) == 0 {
		t.Fatal("no manifests found")
	}
	return out
}

func TestStrictDecodingRefusesTypos(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {a: b}}\n",
		"wrong case":      "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: None}\n",
		"nested typo":     "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: b, readinesProbe: {}}]\n",
		"duplicate field": "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"bad quantity":    "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\nspec: {resources: {requests: {storage: ten-gigs}}}\n",
		"unknown kind":    "apiVersion: apps/v1\nkind: DaemonSets\nmetadata: {name: x}\n",
		"wrong type":      "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: http}]}\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decodeStrict([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None}\n")); err != nil {
		t.Errorf("a good document: %v", err)
	}
}

// lab gathers the decoded objects by kind and name.
type lab struct {
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	services   map[string]*corev1.Service
	pvcs       map[string]*corev1.PersistentVolumeClaim
	workloads  map[string]*corev1.PodTemplateSpec
	daemonSets map[string]*appsv1.DaemonSet
	deploys    map[string]*appsv1.Deployment
	policies   []*networkingv1.NetworkPolicy
}

func gather(t *testing.T, ms []manifest) *lab {
	t.Helper()
	l := &lab{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{},
		pvcs: map[string]*corev1.PersistentVolumeClaim{}, workloads: map[string]*corev1.PodTemplateSpec{},
		daemonSets: map[string]*appsv1.DaemonSet{}, deploys: map[string]*appsv1.Deployment{}}
	namespaces := 0
	for _, m := range ms {
		meta, err := metaOf(m.obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.obj.(*corev1.Namespace); ok {
			namespaces++
			if meta.GetName() != "genailab" {
				t.Errorf("%s: namespace %q", m.file, meta.GetName())
			}
		} else if meta.GetNamespace() != "genailab" {
			t.Errorf("%s: %s %q is in namespace %q, want genailab", m.file, m.obj.GetObjectKind().GroupVersionKind().Kind, meta.GetName(), meta.GetNamespace())
		}
		switch o := m.obj.(type) {
		case *corev1.ConfigMap:
			l.configMaps[o.Name] = o
		case *corev1.Secret:
			l.secrets[o.Name] = o
		case *corev1.Service:
			l.services[o.Name] = o
		case *corev1.PersistentVolumeClaim:
			l.pvcs[o.Name] = o
		case *appsv1.DaemonSet:
			l.daemonSets[o.Name] = o
			l.workloads[o.Name] = &o.Spec.Template
			checkSelector(t, o.Name, o.Spec.Selector.MatchLabels, o.Spec.Template.Labels)
		case *appsv1.Deployment:
			l.deploys[o.Name] = o
			l.workloads[o.Name] = &o.Spec.Template
			checkSelector(t, o.Name, o.Spec.Selector.MatchLabels, o.Spec.Template.Labels)
		case *networkingv1.NetworkPolicy:
			l.policies = append(l.policies, o)
		case *corev1.Namespace:
		default:
			t.Errorf("%s: unexpected kind %T", m.file, o)
		}
	}
	if namespaces != 1 {
		t.Errorf("%d Namespace objects, want 1", namespaces)
	}
	return l
}

func metaOf(obj runtime.Object) (interface {
	GetName() string
	GetNamespace() string
}, error) {
	m, ok := obj.(interface {
		GetName() string
		GetNamespace() string
	})
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

func checkSelector(t *testing.T, name string, selector, labels map[string]string) {
	t.Helper()
	if len(selector) == 0 {
		t.Errorf("%s: empty selector", name)
	}
	for k, v := range selector {
		if labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod labels %v", name, k, v, labels)
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	l := gather(t, loadManifests(t))
	all := binaryFlags(t)

	// The pieces the issue asks for.
	agent := l.daemonSets["genailab-agent"]
	if agent == nil {
		t.Fatal("no DaemonSet genailab-agent")
	}
	for _, name := range []string{"genailab-orchestrator", "genailab-gateway"} {
		if l.deploys[name] == nil || l.services[name] == nil {
			t.Errorf("missing Deployment or Service %s", name)
		}
	}
	if l.deploys["genailab-orchestrator"] != nil && *l.deploys["genailab-orchestrator"].Spec.Replicas != 1 {
		t.Error("the orchestrator (one state database) must have exactly one replica")
	}
	headless := l.services["genailab-agent"]
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatal("the agents need a headless Service genailab-agent (DNS discovery of the hosts)")
	}
	if len(l.configMaps) == 0 {
		t.Error("no ConfigMap")
	}
	for _, s := range []string{"genailab-token", "genailab-agent-tls", "genailab-orchestrator-tls", "genailab-gateway-tls"} {
		if l.secrets[s] == nil {
			t.Errorf("no Secret %s", s)
		}
	}
	for name, s := range l.secrets {
		if s.Type == corev1.SecretTypeTLS {
			for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
				if _, ok := s.StringData[k]; !ok {
					t.Errorf("secret %s lacks %s", name, k)
				}
			}
		}
	}

	// Agents on GPU nodes, with the GPU, the models on the node, and every service.
	pod := agent.Spec.Template.Spec
	if len(pod.NodeSelector) == 0 {
		t.Error("agents: no nodeSelector")
	}
	var names []string
	gpu := false
	for _, c := range pod.Containers {
		names = append(names, c.Name)
		if q, ok := c.Resources.Limits["nvidia.com/gpu"]; ok && q.Value() >= 1 {
			gpu = true
		}
	}
	if !slices.Equal(names, []string{"llm", "diffusion", "monitor"}) {
		t.Errorf("agent containers %v, want llm, diffusion, monitor", names)
	}
	if !gpu {
		t.Error("agents: no container asks for nvidia.com/gpu")
	}
	models := false
	for _, v := range pod.Volumes {
		if v.HostPath != nil || v.PersistentVolumeClaim != nil {
			models = true
		}
	}
	if !models {
		t.Error("agents: no hostPath or PVC for the models")
	}
	if pod.ShareProcessNamespace == nil || !*pod.ShareProcessNamespace {
		// without it the monitor cannot see llama-server
		t.Error("agents: the monitor needs the pod's shared process namespace")
	}

	// Every workload: hardening, probes, and references that resolve.
	for name, tmpl := range l.workloads {
		checkPod(t, name, tmpl, l, all)
	}
	// Services select pods that exist, on ports that are declared.
	for name, svc := range l.services {
		tmpl := podFor(l, svc.Spec.Selector)
		if tmpl == nil {
			t.Errorf("service %s selects no workload (%v)", name, svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal != "" && !hasPort(tmpl, p.TargetPort.StrVal) {
				t.Errorf("service %s: target port %q is no container port of its pods", name, p.TargetPort.StrVal)
			}
		}
	}
	for _, np := range l.policies {
		if podFor(l, np.Spec.PodSelector.MatchLabels) == nil {
			t.Errorf("network policy %s selects no workload", np.Name)
		}
	}
}

func podFor(l *lab, selector map[string]string) *corev1.PodTemplateSpec {
	for _, tmpl := range l.workloads {
		match := len(selector) > 0
		for k, v := range selector {
			match = match && tmpl.Labels[k] == v
		}
		if match {
			return tmpl
		}
	}
	return nil
}

func hasPortNumber(c corev1.Container, port int32) bool {
	for _, p := range c.Ports {
		if p.ContainerPort == port {
			return true
		}
	}
	return false
}

func hasPort(tmpl *corev1.PodTemplateSpec, name string) bool {
	for _, c := range tmpl.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

func checkPod(t *testing.T, name string, tmpl *corev1.PodTemplateSpec, l *lab, all map[string]flagSet) {
	t.Helper()
	spec := tmpl.Spec
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil {
		t.Errorf("%s: pod must run as non-root with a seccomp profile", name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: the services need no Kubernetes API token (automountServiceAccountToken: false)", name)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			if l.configMaps[v.ConfigMap.Name] == nil {
				t.Errorf("%s: volume %s: no ConfigMap %s", name, v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if l.secrets[v.Secret.SecretName] == nil {
				t.Errorf("%s: volume %s: no Secret %s", name, v.Name, v.Secret.SecretName)
			}
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
				t.Errorf("%s: secret volume %s must not be world-readable", name, v.Name)
			}
		case v.PersistentVolumeClaim != nil:
			if l.pvcs[v.PersistentVolumeClaim.ClaimName] == nil {
				t.Errorf("%s: volume %s: no PersistentVolumeClaim %s", name, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	for _, c := range spec.Containers {
		where := name + "/" + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: needs allowPrivilegeEscalation false, readOnlyRootFilesystem, capabilities drop ALL", where)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: needs readiness and liveness probes", where)
		}
		var grpcProbes []int32
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p == nil {
				continue
			}
			var port string
			switch {
			case p.TCPSocket != nil:
				port = p.TCPSocket.Port.StrVal
			case p.HTTPGet != nil:
				port = p.HTTPGet.Port.StrVal
			case p.GRPC != nil:
				// A native grpc probe speaks plaintext without a token: it must reach the
				// service's health-only listener (-health-addr), declared as a container port.
				grpcProbes = append(grpcProbes, p.GRPC.Port)
				if !hasPortNumber(c, p.GRPC.Port) {
					t.Errorf("%s: grpc probe on port %d, which the container does not declare", where, p.GRPC.Port)
				}
				continue
			}
			if !hasPort(&corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}, port) {
				t.Errorf("%s: probe on port %q, which the container does not declare", where, port)
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: no CPU or memory request", where)
		}

		argv := append(append([]string{}, c.Command...), c.Args...)
		report(t, where, checkArgs(all, argv))
		binary := filepath.Base(argv[0])
		for _, e := range c.Env {
			report(t, where, checkSetting(all, binary, e.Name, e.Value, true))
			if strings.HasSuffix(e.Name, "TOKEN") {
				t.Errorf("%s: env %s: tokens are files from a Secret volume (-token-file), not environment variables", where, e.Name)
			}
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				s := l.secrets[r.SecretKeyRef.Name]
				if s == nil {
					t.Errorf("%s: env %s: no Secret %s", where, e.Name, r.SecretKeyRef.Name)
				} else if _, ok := s.StringData[r.SecretKeyRef.Key]; !ok {
					t.Errorf("%s: env %s: Secret %s has no key %s", where, e.Name, s.Name, r.SecretKeyRef.Key)
				}
			}
		}
		mounts := map[string]string{} // mount path → volume
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s: mount of undeclared volume %s", where, m.Name)
			}
			mounts[m.MountPath] = m.Name
		}
		// The -config file comes from a ConfigMap key; its keys are flags of this binary.
		settings := map[string]any{}
		for i, a := range argv {
			if (a == "-config" || a == "--config") && i+1 < len(argv) {
				maps.Copy(settings, checkConfigFile(t, where, binary, argv[i+1], mounts, volumes, l, all))
			}
		}
		// The grpc probes' port is the one the service's health-only listener binds.
		for _, port := range grpcProbes {
			addr, _ := settings["health-addr"].(string)
			if _, p, err := net.SplitHostPort(addr); err != nil || p != strconv.Itoa(int(port)) {
				t.Errorf("%s: grpc probe on port %d but the configuration's health-addr is %q", where, port, addr)
			}
		}
	}
}

// checkConfigFile checks a -config file from a ConfigMap and returns its settings.
func checkConfigFile(t *testing.T, where, binary, path string, mounts map[string]string, volumes map[string]corev1.Volume, l *lab, all map[string]flagSet) map[string]any {
	t.Helper()
	dir, key := filepath.Dir(path), filepath.Base(path)
	v, ok := volumes[mounts[dir]]
	if !ok || v.ConfigMap == nil {
		t.Errorf("%s: -config %s is not in a mounted ConfigMap", where, path)
		return nil
	}
	cm := l.configMaps[v.ConfigMap.Name]
	if cm == nil {
		return nil
	}
	text, ok := cm.Data[key]
	if !ok {
		t.Errorf("%s: ConfigMap %s has no key %s", where, cm.Name, key)
		return nil
	}
	var values map[string]any
	if err := yaml.UnmarshalStrict([]byte(text), &values); err != nil {
		t.Errorf("%s: ConfigMap %s key %s: %v", where, cm.Name, key, err)
		return nil
	}
	if len(values) == 0 {
		t.Errorf("%s: ConfigMap %s key %s is empty", where, cm.Name, key)
	}
	for k, val := range values {
		report(t, where+" "+cm.Name+"/"+key, checkSetting(all, binary, k, fmt.Sprint(val), false))
		// Files named in the configuration must be mounted.
		if s, ok := val.(string); ok && strings.HasPrefix(s, "/") && (strings.HasPrefix(k, "tls-") || strings.HasSuffix(k, "token-file")) {
			if _, ok := mounts[filepath.Dir(s)]; !ok {
				t.Errorf("%s: %s %s is not in a mounted volume", where, k, s)
			}
		}
		// Tokens come from a Secret volume that holds the key the file names (issue 14: a
		// Secret volume with defaultMode 0440 and the pod's fsGroup passes -token-file's
		// mode check), never from the environment.
		if s, ok := val.(string); ok && strings.HasSuffix(k, "token-file") {
			v := volumes[mounts[filepath.Dir(s)]]
			if v.Secret == nil || l.secrets[v.Secret.SecretName] == nil {
				t.Errorf("%s: %s %s is not in a mounted Secret", where, k, s)
			} else if _, ok := l.secrets[v.Secret.SecretName].StringData[filepath.Base(s)]; !ok {
				t.Errorf("%s: %s %s: Secret %s has no such key", where, k, s, v.Secret.SecretName)
			}
		}
	}
	return values
}
