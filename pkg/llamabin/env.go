package llamabin

import "strings"

// strippedPrefixes and strippedNames are environment variables llama-server reads as settings: inherited,
// they would silently change its port, model, log format, API key and so on. Dynamic-loader variables are
// left alone: a system llama-server may need LD_LIBRARY_PATH, and the project's install is immune to it
// (its libraries are found through DT_RPATH, which takes precedence).
var (
	strippedPrefixes = []string{"LLAMA_ARG_", "LLAMA_SERVER_", "LLAMA_LOG_"}
	strippedNames    = map[string]bool{"LLAMA_API_KEY": true, "LLAMA_CACHE": true, "HF_TOKEN": true, "MTMD_BACKEND_DEVICE": true}
)

// Env returns environ without the variables llama-server would take as settings (see strippedPrefixes),
// keeping the order of the rest. environ is not modified.
func Env(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if Stripped(name) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Stripped reports whether Env removes the variable name.
func Stripped(name string) bool {
	if strippedNames[name] {
		return true
	}
	for _, p := range strippedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
