package deploy_test

import (
	"bufio"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// imageNames reads deploy/images.env, the one place the images are named: KEY=VALUE lines.
func imageNames(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("images.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_]+$`).MatchString(k) || v == "" || strings.ContainsAny(v, " \"'$") {
			t.Fatalf("images.env:%d: %q is not KEY=VALUE (no quotes, no expansion: compose and bash both read it)", n, line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"GENAILAB_IMAGE_VERSION", "GENAILAB_CONTROL_IMAGE", "GENAILAB_AGENT_IMAGE", "GENAILAB_AGENT_CUDA_IMAGE", "GENAILAB_ETCD_IMAGE", "GENAILAB_BASE_IMAGE"} {
		if env[k] == "" {
			t.Fatalf("images.env: no %s", k)
		}
	}
	for _, k := range []string{"GENAILAB_CONTROL_IMAGE", "GENAILAB_AGENT_IMAGE", "GENAILAB_AGENT_CUDA_IMAGE", "GENAILAB_ETCD_IMAGE"} {
		if !strings.HasSuffix(env[k], ":"+env["GENAILAB_IMAGE_VERSION"]) {
			t.Errorf("images.env: %s=%s is not tagged with GENAILAB_IMAGE_VERSION %s", k, env[k], env["GENAILAB_IMAGE_VERSION"])
		}
	}
	return env
}

// builtImages are the images `make images` builds: scripts/build-images.sh builds the
// control and agent targets under these names (checked below, in the script's text).
func builtImages(t *testing.T) map[string]bool {
	t.Helper()
	env := imageNames(t)
	script, err := os.ReadFile("../scripts/build-images.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`build control "$GENAILAB_CONTROL_IMAGE"`, `build agent "$GENAILAB_AGENT_IMAGE"`, `build etcd "$GENAILAB_ETCD_IMAGE"`} {
		if !strings.Contains(string(script), line) {
			t.Fatalf("scripts/build-images.sh no longer has %q", line)
		}
	}
	return map[string]bool{env["GENAILAB_CONTROL_IMAGE"]: true, env["GENAILAB_AGENT_IMAGE"]: true, env["GENAILAB_ETCD_IMAGE"]: true}
}

// containerImages finds every container's image in a decoded object, whatever its kind:
// any "containers", "initContainers" or "ephemeralContainers" list in its JSON form.
func containerImages(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if list, ok := c.([]any); ok && (k == "containers" || k == "initContainers" || k == "ephemeralContainers") {
				for _, e := range list {
					if m, ok := e.(map[string]any); ok {
						img, _ := m["image"].(string)
						out[img] = true
					}
				}
			}
			containerImages(c, out)
		}
	case []any:
		for _, e := range x {
			containerImages(e, out)
		}
	}
}

func TestManifestImagesAreBuilt(t *testing.T) {
	built := builtImages(t)
	used := map[string]bool{}
	for _, m := range loadManifests(t) {
		js, err := json.Marshal(m.obj)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatal(err)
		}
		imgs := map[string]bool{}
		containerImages(v, imgs)
		for img := range imgs {
			if !built[img] {
				t.Errorf("%s: image %q is not one make images builds (%v, named in deploy/images.env)", m.file, img, slices.Sorted(maps.Keys(built)))
			}
			used[img] = true
		}
	}
	for img := range built {
		if !used[img] {
			t.Errorf("no manifest runs %s", img)
		}
	}
}

// composeImage resolves a compose image reference, which must be ${GENAILAB_..._IMAGE...}
// from images.env (the compose file's --env-file).
func composeImage(t *testing.T, env map[string]string, where, ref string) string {
	t.Helper()
	m := regexp.MustCompile(`^\$\{(GENAILAB_[A-Z_]+_IMAGE)(:\?.*)?\}$`).FindStringSubmatch(ref)
	if m == nil || env[m[1]] == "" {
		t.Errorf("%s: image %q does not name an image of deploy/images.env", where, ref)
		return ""
	}
	return env[m[1]]
}

func TestComposeImagesAreBuilt(t *testing.T) {
	env := imageNames(t)
	built := builtImages(t)
	for file, want := range map[string]func(string) bool{
		"compose/compose.yaml":     func(img string) bool { return built[img] },
		"compose/compose.gpu.yaml": func(img string) bool { return img == env["GENAILAB_AGENT_CUDA_IMAGE"] },
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := decodeCompose(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for n, s := range c.Services {
			if img := composeImage(t, env, file+" "+n, s.Image); img != "" && !want(img) {
				t.Errorf("%s %s: image %s is not one it should run", file, n, img)
			}
		}
	}
}

// dockerStage is one FROM ... AS name stage of the Dockerfile: its instructions by keyword.
type dockerStage struct {
	from string
	ins  map[string][]string
}

// parseDockerfile reads the Dockerfile's stages (continuation lines joined, comments dropped).
func parseDockerfile(t *testing.T) map[string]*dockerStage {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]*dockerStage{}
	var cur *dockerStage
	var joined string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && joined == "") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			joined += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		ins := joined + trimmed
		joined = ""
		kw, rest, _ := strings.Cut(ins, " ")
		kw = strings.ToUpper(kw)
		rest = strings.Join(strings.Fields(rest), " ")
		if kw == "FROM" {
			f := strings.Fields(rest)
			if len(f) != 3 || !strings.EqualFold(f[1], "AS") {
				t.Fatalf("Dockerfile: FROM %s: every stage is named", rest)
			}
			cur = &dockerStage{from: f[0], ins: map[string][]string{}}
			stages[f[2]] = cur
			continue
		}
		if cur != nil {
			cur.ins[kw] = append(cur.ins[kw], rest)
		}
	}
	return stages
}

