/**
 * `pulumi-netns inspect | exec | capture | graph | sweep` through the real command line (`node
 * dist/cli/main.js`, as `npx pulumi-netns` runs it) against one stack of test/e2e/programs/cli-lab, made
 * with the real Pulumi CLI on two throwaway hosts: a Lab over both (a LAN, a link across the hosts, a
 * pulled cable within one, a router, a service) and a namespace of plain resources beside it. Every
 * check reads the lab back from the stack's outputs and the hosts; the tests run in order on that stack,
 * and the last one destroys it. The link across the hosts is impaired where the kernel has netem (this
 * project's machines have none: cliUnderUml.test.ts runs the inspect and graph checks inside UML).
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { projectStack, stopwatch, twoHostConfig } from "../harness/e2e";
import { kernelHasNetem } from "../harness/kernel";

jest.setTimeout(300_000);

const CLI = join(REPO_ROOT, "dist", "cli", "main.js");
const { lines: timings, timed } = stopwatch();

let lab: TestLab;
let work: PulumiWorkdir;
let stack: Stack;
let dir: string;
let east: TestHost;
let west: TestHost;
let before: Record<string, unknown>[];
let outputs: {
  addresses: Record<string, Record<string, string[]>>;
  vnis: Record<string, number>;
  topologyDot: string;
  topologyMermaid: string;
};
let destroyed = false;
/** Everything the command line printed, for the check that no credential is in it. */
const printed: string[] = [];

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

const text = (run: Run) => ({ status: run.status, stdout: run.stdout.toString(), stderr: run.stderr });

function kept(args: string[], run: Run, started: number): Run {
  printed.push(run.stdout.toString("latin1"), run.stderr);
  timings.push(`pulumi-netns ${args.join(" ")}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return run;
}

/** The command line in the project's directory, with the stack's environment, as a user runs it. */
function cli(args: string[], input = ""): Run {
  const started = Date.now();
  const result = spawnSync("node", [CLI, ...args], { cwd: dir, env: { ...process.env, ...work.env }, input, timeout: 60_000 });
  return kept(args, { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() }, started);
}

/** The command lines started with `start`: a test that fails midway must not leave one running. */
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
});

/** The command line running on its own, for what a test does meanwhile (signals, traffic). */
function start(args: string[]) {
  const started = Date.now();
  const child: ChildProcess = spawn("node", [CLI, ...args], { cwd: dir, env: { ...process.env, ...work.env } });
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  running.push(child);
  const exited = new Promise<Run>((resolve) =>
    child.on("close", (status) => resolve(kept(args, { status, stdout: Buffer.concat(stdout), stderr }, started))),
  );
  return { child, exited, stderr: () => stderr };
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The processes in a namespace of a host, by their command. */
const inNamespace = (host: TestHost, namespace: string) =>
  host
    .sh(["ip", "netns", "pids", namespace])
    .split("\n")
    .filter(Boolean)
    .map((pid) => host.sh(["ps", "-o", "comm=", "-p", pid], { allowFailure: true }).trim())
    .filter(Boolean);

/** The processes in the host's own network namespace (sshd's, and what its sessions run), by their command lines. */
function hostProcesses(host: TestHost): string[] {
  const net = readlinkSync(`/proc/${host.pid}/ns/net`);
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/ns/net`) === net ? [readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim()] : [];
      } catch {
        return [];
      }
    })
    .filter(Boolean)
    .sort();
}

/** The ICMP packets of a pcap of Ethernet frames (the format tcpdump -w writes), after checking its header. */
function icmpPackets(pcap: Buffer): { type: number; source: string; destination: string }[] {
  expect(pcap.readUInt32LE(0)).toBe(0xa1b2c3d4);
  expect(pcap.readUInt32LE(20)).toBe(1);
  const packets = [];
  for (let at = 24; at + 16 <= pcap.length;) {
    const length = pcap.readUInt32LE(at + 8);
    const frame = pcap.subarray(at + 16, at + 16 + length);
    at += 16 + length;
    if (frame.readUInt16BE(12) !== 0x0800 || frame[14 + 9] !== 1) continue;
    const ip = (offset: number) => [...frame.subarray(14 + offset, 14 + offset + 4)].join(".");
    packets.push({ type: frame[14 + (frame[14] & 0x0f) * 4], source: ip(12), destination: ip(16) });
  }
  return packets;
}

/** A table of inspect's output as rows of cells, cut where its header's columns start. */
function tableRows(table: string): string[][] {
  const [header, ...rows] = table.split("\n");
  const starts = [...header.matchAll(/\S+/g)].map((m) => m.index!);
  return rows.map((row) => starts.map((at, i) => row.slice(at, starts[i + 1]).trim()));
}

