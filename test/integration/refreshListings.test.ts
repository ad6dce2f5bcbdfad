/**
 * A refresh reads every link, address and iptables rule of a host from one listing per kind, so the
 * listings it sends do not grow with the resources, also when reads of other kinds (sysctls, routes)
 * run in between; and a listing never answers a read after this process changed the host. Its
 * listings change nothing: a namespace of someone else's gets no iptables tables from them.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { closeAllHosts, hostFor, LISTING_REUSE_MS } from "../../provider/ssh/pool";
import { connection as connectionSchema } from "../../provider/connection";
import { byNamespace, inEveryNamespace, LISTING_PARTS, listEveryNamespace } from "../../provider/host";
import { listLinks } from "../../provider/iproute";
import type { Props } from "../../provider/kind";
import { findOrphans } from "../../provider/sweep";
import { engine } from "../harness/engine";
import { TestHost, TestLab } from "../harness/throwawayHosts";

let lab: TestLab;
let host: TestHost;
let connection: Record<string, unknown>;

beforeAll(async () => {
  lab = await TestLab.create(1);
  host = lab.hosts[0];
  connection = host.connection();
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

interface Made {
  kind: ReturnType<typeof engine>;
  id: string;
  outs: Props;
}

/**
 * The scale program's lab: a bridge, COUNT namespaces each cabled to it with an address, its own
 * forwarding switch and a route; and one masquerade.
 */
async function build(count: number): Promise<Made[]> {
  const made: Made[] = [];
  const make = async (kindName: string, inputs: Props) => {
    const kind = engine(kindName);
    const { id, outs } = await kind.create({ connection, ...inputs });
    made.push({ kind, id, outs });
    return outs;
  };
  await make("Bridge", { name: "br-count" });
  for (let i = 0; i < count; i++) {
    await make("Namespace", { name: `cnt${i}` });
    await make("Veth", { name: "eth0", namespace: `cnt${i}`, peer: { name: `vc${i}`, master: "br-count" } });
    await make("Address", { namespace: `cnt${i}`, device: "eth0", address: `10.61.0.${i + 1}/24` });
    await make("Sysctl", { namespace: `cnt${i}`, key: "net.ipv4.ip_forward", value: "1" });
    await make("Route", { namespace: `cnt${i}`, destination: "10.62.0.0/16", via: "10.61.0.254" });
  }
  await make("Masquerade", { source: "10.61.0.0/24" });
  return made;
}

/** The commands the pool sends while `work` runs, from its debug log. */
async function commandsSent(work: () => Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.env.PULUMI_NETNS_DEBUG = "1";
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const line = String(chunk);
    if (line.startsWith("[pulumi-netns]")) sent.push(line.replace(/^.*?ms: /, "").trim());
    else return write(chunk, ...rest);
    return true;
  }) as typeof process.stderr.write;
  try {
    await work();
  } finally {
    process.stderr.write = write;
    delete process.env.PULUMI_NETNS_DEBUG;
  }
  return sent;
}

/** Reads everything the way the engine refreshes: 8 at a time (its default on 2 cores). */
async function refresh(made: Made[]): Promise<string[]> {
  const queue = [...made];
  const ids: string[] = [];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) ids.push((await next.kind.read(next.id, next.outs)).id);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return ids;
}

async function teardown(made: Made[]): Promise<void> {
  for (const { kind, id, outs } of made.reverse()) await kind.delete(id, outs);
}

const isListing = (command: string) => command.includes("pulumi-netns-listed");

