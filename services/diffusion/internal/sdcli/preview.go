package sdcli

import (
	"bytes"
	"os"
	"sync"
	"time"
)

// Preview is one preview image sd-cli wrote while sampling, downscaled.
type Preview struct {
	// PNG is at most MaxPreviewSide pixels on its long side, Width x Height.
	PNG           []byte
	Width, Height int
	// Step is the sampling step it shows (1-based, of image ImageIndex of the batch).
	Step       int
	ImageIndex int
	// Written is when sd-cli finished writing the file (its modification time); Read is when
	// the service read it.
	Written, Read time.Time
}

// previewWatcher follows the preview file of one run. sd-cli rewrites the file in place
// (open with O_TRUNC, write, close) just before it prints the step bar of that step, so the
// watcher reads the file when a step bar arrives: it then holds that step's preview (or,
// when sd-cli is already one step further, the next one's, or a partial file that fails to
// decode and is skipped). The read is cheap and happens on the output goroutine; decoding and
// downscaling happen on the watcher's own goroutine, which keeps only the latest file it has
// not processed yet: when it is slower than the engine, older previews are dropped.
type previewWatcher struct {
	path     string
	interval int
	on       func(Preview)

	mu      sync.Mutex
	pending *rawPreview
	last    []byte // bytes of the latest file read, to skip a step whose file did not change
	wake    chan struct{}
	closed  chan struct{}
	done    chan struct{}
}

type rawPreview struct {
	data          []byte
	step, image   int
	written, read time.Time
}

func newPreviewWatcher(path string, interval int, on func(Preview)) *previewWatcher {
	w := &previewWatcher{path: path, interval: max(interval, 1), on: on, wake: make(chan struct{}, 1), closed: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// stepped is called when the step bar of step of steps (of batch image image, 0-based) was
// read. Only every interval-th step (and the last) has its preview read: sd-cli master-827
// rewrites the file at every step whatever --preview-interval says.
func (w *previewWatcher) stepped(step, steps, image int) {
	if step%w.interval != 0 && step != steps {
		return
	}
	st, err := os.Stat(w.path)
	if err != nil {
		return // not written (yet): an interval above 1, or a method the model cannot do
	}
	data, err := os.ReadFile(w.path)
	now := time.Now()
	if err != nil || len(data) == 0 {
		return
	}
	w.mu.Lock()
	if bytes.Equal(data, w.last) {
		w.mu.Unlock()
		return // not rewritten at this step (--preview-interval)
	}
	w.last = data
	w.pending = &rawPreview{data: data, step: step, image: image, written: st.ModTime(), read: now}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *previewWatcher) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-w.closed:
			w.process() // the last step's preview still goes out before the result
			return
		}
		w.process()
	}
}

func (w *previewWatcher) process() {
	w.mu.Lock()
	raw := w.pending
	w.pending = nil
	w.mu.Unlock()
	if raw == nil {
		return
	}
	png, width, height, err := thumbnail(raw.data, MaxPreviewSide)
	if err != nil {
		return // caught mid-rewrite: the next step brings a whole one
	}
	w.on(Preview{PNG: png, Width: width, Height: height, Step: raw.step, ImageIndex: raw.image, Written: raw.written, Read: raw.read})
}

// close stops the watcher after it has handed over the preview it holds.
func (w *previewWatcher) close() {
	close(w.closed)
	<-w.done
}
