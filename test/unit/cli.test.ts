/**
 * The command line's pure parts: its arguments, the stack's state read back as nodes and segments (from a
 * real stack's export, test/unit/fixtures/cliLabState.json), the inspect table, and the Lab's picture
 * drawn again from the Lab's resources, which must be the very picture the Lab drew itself.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { captureArgv, fromPcapStart, parseCaptureArgs } from "../../cli/capture";
import { parseExecArgs } from "../../cli/exec";
import { labToDraw, parseGraphArgs } from "../../cli/graph";
import { HostLook, inspectReport, parseInspectArgs, renderInspect } from "../../cli/inspect";
import { stackState } from "../../cli/stack";
import { findNode, topologyOf } from "../../cli/topology";
import type { IpLinkJson } from "../../provider/iproute";
import { topologyDot, topologyMermaid } from "../../sdk/lab/graph";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n-----END OPENSSH PRIVATE KEY-----\n";

interface Exported {
  urn: string;
  type: string;
  outputs: Record<string, unknown>;
}

/**
 * The fixture's resources, each connection given a private key again (the fixture keeps none). The other
 * fixture is the same stack as the release before LabSegment made it (a Bridge and a Vxlan per segment
 * and host).
 */
function fixture(file = "cliLabState.json"): Exported[] {
  const { resources } = JSON.parse(readFileSync(join(__dirname, "fixtures", file), "utf8")) as { resources: Exported[] };
  for (const resource of resources) {
    const connection = resource.outputs.connection as { plaintext: string } | undefined;
    if (connection) connection.plaintext = JSON.stringify({ ...JSON.parse(connection.plaintext), privateKey: KEY });
  }
  return resources;
}

const stackOutputs = (resources: Exported[]) => resources.find((r) => r.type === "pulumi:pulumi:Stack")!.outputs as Record<string, string>;

describe("arguments", () => {
  test("exec: a node, a command after --, or none for a shell; --tty", () => {
    expect(parseExecArgs(["gw", "--stack", "dev", "--", "ping", "-c", "1", "--help"])).toMatchObject({
      node: "gw",
      stack: "dev",
      command: ["ping", "-c", "1", "--help"],
      tty: false,
    });
    expect(parseExecArgs(["-t", "gw"])).toMatchObject({ node: "gw", tty: true });
    expect(parseExecArgs(["gw"]).command).toBeUndefined();
    expect(() => parseExecArgs([])).toThrow("name the node: pulumi-netns exec NODE [-- COMMAND...]");
    expect(() => parseExecArgs(["gw", "ping", "x"])).toThrow("the command goes after --: pulumi-netns exec gw -- ping x");
    expect(() => parseExecArgs(["gw", "--"])).toThrow("nothing after --: give a command, or leave -- out for a shell");
    expect(() => parseExecArgs(["gw", "--stack", "a", "--stack", "b"])).toThrow("--stack is given 2 times; give it once");
  });

  test("capture: NODE:INTERFACE (a qualified node may hold colons), a file, a count, a filter", () => {
    expect(parseCaptureArgs(["r1:eth0", "-w", "x.pcap", "-c", "5", "--", "icmp", "or", "arp"])).toMatchObject({
      node: "r1",
      interface: "eth0",
      file: "x.pcap",
      count: 5,
      filter: ["icmp", "or", "arp"],
    });
    expect(parseCaptureArgs(["tools@root@10.0.0.7:22:tools0"])).toMatchObject({ node: "tools@root@10.0.0.7:22", interface: "tools0" });
    expect(parseCaptureArgs(["r1:any", "-w", "-"]).file).toBeUndefined();
    expect(() => parseCaptureArgs(["r1"])).toThrow("r1: expected NODE:INTERFACE, e.g. r1:eth0");
    expect(() => parseCaptureArgs(["r1:eth0;reboot"])).toThrow('r1:eth0;reboot: interface "eth0;reboot": an interface name may use');
    expect(() => parseCaptureArgs(["r1:eth0", "-c", "0"])).toThrow("--count 0: expected a number of packets, 1 or more");
    expect(() => parseCaptureArgs(["r1:eth0", "--", "-w", "/etc/passwd"])).toThrow(
      "the filter's word -w is an option; only a filter expression goes after --",
    );
    expect(() => parseCaptureArgs(["r1:eth0", "icmp"])).toThrow("a filter goes after --: pulumi-netns capture r1:eth0 -- icmp");
    expect(() => parseCaptureArgs(["r1:eth0", "-w"])).toThrow("-w needs a value");
  });

  test("inspect and graph: formats, a Lab, an output file", () => {
    expect(parseInspectArgs(["--format", "json"]).format).toBe("json");
    expect(parseInspectArgs([]).format).toBe("table");
    expect(() => parseInspectArgs(["--format", "yaml"])).toThrow("--format yaml: expected one of table, json");
    expect(parseGraphArgs(["--lab", "lab", "--format", "svg", "-o", "lab.svg", "--cwd", "/p"])).toEqual({
      stack: undefined,
      cwd: "/p",
      lab: "lab",
      format: "svg",
      output: "lab.svg",
    });
    expect(() => parseGraphArgs(["--format", "png"])).toThrow("--format png: expected one of dot, mermaid, svg");
    expect(() => parseGraphArgs(["lab"])).toThrow("unexpected argument lab");
  });

  test("capture runs tcpdump in the namespace under the script that stops it when the session's input ends", () => {
    const argv = captureArgv("gw", { interface: "wan0", count: 3, filter: ["icmp"] });
    expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(argv[2]).toMatch(/\{ cat >\/dev\/null; kill "\$command"; \} <&3/);
    const tcpdump = ["tcpdump", "--immediate-mode", "-i", "wan0", "-U", "-w", "-", "-c", "3", "icmp"];
    expect(argv.slice(3)).toEqual(["sh", "ip", "netns", "exec", "gw", ...tcpdump]);
  });
});

