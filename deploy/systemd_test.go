package deploy_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitFile is a parsed systemd unit: section → key → values (in order; keys may repeat).
type unitFile map[string]map[string][]string

// known lists, per section, every key the units may use and how its value is checked.
// A key not listed is an error, so a typo (ProtectSystm=) fails here rather than being
// ignored with a warning by systemd.
var known = map[string]map[string]*regexp.Regexp{
	"Unit": {
		"Description": reAny, "Documentation": reAny, "Wants": reUnits, "Requires": reUnits, "After": reUnits,
		"Before": reUnits, "PartOf": reUnits, "BindsTo": reUnits,
	},
	"Service": {
		"Type": re(`simple|exec|forking|oneshot|dbus|notify|notify-reload|idle`), "EnvironmentFile": re(`-?/\S+`),
		"Environment": reAny, "ExecStart": re(`/\S+( .*)?`), "KillMode": re(`control-group|mixed|process|none`),
		"TimeoutStopSec": reTime, "TimeoutStartSec": reTime, "Restart": re(`no|on-success|on-failure|on-abnormal|on-watchdog|on-abort|always`),
		"RestartSec": reTime, "User": reName, "Group": reName, "DynamicUser": reBool, "SupplementaryGroups": reAny,
		"NoNewPrivileges": reBool, "ProtectSystem": re(`yes|no|true|false|full|strict`), "ProtectHome": re(`yes|no|true|false|read-only|tmpfs`),
		"PrivateTmp": reBool, "PrivateDevices": reBool, "StateDirectory": reName, "StateDirectoryMode": reMode,
		"ConfigurationDirectory": reName, "ReadWritePaths": rePaths, "ReadOnlyPaths": rePaths,
		"ProtectKernelTunables": reBool, "ProtectKernelModules": reBool, "ProtectKernelLogs": reBool, "ProtectControlGroups": reBool,
		"ProtectClock": reBool, "ProtectHostname": reBool, "ProtectProc": re(`noaccess|invisible|ptraceable|default`),
		"RestrictNamespaces": reBool, "RestrictRealtime": reBool, "RestrictSUIDSGID": reBool, "LockPersonality": reBool,
		"MemoryDenyWriteExecute": reBool, "RestrictAddressFamilies": re(`(AF_[A-Z0-9]+ ?)+|none`), "SystemCallArchitectures": re(`native`),
		"SystemCallFilter": re(`~?[@a-z0-9_:-]+( [@a-z0-9_:-]+)*`), "CapabilityBoundingSet": re(`(CAP_[A-Z_]+ ?)*`),
		"AmbientCapabilities": re(`(CAP_[A-Z_]+ ?)*`), "UMask": reMode, "DevicePolicy": re(`auto|closed|strict`),
		"DeviceAllow":    re(`(/dev/[A-Za-z0-9_./-]+|char-[A-Za-z0-9_*-]+|block-[A-Za-z0-9_*-]+) [rwm]+`),
		"LoadCredential": re(`[A-Za-z0-9_.-]+:/\S+`), "LimitNOFILE": re(`\d+(:\d+)?|infinity`),
	},
	"Install": {"WantedBy": reUnits, "RequiredBy": reUnits, "Also": reUnits, "Alias": reUnits},
}

func re(s string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + s + `)$`) }

var (
	reAny   = re(`.+`)
	reBool  = re(`yes|no|true|false|on|off|1|0`)
	reTime  = re(`\d+(us|ms|s|min|h)?|infinity`)
	reName  = re(`[a-z_][a-z0-9_-]*`)
	reMode  = re(`0[0-7]{3}`)
	rePaths = re(`[-+]?/\S*( [-+]?/\S*)*`)
	reUnits = re(`[A-Za-z0-9@._-]+\.(service|target|socket|timer|mount|path)( [A-Za-z0-9@._-]+\.(service|target|socket|timer|mount|path))*`)
)

