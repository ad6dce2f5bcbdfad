#!/usr/bin/env bash
# Makes the Pulumi CLI available for Node.js, Python and YAML programs (pulumi, the language hosts
# pulumi-language-nodejs, -python and -yaml, the dynamic-provider host pulumi-resource-pulumi-nodejs)
# and prints the directory that holds them as the LAST line on stdout.
# Everything else (progress, build output, errors) goes to stderr.
#
#   export PATH="$(bash scripts/setup-pulumi.sh):$PATH"
#
# 1. If `pulumi` and the three language hosts are already on PATH, their directory is used.
# 2. Otherwise they are built with `go build` from Go modules pinned in scripts/pulumi-cli/
#    into ${PULUMI_NETNS_CACHE:-$HOME/.cache/pulumi-netns}/pulumi-v<VERSION>/bin and reused
#    on later runs. Only what is missing there is built (a cache made before the Python and YAML
#    hosts existed gets just those), in up to three parallel `go build` jobs.
#
# Versions:
#   - pulumi CLI: github.com/pulumi/pulumi/pkg/v3 @ v3.248.0 (same as npm @pulumi/pulumi).
#   - pulumi-language-nodejs and pulumi-language-python: the Go module proxy reachable here does
#     not serve their separate modules github.com/pulumi/pulumi/sdk/{nodejs,python}/cmd/
#     pulumi-language-{nodejs,python}/v3 at any version (403, pseudo-versions too), so both are
#     built from the last sdk/v3 release that still contained them as packages:
#     github.com/pulumi/pulumi/sdk/v3@v3.68.0 (modules scripts/pulumi-cli/language-nodejs and
#     language-python; the second job builds them one after the other, sharing compiled packages).
#     Older language hosts are supported by newer engines (Handshake/GetRequiredPackages fall back).
#     Known limits of these v3.68 hosts:
#       * their resource-monitor proxy forwards RegisterResource, ReadResource,
#         RegisterResourceOutputs, Invoke, StreamInvoke, Call and SupportsFeature only, so programs
#         using stack transforms, resource hooks or parameterized packages get "Unimplemented";
#       * they do not implement GeneratePackage, so `pulumi package gen-sdk --language nodejs|python`
#         fails with "method GeneratePackage not implemented": use pulumi-netns-gen-sdk (below).
#   - Python: the v3.68 host (in ../libexec/pulumi-language-python/, with the
#     pulumi-language-python-exec script copied from the same module, which that host runs with
#     python) is started through bin/pulumi-language-python, a small Go program of ours
#     (scripts/pulumi-cli/language-python/pulumi-language-python). Today's engine no longer passes
#     Pulumi.yaml's runtime options as flags; the v3.68 host reads only flags, so without it
#     `virtualenv:` would be ignored and `pulumi install` would make the project directory itself a
#     virtual environment. It reads the project's Pulumi.yaml and passes -root and -virtualenv.
#     With `runtime: {name: python, options: {virtualenv: venv}}`, `pulumi install` and `pulumi up`
#     (when venv/ is missing or empty) create PROJECT/venv with the python3 on PATH (Debian's needs
#     the python3-venv package) and pip install -r requirements.txt into it (PyPI's `pulumi`
#     3.248.0 works); without that option the python3 on PATH must have `pulumi` (an activated
#     virtualenv). PULUMI_PYTHON_CMD names another python. toolchain: poetry/uv are not supported.
#   - pulumi-language-yaml: github.com/pulumi/pulumi-yaml v1.25.0 with the pkg/sdk v3.206.0 it
#     requires (module scripts/pulumi-cli/language-yaml); it does not compile against pkg v3.248.0.
#   - pulumi-netns-gen-sdk: ours (scripts/pulumi-cli/pulumi-netns-gen-sdk), built with the CLI from
#     the same module: `pulumi-netns-gen-sdk --language python|nodejs|go --out DIR schema.json`
#     writes DIR/LANGUAGE with pkg/v3 v3.248.0's code generators, like `pulumi package gen-sdk`.
#   - pulumi-resource-pulumi-nodejs (the dynamic-provider host): a small shell wrapper written
#     into the bin dir. Like the script that ships next to the official CLI (and inside the npm
#     package), it resolves @pulumi/pulumi/cmd/dynamic-provider from the current directory,
#     which the engine sets to the Pulumi project directory, so it works for any project.
#   The cache directory is named after the CLI version only: after changing another pin, remove
#   the binaries it built (or the directory) so they are built again.
#
# Environment:
#   PULUMI_NETNS_CACHE        cache root (default $HOME/.cache/pulumi-netns)
#   PULUMI_NETNS_FORCE_BUILD  set to 1 to ignore a pulumi already on PATH (the cache is still reused)
#   GO                        go binary to use (default: `go` on PATH, else /usr/local/go/bin/go)
set -euo pipefail

