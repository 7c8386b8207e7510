package testenv

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireLabEnv=1 makes a missing stand-in lab (systemd-nspawn, debootstrap, root) a failure.
const RequireLabEnv = "GENAILAB_REQUIRE_LAB"

// LabPackages are the Debian packages of a stand-in lab machine's root file system, beyond
// debootstrap's minbase: its own systemd as PID 1, and what the deploy recipe's commands use.
var LabPackages = []string{"systemd", "systemd-sysv", "dbus", "curl", "ca-certificates", "iproute2", "openssl"}

// LabRootfs returns a Debian root file system of this machine's release for the stand-in lab
// machines (stack/internal/labhost boots it read-only under systemd-nspawn), made once per
// machine by debootstrap from the Debian mirror apt uses, into the cache directory (CacheDir),
// keyed by the release and the package list. ErrMissing when this machine cannot run the lab:
// not root, or no systemd-nspawn (Debian's systemd-container), debootstrap or ip.
func LabRootfs() (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: the stand-in lab boots machines with systemd-nspawn, which needs root", ErrMissing)
	}
	for cmd, pkg := range map[string]string{"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap", "ip": "iproute2", "nsenter": "util-linux"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return "", fmt.Errorf("%w: the stand-in lab needs %s (Debian's %s)", ErrMissing, cmd, pkg)
		}
	}
	suite, err := debianSuite("/etc/os-release")
	if err != nil {
		return "", err
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("test cache: %w", err)
	}
	sum := sha256.Sum256([]byte(suite + "\n" + strings.Join(LabPackages, ",")))
	final := filepath.Join(dir, "labroot-"+suite+"-"+hex.EncodeToString(sum[:])[:12])
	unlock, err := lockFile(filepath.Join(dir, "labroot.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(final, "usr", "lib", "systemd", "systemd")); err == nil {
		return final, nil
	}
	tmp := filepath.Join(dir, ".labroot-"+strconv.Itoa(os.Getpid()))
	_ = os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(LabPackages, ","),
		suite, tmp, debianMirror("/etc/apt/sources.list.d/debian.sources"))
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("debootstrap the stand-in lab's root file system (%s): %w\n%s", suite, err, tailLines(string(out), 20))
	}
	_ = os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("stand-in lab root file system: %w", err)
	}
	return final, nil
}

// RequireLabRootfs returns LabRootfs, or skips t (fails it under GENAILAB_REQUIRE_LAB=1).
func RequireLabRootfs(t testing.TB) string {
	t.Helper()
	p, err := LabRootfs()
	Need(t, RequireLabEnv, err)
	return p
}

// debianSuite reads the release codename (bookworm) from os-release.
func debianSuite(osRelease string) (string, error) {
	f, err := os.Open(osRelease)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMissing, err)
	}
	defer f.Close()
	var id, codename string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "ID":
			id = v
		case "VERSION_CODENAME":
			codename = v
		}
	}
	if id != "debian" || codename == "" {
		return "", fmt.Errorf("%w: the stand-in lab is a Debian root file system made by debootstrap; this machine is %q %q", ErrMissing, id, codename)
	}
	return codename, nil
}

// debianMirror is the first URIs of apt's deb822 sources, else Debian's default mirror.
func debianMirror(sources string) string {
	b, err := os.ReadFile(sources)
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "URIs:"); ok {
				if f := strings.Fields(v); len(f) > 0 && !strings.Contains(f[0], "security") {
					return f[0]
				}
			}
		}
	}
	return "http://deb.debian.org/debian"
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
