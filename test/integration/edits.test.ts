/**
 * Edits of a running program on a real host: a property the program stops setting goes back to its
 * kernel default in place, or replaces the object when it is identity, and nothing stays behind.
 */
import type { Props } from "../../provider/kind";
import { engine } from "../harness/engine";
import type { TestHost } from "../harness/throwawayHosts";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

const link = (name: string) => JSON.parse(host.sh(["ip", "-j", "-d", "link", "show", "dev", name]))[0];
const markedRules = () =>
  host
    .sh(["iptables-save"])
    .split("\n")
    .filter((l) => l.includes("pulumi-netns:"));

/** What the engine does with a diff: nothing, an update, or delete-before-replace then create. */
async function apply(kind: string, id: string, olds: Props, inputs: Props): Promise<{ id: string; outs: Props; op: string }> {
  const resource = engine(kind);
  const diff = await resource.diff(id, olds, inputs);
  if (!diff.changes) return { id, outs: olds, op: "same" };
  if (diff.replaces.length === 0) return { id, outs: await resource.update(id, olds, inputs), op: "update" };
  await resource.delete(id, olds);
  const created = await resource.create(inputs);
  return { id: created.id, outs: created.outs, op: "replace" };
}

test("Veth: unsetting peer.master un-enslaves the port; unsetting mtu goes back to 1500", async () => {
  const bridge = await engine("Bridge").create({ connection, name: "br-edit" });
  const inputs = { connection, name: "ve-edit", mtu: 1400, peer: { name: "ve-edit-br", master: "br-edit" } };
  const veth = await engine("Veth").create(inputs);
  expect(link("ve-edit-br").master).toBe("br-edit");
  expect(link("ve-edit").mtu).toBe(1400);

  const { mtu: _mtu, ...withoutMtu } = inputs;
  const edited = await apply("Veth", veth.id, veth.outs, { ...withoutMtu, peer: { name: "ve-edit-br" } });
  expect(edited.op).toBe("update");
  expect(link("ve-edit-br").master).toBeUndefined();
  expect(link("ve-edit").mtu).toBe(1500);
  expect(link("ve-edit-br").mtu).toBe(1500);
  expect((await apply("Veth", edited.id, edited.outs, { ...withoutMtu, peer: { name: "ve-edit-br" } })).op).toBe("same");

  await engine("Veth").delete(edited.id, edited.outs);
  await engine("Bridge").delete(bridge.id, bridge.outs);
});

test("PortForward: dropping `destination` replaces it, and destroy leaves no rule of ours", async () => {
  const base = { connection, protocol: "tcp", port: 8080, to: "192.0.2.10:80" };
  const created = await engine("PortForward").create({ ...base, destination: host.address });
  expect(markedRules().some((r) => r.includes(`-d ${host.address}/32`))).toBe(true);

  const edited = await apply("PortForward", created.id, created.outs, base);
  expect(edited.op).toBe("replace");
  expect(markedRules().some((r) => r.includes(`-d ${host.address}/32`))).toBe(false);
  expect(markedRules().some((r) => r.includes("--dst-type LOCAL"))).toBe(true);

  await engine("PortForward").delete(edited.id, edited.outs);
  expect(markedRules()).toEqual([]);
});
