package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// partialMeta is stored next to a .partial file: what an If-Range request
// needs to resume it safely.
type partialMeta struct {
	URL          string `json:"url"` // without query string
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Size         int64  `json:"size"` // -1 when unknown
}

// remoteInfo is what a HEAD request tells about a file.
type remoteInfo struct {
	size int64 // -1 when unknown
}

func (s *Store) tokenFor(job *fileJob, token string) string {
	if token != "" {
		return token
	}
	if job.hfHost {
		return s.hfToken
	}
	return ""
}

func (s *Store) newRequest(ctx context.Context, method string, job *fileJob, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, job.url.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if t := s.tokenFor(job, token); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	req.Header.Set("User-Agent", "genailab-modelstore")
	// Sizes and offsets must be of the stored bytes, not of a compressed stream.
	req.Header.Set("Accept-Encoding", "identity")
	return req, nil
}

// head asks for the size of a file. A server that does not answer HEAD
// (405, 501) leaves the size unknown; 404 and the like are errors.
func (s *Store) head(ctx context.Context, job *fileJob, token string) (remoteInfo, error) {
	req, err := s.newRequest(ctx, http.MethodHead, job, token)
	if err != nil {
		return remoteInfo{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return remoteInfo{}, canceled(ctx)
		}
		return remoteInfo{}, fmt.Errorf("%w: HEAD %s: %v", ErrSourceUnavailable, redactURL(job.url), stripURLFromErr(err))
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return remoteInfo{size: resp.ContentLength}, nil
	case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		return remoteInfo{size: -1}, nil
	default:
		return remoteInfo{}, &SourceError{StatusCode: resp.StatusCode, URL: redactURL(job.url)}
	}
}

func canceled(ctx context.Context) error {
	return fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
}

