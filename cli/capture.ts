/**
 * `pulumi-netns capture NODE:IF`: tcpdump in the node's namespace on its host, its pcap streamed here as
 * it comes (to the output, for `| wireshark -k -i -`, or into a file). tcpdump runs under a small script
 * that stops it when the session's input ends, which is how this command stops it on Ctrl-C, and what
 * sshd does for it when this process dies: nothing is left running on the host either way.
 */
import { createWriteStream, openSync } from "node:fs";
import { Writable } from "node:stream";
import { interfaceName } from "../provider/fields";
import { Argv, inNamespace } from "../provider/host";
import { onlyValue, parseArgs } from "./args";
import { attachTo, failedAt, nodeTarget, note, noting } from "./node";
import { STACK_HELP, STACK_OPTIONS, stackOptions, StackOptions } from "./stack";
import { UsageError } from "./usage";

export const CAPTURE_HELP = `pulumi-netns capture NODE:INTERFACE [--stack NAME] [--cwd DIR] [-w FILE] [-c COUNT] [-- FILTER...]

Captures the packets of NODE's INTERFACE with tcpdump in its namespace on its host, over the SSH settings
the stack uses for that host, and streams them as pcap to the output as they come, so that
\`pulumi-netns capture r1:eth0 | wireshark -k -i -\` shows them live; or writes them into FILE. Ctrl-C
stops it and leaves nothing running on the host, as does this command's end by any other way. FILTER is
a tcpdump filter expression (icmp, tcp port 80, …). INTERFACE "any" captures on all of the node's.
The host needs tcpdump (scripts/prerequisites.sh installs it).

${STACK_HELP}
  -w, --write FILE     write the pcap into FILE instead of the output
  -c, --count N        stop after N packets

Exit code: 0 when stopped (Ctrl-C, or after N packets), tcpdump's when it failed, 255 when it could not
be run (an unknown node or interface, a host that cannot be reached).
`;

export interface CaptureOptions extends StackOptions {
  node: string;
  interface: string;
  /** Unset: the output. */
  file?: string;
  count?: number;
  filter: string[];
}

export function parseCaptureArgs(args: string[]): CaptureOptions {
  const parsed = parseArgs(args, {
    values: { ...STACK_OPTIONS.values, "-w": "file", "--write": "file", "-c": "count", "--count": "count" },
  });
  const [endpoint, ...extra] = parsed.operands;
  if (endpoint === undefined) throw new UsageError("name the interface: pulumi-netns capture NODE:INTERFACE");
  if (extra.length > 0) throw new UsageError(`a filter goes after --: pulumi-netns capture ${endpoint} -- ${extra.join(" ")}`);
  // A qualified node name may hold a colon (NAMESPACE@USER@HOST:PORT); an interface name never does.
  const colon = endpoint.lastIndexOf(":");
  if (colon <= 0) throw new UsageError(`${endpoint}: expected NODE:INTERFACE, e.g. r1:eth0`);
  const iface = endpoint.slice(colon + 1);
  const valid = interfaceName.safeParse(iface);
  if (!valid.success) throw new UsageError(`${endpoint}: interface "${iface}": ${valid.error.issues[0].message}`);
  const count = onlyValue(parsed, "count", "--count");
  if (count !== undefined && !/^[1-9]\d{0,8}$/.test(count)) {
    throw new UsageError(`--count ${count}: expected a number of packets, 1 or more`);
  }
  const filter = parsed.rest ?? [];
  const option = filter.find((word) => word.startsWith("-"));
  if (option) throw new UsageError(`the filter's word ${option} is an option; only a filter expression goes after --`);
  const file = onlyValue(parsed, "file", "--write");
  return {
    ...stackOptions(parsed),
    node: endpoint.slice(0, colon),
    interface: iface,
    ...(file !== undefined && file !== "-" ? { file } : {}),
    ...(count !== undefined ? { count: Number(count) } : {}),
    filter,
  };
}

