/**
 * `LabSegment`: one host's part of a Lab's LAN or link across hosts as ONE resource: the segment's bridge
 * and, when the segment spans hosts, its VXLAN port on that bridge with a flood entry per other host. It
 * was a Bridge and a Vxlan resource; one resource is half the engine's steps and state for every segment
 * across hosts.
 *
 * As with LabNode, create and update share one path: read what is there, work out every command that
 * brings it to the spec (`segmentSteps`, pure), run them as one remote step, read it back. The bridge is
 * held like a Bridge's (a holder record: the sweep and an interrupted create know it); the VXLAN device
 * carries its owner in its alias.
 */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { CommandFailedError, OwnedElsewhereError } from "../errors";
import { interfaceName, ipAddress, mtu } from "../fields";
import { Argv, Host, inOneStep } from "../host";
import {
  IpLinkJson,
  isUp,
  linkChanges,
  linkDeleteArgv,
  linkSetArgv,
  linkShowArgv,
  linkState,
  listLinks,
  readLink,
  runUnlessGone,
} from "../iproute";
import { defineKind, Props, SET_PROPERTIES } from "../kind";
import { aliasOwner, objectOwner, ownerStack, ownerToken, setAliasArgv, takenOver } from "../owner";
import { holdBridge, pinMtuArgvs, releaseBridge } from "./bridge";
import {
  checkRemotes,
  explainAddFailure,
  floodChangesArgv,
  floodShowArgv,
  parseFloodRemotes,
  vxlanAddArgv,
  VxlanJson,
  vxlanKind,
  vxlanState,
} from "./vxlan";

const segmentPort = z.object({
  name: interfaceName.describe("The VXLAN device on the host, a port of the bridge."),
  vni: vxlanKind.shape.vni,
  local: vxlanKind.shape.local,
  remotes: z
    .array(ipAddress)
    .min(1)
    .describe("Every other host's underlay address (same IP family as `local`): frames without a known destination are copied to each."),
  dstport: vxlanKind.shape.dstport,
  device: interfaceName.describe("Underlay interface in the host's namespace."),
});

/** A segment's spec, as checked (defaults applied); a stack moved from a Bridge has one without `vxlan` and `mtu`. */
interface SegmentSpec {
  name: string;
  mtu?: number;
  up: boolean;
  vxlan?: z.infer<typeof segmentPort>;
  /** Output: the VXLAN device this segment made, while it is there (also off its bridge, when `vxlan` reads as missing). */
  port?: string;
}

type Port = z.infer<typeof segmentPort>;

/** What is on the host for one segment, however it was read. */
export interface SegmentState {
  bridge: IpLinkJson | undefined;
  /** A link of the host's namespace, with vxlan details when it is one. */
  link(name: string): (IpLinkJson & VxlanJson) | undefined;
  /** The flood entries' remotes of the segment's VXLAN device, sorted. */
  remotes: string[];
}

const underlayOf = (link: VxlanJson | undefined) => link?.linkinfo?.info_data?.link;

/** The name of the segment's VXLAN device: the one asked for, or the one it made. */
const portName = (spec: SegmentSpec) => spec.vxlan?.name ?? spec.port;

/**
 * The device is the one asked for: same VNI, local address, port and underlay, and no fixed remote (frames
 * go to the flood entries' hosts only). Any difference makes it again.
 */
function sameDevice(link: VxlanJson | undefined, wanted: Port): boolean {
  const found = vxlanState(link);
  return (
    found !== undefined &&
    found.vni === wanted.vni &&
    found.local === wanted.local &&
    found.dstport === wanted.dstport &&
    found.remote === undefined &&
    underlayOf(link) === wanted.device
  );
}

/**
 * Why the link named as the port may not become it, if it may not: a link that is no VXLAN device, or one
 * another resource or a person made. This segment's own, its previous port, and (a stack moving from a
 * Bridge and a Vxlan, which has no previous port) the same device made by a resource of this stack are
 * taken. Pure.
 */
