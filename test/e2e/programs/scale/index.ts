// COUNT namespaces, each with a cable to one bridge and an address: 3 × COUNT + 1 resources.
// With `floor: true` every resource is a dynamic resource whose provider does nothing, with the same
// inputs and dependency graph: the engine's own cost, which `npm run bench` compares against.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection: netns.ConnectionArgs = {
  host: cfg.require("host"),
  privateKey: cfg.requireSecret("sshKey"),
  hostKey: cfg.require("hostKey"),
};
const count = cfg.requireNumber("count");

const noop: pulumi.dynamic.ResourceProvider = {
  async create(inputs) {
    return { id: inputs.name ?? inputs.address, outs: inputs };
  },
};
class Noop extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  constructor(type: string, name: string, args: Record<string, unknown>) {
    super(noop, name, { name: undefined, ...args }, {}, "floor", type);
  }
}
type Make = (type: keyof typeof netns, name: string, args: any) => { name: pulumi.Output<string> };
const make: Make = cfg.getBoolean("floor")
  ? (type, name, args) => new Noop(type, name, args)
  : (type, name, args) => new (netns[type] as any)(name, args);

const bridge = make("Bridge", "br", { connection, name: "br-scale" });
for (let i = 0; i < count; i++) {
  const ns = make("Namespace", `ns${i}`, { connection, name: `ns${i}` });
  const cable = make("Veth", `veth${i}`, {
    connection,
    name: "eth0",
    namespace: ns.name,
    peer: { name: `vs${i}`, master: bridge.name },
  });
  make("Address", `addr${i}`, { connection, namespace: ns.name, device: cable.name, address: `10.60.${i >> 8}.${(i & 255) + 1}/16` });
}
