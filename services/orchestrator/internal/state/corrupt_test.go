package state

// Regression tests of issue 14 item 6, on real bbolt files damaged as a disk or an
// interrupted copy damages them: truncated, bits flipped in a data page or in the meta
// pages, one record's bytes changed, a page damaged under a running orchestrator.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

var clock = func() time.Time { return time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC) }

func savedState(host string) *orchestratorv1.SavedState {
	return &orchestratorv1.SavedState{Host: host, WasRunning: true, SavedAt: timestamppb.Now(), Reason: "job-x",
		LlmConfig: &llmv1.LLMConfig{ModelId: "tiny-" + host, ContextSize: 4096, Port: 41000}}
}

func testJob(i int) *orchestratorv1.Job {
	return &orchestratorv1.Job{Id: fmt.Sprintf("j%016x%08x", i, i), Status: orchestratorv1.JobStatus_JOB_STATUS_SUCCEEDED,
		Error: strings.Repeat("padding to fill pages ", 8) + fmt.Sprint(i)}
}

// buildDB writes a database with two saved states, 300 jobs and 500 events (enough for
// the jobs and events buckets to span many pages under a branch page) and returns its path.
func buildDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "gpu-box"} {
		if err := d.PutSavedState(savedState(h)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 300; i++ {
		if err := d.PutJob(testJob(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 500; i++ {
		if err := d.AppendEvent(&orchestratorv1.Event{Type: orchestratorv1.EventType_EVENT_TYPE_JOB_QUEUED, Message: fmt.Sprint("event ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readMeta(t *testing.T, path string) meta {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	m0, ok0 := parseMeta(buf)
	if _, err := f.ReadAt(buf, int64(m0.pageSize)); err != nil {
		t.Fatal(err)
	}
	m1, ok1 := parseMeta(buf)
	if !ok0 || !ok1 {
		t.Fatal("test database has an invalid meta page")
	}
	if m1.txid > m0.txid {
		return m1
	}
	return m0
}

// bucketRoot is the root page of a (non-inline) bucket of an intact file.
func bucketRoot(t *testing.T, path string, name []byte) int64 {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var root int64
	_ = b.View(func(tx *bolt.Tx) error { root = int64(tx.Bucket(name).RootPage()); return nil })
	if root == 0 {
		t.Fatalf("bucket %s is inline", name)
	}
	return root
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func copyTo(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// checkRecovered opens a damaged file and checks that it was moved aside (byte for byte),
// a fresh database serves reads and writes, and the recovery is told. It returns the db.
func checkRecovered(t *testing.T, path string) *DB {
	t.Helper()
	damaged, _ := os.ReadFile(path)
	d, err := Open(path, Options{Now: clock, LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("open a damaged file: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	rec := d.Recovered()
	if rec == nil {
		t.Fatal("a damaged file was opened as if it were sound")
	}
	if want := path + ".corrupt-20250304T050607Z"; rec.MovedTo != want {
		t.Fatalf("moved to %q, want %q", rec.MovedTo, want)
	}
	if moved, err := os.ReadFile(rec.MovedTo); err != nil || !bytes.Equal(moved, damaged) {
		t.Fatalf("the damaged file is not kept as it was: %v", err)
	}
	if !strings.Contains(d.HealthDetail(), "moved to "+rec.MovedTo) {
		t.Fatalf("health detail %q does not tell the recovery", d.HealthDetail())
	}
	if err := d.PutJob(testJob(1000)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.ListJobs("", 1000, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.AppendEvent(&orchestratorv1.Event{Message: "after"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LastEvents(1000); err != nil {
		t.Fatal(err)
	}
	return d
}

func savedHosts(t *testing.T, d *DB) []string {
	t.Helper()
	states, err := d.SavedStates("")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, s := range states {
		if !proto.Equal(s.GetLlmConfig(), savedState(s.GetHost()).GetLlmConfig()) {
			t.Fatalf("restored state of %q changed: %v", s.GetHost(), s)
		}
		hosts = append(hosts, s.GetHost())
	}
	return hosts
}

// Regression: a truncated state.db made the orchestrator panic at start (a crash loop
// under systemd). Every truncation — to nothing, inside the meta pages, anywhere in the
// data — opens, moves the file aside and starts fresh; the saved LLM states are restored
// whenever the page that holds them survived.
func TestTruncatedStateDBDoesNotPanicAtStart(t *testing.T) {
	orig := buildDB(t)
	m := readMeta(t, orig)
	ps := int64(m.pageSize)
	hwm := int64(m.pgid) * ps
	rootEnd := (int64(m.root) + 1) * ps
	if rootEnd >= hwm {
		t.Fatalf("the root page (%d) is the last page: the test needs another layout", m.root)
	}
	cuts := []int64{0, 100, ps, 2*ps + 10, int64(m.root) * ps, rootEnd, hwm / 2, hwm - ps, hwm - 1}
	restored := 0
	for _, cut := range cuts {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			path := copyTo(t, orig)
			if err := os.Truncate(path, cut); err != nil {
				t.Fatal(err)
			}
			d := checkRecovered(t, path)
			hosts := savedHosts(t, d)
			rec := d.Recovered()
			t.Logf("truncated to %d of %d bytes: %s", cut, hwm, rec)
			if cut >= rootEnd {
				if !slices.Equal(hosts, []string{"", "gpu-box"}) {
					t.Fatalf("the saved states were readable but restored %q", hosts)
				}
				restored++
			}
			if rec.SavedStates != len(hosts) {
				t.Fatalf("recovery counts %d saved states, %d are there", rec.SavedStates, len(hosts))
			}
		})
	}
	if restored == 0 {
		t.Fatal("no truncation kept the saved states")
	}
}

// Regression: a corrupt data page made bbolt panic. Bits flipped in the jobs bucket's
// branch page (its header, or its element table) are found at open: the file is moved
// aside, the saved LLM states (in another page) are restored first, and the jobs and
// events still readable come along.
func TestBitFlippedDataPageIsMovedAsideAndSavedStatesRestored(t *testing.T) {
	orig := buildDB(t)
	ps := int64(readMeta(t, orig).pageSize)
	root := bucketRoot(t, orig, bucketJobs)
	for name, damage := range map[string]func(path string){
		"page header": func(path string) { writeAt(t, path, root*ps+8, []byte{0xff, 0x7f}) }, // flags
		"elements":    func(path string) { writeAt(t, path, root*ps+pageHeaderSize, bytes.Repeat([]byte{0xab}, 256)) },
		"one bit": func(path string) {
			b := make([]byte, 1)
			f, _ := os.Open(path)
			f.ReadAt(b, root*ps+pageHeaderSize+8+7) // the high byte of the first child's page id
			f.Close()
			writeAt(t, path, root*ps+pageHeaderSize+8+7, []byte{b[0] ^ 0x40})
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := copyTo(t, orig)
			damage(path)
			d := checkRecovered(t, path)
			if hosts := savedHosts(t, d); !slices.Equal(hosts, []string{"", "gpu-box"}) {
				t.Fatalf("saved states restored: %q", hosts)
			}
			rec := d.Recovered()
			t.Logf("%s: %s", name, rec)
			if rec.Events != 500 {
				t.Fatalf("events restored: %d of 500 (their pages were intact)", rec.Events)
			}
			// New events continue after the restored ones.
			ev := &orchestratorv1.Event{Message: "next"}
			if err := d.AppendEvent(ev); err != nil || ev.Id != 502 {
				t.Fatalf("next event id %d (%v), want 502", ev.Id, err)
			}
		})
	}
}

// Both meta pages damaged: nothing can be read; the orchestrator still starts, fresh.
func TestBitFlippedMetaPagesStartFresh(t *testing.T) {
	path := copyTo(t, buildDB(t))
	ps := int64(readMeta(t, path).pageSize)
	writeAt(t, path, pageHeaderSize, []byte{0x00})    // meta 0 magic
	writeAt(t, path, ps+pageHeaderSize+12, []byte{1}) // meta 1 flags: checksum fails
	d := checkRecovered(t, path)
	if !strings.Contains(d.Recovered().Reason, "meta") {
		t.Fatalf("reason %q", d.Recovered().Reason)
	}
	if n := len(savedHosts(t, d)); n != 0 {
		t.Fatalf("%d states from a file without meta", n)
	}
}

// Regression: one bad record made ListJobs and WatchEvents (EventsAfter, LastEvents) fail
// entirely. A job and an event whose bytes no longer decode are skipped and counted; the
// file itself is sound, so it is kept.
func TestOneBadRecordIsSkippedNotFatalToListings(t *testing.T) {
	path := copyTo(t, buildDB(t))
	data, _ := os.ReadFile(path)
	badJob, _ := proto.Marshal(testJob(150))
	if bytes.Count(data, badJob) == 0 {
		t.Fatal("job record not found in the file")
	}
	// 0xff starts a tag of wire type 7, which does not exist: the record does not decode.
	data = bytes.ReplaceAll(data, badJob, append([]byte{0xff}, badJob[1:]...))
	evs := func() []byte {
		d, err := Open(copyTo(t, buildDB(t)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		e, _ := d.EventsAfter(249, 1)
		b, _ := proto.Marshal(e[0])
		return b
	}()
	if bytes.Count(data, evs) == 0 {
		t.Fatal("event record not found in the file")
	}
	data = bytes.ReplaceAll(data, evs, append([]byte{0xff}, evs[1:]...))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Recovered() != nil {
		t.Fatalf("a sound file with one bad record was moved aside: %v", d.Recovered())
	}
	jobs, _, err := d.ListJobs("", 1000, nil)
	if err != nil || len(jobs) != 299 {
		t.Fatalf("ListJobs: %d jobs, %v; want the 299 good ones", len(jobs), err)
	}
	n := 0
	if err := d.AllJobs(func(*orchestratorv1.Job) error { n++; return nil }); err != nil || n != 299 {
		t.Fatalf("AllJobs: %d, %v", n, err)
	}
	after, err := d.EventsAfter(0, 1000)
	if err != nil || len(after) != 499 {
		t.Fatalf("EventsAfter: %d events, %v", len(after), err)
	}
	last, err := d.LastEvents(1000)
	if err != nil || len(last) != 499 {
		t.Fatalf("LastEvents: %d events, %v", len(last), err)
	}
	if _, err := d.Job(testJob(150).Id); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("Job of the bad record: %v, want ErrCorruptRecord", err)
	}
	if d.BadRecords() != 2 || !strings.Contains(d.HealthDetail(), "2 unreadable record(s) skipped") {
		t.Fatalf("bad records %d, health %q", d.BadRecords(), d.HealthDetail())
	}
	// The bad job can be deleted.
	if err := d.DeleteJob(testJob(150).Id); err != nil {
		t.Fatal(err)
	}
}

// Regression: a data page damaged under a running orchestrator panicked the WatchEvents
// handler. The access fails with ErrCorrupt (counted, told in the health detail); the
// process goes on, and the other buckets still serve.
func TestPageDamagedWhileRunningFailsTheAccessNotTheProcess(t *testing.T) {
	path := copyTo(t, buildDB(t))
	ps := int64(readMeta(t, path).pageSize)
	root := bucketRoot(t, path, bucketEvents)
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The file is mapped: writing it changes what bbolt reads.
	writeAt(t, path, root*ps+pageHeaderSize, bytes.Repeat([]byte{0xab}, 512))
	for name, read := range map[string]func() error{
		"LastEvents":  func() error { _, err := d.LastEvents(100); return err },
		"EventsAfter": func() error { _, err := d.EventsAfter(10, 100); return err },
	} {
		if err := read(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s on a damaged page: %v, want ErrCorrupt", name, err)
		}
	}
	if d.Faults() != 2 || !strings.Contains(d.HealthDetail(), "2 database access(es) met a damaged file") {
		t.Fatalf("faults %d, health %q", d.Faults(), d.HealthDetail())
	}
	if s, err := d.SavedState("gpu-box"); err != nil || s == nil {
		t.Fatalf("saved state after the fault: %v %v", s, err)
	}
	// The next start moves it aside.
	d.Close()
	d2 := checkRecovered(t, path)
	if hosts := savedHosts(t, d2); len(hosts) != 2 {
		t.Fatalf("saved states restored: %q", hosts)
	}
}
