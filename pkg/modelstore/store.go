package modelstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure a Store.
type Options struct {
	DataDir string // the store lives in DataDir/models/<Type>
	Type    Type

	HTTPClient *http.Client // default: a client with sane timeouts and http(s)-only redirects
	HFBaseURL  string       // default DefaultHFBaseURL
	HFToken    string       // sent only to the Hugging Face host, when a request has no token of its own

	FreeSpace FreeSpaceFunc // default StatfsFreeSpace
	// VolumeSize reports the size of the file system holding a directory (for the default
	// reserve); default StatfsVolumeSize.
	VolumeSize FreeSpaceFunc
	// MinFreeBytes is kept free after a download (the services' -min-free-bytes); 0: 5 %
	// of the volume, at most 1 GiB (DefaultMinFreePercent, DefaultMinFreeMax).
	MinFreeBytes uint64

	// InUse reports whether a running engine uses the model; Delete refuses
	// such a model unless forced. Default: never in use.
	InUse func(id string) bool

	Retries          int           // extra attempts after an interrupted transfer; default 2, <0 for none
	RetryBackoff     time.Duration // first wait between attempts, doubled each time; default 1s
	ProgressInterval time.Duration // at most one report per interval (plus the final); default 100ms
	// IdleTimeout aborts a transfer that received no byte for this long (an
	// interruption: retried and resumable); default 60s.
	IdleTimeout time.Duration

	Logger *slog.Logger
	Now    func() time.Time
}

// Store holds the models of one type. Its methods are safe for concurrent use.
type Store struct {
	typ        Type
	root       string   // DataDir/models/<type>
	dir        *os.Root // root, through which every file of the store is reached (root.go)
	client     *http.Client
	hfBase     string
	hfHost     string
	hfToken    string
	freeSpace  FreeSpaceFunc
	volumeSize FreeSpaceFunc
	minFree    uint64 // 0: the default reserve (reserve)
	inUse      func(string) bool
	retries    int
	backoff    time.Duration
	interval   time.Duration
	idle       time.Duration
	log        *slog.Logger
	now        func() time.Time

	// wrapWriter, when set (tests), wraps the file a download writes to.
	wrapWriter func(io.Writer) io.Writer

	mu   sync.Mutex
	busy map[string]*operation // model id -> download or delete in progress
}

// operation is a download or delete holding a model id.
type operation struct {
	download bool
	cancel   context.CancelFunc
	done     chan struct{}
}

// Open creates the store directory when needed and removes leftovers of
// interrupted deletes and record writes.
func Open(o Options) (*Store, error) {
	if o.Type != TypeLLM && o.Type != TypeDiffusion {
		return nil, fmt.Errorf("%w: model type %q", ErrInvalidArgument, o.Type)
	}
	if o.DataDir == "" {
		return nil, fmt.Errorf("%w: empty data dir", ErrInvalidArgument)
	}
	s := &Store{
		typ:        o.Type,
		root:       filepath.Join(o.DataDir, "models", string(o.Type)),
		client:     o.HTTPClient,
		hfBase:     o.HFBaseURL,
		hfToken:    o.HFToken,
		freeSpace:  o.FreeSpace,
		volumeSize: o.VolumeSize,
		minFree:    o.MinFreeBytes,
		inUse:      o.InUse,
		retries:    o.Retries,
		backoff:    o.RetryBackoff,
		interval:   o.ProgressInterval,
		idle:       o.IdleTimeout,
		log:        o.Logger,
		now:        o.Now,
		busy:       map[string]*operation{},
	}
	if s.client == nil {
		s.client = defaultHTTPClient()
	}
	if s.hfBase == "" {
		s.hfBase = DefaultHFBaseURL
	}
	u, err := url.Parse(s.hfBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: hugging face base url %q", ErrInvalidURL, s.hfBase)
	}
	s.hfHost = u.Host
	if s.freeSpace == nil {
		s.freeSpace = StatfsFreeSpace
	}
	if s.volumeSize == nil {
		s.volumeSize = StatfsVolumeSize
	}
	if s.inUse == nil {
		s.inUse = func(string) bool { return false }
	}
	if s.retries == 0 {
		s.retries = 2
	} else if s.retries < 0 {
		s.retries = 0
	}
	if s.backoff <= 0 {
		s.backoff = time.Second
	}
	if s.interval <= 0 {
		s.interval = 100 * time.Millisecond
	}
	if s.idle <= 0 {
		s.idle = 60 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return nil, fmt.Errorf("create model store %s: %w", s.root, err)
	}
	if s.dir, err = os.OpenRoot(s.root); err != nil {
		return nil, fmt.Errorf("open model store %s: %w", s.root, err)
	}
	learnEscapeErr(s.dir)
	s.cleanLeftovers()
	return s, nil
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to scheme %q", ErrInvalidURL, req.URL.Scheme)
			}
			return nil
		},
	}
}

// Type is the model type this store holds.
func (s *Store) Type() Type { return s.typ }

// InUse reports whether a running engine uses the model (the injected check).
func (s *Store) InUse(id string) bool { return s.inUse(id) }

// Root is the directory holding one directory per model.
func (s *Store) Root() string { return s.root }