export function portRefusal(target: string, spec: SegmentSpec, state: SegmentState, owner: string | undefined, previous?: SegmentSpec) {
  const wanted = spec.vxlan;
  const link = wanted && state.link(wanted.name);
  if (!link) return undefined;
  const what = `interface "${wanted!.name}"`;
  if (!vxlanState(link))
    return new Error(`${target}: ${what} is a ${link.linkinfo?.info_kind ?? "plain"} link: the segment's VXLAN port cannot be it`);
  const tag = aliasOwner(link.ifalias, owner);
  if (tag === "ours" || (previous && portName(previous) === wanted!.name)) return undefined;
  const movingFromVxlan = previous && !portName(previous) && owner && sameDevice(link, wanted!);
  if (tag && movingFromVxlan && ownerStack(tag.other) === ownerStack(owner)) return undefined;
  if (tag) return new OwnedElsewhereError(target, what, tag.other);
  return new Error(`${target}: ${what} already exists, made outside this stack: remove it from the host, or name the port otherwise`);
}

/**
 * Every command that brings the host from `state` to `spec`: the bridge's MTU (`pin`: set through a
 * neighbour value, so that it sticks; see pinMtuArgvs) and state, the VXLAN device made (again, when its
 * identity changed) and tagged, its flood entries (new ones first), its MTU, bridge and state. The device
 * the previous spec had under another name goes, unless another owner took it. Pure.
 */
export function segmentSteps(
  spec: SegmentSpec,
  state: SegmentState,
  owner: string | undefined,
  previous?: SegmentSpec,
  pin = false,
): Argv[] {
  const steps: Argv[] = [];
  const bridge = state.bridge!;
  if (pin && spec.mtu !== undefined) steps.push(...pinMtuArgvs(undefined, spec.name, spec.mtu));
  const bridgeChange = linkChanges({ mtu: pin ? spec.mtu : bridge.mtu, up: isUp(bridge) }, { mtu: spec.mtu, up: spec.up });
  if (Object.keys(bridgeChange).length > 0) steps.push(linkSetArgv(undefined, spec.name, bridgeChange));
  const wanted = spec.vxlan;
  const before = previous && portName(previous);
  const old = before && before !== wanted?.name ? state.link(before) : undefined;
  const takenByAnother = (tag: ReturnType<typeof aliasOwner>) => tag !== undefined && tag !== "ours";
  if (vxlanState(old) && !takenByAnother(aliasOwner(old!.ifalias, owner))) steps.push(linkDeleteArgv(undefined, before!));
  if (!wanted) return steps;
  const link = state.link(wanted.name);
  const same = sameDevice(link, wanted);
  if (link && !same) steps.push(linkDeleteArgv(undefined, wanted.name));
  if (!same) steps.push(vxlanAddArgv(wanted, wanted.name));
  if (owner !== undefined && (!same || aliasOwner(link!.ifalias, owner) !== "ours"))
    steps.push(setAliasArgv(undefined, wanted.name, owner));
  steps.push(...floodChangesArgv(undefined, wanted.name, same ? state.remotes : [], wanted.remotes));
  const portChange = linkChanges(same ? linkState(link!) : undefined, { mtu: spec.mtu, master: spec.name, up: spec.up });
  if (Object.keys(portChange).length > 0) steps.push(linkSetArgv(undefined, wanted.name, portChange));
  return steps;
}

/**
 * The segment as the host has it, in the spec's shape: its MTU and state are the bridge's and its port's
 * (whichever is not as asked), and its `vxlan` only while the device is a port of the bridge.
 */
export function observeSegment(spec: SegmentSpec, state: SegmentState): Props {
  const bridge = state.bridge!;
  const name = portName(spec);
  const link = name === undefined ? undefined : state.link(name);
  const found = vxlanState(link);
  const port = found?.master === spec.name ? found : undefined;
  const settings = (pick: (l: { mtu: number; up: boolean }) => number | boolean, wanted: unknown) => {
    const values = [pick({ mtu: bridge.mtu, up: isUp(bridge) }), ...(port ? [pick(port)] : [])];
    return values.find((v) => v !== wanted) ?? values[0];
  };
  return {
    mtu: settings((l) => l.mtu, spec.mtu),
    up: settings((l) => l.up, spec.up),
    vxlan: port && {
      name,
      vni: port.vni,
      local: port.local,
      remotes: state.remotes,
      dstport: port.dstport,
      device: underlayOf(link) ?? "",
    },
    port: found ? name : undefined,
  };
}

