package modelstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Request asks for one model.
type Request struct {
	ID       string // optional; derived from Name, else from the main file name
	Name     string // display name; the id when empty
	PresetID string // the preset it comes from, recorded
	Parts    []Part // one for an llm; the named parts of a diffusion model
	// Token is sent as "Authorization: Bearer" to the sources of this request
	// (gated Hugging Face repos). It is never logged nor stored.
	Token string
}

// Download fetches every file of a model one after another, with one
// aggregate progress, and stores its record. Files already complete in the
// model's directory with the right checksum (or, without one, the size the
// server reports) are reused; a .partial file is resumed when a strong ETag or
// the sha256 guards it, and downloaded again whole otherwise. When ctx is
// canceled (or CancelDownload is called) the download stops and leaves only
// resumable .partial files and completed parts; a download that fills the disk
// removes its partial file (ErrInsufficientSpace, telling the space needed).
func (s *Store) Download(ctx context.Context, req Request, onProgress ProgressFunc) (rec *Record, err error) {
	jobs, id, err := s.plan(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	op := &operation{download: true, cancel: cancel, done: make(chan struct{})}
	if err := s.claim(id, op); err != nil {
		return nil, err
	}
	defer s.release(id, op)

	defer func() {
		if err != nil {
			_ = s.dir.Remove(id) // only succeeds when nothing resumable is left
			if ctx.Err() != nil && !errors.Is(err, ErrCanceled) {
				err = fmt.Errorf("%w: %w", ErrCanceled, err)
			}
			s.log.Warn("model download failed", "id", id, "err", err)
		}
	}()
	s.log.Info("model download started", "id", id, "type", s.typ, "files", len(jobs))

	total, err := s.prepare(ctx, id, jobs, req.Token)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", id, err)
	}
	tr := newProgressTracker(onProgress, s.now, s.interval, id, len(jobs), len(req.Parts), total)
	files := make([]FileRecord, 0, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		tr.startFile(i+1, j.part, j.component, j.name)
		if j.reused != nil {
			s.log.Info("reusing file already present", "id", id, "file", j.name)
			files = append(files, *j.reused)
			tr.completeFile(j.reused.Size)
			continue
		}
		fr, err := s.fetchFile(ctx, id, j, req.Token, tr)
		if err != nil {
			return nil, fmt.Errorf("download %s (%s %s): %w", id, j.component, j.name, err)
		}
		tr.completeFile(fr.Size)
		files = append(files, fr)
	}

	for _, f := range files {
		if err := s.checkWhole(rel(id, f.Name)); err != nil {
			for _, g := range files {
				removeQuietly(s.dir, rel(id, g.Name))
			}
			return nil, fmt.Errorf("download %s: %w", id, err)
		}
	}
	name := req.Name
	if name == "" {
		name = id
	}
	rec = &Record{ID: id, Name: name, Type: s.typ, Files: files, DownloadedAt: s.now().UTC(), PresetID: req.PresetID}
	if m := rec.MainFile(); m != nil {
		rec.SourceURL = m.URL
		if strings.HasSuffix(strings.ToLower(m.Name), ".gguf") {
			info, gerr := s.readGGUF(id, m.Name)
			if gerr != nil {
				s.log.Warn("no GGUF metadata", "id", id, "err", gerr)
				rec.GGUFError = gerr.Error()
			}
			rec.GGUF = info
		}
	}
	if err := writeJSONAtomic(s.dir, rel(id, recordName), rec); err != nil {
		return nil, fmt.Errorf("write record of %s: %w", id, err)
	}
	s.log.Info("model downloaded", "id", id, "type", s.typ, "bytes", rec.Size())
	tr.finish(rec)
	return rec, nil
}

