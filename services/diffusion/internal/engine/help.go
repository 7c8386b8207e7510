package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/genailab/genailab/pkg/supervisor"
	"github.com/genailab/genailab/services/diffusion/internal/sdargs"
	"github.com/genailab/genailab/services/diffusion/internal/sdcli"
)

// helpTimeout bounds `--help` of an engine binary (it answers in milliseconds).
const helpTimeout = 10 * time.Second

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
	cmd := exec.CommandContext(ctx, bin.Path, "--help")
	cmd.Env = append(append(supervisor.FilterEnv(os.Environ(), sdcli.EngineEnv), env...), bin.Env...)
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s --help: %w", bin.Path, err)
	}
	f = sdargs.ParseHelp(string(out))
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]sdargs.Flags{}
	}
	c.m[key] = f
	c.mu.Unlock()
	return f, nil
}
