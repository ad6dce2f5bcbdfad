/**
 * Masquerade and PortForward on a real host, with real traffic: rules are found by their mark whatever
 * their shape (edited by hand), FORWARD accepts sit behind an administrator's DOCKER-USER,
 * hairpin traffic reaches the target, and stale UDP conntrack entries are flushed.
 *
 * h0 carries a bridge lab (red 192.168.15.1, blue .2, the host .5 on the bridge; FORWARD policy DROP,
 * as on Docker hosts); h1 is a client from outside.
 */
import { closeAllHosts } from "../../provider";
import type { Props } from "../../provider/kind";
import { engine } from "../harness/engine";
import { TestHost, TestLab } from "../harness/throwawayHosts";

let lab: TestLab;
let h0: TestHost;
let h1: TestHost;
let connection: Record<string, unknown>;
const masquerade = engine("Masquerade");
const portForward = engine("PortForward");

const LAB = "192.168.15.0/24";
const RED = "192.168.15.1";
const BLUE = "192.168.15.2";
const GATEWAY = "192.168.15.5";

beforeAll(async () => {
  lab = await TestLab.create(2);
  [h0, h1] = lab.hosts;
  connection = h0.connection();
  const sh = (...argv: string[]) => h0.sh(argv);
  sh("ip", "link", "add", "br-lab", "type", "bridge");
  sh("ip", "addr", "add", `${GATEWAY}/24`, "dev", "br-lab");
  sh("ip", "link", "set", "br-lab", "up");
  for (const [ns, ip] of [
    ["red", RED],
    ["blue", BLUE],
  ]) {
    sh("ip", "netns", "add", ns);
    sh("ip", "link", "add", `veth-${ns}`, "type", "veth", "peer", "name", `veth-${ns}-br`);
    sh("ip", "link", "set", `veth-${ns}`, "netns", ns);
    sh("ip", "link", "set", `veth-${ns}-br`, "master", "br-lab", "up");
    sh("ip", "-n", ns, "addr", "add", `${ip}/24`, "dev", `veth-${ns}`);
    sh("ip", "-n", ns, "link", "set", `veth-${ns}`, "up");
    sh("ip", "-n", ns, "link", "set", "lo", "up");
    sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY);
  }
  sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
  sh("iptables", "-w", "-P", "FORWARD", "DROP");
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

const iptables = (...args: string[]) => h0.sh(["iptables", "-w", ...args]);
/** Every rule line on h0 carrying exactly this id's mark. */
const marked = (id: string) =>
  ["nat", "filter"].flatMap((table) =>
    h0
      .sh(["iptables-save", "-t", table])
      .split("\n")
      .filter((line) => line.includes(`"pulumi-netns:${id}"`))
      .map((line) => `${table} ${line}`),
  );
const forwardChain = () =>
  iptables("-S", "FORWARD")
    .split("\n")
    .filter((l) => l.startsWith("-A"));

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Tiny servers that answer each client with "NAME CLIENT-ADDRESS". */
const TCP_SERVER = `import socket,sys
s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind((sys.argv[1],int(sys.argv[2])));s.listen()
while True:
  c,a=s.accept();c.sendall(f"{sys.argv[3]} {a[0]}".encode());c.close()`;
const UDP_SERVER = `import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind((sys.argv[1],int(sys.argv[2])))
while True:
  d,a=s.recvfrom(100);s.sendto(f"{sys.argv[3]} {a[0]}".encode(),a)`;
const TCP_CLIENT = `import socket,sys
try: print(socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3).recv(100).decode())
except OSError as e: print("no answer:",e)`;
/** Always from source port 40000, so that every try is the same conntrack flow. */
const UDP_CLIENT = `import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("",40000));s.settimeout(2)
s.sendto(b"x",(sys.argv[1],int(sys.argv[2])))
try: print(s.recvfrom(100)[0].decode())
except OSError as e: print("no answer:",e)`;

const inNs = (ns: string | undefined, argv: string[]) => (ns ? ["ip", "netns", "exec", ns, ...argv] : argv);

async function serve(kind: "tcp" | "udp", ns: string | undefined, address: string, port: number, name: string) {
  const server = h0.spawn(inNs(ns, ["/usr/bin/python3", "-c", kind === "tcp" ? TCP_SERVER : UDP_SERVER, address, String(port), name]));
  const ss = kind === "tcp" ? "-ltn" : "-lun";
  await waitFor(() => h0.sh(inNs(ns, ["ss", ss])).includes(`${address}:${port}`), `${name} listening`);
  return server;
}

const ask = (host: TestHost, ns: string | undefined, kind: "tcp" | "udp", address: string, port: number) =>
  host
    .sh(inNs(ns, ["/usr/bin/python3", "-c", kind === "tcp" ? TCP_CLIENT : UDP_CLIENT, address, String(port)]), { timeoutMs: 10_000 })
    .trim();

const ping = (ns: string, target: string) =>
  h0
    .sh(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", target], { allowFailure: true, timeoutMs: 10_000 })
    .includes(" 1 received");

describe("rules are recognised by their mark, not their shape", () => {
  test("Masquerade: edited shapes, a duplicate, a rule moved to FORWARD, a missing jump are drift; update converges; delete", async () => {
    const inputs = { connection, source: LAB };
    const { id, outs, news } = await masquerade.create(inputs);
    const desired = marked(id);
    expect(desired).toHaveLength(3);
    const lookalike = `${id}0`;
    iptables("-t", "nat", "-A", "POSTROUTING", "-s", LAB, "-m", "comment", "--comment", `pulumi-netns:${lookalike}`, "-j", "MASQUERADE");

    // Edits by hand: a MASQUERADE without "! -d", an accept inserted into FORWARD itself.
    iptables("-t", "nat", "-A", "POSTROUTING", "-s", LAB, "-m", "comment", "--comment", `pulumi-netns:${id}`, "-j", "MASQUERADE");
    iptables("-I", "FORWARD", "-s", LAB, "-m", "comment", "--comment", `pulumi-netns:${id}`, "-j", "ACCEPT");
    // A second copy of a current rule.
    iptables(
      "-t",
      "nat",
      "-A",
      "POSTROUTING",
      "-s",
      LAB,
      "!",
      "-d",
      LAB,
      "-m",
      "comment",
      "--comment",
      `pulumi-netns:${id}`,
      "-j",
      "MASQUERADE",
    );
    // Shadowed: the jump to our chain is gone.
    iptables("-D", "FORWARD", "-j", "PULUMI-NETNS-FWD");

    const read = await masquerade.read(id, outs);
    const rules = read.props.rules as string[];
    expect(rules).toContain(`iptables -t nat -A POSTROUTING -s ${LAB} -m comment --comment pulumi-netns:${id} -j MASQUERADE`);
    expect(rules).toContain(`iptables -t filter -A FORWARD -s ${LAB} -m comment --comment pulumi-netns:${id} -j ACCEPT`);
    expect(rules).not.toContain("iptables -t filter -A FORWARD -j PULUMI-NETNS-FWD");
    expect(rules.filter((r) => r.includes(`! -d ${LAB}`))).toHaveLength(2);
    expect(await masquerade.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });

    const updated = await masquerade.update(id, read.props, inputs);
    expect(marked(id).sort()).toEqual([...desired].sort());
    expect(forwardChain()[0]).toBe("-A FORWARD -j PULUMI-NETNS-FWD");
    expect(updated.rules).toEqual(outs.rules);
    expect(await masquerade.diff(id, updated, news)).toMatchObject({ changes: false });

    await masquerade.delete(id, updated);
    expect(marked(id)).toEqual([]);
    expect(marked(lookalike)).toHaveLength(1);
    expect(iptables("-S")).not.toContain("PULUMI-NETNS-FWD");
    iptables("-t", "nat", "-D", "POSTROUTING", "-s", LAB, "-m", "comment", "--comment", `pulumi-netns:${lookalike}`, "-j", "MASQUERADE");
  });
});

describe("FORWARD accepts respect the administrator's DOCKER-USER", () => {
  test("a DROP in DOCKER-USER still blocks the lab; the shared chain comes right after it, repaired when moved or shadowed", async () => {
    iptables("-N", "DOCKER-USER");
    iptables("-A", "DOCKER-USER", "-s", LAB, "-j", "DROP");
    iptables("-I", "FORWARD", "-j", "DOCKER-USER");
    const inputs = { connection, source: LAB };
    const { id, outs, news } = await masquerade.create(inputs);
    const other = await masquerade.create({ connection, source: "10.99.0.0/16" });
    try {
      expect(forwardChain()).toEqual(["-A FORWARD -j DOCKER-USER", "-A FORWARD -j PULUMI-NETNS-FWD"]);
      expect(ping("blue", h1.address)).toBe(false);
      iptables("-D", "DOCKER-USER", "-s", LAB, "-j", "DROP");
      expect(ping("blue", h1.address)).toBe(true);

      // Someone moves our accept into FORWARD itself, and our jump ahead of DOCKER-USER.
      const accept = ["-s", LAB, "-m", "comment", "--comment", `pulumi-netns:${id}`, "-j", "ACCEPT"];
      iptables("-D", "PULUMI-NETNS-FWD", ...accept);
      iptables("-A", "FORWARD", ...accept);
      iptables("-D", "FORWARD", "-j", "PULUMI-NETNS-FWD");
      iptables("-I", "FORWARD", "-j", "PULUMI-NETNS-FWD");
      const read = await masquerade.read(id, outs);
      expect(await masquerade.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });
      const updated = await masquerade.update(id, read.props, inputs);
      expect(updated.rules).toEqual(outs.rules);
      expect(forwardChain()).toEqual(["-A FORWARD -j DOCKER-USER", "-A FORWARD -j PULUMI-NETNS-FWD"]);
      expect(iptables("-S", "PULUMI-NETNS-FWD")).toContain(
        `-A PULUMI-NETNS-FWD -s ${LAB} -m comment --comment "pulumi-netns:${id}" -j ACCEPT`,
      );

      // The chain is shared: it stays while another resource's rules are in it.
      await masquerade.delete(id, updated);
      expect(forwardChain()).toEqual(["-A FORWARD -j DOCKER-USER", "-A FORWARD -j PULUMI-NETNS-FWD"]);
      await masquerade.delete(other.id, other.outs);
      expect(forwardChain()).toEqual(["-A FORWARD -j DOCKER-USER"]);
      expect(iptables("-S")).not.toContain("PULUMI-NETNS-FWD");
    } finally {
      await masquerade.delete(id, outs);
      await masquerade.delete(other.id, other.outs);
      iptables("-D", "FORWARD", "-j", "DOCKER-USER");
      iptables("-F", "DOCKER-USER");
      iptables("-X", "DOCKER-USER");
    }
  });
});

