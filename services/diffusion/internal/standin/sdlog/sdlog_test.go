package sdlog

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestLinesMatchCaptures(t *testing.T) {
	out, _ := os.ReadFile("../testdata/sdcpp/cli/gen64.stdout")
	color, _ := os.ReadFile("../testdata/sdcpp/cli/gen64color.stdout")
	errs, _ := os.ReadFile("../testdata/sdcpp/cli/f_missing_model.stderr")
	var o, e, co bytes.Buffer
	l := &Logger{Out: &o, Err: &e}
	l.Infof(Site{"stable-diffusion.cpp", 713}, "loading model from '%s'", "tinysd.gguf")
	l.Infof(Site{"main.cpp", 490}, "save result image %d to '%s' (success)", 0, "runs/cli/gen64.png")
	l.Infof(Site{"stable-diffusion.cpp", 1502}, "using TAE for encoding / decoding")
	l.Debugf(Site{"main.cpp", 689}, "not printed without -v")
	l.Errorf(Site{"stable-diffusion.cpp", 715}, "init model loader from file failed: '%s'", "does-not-exist.gguf")
	for _, line := range strings.SplitAfter(o.String(), "\n") {
		if !bytes.Contains(out, []byte(line)) {
			t.Errorf("%q not in capture", line)
		}
	}
	if !bytes.HasPrefix(errs, e.Bytes()) || e.Len() == 0 {
		t.Errorf("stderr %q", e.String())
	}
	(&Logger{Out: &co, Color: true}).Infof(Site{"stable-diffusion.cpp", 713}, "loading model from 'tinysd.gguf'")
	if !bytes.HasPrefix(color, co.Bytes()) {
		t.Errorf("color line %q", co.String())
	}
}

func TestPercentInArgumentlessMessage(t *testing.T) {
	if got := Format(Info, Site{"x.cpp", 1}, "%s", "100% done"); got != "[INFO ] x.cpp:1    - 100% done\n" {
		t.Errorf("%q", got)
	}
}