PULUMI_VERSION="3.248.0"
LANGUAGE_HOST_VERSION="3.68.0"
YAML_VERSION="1.25.0"
YAML_SDK_VERSION="3.206.0"

# Keep stdout clean: only the final directory goes there (via fd 3).
exec 3>&1 1>&2

log() { printf 'setup-pulumi: %s\n' "$*" >&2; }
die() { printf 'setup-pulumi: error: %s\n' "$*" >&2; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
module_dir="$script_dir/pulumi-cli"
langhost_module_dir="$module_dir/language-nodejs"
python_module_dir="$module_dir/language-python"
yaml_module_dir="$module_dir/language-yaml"

# Writes the dynamic-provider host wrapper into directory $1 (atomically).
write_dynamic_provider_wrapper() {
	local dir="$1" tmp
	tmp="$(mktemp "$dir/.pulumi-resource-pulumi-nodejs.XXXXXX")"
	cat >"$tmp" <<'EOF'
#!/bin/sh
# pulumi-resource-pulumi-nodejs: host for pulumi.dynamic.Resource providers (written by
# scripts/setup-pulumi.sh). Same behaviour as the script shipped with the Pulumi CLI: the
# engine starts it in the project directory, and @pulumi/pulumi/cmd/dynamic-provider is
# resolved from there, i.e. from that project's own node_modules.
script="$(node -e "console.log(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))")" || script=""
if [ -z "$script" ]; then
	echo "pulumi-resource-pulumi-nodejs: cannot resolve @pulumi/pulumi/cmd/dynamic-provider from $(pwd); run npm install in the project" >&2
	exit 1
fi
exec node "$script" "$@"
EOF
	chmod 0755 "$tmp"
	mv -f "$tmp" "$dir/pulumi-resource-pulumi-nodejs"
}

emit() {
	printf '%s\n' "$1" >&3
	exit 0
}

# --- 1. Already installed? ------------------------------------------------------------
if [ "${PULUMI_NETNS_FORCE_BUILD:-0}" != "1" ] &&
	pulumi_path="$(command -v pulumi 2>/dev/null)" &&
	command -v pulumi-language-nodejs >/dev/null 2>&1; then
	bin_dir="$(cd "$(dirname "$pulumi_path")" && pwd -P)"
	if command -v pulumi-language-python >/dev/null 2>&1 && command -v pulumi-language-yaml >/dev/null 2>&1; then
		log "using pulumi from PATH: $pulumi_path ($(PULUMI_SKIP_UPDATE_CHECK=true "$pulumi_path" version 2>/dev/null || echo 'version unknown'))"
		if [ ! -x "$bin_dir/pulumi-resource-pulumi-nodejs" ] &&
			! command -v pulumi-resource-pulumi-nodejs >/dev/null 2>&1; then
			log "warning: pulumi-resource-pulumi-nodejs is neither next to pulumi nor on PATH;" \
				"dynamic providers will fail (set PULUMI_NETNS_FORCE_BUILD=1 to use the cached build instead)"
		fi
		emit "$bin_dir"
	fi
	log "pulumi on PATH ($pulumi_path) comes without pulumi-language-python or pulumi-language-yaml; using the cached build"