const address = (node: string, ifname: string) => outputs.addresses[node][ifname][0];
const bare = (node: string, ifname: string) => address(node, ifname).split("/")[0];
/** "10.1.0.5/30" → "10.1.0.4/30" (prefixes of /24 and longer). */
const subnet = (cidr: string) => {
  const [ip, length] = cidr.split("/");
  const octets = ip.split(".").map(Number);
  octets[3] &= ~(2 ** (32 - Number(length)) - 1);
  return `${octets.join(".")}/${length}`;
};
const target = (host: TestHost) => `root@${host.address}:22`;
/** inspect's stderr: nothing, or its note when the hosts take over 2 s to answer (they do inside UML). */
const ASKING = /^(pulumi-netns: asking east, west for their interfaces and services…\n)?$/;
const IMPAIRMENT = kernelHasNetem ? "delayMs=20 jitterMs=2" : "-";
const netemWords = kernelHasNetem
  ? "with the link across the hosts impaired (20 ms ±2 ms)"
  : "(no netem in this kernel: the link across the hosts is not impaired)";

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  [east, west] = lab.hosts;
  before = [hostSnapshot(east), hostSnapshot(west)];
  work = PulumiWorkdir.create("e2e-cli");
  const config = { ...twoHostConfig(lab), impair: { value: String(kernelHasNetem) } };
  ({ stack, dir } = await projectStack(work, "cli-lab", config, join(REPO_ROOT, "test", "e2e", "programs", "cli-lab")));
  const up = await timed("pulumi up", () => stack.up());
  outputs = Object.fromEntries(Object.entries(up.outputs).map(([key, output]) => [key, output.value])) as typeof outputs;
});

afterAll(async () => {
  console.log(`wall times:\n  ${timings.join("\n  ")}`);
  if (!destroyed) await stack?.destroy().catch(() => undefined);
  lab?.destroy();
  work?.remove();
});

test("--help: the command's usage for each subcommand, exit 0; the command itself lists them all", () => {
  for (const command of ["inspect", "exec", "capture", "graph", "sweep"]) {
    const run = text(cli([command, "--help"]));
    expect({ command, status: run.status, first: run.stdout.split("\n")[0].split(" ").slice(0, 2).join(" "), stderr: run.stderr }).toEqual({
      command,
      status: 0,
      first: `pulumi-netns ${command}`,
      stderr: "",
    });
  }
  const listed = text(cli(["--help"]));
  expect(listed.status).toBe(0);
  expect(listed.stdout.match(/^ {2}(\w+) /gm)!.map((line) => line.trim())).toEqual(["inspect", "exec", "capture", "graph", "sweep"]);
  expect(text(cli(["graph", "--format", "png"]))).toMatchObject({
    status: 2,
    stderr: expect.stringMatching(/^pulumi-netns: --format png: expected one of dot, mermaid, svg\n\npulumi-netns graph /),
  });
});

test(`inspect: every node with host, namespace, live interfaces and services, every segment ${netemWords}`, () => {
  const run = text(cli(["inspect"]));
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.stringMatching(ASKING) });
  const [title, labTitle, labNodes, labSegments, plainTitle, plainNodes, plainSegments, ...rest] = run.stdout.trimEnd().split("\n\n");
  expect([title, labTitle, plainTitle, rest]).toEqual([
    "stack cli-lab/e2e",
    `lab "lab" on east (${target(east)}), west (${target(west)})`,
    `plain resources on east (${target(east)})`,
    [],
  ]);
  const pid = Number(/http: running, pid (\d+)/.exec(labNodes)?.[1]);
  // The service's process: python3, in web's namespace on west.
  expect(west.sh(["ip", "netns", "pids", "web"]).split("\n")).toContain(String(pid));
  expect(west.sh(["ps", "-o", "comm=", "-p", String(pid)]).trim()).toBe("python3");
  expect(tableRows(labNodes)).toEqual([
    ["db", "west", "db", "eth0", address("db", "eth0"), "down", ""],
    ["gw", "east", "gw", "lan0", address("gw", "lan0"), "up", ""],
    ["", "", "", "wan0", address("gw", "wan0"), "up", ""],
    ["pc1", "east", "pc1", "eth0", address("pc1", "eth0"), "up", ""],
    ["web", "west", "web", "eth0", address("web", "eth0"), "up", `http: running, pid ${pid}`],
    ["", "", "", "eth1", address("web", "eth1"), "down", ""],
  ]);
  expect(tableRows(labSegments)).toEqual([
    ["db:eth0--web:eth1", "link", "west", "-", "-", "down", "web:eth1 db:eth0"],
    ["gw:wan0--web:eth0", "link", "east,west", String(outputs.vnis["gw:wan0--web:eth0"]), IMPAIRMENT, "up", "gw:wan0 web:eth0"],
    ["office", "lan", "east", "-", "-", "up", "gw:lan0 pc1:eth0"],
  ]);
  expect(tableRows(plainNodes)).toEqual([["tools", "east", "tools", "tools0", "10.99.0.1/24", "up", ""]]);
  expect(tableRows(plainSegments)).toEqual([["tools0", "veth", "east", "-", "-", "up", "tools:tools0 east:tools0-h"]]);
  console.log(`pulumi-netns inspect:\n${run.stdout}`);
});

