package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/pkg/testenv"
	"github.com/genailab/genailab/services/diffusion/internal/enginerr"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
)

// A request the mode cannot run (previews on sd-server) is refused at once, even while the
// engine is still starting: it does not wait for the start as a runnable request does.
func TestRealServerRefusesPreviewsWhileStarting(t *testing.T) {
	sd := testenv.RequireRealSD(t)
	e := New(Options{Binaries: Binaries{CLI: sd.CLI, Server: sd.Server, LookPath: noPath}, TempDir: t.TempDir()})
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	e.mu.Lock()
	changed := e.changed
	e.mu.Unlock()
	started := make(chan error, 1)
	go func() {
		_, err := e.Start(context.Background(), Config{Mode: ModeServer, ModelID: "tinysd", Model: sdargs.Model{Path: sd.Model}, Threads: 1})
		started <- err
	}()
	<-changed // the first status change is to starting
	p := realParams(2, 1)
	p.Preview = imagereq.Preview{Method: "proj", Interval: 1}
	_, err := e.Generate(context.Background(), p, nil)
	st := e.Info().Status
	if !errors.Is(err, enginerr.ErrUnsupported) {
		t.Fatalf("previews while sd-server starts: %v", err)
	}
	if st != supervisor.StateStarting {
		t.Errorf("refused only once the engine was %s", st)
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if in := e.Info(); in.LastError != "" {
		t.Errorf("a refused request became an engine error: %q", in.LastError)
	}
}