fi

# --- 2. Cached build ------------------------------------------------------------------
if [ -n "${PULUMI_NETNS_CACHE:-}" ]; then
	cache_root="$PULUMI_NETNS_CACHE"
elif [ -n "${HOME:-}" ]; then
	cache_root="$HOME/.cache/pulumi-netns"
else
	die "neither PULUMI_NETNS_CACHE nor HOME is set; cannot choose a cache directory"
fi
mkdir -p "$cache_root" || die "cannot create cache directory $cache_root"
cache_root="$(cd "$cache_root" && pwd -P)"
install_dir="$cache_root/pulumi-v$PULUMI_VERSION"
bin_dir="$install_dir/bin"
python_host_rel="libexec/pulumi-language-python" # the v3.68 host and its exec script, under install_dir

# The files each part puts into install_dir; a part is built when one of its files is missing.
# Within a part, the files are published in this order, so a later one implies the earlier ones.
all_parts="cli gensdk nodejs python yaml"
files_cli="bin/pulumi"
files_gensdk="bin/pulumi-netns-gen-sdk"
files_nodejs="bin/pulumi-language-nodejs"
files_python="$python_host_rel/pulumi-language-python-exec $python_host_rel/pulumi-language-python bin/pulumi-language-python"
files_yaml="bin/pulumi-language-yaml"
part_files() {
	local files="files_$1"
	echo "${!files}"
}

missing_parts() {
	local part file
	for part in $all_parts; do
		for file in $(part_files "$part"); do
			if [ ! -x "$install_dir/$file" ]; then
				printf '%s\n' "$part"
				break
			fi
		done
	done
}

is_complete() {
	[ -z "$(missing_parts)" ]
}

finish() {
	if [ ! -x "$bin_dir/pulumi-resource-pulumi-nodejs" ]; then
		write_dynamic_provider_wrapper "$bin_dir"
	fi
	emit "$bin_dir"
}

if is_complete; then
	log "using cached Pulumi CLI v$PULUMI_VERSION in $bin_dir"
	finish
fi

# --- 3. Build -------------------------------------------------------------------------
if [ -n "${GO:-}" ]; then
	go_bin="$GO"
elif command -v go >/dev/null 2>&1; then
	go_bin="$(command -v go)"
elif [ -x /usr/local/go/bin/go ]; then
	go_bin=/usr/local/go/bin/go
else
	die "pulumi is not on PATH and no Go toolchain was found to build it (need go >= 1.25.11 on PATH or at /usr/local/go/bin/go, or set GO=/path/to/go)"
fi
go_version="$("$go_bin" env GOVERSION 2>/dev/null)" ||
	die "pulumi is not on PATH and the Go toolchain '$go_bin' does not run; cannot build pulumi"
case "$go_version" in
go1.[0-9] | go1.[0-9].* | go1.1[0-9] | go1.1[0-9].* | go1.20 | go1.20.*)
	die "$go_bin is $go_version; building pulumi needs go >= 1.25.11 (>= 1.21 can fetch it via GOTOOLCHAIN=auto)"
	;;
esac
for dir in "$module_dir" "$langhost_module_dir" "$python_module_dir" "$yaml_module_dir"; do
	[ -f "$dir/go.mod" ] || die "build module missing: expected $dir/go.mod"
done

# Serialize concurrent runs (e.g. parallel test jobs) so only one of them builds.
lock_file="$cache_root/.pulumi-v$PULUMI_VERSION.lock"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$lock_file"
	if ! flock -n 9; then
		log "another setup-pulumi run is building; waiting for it"
		flock 9
	fi
	if is_complete; then
		log "using Pulumi CLI v$PULUMI_VERSION built by a concurrent run"
		finish
	fi
	# Holding the lock, any staging dir left behind is from a killed run (SIGKILL skips the trap).
	rm -rf "$cache_root/.build-pulumi-v$PULUMI_VERSION."*
