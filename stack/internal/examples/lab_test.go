package examples_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/stack/internal/examples"
	"github.com/genailab/genailab/stack/internal/labhost"
)

// labMachines are the machines of the deploy recipe (deploy/README.md), with the addresses and
// names its certificates and environment files give them: what a lab block's on: may name.
var labMachines = map[string]labhost.Spec{
	"host1":   {Name: "host1", IP: "10.0.0.5", Aliases: []string{"host1.lab"}},
	"host2":   {Name: "host2", IP: "10.0.0.6", Aliases: []string{"host2.lab"}},
	"control": {Name: "control", IP: "10.0.0.2", Aliases: []string{"control.lab"}},
}

// standInLab is the lab a README's lab blocks run on.
type standInLab struct {
	lab      *labhost.Lab
	machines map[string]*labhost.Machine
}

// bootLab boots every machine the file's lab blocks name, in one lab: the checkout (read-only)
// and the runner's scratch directory, shim and logs (read-write) are bound into each at the
// same paths, so a block sees the files earlier blocks made (pki/) and the built binaries.
func (r *runner) bootLab(t *testing.T, file string, blocks []examples.Block) *standInLab {
	t.Helper()
	rootfs, err := testenv.LabRootfs()
	if err != nil {
		if !errors.Is(err, testenv.ErrMissing) || os.Getenv(testenv.RequireLabEnv) == "1" {
			t.Fatalf("the lab blocks of %s need the stand-in lab: %v", file, err)
		}
		t.Logf("%s: lab blocks only checked: %v (set %s=1 to make this a failure)", file, err, testenv.RequireLabEnv)
		return &standInLab{}
	}
	var specs []labhost.Spec
	for _, b := range blocks {
		for _, name := range b.On {
			spec, ok := labMachines[name]
			if b.File != file {
				continue
			}
			if !ok {
				t.Fatalf("%s: on: names %q, which is not a machine of the stand-in lab (%v)", b, name, mapsKeys(labMachines))
			}
			if !slices.ContainsFunc(specs, func(s labhost.Spec) bool { return s.Name == name }) {
				specs = append(specs, spec)
			}
		}
	}
	lab, err := labhost.New(rootfs, 24, labhost.Bind{Path: r.root, ReadOnly: true}, labhost.Bind{Path: r.tmp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ms, err := lab.Boot(ctx, specs...)
	if err != nil {
		lab.Close()
		t.Fatalf("boot the stand-in lab: %v", err)
	}
	l := &standInLab{lab: lab, machines: map[string]*labhost.Machine{}}
	for _, m := range ms {
		l.machines[m.Name] = m
	}
	t.Logf("%s: stand-in lab booted: %v", file, mapsKeys(l.machines))
	return l
}

// runLab runs a lab block on each of its machines, in order, and checks each run's curl calls
// as run does.
func (r *runner) runLab(t *testing.T, b examples.Block, l *standInLab) {
	t.Helper()
	if l.lab == nil { // no stand-in lab on this machine
		r.check(t, b)
		return
	}
	r.linkBinaries(t)
	for _, name := range b.On {
		m := l.machines[name]
		logDir, err := os.MkdirTemp(r.tmp, "lablog-")
		if err != nil {
			t.Fatal(err)
		}
		env := []string{
			"PATH=" + r.shimDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"EXAMPLE_LOG=" + logDir, "EXAMPLE_REAL_CURL=/usr/bin/curl",
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		out, err := m.Run(ctx, r.scratch, env, b.Text)
		cancel()
		if err != nil {
			t.Errorf("%s on %s: %v\n--- block:\n%s--- output:\n%s\n--- journal of genailab-*:\n%s",
				b, name, err, b.Text, tailOf(string(out), 4000), m.Journal("genailab-*", 80))
			continue
		}
		n := verifyCalls(t, b, logDir)
		t.Logf("%s on %s: ok in %s (%d HTTP calls)", b, name, time.Since(start).Round(100*time.Millisecond), n)
	}
}

// close checks that every genailab unit the blocks enabled is still running and never
// restarted (a unit that crashed after `systemctl enable --now` returned would pass the blocks),
// then powers the lab off.
func (l *standInLab) close(t *testing.T) {
	if l.lab == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range mapsKeys(l.machines) {
		m := l.machines[name]
		out, err := m.Run(ctx, "/", nil, `for u in $(systemctl list-unit-files --type=service --state=enabled --no-legend 'genailab-*' | awk '{print $1}'); do
  echo "$u $(systemctl show -P ActiveState "$u") restarts=$(systemctl show -P NRestarts "$u")"
done`)
		if err != nil {
			t.Errorf("%s: units: %v\n%s", name, err, out)
			continue
		}
		units := strings.TrimSpace(string(out))
		t.Logf("%s: %s", name, strings.ReplaceAll(units, "\n", "; "))
		for _, line := range strings.Split(units, "\n") {
			if line != "" && !strings.HasSuffix(line, " active restarts=0") {
				t.Errorf("%s: %s (want active, never restarted)", name, line)
			}
		}
	}
	if t.Failed() {
		for name, m := range l.machines {
			t.Logf("--- %s: journal of genailab-*:\n%s", name, m.Journal("genailab-*", 60))
		}
	}
	l.lab.Close()
}

func mapsKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