test("inspect --format json: the same for scripts; interface state is the host's now (a cable taken down by hand shows down)", () => {
  east.sh(["ip", "-n", "tools", "link", "set", "tools0", "down"]);
  try {
    const run = text(cli(["inspect", "--format", "json"]));
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.stringMatching(ASKING) });
    const report = JSON.parse(run.stdout);
    expect(report.stack).toBe("cli-lab/e2e");
    expect(report.hosts).toEqual([
      { name: "east", target: target(east) },
      { name: "west", target: target(west) },
    ]);
    const nodes = Object.fromEntries(report.nodes.map((n: { name: string }) => [n.name, n]));
    expect(Object.keys(nodes)).toEqual(["db", "gw", "pc1", "web", "tools"]);
    expect(nodes.gw).toEqual({
      name: "gw",
      lab: "lab",
      host: "east",
      namespace: "gw",
      router: true,
      interfaces: [
        { name: "lan0", addresses: [address("gw", "lan0")], state: "up" },
        { name: "wan0", addresses: [address("gw", "wan0")], state: "up" },
      ],
      services: [],
    });
    expect(nodes.pc1.interfaces).toEqual([{ name: "eth0", addresses: [address("pc1", "eth0")], state: "up" }]);
    expect(nodes.web.services).toEqual([
      { name: "http", command: ["python3", "-m", "http.server", "8080", "--directory", "/"], state: "running", pid: expect.any(Number) },
    ]);
    expect(nodes.tools).toEqual({
      name: "tools",
      host: "east",
      namespace: "tools",
      interfaces: [{ name: "tools0", addresses: ["10.99.0.1/24"], state: "down" }],
      services: [],
    });
    expect(report.segments.find((s: { id: string }) => s.id === "gw:wan0--web:eth0")).toEqual({
      id: "gw:wan0--web:eth0",
      lab: "lab",
      kind: "link",
      hosts: ["east", "west"],
      members: ["gw:wan0", "web:eth0"],
      subnets: [subnet(address("gw", "wan0"))],
      vni: outputs.vnis["gw:wan0--web:eth0"],
      ...(kernelHasNetem ? { impairment: { delayMs: 20, jitterMs: 2 } } : {}),
      state: "up",
    });
    expect(report.segments.map((s: { id: string; state: string }) => `${s.id} ${s.state}`)).toEqual([
      "db:eth0--web:eth1 down",
      "gw:wan0--web:eth0 up",
      "office up",
      "tools0 up",
    ]);
  } finally {
    east.sh(["ip", "-n", "tools", "link", "set", "tools0", "up"]);
  }
});

test("exec: the command runs in the node's namespace on its host, its output and exit code passed through", () => {
  const both = text(cli(["exec", "pc1", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]));
  expect(both).toEqual({ status: 7, stdout: "out\n", stderr: "err\n" });
  expect(text(cli(["exec", "web", "--", "ip", "netns", "identify"]))).toEqual({ status: 0, stdout: "web\n", stderr: "" });
  // Words after -- are the command's, --help included.
  expect(text(cli(["exec", "gw", "--", "printf", "%s\\n", "--help"]))).toEqual({ status: 0, stdout: "--help\n", stderr: "" });
  // pc1 reaches web across gw and the tunnel between the hosts.
  const ping = text(cli(["exec", "pc1", "--", "ping", "-n", "-c", "1", "-W", "5", bare("web", "eth0")]));
  expect({ status: ping.status, received: ping.stdout.includes(" 1 received") }).toEqual({ status: 0, received: true });
  // Its input is the command's: a shell reading commands from it, without a terminal.
  expect(text(cli(["exec", "db"], 'echo "in $(ip netns identify)"\nexit 4\n'))).toEqual({ status: 4, stdout: "in db\n", stderr: "" });
});