// ModelDir is the directory of a model id (validated).
func (s *Store) ModelDir(id string) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return filepath.Join(s.root, id), nil
}

// FilePath is the absolute path of one file of a stored model, checked to be
// a safe name inside the model directory.
func (s *Store) FilePath(id, name string) (string, error) {
	dir, err := s.ModelDir(id)
	if err != nil {
		return "", err
	}
	if _, err := SafeFileName(name); err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

const deletingPrefix = ".deleting-"

func (s *Store) cleanLeftovers() {
	entries, err := readDir(s.dir, ".")
	if err != nil {
		s.log.Warn("list model store for leftovers", "path", s.root, "err", err)
		return
	}
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), deletingPrefix):
			if err := s.dir.RemoveAll(e.Name()); err != nil {
				s.log.Warn("remove leftover of a delete", "path", s.abs(e.Name()), "err", outside(err))
			}
		case e.IsDir():
			files, err := readDir(s.dir, e.Name())
			if err != nil {
				continue
			}
			for _, f := range files {
				if strings.HasPrefix(f.Name(), tempPrefix) {
					removeQuietly(s.dir, rel(e.Name(), f.Name()))
				}
			}
		}
	}
}

// List returns the stored models, sorted by id. Directories without a record
// (downloads not finished) are not models yet; unreadable records are logged
// and skipped.
func (s *Store) List(ctx context.Context) ([]*Record, error) {
	entries, err := readDir(s.dir, ".")
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	var out []*Record
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		r, err := readRecord(s.dir, e.Name(), s.typ)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			s.log.Warn("skip unreadable model record", "id", e.Name(), "err", err)
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns the record of one model.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	return readRecord(s.dir, id, s.typ)
}

// acquire marks id busy; it fails when a download or delete holds it.
func (s *Store) acquire(id string, op *operation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.busy[id]; ok {
		if other.download {
			return fmt.Errorf("%w: %s", ErrDownloadInProgress, id)
		}
		return fmt.Errorf("%w: %s is being deleted", ErrDownloadInProgress, id)
	}
	s.busy[id] = op
	return nil
}

func (s *Store) release(id string, op *operation) {
	s.mu.Lock()
	if s.busy[id] == op {
		delete(s.busy, id)
	}
	s.mu.Unlock()
	close(op.done)
}

// claim acquires id for op, refuses an id that already has a record and
// creates the model's directory (id, relative to s.dir). On success the caller
// must call s.release(id, op) when done; on failure the id is already released.
// Removing the directory on a later failure is left to the caller, which
// knows what may stay in it. A model directory that is a link out of the store
// is refused with ErrOutsideStore.
func (s *Store) claim(id string, op *operation) error {
	if err := s.acquire(id, op); err != nil {
		return err
	}
	_, err := s.dir.Lstat(rel(id, recordName))
	switch {
	case err == nil:
		s.release(id, op)
		return fmt.Errorf("%w: %s", ErrAlreadyExists, id)
	case isEscape(err):
		s.release(id, op)
		return fmt.Errorf("model directory %s: %w", s.abs(id), outside(err))
	}
	if err := s.dir.MkdirAll(id, 0o755); err != nil {
		s.release(id, op)
		return fmt.Errorf("create %s: %w", s.abs(id), outside(err))
	}
	return nil
}

// Delete removes a model, or the leftovers of its unfinished download. A
// model a running engine uses is refused with ErrInUse, and one still
// downloading with ErrDownloadInProgress, unless force is set (force cancels
// the download first). It returns the bytes freed.
func (s *Store) Delete(ctx context.Context, id string, force bool) (int64, error) {
	if err := ValidateID(id); err != nil {
		return 0, err
	}
	op := &operation{done: make(chan struct{})}
	for {
		err := s.acquire(id, op)
		if err == nil {
			break
		}
		if !force {
			return 0, err
		}
		s.mu.Lock()
		other := s.busy[id]
		s.mu.Unlock()
		if other == nil {
			continue
		}
		if other.cancel != nil {
			other.cancel()
		}
		select {
		case <-other.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	defer s.release(id, op)
	// Lstat: a model directory that is a planted link is removed itself, never
	// what it points to.
	if _, err := s.dir.Lstat(id); errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	} else if err != nil {
		return 0, fmt.Errorf("delete %s: %w", id, outside(err))
	}
	if !force && s.inUse(id) {
		return 0, fmt.Errorf("%w: %s is loaded by a running server (stop it or force)", ErrInUse, id)
	}
	freed := dirBytes(s.dir, id)
	// Rename first so the model disappears at once; remove the files after.
	trash, err := mkdirTemp(s.dir, deletingPrefix+id+"-")
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", id, err)
	}
	if err := s.dir.Rename(id, rel(trash, id)); err != nil {
		removeQuietly(s.dir, trash)
		return 0, fmt.Errorf("delete %s: %w", id, outside(err))
	}
	if err := syncDir(s.dir, "."); err != nil {
		s.log.Warn("sync model store dir", "err", err)
	}
	if err := s.dir.RemoveAll(trash); err != nil {
		return 0, fmt.Errorf("delete %s: remove files: %w", id, outside(err))
	}
	s.log.Info("model deleted", "id", id, "type", s.typ, "forced", force, "freed_bytes", freed)
	return freed, nil
}
