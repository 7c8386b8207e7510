package deploy_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// services are the binaries the deployment files run, with their packages and the
// prefix of their environment variables (pkg/config).
var services = map[string]struct{ pkg, env string }{
	"genailab-llm":          {"./services/llm/cmd/genailab-llm", "GENAILAB_LLM_"},
	"genailab-diffusion":    {"./services/diffusion/cmd/genailab-diffusion", "GENAILAB_DIFFUSION_"},
	"genailab-monitor":      {"./services/monitor/cmd/genailab-monitor", "GENAILAB_MONITOR_"},
	"genailab-orchestrator": {"./services/orchestrator/cmd/genailab-orchestrator", "GENAILAB_ORCHESTRATOR_"},
	"genailab-gateway":      {"./services/gateway/cmd/genailab-gateway", "GENAILAB_GATEWAY_"},
}

// flagSet is what a binary's -h lists: flag name → type ("bool" for bare flags).
type flagSet map[string]string

var (
	buildOnce sync.Once
	built     map[string]flagSet
	binDir    string
	buildErr  error
)

// binaryFlags builds every service binary (once per test run) and reads their flags.
func binaryFlags(t *testing.T) map[string]flagSet {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "genailab-deploy-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + string(filepath.Separator)}
		for _, s := range services {
			args = append(args, s.pkg)
		}
		args = append(args, "./pkg/cmd/genailab-certs") // for the end-to-end TLS test
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		// The services are built in the workspace (go.work at the root), whatever GOWORK
		// this test runs with.
		cmd.Env = append(withoutEnv(os.Environ(), "GOWORK"), "GOWORK=")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		built = map[string]flagSet{}
		for name := range services {
			fs, err := readFlags(filepath.Join(binDir, name))
			if err != nil {
				buildErr = err
				return
			}
			built[name] = fs
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}

var flagLine = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)(?: (\S+))?`)

// readFlags runs bin -h and parses the flag package's usage listing.
func readFlags(bin string) (flagSet, error) {
	cmd := exec.Command(bin, "-h")
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no GENAILAB_* from the environment
	out, _ := cmd.CombinedOutput()           // -h prints the usage and exits 0
	fs := flagSet{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			typ := m[2]
			if typ == "" {
				typ = "bool"
			}
			fs[m[1]] = typ
		}
	}
	if len(fs) < 5 || fs["config"] == "" {
		return nil, fmt.Errorf("%s -h: no flag listing in:\n%s", bin, out)
	}
	return fs, nil
}

// checkValue reports whether value suits a flag of type typ.
func checkValue(typ, value string) error {
	var err error
	switch typ {
	case "bool":
		_, err = strconv.ParseBool(value)
	case "int":
		_, err = strconv.ParseInt(value, 0, 64)
	case "uint":
		_, err = strconv.ParseUint(value, 0, 64)
	case "float":
		_, err = strconv.ParseFloat(value, 64)
	case "duration":
		_, err = time.ParseDuration(value)
	}
	return err
}

// checkArgs checks a command line: the binary is a service and every flag is one it
// accepts, with a value of the right type. Values may contain systemd specifiers (%d).
func checkArgs(all map[string]flagSet, argv []string) []string {
	if len(argv) == 0 {
		return []string{"empty command"}
	}
	name := filepath.Base(argv[0])
	fs, ok := all[name]
	if !ok {
		return []string{fmt.Sprintf("%s is not a genailab service binary", argv[0])}
	}
	var errs []string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			errs = append(errs, fmt.Sprintf("stray argument %q (the services take flags only)", a))
			continue
		}
		flagName, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		typ, ok := fs[flagName]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s has no flag -%s", name, flagName))
			continue
		}
		if typ == "bool" && !hasValue {
			continue
		}
		if !hasValue {
			if i+1 >= len(argv) {
				errs = append(errs, fmt.Sprintf("-%s needs a value", flagName))
				continue
			}
			i++
			value = argv[i]
		}
		if err := checkValue(typ, value); err != nil {
			errs = append(errs, fmt.Sprintf("-%s %q is not a %s", flagName, value, typ))
		}
	}
	return errs
}

// checkSetting checks that a setting of binary — an environment variable
// (GENAILAB_<SVC>_<FLAG>) or a -config YAML key (the flag name) — names one of its flags
// and that the value suits it. Other environment variables (NVIDIA_*) pass.
func checkSetting(all map[string]flagSet, binary, name, value string, isEnv bool) []string {
	svc, ok := services[binary]
	if !ok {
		return []string{"unknown binary " + binary}
	}
	flagName := name
	if isEnv {
		if !strings.HasPrefix(name, "GENAILAB_") {
			return nil
		}
		if !strings.HasPrefix(name, svc.env) {
			return []string{fmt.Sprintf("%s is not a variable of %s (%s*)", name, binary, svc.env)}
		}
		flagName = strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, svc.env), "_", "-"))
	} else {
		flagName = strings.ReplaceAll(name, "_", "-")
	}
	typ, ok := all[binary][flagName]
	if !ok || flagName == "config" {
		return []string{fmt.Sprintf("%s names no flag of %s", name, binary)}
	}
	if value != "" {
		if err := checkValue(typ, value); err != nil {
			return []string{fmt.Sprintf("%s=%q is not a %s", name, value, typ)}
		}
	}
	return nil
}

func report(t *testing.T, where string, errs []string) {
	t.Helper()
	for _, e := range errs {
		t.Errorf("%s: %s", where, e)
	}
}

// TestBinariesListFlags guards the guard: the -h parsing finds the flags the deployment
// files rely on, and the checks refuse what they must, so that a broken parser cannot make
// every other test pass vacuously.
func TestBinariesListFlags(t *testing.T) {
	all := binaryFlags(t)
	for name, want := range map[string][]string{
		"genailab-llm":          {"grpc-addr", "token", "tls-cert", "tls-key", "tls-client-ca", "data-dir", "autostart"},
		"genailab-diffusion":    {"tls-cert", "tls-key", "tls-client-ca", "http-addr"},
		"genailab-monitor":      {"tls-cert", "tls-key", "tls-client-ca", "metrics-addr"},
		"genailab-orchestrator": {"tls-cert", "tls-ca", "tls-client-cert", "tls-client-key", "tls-server-name", "queue-size"},
		"genailab-gateway":      {"http-addr", "tls-cert", "tls-key", "tls-ca", "tls-client-cert", "backend-token"},
	} {
		for _, f := range want {
			if _, ok := all[name][f]; !ok {
				t.Errorf("%s: -%s not found in -h (parsed %d flags)", name, f, len(all[name]))
			}
		}
	}
	if all["genailab-llm"]["autostart"] != "bool" || all["genailab-orchestrator"]["queue-size"] != "int" ||
		all["genailab-llm"]["ready-timeout"] != "duration" {
		t.Errorf("flag types misread: %v", all["genailab-llm"])
	}
	good := []string{"/usr/local/bin/genailab-llm", "-grpc-addr", ":1", "-autostart", "-ready-timeout=3s", "--log-level", "debug"}
	if errs := checkArgs(all, good); len(errs) > 0 {
		t.Errorf("good command refused: %v", errs)
	}
	for _, bad := range [][]string{
		{"/usr/bin/genailab-llama"},
		{"genailab-llm", "-grpc-adr", ":1"},
		{"genailab-llm", "-ready-timeout", "soon"},
		{"genailab-llm", "serve"},
		{"genailab-orchestrator", "-queue-size", "many"},
		{"genailab-llm", "-token"},
	} {
		if errs := checkArgs(all, bad); len(errs) == 0 {
			t.Errorf("%q passed", bad)
		}
	}
	if errs := checkSetting(all, "genailab-llm", "GENAILAB_LLM_TLS_CLIENT_CA", "/x", true); len(errs) > 0 {
		t.Errorf("good variable refused: %v", errs)
	}
	for _, bad := range [][3]string{
		{"GENAILAB_LLM_TLS_CLIENT", "/x", "env"}, {"GENAILAB_MONITOR_TOKEN", "x", "env"}, {"GENAILAB_LLM_AUTOSTART", "maybe", "env"},
		{"grpc-adr", ":1", "yaml"}, {"config", "/x", "yaml"},
	} {
		if errs := checkSetting(all, "genailab-llm", bad[0], bad[1], bad[2] == "env"); len(errs) == 0 {
			t.Errorf("%v passed", bad)
		}
	}
}
