package engine

import (
	"context"
	"time"

	"github.com/genailab/genailab/pkg/imagereq"
	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/sdcli"
	"github.com/genailab/genailab/services/diffusion/internal/sdprogress"
)

// cliBackend runs one sd-cli per image.
type cliBackend struct {
	e   *Engine
	bin Binary
	cfg Config
}

func (b *cliBackend) start(context.Context) error { return nil }
func (b *cliBackend) stop(context.Context) error  { return nil }
func (b *cliBackend) queues() bool                { return false }
func (b *cliBackend) restarting() bool            { return false }

func (b *cliBackend) check(p imagereq.Params) error { return b.capabilities().check(ModeCLI, p) }

func (b *cliBackend) capabilities() Capabilities {
	if b.bin.Demo {
		return demoCapabilities
	}
	return cliCapabilities
}
func (b *cliBackend) pid() int  { return 0 }
func (b *cliBackend) port() int { return 0 }

func (b *cliBackend) generate(g *generation) (Result, error) {
	o := b.e.opts
	res, err := sdcli.Run(g.ctx, sdcli.Job{
		Binary:       b.bin.Path,
		Model:        b.cfg.Model,
		Memory:       b.cfg.Memory,
		Threads:      b.cfg.Threads,
		Params:       g.params,
		TempDir:      o.TempDir,
		StallTimeout: o.StallTimeout,
		KillGrace:    o.KillGrace,
		Env:          append(append([]string(nil), o.Env...), b.bin.Env...),
		ExtraArgs:    o.ExtraArgs,
		OnStart:      g.setPID,
		OnPreview: func(pv sdcli.Preview) {
			g.preview(Preview{PNG: pv.PNG, Width: pv.Width, Height: pv.Height, Step: pv.Step,
				ImageIndex: pv.ImageIndex, Written: pv.Written, Read: pv.Read})
		},
		OnEvent: func(s supervisor.Stream, ev sdprogress.Event, at time.Time) {
			b.e.output(s, ev, at, g)
		},
	})
	g.setPID(0)
	if err != nil {
		return Result{}, err
	}
	out := Result{PNG: res.PNG, Width: res.Width, Height: res.Height}
	for _, im := range res.Batch {
		out.Batch = append(out.Batch, BatchImage{PNG: im.PNG, Seed: im.Seed})
	}
	return out, nil
}
