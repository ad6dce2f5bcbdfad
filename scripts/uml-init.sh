#!/bin/bash
# PID 1 inside the UML kernel that scripts/uml-run.sh boots. Everything mounted here exists only
# inside UML; the root is this machine's filesystem (hostfs), so /run and /tmp get a private tmpfs
# and nothing the command writes there reaches the machine. UML_RUN_DIR (a kernel argument) holds the
# command, its environment, and receives its output and exit status.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
# The run directory lives under the machine's /tmp, which the private /tmp hides: reach it via /run.
mkdir -p /run/uml-run
mount --bind "$UML_RUN_DIR" /run/uml-run
# So does a working directory under /tmp (a checkout there, as CI's may be): carried over the same way.
workdir=$(cat "$UML_RUN_DIR/cwd")
case "$workdir/" in
/tmp/*) mkdir -p /run/uml-work && mount --bind "$workdir" /run/uml-work ;;
esac
mount -t tmpfs -o mode=1777 tmpfs /tmp
if mountpoint -q /run/uml-work 2>/dev/null; then
	mkdir -p "$workdir"
	mount --bind /run/uml-work "$workdir"
fi
# The UML kernel's modules where modprobe (and the kernel's own module requests) look for them.
mount --bind /usr/lib/uml/modules /lib/modules
mkdir -p /run/netns /run/sshd
# UML's own loopback (no device reaches the machine): the Pulumi engine and its plugins talk gRPC on 127.0.0.1.
ip link set lo up

run=/run/uml-run
status=1
# configs: /proc/config.gz, from which the tests read what this kernel has.
if modprobe -a configs veth bridge sch_netem sch_tbf >"$run/output" 2>&1; then
	(
		source "$run/env"
		# A TMPDIR under the machine's /tmp is hidden by the private one: make it there.
		mkdir -p "${TMPDIR:-/tmp}"
		source "$run/command"
	) >>"$run/output" 2>&1 </dev/null
	status=$?
fi
echo "$status" >"$run/status"
sync
echo o >/proc/sysrq-trigger
sleep 10