test("bad input is refused, naming what is wrong, before any host is asked (both hosts' sshd stopped meanwhile)", () => {
  const firstLine = (run: Run) => ({ status: run.status, stderr: run.stderr.split("\n")[0] });
  for (const host of lab.hosts) process.kill(host.pid, "SIGSTOP");
  try {
    expect(text(cli(["exec", "pc2", "--", "true"]))).toEqual({
      status: 255,
      stdout: "",
      stderr: 'pulumi-netns: unknown node "pc2" in stack cli-lab/e2e (nodes: db, gw, pc1, tools, web)\n',
    });
    expect(firstLine(cli(["exec", "gw", "ping", "x"]))).toEqual({
      status: 2,
      stderr: "pulumi-netns: the command goes after --: pulumi-netns exec gw -- ping x",
    });
    expect(text(cli(["capture", "gw:eth9", "-w", join(work.dir, "none.pcap")]))).toEqual({
      status: 255,
      stdout: "",
      stderr: `pulumi-netns: node gw (namespace gw on east, ${target(east)}) has no interface eth9 (its interfaces: lan0, wan0, lo, any)\n`,
    });
    expect(firstLine(cli(["capture", "gw:lan0", "--", "-w", "/etc/passwd"]))).toEqual({
      status: 2,
      stderr: "pulumi-netns: the filter's word -w is an option; only a filter expression goes after --",
    });
    expect(firstLine(cli(["capture", "gw:lan0", "-c", "many"]))).toEqual({
      status: 2,
      stderr: "pulumi-netns: --count many: expected a number of packets, 1 or more",
    });
  } finally {
    for (const host of lab.hosts) process.kill(host.pid, "SIGCONT");
  }
});

test("exec: Ctrl-C stops the command on the host (exit 130), SIGTERM one that ignores it; a slow host says what the command waits for", async () => {
  const sleeper = start(["exec", "gw", "--", "sleep", "60"]);
  await until("sleep runs in gw", () => inNamespace(east, "gw").includes("sleep"));
  sleeper.child.kill("SIGINT");
  const stopped = await sleeper.exited;
  expect(stopped.status).toBe(130);
  expect(inNamespace(east, "gw")).toEqual([]);

  // A command that ignores SIGINT: SIGTERM to the command line ends it on the host all the same (TERM).
  const stubborn = start(["exec", "gw", "--", "sh", "-c", "trap '' INT; sleep 60"]);
  await until("the stubborn sleep runs in gw", () => inNamespace(east, "gw").includes("sleep"));
  stubborn.child.kill("SIGINT");
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(inNamespace(east, "gw")).toContain("sleep");
  stubborn.child.kill("SIGTERM");
  expect((await stubborn.exited).status).toBe(128 + 15);
  expect(inNamespace(east, "gw")).toEqual([]);

  // sshd stopped for 3 s: the connection waits, and says for what.
  process.kill(east.pid, "SIGSTOP");
  let slow: Run;
  try {
    const waiting = start(["exec", "gw", "--", "true"]);
    await until("the note on waiting", () => waiting.stderr().includes("connecting"), 20_000);
    process.kill(east.pid, "SIGCONT");
    slow = await waiting.exited;
  } finally {
    process.kill(east.pid, "SIGCONT");
  }
  const note = `pulumi-netns: connecting to node gw (namespace gw on east, ${target(east)})…\n`;
  expect(text(slow)).toEqual({ status: 0, stdout: "", stderr: note });
});

test("exec NODE on a terminal: an interactive shell with a TTY in the node's namespace, its exit code passed through", () => {
  // script(1) gives the command line a terminal, and types the input into it.
  const started = Date.now();
  const session = spawnSync("script", ["-qec", `node ${CLI} exec gw`, "/dev/null"], {
    cwd: dir,
    env: { ...process.env, ...work.env, TERM: "dumb" },
    input: 'echo "ns=$(ip netns identify) tty=$(tty)"\nexit 3\n',
    encoding: "utf8",
    timeout: 60_000,
  });
  kept(["exec", "gw", "(on a terminal)"], { status: session.status, stdout: Buffer.from(session.stdout), stderr: session.stderr }, started);
  expect(session.status).toBe(3);
  expect(session.stdout).toContain(`pulumi-netns: a shell in node gw (namespace gw on east, ${target(east)}); exit leaves it`);
  expect(session.stdout).toMatch(/ns=gw tty=\/dev\/pts\/\d+/);
});

