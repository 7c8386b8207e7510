// Command checkmodversions fails when two modules of the workspace require different versions of
// the same module path.
//
// `make test` builds the workspace (go.work), where minimal version selection picks the highest
// version any module requires; `make standalone` builds each module on its own (GOWORK=off), where
// only that module's requirements count. The two build the same code only while every module that
// requires a path requires the same version of it, which is what this checks.
//
// Usage, from the repository root:
//
//	checkmodversions [-ignore-prefix P] [DIR...]
//
// Each DIR is a module directory (holding a go.mod); without any, the directories of go.work's use
// directives are read. Paths under the ignored prefix (the workspace's own modules, resolved by
// replace directives) are not compared. Exit status 1 lists each drifted path with the version
// every module requires and the newest one, to align on.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

func main() {
	ignore := flag.String("ignore-prefix", "github.com/genailab/genailab", "module paths under this prefix are not compared (the workspace's own modules)")
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		var err error
		if dirs, err = workspaceDirs("go.work"); err != nil {
			fmt.Fprintln(os.Stderr, "checkmodversions:", err)
			os.Exit(2)
		}
	}
	mods, err := readModules(dirs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkmodversions:", err)
		os.Exit(2)
	}
	if n := report(os.Stdout, drift(mods, *ignore)); n > 0 {
		fmt.Fprintf(os.Stdout, "%d module path(s) required at different versions: align every module on the newest (go get PATH@VERSION, then go mod tidy, GOWORK=off)\n", n)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stdout, "module versions aligned across %d modules\n", len(mods))
}

// module is one go.mod: the directory it was read from and its requirements, path → version.
type module struct {
	dir      string
	requires map[string]string
}

// workspaceDirs returns the directories of a go.work file's use directives.
func workspaceDirs(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	wf, err := modfile.ParseWork(file, data, nil)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, u := range wf.Use {
		dirs = append(dirs, filepath.Join(filepath.Dir(file), u.Path))
	}
	if len(dirs) == 0 {
		return nil, errors.New(file + " uses no module")
	}
	return dirs, nil
}

func readModules(dirs []string) ([]module, error) {
	var mods []module
	for _, dir := range dirs {
		file := filepath.Join(dir, "go.mod")
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		mf, err := modfile.ParseLax(file, data, nil)
		if err != nil {
			return nil, err
		}
		m := module{dir: filepath.Clean(dir), requires: map[string]string{}}
		for _, r := range mf.Require {
			m.requires[r.Mod.Path] = r.Mod.Version
		}
		mods = append(mods, m)
	}
	return mods, nil
}

// drifted is one module path that not every requiring module requires at the same version.
type drifted struct {
	path   string
	newest string
	byDir  map[string]string // module dir → version it requires
}

// drift returns the module paths (outside ignorePrefix) required at more than one version, sorted
// by path.
func drift(mods []module, ignorePrefix string) []drifted {
	byPath := map[string]map[string]string{}
	for _, m := range mods {
		for path, v := range m.requires {
			if ignorePrefix != "" && (path == ignorePrefix || strings.HasPrefix(path, ignorePrefix+"/")) {
				continue
			}
			if byPath[path] == nil {
				byPath[path] = map[string]string{}
			}
			byPath[path][m.dir] = v
		}
	}
	var out []drifted
	for path, byDir := range byPath {
		versions := map[string]bool{}
		newest := ""
		for _, v := range byDir {
			versions[v] = true
			if newest == "" || semver.Compare(v, newest) > 0 {
				newest = v
			}
		}
		if len(versions) > 1 {
			out = append(out, drifted{path: path, newest: newest, byDir: byDir})
		}
	}
	slices.SortFunc(out, func(a, b drifted) int { return cmp.Compare(a.path, b.path) })
	return out
}

// report writes one block per drifted path and returns how many there were.
func report(w io.Writer, ds []drifted) int {
	for _, d := range ds {
		fmt.Fprintf(w, "%s: newest %s\n", d.path, d.newest)
		dirs := make([]string, 0, len(d.byDir))
		for dir := range d.byDir {
			dirs = append(dirs, dir)
		}
		slices.Sort(dirs)
		for _, dir := range dirs {
			mark := ""
			if d.byDir[dir] != d.newest {
				mark = "  <- behind"
			}
			fmt.Fprintf(w, "\t%-24s %s%s\n", dir, d.byDir[dir], mark)
		}
	}
	return len(ds)
}
