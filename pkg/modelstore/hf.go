package modelstore

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// DefaultHFBaseURL is the Hugging Face hub. Tests point Options.HFBaseURL at a
// local server instead.
const DefaultHFBaseURL = "https://huggingface.co"

// HFFile names a file in a Hugging Face repository.
type HFFile struct {
	Repo     string // "owner/name"
	File     string // path inside the repo, e.g. "model-q4_k_m.gguf" or "sub/dir/f.gguf"
	Revision string // branch, tag or commit; "main" when empty
}

var hfRepoSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// HFResolveURL builds base/<owner>/<name>/resolve/<revision>/<file> with every
// path segment escaped. It refuses repo names and file paths with empty, "."
// or ".." segments, backslashes or control characters.
func HFResolveURL(base string, f HFFile) (string, error) {
	b, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (b.Scheme != "http" && b.Scheme != "https") || b.Host == "" {
		return "", fmt.Errorf("%w: hugging face base url %q", ErrInvalidURL, base)
	}
	repo := strings.Split(f.Repo, "/")
	if len(repo) != 2 {
		return "", fmt.Errorf("%w: hugging face repo %q must be owner/name", ErrInvalidArgument, f.Repo)
	}
	for _, s := range repo {
		if !hfRepoSegment.MatchString(s) || strings.Contains(s, "..") {
			return "", fmt.Errorf("%w: hugging face repo %q", ErrInvalidArgument, f.Repo)
		}
	}
	rev := f.Revision
	if rev == "" {
		rev = "main"
	}
	if err := checkURLPathSegment(rev, true); err != nil {
		return "", fmt.Errorf("%w: revision %q: %v", ErrInvalidArgument, rev, err)
	}
	segs := strings.Split(f.File, "/")
	escaped := make([]string, len(segs))
	for i, s := range segs {
		if err := checkURLPathSegment(s, false); err != nil {
			return "", fmt.Errorf("%w: file %q: %v", ErrUnsafeFileName, f.File, err)
		}
		escaped[i] = url.PathEscape(s)
	}
	return b.String() + "/" + url.PathEscape(repo[0]) + "/" + url.PathEscape(repo[1]) +
		"/resolve/" + url.PathEscape(rev) + "/" + strings.Join(escaped, "/"), nil
}

func checkURLPathSegment(s string, slashOK bool) error {
	switch {
	case s == "":
		return fmt.Errorf("empty path segment")
	case s == "." || s == "..":
		return fmt.Errorf("path segment %q", s)
	case strings.Contains(s, `\`):
		return fmt.Errorf("backslash")
	case !slashOK && strings.Contains(s, "/"):
		return fmt.Errorf("slash")
	}
	for _, part := range strings.Split(s, "/") {
		if part == ".." || part == "." || part == "" {
			return fmt.Errorf("path segment %q", part)
		}
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character")
		}
	}
	return nil
}