// stripURLFromErr keeps a transport error's cause without the URL, which may
// carry signed query parameters.
func stripURLFromErr(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// fetchFile downloads one file into the directory of model id, resuming a
// .partial left by an earlier attempt, and retrying interrupted transfers.
func (s *Store) fetchFile(ctx context.Context, id string, job *fileJob, token string, tr *progressTracker) (FileRecord, error) {
	restarted := false
	for attempt := 0; ; attempt++ {
		fr, err := s.fetchOnce(ctx, id, job, token, tr)
		if err == nil {
			return fr, nil
		}
		if errors.Is(err, errResumeMismatch) && !restarted {
			// The resumed file is not the file: its partial is gone; download it whole,
			// once, without counting it as a retry.
			restarted = true
			attempt--
			s.log.Warn("resumed download does not match the file; downloading it again from the start", "file", job.name, "err", err)
			continue
		}
		var se *SourceError
		retry := errors.Is(err, ErrInterrupted) || (errors.As(err, &se) && se.Temporary())
		if !retry || attempt >= s.retries || ctx.Err() != nil {
			return FileRecord{}, err
		}
		wait := s.backoff << attempt
		s.log.Warn("download interrupted; retrying", "file", job.name, "attempt", attempt+1, "wait", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return FileRecord{}, canceled(ctx)
		}
	}
}

// fetchOnce makes one attempt at a file. Every path is relative to s.dir. The
// partial file is resumed only when it is a regular file of its own (not a link,
// not a hard link shared with another file); anything else is removed — the
// name, never what it points to — and the file is created anew (O_EXCL), so
// that a link planted at <file>.partial cannot make the download write elsewhere.
func (s *Store) fetchOnce(ctx context.Context, id string, job *fileJob, token string, tr *progressTracker) (FileRecord, error) {
	final := rel(id, job.name)
	partial := final + partialSuffix
	metaPath := final + metaSuffix
	src := redactURL(job.url)

	var offset int64
	if fi, err := s.dir.Lstat(partial); err == nil {
		if ownRegularFile(fi) {
			offset = fi.Size()
		} else {
			s.log.Warn("partial download is not a regular file of its own (a link?); removing it and starting over",
				"path", s.abs(partial), "mode", fi.Mode().String())
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return FileRecord{}, fmt.Errorf("resume %s: %w", s.abs(partial), outside(err))
	}
	// A partial file is resumed only with a strong validator: a strong ETag (sent as
	// If-Range: a server whose file changed answers the whole new file), or a known sha256,
	// checked at the end (a resume that does not match is downloaded again whole).
	// Last-Modified alone is not one: a file changed within the same second, or by a server
	// that keeps the date, would be spliced from two versions.
	validator, etag := "", ""
	if offset > 0 {
		var m partialMeta
		same := false
		if b, err := s.dir.ReadFile(metaPath); err == nil && json.Unmarshal(b, &m) == nil && m.URL == src {
			same = true
			switch {
			case strongETag(m.ETag):
				validator, etag = m.ETag, m.ETag
			case job.sha256 != "":
				validator = m.LastModified // a server that honours it answers 200 on a change
			}
		}
		switch {
		case !same || (validator == "" && job.sha256 == ""):
			s.log.Info("partial download cannot be resumed safely (no strong ETag, no known sha256); starting over", "file", job.name)
			offset = 0
		case m.Size >= 0 && offset > m.Size:
			s.log.Info("partial download is longer than the file; starting over", "file", job.name)
			offset = 0
		}
	}
	resumedFrom := offset
	tr.setDone(offset)

	// The watchdog cancels the request when no byte arrives for the idle timeout.
	reqCtx, cancelReq := context.WithCancelCause(ctx)
	defer cancelReq(nil)
	watchdog := time.AfterFunc(s.idle, func() { cancelReq(errStalled) })
	defer watchdog.Stop()
	req, err := s.newRequest(reqCtx, http.MethodGet, job, token)
	if err != nil {
		return FileRecord{}, err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if validator != "" {
			req.Header.Set("If-Range", validator)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return FileRecord{}, canceled(ctx)
		}
		if errors.Is(context.Cause(reqCtx), errStalled) {
			err = errStalled
		}
		return FileRecord{}, fmt.Errorf("%w: GET %s: %v", ErrInterrupted, src, stripURLFromErr(err))
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			s.log.Info("server sent the whole file instead of the rest; starting over", "file", job.name)
		}
		offset = 0
		total = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			removeQuietly(s.dir, partial, metaPath)
			return FileRecord{}, fmt.Errorf("%w: %s answered range %q for offset %d", ErrInterrupted, src, resp.Header.Get("Content-Range"), offset)
		}
		if got := resp.Header.Get("ETag"); etag != "" && got != "" && got != etag {
			// The rest of another version: the server ignored If-Range.
			removeQuietly(s.dir, partial, metaPath)
			return FileRecord{}, fmt.Errorf("%w: %s answered the rest of ETag %s for a partial file of ETag %s", errResumeMismatch, src, got, etag)
		}
		total = size
		if total < 0 && resp.ContentLength >= 0 {
			total = offset + resp.ContentLength
		}
	case http.StatusRequestedRangeNotSatisfiable:
		removeQuietly(s.dir, partial, metaPath)
		return FileRecord{}, fmt.Errorf("%w: %s refused the range from %d", ErrInterrupted, src, offset)
	default:
		return FileRecord{}, &SourceError{StatusCode: resp.StatusCode, URL: src}
	}
	tr.setDone(offset)
	if total >= 0 && job.size != total {
		tr.addTotal(total - max(job.size, 0))
		job.size = total
	}
	if total >= 0 {
		if err := s.checkSpace(s.abs(id), uint64(total-offset)); err != nil {
			return FileRecord{}, err
		}
	}
	if err := writeJSONAtomic(s.dir, metaPath, partialMeta{
		URL: src, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Size: total,
	}); err != nil {
		return FileRecord{}, fmt.Errorf("write resume metadata: %w", err)
	}

	h := sha256.New()
	flags := os.O_WRONLY
	if offset == 0 {
		// Start from a new file: whatever stands at the name (an old partial, a
		// link) is removed, and O_EXCL refuses one planted in between.
		if err := s.dir.Remove(partial); err != nil && !errors.Is(err, os.ErrNotExist) {
			return FileRecord{}, fmt.Errorf("remove %s: %w", s.abs(partial), outside(err))
		}
		flags |= os.O_CREATE | os.O_EXCL
	} else if err := s.hashPrefix(ctx, h, partial, offset); err != nil {
		return FileRecord{}, err
	}
	f, err := s.dir.OpenFile(partial, flags, 0o644)
	if err != nil {
		return FileRecord{}, fmt.Errorf("open %s: %w", s.abs(partial), outside(err))
	}
	written, copyErr := s.copyBody(ctx, f, h, resp.Body, offset, tr, func() { watchdog.Reset(s.idle) })
	syncErr := f.Sync()
	closeErr := f.Close()
	if err := cmpErr(copyErr, syncErr, closeErr); noSpace(err) {
		// A full disk: the partial file would only keep it full; it is removed, and the
		// error says how much the file needs.
		removeQuietly(s.dir, partial, metaPath)
		return FileRecord{}, s.spaceError(id, job.name, offset+written, total, err)
	}
	if copyErr != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(reqCtx), errStalled) {
			return FileRecord{}, fmt.Errorf("%w: %s after %d bytes: %v", ErrInterrupted, src, offset+written, errStalled)
		}
		return FileRecord{}, copyErr
	}
	if err := errors.Join(syncErr, closeErr); err != nil {
		return FileRecord{}, fmt.Errorf("write %s: %w", s.abs(partial), err)
	}
	size := offset + written
	if total >= 0 && size < total {
		return FileRecord{}, fmt.Errorf("%w: %s ended after %d of %d bytes", ErrInterrupted, src, size, total)
	}
	if total >= 0 && size > total {
		removeQuietly(s.dir, partial, metaPath)
		return FileRecord{}, fmt.Errorf("%w: %s sent %d bytes, more than its size %d", ErrSourceRejected, src, size, total)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if job.sha256 != "" && sum != job.sha256 {
		removeQuietly(s.dir, partial, metaPath)
		if resumedFrom > 0 {
			return FileRecord{}, fmt.Errorf("%w: %s resumed at byte %d: expected sha256 %s, got %s (partial deleted)", errResumeMismatch, job.name, resumedFrom, job.sha256, sum)
		}
		return FileRecord{}, fmt.Errorf("%w: %s: expected sha256 %s, got %s (file deleted)", ErrChecksumMismatch, job.name, job.sha256, sum)
	}
	// rename replaces whatever stands at final (a link included), never writing
	// through it.
	if err := s.dir.Rename(partial, final); err != nil {
		return FileRecord{}, fmt.Errorf("move %s into place: %w", job.name, outside(err))
	}
	if err := syncDir(s.dir, id); err != nil {
		return FileRecord{}, fmt.Errorf("sync %s: %w", s.abs(id), err)
	}
	removeQuietly(s.dir, metaPath)
	return FileRecord{Component: job.component, Name: job.name, Size: size, SHA256: sum, URL: src}, nil
}

