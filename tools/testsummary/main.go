// Command testsummary reads `go test -json` on its standard input and prints what plain
// `go test` prints — one line per package, the whole output of a failed test, build errors —
// followed by the module's counts: "stack: 57 passed, 0 failed, 3 skipped (12 packages)", with
// the reason of every skip. It exits 1 when a test or a package failed.
//
//	go test -json ./... | testsummary -module stack -record FILE   # appends the counts to FILE
//	testsummary -total FILE                                         # one line per module, the total
//
// `make test` runs it for every module.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail events
}

// Counts are one module's results.
type Counts struct {
	Module                  string
	Passed, Failed, Skipped int
	// Packages ran; BrokenPackages failed without a failing test (build error, panic in
	// TestMain, a timeout).
	Packages, BrokenPackages int
	// Skips are "TestName: reason" of every skipped test.
	Skips []string
}

// OK reports whether nothing failed.
func (c Counts) OK() bool { return c.Failed == 0 && c.BrokenPackages == 0 }

func (c Counts) String() string {
	s := fmt.Sprintf("%s: %d passed, %d failed, %d skipped (%d packages", c.Module, c.Passed, c.Failed, c.Skipped, c.Packages)
	if c.BrokenPackages > 0 {
		s += fmt.Sprintf(", %d failed without a failing test", c.BrokenPackages)
	}
	return s + ")"
}

type key struct{ pkg, test string }

// Summarise copies in to out the way plain `go test` prints it and counts the results.
// Lines that are not JSON (the go command's own errors) are copied as they are.
func Summarise(in io.Reader, out io.Writer, module string) (Counts, error) {
	c := Counts{Module: module}
	buf := map[key][]string{}       // output of running tests, printed if they fail
	failedTest := map[string]bool{} // packages with a failed test
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" { // -json's framing; plain go test prints only "ok"
				fmt.Fprint(out, e.Output)
			}
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			c.Packages++
			if e.Action == "fail" && !failedTest[e.Package] {
				c.BrokenPackages++
			}
		case e.Action == "output":
			if strings.HasPrefix(e.Output, "=== ") { // RUN, PAUSE, CONT, NAME: -v's framing
				continue
			}
			k := key{e.Package, e.Test}
			buf[k] = append(buf[k], e.Output)
		case e.Action == "pass":
			c.Passed++
			delete(buf, key{e.Package, e.Test})
		case e.Action == "fail":
			c.Failed++
			failedTest[e.Package] = true
			k := key{e.Package, e.Test}
			fmt.Fprint(out, strings.Join(buf[k], ""))
			delete(buf, k)
		case e.Action == "skip":
			c.Skipped++
			k := key{e.Package, e.Test}
			c.Skips = append(c.Skips, e.Test+": "+skipReason(buf[k]))
			delete(buf, k)
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read go test -json: %w", err)
	}
	// Tests that never ended (a timeout's panic, a crash): their output says why.
	var left []key
	for k := range buf {
		left = append(left, k)
	}
	sort.Slice(left, func(i, j int) bool { return left[i].pkg+" "+left[i].test < left[j].pkg+" "+left[j].test })
	for _, k := range left {
		fmt.Fprint(out, strings.Join(buf[k], ""))
	}
	sort.Strings(c.Skips)
	return c, nil
}

// skipReason is the last line a skipped test logged before its "--- SKIP" line.
func skipReason(lines []string) string {
	reason := ""
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		reason = t
	}
	if reason == "" {
		return "(no reason given)"
	}
	return reason
}

// record appends c to the file: one tab-separated line per module.
func record(path string, c Counts) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s\t%d\t%d\t%d\t%d\t%d\n", c.Module, c.Passed, c.Failed, c.Skipped, c.Packages, c.BrokenPackages)
	return errors.Join(err, f.Close())
}

// Total reads the records of a run and returns them with their sum.
func Total(r io.Reader) ([]Counts, Counts, error) {
	var mods []Counts
	sum := Counts{Module: "total"}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var c Counts
		if _, err := fmt.Sscanf(sc.Text(), "%s\t%d\t%d\t%d\t%d\t%d", &c.Module, &c.Passed, &c.Failed, &c.Skipped, &c.Packages, &c.BrokenPackages); err != nil {
			return nil, sum, fmt.Errorf("bad record %q: %w", sc.Text(), err)
		}
		mods = append(mods, c)
		sum.Passed += c.Passed
		sum.Failed += c.Failed
		sum.Skipped += c.Skipped
		sum.Packages += c.Packages
		sum.BrokenPackages += c.BrokenPackages
	}
	return mods, sum, sc.Err()
}

func main() {
	module := flag.String("module", "", "module name printed in the summary line")
	recordTo := flag.String("record", "", "append the counts to this file (for -total)")
	total := flag.String("total", "", "print every recorded module's counts and the total, from this file")
	flag.Parse()
	if *total != "" {
		f, err := os.Open(*total)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			os.Exit(1)
		}
		defer f.Close()
		mods, sum, err := Total(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			os.Exit(1)
		}
		fmt.Println("== test summary")
		for _, c := range mods {
			fmt.Println("  " + c.String())
		}
		fmt.Println("  " + sum.String())
		if !sum.OK() {
			os.Exit(1)
		}
		return
	}
	c, err := Summarise(os.Stdin, os.Stdout, *module)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	for _, s := range c.Skips {
		fmt.Println("  skipped " + s)
	}
	fmt.Println(c.String())
	if *recordTo != "" {
		if err := record(*recordTo, c); err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			os.Exit(1)
		}
	}
	if !c.OK() {
		os.Exit(1)
	}
}
