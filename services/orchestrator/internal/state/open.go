package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	orchestratorv1 "github.com/genailab/genailab/gen/orchestrator/v1"
)

// panicError is a panic recovered from bbolt: a damaged page it met, or a fault on the
// mapped file (a page beyond the end of a truncated file).
type panicError struct {
	value any
}

func (e *panicError) Error() string { return fmt.Sprintf("%v: %v", ErrCorrupt, e.value) }
func (e *panicError) Unwrap() error { return ErrCorrupt }

// guard runs fn with faults on the mapped file turned into panics, and every panic into
// a *panicError. bbolt rolls its transaction back while the panic unwinds.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r}
		}
	}()
	return fn()
}

// corruptError is a damaged file found at open.
type corruptError struct{ reason string }

func (e *corruptError) Error() string { return e.reason }

// openDefensively opens the file, checked, or moves a damaged one aside and opens a fresh
// one with what could be read from the damaged one.
func openDefensively(path string, opts Options) (*bolt.DB, *Recovery, error) {
	bo := &bolt.Options{Timeout: opts.LockTimeout}
	b, err := openChecked(path, bo)
	var ce *corruptError
	if err == nil || !errors.As(err, &ce) {
		return b, nil, err
	}
	// b is the damaged database when it opened but failed the check, else nil.
	recs := salvage(b, path, opts)
	if b != nil {
		_ = guard(func() error { return b.Close() })
	}
	rec := &Recovery{Reason: ce.reason, At: opts.Now().UTC()}
	if rec.MovedTo, err = moveAside(path, rec.At); err != nil {
		return nil, nil, fmt.Errorf("the state database %s is damaged (%s) and could not be moved aside: %w", path, ce.reason, err)
	}
	fresh, err := bolt.Open(path, 0o600, bo)
	if err != nil {
		return nil, nil, fmt.Errorf("open a fresh state database %s: %w", path, err)
	}
	if err := initBuckets(fresh); err != nil {
		fresh.Close()
		return nil, nil, fmt.Errorf("init database %s: %w", path, err)
	}
	if err := recs.restore(fresh, rec); err != nil {
		fresh.Close()
		return nil, nil, fmt.Errorf("restore records into the fresh state database %s: %w", path, err)
	}
	return fresh, rec, nil
}

// openChecked opens the file and checks it: its meta pages and size first (so that
// bbolt never reads past the end of a truncated file), then every page reachable, then
// bbolt's own consistency check. A damaged file is a *corruptError; the database is
// returned with it when it opened.
func openChecked(path string, bo *bolt.Options) (*bolt.DB, error) {
	if err := precheck(path); err != nil {
		return nil, err
	}
	var b *bolt.DB
	err := guard(func() error {
		var err error
		b, err = bolt.Open(path, 0o600, bo)
		return err
	})
	if err != nil {
		var pe *panicError
		if errors.As(err, &pe) || errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
			errors.Is(err, berrors.ErrVersionMismatch) || strings.Contains(err.Error(), "file size too small") {
			return nil, &corruptError{reason: "bbolt cannot open it: " + err.Error()}
		}
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := verify(b); err != nil {
		return b, err
	}
	if err := initBuckets(b); err != nil {
		var pe *panicError
		if errors.As(err, &pe) {
			return b, &corruptError{reason: "creating its buckets failed: " + err.Error()}
		}
		b.Close()
		return nil, fmt.Errorf("init database %s: %w", path, err)
	}
	return b, nil
}

// Layout of a bbolt meta page (go.etcd.io/bbolt/internal/common): a 16-byte page header,
// then magic, version, page size, flags (4 bytes each), the root bucket (root page id,
// sequence), the freelist page id, the high-water mark (page count), the txid, and the
// FNV-64a checksum of everything before it.
const (
	pageHeaderSize = 16
	metaSize       = 64
	metaSumOffset  = 56
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
)

type meta struct {
	pageSize uint32
	root     uint64 // the page of the root bucket
	pgid     uint64 // the high-water mark: pages in use
	txid     uint64
}

func parseMeta(buf []byte) (meta, bool) {
	if len(buf) < pageHeaderSize+metaSize {
		return meta{}, false
	}
	m := buf[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.NativeEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return meta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:metaSumOffset])
	if h.Sum64() != le.Uint64(m[metaSumOffset:]) {
		return meta{}, false
	}
	return meta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// precheck reads the meta pages and compares the high-water mark with the file's size: a
// truncated file makes bbolt read beyond the end of its mapping, a fault that no recover
// catches inside bbolt's own goroutines.
func precheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat database %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return &corruptError{reason: "the file is empty (truncated to 0 bytes)"}
	}
	read := func(off int64) (meta, bool) {
		buf := make([]byte, pageHeaderSize+metaSize)
		if n, _ := f.ReadAt(buf, off); n < len(buf) {
			return meta{}, false
		}
		return parseMeta(buf)
	}
	var metas []meta
	m0, ok0 := read(0)
	if ok0 {
		metas = append(metas, m0)
		if m1, ok := read(int64(m0.pageSize)); ok {
			metas = append(metas, m1)
		}
	} else {
		for i := 0; i <= 14; i++ {
			if m1, ok := read(1024 << i); ok {
				metas = append(metas, m1)
				break
			}
		}
	}
	if len(metas) == 0 {
		return &corruptError{reason: fmt.Sprintf("no valid meta page (%d bytes, not a bbolt file or both meta pages damaged)", size)}
	}
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	if need := int64(m.pgid) * int64(m.pageSize); m.pageSize == 0 || size < need {
		return &corruptError{reason: fmt.Sprintf("truncated: the file has %d bytes, its last transaction needs %d", size, need)}
	}
	return nil
}

