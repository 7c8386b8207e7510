// Package standinbin builds the sd.cpp stand-ins (cmd/sd-cli-standin, cmd/sd-server-standin)
// for tests of the packages that run them as real processes. It is test support: nothing in
// the service imports it.
package standinbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Module is the import path prefix of the stand-in commands.
const Module = "github.com/genailab/genailab/services/diffusion/cmd/"

// Paths of built stand-ins.
type Paths struct {
	Dir    string
	CLI    string // sd-cli-standin
	Server string // sd-server-standin (empty when its command does not exist yet)
}

// Build compiles the stand-ins into a new temporary directory (remove Paths.Dir when done).
// Meant for TestMain.
func Build() (Paths, error) {
	dir, err := os.MkdirTemp("", "sd-standins-")
	if err != nil {
		return Paths{}, err
	}
	p := Paths{Dir: dir}
	for _, name := range []string{"sd-cli-standin", "sd-server-standin"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), Module+name)
		out, err := cmd.CombinedOutput()
		if err != nil {
			if name == "sd-server-standin" {
				continue // not written yet
			}
			os.RemoveAll(dir)
			return Paths{}, fmt.Errorf("build %s: %v\n%s", name, err, out)
		}
		switch name {
		case "sd-cli-standin":
			p.CLI = filepath.Join(dir, name)
		case "sd-server-standin":
			p.Server = filepath.Join(dir, name)
		}
	}
	return p, nil
}
