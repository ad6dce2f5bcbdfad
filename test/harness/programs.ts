/**
 * Random small programs over every kind, for the model-based edit test. A program is drawn as one
 * choice per slot (present or not, each optional property set or unset, IPv4 or IPv6); consecutive
 * programs of a sequence are therefore edits of each other: set, unset, change, rename, move to another
 * namespace, add and remove. Only programs the kernel can hold are built (`toProgram` drops a resource
 * whose prerequisites are absent), so every divergence found is the provider's.
 */
import fc from "fast-check";
import type { Declared, Program } from "./editDriver";

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

export const programSpec = fc.record({
  nsA: fc.record({ present: fc.boolean(), name: fc.constantFrom("ma", "mc"), loopbackUp: maybe(fc.boolean()) }),
  nsB: fc.record({ present: fc.boolean() }),
  bridge: fc.record({
    present: fc.boolean(),
    name: fc.constantFrom("mbr", "mbr2"),
    mtu: maybe(fc.constantFrom(1400, 1500)),
    up: maybe(fc.boolean()),
  }),
  veth: fc.record({
    present: fc.boolean(),
    name: fc.constantFrom("va", "vx"),
    where: fc.constantFrom("nsA", "nsB", "host"),
    mtu: maybe(fc.constantFrom(1400, 1500)),
    up: maybe(fc.boolean()),
    master: fc.boolean(),
    peerUp: maybe(fc.boolean()),
  }),
  addr4: fc.record({ present: fc.boolean(), address: fc.constantFrom("10.91.0.2/24", "10.91.0.3/24") }),
  addr6: fc.record({ present: fc.boolean(), address: fc.constantFrom("fd00:91::2/64", "FD00:91::3/64") }),
  route: fc.record({
    present: fc.boolean(),
    destination: fc.constantFrom("10.92.0.0/16", "0.0.0.0/0", "default", "fd00:92::/48"),
    via: fc.boolean(),
    device: fc.boolean(),
    metric: maybe(fc.constantFrom(0, 100)),
    source: fc.boolean(),
  }),
  masquerade: fc.record({
    present: fc.boolean(),
    source: fc.constantFrom("10.91.0.0/24", "fd00:91::/64"),
    outInterface: maybe(fc.constant("eth0")),
    acceptForward: maybe(fc.boolean()),
    inNamespace: fc.boolean(),
  }),
  portForward: fc.record({
    present: fc.boolean(),
    protocol: fc.constantFrom("tcp", "udp"),
    port: fc.constantFrom(8080, 8081),
    to: fc.constantFrom("10.91.0.2:80", "10.91.0.3"),
    destination: fc.boolean(),
    fromHost: maybe(fc.boolean()),
    inInterface: maybe(fc.constant("eth0")),
    acceptForward: maybe(fc.boolean()),
  }),
  vxlan: fc.record({
    present: fc.boolean(),
    name: fc.constantFrom("vxa", "vxb"),
    vni: fc.constantFrom(100, 200),
    dstport: maybe(fc.constant(4790)),
    where: fc.constantFrom("host", "nsA"),
    master: fc.boolean(),
    /** Its peer as a flood entry (`remotes`) rather than a fixed `remote`: either changes into the other in place. */
    flood: maybe(fc.boolean()),
    mtu: maybe(fc.constantFrom(1400, 1450)),
    up: maybe(fc.boolean()),
  }),
  /** A Lab segment's part on the host: its bridge, and (`port`) a VXLAN port to the peer host. */
  segment: fc.record({
    present: fc.boolean(),
    name: fc.constantFrom("msg", "msg2"),
    mtu: fc.constantFrom(1400, 1450),
    up: maybe(fc.boolean()),
    port: fc.boolean(),
    portName: fc.constantFrom("msv", "msv2"),
    vni: fc.constantFrom(300, 301),
  }),
  sysctlHost: fc.record({
    present: fc.boolean(),
    key: fc.constantFrom("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter"),
    value: fc.constantFrom("0", "1"),
  }),
  sysctlNs: fc.record({
    present: fc.boolean(),
    key: fc.constantFrom("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"),
    value: fc.constantFrom("0", "1"),
  }),
});

