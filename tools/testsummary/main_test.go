package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTestJSON runs the real `go test -json` on a throwaway module with the given test file.
func goTestJSON(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.22\n"
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, _ := cmd.Output() // fails when a test fails: that is the point
	return out
}

func TestSummariseCountsAndPrintsOnlyFailures(t *testing.T) {
	in := goTestJSON(t, map[string]string{
		"a/a_test.go": `package a
import "testing"
func TestPass(t *testing.T) { t.Log("quiet when it passes") }
func TestFail(t *testing.T) { t.Log("the failure's log"); t.Fatal("boom") }
func TestSkip(t *testing.T) { t.Skip("no engine here") }
func TestSub(t *testing.T) { t.Run("one", func(t *testing.T) {}); t.Run("two", func(t *testing.T) {}) }
`,
		"b/b_test.go": "package b\nimport \"testing\"\nfunc TestBroken(t *testing.T) { undefined() }\n",
		"c/c.go":      "package c\n",
	})
	var out bytes.Buffer
	c, err := Summarise(bytes.NewReader(in), &out, "m")
	if err != nil {
		t.Fatal(err)
	}
	// TestPass, TestSub and its two subtests pass.
	if c.Passed != 4 || c.Failed != 1 || c.Skipped != 1 || c.BrokenPackages != 1 {
		t.Fatalf("counts %+v\n%s", c, out.String())
	}
	if c.OK() {
		t.Fatal("a failed run is OK")
	}
	got := out.String()
	for _, want := range []string{"the failure's log", "boom", "--- FAIL: TestFail", "undefined", "FAIL\texample.com/m/a"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet when it passes") || strings.Contains(got, "=== RUN") || strings.Contains(got, "PASS\n") {
		t.Errorf("output of passing tests was printed:\n%s", got)
	}
	if len(c.Skips) != 1 || !strings.Contains(c.Skips[0], "TestSkip: ") || !strings.Contains(c.Skips[0], "no engine here") {
		t.Errorf("skips %q", c.Skips)
	}
	if s := c.String(); s != "m: 4 passed, 1 failed, 1 skipped (3 packages, 1 failed without a failing test)" {
		t.Errorf("summary line %q", s)
	}
}

func TestTotalAddsTheRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec")
	for _, c := range []Counts{{Module: "gen", Passed: 2, Packages: 1}, {Module: "services/llm", Passed: 5, Failed: 1, Skipped: 2, Packages: 3}} {
		if err := record(path, c); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mods, sum, err := Total(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 2 || mods[1].Module != "services/llm" {
		t.Fatalf("modules %+v", mods)
	}
	if s := sum.String(); s != "total: 7 passed, 1 failed, 2 skipped (4 packages)" {
		t.Errorf("total %q", s)
	}
}
