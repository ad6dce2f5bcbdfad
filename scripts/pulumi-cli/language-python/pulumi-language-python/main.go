// pulumi-language-python, as scripts/setup-pulumi.sh installs it: starts the Python language host of
// github.com/pulumi/pulumi/sdk/v3@v3.68.0 (../libexec/pulumi-language-python/, next to its
// pulumi-language-python-exec) with the project's runtime options as flags.
//
// Engines up to about v3.9x started language hosts with `-OPTION=VALUE -root=PROJECT_DIR ENGINE`;
// today's (v3.248) pass only ENGINE and send the options inside the RPC requests, which the v3.68 host
// does not read. Without -virtualenv and -root it would ignore Pulumi.yaml's `virtualenv:` option and
// `pulumi install` would turn the project directory itself into a virtual environment. So this reads
// the project's Pulumi.yaml (found from the working directory up, as the engine starts the host in the
// program's directory) and passes the one option that host knows, virtualenv, and the root.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"gopkg.in/yaml.v3"
)

// findProject returns the path of the Pulumi.yaml (or Pulumi.yml) in dir or its nearest ancestor.
func findProject(dir string) (string, bool) {
	for {
		for _, name := range []string{"Pulumi.yaml", "Pulumi.yml"} {
			path := filepath.Join(dir, name)
			if info, err := os.Stat(path); err == nil && !info.IsDir() {
				return path, true
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

type runtime struct {
	Name    string         `yaml:"name"`
	Options map[string]any `yaml:"options"`
}

// readRuntime reads the runtime of a project file: `runtime: python` or `runtime: {name:, options:}`.
func readRuntime(path string) (runtime, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return runtime{}, err
	}
	var project struct {
		Runtime yaml.Node `yaml:"runtime"`
	}
	if err := yaml.Unmarshal(data, &project); err != nil {
		return runtime{}, err
	}
	var r runtime
	switch project.Runtime.Kind {
	case yaml.ScalarNode:
		r.Name = project.Runtime.Value
	case yaml.MappingNode:
		if err := project.Runtime.Decode(&r); err != nil {
			return runtime{}, err
		}
	default:
		return runtime{}, errors.New("no runtime")
	}
	return r, nil
}

// flags returns the flags the v3.68 host takes for the project around the working directory.
func flags() []string {
	cwd, err := os.Getwd()
	if err != nil {
		return nil
	}
	path, ok := findProject(cwd)
	if !ok {
		return nil
	}
	r, err := readRuntime(path)
	if err != nil || r.Name != "python" {
		return nil
	}
	result := []string{"-root=" + filepath.Dir(path)}
	var ignored []string
	for key, value := range r.Options {
		switch {
		case key == "virtualenv":
			if venv, ok := value.(string); ok && venv != "" {
				result = append(result, "-virtualenv="+venv)
			}
		case key == "toolchain" && value == "pip":
		default:
			ignored = append(ignored, fmt.Sprintf("%s: %v", key, value))
		}
	}
	if len(ignored) > 0 {
		sort.Strings(ignored)
		fmt.Fprintf(os.Stderr, "pulumi-language-python (sdk v3.68.0): ignoring runtime options of %s it does not support: %v "+
			"(it runs pip in the virtualenv option's directory, or the python3 on PATH)\n", path, ignored)
	}
	return result
}

func main() {
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: cannot find its own path: %v\n", err)
		os.Exit(1)
	}
	host := filepath.Join(filepath.Dir(filepath.Dir(self)), "libexec", "pulumi-language-python", "pulumi-language-python")
	// Flags before the engine address (the last argument); a flag the engine passes itself comes later and wins.
	args := append(append([]string{host}, flags()...), os.Args[1:]...)
	if err := syscall.Exec(host, args, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: cannot run %s: %v\n", host, err)
		os.Exit(1)
	}
}
