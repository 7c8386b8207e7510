package supervisor

import (
	"os"
	"strings"
)

// DropPrefixes returns a DropEnv filter that drops variables whose name starts
// with one of the prefixes (for example "LLAMA_ARG_", which silently changes
// llama-server's settings).
func DropPrefixes(prefixes ...string) func(key string) bool {
	return func(key string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
		return false
	}
}

// buildEnv returns the environment for the process: the inherited one (if
// asked for) without the dropped names, then spec.Env, which wins over
// inherited values of the same name.
func buildEnv(spec *Spec, environ []string) []string {
	env := make([]string, 0, len(environ)+len(spec.Env))
	if spec.InheritEnv {
		for _, kv := range environ {
			key, _, _ := strings.Cut(kv, "=")
			if spec.DropEnv != nil && spec.DropEnv(key) {
				continue
			}
			env = append(env, kv)
		}
	}
	return append(env, spec.Env...)
}

func processEnv(spec *Spec) []string { return buildEnv(spec, os.Environ()) }