// verify reads every record of every bucket (guarded: a damaged page panics or faults),
// then runs bbolt's consistency check (safe once every reachable page was read).
func verify(b *bolt.DB) error {
	err := guard(func() error {
		return b.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error { return walk(bk) })
		})
	})
	if err != nil {
		return &corruptError{reason: "reading its records failed: " + err.Error()}
	}
	var problems []string
	err = guard(func() error {
		return b.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				if len(problems) < 5 {
					problems = append(problems, e.Error())
				}
			}
			return nil
		})
	})
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return &corruptError{reason: "bbolt's consistency check failed: " + strings.Join(problems, "; ")}
	}
	return nil
}

func walk(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if child := b.Bucket(k); child != nil {
				return walk(child)
			}
		}
		return nil
	})
}

// moveAside renames the damaged file to <path>.corrupt-<UTC time> (a free name) and
// syncs the directory.
func moveAside(path string, at time.Time) (string, error) {
	base := path + ".corrupt-" + at.Format("20060102T150405Z")
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return dst, nil
}

type kv struct{ k, v []byte }

// salvaged are the records read from a damaged file, per bucket.
type salvaged map[string][]kv

// salvage reads what it can of every bucket, from b when the damaged file opened,
// otherwise from a read-only copy (so that a lock left by a failed open, or the damage,
// never blocks it). Each bucket is read forwards until it fails, then backwards until it
// fails again or meets the records already read.
func salvage(b *bolt.DB, path string, opts Options) salvaged {
	out := salvaged{}
	if b == nil {
		tmp, err := copyFile(path)
		if err != nil {
			opts.Logger.Warn("the damaged state database could not be copied to read what is left", "error", err)
			return out
		}
		defer os.Remove(tmp)
		if precheck(tmp) != nil {
			// Truncated or without meta: bbolt may read past the end; only guarded reads
			// below are attempted, on a copy grown to the size its meta claims.
			growToMeta(tmp)
		}
		err = guard(func() error {
			var err error
			b, err = bolt.Open(tmp, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
			return err
		})
		if err != nil || b == nil {
			opts.Logger.Warn("nothing could be read from the damaged state database", "error", err)
			return out
		}
		defer func() { _ = guard(func() error { return b.Close() }) }()
	}
	for _, name := range allBuckets {
		var got []kv
		seen := map[string]bool{}
		collect := func(k, v []byte) bool {
			if seen[string(k)] {
				return false
			}
			seen[string(k)] = true
			got = append(got, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
			return true
		}
		for _, backwards := range []bool{false, true} {
			_ = guard(func() error {
				return b.View(func(tx *bolt.Tx) error {
					bk := tx.Bucket(name)
					if bk == nil {
						return nil
					}
					c := bk.Cursor()
					first, next := c.First, c.Next
					if backwards {
						first, next = c.Last, c.Prev
					}
					for k, v := first(); k != nil; k, v = next() {
						if v != nil && !collect(k, v) {
							return nil
						}
					}
					return nil
				})
			})
		}
		out[string(name)] = got
	}
	return out
}

// growToMeta extends a truncated copy with zeros to the size its meta page claims, so that
// the pages lost read as zeros (which bbolt refuses with a panic, recovered) instead of
// faulting.
func growToMeta(path string) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, pageHeaderSize+metaSize)
	if n, _ := f.ReadAt(buf, 0); n < len(buf) {
		return
	}
	m, ok := parseMeta(buf)
	if !ok {
		return
	}
	if need := int64(m.pgid) * int64(m.pageSize); need > 0 && need < 1<<34 {
		if fi, err := f.Stat(); err == nil && fi.Size() < need {
			_ = f.Truncate(need)
		}
	}
}

func copyFile(path string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".salvage-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst.Name())
		return "", err
	}
	return dst.Name(), nil
}

// restore writes the salvaged records into the fresh database: the saved LLM states that
// decode, in their own transaction first (they bring the LLM back), then the jobs, events
// and corrections that decode. It counts them in rec.
func (s salvaged) restore(b *bolt.DB, rec *Recovery) error {
	valid := func(name []byte, v []byte) bool {
		switch string(name) {
		case string(bucketSaved):
			return proto.Unmarshal(v, &orchestratorv1.SavedState{}) == nil
		case string(bucketJobs):
			return proto.Unmarshal(v, &orchestratorv1.Job{}) == nil
		case string(bucketEvents):
			return proto.Unmarshal(v, &orchestratorv1.Event{}) == nil
		}
		return true
	}
	count := map[string]*int{
		string(bucketSaved): &rec.SavedStates, string(bucketJobs): &rec.Jobs,
		string(bucketEvents): &rec.Events, string(bucketCorrections): &rec.Corrections,
	}
	write := func(names ...[]byte) error {
		return guard(func() error {
			return b.Update(func(tx *bolt.Tx) error {
				for _, name := range names {
					bk := tx.Bucket(name)
					var maxEvent uint64
					for _, r := range s[string(name)] {
						if !valid(name, r.v) {
							continue
						}
						if err := bk.Put(r.k, r.v); err != nil {
							return err
						}
						*count[string(name)]++
						if string(name) == string(bucketEvents) && len(r.k) == 8 {
							maxEvent = max(maxEvent, binary.BigEndian.Uint64(r.k))
						}
					}
					if maxEvent > 0 {
						// New events continue after the restored ones.
						if err := bk.SetSequence(maxEvent); err != nil {
							return err
						}
					}
				}
				return nil
			})
		})
	}
	if err := write(bucketSaved); err != nil {
		return fmt.Errorf("restore the saved LLM states: %w", err)
	}
	return write(bucketCorrections, bucketJobs, bucketEvents)
}