// parseUnit parses the unit-file syntax strictly: comments (# ;), [Section] headers,
// Key=Value lines, backslash continuations; anything else is an error.
func parseUnit(path string) (unitFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			n++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";"):
			continue
		case strings.HasPrefix(trimmed, "["):
			if !strings.HasSuffix(trimmed, "]") {
				return nil, fmt.Errorf("%s:%d: malformed section header %q", path, n, trimmed)
			}
			section = trimmed[1 : len(trimmed)-1]
			if _, ok := known[section]; !ok {
				return nil, fmt.Errorf("%s:%d: unknown section [%s]", path, n, section)
			}
			if u[section] != nil {
				return nil, fmt.Errorf("%s:%d: section [%s] twice", path, n, section)
			}
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: not Key=Value: %q", path, n, line)
			}
			if section == "" {
				return nil, fmt.Errorf("%s:%d: %s outside any section", path, n, key)
			}
			key, value = strings.TrimSpace(key), strings.TrimSpace(value)
			check, ok := known[section][key]
			if !ok {
				return nil, fmt.Errorf("%s:%d: unknown key %s in [%s]", path, n, key, section)
			}
			if value != "" && !check.MatchString(value) {
				return nil, fmt.Errorf("%s:%d: %s=%q: invalid value", path, n, key, value)
			}
			u[section][key] = append(u[section][key], value)
		}
	}
	return u, sc.Err()
}

func (u unitFile) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestUnitParserRefusesTypos(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown key":     "[Service]\nProtectSystm=strict\n",
		"bad value":       "[Service]\nProtectSystem=very\n",
		"unknown section": "[Servce]\nUser=x\n",
		"no section":      "User=x\n",
		"not key=value":   "[Service]\nNoNewPrivileges\n",
		"bad device":      "[Service]\nDeviceAllow=/dev/nvidia0 rwx\n",
		"relative exec":   "[Service]\nExecStart=genailab-llm\n",
	} {
		p := filepath.Join(dir, "x.service")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := parseUnit(p); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

var agentUnits = []string{"genailab-llm", "genailab-diffusion", "genailab-monitor"}

func TestSystemdUnits(t *testing.T) {
	all := binaryFlags(t)
	units, _ := filepath.Glob("systemd/*.service")
	targets, _ := filepath.Glob("systemd/*.target")
	ours := map[string]bool{"network-online.target": true, "multi-user.target": true}
	for _, p := range append(units, targets...) {
		ours[filepath.Base(p)] = true
	}
	var names []string
	for _, p := range units {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".service"))
	}
	for name := range services {
		if !slices.Contains(names, name) {
			t.Errorf("no unit %s.service", name)
		}
	}
	if !slices.Equal(targets, []string{"systemd/genailab.target"}) {
		t.Errorf("targets %v, want genailab.target", targets)
	}

	for _, p := range append(units, targets...) {
		u, err := parseUnit(p)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, section := range []string{"Unit", "Service", "Install"} {
			for _, key := range []string{"Wants", "After", "PartOf", "WantedBy", "Requires", "BindsTo"} {
				for _, v := range u[section][key] {
					for _, dep := range strings.Fields(v) {
						if !ours[dep] {
							t.Errorf("%s: %s=%s: no such unit here", p, key, dep)
						}
					}
				}
			}
		}
		if strings.HasSuffix(p, ".target") {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(p), ".service")
		// Sandboxing and restart policy the issue asks for.
		for key, want := range map[string]string{
			"ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
			"User": "genailab", "Restart": "on-failure", "ReadWritePaths": "/var/lib/genailab",
			"EnvironmentFile": "/etc/genailab/" + strings.TrimPrefix(name, "genailab-") + ".env",
		} {
			if got := u.get("Service", key); got != want {
				t.Errorf("%s: %s=%q, want %q", p, key, got, want)
			}
		}
		if u.get("Install", "WantedBy") != "genailab.target" || u.get("Unit", "PartOf") != "genailab.target" {
			t.Errorf("%s: not part of genailab.target", p)
		}
		gpu := slices.Contains(agentUnits, name)
		if hasGPU := u.get("Service", "DevicePolicy") == "closed" && slices.ContainsFunc(u["Service"]["DeviceAllow"], func(s string) bool {
			return strings.Contains(s, "nvidia")
		}); hasGPU != gpu {
			t.Errorf("%s: GPU device access %v, want %v (agents only)", p, hasGPU, gpu)
		}
		// ExecStart runs this unit's binary with flags it knows; credentials it names are loaded.
		exec := u.get("Service", "ExecStart")
		argv := strings.Fields(exec)
		if filepath.Base(argv[0]) != name {
			t.Errorf("%s: ExecStart runs %s", p, argv[0])
		}
		report(t, p, checkArgs(all, argv))
		creds := map[string]bool{}
		for _, c := range u["Service"]["LoadCredential"] {
			id, _, _ := strings.Cut(c, ":")
			creds[id] = true
		}
		for _, m := range regexp.MustCompile(`%d/([A-Za-z0-9_.-]+)`).FindAllStringSubmatch(exec, -1) {
			if !creds[m[1]] {
				t.Errorf("%s: ExecStart uses %%d/%s, which no LoadCredential= provides", p, m[1])
			}
		}
		// The example environment file sets only variables of this service's flags.
		checkEnvFile(t, all, filepath.Join("systemd", "env", strings.TrimPrefix(name, "genailab-")+".env"), name)
	}
}