test("a refresh sends the same few listings for 1 namespace as for 20, whatever other reads run between", async () => {
  const counts: number[] = [];
  for (const count of [1, 20]) {
    const made = await build(count);
    try {
      // A new provider process, as each `pulumi refresh` starts one.
      closeAllHosts();
      let ids: string[] = [];
      const sent = await commandsSent(async () => {
        ids = await refresh(made);
      });
      expect(ids).toEqual(expect.arrayContaining(made.map((m) => m.id)));
      expect(ids.filter((id) => id === "")).toEqual([]);
      // Links with their addresses; the nat and filter tables; each in LISTING_PARTS parts. A sysctl or
      // route read changes nothing, so it does not end the sharing.
      expect(sent.filter(isListing)).toHaveLength(3 * LISTING_PARTS);
      // Besides: one read per sysctl and per route.
      expect(sent.filter((command) => !isListing(command))).toHaveLength(2 * count);
      counts.push(sent.filter(isListing).length);
    } finally {
      await teardown(made);
    }
  }
  expect(counts[0]).toBe(counts[1]);
});

/**
 * A Lab's shape: a bridge and COUNT LabNodes on it, each checking that it reaches the next, and a
 * service in the first node. Listed node, check, node, check…, so that reads of each kind interleave.
 */
async function buildLab(count: number): Promise<Made[]> {
  const made: Made[] = [];
  const make = async (kindName: string, inputs: Props) => {
    const kind = engine(kindName);
    const { id, outs } = await kind.create({ connection, ...inputs });
    made.push({ kind, id, outs });
  };
  await make("Bridge", { name: "br-lab" });
  const address = (i: number) => `10.63.0.${i + 1}`;
  for (let i = 0; i < count; i++) {
    const interfaces = { eth0: { bridge: { name: "br-lab", hostEnd: `lh${i}` }, addresses: [`${address(i)}/24`] } };
    await make("LabNode", { name: `ln${i}`, interfaces, routes: [{ destination: "10.64.0.0/16", via: "10.63.0.254", device: "eth0" }] });
  }
  for (let i = 0; i < count; i++)
    await make("Check", { namespace: `ln${i}`, from: `ln${i}`, targets: [{ address: address((i + 1) % count) }] });
  await make("Service", { name: "idle", namespace: "ln0", command: ["sleep", "600"], restart: "never" });
  const [bridge, ...rest] = made;
  const nodes = rest.slice(0, count);
  const others = rest.slice(count);
  return [bridge, ...nodes.flatMap((node, i) => [node, ...(others[i] ? [others[i]] : [])]), ...others.slice(count)];
}

test("a Lab's refresh lists each part of every namespace once, however its checks' probes and services' looks interleave", async () => {
  const counts: number[] = [];
  for (const count of [2, 12]) {
    const made = await buildLab(count);
    try {
      closeAllHosts();
      let ids: string[] = [];
      const sent = await commandsSent(async () => {
        ids = await refresh(made);
      });
      expect(ids.filter((id) => id === "")).toEqual([]);
      // Every probe ran, each a read that keeps the listings.
      expect(sent.filter((command) => command.includes("received"))).toHaveLength(count);
      // Links with addresses, IPv4 and IPv6 routes, forwarding: each in LISTING_PARTS parts, once.
      expect(sent.filter(isListing)).toHaveLength(4 * LISTING_PARTS);
      counts.push(sent.filter(isListing).length);
    } finally {
      await teardown(made);
    }
  }
  expect(counts[0]).toBe(counts[1]);
});

/**
 * One namespace's lab, its veth read once (a listing) and then set down by hand, which that listing does
 * not know; `work` gets the namespace and the veth, and the lab is removed after.
 */
async function afterHandMadeChange(work: (namespace: Made, veth: Made) => Promise<void>): Promise<void> {
  const made = await build(1);
  const [, namespace, veth] = made;
  try {
    closeAllHosts();
    expect(await veth.kind.read(veth.id, veth.outs)).toMatchObject({ props: { up: true } });
    host.sh(["ip", "-n", "cnt0", "link", "set", "eth0", "down"]);
    await work(namespace, veth);
  } finally {
    await teardown(made);
  }
}