// plan validates a request and lists the files to fetch.
func (s *Store) plan(req Request) ([]fileJob, string, error) {
	comps := make([]string, len(req.Parts))
	var jobs []fileJob
	for i, p := range req.Parts {
		js, err := s.resolve(p)
		if err != nil {
			return nil, "", err
		}
		for k := range js {
			js[k].part = i
		}
		comps[i] = js[0].component
		jobs = append(jobs, js...)
	}
	if err := validateComponents(s.typ, comps); err != nil {
		return nil, "", err
	}
	names := map[string]bool{}
	for _, j := range jobs {
		if names[j.name] {
			return nil, "", fmt.Errorf("%w: two parts use the file name %q", ErrInvalidArgument, j.name)
		}
		names[j.name] = true
	}
	id := req.ID
	if id != "" {
		if err := ValidateID(id); err != nil {
			return nil, "", err
		}
		return jobs, id, nil
	}
	base := req.Name
	if base == "" {
		for _, j := range jobs {
			if j.component == ComponentModel || j.component == ComponentDiffusionModel {
				base = j.name
				break
			}
		}
	}
	id, err := DeriveID(base)
	if err != nil {
		return nil, "", err
	}
	return jobs, id, nil
}

// prepare finds reusable files, asks the sources for sizes, and checks that
// the rest fits on the disk. It returns the total size of the model as far
// as known. A file or partial file that is a link out of the store is
// removed (the link itself), never read: the download replaces it.
func (s *Store) prepare(ctx context.Context, id string, jobs []fileJob, token string) (int64, error) {
	var need uint64
	var total int64
	defer func() {
		for _, j := range jobs {
			if j.reused != nil { // a stale partial of a reused file is of no use
				removeQuietly(s.dir, rel(id, j.name+partialSuffix), rel(id, j.name+metaSuffix))
			}
		}
	}()
	for i := range jobs {
		j := &jobs[i]
		final := rel(id, j.name)
		fi, statErr := s.dir.Stat(final)
		if isEscape(statErr) {
			if err := s.removeOutsideLink(final); err != nil {
				return 0, err
			}
		}
		present := statErr == nil && fi.Mode().IsRegular()
		if present && j.sha256 != "" {
			sum, size, err := s.hashFile(ctx, final)
			if err != nil {
				return 0, err
			}
			if sum == j.sha256 {
				j.reused = &FileRecord{Component: j.component, Name: j.name, Size: size, SHA256: sum, URL: redactURL(j.url)}
				total += size
				continue
			}
		}
		info, err := s.head(ctx, j, token)
		if err != nil {
			return 0, err
		}
		j.size = info.size
		if present && j.sha256 == "" && info.size >= 0 && fi.Size() == info.size {
			sum, size, err := s.hashFile(ctx, final)
			if err != nil {
				return 0, err
			}
			j.reused = &FileRecord{Component: j.component, Name: j.name, Size: size, SHA256: sum, URL: redactURL(j.url)}
			total += size
			continue
		}
		if present {
			s.log.Info("replacing a file that does not match its source", "file", j.name)
			if err := s.dir.Remove(final); err != nil {
				return 0, fmt.Errorf("remove stale %s: %w", j.name, outside(err))
			}
		}
		if info.size < 0 {
			continue // counted once the GET tells the size
		}
		total += info.size
		var have int64
		if pi, err := s.dir.Lstat(final + partialSuffix); err == nil && pi.Mode().IsRegular() {
			have = pi.Size()
		}
		if info.size > have {
			need += uint64(info.size - have)
		}
	}
	if err := s.checkSpace(s.abs(id), need); err != nil {
		return 0, err
	}
	return total, nil
}

// removeOutsideLink removes a link out of the store found where a file of the
// store goes (the link itself: what it points to is left alone), and says so.
func (s *Store) removeOutsideLink(name string) error {
	s.log.Warn("removing a link that leads out of the model store", "path", s.abs(name))
	if err := s.dir.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", s.abs(name), outside(err))
	}
	return nil
}

// CancelDownload stops the download of a model and waits until it has
// stopped. It returns ErrNoDownload when none runs for id.
func (s *Store) CancelDownload(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	s.mu.Lock()
	op, ok := s.busy[id]
	s.mu.Unlock()
	if !ok || !op.download {
		return fmt.Errorf("%w: %s", ErrNoDownload, id)
	}
	op.cancel()
	select {
	case <-op.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ActiveDownloads lists the ids being downloaded.
func (s *Store) ActiveDownloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, op := range s.busy {
		if op.download {
			ids = append(ids, id)
		}
	}
	return ids
}