var errStalled = errors.New("no data received within the idle timeout")

// errResumeMismatch is a resumed download that is not the file (the file changed since
// the partial was written); fetchFile downloads it again whole, once.
var errResumeMismatch = fmt.Errorf("%w: the resumed download does not match the file", ErrChecksumMismatch)

// strongETag reports whether an ETag is a strong validator (RFC 9110 8.8.3): quoted, not W/.
func strongETag(tag string) bool {
	return len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"'
}

// noSpace reports whether err is a full disk or an exhausted quota.
func noSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) }

// cmpErr is the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// spaceError is the error of a file whose download filled the disk: how much it needed,
// how much was written, what is free now.
func (s *Store) spaceError(id, name string, written, total int64, cause error) error {
	done := humanBytes(uint64(max(written, 0)))
	need := fmt.Sprintf("more than the %s written (the server told no size)", done)
	if total >= 0 {
		need = humanBytes(uint64(total))
	}
	free := "unknown"
	if n, err := s.freeSpace(s.abs(id)); err == nil {
		free = humanBytes(n)
	}
	return fmt.Errorf("%w: the disk filled while downloading %s after %s: it needs %s plus the %s reserve (-min-free-bytes), %s free now; the partial file was removed: %w",
		ErrInsufficientSpace, name, done, need, humanBytes(s.reserve(s.abs(id))), free, cause)
}