// TestDockerfileTargetsShareTheDesign: the CPU agent image (built and run by the container
// e2e) and the CUDA one (documented, not built here) have the same users, paths, commands,
// environment, health check and labels, and copy the same genailab binaries; every image
// runs as 65532.
func TestDockerfileTargetsShareTheDesign(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "has not been built") {
		t.Error("the Dockerfile still says it has not been built")
	}
	st := parseDockerfile(t)
	for _, n := range []string{"control", "agent", "agent-cuda"} {
		s := st[n]
		if s == nil {
			t.Fatalf("no stage %s", n)
		}
		if !slices.Equal(s.ins["USER"], []string{"65532:65532"}) {
			t.Errorf("%s: USER %v, want 65532:65532", n, s.ins["USER"])
		}
		if len(s.ins["HEALTHCHECK"]) != 1 || !strings.Contains(s.ins["HEALTHCHECK"][0], `CMD ["/usr/local/bin/genailab-healthcheck"]`) {
			t.Errorf("%s: HEALTHCHECK %v", n, s.ins["HEALTHCHECK"])
		}
		if !slices.Contains(s.ins["COPY"], "--chown=65532:65532 rootdirs/data/ /var/lib/genailab/") || !slices.Equal(s.ins["VOLUME"], []string{`["/var/lib/genailab"]`}) {
			t.Errorf("%s: the data directory is not the uid's volume", n)
		}
		if len(s.ins["RUN"]) > 0 {
			t.Errorf("%s: RUN needs a shell in the image; the images are assembled from the build context", n)
		}
	}
	if st["control"].from != "scratch" {
		t.Errorf("control is FROM %s, want scratch", st["control"].from)
	}
	cpu, cuda := st["agent"], st["agent-cuda"]
	for _, kw := range []string{"USER", "WORKDIR", "VOLUME", "HEALTHCHECK", "CMD", "ENTRYPOINT", "ENV", "ARG"} {
		if !slices.Equal(cpu.ins[kw], cuda.ins[kw]) {
			t.Errorf("agent and agent-cuda differ in %s:\n  %v\n  %v", kw, cpu.ins[kw], cuda.ins[kw])
		}
	}
	labelKeys := func(s *dockerStage) []string {
		var keys []string
		for _, l := range s.ins["LABEL"] {
			for _, m := range regexp.MustCompile(`([a-z0-9.-]+)=`).FindAllStringSubmatch(l, -1) {
				keys = append(keys, m[1])
			}
		}
		return keys
	}
	if !slices.Equal(labelKeys(cpu), labelKeys(cuda)) {
		t.Errorf("label keys differ: %v vs %v", labelKeys(cpu), labelKeys(cuda))
	}
	for _, c := range []string{"agent/ /usr/local/bin/", "--chown=65532:65532 rootdirs/data/ /var/lib/genailab/"} {
		if !slices.Contains(cpu.ins["COPY"], c) || !slices.Contains(cuda.ins["COPY"], c) {
			t.Errorf("COPY %s is not in both agent targets", c)
		}
	}
	// The engines are where the shared environment says, in both.
	for _, s := range []*dockerStage{cpu, cuda} {
		var dsts []string
		for _, c := range s.ins["COPY"] {
			f := strings.Fields(c)
			dsts = append(dsts, f[len(f)-1])
		}
		for _, want := range []string{"/opt/genailab/llama/", "/opt/genailab/sdcpp/"} {
			if !slices.ContainsFunc(dsts, func(d string) bool { return strings.HasPrefix(d, want) }) {
				t.Errorf("a stage copies nothing to %s: %v", want, dsts)
			}
		}
	}
}

// The etcd image is etcd's server alone, FROM scratch like the control image: no shell,
// uid 65532, its data directory its own volume, the binary staged by build-images.sh from
// tools/ (the etcd the tests run), exec-form entrypoint.
func TestEtcdImage(t *testing.T) {
	s := parseDockerfile(t)["etcd"]
	if s == nil {
		t.Fatal("no stage etcd")
	}
	if s.from != "scratch" || len(s.ins["RUN"]) > 0 {
		t.Errorf("etcd is FROM %s with %d RUN: want scratch, assembled from the build context", s.from, len(s.ins["RUN"]))
	}
	if !slices.Equal(s.ins["USER"], []string{"65532:65532"}) {
		t.Errorf("etcd: USER %v, want 65532:65532", s.ins["USER"])
	}
	if !slices.Contains(s.ins["COPY"], "etcd/ /usr/local/bin/") || !slices.Contains(s.ins["COPY"], "--chown=65532:65532 rootdirs/data/ /var/lib/etcd/") ||
		!slices.Equal(s.ins["VOLUME"], []string{`["/var/lib/etcd"]`}) {
		t.Errorf("etcd: COPY %v VOLUME %v", s.ins["COPY"], s.ins["VOLUME"])
	}
	if !slices.Equal(s.ins["ENTRYPOINT"], []string{`["/usr/local/bin/etcd"]`}) {
		t.Errorf("etcd: ENTRYPOINT %v", s.ins["ENTRYPOINT"])
	}
	script, err := os.ReadFile("../scripts/build-images.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `-o "$ctx/etcd/etcd" ./etcd`) || !strings.Contains(string(script), "cd tools && GOWORK=off CGO_ENABLED=0") {
		t.Error("build-images.sh does not stage a static etcd built from tools/ (the version the tests run)")
	}
}