describe("PortForward matches CNI portmap", () => {
  let masq: { id: string; outs: Props };

  beforeAll(async () => {
    masq = await masquerade.create({ connection, source: LAB });
  });

  afterAll(async () => {
    if (masq) await masquerade.delete(masq.id, masq.outs);
  });

  test("hairpin: a lab member reaches the target through a host address; outside clients keep their source", async () => {
    const server = await serve("tcp", "blue", BLUE, 80, "blue");
    // With br_netfilter, conntrack also sees bridged replies and un-NATs them: hairpin then works by
    // accident. Hosts without it are the case that needs hairpinNetwork.
    const bridgeNf = (value: string) => h0.sh(["sysctl", "-q", "-w", `net.bridge.bridge-nf-call-iptables=${value}`]);
    bridgeNf("0");
    try {
      const plain = await portForward.create({ connection, protocol: "tcp", port: 8080, to: `${BLUE}:80` });
      expect(ask(h1, undefined, "tcp", h0.address, 8080)).toBe(`blue ${h1.address}`);
      // Without hairpin, blue answers red directly, from an address red never spoke to.
      expect(ask(h0, "red", "tcp", h0.address, 8080)).toMatch(/^no answer/);
      await portForward.delete(plain.id, plain.outs);

      const { id, outs } = await portForward.create({ connection, protocol: "tcp", port: 8080, to: `${BLUE}:80`, hairpinNetwork: LAB });
      expect(ask(h0, "red", "tcp", h0.address, 8080)).toBe(`blue ${GATEWAY}`);
      expect(ask(h0, "red", "tcp", GATEWAY, 8080)).toBe(`blue ${GATEWAY}`);
      // Even the target itself, through the host.
      expect(ask(h0, "blue", "tcp", h0.address, 8080)).toBe(`blue ${GATEWAY}`);
      expect(ask(h1, undefined, "tcp", h0.address, 8080)).toBe(`blue ${h1.address}`);
      bridgeNf("1");
      expect(ask(h0, "red", "tcp", h0.address, 8080)).toBe(`blue ${GATEWAY}`);
      await portForward.delete(id, outs);
      expect(marked(id)).toEqual([]);
    } finally {
      bridgeNf("1");
      server.kill("SIGKILL");
    }
  });

  test("UDP: a conntrack entry older than the rule bypasses a DNAT; create and delete flush it", async () => {
    const atHost = await serve("udp", undefined, "0.0.0.0", 5353, "host");
    const inBlue = await serve("udp", "blue", BLUE, 53, "blue");
    try {
      expect(ask(h1, undefined, "udp", h0.address, 5353)).toBe(`host ${h1.address}`);
      expect(h0.sh(["conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353"], { allowFailure: true })).toContain("sport=40000");

      // A DNAT added by hand, without a flush: the same flow still reaches the host itself.
      const dnat = [
        "-p",
        "udp",
        "-m",
        "addrtype",
        "--dst-type",
        "LOCAL",
        "-m",
        "udp",
        "--dport",
        "5353",
        "-j",
        "DNAT",
        "--to-destination",
        `${BLUE}:53`,
      ];
      iptables("-t", "nat", "-A", "PREROUTING", ...dnat);
      expect(ask(h1, undefined, "udp", h0.address, 5353)).toBe(`host ${h1.address}`);
      iptables("-t", "nat", "-D", "PREROUTING", ...dnat);

      const { id, outs } = await portForward.create({ connection, protocol: "udp", port: 5353, to: `${BLUE}:53` });
      expect(ask(h1, undefined, "udp", h0.address, 5353)).toBe(`blue ${h1.address}`);
      await portForward.delete(id, outs);
      expect(ask(h1, undefined, "udp", h0.address, 5353)).toBe(`host ${h1.address}`);
    } finally {
      atHost.kill("SIGKILL");
      inBlue.kill("SIGKILL");
    }
  });
});
