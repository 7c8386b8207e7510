// Package config fills a service's flag set from, in order of precedence, command-line
// flags, GENAILAB_* environment variables and a YAML file, then the flags' defaults.
//
// Every option is declared once, as a flag. Its environment variable is the prefix plus
// the flag name in upper case with '-' turned into '_' (flag "grpc-addr" with prefix
// "GENAILAB_LLM_" reads GENAILAB_LLM_GRPC_ADDR). In the YAML file the key is the flag
// name ("grpc-addr: 127.0.0.1:50051"; "grpc_addr" is accepted too). Unknown YAML keys
// are errors, so a typo never silently falls back to a default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigFlag is the name of the flag that names the YAML file.
const ConfigFlag = "config"

// Parse registers the -config flag on fs, parses args, and fills every flag that was not
// given on the command line from the environment (envPrefix) or the YAML file.
func Parse(fs *flag.FlagSet, args []string, envPrefix string) error {
	file := fs.String(ConfigFlag, "", "YAML configuration file (keys are flag names; env "+envName(envPrefix, ConfigFlag)+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	path := *file
	if path == "" {
		path = os.Getenv(envName(envPrefix, ConfigFlag))
	}
	values := map[string]string{}
	if path != "" {
		var err error
		if values, err = readYAML(path, fs); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == ConfigFlag {
			return
		}
		name := envName(envPrefix, f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", name, err))
			}
			return
		}
		if v, ok := values[f.Name]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: key %s: %w", path, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

func envName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// readYAML reads a flat YAML mapping and returns its values keyed by flag name.
func readYAML(path string, fs *flag.FlagSet) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	var unknown []string
	for k, v := range raw {
		name := strings.ReplaceAll(k, "_", "-")
		if fs.Lookup(name) == nil || name == ConfigFlag {
			unknown = append(unknown, k)
			continue
		}
		switch vv := v.(type) {
		case nil:
			out[name] = ""
		case []any:
			parts := make([]string, len(vv))
			for i, p := range vv {
				parts[i] = fmt.Sprint(p)
			}
			out[name] = strings.Join(parts, ",")
		case map[string]any:
			return nil, fmt.Errorf("config %s: key %s: nested mappings are not supported", path, k)
		default:
			out[name] = fmt.Sprint(vv)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(unknown, ", "))
	}
	return out, nil
}