// checkEnvFile checks KEY=value lines, and commented-out "#KEY=value" examples too.
func checkEnvFile(t *testing.T, all map[string]flagSet, path, binary string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	assign := regexp.MustCompile(`^#?([A-Z][A-Z0-9_]*)=(.*)$`)
	seen := 0
	for _, line := range strings.Split(string(data), "\n") {
		m := assign.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				t.Errorf("%s: not KEY=value: %q", path, line)
			}
			continue
		}
		seen++
		report(t, path, checkSetting(all, binary, m[1], m[2], true))
	}
	if seen == 0 {
		t.Errorf("%s: no settings", path)
	}
}

// TestSystemdAnalyzeVerify runs systemd's own checker where it is installed, on copies of
// the units whose ExecStart points at the freshly built binaries (it insists that they
// exist). A complaint about the units fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; the strict parser above still checks the units")
	}
	binaryFlags(t)
	dir := t.TempDir()
	paths, _ := filepath.Glob("systemd/genailab*")
	var args = []string{"verify", "--man=no"}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(dst, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/", binDir+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, dst)
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Complaints about the units themselves fail; other notes (which vary between systemd
	// versions and hosts) are only logged.
	bad := regexp.MustCompile(`(?i)unknown (key|section|lvalue)|failed to parse|invalid|ignoring|not executable|missing`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case bad.MatchString(line):
			t.Errorf("systemd-analyze verify: %s", line)
		default:
			t.Logf("systemd-analyze verify: %s", line)
		}
	}
}

func TestSysusersAndTmpfiles(t *testing.T) {
	for path, fields := range map[string]int{"systemd/sysusers.d/genailab.conf": 5, "systemd/tmpfiles.d/genailab.conf": 5} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			lines++
			f := splitQuoted(line)
			if len(f) < fields {
				t.Errorf("%s: %q has %d fields, want at least %d", path, line, len(f), fields)
			}
			if strings.Contains(path, "sysusers") && (f[0] != "u" || f[1] != "genailab") {
				t.Errorf("%s: want the genailab system user: %q", path, line)
			}
			if strings.Contains(path, "tmpfiles") && (f[0] != "d" || !strings.HasPrefix(f[1], "/") || !reMode.MatchString(f[2])) {
				t.Errorf("%s: malformed: %q", path, line)
			}
		}
		if lines == 0 {
			t.Errorf("%s: empty", path)
		}
	}
}

// splitQuoted splits on blanks, keeping "double quoted" fields whole.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case (r == ' ' || r == '\t') && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