test("capture -w FILE: a ping across the link as a pcap of its ICMP packets; Ctrl-C stops tcpdump, nothing left on the host", async () => {
  const file = join(work.dir, "wan0.pcap");
  const idle = hostProcesses(east);
  const capture = start(["capture", "gw:wan0", "-w", file, "--", "icmp"]);
  await until("tcpdump listens", () => capture.stderr().includes("listening on wan0"));
  expect(inNamespace(east, "gw")).toEqual(["tcpdump"]);
  const ping = text(cli(["exec", "pc1", "--", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", bare("web", "eth0")]));
  expect(ping.status).toBe(0);
  capture.child.kill("SIGINT");
  const run = text(await capture.exited);
  expect(run.status).toBe(0);
  const note = `pulumi-netns: capturing on gw:wan0 in node gw (namespace gw on east, ${target(east)}) into ${file}; Ctrl-C stops it\n`;
  expect(run.stderr).toContain(note);
  expect(run.stderr).toMatch(/^6 packets captured$/m);
  // pc1's packets, routed by gw onto the link, and web's replies.
  const [pc1, web] = [bare("pc1", "eth0"), bare("web", "eth0")];
  expect(icmpPackets(readFileSync(file)).map((p) => `${p.type} ${p.source} > ${p.destination}`)).toEqual(
    Array.from({ length: 3 }, () => [`8 ${pc1} > ${web}`, `0 ${web} > ${pc1}`]).flat(),
  );
  expect(inNamespace(east, "gw")).toEqual([]);
  await until("the capture's session is gone from the host", () => JSON.stringify(hostProcesses(east)) === JSON.stringify(idle));
});

test("capture to the output: the pcap streams out (-c ends it by itself); a capture killed outright leaves nothing running", async () => {
  const capture = start(["capture", "pc1:eth0", "-c", "4", "--", "icmp"]);
  await until("tcpdump listens", () => capture.stderr().includes("listening on eth0"));
  expect(text(cli(["exec", "pc1", "--", "ping", "-n", "-c", "2", "-i", "0.2", bare("gw", "lan0")])).status).toBe(0);
  const run = await capture.exited;
  expect(run.status).toBe(0);
  expect(icmpPackets(run.stdout).map((p) => p.type)).toEqual([8, 0, 8, 0]);

  const killed = start(["capture", "gw:lan0"]);
  await until("tcpdump listens", () => killed.stderr().includes("listening on lan0"));
  killed.child.kill("SIGKILL");
  await killed.exited;
  await until("tcpdump is stopped once its session is gone", () => inNamespace(east, "gw").length === 0);
});

test(`graph: DOT, Mermaid and SVG drawn from the stack are the Lab's own pictures: the pulled cable dotted and down ${netemWords}`, () => {
  const dot = text(cli(["graph"]));
  expect(dot).toEqual({ status: 0, stdout: outputs.topologyDot, stderr: "" });
  expect(dot.stdout).toMatch(/"web" -- "db" \[label="[\d./]+\\ndown", .*style=dotted\]/);
  const impaired = kernelHasNetem ? "\\\\n20 ms ±2 ms" : "";
  const vni = outputs.vnis["gw:wan0--web:eth0"];
  expect(dot.stdout).toMatch(new RegExp(`"gw" -- "web" \\[label="[\\d./]+\\\\nvni ${vni}${impaired}", .*style=dashed\\]`));
  expect(text(cli(["graph", "--format", "mermaid"]))).toEqual({ status: 0, stdout: outputs.topologyMermaid, stderr: "" });
  const file = join(work.dir, "lab.svg");
  expect(text(cli(["graph", "--format", "svg", "-o", file]))).toEqual({ status: 0, stdout: "", stderr: "" });
  const own = spawnSync("dot", ["-Tsvg"], { input: outputs.topologyDot, encoding: "utf8" }).stdout;
  const svg = readFileSync(file, "utf8");
  expect(svg).toBe(own);
  expect(svg).toMatch(/>down<\/text>/);
  if (kernelHasNetem) expect(svg).toMatch(/>20 ms ±2 ms<\/text>/);
});

test("sweep, on the same stack read the same way: nothing is left over on either host", () => {
  const run = text(cli(["sweep"]));
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
  const [title, ...hosts] = run.stdout.trimEnd().split("\n");
  expect(title).toMatch(/^stack cli-lab\/e2e: \d+ resources in its state$/);
  expect(hosts.sort()).toEqual([`${target(east)}: nothing left over`, `${target(west)}: nothing left over`]);
});

test("no credential in anything printed; destroy leaves both hosts as they were", async () => {
  const everything = printed.join("\n");
  expect(everything).not.toContain("PRIVATE KEY");
  expect(everything).not.toContain(lab.clientKey.split("\n")[1]);
  await timed("pulumi destroy", () => stack.destroy());
  destroyed = true;
  expect([hostSnapshot(east), hostSnapshot(west)]).toEqual(before);
});
