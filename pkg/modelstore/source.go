package modelstore

import (
	"fmt"
	"net/url"
	"strings"
)

// Part is one named part of a model to download, from a URL or from a
// Hugging Face repository. A shard name (-00001-of-00003.gguf) brings in all
// shards of the split file.
type Part struct {
	Component string  // see the Component* constants; "model" when empty
	URL       string  // http or https; or use HF
	HF        *HFFile // used when URL is empty
	// SHA256 is the expected sum ("sha256:" prefix allowed). For a split GGUF
	// file give one sum per shard, in shard order, separated by commas, or none.
	SHA256 string
}

// fileJob is one file to fetch.
type fileJob struct {
	component string
	url       *url.URL
	name      string // local file name, safe
	sha256    string // expected; "" when unknown
	hfHost    bool   // the URL points at the configured Hugging Face host
	size      int64  // -1 while unknown
	part      int    // index of its Part in the request
	reused    *FileRecord
}

// parseSourceURL accepts absolute http(s) URLs without user info and returns
// the file name its last path segment names.
func parseSourceURL(raw string) (*url.URL, string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", fmt.Errorf("%w: %q: only http and https are allowed", ErrInvalidURL, redactURL(u))
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("%w: %q has no host", ErrInvalidURL, redactURL(u))
	}
	if u.User != nil {
		return nil, "", fmt.Errorf("%w: credentials in the url are not accepted; pass a token", ErrInvalidURL)
	}
	segs := strings.Split(u.EscapedPath(), "/")
	last, err := url.PathUnescape(segs[len(segs)-1])
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	name, err := SafeFileName(last)
	if err != nil {
		return nil, "", err
	}
	return u, name, nil
}

// withLastSegment returns a copy of u whose last path segment is name.
func withLastSegment(u *url.URL, name string) (*url.URL, error) {
	esc := u.EscapedPath()
	i := strings.LastIndex(esc, "/")
	c := *u
	p := esc[:i+1] + url.PathEscape(name)
	unesc, err := url.PathUnescape(p)
	if err != nil {
		return nil, err
	}
	c.Path, c.RawPath = unesc, p
	return &c, nil
}

// redactURL drops the query (signed URLs carry credentials there) and user info.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment = nil, "", false, ""
	return c.String()
}

// resolve turns a part into the files to fetch.
func (s *Store) resolve(p Part) ([]fileJob, error) {
	comp := p.Component
	if comp == "" {
		comp = ComponentModel
	}
	raw := p.URL
	if raw == "" {
		if p.HF == nil {
			return nil, fmt.Errorf("%w: component %q has neither url nor hugging face file", ErrInvalidArgument, comp)
		}
		var err error
		if raw, err = HFResolveURL(s.hfBase, *p.HF); err != nil {
			return nil, err
		}
	}
	u, name, err := parseSourceURL(raw)
	if err != nil {
		return nil, fmt.Errorf("component %q: %w", comp, err)
	}
	names, err := ShardNames(name)
	if err != nil {
		return nil, err
	}
	var sums []string
	if strings.TrimSpace(p.SHA256) != "" {
		for _, s := range strings.Split(p.SHA256, ",") {
			n, err := NormalizeSHA256(s)
			if err != nil {
				return nil, fmt.Errorf("component %q: %w", comp, err)
			}
			sums = append(sums, n)
		}
		if len(sums) != len(names) {
			return nil, fmt.Errorf("%w: component %q has %d files but %d sha256 sums", ErrInvalidArgument, comp, len(names), len(sums))
		}
	}
	jobs := make([]fileJob, len(names))
	for i, n := range names {
		su := u
		if n != name {
			if su, err = withLastSegment(u, n); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
			}
		}
		jobs[i] = fileJob{component: comp, url: su, name: n, size: -1, hfHost: s.hfHost != "" && strings.EqualFold(su.Host, s.hfHost)}
		if sums != nil {
			jobs[i].sha256 = sums[i]
		}
	}
	if s.typ == TypeLLM && !strings.HasSuffix(strings.ToLower(name), ".gguf") {
		return nil, fmt.Errorf("%w: llm model file %q is not a .gguf file", ErrInvalidArgument, name)
	}
	return jobs, nil
}
