#!/usr/bin/env bash
# Makes the Pulumi CLI (pulumi + pulumi-language-nodejs + pulumi-resource-pulumi-nodejs)
# available and prints the directory that holds them as the LAST line on stdout.
# Everything else (progress, build output, errors) goes to stderr.
#
#   export PATH="$(bash scripts/setup-pulumi.sh):$PATH"
#
# 1. If `pulumi` and `pulumi-language-nodejs` are already on PATH, their directory is used.
# 2. Otherwise both are built with `go build` from Go modules pinned in scripts/pulumi-cli/
#    into ${PULUMI_NETNS_CACHE:-$HOME/.cache/pulumi-netns}/pulumi-v<VERSION>/bin and reused
#    on later runs (no build when the binaries are already there).
#
# Versions:
#   - pulumi CLI: github.com/pulumi/pulumi/pkg/v3 @ v3.248.0 (same as npm @pulumi/pulumi).
#   - pulumi-language-nodejs: the Go module proxy reachable here does not serve the
#     separate module github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 at
#     any version, so the host is built from the last sdk/v3 release that still contained it
#     as a package: github.com/pulumi/pulumi/sdk/v3@v3.68.0 (module scripts/pulumi-cli/language-nodejs).
#     Older language hosts are supported by newer engines (Handshake/GetRequiredPackages fall back).
#     Known limit: its resource-monitor proxy forwards RegisterResource, ReadResource,
#     RegisterResourceOutputs, Invoke, StreamInvoke, Call and SupportsFeature only, so programs
#     using stack transforms (registerResourceTransform/registerInvokeTransform), resource hooks
#     or parameterized packages get "Unimplemented" errors.
#   - pulumi-resource-pulumi-nodejs (the dynamic-provider host): a small shell wrapper written
#     into the bin dir. Like the script that ships next to the official CLI (and inside the npm
#     package), it resolves @pulumi/pulumi/cmd/dynamic-provider from the current directory,
#     which the engine sets to the Pulumi project directory, so it works for any project.
#
# Environment:
#   PULUMI_NETNS_CACHE        cache root (default $HOME/.cache/pulumi-netns)
#   PULUMI_NETNS_FORCE_BUILD  set to 1 to ignore a pulumi already on PATH (the cache is still reused)
#   GO                        go binary to use (default: `go` on PATH, else /usr/local/go/bin/go)
set -euo pipefail

PULUMI_VERSION="3.248.0"
LANGUAGE_HOST_VERSION="3.68.0"

# Keep stdout clean: only the final directory goes there (via fd 3).
exec 3>&1 1>&2

log() { printf 'setup-pulumi: %s\n' "$*" >&2; }
die() { printf 'setup-pulumi: error: %s\n' "$*" >&2; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
module_dir="$script_dir/pulumi-cli"
langhost_module_dir="$module_dir/language-nodejs"

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
	log "using pulumi from PATH: $pulumi_path ($(PULUMI_SKIP_UPDATE_CHECK=true "$pulumi_path" version 2>/dev/null || echo 'version unknown'))"
	if [ ! -x "$bin_dir/pulumi-resource-pulumi-nodejs" ] &&
		! command -v pulumi-resource-pulumi-nodejs >/dev/null 2>&1; then
		log "warning: pulumi-resource-pulumi-nodejs is neither next to pulumi nor on PATH;" \
			"dynamic providers will fail (set PULUMI_NETNS_FORCE_BUILD=1 to use the cached build instead)"
	fi
	emit "$bin_dir"
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

is_complete() {
	[ -x "$bin_dir/pulumi" ] && [ -x "$bin_dir/pulumi-language-nodejs" ]
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
[ -f "$module_dir/go.mod" ] && [ -f "$langhost_module_dir/go.mod" ] ||
	die "build modules missing: expected $module_dir/go.mod and $langhost_module_dir/go.mod"

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
mkdir -p "$stage/bin"

# Common go settings: the committed go.mod/go.sum are authoritative (-mod=readonly: never
# rewrite them), no VCS stamping, no go.work from the surroundings.
go_env=(env GOWORK=off)
go_build_flags=(-mod=readonly -buildvcs=false -trimpath)
version_pkg="github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"

log "building Pulumi CLI v$PULUMI_VERSION and pulumi-language-nodejs (sdk v$LANGUAGE_HOST_VERSION) with $go_bin ($go_version)"
# Measured: 372 s on 2 cores; the build is CPU-bound, so scale by the core count.
cores="$(nproc 2>/dev/null || echo 2)"
log "about $(((12 + cores - 1) / cores)) minutes on $cores cores, once; cached in $cache_root"
log "into $bin_dir (logs in $stage/*.log while running)"
start=$(date +%s)

(
	cd "$module_dir" &&
		exec "${go_env[@]}" "$go_bin" build "${go_build_flags[@]}" \
			-ldflags "-s -w -X $version_pkg=v$PULUMI_VERSION" \
			-o "$stage/bin/" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
) >"$stage/pulumi.log" 2>&1 &
pid_cli=$!
pids+=("$pid_cli")
(
	cd "$langhost_module_dir" &&
		exec "${go_env[@]}" "$go_bin" build "${go_build_flags[@]}" \
			-ldflags "-s -w -X $version_pkg=v$LANGUAGE_HOST_VERSION" \
			-o "$stage/bin/" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
) >"$stage/pulumi-language-nodejs.log" 2>&1 &
pid_host=$!
pids+=("$pid_host")

failed=""
wait "$pid_cli" || failed="$failed pulumi"
wait "$pid_host" || failed="$failed pulumi-language-nodejs"
pids=()
if [ -n "$failed" ]; then
	for name in $failed; do
		printf -- '--- go build output for %s (last 40 lines) ---\n' "$name" >&2
		tail -n 40 "$stage/$name.log" >&2 || true
	done
	die "go build failed for:$failed (Go module proxy unreachable, or Go older than 1.25.11?)"
fi
[ -x "$stage/bin/pulumi" ] && [ -x "$stage/bin/pulumi-language-nodejs" ] ||
	die "go build reported success but the binaries are missing in $stage/bin"

# Sanity check before publishing into the cache.
built_version="$(PULUMI_SKIP_UPDATE_CHECK=true "$stage/bin/pulumi" version 2>/dev/null)" ||
	die "the freshly built pulumi binary does not run"
[ "$built_version" = "v$PULUMI_VERSION" ] ||
	die "built pulumi reports version '$built_version', expected v$PULUMI_VERSION"

write_dynamic_provider_wrapper "$stage/bin"
rm -f "$stage"/*.log

# Publish atomically: the install dir appears complete or not at all.
rm -rf "$install_dir"
mv -T "$stage" "$install_dir" || die "cannot move the build into $install_dir"
trap - EXIT
log "built in $(($(date +%s) - start))s: $bin_dir"
emit "$bin_dir"
