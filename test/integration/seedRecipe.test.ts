/**
 * The classic lab recipe, resource by resource through the provider, proven with real traffic:
 * red and blue on a bridge, the bridge as gateway, masquerade, forwarding, and port 80 forwarded into
 * blue, fetched from a second host. The first host's FORWARD policy is DROP, as on Docker hosts.
 */
import { closeAllHosts } from "../../provider";
import type { Props } from "../../provider/kind";
import { engine } from "../harness/engine";
import { hostSnapshot } from "../harness/hostSnapshot";
import { proveBridgeLab } from "../harness/labProof";
import { TestLab } from "../harness/throwawayHosts";

let lab: TestLab;

beforeAll(async () => {
  lab = await TestLab.create(2);
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

test("the seed recipe works with real traffic and deletes back to the exact starting state", async () => {
  const [h0, h1] = lab.hosts;
  const connection = h0.connection();
  h0.sh(["iptables", "-w", "-P", "FORWARD", "DROP"]);
  const before = hostSnapshot(h0);

  const created: { kind: string; id: string; outs: Props }[] = [];
  const make = async (kind: string, inputs: Props) => {
    const { id, outs } = await engine(kind).create({ connection, ...inputs });
    created.push({ kind, id, outs });
    return outs;
  };

  await make("Namespace", { name: "red" });
  await make("Namespace", { name: "blue" });
  await make("Bridge", { name: "v-net-0" });
  await make("Address", { device: "v-net-0", address: "192.168.15.5/24" });
  for (const [color, ip] of [
    ["red", "192.168.15.1/24"],
    ["blue", "192.168.15.2/24"],
  ]) {
    await make("Veth", { name: `veth-${color}`, namespace: color, peer: { name: `veth-${color}-br`, master: "v-net-0" } });
    await make("Address", { namespace: color, device: `veth-${color}`, address: ip });
    await make("Route", { namespace: color, destination: "default", via: "192.168.15.5" });
  }
  await make("Sysctl", { key: "net.ipv4.ip_forward", value: "1" });
  await make("Masquerade", { source: "192.168.15.0/24" });
  await make("PortForward", { protocol: "tcp", port: 80, to: "192.168.15.2:80" });

  const proof = await proveBridgeLab(h0, h1, { red: "192.168.15.1", blue: "192.168.15.2", gateway: "192.168.15.5" });
  expect(proof).toHaveLength(5);

  for (const { kind, id, outs } of created.reverse()) await engine(kind).delete(id, outs);
  expect(hostSnapshot(h0)).toEqual(before);
});
