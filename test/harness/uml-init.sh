#!/bin/bash
# PID 1 inside the UML kernel that test/harness/uml-run.sh boots. Everything mounted here exists only
# inside UML; the root is this machine's filesystem (hostfs), so /run and /tmp get a private tmpfs
# and nothing the command writes there reaches the machine (nor is any mount point made on it).
# UML_RUN_DIR (a kernel argument) holds the command, its environment, and receives its output and
# exit status. The first step that fails ends the run: its error goes to UML_RUN_DIR/init-error.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# Where the run directory is reachable: the machine's /tmp until the private one hides it, then /run/uml-run.
run=$UML_RUN_DIR

finish() {
	echo "$1" >"$run/status"
	sync
	echo o >/proc/sysrq-trigger
	sleep 10
}

# COMMAND 2>"$run/stderr" || fail WHAT: records "WHAT failed: <its error>" and powers off.
fail() {
	printf 'uml-init: %s failed: %s\n' "$1" "$(cat "$run/stderr" 2>/dev/null)" >"$run/init-error"
	finish 1
	exit 1
}

# The tools this script calls, each with the Debian package that brings it (scripts/prerequisites.sh installs them).
for tool in mount:mount mountpoint:util-linux modprobe:kmod ip:iproute2; do
	command -v "${tool%%:*}" >/dev/null 2>&1 && continue
	echo "${tool%%:*}: command not found — install ${tool#*:} (bash scripts/prerequisites.sh does)" >"$run/stderr"
	fail "looking for ${tool%%:*}"
done

mount -t proc proc /proc 2>"$run/stderr" || fail "mounting /proc"
mount -t sysfs sysfs /sys 2>"$run/stderr" || fail "mounting /sys"
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
mkdir -p /dev/pts /dev/shm 2>"$run/stderr" || fail "making /dev/pts and /dev/shm"
mount -t devpts devpts /dev/pts 2>"$run/stderr" || fail "mounting /dev/pts"
mount -t tmpfs tmpfs /dev/shm 2>"$run/stderr" || fail "mounting /dev/shm"
mount -t tmpfs -o mode=755 tmpfs /run 2>"$run/stderr" || fail "mounting a private /run"
# The run directory lives under the machine's /tmp, which the private /tmp hides: reach it via /run.
mkdir -p /run/uml-run 2>"$run/stderr" || fail "making /run/uml-run"
mount --bind "$UML_RUN_DIR" /run/uml-run 2>"$run/stderr" || fail "binding the run directory"
run=/run/uml-run
# So does a working directory under /tmp (a checkout there, as CI's may be): carried over the same way.
workdir=$(cat "$run/cwd")
case "$workdir/" in
/tmp/*)
	mkdir -p /run/uml-work 2>"$run/stderr" || fail "making /run/uml-work"
	mount --bind "$workdir" /run/uml-work 2>"$run/stderr" || fail "binding the working directory"
	;;
esac
mount -t tmpfs -o mode=1777 tmpfs /tmp 2>"$run/stderr" || fail "mounting a private /tmp"
if mountpoint -q /run/uml-work 2>/dev/null; then
	mkdir -p "$workdir" 2>"$run/stderr" || fail "making $workdir in the private /tmp"
	mount --bind /run/uml-work "$workdir" 2>"$run/stderr" || fail "binding the working directory back"
fi
# The UML kernel's modules, in a module root of UML's own (/run/uml-root/lib/modules): the machine
# may have no /lib/modules to mount on, and must not get one. modprobe is pointed there, and so are
# the kernel's own module requests (through a wrapper in /run).
mkdir -p /run/uml-root/lib/modules 2>"$run/stderr" || fail "making the module root"
mount --bind /usr/lib/uml/modules /run/uml-root/lib/modules 2>"$run/stderr" || fail "binding the UML modules"
printf '#!/bin/sh\nexec modprobe -d /run/uml-root "$@"\n' >/run/uml-modprobe && chmod 755 /run/uml-modprobe 2>"$run/stderr" ||
	fail "writing the modprobe wrapper"
echo /run/uml-modprobe 2>"$run/stderr" >/proc/sys/kernel/modprobe || fail "pointing the kernel's module requests at the wrapper"
mkdir -p /run/netns /run/sshd 2>"$run/stderr" || fail "making /run/netns and /run/sshd"
# UML's own loopback (no device reaches the machine): the Pulumi engine and its plugins talk gRPC on 127.0.0.1.
ip link set lo up 2>"$run/stderr" || fail "bringing lo up"
# configs: /proc/config.gz, from which the tests read what this kernel has.
modprobe -d /run/uml-root -a configs veth bridge sch_netem sch_tbf 2>"$run/stderr" || fail "loading the modules configs, veth, bridge, sch_netem, sch_tbf"

(
	source "$run/env"
	# A TMPDIR under the machine's /tmp is hidden by the private one: make it there.
	mkdir -p "${TMPDIR:-/tmp}"
	source "$run/command"
) >>"$run/output" 2>&1 </dev/null
finish $?
