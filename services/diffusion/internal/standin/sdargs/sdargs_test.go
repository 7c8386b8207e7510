package sdargs

import (
	"errors"
	"os"
	"testing"
)

func table(t *testing.T, file string) *Table {
	t.Helper()
	b, err := os.ReadFile("../testdata/sdcpp/help/" + file)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := ParseHelp(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestHelpTable(t *testing.T) {
	cli := table(t, "sd-cli.help.stdout")
	for name, want := range map[string]struct {
		kind  Kind
		value bool
	}{
		"-o": {String, true}, "-m": {String, true}, "--diffusion-model": {String, true}, "-W": {Int, true},
		"--steps": {Int, true}, "--cfg-scale": {Float, true}, "--canny": {Bool, false}, "-v": {Bool, false},
		"--offload-to-cpu": {Bool, false}, "--vae-tiling": {Bool, false}, "--diffusion-fa": {Bool, false},
		"-M": {Manual, true}, "-h": {Manual, false}, "--list-devices": {Manual, false}, "--type": {Manual, true},
		"-s": {Manual, true}, "--sampling-method": {Manual, true}, "--scheduler": {Manual, true},
		"--negative-prompt-file": {Manual, true}, "--hires": {Bool, false}, "--pm-style-strength": {Float, true},
	} {
		o, ok := cli.Lookup(name)
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if o.Kind != want.kind || o.TakesValue() != want.value {
			t.Errorf("%s: kind %v value %v, want %v %v", name, o.Kind, o.TakesValue(), want.kind, want.value)
		}
	}
	if len(cli.Options) < 150 {
		t.Errorf("only %d options", len(cli.Options))
	}
	srv := table(t, "sd-server.help.stdout")
	for _, n := range []string{"-l", "--listen-ip", "--listen-port", "--serve-html-path", "-m", "--steps"} {
		if _, ok := srv.Lookup(n); !ok {
			t.Errorf("sd-server: %s missing", n)
		}
	}
	if _, ok := srv.Lookup("-o"); ok {
		t.Error("sd-server has no -o")
	}
}

func TestParseErrors(t *testing.T) {
	cli := table(t, "sd-cli.help.stdout")
	var unknown *UnknownArgError
	if _, err := cli.Parse([]string{"-m", "x", "--foo"}, nil); !errors.As(err, &unknown) || unknown.Arg != "--foo" {
		t.Errorf("unknown: %v", err)
	}
	var invalid *InvalidParamError
	if _, err := cli.Parse([]string{"-W"}, nil); !errors.As(err, &invalid) || invalid.Arg != "-W" {
		t.Errorf("missing value: %v", err)
	}
	var term *TerminateError
	if _, err := cli.Parse([]string{"-W", "abc"}, nil); !errors.As(err, &term) || term.Message() != "terminate called after throwing an instance of 'std::invalid_argument'\n  what():  stoi\n" {
		t.Errorf("stoi: %v", err)
	}
	if _, err := cli.Parse([]string{"--cfg-scale", "x"}, nil); !errors.As(err, &term) || term.What != "stof" {
		t.Errorf("stof: %v", err)
	}
	a, err := cli.Parse([]string{"-W", " 72px", "--cfg-scale", "4.5e0x", "--canny", "-p", "-W"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Int("--width", 0) != 72 || a.Float("--cfg-scale", 0) != 4.5 || !a.Has("--canny") || a.String("--prompt", "") != "-W" {
		t.Errorf("values: %d %v %v %q", a.Int("--width", 0), a.Float("--cfg-scale", 0), a.Has("--canny"), a.String("--prompt", ""))
	}
}

func TestStoi(t *testing.T) {
	for in, want := range map[string]int{"42": 42, "  -7": -7, "+3x": 3, "2147483647": 2147483647} {
		if got, err := Stoi(in); err != nil || got != want {
			t.Errorf("Stoi(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x1", "-", "2147483648", "99999999999999999999"} {
		if _, err := Stoi(in); err == nil {
			t.Errorf("Stoi(%q) accepted", in)
		}
	}
	if n, err := Stoll("-1"); err != nil || n != -1 {
		t.Errorf("Stoll(-1) = %d, %v", n, err)
	}
	if f, err := Stof("inf"); err != nil || f < 1e38 {
		t.Errorf("Stof(inf) = %v, %v", f, err)
	}
	if _, err := Stof("1e999"); err == nil {
		t.Error("Stof(1e999) accepted")
	}
}