fi

check_pin() { # module_dir module_path expected_version
	grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2[[:space:]]+v$3([[:space:]]|\$)" "$1/go.mod" ||
		die "$1/go.mod does not pin $2 at v$3 (the version setup-pulumi.sh expects)"
}
check_pin "$module_dir" github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION"
check_pin "$module_dir" github.com/pulumi/pulumi/sdk/v3 "$PULUMI_VERSION"
check_pin "$langhost_module_dir" github.com/pulumi/pulumi/sdk/v3 "$LANGUAGE_HOST_VERSION"
check_pin "$python_module_dir" github.com/pulumi/pulumi/sdk/v3 "$LANGUAGE_HOST_VERSION"
check_pin "$yaml_module_dir" github.com/pulumi/pulumi-yaml "$YAML_VERSION"
check_pin "$yaml_module_dir" github.com/pulumi/pulumi/pkg/v3 "$YAML_SDK_VERSION"

mapfile -t parts < <(missing_parts)
want() { # part: is it to be built?
	local part
	for part in "${parts[@]}"; do [ "$part" = "$1" ] && return 0; done
	return 1
}

stage="$(mktemp -d "$cache_root/.build-pulumi-v$PULUMI_VERSION.XXXXXX")"
chmod 0755 "$stage"
pids=()
cleanup() {
	if [ "${#pids[@]}" -gt 0 ]; then kill "${pids[@]}" 2>/dev/null || true; fi
	rm -rf "$stage"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$stage/bin" "$stage/$python_host_rel"

# Common go settings: the committed go.mod/go.sum are authoritative (-mod=readonly: never
# rewrite them), no VCS stamping, no go.work from the surroundings.
go_env=(env GOWORK=off)
go_build_flags=(-mod=readonly -buildvcs=false -trimpath)
version_pkg="github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
yaml_version_pkg="github.com/pulumi/pulumi-yaml/pkg/version.Version"

log "building ${parts[*]} (Pulumi CLI v$PULUMI_VERSION, nodejs/python hosts of sdk v$LANGUAGE_HOST_VERSION, pulumi-yaml v$YAML_VERSION) with $go_bin ($go_version)"
# Measured on 2 cores (a shared machine, cold Go build cache, modules already downloaded): CLI and
# Node host alone 262-280 s (340 CPU s); all parts 474-511 s (446-469 CPU s); gensdk, python and
# yaml added to a cache that has the rest 222 s (235 CPU s). CPU-bound, so scale by the core count.
cores="$(nproc 2>/dev/null || echo 2)"
if want cli; then
	log "about $(((16 + cores - 1) / cores)) minutes on $cores cores, once; cached in $cache_root"
else
	log "about $(((7 + cores - 1) / cores)) minutes on $cores cores, once; cached in $cache_root"
fi
log "into $bin_dir (logs in $stage/*.log while running)"
start=$(date +%s)

# Job 1 (module pulumi-cli): the CLI and pulumi-netns-gen-sdk, in one go build so they share compiled packages.
cli_packages=()
if want cli; then cli_packages+=(github.com/pulumi/pulumi/pkg/v3/cmd/pulumi); fi
if want gensdk; then cli_packages+=(./pulumi-netns-gen-sdk); fi
if [ "${#cli_packages[@]}" -gt 0 ]; then
	(
		cd "$module_dir" &&
			exec "${go_env[@]}" "$go_bin" build "${go_build_flags[@]}" \
				-ldflags "-s -w -X $version_pkg=v$PULUMI_VERSION" \
				-o "$stage/bin/" "${cli_packages[@]}"
	) >"$stage/pulumi.log" 2>&1 &
	pids+=($!)
fi

# Job 2 (sdk v3.68.0): the Node host, then the Python host and its starter (sharing the compiled sdk).
if want nodejs || want python; then
	(
		set -e
		if want nodejs; then
			cd "$langhost_module_dir"
			"${go_env[@]}" "$go_bin" build "${go_build_flags[@]}" \
				-ldflags "-s -w -X $version_pkg=v$LANGUAGE_HOST_VERSION" \
				-o "$stage/bin/" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
		fi
		if want python; then
			cd "$python_module_dir"
			"${go_env[@]}" "$go_bin" build "${go_build_flags[@]}" \
				-ldflags "-s -w -X $version_pkg=v$LANGUAGE_HOST_VERSION" \
				-o "$stage/$python_host_rel/" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
			"${go_env[@]}" "$go_bin" build "${go_build_flags[@]}" -ldflags "-s -w" \
				-o "$stage/bin/" ./pulumi-language-python
			# The host runs this script (with python) from its own directory.
			sdk_dir="$("${go_env[@]}" "$go_bin" list -mod=readonly -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
			cp "$sdk_dir/python/cmd/pulumi-language-python-exec" "$stage/$python_host_rel/"
			chmod 0755 "$stage/$python_host_rel/pulumi-language-python-exec"
		fi
	) >"$stage/language-hosts.log" 2>&1 &
	pids+=($!)
fi

# Job 3 (module language-yaml, its own pkg/sdk v3.206.0).
if want yaml; then
	(
		cd "$yaml_module_dir" &&
			exec "${go_env[@]}" "$go_bin" build "${go_build_flags[@]}" \
				-ldflags "-s -w -X $yaml_version_pkg=v$YAML_VERSION" \
				-o "$stage/bin/" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml
	) >"$stage/pulumi-language-yaml.log" 2>&1 &
	pids+=($!)
fi

failed=""
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
pids=()
if [ -n "$failed" ]; then
	for log_file in "$stage"/*.log; do
		[ -s "$log_file" ] || continue
		name="${log_file##*/}"
		printf -- '--- go build output: %s (last 40 lines) ---\n' "${name%.log}" >&2
		tail -n 40 "$log_file" >&2 || true
	done
	die "go build failed (Go module proxy unreachable, or Go older than 1.25.11?)"