export type ProgramSpec = typeof programSpec extends fc.Arbitrary<infer T> ? T : never;

type SlotChoices = { [Slot in keyof ProgramSpec]?: Partial<ProgramSpec[Slot]> };

/** A program written by hand (a regression): the slots it names, every other slot absent; null is unset. */
export function completeSpec(choices: SlotChoices): ProgramSpec {
  const absent = fc.sample(programSpec, { numRuns: 1, seed: 0 })[0];
  for (const slot of Object.keys(absent) as (keyof ProgramSpec)[]) (absent[slot] as { present: boolean }).present = false;
  for (const [slot, value] of Object.entries(choices)) {
    const unsetNulls = Object.fromEntries(Object.entries(value).map(([key, v]) => [key, v ?? undefined]));
    // A field the choice does not name is unset (one added to a slot since it was recorded, say).
    const unnamed = Object.fromEntries(Object.keys(absent[slot as keyof ProgramSpec]).map((key) => [key, undefined]));
    Object.assign(absent[slot as keyof ProgramSpec], unnamed, { present: true }, unsetNulls);
  }
  return absent;
}

/** Drops undefined values, as a program that leaves a property unset does. */
const props = (value: Record<string, unknown>) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

/** `hostAddress` is the host's own address; `peerAddress` another test host's, a VXLAN's remote end. */
export function toProgram(spec: ProgramSpec, connection: Record<string, unknown>, hostAddress: string, peerAddress: string): Program {
  const program: Declared[] = [];
  const add = (key: string, kind: string, inputs: Record<string, unknown>, flows: Record<string, string> = {}) =>
    program.push({ key, kind, inputs: { connection, ...props(inputs) }, deps: [...new Set(Object.values(flows))], flows });

  const nsA = spec.nsA.present ? spec.nsA.name : undefined;
  const nsB = spec.nsB.present ? "mb" : undefined;
  if (nsA) add("nsA", "Namespace", { name: nsA, loopbackUp: spec.nsA.loopbackUp });
  if (nsB) add("nsB", "Namespace", { name: nsB });
  const bridge = spec.bridge.present ? spec.bridge.name : undefined;
  if (bridge) add("bridge", "Bridge", { name: bridge, mtu: spec.bridge.mtu, up: spec.bridge.up });

  const x = spec.vxlan;
  if (x.present && (x.where === "host" || nsA)) {
    const master = x.master && x.where === "host" && bridge ? bridge : undefined;
    add(
      "vxlan",
      "Vxlan",
      {
        name: x.name,
        vni: x.vni,
        local: hostAddress,
        ...(x.flood ? { remotes: [peerAddress] } : { remote: peerAddress }),
        dstport: x.dstport,
        device: "eth0",
        namespace: x.where === "nsA" ? nsA : undefined,
        master,
        mtu: x.mtu,
        up: x.up,
      },
      { ...(x.where === "nsA" ? { namespace: "nsA" } : {}), ...(master ? { master: "bridge" } : {}) },
    );
  }

  /** The veth with its addresses and route: the part of a program that needs a cable. */
  function addCable(v: ProgramSpec["veth"], where: string | undefined) {
    const nsFlow: Record<string, string> = v.where === "host" ? {} : { namespace: v.where };
    add(
      "veth",
      "Veth",
      {
        name: v.name,
        namespace: where,
        mtu: v.mtu,
        up: v.up,
        peer: { name: "vp", master: v.master && bridge ? bridge : undefined, up: v.peerUp },
      },
      { ...nsFlow, ...(v.master && bridge ? { "peer.master": "bridge" } : {}) },
    );
    // The kernel drops IPv6 addresses and every route of a link that goes down: such programs cannot hold.
    const up = v.up !== false;
    const onVeth = { device: "veth", ...(where ? { namespace: "veth" } : {}) };
    const addr4 = spec.addr4.present ? spec.addr4.address : undefined;
    const addr6 = spec.addr6.present && up ? spec.addr6.address : undefined;
    if (addr4) add("addr4", "Address", { device: v.name, namespace: where, address: addr4 }, onVeth);
    if (addr6) add("addr6", "Address", { device: v.name, namespace: where, address: addr6 }, onVeth);

    const r = spec.route;
    const family = r.destination.includes(":") ? 6 : 4;
    const local = family === 6 ? addr6 : addr4;
    const isDefault = r.destination === "default" || r.destination === "0.0.0.0/0";
    // The test host itself never gets a default route.
    if (r.present && up && !(isDefault && !where)) {
      const via = r.via && local ? (family === 6 ? "fd00:91::1" : "10.91.0.1") : undefined;
      const device = r.device || !via ? v.name : undefined;
      // An IPv6 address stays tentative without carrier, and the kernel refuses a tentative source.
      const carrier = v.peerUp !== false;
      const source = r.source && local && (family === 4 || carrier) ? local.split("/")[0] : undefined;
      const flows: Record<string, string> = { ...(device ? { device: "veth" } : {}), ...(where ? { namespace: "veth" } : {}) };
      const route = { destination: r.destination, via, device, metric: r.metric, source, namespace: where };
      program.push({
        key: "route",
        kind: "Route",
        inputs: { connection, ...props(route) },
        deps: [...new Set(["veth", ...(addr4 ? ["addr4"] : []), ...(addr6 ? ["addr6"] : [])])],
        flows,
      });
    }
  }

  const v = spec.veth;
  const where = { nsA, nsB, host: undefined }[v.where];
  if (v.present && (v.where === "host" || where !== undefined)) addCable(v, where);

  const m = spec.masquerade;
  if (m.present && (!m.inNamespace || nsA)) {
    add(
      "masquerade",
      "Masquerade",
      { source: m.source, outInterface: m.outInterface, acceptForward: m.acceptForward, namespace: m.inNamespace ? nsA : undefined },
      m.inNamespace ? { namespace: "nsA" } : {},
    );
  }
  const p = spec.portForward;
  if (p.present) {
    add("portForward", "PortForward", {
      protocol: p.protocol,
      port: p.port,
      to: p.to,
      destination: p.destination ? hostAddress : undefined,
      fromHost: p.fromHost,
      inInterface: p.inInterface,
      acceptForward: p.acceptForward,
    });
  }
  const g = spec.segment;
  if (g.present) {
    const vxlan = g.port ? { name: g.portName, vni: g.vni, local: hostAddress, remotes: [peerAddress], device: "eth0" } : undefined;
    add("segment", "LabSegment", { name: g.name, mtu: g.mtu, up: g.up, vxlan });
  }
  if (spec.sysctlHost.present) add("sysctlHost", "Sysctl", { key: spec.sysctlHost.key, value: spec.sysctlHost.value });
  if (spec.sysctlNs.present && nsA) {
    add("sysctlNs", "Sysctl", { key: spec.sysctlNs.key, value: spec.sysctlNs.value, namespace: nsA }, { namespace: "nsA" });
  }
  return program;
}

