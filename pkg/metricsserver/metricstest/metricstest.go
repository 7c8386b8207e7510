// Package metricstest checks a service's /metrics exposition against a golden file: the
// families' names, types and label names (not values, not series counts), so that a
// renamed series or a new label is a reviewed change. The Go runtime, process and
// promhttp families are left out (they follow the Go and client_golang versions).
// GENAILAB_UPDATE_GOLDEN=1 rewrites the golden files.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// UpdateEnv set to 1 rewrites golden files instead of comparing.
const UpdateEnv = "GENAILAB_UPDATE_GOLDEN"

// ignored are family prefixes left out of the golden files.
var ignored = []string{"go_", "process_", "promhttp_"}

// Scrape fetches url and parses it as the Prometheus text format.
func Scrape(t testing.TB, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, b)
	}
	fams, err := Parse(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// Parse parses the Prometheus text format.
func Parse(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Shape renders families as one line per family, sorted: "name type label,label"
// (the union of the label names of its series, sorted).
func Shape(fams map[string]*dto.MetricFamily, skip ...string) string {
	var lines []string
	for name, f := range fams {
		if slices.ContainsFunc(append(ignored, skip...), func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = true
			}
		}
		names := make([]string, 0, len(labels))
		for l := range labels {
			names = append(names, l)
		}
		slices.Sort(names)
		lines = append(lines, strings.TrimSpace(fmt.Sprintf("%s %s %s", name, strings.ToLower(f.GetType().String()), strings.Join(names, ","))))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// Golden compares the shape of the exposition at url with the golden file at path
// (testdata/<name>.golden by convention); skip lists more family prefixes to leave out.
func Golden(t testing.TB, url, path string, skip ...string) map[string]*dto.MetricFamily {
	t.Helper()
	fams := Scrape(t, url)
	got := Shape(fams, skip...)
	if os.Getenv(UpdateEnv) == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return fams
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with %s=1 to create it)", err, UpdateEnv)
	}
	if got != string(want) {
		t.Errorf("/metrics differs from %s (run with %s=1 after checking):\n%s", path, UpdateEnv, diff(string(want), got))
	}
	return fams
}

// diff lists the lines only in want (-) and only in got (+).
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if l != "" && !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if l != "" && !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// Value returns the value of the one series of family name whose labels include want
// (a counter, gauge or untyped value; a histogram's sample count), failing otherwise.
func Value(t testing.TB, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	m := series(t, fams, name, want)
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: no value", name)
	return 0
}

// Histogram is the histogram of the one series of family name with the wanted labels.
func Histogram(t testing.TB, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Histogram {
	t.Helper()
	h := series(t, fams, name, want).GetHistogram()
	if h == nil {
		t.Fatalf("%s%v: not a histogram", name, want)
	}
	return h
}

// series is the one series of family name whose labels include want.
func series(t testing.TB, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	var found []*dto.Metric
	for _, m := range f.GetMetric() {
		match := 0
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
				match++
			}
		}
		if match == len(want) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series", name, want, len(found))
	}
	return found[0]
}