/** The flood entries of the device `name`, when it is a vxlan device. */
async function floodRemotes(host: Host, link: VxlanJson | undefined, name: string): Promise<string[]> {
  const found = vxlanState(link);
  if (!found) return [];
  const shown = await runUnlessGone(host, floodShowArgv(undefined, name), { readOnly: true });
  return shown ? parseFloodRemotes(shown.stdout, found) : [];
}

/** The segment now, one command per link, side by side; the previous spec's device too. */
async function readLive(host: Host, spec: SegmentSpec, previous?: SegmentSpec): Promise<SegmentState> {
  const ports = [portName(spec), previous && portName(previous)].filter((n): n is string => n !== undefined);
  const names = [spec.name, ...new Set(ports)];
  const shown = await Promise.all(names.map((name) => runUnlessGone(host, linkShowArgv(undefined, name), { readOnly: true })));
  const links = new Map(names.map((name, i) => [name, shown[i] && (JSON.parse(shown[i]!.stdout.trim() || "[]") as IpLinkJson[])[0]]));
  return stateOf(host, links, spec);
}

/** The segment from a refresh's listing of the host's links. */
async function readListed(host: Host, spec: SegmentSpec): Promise<SegmentState> {
  const links = new Map(((await listLinks(host)).get("") ?? []).map((l) => [l.ifname, l]));
  return stateOf(host, links, spec);
}

async function stateOf(host: Host, links: Map<string, IpLinkJson | undefined>, spec: SegmentSpec): Promise<SegmentState> {
  const bridge = links.get(spec.name);
  const link = (name: string) => links.get(name) as (IpLinkJson & VxlanJson) | undefined;
  const port = portName(spec);
  return {
    bridge: bridge?.linkinfo?.info_kind === "bridge" ? bridge : undefined,
    link,
    remotes: port ? await floodRemotes(host, link(port), port) : [],
  };
}

const REPLACE_ON = ["name"];

async function converge(host: Host, spec: SegmentSpec, owner: string | undefined, previous: SegmentSpec | undefined, pin: boolean) {
  const before = await readLive(host, spec, previous);
  if (!before.bridge) throw new Error(`${host.label}: bridge "${spec.name}" is gone; run \`pulumi refresh\` to make the segment again`);
  const refused = portRefusal(host.label, spec, before, owner, previous);
  if (refused) throw refused;
  const steps = segmentSteps(spec, before, owner, previous, pin);
  const wanted = spec.vxlan;
  const adding = wanted !== undefined && steps.some((argv) => isDeepStrictEqual(argv, vxlanAddArgv(wanted, wanted.name)));
  // Refused before the old device goes: a port on an underlay that is not there would leave the segment without one.
  if (adding && !(await readLink(host, undefined, wanted.device)))
    throw new Error(`${host.label}: underlay device "${wanted.device}" does not exist in the host's namespace`);
  if (steps.length > 0) {
    const result = await host.run(inOneStep(...steps), { allowFailure: true });
    if (result.exitCode !== 0) throw adding ? explainAddFailure(host.label, wanted, result) : new CommandFailedError(host.label, result);
  }
  const after = await readLive(host, spec);
  if (!after.bridge) throw new Error(`${host.label}: bridge "${spec.name}" went away while it was being set up`);
  return observeSegment(spec, after);
}

