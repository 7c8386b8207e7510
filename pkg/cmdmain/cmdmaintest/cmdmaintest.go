// Package cmdmaintest checks a command's main function as a user runs it: in a child process
// (the test binary itself, re-executed), so that its os.Exit and its output are the real ones.
package cmdmaintest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childEnv carries the arguments the re-executed test binary hands to main, separated by sep.
const (
	childEnv = "GENAILAB_CMDMAINTEST_ARGS"
	sep      = "\x1f"
)

// HelpExitsZero runs main with each of -h and --help (after the subcommand words sub, if any)
// and checks that it exits 0, prints its usage (the output, stdout and stderr together,
// contains want) and does not call help an error ("help requested"). Call it from a test of
// the command's main package, once per test function: the test is re-executed alone
// (-test.run) in the child, where main runs instead of the checks.
func HelpExitsZero(t *testing.T, main func(), want string, sub ...string) {
	t.Helper()
	if args, ok := os.LookupEnv(childEnv); ok {
		os.Args = append([]string{os.Args[0]}, strings.Split(args, sep)...)
		main()
		os.Exit(0) // a main that returns has succeeded
	}
	for _, help := range []string{"-h", "--help"} {
		args := append(append([]string(nil), sub...), help)
		arg := strings.Join(args, " ")
		cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, sep))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			t.Errorf("%s: exit status %d, want 0; output:\n%s", arg, exit.ExitCode(), out.String())
		case err != nil:
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s: output does not contain %q (the usage):\n%s", arg, want, out.String())
		}
		if strings.Contains(out.String(), "help requested") {
			t.Errorf("%s: help reported as an error:\n%s", arg, out.String())
		}
	}
}