// hashPrefix feeds the first n bytes of an existing partial file (relative to
// s.dir) to h.
func (s *Store) hashPrefix(ctx context.Context, h hash.Hash, name string, n int64) error {
	f, err := s.dir.Open(name)
	if err != nil {
		return fmt.Errorf("resume %s: %w", s.abs(name), outside(err))
	}
	defer f.Close()
	got, err := io.CopyN(h, ctxReader{ctx: ctx, r: f}, n)
	if ctx.Err() != nil {
		return canceled(ctx)
	}
	if err != nil || got != n {
		return fmt.Errorf("%w: resume %s: read %d of %d bytes: %v", ErrInterrupted, s.abs(name), got, n, err)
	}
	return nil
}

// ownRegularFile reports whether fi (from Lstat) is a regular file with no other
// name: not a link, and not a hard link shared with a file elsewhere, whose
// content a resumed download would overwrite.
func ownRegularFile(fi os.FileInfo) bool {
	if !fi.Mode().IsRegular() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || st.Nlink <= 1
}

// copyBody appends the response body to f at offset, hashing and reporting
// progress. A read error is an interruption (resumable); a write error is not.
func (s *Store) copyBody(ctx context.Context, f *os.File, h hash.Hash, body io.Reader, offset int64, tr *progressTracker, alive func()) (int64, error) {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek %s: %w", f.Name(), err)
	}
	var w io.Writer = f
	if s.wrapWriter != nil {
		w = s.wrapWriter(f)
	}
	buf := make([]byte, 256<<10)
	var written int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			alive()
			if _, err := w.Write(buf[:n]); err != nil {
				// A full disk (ENOSPC, EDQUOT) is told by fetchOnce.
				if pe := (*os.PathError)(nil); errors.As(err, &pe) {
					return written, err // it names the file
				}
				return written, fmt.Errorf("write %s: %w", f.Name(), err)
			}
			h.Write(buf[:n])
			written += int64(n)
			tr.add(int64(n))
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return written, canceled(ctx)
			}
			return written, fmt.Errorf("%w: %s after %d bytes: %v", ErrInterrupted, filepath.Base(f.Name()), offset+written, rerr)
		}
	}
}

// parseContentRange reads "bytes start-end/size"; size is -1 for "*".
func parseContentRange(v string) (start, size int64, ok bool) {
	v, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		if size, err = strconv.ParseInt(strings.TrimSpace(sz), 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, size, true
}

// checkSpace refuses when need bytes would leave less than the reserve free.
func (s *Store) checkSpace(dir string, need uint64) error {
	free, err := s.freeSpace(dir)
	if err != nil {
		return fmt.Errorf("check free space: %w", err)
	}
	if reserve := s.reserve(dir); need+reserve > free {
		return fmt.Errorf("%w: need %s plus the %s reserve (-min-free-bytes), %s available in %s",
			ErrInsufficientSpace, humanBytes(need), humanBytes(reserve), humanBytes(free), s.root)
	}
	return nil
}

// reserve is the free space a download must leave on the file system of dir: MinFreeBytes
// when set, else DefaultMinFreePercent of the volume, at most DefaultMinFreeMax (a small
// disk keeps a small reserve instead of refusing every download).
func (s *Store) reserve(dir string) uint64 {
	if s.minFree > 0 {
		return s.minFree
	}
	total, err := s.volumeSize(dir)
	if err != nil || total == 0 {
		return min(fallbackMinFree, DefaultMinFreeMax)
	}
	return min(total/100*DefaultMinFreePercent, DefaultMinFreeMax)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
