/** check(): bad input names the property; preview placeholders are not failures. */
import { provider } from "../../provider";
import { kinds } from "../../provider/kinds";
import { UNKNOWN } from "../../provider/validate";

const connection = { host: "10.0.0.1", privateKey: "KEY" };

/** One valid input per kind. */
const valid: Record<string, Record<string, unknown>> = {
  Namespace: { name: "red" },
  Veth: { name: "veth-red", namespace: "red", peer: { name: "veth-red-br", namespace: "blue", master: "v-net-0" } },
  Bridge: { name: "v-net-0", namespace: "lab" },
  Address: { device: "veth-red", namespace: "red", address: "192.168.15.1/24" },
  Route: { namespace: "red", destination: "default", via: "192.168.15.5", device: "veth-red" },
  Masquerade: { source: "192.168.15.0/24", outInterface: "eth0", namespace: "router" },
  PortForward: { protocol: "tcp", port: 80, to: "192.168.15.2:80", inInterface: "eth0", destination: "10.0.0.1", namespace: "router" },
  Sysctl: { key: "net.ipv4.ip_forward", value: "1", namespace: "red" },
  Vxlan: { name: "vx0", vni: 4242, local: "198.18.0.10", remote: "198.18.0.11", device: "eth0", namespace: "red", master: "br0" },
  Netem: { device: "veth-red", namespace: "red", delayMs: 20, jitterMs: 5, lossPercent: 0.5, rateKbit: 10000 },
  Service: {
    name: "web",
    namespace: "red",
    command: ["python3", "-m", "http.server", "8080"],
    environment: { GREETING: "hi" },
    workingDirectory: "/srv",
    user: "www-data",
    readiness: { tcpPort: 8080 },
  },
  LabNode: {
    name: "red",
    interfaces: {
      eth0: { bridge: { name: "br0", hostEnd: "h-red" }, addresses: ["10.0.0.2/24"] },
      eth1: {
        pair: { park: "p-red", role: "make", namespace: "blue", interface: "eth0" },
        mtu: 1400,
        up: false,
        addresses: ["10.1.0.1/30"],
      },
    },
    routes: [{ destination: "default", via: "10.0.0.1", device: "eth0" }],
    forwarding: { ipv4: true },
  },
  LabSegment: {
    name: "br0",
    mtu: 1450,
    vxlan: { name: "vx0", vni: 42, local: "10.9.9.1", remotes: ["10.9.9.3", "10.9.9.2"], device: "eth0" },
  },
  Check: {
    namespace: "red",
    from: "node a",
    targets: [{ address: "10.0.0.2", protocol: "tcp", port: 80, label: "web" }],
    triggers: ["1f2e"],
  },
};

/**
 * Free text: each a single argv word, quoted on its way (a command's words, environment values), or never
 * sent to a host at all (labels, triggers). Any text is valid there.
 */
const FREE_TEXT: Record<string, RegExp> = {
  Service: /^(command\.\d+|environment\..*)$/,
  Check: /^(from|targets\.\d+\.label|triggers\.\d+)$/,
};

const check = (kind: string, inputs: Record<string, unknown>) => provider(kind).check({}, { connection, ...inputs });

/** Paths of every string a user sets that ends up in a command. */
function stringPaths(value: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(value).flatMap(([k, v]) =>
    typeof v === "string"
      ? [`${prefix}${k}`]
      : v && typeof v === "object"
        ? stringPaths(v as Record<string, unknown>, `${prefix}${k}.`)
        : [],
  );
}

function setPath(value: Record<string, unknown>, path: string, to: unknown): Record<string, unknown> {
  const copy = structuredClone(value);
  const keys = path.split(".");
  let cursor: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) cursor = cursor[key] as Record<string, unknown>;
  cursor[keys[keys.length - 1]] = to;
  return copy;
}

test("every kind has a valid example here", () => {
  expect(Object.keys(valid).sort()).toEqual(kinds.map((k) => k.name).sort());
});

test.each(Object.keys(valid))(
  "%s: valid input passes; state keeps only the connection fields that differ from their defaults",
  async (kind) => {
    const result = await check(kind, valid[kind]);
    expect(result.failures).toBeUndefined();
    expect(result.inputs.connection).toEqual(connection);
  },
);

test.each(Object.keys(valid))(
  "%s: shell injection or an option-like value in any string field is refused, naming the field",
  async (kind) => {
    const paths = [...stringPaths(valid[kind]).filter((path) => !FREE_TEXT[kind]?.test(path)), "connection.host", "connection.user"];
    expect(paths.length).toBeGreaterThan(2);
    for (const hostile of ["red; touch /tmp/pwned", "-rf", "--help"]) {
      // A sysctl value only ever follows "key=" in one argument, and "-1" is a real value.
      for (const path of paths.filter((p) => !(hostile.startsWith("-") && kind === "Sysctl" && p === "value"))) {
        const inputs = setPath({ connection, ...valid[kind] }, path, hostile);
        const result = await provider(kind).check({}, inputs);
        expect([path, result.failures?.map((f) => f.property)]).toEqual([path, expect.arrayContaining([path])]);
      }
    }
  },
);

