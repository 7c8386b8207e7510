package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// composeFile is the subset of the Compose specification the file uses; decoding is
// strict, so a key outside it (a typo, or a feature nobody checked) fails the test.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Networks map[string]struct {
		Internal bool `json:"internal"`
	} `json:"networks"`
	Volumes map[string]struct{} `json:"volumes"`
	Secrets map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
}

type composeService struct {
	Image           string            `json:"image"`
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	Volumes         []string          `json:"volumes"`
	Tmpfs           []string          `json:"tmpfs"`
	Secrets         []string          `json:"secrets"`
	Ports           []string          `json:"ports"`
	Networks        []string          `json:"networks"`
	DependsOn       []string          `json:"depends_on"`
	PID             string            `json:"pid"`
	ReadOnly        bool              `json:"read_only"`
	User            string            `json:"user"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	Restart         string            `json:"restart"`
	StopGracePeriod string            `json:"stop_grace_period"`
	Deploy          *struct {
		Resources struct {
			Reservations struct {
				Devices []struct {
					Driver       string   `json:"driver"`
					Count        any      `json:"count"`
					Capabilities []string `json:"capabilities"`
				} `json:"devices"`
			} `json:"reservations"`
		} `json:"resources"`
	} `json:"deploy"`
}

// decodeCompose decodes strictly after dropping top-level x- extension fields (YAML
// anchors and merge keys are resolved by the YAML decoder).
func decodeCompose(data []byte) (*composeFile, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	for k := range raw {
		if strings.HasPrefix(k, "x-") {
			delete(raw, k)
		}
	}
	js, err := yaml.Marshal(raw)
	if err != nil {
		return nil, err
	}
	if js, err = yaml.YAMLToJSONStrict(js); err != nil {
		return nil, err
	}
	var c composeFile
	strictErrs, err := sigsjson.UnmarshalStrict(js, &c, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, err
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%v", strictErrs)
	}
	return &c, nil
}

func TestComposeDecoderRefusesTypos(t *testing.T) {
	for _, doc := range []string{
		"services: {llm: {image: x, comand: [a]}}\n",
		"services: {llm: {image: x, readOnly: true}}\n",
		"services: {llm: {image: x}}\nvolume: {}\n",
	} {
		if _, err := decodeCompose([]byte(doc)); err == nil {
			t.Errorf("%q decoded", doc)
		}
	}
}

func TestComposeFile(t *testing.T) {
	all := binaryFlags(t)
	data, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCompose(data)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := []string{"diffusion", "gateway", "llm", "monitor", "orchestrator"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	for _, n := range names {
		s := c.Services[n]
		where := "compose " + n
		if s.Image == "" || len(s.Command) == 0 {
			t.Errorf("%s: no image or command", where)
			continue
		}
		binary := filepath.Base(s.Command[0])
		if binary != "genailab-"+n {
			t.Errorf("%s runs %s", where, binary)
		}
		report(t, where, checkArgs(all, s.Command))
		for k := range s.Environment {
			if strings.Contains(k, "TOKEN") {
				t.Errorf("%s: %s in the environment; secrets are files (-token-file /run/secrets/...)", where, k)
			}
			report(t, where, checkSetting(all, binary, k, "", true))
		}
		// Secrets are files: every -token-file / -backend-token-file names a mounted secret.
		var tokenFiles int
		for i, a := range s.Command {
			if (a == "-token-file" || a == "-backend-token-file") && i+1 < len(s.Command) {
				tokenFiles++
				name, ok := strings.CutPrefix(s.Command[i+1], "/run/secrets/")
				if _, declared := c.Secrets[name]; !ok || !declared || !slices.Contains(s.Secrets, name) {
					t.Errorf("%s: %s %s is not a secret mounted into the service", where, a, s.Command[i+1])
				}
			}
		}
		if tokenFiles == 0 {
			t.Errorf("%s: no token", where)
		}
		// The HEALTHCHECK probes the address the service is given in the environment.
		if _, hasHealth := s.Environment[services[binary].env+"HEALTH_ADDR"]; !hasHealth && n != "gateway" {
			t.Errorf("%s: no %sHEALTH_ADDR for the image's HEALTHCHECK", where, services[binary].env)
		}
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") || s.User == "" || s.User == "0" {
			t.Errorf("%s: needs read_only, cap_drop ALL, no-new-privileges and a non-root user", where)
		}
		for _, net := range s.Networks {
			if _, ok := c.Networks[net]; !ok {
				t.Errorf("%s: undeclared network %s", where, net)
			}
		}
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s: undeclared volume %s", where, src)
				}
			}
		}
		for _, d := range s.DependsOn {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("%s: depends on unknown %s", where, d)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %s is published beyond loopback", where, p)
			}
		}
		if s.Deploy != nil {
			t.Errorf("%s: GPU reservations belong in compose.gpu.yaml (the CPU file runs where there is no GPU)", where)
		}
	}
	for name, sec := range c.Secrets {
		if !regexp.MustCompile(`^\$\{GENAILAB_[A-Z_]+_FILE:\?.+\}$`).MatchString(sec.File) {
			t.Errorf("compose secret %s: file %q is not given by the environment", name, sec.File)
		}
	}
	gdata, err := os.ReadFile("compose/compose.gpu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := decodeCompose(gdata)
	if err != nil {
		t.Fatalf("compose.gpu.yaml: %v", err)
	}
	for _, n := range names {
		s, ok := g.Services[n]
		gpu := ok && s.Deploy != nil && len(s.Deploy.Resources.Reservations.Devices) > 0
		if wantGPU := n == "llm" || n == "diffusion" || n == "monitor"; gpu != wantGPU {
			t.Errorf("compose.gpu.yaml %s: GPU reservation %v, want %v", n, gpu, wantGPU)
		}
	}
	if !c.Networks["agents"].Internal {
		t.Error("the agents' network must be internal")
	}
}
