package sdserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/genailab/genailab/services/diffusion/internal/standin/sdflags"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdgen"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdimage"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdlog"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdmodel"
	"github.com/genailab/genailab/services/diffusion/internal/standin/sdsignal"
)

// Outcome is how the process must end.
type Outcome = sdflags.Outcome

var (
	siteNewCtxFailed = sdlog.Site{File: "main.cpp", Line: 92}
	siteListening    = sdlog.Site{File: "main.cpp", Line: 148}
	siteListenFailed = sdlog.Site{File: "main.cpp", Line: 151}
	siteHTML         = sdlog.Site{File: "main.cpp", Line: 118}
)

var program = sdflags.Program{Name: "sd-server", Table: table, Help: Help}

// Run is the whole sd-server stand-in: argv as the process got it (argv[0] first). It serves
// until ctx ends (the real one only ends when killed).
func Run(ctx context.Context, argv []string, getenv func(string) string, stdout, stderr io.Writer) Outcome {
	st, end := program.Start(argv, getenv, stdout, stderr)
	if end != nil {
		return *end
	}
	cfg, log, args := st.Config, st.Log, st.Args
	if end := sdflags.Check(args, log, st.Help); end != nil {
		return *end
	}
	var html []byte
	if p := args.String("--serve-html-path", ""); p != "" {
		var err error
		if html, err = os.ReadFile(p); err != nil {
			log.Errorf(siteHTML, "failed to read HTML file: %s", p)
			return Outcome{Code: 1}
		}
	}
	defaults := genRequest{
		Prompt: args.String("--prompt", ""), Negative: args.String("--negative-prompt", ""),
		Width: args.Int("--width", 512), Height: args.Int("--height", 512), Seed: args.Int64("--seed", 42),
		Batch: min(8, max(1, args.Int("--batch-count", 1))), Steps: args.Int("--steps", 20),
		CFG: args.Float("--cfg-scale", 7), Sampler: args.String("--sampling-method", ""),
		OutputFormat: "png", Quality: 100,
	}
	if defaults.Width <= 0 {
		defaults.Width = 512
	}
	if defaults.Height <= 0 {
		defaults.Height = 512
	}
	if s := args.String("--scheduler", ""); s != "" {
		defaults.Scheduler, _ = sdgen.CanonicalScheduler(s)
	}
	comps := sdflags.Components(args)
	models := make([]sdimage.ModelRef, len(comps))
	for i, c := range comps {
		models[i] = sdimage.ModelRef{Key: c.Key, Path: c.Path}
	}
	eng := &sdgen.Engine{Log: log, Config: cfg, Components: comps, Profile: sdmodel.TinySD}
	// The model header is read before the socket exists: until then connections are refused.
	if err := eng.LoadHeader(ctx); err != nil {
		if errors.Is(err, sdgen.ErrNoModel) {
			log.Errorf(siteNewCtxFailed, "new_sd_ctx_t failed")
			return Outcome{Code: 1}
		}
		return Outcome{}
	}
	ip := args.String("--listen-ip", "127.0.0.1")
	port := args.Int("--listen-port", 1234)
	ln, err := listenReusePort(ctx, net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		log.Errorf(siteListenFailed, "failed to listen on %s:%d: %v", ip, port, err)
		return Outcome{Code: 1}
	}
	defer ln.Close()
	// The real server prints the port it was given; for --listen-port 0 the stand-in prints
	// the port the kernel chose, so that tests can find it.
	log.Infof(siteListening, "listening on: http://%s:%d", ip, ln.Addr().(*net.TCPAddr).Port)

	s := &Server{log: log, eng: eng, defaults: defaults, models: models, html: html,
		jobs: newJobs(cfg.JobTTL, time.Now), die: sdsignal.Die, now: time.Now, ctx: ctx}
	go s.work(ctx)
	srv := &http.Server{Handler: s, IdleTimeout: 5 * time.Second, ReadHeaderTimeout: 30 * time.Second,
		DisableGeneralOptionsHandler: true, ErrorLog: nil}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Errorf(siteListenFailed, "server stopped: %v", err)
		return Outcome{Code: 1}
	}
	return Outcome{}
}

// listenReusePort listens with SO_REUSEPORT and without SO_REUSEADDR (Go sets it by default:
// it is cleared), as the real sd-server's cpp-httplib does: a second server on the same port
// starts normally and shares it, and the connections it closes leave TIME_WAIT sockets that
// refuse a plain bind of the port for a minute.
func listenReusePort(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp", addr)
}

// soReusePort is SO_REUSEPORT on Linux.
const soReusePort = 0xf

// Main runs the stand-in on the process's arguments and ends the process as the real
// sd-server would. SIGTERM and SIGINT keep Go's default behaviour: death by the signal, at once.
func Main() {
	o := Run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)
	if o.Signal != 0 {
		sdsignal.Die(o.Signal)
	}
	os.Exit(o.Code)
}
