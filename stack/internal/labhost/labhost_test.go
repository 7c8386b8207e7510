package labhost_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/labhost"
)

// Two machines boot their own systemd, reach each other by name on the lab network, run units,
// and write only to their own overlay and to what is bound into them.
func TestMachinesBootTheirOwnSystemdOnOnePrivateNetwork(t *testing.T) {
	rootfs := testenv.RequireLabRootfs(t)
	shared := t.TempDir()
	lab, err := labhost.New(rootfs, 24, labhost.Bind{Path: shared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ms, err := lab.Boot(ctx, labhost.Spec{Name: "alpha", IP: "10.0.0.5", Aliases: []string{"alpha.lab"}},
		labhost.Spec{Name: "beta", IP: "10.0.0.6", Aliases: []string{"beta.lab"}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := ms[0], ms[1]
	run := func(m *labhost.Machine, script string, args ...string) string {
		t.Helper()
		out, err := m.Run(ctx, "/", nil, script, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(a, "hostname; readlink /proc/1/exe"); got != "alpha\n/usr/lib/systemd/systemd" {
		t.Errorf("alpha: hostname and PID 1 = %q", got)
	}
	// A transient unit on beta; alpha knows beta by its lab name and has its own address.
	run(b, "systemd-run --unit=echo-test --property=Type=exec /bin/sleep infinity >/dev/null 2>&1")
	if got := run(a, "getent hosts beta.lab"); !strings.HasPrefix(got, "10.0.0.6") {
		t.Errorf("alpha resolves beta.lab to %q", got)
	}
	if got := run(a, "ip -4 -o addr show dev eth0"); !strings.Contains(got, "10.0.0.5/24") {
		t.Errorf("alpha's eth0: %q", got)
	}
	if got := run(b, "systemctl is-active echo-test"); got != "active" {
		t.Errorf("beta's transient unit: %q", got)
	}
	// Writes: the root overlay stays in the machine; a bound directory is shared.
	run(a, "echo x > /etc/written-in-alpha; echo y > \"$1\"/from-alpha", shared)
	if _, err := os.Stat(filepath.Join(rootfs, "etc", "written-in-alpha")); !os.IsNotExist(err) {
		t.Errorf("a write to alpha's /etc reached the shared root file system (%v)", err)
	}
	if got := run(b, "cat /etc/written-in-alpha 2>/dev/null || echo absent; cat \"$1\"/from-alpha", shared); got != "absent\ny" {
		t.Errorf("beta sees %q", got)
	}
}