fi
for part in "${parts[@]}"; do
	for file in $(part_files "$part"); do
		[ -x "$stage/$file" ] || die "go build reported success but $file is missing in $stage"
	done
done

# Sanity check before publishing into the cache.
if want cli; then
	built_version="$(PULUMI_SKIP_UPDATE_CHECK=true "$stage/bin/pulumi" version 2>/dev/null)" ||
		die "the freshly built pulumi binary does not run"
	[ "$built_version" = "v$PULUMI_VERSION" ] ||
		die "built pulumi reports version '$built_version', expected v$PULUMI_VERSION"
fi
rm -f "$stage"/*.log

# Publish: each file is renamed into place (atomic), a part's files in the order part_files gives,
# so a run that sees a part's last file finds the rest. Files already in the cache stay (a pulumi
# that is running keeps working).
if [ ! -d "$install_dir" ]; then
	write_dynamic_provider_wrapper "$stage/bin"
	mv -T "$stage" "$install_dir" || die "cannot move the build into $install_dir"
else
	mkdir -p "$bin_dir" "$install_dir/$python_host_rel"
	for part in "${parts[@]}"; do
		for file in $(part_files "$part"); do
			mv -f "$stage/$file" "$install_dir/$file" || die "cannot move $file into $install_dir"
		done
	done
	rm -rf "$stage"
fi
trap - EXIT
is_complete || die "the build finished but $install_dir still lacks: $(missing_parts | tr '\n' ' ')"
log "built ${parts[*]} in $(($(date +%s) - start))s: $bin_dir"
finish