/** Every kind once: two namespaces, a bridge, a veth onto it, addresses, a route, NAT, a VXLAN cable, a Lab segment's part, sysctls. */
export const EVERY_KIND = completeSpec({
  nsA: { name: "ma", loopbackUp: undefined },
  nsB: {},
  bridge: { name: "mbr", mtu: 1400, up: undefined },
  veth: { name: "va", where: "nsA", mtu: undefined, up: undefined, master: true, peerUp: undefined },
  addr4: { address: "10.91.0.2/24" },
  addr6: { address: "fd00:91::2/64" },
  route: { destination: "10.92.0.0/16", via: true, device: true, metric: 100, source: false },
  masquerade: { source: "10.91.0.0/24", outInterface: undefined, acceptForward: true, inNamespace: false },
  portForward: {
    protocol: "udp",
    port: 8080,
    to: "10.91.0.2:80",
    destination: false,
    fromHost: undefined,
    inInterface: undefined,
    acceptForward: true,
  },
  vxlan: { name: "vxa", vni: 100, dstport: undefined, where: "nsA", master: false, flood: undefined, mtu: undefined, up: undefined },
  segment: { name: "msg", mtu: 1450, up: undefined, port: true, portName: "msv", vni: 300 },
  sysctlHost: { key: "net.ipv4.ip_forward", value: "1" },
  sysctlNs: { key: "net.ipv6.conf.all.forwarding", value: "1" },
});