/**
 * Runs "$@" until it ends, or until the session's input ends (Ctrl-C here, or this process gone), which
 * stops it with TERM; then the watcher goes too. Exits with the command's exit code.
 */
const UNTIL_INPUT_ENDS = `exec 3<&0 </dev/null
"$@" 3<&- & command=$!
{ cat >/dev/null; kill "$command"; } <&3 >/dev/null 2>&1 & watcher=$!
exec 3<&-
wait "$command"; status=$?
kill "$watcher" 2>/dev/null
exit "$status"`;

export function captureArgv(namespace: string, options: Pick<CaptureOptions, "interface" | "count" | "filter">): Argv {
  // Each packet handed on as it comes (not a kernel buffer's worth at a time), and written out at once.
  const count = options.count ? ["-c", String(options.count)] : [];
  const tcpdump: Argv = ["tcpdump", "--immediate-mode", "-i", options.interface, "-U", "-w", "-", ...count, ...options.filter];
  return ["sh", "-c", UNTIL_INPUT_ENDS, "sh", ...inNamespace(namespace, tcpdump)];
}

/** A pcap file's first four bytes: microsecond or nanosecond timestamps, either byte order. */
const PCAP_MAGIC = ["d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d"].map((hex) => Buffer.from(hex, "hex"));

/**
 * Hands on what is written from the pcap's first byte on: sshd runs the command through the login shell,
 * and what its rc files print comes first on the same output.
 */
export function fromPcapStart(output: Writable): Writable {
  let head: Buffer | undefined = Buffer.alloc(0);
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      // The output's own errors (a reader gone) are the capture's to handle: each write here just ends.
      if (head === undefined) return output.write(chunk, () => done());
      head = Buffer.concat([head, chunk]);
      const starts = PCAP_MAGIC.map((magic) => head!.indexOf(magic)).filter((at) => at >= 0);
      if (starts.length === 0) {
        head = head.subarray(Math.max(0, head.length - 3));
        return done();
      }
      const pcap = head.subarray(Math.min(...starts));
      head = undefined;
      output.write(pcap, () => done());
    },
  });
}

/** tcpdump's exit code when TERM stopped it. */
const STOPPED = 128 + 15;

export async function capture(options: CaptureOptions): Promise<number> {
  if (options.file === undefined && process.stdout.isTTY) {
    throw new UsageError("a capture is pcap data, not text: write it into a file with -w FILE, or pipe it (| wireshark -k -i -)");
  }
  const target = await nodeTarget(options, options.node);
  const known = target.node.interfaces.map((i) => i.name);
  if (![...known, "lo", "any"].includes(options.interface)) {
    throw new Error(`${target.where} has no interface ${options.interface} (its interfaces: ${[...known, "lo", "any"].join(", ")})`);
  }
  // Opened here, so that a file that cannot be written stops it before anything runs on the host.
  const output: Writable = options.file === undefined ? process.stdout : createWriteStream("", { fd: openSync(options.file, "w") });
  const attached = await attachTo(target, captureArgv(target.node.namespace, options), {
    stdout: fromPcapStart(output),
    stderr: process.stderr,
  });
  const endpoint = `${target.node.name}:${options.interface}`;
  note(`capturing on ${endpoint} in ${target.where}${options.file ? ` into ${options.file}` : ""}; Ctrl-C stops it`);
  let stopping = false;
  const stop = () => {
    if (stopping) return attached.close();
    stopping = true;
    attached.endInput();
    noting(attached.exitCode, 1_000, `stopping tcpdump on ${target.node.host}…`).catch(() => undefined);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // The reader went away (wireshark closed): nothing more to capture for.
  output.on("error", stop);
  try {
    const status = await attached.exitCode;
    if (options.file !== undefined) await new Promise((resolve) => output.end(resolve));
    if (stopping && status === STOPPED) return 0;
    if (status !== 0) note(`tcpdump on ${endpoint} in ${target.where} ended with exit code ${status}`);
    return status;
  } catch (err) {
    throw failedAt(target, err);
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}
