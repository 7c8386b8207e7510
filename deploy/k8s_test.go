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
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/genailab/genailab/pkg/testenv"
)

// scheme knows the API groups the manifests may use.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme} {
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

// alternativesDir holds the documented alternatives to some of the applied files, each
// in a directory of its own (alternatives/single-orchestrator: one orchestrator on bbolt,
// instead of 30-orchestrator.yaml and 60-etcd.yaml).
const alternativesDir = "k8s/alternatives"

// loadManifests decodes every YAML file under k8s/ (the applied ones and the example
// secrets), the alternatives aside.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	return loadDir(t, "k8s", alternativesDir)
}

// loadDir decodes every YAML file under dir but those under skip.
func loadDir(t *testing.T, dir, skip string) []manifest {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p == skip {
			return filepath.SkipDir
		}
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
		t.Fatalf("no manifests found in %s", dir)
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
	sets       map[string]*appsv1.StatefulSet
	pdbs       map[string]*policyv1.PodDisruptionBudget
	policies   []*networkingv1.NetworkPolicy
	// claims are the volumeClaimTemplates' names of each StatefulSet: its pods' volumes too.
	claims map[string][]string
}

func gather(t *testing.T, ms []manifest) *lab {
	t.Helper()
	l := &lab{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{},
		pvcs: map[string]*corev1.PersistentVolumeClaim{}, workloads: map[string]*corev1.PodTemplateSpec{},
		daemonSets: map[string]*appsv1.DaemonSet{}, deploys: map[string]*appsv1.Deployment{},
		sets: map[string]*appsv1.StatefulSet{}, pdbs: map[string]*policyv1.PodDisruptionBudget{}, claims: map[string][]string{}}
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
		case *appsv1.StatefulSet:
			l.sets[o.Name] = o
			l.workloads[o.Name] = &o.Spec.Template
			checkSelector(t, o.Name, o.Spec.Selector.MatchLabels, o.Spec.Template.Labels)
			for _, c := range o.Spec.VolumeClaimTemplates {
				l.claims[o.Name] = append(l.claims[o.Name], c.Name)
			}
		case *policyv1.PodDisruptionBudget:
			l.pdbs[o.Name] = o
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
	checkLab(t, l)
	checkReplicatedOrchestrator(t, l)
}

// The documented alternative, one orchestrator on bbolt, applied instead of
// 30-orchestrator.yaml and 60-etcd.yaml, is a whole lab as well.
func TestSingleOrchestratorAlternative(t *testing.T) {
	var ms []manifest
	for _, m := range loadManifests(t) {
		if f := filepath.Base(m.file); f != "30-orchestrator.yaml" && f != "60-etcd.yaml" {
			ms = append(ms, m)
		}
	}
	ms = append(ms, loadDir(t, filepath.Join(alternativesDir, "single-orchestrator"), "")...)
	l := gather(t, ms)
	checkLab(t, l)
	d := l.deploys["genailab-orchestrator"]
	if d == nil {
		t.Fatal("the alternative has no orchestrator Deployment")
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Error("the bbolt orchestrator (one state database, one writer) must have exactly one replica, replaced by Recreate")
	}
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "-state") || c.Args[slices.Index(c.Args, "-state")+1] != "bbolt" {
		t.Errorf("the alternative's orchestrator does not run -state bbolt: %v", c.Args)
	}
	pvc := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		pvc = pvc || v.PersistentVolumeClaim != nil
	}
	if !pvc || len(l.sets) != 0 {
		t.Errorf("the alternative: state on a PVC (%v), no etcd StatefulSet (%d)", pvc, len(l.sets))
	}
}