export const labSegmentKind = defineKind({
  name: "LabSegment",
  description:
    "One host's part of a Lab's LAN or link across hosts as one resource: its bridge and, for a segment over several hosts, the VXLAN " +
    "port on that bridge with a flood entry per other host, made in one remote step and read back in one. The Lab component makes " +
    "these; a program may too.",
  shape: {
    name: interfaceName.describe("The segment's bridge on the host (at most 15 bytes)."),
    mtu: mtu.describe("MTU of the bridge and of its VXLAN port."),
    up: z.boolean().default(true).describe("Administrative state of the bridge and its VXLAN port."),
    vxlan: segmentPort
      .optional()
      .describe("The VXLAN port, for a segment over several hosts; it changes in place (a new identity makes it again)."),
  },
  refine(spec, ctx) {
    if (!spec.vxlan) return;
    if (spec.vxlan.name === spec.name)
      ctx.addIssue({ code: "custom", path: ["vxlan", "name"], message: "the port cannot have the bridge's name" });
    checkRemotes(spec.vxlan.local, spec.vxlan.remotes, (i) => ["vxlan", "remotes", i], ctx);
  },
  // Sorted as read back from the forwarding database, so the order given is no change.
  canonical: (spec) => (spec.vxlan ? { ...spec, vxlan: { ...spec.vxlan, remotes: [...spec.vxlan.remotes].sort() } } : spec),
  replaceOn: REPLACE_ON,
  // Every VXLAN device is made from the host's namespace, where a VNI and port can be bound once: a
  // replacement with a port comes after the old one's went.
  collides: (olds, news) => portName(olds as unknown as SegmentSpec) !== undefined && news.vxlan !== undefined,
  outputs: {
    holder: z.string().describe("This resource's token in the bridge's holder record (under /run/pulumi-netns)."),
    port: z.string().optional().describe("The VXLAN device this segment made, while it is there (also when it is off the bridge)."),
  },
  adoptable: false,
  importing: {
    idForm: "BRIDGE (the bridge on the host)",
    identify: (id) => ({ name: id }),
    // Imported, its bridge holds no record on the host: destroy deletes it unless another program holds it.
    async discover(host, id, identity) {
      const links = (await listLinks(host)).get("") ?? [];
      const bridge = links.find((l) => l.ifname === id && l.linkinfo?.info_kind === "bridge");
      if (!bridge) return undefined;
      const ports = links.filter((l) => l.master === id && l.linkinfo?.info_kind === "vxlan") as (IpLinkJson & VxlanJson)[];
      if (ports.length > 1) throw new Error(`${host.label}: bridge "${id}" has ${ports.length} VXLAN ports; a LabSegment has one`);
      const [port] = ports;
      const found = vxlanState(port);
      const vxlan = found && {
        name: port.ifname,
        vni: found.vni,
        local: found.local,
        remotes: await floodRemotes(host, port, port.ifname),
        dstport: found.dstport,
        device: underlayOf(port),
      };
      return { ...identity, mtu: bridge.mtu, ...(vxlan ? { vxlan } : {}) };
    },
  },
  async create(host, spec, _adopt, owner) {
    const holder = ownerToken(owner);
    const { made } = await holdBridge(host, spec, holder, owner, false);
    try {
      // A device of the port's name is refused unless an interrupted create of this resource made it (portRefusal).
      return { id: spec.name, observed: { ...(await converge(host, spec, owner, undefined, true)), holder } };
    } catch (err) {
      // What this create made goes again: its port (tagged as this owner's in the step that made it), and the
      // bridge if it made it (a bridge it only holds stays held, for the create the engine retries).
      const port = spec.vxlan && (await readLink(host, undefined, spec.vxlan.name).catch(() => undefined));
      if (port?.kind === "vxlan" && aliasOwner(port.alias, owner) === "ours")
        await runUnlessGone(host, linkDeleteArgv(undefined, port.name)).catch(() => undefined);
      if (made) await releaseBridge(host, spec, holder, true).catch(() => undefined);
      throw err;
    }
  },
  async read(host, _id, olds) {
    const spec = olds as unknown as SegmentSpec;
    const state = await readListed(host, spec);
    return state.bridge && observeSegment(spec, state);
  },
  // The MTU is pinned when this resource starts to manage it (a stack moved from a Bridge without one).
  update: (host, _id, olds, news) =>
    converge(
      host,
      news,
      objectOwner(REPLACE_ON, olds),
      olds as unknown as SegmentSpec,
      !(olds[SET_PROPERTIES] as string[]).includes("mtu"),
    ),
  async delete(host, _id, olds) {
    // The port unless it is gone, is no vxlan device, or another owner took it over.
    const name = portName(olds as unknown as SegmentSpec);
    const port = name && (await readLink(host, undefined, name));
    if (port && port.kind === "vxlan" && !takenOver(port.alias, REPLACE_ON, olds))
      await runUnlessGone(host, linkDeleteArgv(undefined, name));
    await releaseBridge(host, { name: olds.name as string }, olds.holder as string | undefined, true);
  },
  // The bridge's holder record is a Bridge's, and the port a Vxlan's: those kinds list them for `sweep`.
  tagged: async () => [],
});