test("a listing taken before this process changed the host never answers a read after the change", () =>
  afterHandMadeChange(async (namespace, veth) => {
    // Within the reuse window and with nothing run since, the listing still answers: that is the sharing.
    expect(await commandsSent(() => veth.kind.read(veth.id, veth.outs))).toEqual([]);
    // A read of ours (a namespace update with nothing to change reads only) keeps it.
    await namespace.kind.update(namespace.id, namespace.outs, { connection, name: "cnt0" });
    expect(await veth.kind.read(veth.id, veth.outs)).toMatchObject({ props: { up: true } });
    // Any other command of ours on this host (here setting lo down) ends that: the next read lists again.
    await namespace.kind.update(namespace.id, namespace.outs, { connection, name: "cnt0", loopbackUp: false });
    expect(await veth.kind.read(veth.id, veth.outs)).toMatchObject({ props: { up: false } });
  }));

test("a change through another connection to the same host (other credentials or settings) also ends the sharing", () =>
  afterHandMadeChange(async (namespace, veth) => {
    // Another spelling of the connection to the same machine has its own pooled connection.
    const other = { ...connection, commandTimeout: 59 };
    await namespace.kind.update(
      namespace.id,
      { ...namespace.outs, connection: other },
      { connection: other, name: "cnt0", loopbackUp: false },
    );
    expect(await veth.kind.read(veth.id, veth.outs)).toMatchObject({ props: { up: false } });
  }));

test("a command flagged read-only that is not on the list of reads is refused before it runs", async () => {
  const pooled = hostFor(connectionSchema.parse(connection));
  const sent = await commandsSent(() =>
    expect(pooled.run(["ip", "link", "add", "ro-test", "type", "dummy"], { readOnly: true })).rejects.toThrow(
      /not a read-only command, refused: ip link add ro-test/,
    ),
  );
  expect(sent).toEqual([]);
  expect(host.sh(["ip", "-j", "link", "show"])).not.toContain("ro-test");
});

/** Runs `work` with this process's clock moved on by `ms` (the pool's reuse window is counted on it). */
async function later<T>(ms: number, work: () => Promise<T>): Promise<T> {
  const realNow = Date.now.bind(Date);
  const spy = jest.spyOn(Date, "now").mockImplementation(() => realNow() + ms);
  try {
    return await work();
  } finally {
    spy.mockRestore();
  }
}

test("a listing older than the reuse window lists again", async () => {
  const made = await build(1);
  const veth = made[2];
  try {
    closeAllHosts();
    await veth.kind.read(veth.id, veth.outs);
    host.sh(["ip", "-n", "cnt0", "link", "set", "eth0", "down"]);
    expect(await later(LISTING_REUSE_MS - 1_000, () => veth.kind.read(veth.id, veth.outs))).toMatchObject({ props: { up: true } });
    expect(await later(2 * LISTING_REUSE_MS, () => veth.kind.read(veth.id, veth.outs))).toMatchObject({ props: { up: false } });
  } finally {
    await teardown(made);
  }
});

test("a listing asked again within the reuse window keeps answering, past the window's length (a long refresh's reads)", async () => {
  const made = await build(1);
  const veth = made[2];
  try {
    closeAllHosts();
    const sent = await commandsSent(async () => {
      for (let i = 0; i < 4; i++) await later((i * LISTING_REUSE_MS) / 2, () => veth.kind.read(veth.id, veth.outs));
    });
    expect(sent.filter(isListing)).toHaveLength(LISTING_PARTS);
  } finally {
    await teardown(made);
  }
});

test("a host's listing keeps answering while the refresh waits on another host's listings (no ping-pong between hosts)", async () => {
  // Another spelling of the connection is another pooled target: it stands for a second host here.
  const [a, b] = [connection, { ...connection, commandTimeout: 59 }].map((c) => hostFor(connectionSchema.parse(c)));
  closeAllHosts();
  const sent = await commandsSent(async () => {
    await listLinks(a);
    const bListing = listLinks(b);
    // While b lists, past the reuse window since a's listing answered, a's listing still answers.
    await later(2 * LISTING_REUSE_MS, () => listLinks(a));
    await bListing;
  });
  // a's links were listed once, and b's once.
  expect(sent.filter(isListing)).toHaveLength(2 * LISTING_PARTS);
});

