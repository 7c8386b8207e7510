package modelstore

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Type is the kind of model a store holds.
type Type string

// The model types.
const (
	TypeLLM       Type = "llm"
	TypeDiffusion Type = "diffusion"
)

// ParseType accepts "llm" and "diffusion".
func ParseType(s string) (Type, error) {
	switch t := Type(strings.ToLower(strings.TrimSpace(s))); t {
	case TypeLLM, TypeDiffusion:
		return t, nil
	}
	return "", fmt.Errorf("%w: model type %q (want llm or diffusion)", ErrInvalidArgument, s)
}

const maxIDLen = 128

var (
	idPattern      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	idReplaceChars = regexp.MustCompile(`[^a-z0-9._-]+`)
	idDashes       = regexp.MustCompile(`-{2,}`)
)

// ValidateID checks a model id: lower-case [a-z0-9._-], starting with a letter
// or digit, at most 128 bytes, without "..". Such an id is always one safe
// path element.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > maxIDLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, maxIDLen)
	case !idPattern.MatchString(id):
		return fmt.Errorf("%w: %q (use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit)", ErrInvalidID, id)
	case strings.Contains(id, ".."):
		return fmt.Errorf("%w: %q contains \"..\"", ErrInvalidID, id)
	}
	return nil
}

// DeriveID turns a display name or file name into a valid id: it drops a
// model file extension and a shard suffix, lower-cases, and replaces runs of
// other characters by '-'. It fails when nothing usable is left.
func DeriveID(name string) (string, error) {
	s := strings.TrimSpace(name)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	if m := shardPattern.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	for _, ext := range []string{".gguf", ".safetensors", ".ckpt", ".sft", ".bin", ".pth", ".pt"} {
		if strings.HasSuffix(strings.ToLower(s), ext) {
			s = s[:len(s)-len(ext)]
			break
		}
	}
	s = strings.ToLower(s)
	s = idReplaceChars.ReplaceAllString(s, "-")
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", ".")
	}
	s = idDashes.ReplaceAllString(s, "-")
	s = strings.Trim(s, "-._")
	if len(s) > maxIDLen {
		s = strings.Trim(s[:maxIDLen], "-._")
	}
	if err := ValidateID(s); err != nil {
		return "", fmt.Errorf("derive id from %q: %w", name, err)
	}
	return s, nil
}

// Reserved names inside a model directory.
const (
	recordName    = "model.json"
	partialSuffix = ".partial"
	metaSuffix    = ".partial.json"
	tempPrefix    = ".tmp-"
)

// SafeFileName checks that name is a single, ordinary file name that stays
// inside its directory: no separators (either kind), not "." or "..", no
// leading dot, no control characters, not one of the store's own names.
// It returns the name unchanged when it is safe.
func SafeFileName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q: %s", ErrUnsafeFileName, name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 255:
		return bad("longer than 255 bytes")
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.ContainsAny(name, `/\`):
		return bad("contains a path separator")
	case strings.HasPrefix(name, "."):
		return bad("starts with a dot")
	case strings.Contains(name, ":"):
		return bad("contains ':'")
	case name == recordName, strings.HasSuffix(name, partialSuffix), strings.HasSuffix(name, metaSuffix):
		return bad("reserved by the model store")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return bad("contains a control character")
		}
	}
	return name, nil
}

// Components of a model. An llm model has the one component "model"; a
// diffusion model has either "model" (a single all-in-one file) or
// "diffusion_model" plus any of the others.
const (
	ComponentModel          = "model"
	ComponentDiffusionModel = "diffusion_model"
	ComponentVAE            = "vae"
	ComponentClipL          = "clip_l"
	ComponentClipG          = "clip_g"
	ComponentT5XXL          = "t5xxl"
	ComponentLLM            = "llm"
)

var diffusionComponents = map[string]bool{
	ComponentModel: true, ComponentDiffusionModel: true, ComponentVAE: true,
	ComponentClipL: true, ComponentClipG: true, ComponentT5XXL: true, ComponentLLM: true,
}

// validateComponents checks the set of named parts for a model type.
func validateComponents(t Type, comps []string) error {
	if len(comps) == 0 {
		return fmt.Errorf("%w: no files to download", ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for _, c := range comps {
		if t == TypeLLM && c != ComponentModel {
			return fmt.Errorf("%w: an llm model has only the component %q, got %q", ErrInvalidArgument, ComponentModel, c)
		}
		if t == TypeDiffusion && !diffusionComponents[c] {
			return fmt.Errorf("%w: unknown diffusion component %q", ErrInvalidArgument, c)
		}
		if seen[c] {
			return fmt.Errorf("%w: component %q given twice", ErrInvalidArgument, c)
		}
		seen[c] = true
	}
	if seen[ComponentModel] && seen[ComponentDiffusionModel] {
		return fmt.Errorf("%w: give either %q or %q, not both", ErrInvalidArgument, ComponentModel, ComponentDiffusionModel)
	}
	if t == TypeDiffusion && !seen[ComponentModel] && !seen[ComponentDiffusionModel] {
		return fmt.Errorf("%w: a diffusion model needs a %q or %q component", ErrInvalidArgument, ComponentModel, ComponentDiffusionModel)
	}
	return nil
}