// checkReplicatedOrchestrator checks the HA shape: three orchestrator replicas on etcd,
// every one ready (the followers forward), a disruption budget of one, spread over the
// nodes, each advertising its pod IP; etcd as a three-member StatefulSet behind a
// headless Service, which the orchestrator's endpoints name.
func checkReplicatedOrchestrator(t *testing.T, l *lab) {
	t.Helper()
	d := l.deploys["genailab-orchestrator"]
	if d == nil {
		t.Fatal("no orchestrator Deployment")
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("orchestrator replicas %d, want 3", *d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if a := pod.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Error("the orchestrator replicas are not spread over the nodes (podAntiAffinity on kubernetes.io/hostname)")
	}
	c := pod.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.GRPC == nil || p.GRPC.Service == nil || *p.GRPC.Service != "genailab.orchestrator.v1.Ready" {
		t.Errorf("the orchestrator's readiness is not genailab.orchestrator.v1.Ready (every replica with etcd): %+v", c.ReadinessProbe)
	}
	if p := c.LivenessProbe; p == nil || p.GRPC == nil || p.GRPC.Service != nil && *p.GRPC.Service != "" {
		t.Errorf("the orchestrator's liveness is not the whole server's health: %+v", c.LivenessProbe)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["POD_IP"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Error("no POD_IP from the downward API (status.podIP)")
	}
	if v := env["GENAILAB_ORCHESTRATOR_ADVERTISE_ADDR"].Value; v != "$(POD_IP):50054" || !hasPortNumber(c, 50054) {
		t.Errorf("advertise-addr %q, want $(POD_IP):50054 (the gRPC port)", v)
	}
	pdb := l.pdbs["genailab-orchestrator"]
	if pdb == nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector == nil ||
		podFor(l, pdb.Spec.Selector.MatchLabels) != &d.Spec.Template {
		t.Errorf("no PodDisruptionBudget genailab-orchestrator of maxUnavailable 1 over the orchestrator: %+v", pdb)
	}
	settings := map[string]any{}
	if err := yaml.UnmarshalStrict([]byte(l.configMaps["genailab-config"].Data["orchestrator.yaml"]), &settings); err != nil {
		t.Fatal(err)
	}
	if settings["state"] != "etcd" || settings["peer-server-name"] != "genailab-orchestrator" {
		t.Errorf("orchestrator.yaml: state %v, peer-server-name %v", settings["state"], settings["peer-server-name"])
	}

	set := l.sets["genailab-etcd"]
	if set == nil {
		t.Fatal("no StatefulSet genailab-etcd")
	}
	svc := l.services[set.Spec.ServiceName]
	if *set.Spec.Replicas != 3 || svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Fatalf("etcd: %d members, Service %q headless and publishing unready members: %v", *set.Spec.Replicas, set.Spec.ServiceName, svc != nil && svc.Spec.ClusterIP == corev1.ClusterIPNone)
	}
	if p := l.pdbs["genailab-etcd"]; p == nil || p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 || podFor(l, p.Spec.Selector.MatchLabels) != &set.Spec.Template {
		t.Error("no PodDisruptionBudget genailab-etcd of maxUnavailable 1 over the members")
	}
	// The orchestrator's endpoints are the members' stable names, and the members' initial
	// cluster names each of them on the peer port.
	endpoints, _ := settings["etcd-endpoints"].(string)
	args := strings.Join(set.Spec.Template.Spec.Containers[0].Args, " ")
	for i := range int(*set.Spec.Replicas) {
		member := fmt.Sprintf("%s-%d.%s.%s.svc", set.Name, i, svc.Name, set.Namespace)
		if !strings.Contains(endpoints, "https://"+member+":2379") {
			t.Errorf("etcd-endpoints %q lacks member %s", endpoints, member)
		}
		if !strings.Contains(args, fmt.Sprintf("%s-%d=https://%s:2380", set.Name, i, member)) {
			t.Errorf("etcd's initial cluster lacks member %s", member)
		}
	}
	for _, want := range []string{"--client-cert-auth", "--peer-client-cert-auth", "--initial-cluster-state=new"} {
		if !strings.Contains(args, want) {
			t.Errorf("etcd runs without %s", want)
		}
	}
}

// checkLab checks what every lab has, whichever orchestrator it runs.
func checkLab(t *testing.T, l *lab) {
	t.Helper()
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
	for name, p := range l.pdbs {
		if p.Spec.Selector == nil || podFor(l, p.Spec.Selector.MatchLabels) == nil {
			t.Errorf("PodDisruptionBudget %s selects no workload", name)
		}
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
	for _, c := range l.claims[name] {
		volumes[c] = corev1.Volume{Name: c, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}}
	}
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
			if l.pvcs[v.PersistentVolumeClaim.ClaimName] == nil && !slices.Contains(l.claims[name], v.Name) {
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
		binary := filepath.Base(argv[0])
		if binary == "etcd" {
			// etcd's own server (the genailab/etcd image): its flags are etcd's.
			report(t, where, checkEtcdArgs(t, argv))
			continue
		}
		report(t, where, checkArgs(all, argv))
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

// etcdFlags are the flags of the real etcd the tests run (bin/etcd, built by make tools
// from the version pinned in tools/go.mod: the genailab/etcd image's), from its --help.
func etcdFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin, err := testenv.FindEtcd()
	testenv.Need(t, testenv.RequireEtcdEnv, err)
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", bin, err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 50 || !flags["initial-cluster"] || !flags["peer-client-cert-auth"] {
		t.Fatalf("%s --help: parsed %d flags, not etcd's", bin, len(flags))
	}
	return flags
}

// checkEtcdArgs checks an etcd command line: --flag=value arguments, each a flag of etcd.
func checkEtcdArgs(t *testing.T, argv []string) []string {
	t.Helper()
	flags := etcdFlags(t)
	var errs []string
	for _, a := range argv[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !flags[name] {
			errs = append(errs, fmt.Sprintf("%q is not an etcd flag (--name=value)", a))
		}
	}
	return errs
}
