package testenv_test

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/genailab/genailab/pkg/testenv"
)

// echoHelperEnv makes the test binary echo its stdin in upper case, prefixed with the
// variable's value, until EOF (TestStartSelfRunsTheHelperUntilStdinCloses).
const echoHelperEnv = "GENAILAB_TESTENV_ECHO_HELPER"

func TestMain(m *testing.M) {
	if prefix := os.Getenv(echoHelperEnv); prefix != "" {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			fmt.Println(prefix + strings.ToUpper(in.Text()))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The helper is this binary with the variable set: it answers on its stdout, and
// closing its stdin at cleanup ends it (a helper left running would fail cleanup's
// wait only by hanging, so the test's own end proves it exited).
func TestStartSelfRunsTheHelperUntilStdinCloses(t *testing.T) {
	h := testenv.StartSelf(t, echoHelperEnv, "echo:")
	if h.Pid <= 0 || h.Pid == os.Getpid() {
		t.Fatalf("helper pid %d (this process %d)", h.Pid, os.Getpid())
	}
	out := bufio.NewScanner(h.Out)
	for _, in := range []string{"one", "two"} {
		if _, err := fmt.Fprintln(h.In, in); err != nil {
			t.Fatal(err)
		}
		if !out.Scan() {
			t.Fatalf("helper gone: %v", out.Err())
		}
		if got, want := out.Text(), "echo:"+strings.ToUpper(in); got != want {
			t.Fatalf("helper answered %q, want %q", got, want)
		}
	}
}