describe("a stack's state", () => {
  const resources = fixture();
  const topology = topologyOf(stackState(resources as never));

  test("the Lab's picture drawn from its resources is the one the Lab drew: pulled cable dotted and down, impairment, VNI", () => {
    const { plan } = labToDraw(topology, "cli-lab/e2e", undefined);
    const own = stackOutputs(resources);
    expect(topologyDot(plan)).toBe(own.topologyDot);
    expect(topologyMermaid(plan)).toBe(own.topologyMermaid);
    expect(own.topologyDot).toMatch(/"web" -- "db" \[label="10\.1\.181\.216\/30\\ndown".*style=dotted\]/);
    expect(own.topologyDot).toMatch(/"gw" -- "web" \[label="10\.1\.234\.4\/30\\nvni \d+\\n20 ms ±2 ms".*style=dashed\]/);
    expect(() => labToDraw(topology, "cli-lab/e2e", "other")).toThrow("--lab other: stack cli-lab/e2e has no such Lab (Labs: lab)");
  });

  test("a stack not yet moved to LabSegment (a Bridge and a Vxlan per segment and host) reads as the same topology", () => {
    const before = topologyOf(stackState(fixture("cliLabStateBeforeLabSegment.json") as never));
    expect({ ...before, connections: [...before.connections.keys()] }).toEqual({
      ...topology,
      connections: [...topology.connections.keys()],
    });
    expect(before.labs[0].plan.lans[0].bridges).toEqual([{ host: "east", name: expect.stringMatching(/^nlb-/) }]);
    expect(before.labs[0].plan.links.find((l) => l.vxlan)!.vxlan!.ends.map((e) => e.host)).toEqual(["east", "west"]);
  });

  test("nodes: the Lab's, by the Lab's host names, and the plain resources' namespace; segments, their VNI, impairment, state", () => {
    const vni = (stackOutputs(resources) as unknown as { vnis: Record<string, number> }).vnis["gw:wan0--web:eth0"];
    const interfaces = (n: (typeof topology.nodes)[number]) => n.interfaces.map((i) => `${i.name} ${i.addresses.join(",")} ${i.up}`).sort();
    expect(topology.nodes.map((n) => [n.name, n.lab, n.host, n.namespace, interfaces(n)])).toEqual([
      ["db", "lab", "west", "db", ["eth0 10.1.181.218/30 false"]],
      ["gw", "lab", "east", "gw", ["lan0 172.16.100.16/24 true", "wan0 10.1.234.5/30 true"]],
      ["pc1", "lab", "east", "pc1", ["eth0 172.16.100.57/24 true"]],
      ["web", "lab", "west", "web", ["eth0 10.1.234.6/30 true", "eth1 10.1.181.217/30 false"]],
      ["tools", undefined, "east", "tools", ["tools0 10.99.0.1/24 true"]],
    ]);
    expect(topology.nodes.find((n) => n.name === "web")!.services).toEqual([
      { name: "http", command: ["python3", "-m", "http.server", "8080", "--directory", "/"] },
    ]);
    expect(topology.segments).toEqual([
      {
        id: "db:eth0--web:eth1",
        lab: "lab",
        kind: "link",
        hosts: ["west"],
        members: ["web:eth1", "db:eth0"],
        subnets: ["10.1.181.216/30"],
        down: true,
      },
      {
        id: "gw:wan0--web:eth0",
        lab: "lab",
        kind: "link",
        hosts: ["east", "west"],
        members: ["gw:wan0", "web:eth0"],
        subnets: ["10.1.234.4/30"],
        vni,
        // Each end has half the delay and jitter; the link's are the program's.
        impairment: { delayMs: 20, jitterMs: 2 },
        down: false,
      },
      {
        id: "office",
        lab: "lab",
        kind: "lan",
        hosts: ["east"],
        members: ["gw:lan0", "pc1:eth0"],
        subnets: ["172.16.100.0/24"],
        down: false,
      },
      { id: "tools0", kind: "veth", hosts: ["east"], members: ["tools:tools0", "east:tools0-h"], down: false },
    ]);
    const unknown = 'unknown node "gw2" in stack cli-lab/e2e (nodes: db, gw, pc1, tools, web)';
    expect(() => findNode(topology, "cli-lab/e2e", "gw2")).toThrow(unknown);
  });

  test("two nodes of one name (a Lab's and a plain namespace on another host) are each named by their Lab or host", () => {
    const tools = resources.find((r) => r.urn.endsWith("::tools"))!;
    const westConnection = resources.find((r) => r.urn.endsWith("::lab/db"))!.outputs.connection;
    const gw = {
      ...tools,
      urn: "urn:pulumi:e2e::cli-lab::pulumi-nodejs:dynamic/netns:Namespace::gw",
      outputs: { ...tools.outputs, name: "gw", connection: westConnection },
    };
    const clash = topologyOf(stackState([...resources, gw] as never));
    expect(clash.nodes.map((n) => n.name)).toEqual(["db", "lab/gw", "pc1", "web", "tools", "gw@west"]);
  });

  test("a service's command the program kept secret shows as [secret]; sweep still gets it plain", () => {
    const secret = (value: unknown) => ({
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
      plaintext: JSON.stringify(value),
    });
    const withSecret = resources.map((r) =>
      r.type.endsWith(":Service") ? { ...r, outputs: { ...r.outputs, command: secret(r.outputs.command) } } : r,
    );
    const state = stackState(withSecret as never);
    const service = state.resources.find((r) => r.kind === "Service")!;
    expect(service.outputs.command).toEqual(resources.find((r) => r.type.endsWith(":Service"))!.outputs.command);
    const shown = topologyOf(state).nodes.flatMap((n) => n.services);
    expect(shown.map((s) => s.command)).toEqual([["[secret]"]]);
  });

  test("inspect: the hosts' links and services beside what the stack made; a host not reached is said; no credential in any output", () => {
    const link = (ifname: string, operstate: string, ...addresses: string[]): IpLinkJson => ({
      ifindex: 2,
      ifname,
      mtu: 1500,
      operstate,
      addr_info: [
        ...addresses.map((a) => ({ local: a.split("/")[0], prefixlen: Number(a.split("/")[1]) })),
        { local: "fe80::1", prefixlen: 64, scope: "link" },
      ],
    });
    const east: HostLook = {
      links: new Map([
        ["gw", [link("lo", "UNKNOWN", "127.0.0.1/8"), link("lan0", "UP", "172.16.100.16/24"), link("wan0", "UP", "10.1.234.5/30")]],
        // pc1's cable taken down by hand, and one more interface made by hand.
        ["pc1", [link("eth0", "DOWN", "172.16.100.57/24"), link("dummy0", "UNKNOWN")]],
      ]),
      services: new Map(),
    };
    const west: HostLook = { error: "root@198.18.170.11:22: timeout: the host did not answer" };
    const report = inspectReport(
      "cli-lab/e2e",
      topology,
      new Map([
        ["east", east],
        ["west", west],
      ]),
    );
    expect(renderInspect(report)).toBe(
      [
        "stack cli-lab/e2e",
        "",
        'lab "lab" on east (root@198.18.170.10:22), west (root@198.18.170.11:22)',
        "",
        "NODE  HOST  NAMESPACE  INTERFACE  ADDRESSES         STATE    SERVICES",
        "db    west  db         eth0       10.1.181.218/30   unknown",
        "gw    east  gw         lan0       172.16.100.16/24  up",
        "                       wan0       10.1.234.5/30     up",
        "pc1   east  pc1        eth0       172.16.100.57/24  down",
        "                       dummy0     -                 unknown",
        "web   west  web        eth0       10.1.234.6/30     unknown  http: unknown",
        "                       eth1       10.1.181.217/30   unknown",
        "",
        "SEGMENT            KIND  HOSTS      VNI      IMPAIRMENT             STATE  MEMBERS",
        "db:eth0--web:eth1  link  west       -        -                      down   web:eth1 db:eth0",
        "gw:wan0--web:eth0  link  east,west  9994455  delayMs=20 jitterMs=2  up     gw:wan0 web:eth0",
        "office             lan   east       -        -                      up     gw:lan0 pc1:eth0",
        "",
        "plain resources on east (root@198.18.170.10:22)",
        "",
        "NODE   HOST  NAMESPACE  INTERFACE  ADDRESSES     STATE    SERVICES",
        "tools  east  tools      tools0     10.99.0.1/24  missing",
        "",
        "SEGMENT  KIND  HOSTS  VNI  IMPAIRMENT  STATE  MEMBERS",
        "tools0   veth  east   -    -           up     tools:tools0 east:tools0-h",
        "",
        "west: not asked: root@198.18.170.11:22: timeout: the host did not answer (its interfaces show as the stack made them)",
        "",
      ].join("\n"),
    );
    const json = JSON.stringify(report);
    expect(report.hosts).toEqual([
      { name: "east", target: "root@198.18.170.10:22" },
      { name: "west", target: "root@198.18.170.11:22", error: "root@198.18.170.11:22: timeout: the host did not answer" },
    ]);
    expect(`${json}${renderInspect(report)}`).not.toMatch(/PRIVATE KEY|privateKey|hostKey/);
  });
});

test("a capture hands on its pcap from the first byte, whatever the login shell printed before it", async () => {
  const received: Buffer[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      received.push(chunk);
      done();
    },
  });
  const pcap = Buffer.concat([Buffer.from("d4c3b2a1", "hex"), Buffer.from("0200040000000000", "hex"), Buffer.from("packets")]);
  const noise = Buffer.from("Welcome! \xd4\n");
  const stream = fromPcapStart(output);
  // The magic split across writes, after text that starts like it.
  for (const piece of [noise, pcap.subarray(0, 2), pcap.subarray(2, 9), pcap.subarray(9)]) {
    await new Promise<void>((resolve, reject) => stream.write(piece, (err) => (err ? reject(err) : resolve())));
  }
  expect(Buffer.concat(received)).toEqual(pcap);
});
