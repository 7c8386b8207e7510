package sdbar

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// Every rendered update below appears verbatim in the reference captures.
func TestRenderMatchesCaptures(t *testing.T) {
	files := []string{"cli/gen64.stdout", "cli/gen128.stdout", "cli/full512.stdout", "cli/gen64rand.stdout", "server/server.stdout"}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile("../testdata/sdcpp/" + f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for _, c := range []struct {
		kind        Kind
		step, total int
		speed       string
	}{
		{Sampling, 1, 2, "4.41it/s"},
		{Sampling, 2, 2, "46.85it/s"},
		{Sampling, 1, 20, "4.12it/s"},
		{Sampling, 19, 20, "23.27it/s"},
		{Sampling, 29, 30, "1.46it/s"},
		{Sampling, 30, 30, "1.46it/s"},
		{Sampling, 1, 40, "7.09it/s"},
		{Sampling, 1, 1, "43.10it/s"},
		{Loading, 1, 280, "0.00MB/s"},
		{Loading, 280, 280, "23.57MB/s"},
		{Loading, 11, 67, "286.87MB/s"},
		{Loading, 130, 280, "799.77MB/s"},
		{Loading, 2, 196, "75.20MB/s"},
		{Loading, 196, 196, "329.73MB/s"},
	} {
		got := Render(c.kind, c.step, c.total, c.speed)
		if !bytes.Contains(all, []byte(got)) {
			t.Errorf("Render(%v, %d, %d) = %q is not in the captures", c.kind, c.step, c.total, got)
		}
		if nl := got[len(got)-1] == '\n'; nl != (c.step == c.total) {
			t.Errorf("Render(%d/%d): newline %v", c.step, c.total, nl)
		}
	}
}

func TestSpeeds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		227 * time.Millisecond:  "4.41it/s",
		time.Second:             "1.00it/s",
		1004 * time.Millisecond: "1.00s/it",
		1500 * time.Millisecond: "1.50s/it",
	} {
		if got := StepSpeed(d); got != want {
			t.Errorf("StepSpeed(%v) = %s, want %s", d, got, want)
		}
	}
	if got := ByteSpeed(6661*1024*1024/100, 202*time.Millisecond); got != "329.75MB/s" {
		t.Errorf("ByteSpeed = %s", got)
	}
	if got := ByteSpeed(2<<30, time.Second); got != "2.00GB/s" {
		t.Errorf("ByteSpeed = %s", got)
	}
}