test("the parts of a listing cover every namespace once: the host's own in the first, each named one in one part", async () => {
  // Names ending in each kind of character a namespace name may end with.
  const names = ["pa", "pb", "p0", "p9", "p_", "p.x", "p@Z", "p+1", "p-q", "PQ", ".dot", "..two"];
  for (const name of names) host.sh(["ip", "netns", "add", name]);
  try {
    const pooled = hostFor(connectionSchema.parse(connection));
    const argv = ["ip", "-j", "link", "show"];
    const parts = await Promise.all(
      Array.from({ length: LISTING_PARTS }, (_, part) => pooled.run(inEveryNamespace(argv, part, LISTING_PARTS))),
    );
    const listed = parts.flatMap((result) => [...byNamespace(result).keys()]);
    expect(listed.sort()).toEqual(["", ...names].sort());
    expect([...byNamespace(parts[0]).keys()]).toContain("");
    // Each part has some: the names are dealt, not all left to one shell.
    for (const result of parts) expect(byNamespace(result).size).toBeGreaterThan(0);
    // Merged, each namespace's text parsed: a named one's links are its own (lo only).
    const links = await listEveryNamespace(pooled, argv, (text) => JSON.parse(text) as { ifname: string }[]);
    expect(links.get("p@Z")?.map((l) => l.ifname)).toEqual(["lo"]);
    expect(links.get("")?.map((l) => l.ifname)).toContain("lo");
    // A namespace whose listing fails is named, not reported gone, also when it is the last of its part
    // (a file that is no namespace; "..zy" sorts after "..two", the last of part 0); only its own reads fail.
    host.sh(["touch", "/var/run/netns/..zy"]);
    const withBadEntry = await listEveryNamespace(pooled, ["ip", "-j", "addr", "show"], (text) => text);
    expect(() => withBadEntry.get("..zy")).toThrow(/listing failed in \.\.zy: /);
    expect(withBadEntry.get("p@Z")).toContain('"ifname":"lo"');
    expect(withBadEntry.get("")).toContain('"ifname":"lo"');
  } finally {
    for (const name of names) host.sh(["ip", "netns", "del", name], { allowFailure: true });
    host.sh(["rm", "-f", "/var/run/netns/..zy"]);
  }
});

test("a refresh only reads: a foreign namespace without iptables tables has none after it, nor after a sweep's listing", async () => {
  host.sh(["ip", "netns", "add", "foreign"]);
  const tables = () =>
    ["iptables-save", "ip6tables-save"]
      .map((save) => host.sh(["ip", "netns", "exec", "foreign", save]).trim())
      .join("\n")
      .trim();
  try {
    expect(tables()).toBe("");
    const made = await build(1);
    try {
      closeAllHosts();
      await refresh(made);
      expect(await findOrphans(hostFor(connectionSchema.parse(connection)), "nobody/none", [])).toEqual([]);
      expect(tables()).toBe("");
    } finally {
      await teardown(made);
    }
  } finally {
    host.sh(["ip", "netns", "del", "foreign"]);
  }
});

test("PULUMI_NETNS_DEBUG=FILE appends each command with its time to FILE (a native provider's stderr reaches no one)", async () => {
  const log = join(mkdtempSync(join(tmpdir(), "pnt-debug-")), "commands.log");
  const pooled = hostFor(connectionSchema.parse(connection));
  process.env.PULUMI_NETNS_DEBUG = log;
  try {
    await pooled.run(["ip", "-j", "netns", "list"], { readOnly: true });
    await pooled.run(["ip", "-j", "link", "show", "dev", "lo"], { readOnly: true });
  } finally {
    delete process.env.PULUMI_NETNS_DEBUG;
  }
  const lines = readFileSync(log, "utf8").trim().split("\n");
  expect(lines).toHaveLength(2);
  expect(lines[1]).toMatch(/^\[pulumi-netns\] \d{4}-\d\d-\d\dT[\d:.]+Z \S+ exit=0 \d+ms: ip -j link show dev lo$/);
  rmSync(dirname(log), { recursive: true });
});