test("the classic mistakes get clear reasons", async () => {
  const reasons = async (kind: string, inputs: Record<string, unknown>) =>
    ((await check(kind, inputs)).failures ?? []).map((f) => `${f.property}: ${f.reason}`).join("\n");
  expect(await reasons("Address", { device: "eth0", address: "192.168.15.1" })).toMatch(/^address: .*prefix length/);
  expect(await reasons("Veth", { name: "a-very-long-interface", peer: { name: "p" } })).toMatch(/^name: .*15 bytes/);
  expect(await reasons("Veth", { name: "-n", peer: { name: "p" } })).toMatch(/^name: /);
  expect(await reasons("Route", { destination: "192.168.15.1/24", via: "192.168.15.5" })).toMatch(/^destination: /);
  expect(await reasons("Route", { destination: "default" })).toMatch(/^via: .*via`, `device`/);
  expect(await reasons("Route", { destination: "10.0.0.0/8", via: "2001:db8::1" })).toMatch(/^via: .*family/);
  expect(await reasons("PortForward", { protocol: "sctp", port: 80, to: "10.0.0.2:80" })).toMatch(/^protocol: /);
  expect(await reasons("PortForward", { protocol: "tcp", port: 0, to: "10.0.0.2:80" })).toMatch(/^port: /);
  expect(await reasons("PortForward", { protocol: "tcp", port: 80, to: "10.0.0.2:70000" })).toMatch(/^to: /);
  expect(await reasons("Masquerade", { source: "192.168.15.0" })).toMatch(/^source: .*prefix length/);
  expect(await reasons("Namespace", { name: "../etc" })).toMatch(/^name: /);
  expect(await reasons("Namespace", {})).toMatch(/^name: /);
  expect(await reasons("Address", { device: "eth0", address: "fe80::1%eth0/64" })).toMatch(/^address: /);
  expect(await reasons("Route", { destination: "default", via: "fe80::1%eth0" })).toMatch(/^via: /);
  expect(await reasons("Masquerade", { source: "10.0.0.0/8", outInterface: "eth+" })).toMatch(/^outInterface: /);
  const cable = { name: "vx0", vni: 1, local: "198.18.0.10", remote: "198.18.0.11", device: "eth0" };
  expect(await reasons("Vxlan", { ...cable, vni: 16777216 })).toMatch(/^vni: /);
  expect(await reasons("Vxlan", { ...cable, vni: 0 })).toMatch(/^vni: /);
  expect(await reasons("Vxlan", { ...cable, remote: "2001:db8::2" })).toMatch(/^remote: .*same IP family/);
  expect(await reasons("Vxlan", { ...cable, dstport: 0 })).toMatch(/^dstport: /);
  const { remote: _remote, ...noRemote } = cable;
  expect(await reasons("Vxlan", noRemote)).toBe("remote: give `remote` (the other host) or `remotes` (every other host of the segment)");
  const segment = { ...noRemote, remotes: ["198.18.0.11", "198.18.0.12"] };
  expect(await reasons("Vxlan", { ...segment, remote: "198.18.0.11" })).toBe(
    "remotes: `remote` and `remotes` exclude each other: give one",
  );
  expect(await reasons("Vxlan", { ...segment, remotes: ["198.18.0.11", "2001:db8::2"] })).toBe(
    "remotes.1: 2001:db8::2 and `local` (198.18.0.10) are not the same IP family",
  );
  expect(await reasons("Vxlan", { ...segment, remotes: ["198.18.0.11", "198.18.0.11"] })).toBe("remotes.1: 198.18.0.11 is listed twice");
  expect(await reasons("Vxlan", { ...segment, remotes: ["198.18.0.10"] })).toBe("remotes.0: 198.18.0.10 is `local` itself");
  expect(await reasons("Vxlan", { ...segment, remotes: [] })).toMatch(/^remotes: /);
  expect(await reasons("Vxlan", { ...segment, remotes: ["198.18.0.11", "-rf"] })).toMatch(/^remotes\.1: not an IPv4 or IPv6 address/);
  const port = { name: "vx0", vni: 42, local: "198.18.0.10", device: "eth0" };
  expect(await reasons("LabSegment", { name: "br0", mtu: 1450, vxlan: { ...port, remotes: ["198.18.0.10"] } })).toBe(
    "vxlan.remotes.0: 198.18.0.10 is `local` itself",
  );
  expect(await reasons("LabSegment", { name: "br0", mtu: 1450, vxlan: { ...port, remotes: ["2001:db8::2"] } })).toBe(
    "vxlan.remotes.0: 2001:db8::2 and `local` (198.18.0.10) are not the same IP family",
  );
  expect(await reasons("LabSegment", { name: "br0", vxlan: { ...port, remotes: ["198.18.0.11"] } })).toMatch(/^mtu: /);
  expect(await reasons("Netem", { device: "eth0", lossPercent: 101 })).toMatch(/^lossPercent: /);
  expect(await reasons("Netem", { device: "eth0", jitterMs: 5 })).toMatch(/^jitterMs: .*needs a delay/);
  expect(await reasons("Netem", { device: "eth0", reorderPercent: 25 })).toMatch(/^reorderPercent: .*needs a delay/);
  expect(await reasons("Netem", { device: "eth0", rateKbit: 1.5 })).toMatch(/^rateKbit: /);
  const forward = { protocol: "tcp", port: 80, to: "10.0.0.2:80" };
  expect(await reasons("PortForward", { ...forward, destination: "127.0.0.1" })).toMatch(/^destination: .*loopback.*route_localnet/);
  expect(await reasons("PortForward", { ...forward, to: "[2001:db8::2]:80", destination: "0:0::1" })).toMatch(/^destination: .*loopback/);
  expect(await reasons("PortForward", { ...forward, hairpinNetwork: "2001:db8::/64" })).toMatch(/^hairpinNetwork: .*family/);
  expect(await reasons("PortForward", { ...forward, hairpinNetwork: "0.0.0.0/0" })).toMatch(/^hairpinNetwork: /);
  expect(await reasons("Masquerade", { source: "0.0.0.0/0" })).toMatch(/^source: .*\/0/);
  expect(await reasons("Service", { name: "web", command: ["--help"] })).toMatch(/^command: .*'-'/);
  expect(await reasons("Service", { name: "web", command: ["PATH=/tmp", "sh"] })).toMatch(/^command: .*'='/);
  expect(await reasons("Service", { name: "web", command: [] })).toMatch(/^command: /);
  expect(await reasons("Service", { name: "web", command: ["sleep"], environment: { "A B": "x" } })).toMatch(/^environment\.A B: /);
  expect(await reasons("Service", { name: "web", command: ["sleep"], workingDirectory: "srv" })).toMatch(/^workingDirectory: .*absolute/);
  expect(await reasons("Service", { name: "web", command: ["sleep"], readiness: { tcpPort: 80, command: ["true"] } })).toMatch(
    /^readiness: .*exactly one/,
  );
  expect(await reasons("Service", { name: "web", command: ["sleep"], readiness: {} })).toMatch(/^readiness: .*exactly one/);
  const probe = { address: "10.0.0.2" };
  expect(await reasons("Check", { targets: [{ ...probe, protocol: "tcp" }] })).toMatch(/^targets\.0\.port: tcp and udp need a port/);
  expect(await reasons("Check", { targets: [{ ...probe, port: 80 }] })).toMatch(/^targets\.0\.port: /);
  expect(await reasons("Check", { targets: [probe, probe] })).toBe("targets.1: icmp 10.0.0.2 is listed twice");
  expect(await reasons("Check", { targets: [] })).toMatch(/^targets: /);
  expect(await reasons("Check", { targets: [{ address: "10.0.0.2; reboot" }] })).toMatch(/^targets\.0\.address: /);
});

test("secrets never appear in failure messages", async () => {
  const secret = "-----BEGIN OPENSSH PRIVATE KEY----- s3cr3t";
  const result = await provider("Namespace").check({}, { connection: { host: "bad host!", privateKey: secret, password: 7 }, name: "red" });
  expect(result.failures?.map((f) => f.property).sort()).toEqual(["connection.host", "connection.password"]);
  expect(JSON.stringify(result.failures)).not.toContain("s3cr3t");
});

test("preview: unknown values are not failures, even inside the connection", async () => {
  const result = await provider("Veth").check(
    {},
    {
      connection: { host: UNKNOWN, privateKey: UNKNOWN },
      name: "veth-red",
      namespace: UNKNOWN,
      peer: { name: "veth-red-br", master: UNKNOWN },
    },
  );
  expect(result.failures).toBeUndefined();
  const route = await provider("Route").check({}, { connection, destination: "default", device: UNKNOWN });
  expect(route.failures).toBeUndefined();
  const stillBad = await provider("Route").check({}, { connection, destination: "10.0.0.1", device: UNKNOWN });
  expect(stillBad.failures?.map((f) => f.property)).toEqual(["destination"]);
});
