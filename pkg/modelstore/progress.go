package modelstore

import (
	"time"
)

// Progress is one report of a download. BytesDone and BytesTotal cover all
// files of the model; BytesTotal is 0 while unknown.
type Progress struct {
	ModelID        string
	Component      string // the part being fetched
	File           string
	ComponentIndex int // 0-based index of the Part being fetched
	ComponentCount int // number of Parts
	FileIndex      int // 1-based index among all files (shards count one each)
	FileCount      int
	BytesDone      int64
	BytesTotal     int64
	BytesPerSecond float64       // over this session, smoothed
	ETA            time.Duration // -1 when unknown
	Done           bool          // the final report: the model is stored
	Record         *Record       // set on the final report
}

// ProgressFunc receives progress reports on the downloading goroutine.
type ProgressFunc func(Progress)

// progressTracker aggregates bytes of all files and throttles reports to one
// per interval, plus the final one.
type progressTracker struct {
	fn       ProgressFunc
	now      func() time.Time
	interval time.Duration

	cur       Progress
	base      int64 // bytes of the files completed
	fileDone  int64 // bytes of the current file
	lastEmit  time.Time
	lastBytes int64
	rate      float64 // smoothed bytes/s
	emitted   bool
}

func newProgressTracker(fn ProgressFunc, now func() time.Time, interval time.Duration, id string, fileCount, partCount int, total int64) *progressTracker {
	return &progressTracker{
		fn: fn, now: now, interval: interval,
		cur: Progress{ModelID: id, FileCount: fileCount, ComponentCount: partCount, BytesTotal: total, ETA: -1},
	}
}

// startFile names the file now fetched.
func (t *progressTracker) startFile(index, part int, component, name string) {
	t.cur.FileIndex, t.cur.ComponentIndex, t.cur.Component, t.cur.File = index, part, component, name
	t.fileDone = 0
}

// setDone puts the done bytes of the current file at n without counting the
// change as transfer (a resumed prefix, a restart from zero).
func (t *progressTracker) setDone(n int64) {
	t.fileDone = n
	t.moveTo(t.base + n)
}

// completeFile closes the current file at its final size; a reused file
// counts here without counting as transfer.
func (t *progressTracker) completeFile(size int64) {
	t.base += size
	t.fileDone = 0
	t.moveTo(t.base)
}

func (t *progressTracker) moveTo(done int64) {
	t.lastBytes += done - t.cur.BytesDone
	t.cur.BytesDone = done
}

// addTotal corrects the total once a server tells a size the HEAD did not.
func (t *progressTracker) addTotal(delta int64) { t.cur.BytesTotal += delta }

// add counts fetched bytes and reports when the interval has passed.
func (t *progressTracker) add(n int64) {
	t.fileDone += n
	t.cur.BytesDone = t.base + t.fileDone
	if t.fn == nil {
		return
	}
	now := t.now()
	if t.emitted && now.Sub(t.lastEmit) < t.interval {
		return
	}
	if t.emitted {
		dt := now.Sub(t.lastEmit).Seconds()
		if dt > 0 {
			inst := float64(t.cur.BytesDone-t.lastBytes) / dt
			if t.rate == 0 {
				t.rate = inst
			} else {
				t.rate = 0.3*inst + 0.7*t.rate
			}
		}
	}
	t.lastEmit, t.lastBytes, t.emitted = now, t.cur.BytesDone, true
	t.cur.BytesPerSecond = t.rate
	t.cur.ETA = -1
	if t.rate > 0 && t.cur.BytesTotal >= t.cur.BytesDone {
		t.cur.ETA = time.Duration(float64(t.cur.BytesTotal-t.cur.BytesDone) / t.rate * float64(time.Second))
	}
	t.fn(t.cur)
}

// finish sends the final report.
func (t *progressTracker) finish(r *Record) {
	if t.fn == nil {
		return
	}
	p := t.cur
	p.Done, p.Record, p.ETA = true, r, 0
	if r != nil {
		p.BytesTotal, p.BytesDone = r.Size(), r.Size()
	}
	t.fn(p)
}
