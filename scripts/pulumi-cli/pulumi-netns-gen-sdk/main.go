// pulumi-netns-gen-sdk generates a Python, Node.js or Go SDK from a Pulumi package schema with the
// code generators of github.com/pulumi/pulumi/pkg/v3 (the version this module pins, the CLI's).
//
//	pulumi-netns-gen-sdk --language python [--out DIR] [--version X.Y.Z] schema.json
//
// It writes DIR/LANGUAGE (DIR defaults to ./sdk), the layout of `pulumi package gen-sdk`. That command
// asks the language host to generate (the GeneratePackage call), which the hosts built by
// scripts/setup-pulumi.sh (sdk/v3 v3.68.0) do not implement. Schemas that refer to other packages'
// types are refused: nothing here loads other packages' schemas.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blang/semver"
	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

const tool = "pulumi-netns-gen-sdk"

// noLoader refuses every other package: a schema that refers to one cannot be generated here.
type noLoader struct{}

var errOtherPackage = errors.New("the schema refers to another package's schema, which " + tool + " cannot load")

func (noLoader) LoadPackage(string, *semver.Version) (*schema.Package, error) {
	return nil, errOtherPackage
}
func (noLoader) LoadPackageV2(context.Context, *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, errOtherPackage
}

func (noLoader) LoadPackageReference(string, *semver.Version) (schema.PackageReference, error) {
	return nil, errOtherPackage
}

func (noLoader) LoadPackageReferenceV2(context.Context, *schema.PackageDescriptor) (schema.PackageReference, error) {
	return nil, errOtherPackage
}

func generate(language string, pkg *schema.Package) (map[string][]byte, error) {
	switch language {
	case "python":
		return python.GeneratePackage(tool, pkg, nil, noLoader{})
	case "nodejs":
		return nodejs.GeneratePackage(tool, pkg, nil, nil, false, noLoader{})
	case "go":
		return gogen.GeneratePackage(tool, pkg, nil)
	default:
		return nil, fmt.Errorf("unsupported language %q (python, nodejs or go)", language)
	}
}

func run() error {
	language := flag.String("language", "", "python, nodejs or go")
	out := flag.String("out", "sdk", "output directory; the SDK goes into OUT/LANGUAGE")
	version := flag.String("version", "", "package version to write into the SDK (default: the schema's)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s --language python|nodejs|go [--out DIR] [--version X.Y.Z] SCHEMA.json\n", tool)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *language == "" {
		flag.Usage()
		os.Exit(2)
	}

	data, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("%s: %w", flag.Arg(0), err)
	}
	// The options of `pulumi package gen-sdk` (pkg/v3 cmd/pulumi/packages.BindSpec).
	pkg, diags, err := schema.BindSpec(spec, noLoader{}, schema.ValidationOptions{AllowDanglingReferences: true})
	if err != nil {
		return err
	}
	for _, d := range diags {
		fmt.Fprintf(os.Stderr, "%s: %s %s\n", flag.Arg(0), d.Summary, d.Detail)
	}
	if diags.HasErrors() {
		return fmt.Errorf("%s is not a valid package schema (%d diagnostics above)", flag.Arg(0), len(diags))
	}
	if *version != "" {
		v, err := semver.ParseTolerant(*version)
		if err != nil {
			return fmt.Errorf("--version %q: %w", *version, err)
		}
		pkg.Version = &v
	}

	files, err := generate(*language, pkg)
	if err != nil {
		return err
	}
	dir := filepath.Join(*out, *language)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %d files written to %s\n", tool, len(files), dir)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", tool, err)
		os.Exit(1)
	}
}
