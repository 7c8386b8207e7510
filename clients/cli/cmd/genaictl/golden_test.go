package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// volatile are JSON keys whose values change from run to run (times, process ids,
// ports, paths, machine sizes, measured speeds); golden files hold "<key>" instead.
var volatile = map[string]bool{
	"time": true, "startedAt": true, "createdAt": true, "finishedAt": true, "downloadedAt": true, "savedAt": true,
	"pid": true, "port": true, "baseUrl": true, "binaryPath": true, "hostname": true, "os": true, "path": true,
	"elapsedMs": true, "timeTakenMs": true, "startupMs": true, "stepsPerSecond": true, "tokensPerSecond": true,
	"timeToFirstTokenMs": true, "totalMs": true, "percent": true,
	"totalBytes": true, "availableBytes": true, "usedBytes": true, "freeBytes": true, "swapTotalBytes": true, "swapUsedBytes": true,
	"physicalCores": true, "logicalCores": true, "recommendedThreads": true, "threads": true, "contextSize": true,
	"gpuUnavailableReason": true, "cpuPercent": true, "rssBytes": true,
}

var jobID = regexp.MustCompile(`^j[0-9a-f]{24}$`)

// normalise rewrites one JSON document: volatile values become "<key>" and job ids
// become <job-1>, <job-2>... in order of appearance (so references stay visible).
func normalise(t *testing.T, doc []byte, extra ...string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	skip := map[string]bool{}
	for _, k := range extra {
		skip[k] = true
	}
	ids := map[string]string{}
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		if volatile[key] || skip[key] {
			return "<" + key + ">"
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(k, e)
			}
			return x
		case []any:
			for i, e := range x {
				x[i] = walk(key, e)
			}
			return x
		case string:
			if jobID.MatchString(x) {
				if ids[x] == "" {
					ids[x] = fmt.Sprintf("<job-%d>", len(ids)+1)
				}
				return ids[x]
			}
		}
		return v
	}
	return walk("", v)
}

// golden compares documents (one JSON document, or one per line) with
// testdata/<name>.golden after normalising them; -update rewrites the file.
func golden(t *testing.T, name, out string, extra ...string) {
	t.Helper()
	var docs []any
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("%s: output is not JSON: %v\n%s", name, err, out)
		}
		docs = append(docs, normalise(t, raw, extra...))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("%s differs from %s (run with -update after checking):\n%s", name, path, diff(string(want), b.String()))
	}
}

// diff lists the lines only in want (-) or only in got (+).
func diff(want, got string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	w, g := count(want), count(got)
	var out []string
	for l, n := range w {
		if g[l] < n {
			out = append(out, "- "+l)
		}
	}
	for l, n := range g {
		if w[l] < n {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// jsonLines decodes NDJSON output.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not one JSON document: %v", l, err)
		}
		docs = append(docs, m)
	}
	return docs
}
