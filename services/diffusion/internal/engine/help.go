package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/sdcli"
)

const (
	// helpTimeout bounds `--help` of an engine binary (it answers in milliseconds).
	helpTimeout = 10 * time.Second
	// maxHelpBytes bounds how much of its output is kept (sd-cli's is about 20 KiB).
	maxHelpBytes = 1 << 20
)

// flagCache remembers the flags each binary offers, keyed by path, size and modification time
// (a replaced binary is asked again).
type flagCache struct {
	mu sync.Mutex
	m  map[string]sdargs.Flags
}

// offered returns the flags bin offers, from its --help. A binary whose help cannot be read
// gets nil (the conservative, older flag forms); the reason is returned for the log.
func (c *flagCache) offered(ctx context.Context, bin Binary, env []string) (sdargs.Flags, error) {
	st, err := os.Stat(bin.Path)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s|%d|%d", bin.Path, st.Size(), st.ModTime().UnixNano())
	c.mu.Lock()
	f, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return f, nil
	}
	ctx, cancel := context.WithTimeout(ctx, helpTimeout)
	defer cancel()
	var out bytes.Buffer
	res, err := supervisor.RunOnce(ctx, supervisor.Spec{
		Path:       bin.Path,
		Args:       []string{"--help"},
		Dir:        os.TempDir(),
		Env:        append(append([]string(nil), env...), bin.Env...),
		InheritEnv: true,
		KeepEnv:    sdcli.EngineEnv, // the service's tokens and settings stay with it
		TermGrace:  time.Second,
		OnChunk: func(s supervisor.Stream, b []byte) {
			if s == supervisor.Stdout && out.Len() < maxHelpBytes {
				out.Write(b)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s --help: %w", bin.Path, err)
	}
	if res.Exit.Code != 0 {
		return nil, fmt.Errorf("%s --help: %s", bin.Path, res.Exit)
	}
	f = sdargs.ParseHelp(out.String())
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]sdargs.Flags{}
	}
	c.m[key] = f
	c.mu.Unlock()
	return f, nil
}
