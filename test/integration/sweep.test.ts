/**
 * The sweep (provider/sweep.ts) on a real host: objects of every kind made for a stack whose state is
 * gone are each found by their owner tag and removed through their kind's delete, leaving the host as it
 * was; what the state still has, and what another stack owns (a namespace both hold included), stays.
 */
import { closeAllHosts } from "../../provider";
import { connection as connectionSchema } from "../../provider/connection";
import { findOrphans, removeOrphans, StateResource } from "../../provider/sweep";
import { hostFor } from "../../provider/ssh/pool";
import { hostSnapshot } from "../harness/hostSnapshot";
import type { TestHost } from "../harness/throwawayHosts";
import { engine, recorder } from "../harness/engine";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

afterAll(() => closeAllHosts());

const GONE = "lab/gone";
const owner = (n: number, stack = GONE) => `${n.toString(16).padStart(16, "0")}@${stack}`;
const records = () =>
  host.sh(["find", "/run/pulumi-netns", "-type", "f", "!", "-name", "lock"], { allowFailure: true }).split("\n").filter(Boolean).sort();

test("every kind of a stack with no state is found by its tag and removed; what state has and another stack's stay", async () => {
  const before = hostSnapshot(host);
  const other = recorder();
  try {
    // Another stack's namespace, which the forgotten stack holds too, and a cable of its own.
    await other.create(engine("Namespace"), { connection, owner: owner(100, "lab/live"), name: "shared" });
    await other.create(engine("Veth"), {
      connection,
      owner: owner(101, "lab/live"),
      name: "live0",
      namespace: "shared",
      peer: { name: "live0-h" },
    });
    const resources: [string, Record<string, unknown>][] = [
      ["Namespace", { name: "swept" }],
      ["Namespace", { name: "shared", adopt: true }],
      ["Bridge", { name: "sweptbr", namespace: "swept" }],
      ["Veth", { name: "eth0", namespace: "swept", peer: { name: "swept-h" } }],
      ["Veth", { name: "p0", namespace: "swept", peer: { name: "p1", namespace: "swept", master: "sweptbr" } }],
      ["Address", { namespace: "swept", device: "eth0", address: "10.79.0.2/24" }],
      ["Address", { device: "swept-h", address: "fd00:79::1/64" }],
      ["Route", { namespace: "swept", destination: "10.80.0.0/16", via: "10.79.0.1" }],
      ["Route", { namespace: "swept", destination: "default", via: "10.79.0.1", metric: 50 }],
      ["Vxlan", { name: "sweptvx", vni: 779, local: host.address, remote: "198.18.255.254", device: "eth0", up: false }],
      ["Sysctl", { namespace: "swept", key: "net.ipv4.ip_forward", value: "1" }],
      ["Sysctl", { key: "net.ipv6.conf.swept-h.forwarding", value: "1" }],
      ["Masquerade", { namespace: "swept", source: "10.79.0.0/24" }],
      ["PortForward", { protocol: "udp", port: 8079, to: "10.79.0.2:80" }],
      ["PortForward", { namespace: "shared", protocol: "tcp", port: 8080, to: "10.79.0.3:80", inInterface: "live0" }],
    ];
    const made: (StateResource & { outs: Record<string, unknown> })[] = [];
    for (const [n, [kind, inputs]] of resources.entries()) {
      const { id, outs } = await engine(kind).create({ connection, owner: owner(n), ...inputs });
      made.push({ kind, id, holder: outs.holder as string | undefined, outs });
    }
    const target = hostFor(connectionSchema.parse(connection));
    // Kept: one resource the state still has.
    const kept = made.find((resource) => resource.kind === "Route")!;
    const orphans = await findOrphans(target, GONE, [kept]);
    const found = orphans.map((orphan) => [orphan.kind.name, orphan.id]);
    const expected = made.filter((resource) => resource !== kept).map((resource) => [resource.kind, resource.id]);
    expect([...found].sort()).toEqual([...expected].sort());
    // Dependents come first: every rule before any namespace.
    expect(found.findIndex(([kind]) => kind === "Namespace")).toBeGreaterThan(found.findIndex(([kind]) => kind === "Masquerade"));
    expect(orphans.find((orphan) => orphan.kind.name === "Veth" && orphan.id === "swept/p0")!.what).toBe(
      'veth "p0" in namespace "swept" (its peer "p1" in namespace "swept")',
    );
    // Nothing of another stack, or of none.
    expect(await findOrphans(target, "lab/other", [])).toEqual([]);

    const removed = await removeOrphans(target, orphans);
    expect(removed.filter((result) => result.error)).toEqual([]);
    // The kept route went with its namespace; the shared namespace and the other stack's cable stay.
    expect(
      host
        .sh(["ip", "netns", "list"])
        .split("\n")
        .filter(Boolean)
        .map((line) => line.split(" ")[0]),
    ).toEqual(["shared"]);
    expect(host.sh(["ip", "-n", "shared", "-br", "link", "show", "dev", "live0"])).toMatch(/^live0@/);
    expect(host.sh(["iptables-save", "-t", "nat"])).not.toMatch(/pulumi-netns:/);
    expect(host.sh(["ip", "netns", "exec", "shared", "iptables-save", "-t", "nat"])).not.toMatch(/pulumi-netns:/);
    // The kept route's record stays until its resource's delete; no other record of the forgotten stack is left.
    expect(records().filter((path) => !path.includes("/netns/host/shared"))).toEqual([
      expect.stringMatching(/^\/run\/pulumi-netns\/owner\/route\/netns\/swept\//),
    ]);
    expect((await findOrphans(target, GONE, [])).map((orphan) => orphan.id)).toEqual([kept.id]);
    await engine("Route").delete(kept.id, kept.outs);
  } finally {
    await other.destroy();
  }
  expect(hostSnapshot(host)).toEqual(before);
  expect(records()).toEqual([]);
});
