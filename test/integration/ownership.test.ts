/**
 * Objects carry their owner (provider/owner.ts), on a real host: every kind's create, run a second time
 * with the same owner (as the engine does after an interrupted `up`: it never saw the first one finish),
 * takes its own object over quietly and adds nothing twice; the same create with another resource's owner
 * is refused naming that stack, `adopt` or not; and one delete removes the object and its records.
 */
import { closeAllHosts } from "../../provider";
import { hostSnapshot } from "../harness/hostSnapshot";
import type { TestHost } from "../harness/throwawayHosts";
import { engine } from "../harness/engine";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

afterAll(() => closeAllHosts());

const OURS = "0123456789abcdef@lab/dev";
const THEIRS = "fedcba9876543210@other/prod";

/** Files under /run/pulumi-netns but the lock: holder and owner records. */
const records = () =>
  host.sh(["find", "/run/pulumi-netns", "-type", "f", "!", "-name", "lock"], { allowFailure: true }).split("\n").filter(Boolean).sort();

test("every kind: a create run again with its own owner takes its object over; another owner's is refused naming the stack", async () => {
  const before = hostSnapshot(host);
  const resources: [string, Record<string, unknown>][] = [
    ["Namespace", { name: "own" }],
    ["Bridge", { name: "ownbr" }],
    ["Veth", { name: "eth0", namespace: "own", peer: { name: "own-br", master: "ownbr" } }],
    ["Address", { namespace: "own", device: "eth0", address: "10.77.0.2/24" }],
    ["Route", { namespace: "own", destination: "10.78.0.0/16", via: "10.77.0.1" }],
    // Down: it sends nothing to the remote, an address no test host has.
    ["Vxlan", { name: "ownvx", vni: 777, local: host.address, remote: "198.18.255.254", device: "eth0", up: false }],
    ["Sysctl", { namespace: "own", key: "net.ipv4.ip_forward", value: "1" }],
    ["Masquerade", { namespace: "own", source: "10.77.0.0/24" }],
    ["PortForward", { namespace: "own", protocol: "tcp", port: 8080, to: "10.77.0.3:80" }],
  ];
  const made: { kind: ReturnType<typeof engine>; id: string; outs: Record<string, unknown> }[] = [];
  try {
    for (const [kindName, inputs] of resources) {
      const kind = engine(kindName);
      const first = await kind.create({ connection, owner: OURS, ...inputs });
      made.push({ kind, id: first.id, outs: first.outs });
      const state = hostSnapshot(host);
      const again = await kind.create({ connection, owner: OURS, ...inputs });
      expect({ kindName, id: again.id, holder: again.outs.holder }).toEqual({ kindName, id: first.id, holder: first.outs.holder });
      expect({ kindName, state: hostSnapshot(host) }).toEqual({ kindName, state });
      // Rule kinds and sysctls have no object of a name to clash with: another owner's rules are its own.
      if (["Masquerade", "PortForward", "Sysctl"].includes(kindName)) continue;
      // A shared kind is joined with `adopt`; without it, the error names the holder. Others refuse even with `adopt`.
      const shared = kindName === "Namespace" || kindName === "Bridge";
      const refusal = kind.create({ connection, owner: THEIRS, adopt: !shared, ...inputs });
      await expect(refusal).rejects.toThrow(
        shared ? /"\w+" \(held by [0-9a-f]{16}@lab\/dev\) already exists/ : /belongs to another resource \(stack lab\/dev/,
      );
    }
    // Tags as the host shows them.
    expect(host.sh(["ip", "-n", "own", "-j", "link", "show", "dev", "eth0"])).toMatch(/"ifalias":"pulumi-netns:[0-9a-f]{16}@lab\/dev"/);
    expect(host.sh(["ip", "netns", "exec", "own", "iptables-save", "-t", "nat"])).toMatch(/pulumi-netns:masq-[0-9a-f]{16}/);
    expect(records().length).toBeGreaterThanOrEqual(5);
  } finally {
    for (const { kind, id, outs } of made.reverse()) await kind.delete(id, outs);
  }
  expect(hostSnapshot(host)).toEqual(before);
  expect(records()).toEqual([]);
});
