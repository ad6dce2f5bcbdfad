/**
 * A VXLAN device: an Ethernet cable to another host, carried in UDP over the hosts' own network, or one
 * host's port on a segment over several: with `remotes`, frames for unknown destinations (broadcast,
 * ARP, multicast) are copied to every other host (head-end replication: one all-zero entry per remote in
 * the device's forwarding database), and learned addresses go to their host only.
 * The device is always made from the host's namespace, even when it lives in another one, because
 * its UDP socket stays in the namespace that made it and must reach the underlay.
 */
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { AlreadyExistsError, CommandFailedError, inNamespaceWords, partlyMade } from "../errors";
import { canonicalAddress, interfaceName, ipAddress, mtu, namespaceName, port } from "../fields";
import { Argv, CommandResult, Host, inNamespace, inOneStep } from "../host";
import { linkDeleteArgv, linkShowArgv, listLinks, readLink, reconcileLink, runUnlessGone } from "../iproute";
import { defineKind, namespacedIdentity } from "../kind";
import { defaultVxlanMtu, VXLAN_PORT } from "../kindSettings";
import { mayTakeOver, setAliasArgv, taggedLinks, takenOver } from "../owner";

interface VxlanSpec {
  name: string;
  vni: number;
  local: string;
  remote?: string;
  remotes?: string[];
  dstport: number;
  device: string;
  namespace?: string;
  master?: string;
  mtu?: number;
  up: boolean;
}

/** A name no device has, for the moment between making a device for a namespace and naming it there. */
export const provisionalName = () => `pnt-vx-${randomBytes(4).toString("hex")}`;
const PROVISIONAL = /^pnt-vx-[0-9a-f]{8}$/;

/**
 * `netns` at creation puts the device called `name` in its namespace at once, while its socket stays in
 * the host's. Kernel 6.1 (Debian 12's) looks that name up where the command runs, so `name vx0 netns NS`
 * failed with "File exists" on a host with its own vx0: a device for a namespace is made under a
 * `provisionalName` and renamed there (`vxlanCreateArgv`), never passing through the host's namespace.
 */
export function vxlanAddArgv(spec: Omit<VxlanSpec, "name" | "up">, name: string): Argv {
  return [
    "ip",
    "link",
    "add",
    "name",
    name,
    ...(spec.namespace ? ["netns", spec.namespace] : []),
    "type",
    "vxlan",
    "id",
    String(spec.vni),
    "local",
    spec.local,
    ...(spec.remote ? ["remote", spec.remote] : []),
    "dstport",
    String(spec.dstport),
    "dev",
    spec.device,
  ];
}

/** Exit status of `ADD_IN_NAMESPACE_SCRIPT` when the device was made but the rename was refused (and it was removed). */
export const RENAME_REFUSED = 76;

/**
 * Adds the device (the command after the three names) under its provisional name, renames it in its
 * namespace, and removes it again when the rename is refused. One script, so that the host finishes it
 * even when the connection is lost or times out meanwhile: a device left under its provisional name
 * would hold the VNI and port, and every later create would fail with EEXIST.
 */
const ADD_IN_NAMESPACE_SCRIPT = `namespace=$1 provisional=$2 name=$3
shift 3
"$@" || exit
ip -n "$namespace" link set dev "$provisional" name "$name" && exit 0
ip -n "$namespace" link del dev "$provisional"
exit ${RENAME_REFUSED}`;

/** The command that makes the device under its own name, in its namespace when it has one (see `vxlanAddArgv`). */
export function vxlanCreateArgv(spec: VxlanSpec, provisional = provisionalName()): Argv {
  if (!spec.namespace) return vxlanAddArgv(spec, spec.name);
  return ["sh", "-c", ADD_IN_NAMESPACE_SCRIPT, "sh", spec.namespace, provisional, spec.name, ...vxlanAddArgv(spec, provisional)];
}

export const vxlanListArgv = (namespace: string): Argv => inNamespace(namespace, ["ip", "-d", "-j", "link", "show", "type", "vxlan"]);

/**
 * Devices under a provisional name in `ip -d -j link show type vxlan` that hold this VNI and port: left
 * by a create that never finished (before it was one script) or whose removal failed, they are ours.
 */
export function provisionalLeftovers(stdout: string, spec: Pick<VxlanSpec, "vni" | "dstport">): string[] {
  const links = JSON.parse(stdout.trim() || "[]") as (VxlanJson & { ifname: string })[];
  return links
    .filter((l) => PROVISIONAL.test(l.ifname) && l.linkinfo?.info_data?.id === spec.vni && l.linkinfo.info_data.port === spec.dstport)
    .map((l) => l.ifname);
}

/** The forwarding-database entry for frames with no known destination. */
const FLOOD_MAC = "00:00:00:00:00:00";

export function floodEntryArgv(action: "append" | "del", namespace: string | undefined, name: string, remote: string): Argv {
  return inNamespace(namespace, ["bridge", "fdb", action, FLOOD_MAC, "dev", name, "dst", remote]);
}

/** From the flood entries there are to the ones wanted: new ones first, so no host misses a broadcast meanwhile. */
export function floodChangesArgv(
  namespace: string | undefined,
  name: string,
  current: readonly string[],
  wanted: readonly string[],
): Argv[] {
  return [
    ...wanted.filter((r) => !current.includes(r)).map((r) => floodEntryArgv("append", namespace, name, r)),
    ...current.filter((r) => !wanted.includes(r)).map((r) => floodEntryArgv("del", namespace, name, r)),
  ];
}

/**
 * Sets or clears (`undefined`: the family's any-address) the device's fixed remote in place. The kernel
 * swaps the remote's flood entry with it, which it makes with the underlay device as `via`.
 */
export function remoteChangeArgv(namespace: string | undefined, name: string, remote: string | undefined, local: string): Argv {
  return inNamespace(namespace, [
    "ip",
    "link",
    "set",
    "dev",
    name,
    "type",
    "vxlan",
    "remote",
    remote ?? (isIP(local) === 6 ? "::" : "0.0.0.0"),
  ]);
}

export const floodShowArgv = (namespace: string | undefined, name: string): Argv =>
  inNamespace(namespace, ["bridge", "-j", "fdb", "show", "dev", name]);

interface FdbEntry {
  mac: string;
  dst?: string;
  /** Printed only when they differ from the device's own port and VNI. */
  port?: number;
  vni?: number;
  /** An outgoing interface (`via`), by name or by index. */
  viaIf?: string;
  viaIfIndex?: number;
}

/**
 * The remotes of the all-zero entries of `bridge -j fdb show dev X`, sorted; learned and bridge entries aside.
 * Only IP addresses count: what is read back may go into a delete, so it passes the same check as input.
 * An entry with another port or VNI, or with `via`, is someone else's: `fdb del … dst R` would not match it.
 */
export function parseFloodRemotes(stdout: string, device: Pick<VxlanState, "vni" | "dstport">): string[] {
  const entries = JSON.parse(stdout.trim() || "[]") as FdbEntry[];
  const ours = (e: FdbEntry) =>
    (e.port ?? device.dstport) === device.dstport &&
    (e.vni ?? device.vni) === device.vni &&
    e.viaIf === undefined &&
    e.viaIfIndex === undefined;
  return entries.flatMap((e) => (e.mac === FLOOD_MAC && e.dst && isIP(e.dst) && ours(e) ? [canonicalAddress(e.dst)] : [])).sort();
}

export interface VxlanState {
  vni: number;
  local?: string;
  remote?: string;
  /** Read only for a device managed by its `remotes`. */
  remotes?: string[];
  dstport: number;
  mtu: number;
  up: boolean;
  master?: string;
}

export interface VxlanJson {
  mtu: number;
  flags?: string[];
  master?: string;
  /** Present when the device was made in another namespace than the one it is in (where its socket is). */
  link_netnsid?: number;
  linkinfo?: {
    info_kind?: string;
    info_data?: {
      id: number;
      port: number;
      local?: string;
      local6?: string;
      remote?: string;
      remote6?: string;
      link?: string;
      link_index?: number;
    };
  };
}

export interface Underlay {
  /** `dev` as `ip` names it, looking its index up in the device's namespace ("ifN" when nothing has index N there, or `index`). */
  name?: string;
  index?: number;
  /** The device was made in another namespace: the underlay is there, and `name` is whatever has its index here. */
  madeElsewhere: boolean;
}

/** The underlay of a vxlan device from `ip -d -j link show`; undefined for a device made without `dev`. */
export function parseUnderlay(stdout: string): Underlay | undefined {
  const [link] = JSON.parse(stdout.trim() || "[]") as VxlanJson[];
  const info = link?.linkinfo?.info_data;
  if (info?.link === undefined && info?.link_index === undefined) return undefined;
  return { name: info.link, index: info.link_index, madeElsewhere: link.link_netnsid !== undefined };
}

/** One link from `ip -d -j link show`, or undefined when it is not a vxlan device. */
export function parseVxlan(stdout: string): VxlanState | undefined {
  const [link] = JSON.parse(stdout.trim() || "[]") as VxlanJson[];
  return vxlanState(link);
}

/** A link as `ip -d -j` prints it (a listing's, say) as a vxlan device; undefined when it is none. */
export function vxlanState(link: VxlanJson | undefined): VxlanState | undefined {
  const info = link?.linkinfo?.info_data;
  if (link?.linkinfo?.info_kind !== "vxlan" || !info) return undefined;
  return {
    vni: info.id,
    local: info.local ?? info.local6,
    remote: info.remote ?? info.remote6,
    dstport: info.port,
    mtu: link.mtu,
    up: (link.flags ?? []).includes("UP"),
    master: link.master,
  };
}

/** The kernel refuses a second device with the same VNI and port among those made in one namespace. */
export function explainAddFailure(hostLabel: string, spec: Pick<VxlanSpec, "vni" | "dstport">, result: CommandResult): Error {
  if (/VNI already exists|File exists/.test(result.stderr)) {
    return new Error(
      `${hostLabel}: VNI ${spec.vni} with dstport ${spec.dstport} is already used by another vxlan device on this host ` +
        `(EEXIST: every vxlan device is made from the host's namespace, wherever it lives). ` +
        `Use another vni or dstport, or remove the other device.`,
    );
  }
  return new CommandFailedError(hostLabel, result);
}

/** Each remote of the same IP family as `local`, not `local` itself, listed once; `pathOf` names the property of the i-th. */
export function checkRemotes(local: string, remotes: readonly string[], pathOf: (i: number) => (string | number)[], ctx: z.RefinementCtx) {
  remotes.forEach((remote, i) => {
    const refuse = (message: string) => ctx.addIssue({ code: "custom", path: pathOf(i), message });
    if (isIP(remote) !== isIP(local)) refuse(`${remote} and \`local\` (${local}) are not the same IP family`);
    else if (remote === local) refuse(`${remote} is \`local\` itself`);
    else if (remotes.indexOf(remote) < i) refuse(`${remote} is listed twice`);
  });
}

/** "interface NAME", with its namespace when it has one. */
const interfaceIn = (namespace: string | undefined, name: string) => `interface "${name}"${inNamespaceWords(namespace)}`;

/**
 * Makes the device in its namespace under its own name, tagged with its owner in the same step, after
 * removing what an unfinished create left there.
 */
async function addVxlan(host: Host, spec: VxlanSpec, owner: string | undefined): Promise<void> {
  if (spec.namespace) {
    const listed = await runUnlessGone(host, vxlanListArgv(spec.namespace), { readOnly: true });
    for (const leftover of listed ? provisionalLeftovers(listed.stdout, spec) : [])
      await runUnlessGone(host, linkDeleteArgv(spec.namespace, leftover));
  }
  const tag = owner === undefined ? [] : [setAliasArgv(spec.namespace, spec.name, owner)];
  const result = await host.run(inOneStep(vxlanCreateArgv(spec), ...tag), { allowFailure: true });
  if (result.exitCode === 0) return;
  if (result.exitCode !== RENAME_REFUSED) throw explainAddFailure(host.label, spec, result);
  // The name was taken in the namespace since create looked.
  if (/File exists/.test(result.stderr)) throw new AlreadyExistsError(host.label, interfaceIn(spec.namespace, spec.name));
  throw new CommandFailedError(host.label, result);
}

async function readVxlan(host: Host, namespace: string | undefined, name: string, withRemotes: boolean): Promise<VxlanState | undefined> {
  const result = await runUnlessGone(host, linkShowArgv(namespace, name), { readOnly: true });
  const found = result && parseVxlan(result.stdout);
  if (!found || !withRemotes) return found;
  const floods = await runUnlessGone(host, floodShowArgv(namespace, name), { readOnly: true });
  return floods && { ...found, remotes: parseFloodRemotes(floods.stdout, found) };
}

async function underlayMtu(host: Host, device: string): Promise<number> {
  const underlay = await readLink(host, undefined, device);
  if (!underlay) throw new Error(`${host.label}: underlay device "${device}" does not exist in the host's namespace`);
  return underlay.mtu;
}

/**
 * The commands from a device's remotes to the wanted ones, in place: its fixed remote and, when they were
 * read (`current.remotes`), its flood entries. What is wanted is there before what goes is removed: a
 * fixed remote's own entry (`via` the underlay) is another entry than a flood entry to the same host, so
 * a cable that becomes a segment's port, or the reverse, floods to that host throughout.
 */
export function remotesChangeArgv(
  spec: Pick<VxlanSpec, "namespace" | "name" | "local" | "remote" | "remotes">,
  current: Pick<VxlanState, "remote" | "remotes">,
): Argv[] {
  const floods =
    current.remotes || spec.remotes ? floodChangesArgv(spec.namespace, spec.name, current.remotes ?? [], spec.remotes ?? []) : [];
  if (current.remote === spec.remote) return floods;
  const fixed = remoteChangeArgv(spec.namespace, spec.name, spec.remote, spec.local);
  if (spec.remote) return [fixed, ...floods];
  // A device made without an underlay `dev` lists its fixed remote as a plain flood entry, which clearing
  // the remote removes: one wanted is appended again.
  const again = current.remotes?.includes(current.remote!) && spec.remotes?.includes(current.remote!);
  return [...floods, fixed, ...(again ? [floodEntryArgv("append", spec.namespace, spec.name, current.remote!)] : [])];
}

/**
 * Brings remotes, mtu, master and up to the full desired state: an unset mtu or master means the default.
 * `underlay` is the underlay's MTU when the caller has just read it.
 */
async function reconcile(host: Host, spec: VxlanSpec, current: VxlanState, underlay?: number): Promise<void> {
  for (const argv of remotesChangeArgv(spec, current)) await host.run(argv);
  const mtu = spec.mtu ?? defaultVxlanMtu(underlay ?? (await underlayMtu(host, spec.device)), spec.local);
  await reconcileLink(host, spec.namespace, spec.name, current, { mtu, master: spec.master ?? null, up: spec.up });
}

const REPLACE_ON = ["name", "vni", "local", "dstport", "device", "namespace"];

/** What makes two ends one cable; any change replaces the device. Its remote and `remotes` change in place. */
const identityOf = (v: Pick<VxlanState, "vni" | "local" | "dstport">) => ({ vni: v.vni, local: v.local, dstport: v.dstport });

export const vxlanKind = defineKind({
  name: "Vxlan",
  description:
    "A VXLAN device: a layer-2 cable to another host over UDP (`ip link add NAME type vxlan`), or with `remotes` one host's port on a " +
    "segment over several hosts; optionally placed in a namespace and on a bridge.",
  shape: {
    name: interfaceName.describe("Device name (at most 15 bytes)."),
    vni: z.number().int().min(1).max(16777215).describe("VXLAN network identifier (1..16777215); both ends use the same one."),
    local: ipAddress.describe("This host's underlay address, the source of the UDP packets."),
    remote: ipAddress
      .optional()
      .describe(
        "The other host's underlay address (same IP family as `local`), for a cable between two hosts. Give this or `remotes`; either " +
          "changes in place, also one into the other.",
      ),
    remotes: z
      .array(ipAddress)
      .min(1)
      .optional()
      .describe(
        "Every other host's underlay address (same IP family as `local`), for a segment over several hosts: frames without a known " +
          "destination are copied to each (`bridge fdb append 00:00:00:00:00:00 … dst R`). Give this or `remote`.",
      ),
    dstport: port.default(VXLAN_PORT).describe("UDP port of the other end (IANA's 4789; the kernel alone would use 8472)."),
    device: interfaceName.describe("Underlay interface in the host's namespace; its MTU sets the default `mtu`."),
    namespace: namespaceName
      .optional()
      .describe("Namespace to place the device in; the host's own when unset. Its UDP socket stays in the host's."),
    master: interfaceName.optional().describe("Bridge to enslave the device to (in the device's namespace)."),
    mtu: mtu.optional().describe("MTU; when unset, the underlay's MTU minus 50 (IPv4) or 70 (IPv6), so encapsulated frames fit."),
    up: z.boolean().default(true).describe("Administrative state: up or down."),
  },
  refine(spec, ctx) {
    if (spec.remote !== undefined && spec.remotes !== undefined) {
      ctx.addIssue({ code: "custom", path: ["remotes"], message: "`remote` and `remotes` exclude each other: give one" });
    } else if (spec.remote === undefined && spec.remotes === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["remote"],
        message: "give `remote` (the other host) or `remotes` (every other host of the segment)",
      });
    }
    const listed = spec.remotes ?? (spec.remote === undefined ? [] : [spec.remote]);
    checkRemotes(spec.local, listed, (i) => (spec.remotes ? ["remotes", i] : ["remote"]), ctx);
  },
  // Sorted as read back from the forwarding database, so the order given is no change.
  canonical: (spec) => (spec.remotes ? { ...spec, remotes: [...spec.remotes].sort() } : spec),
  replaceOn: REPLACE_ON,
  // Every device is made from the host's namespace, where a VNI and port can be bound only once.
  collides: (olds, news) =>
    (olds.vni === news.vni && olds.dstport === news.dstport) || (olds.name === news.name && olds.namespace === news.namespace),
  adoptable: true,
  importing: {
    idForm: "[NAMESPACE]/NAME",
    identify: (id) => namespacedIdentity(id, "name"),
    // The underlay device, and whether the device has a fixed remote or (read then) flood entries.
    async discover(host, _id, identity) {
      const { name, namespace } = identity as { name: string; namespace?: string };
      const shown = await runUnlessGone(host, linkShowArgv(namespace, name), { readOnly: true });
      if (!shown) return undefined;
      const found = parseVxlan(shown.stdout);
      if (!found) throw new Error(`${host.label}: ${interfaceIn(namespace, name)} is not a vxlan device`);
      const underlay = parseUnderlay(shown.stdout);
      const links = await listLinks(host);
      // A Vxlan is made from the host's namespace: the underlay of one in a namespace is there, known by its index.
      const indexIn = (u: Underlay) =>
        u.index ?? links.get(namespace!)?.find((l) => l.ifname === u.name)?.ifindex ?? Number(/^if(\d+)$/.exec(u.name ?? "")?.[1]);
      const index = namespace && underlay?.madeElsewhere ? indexIn(underlay) : undefined;
      const device = namespace
        ? links.get("")?.find((l) => l.ifindex === index)?.ifname
        : underlay?.madeElsewhere === false
          ? underlay.name
          : undefined;
      if (!device)
        throw new Error(
          `${host.label}: ${interfaceIn(namespace, name)} has no underlay device (\`dev\`) in the host's namespace, which a Vxlan names`,
        );
      return { ...identity, device, ...(found.remote ? {} : { remotes: [] }) };
    },
  },
  async create(host, spec, adopt, owner) {
    const existing = await readLink(host, spec.namespace, spec.name);
    const { ours } = existing
      ? mayTakeOver(host.label, interfaceIn(spec.namespace, spec.name), existing.alias, owner, adopt)
      : { ours: false };
    const withRemotes = spec.remotes !== undefined;
    let underlay: number | undefined;
    if (existing) {
      const found = await readVxlan(host, spec.namespace, spec.name, withRemotes);
      if (!found || !isDeepStrictEqual(identityOf(found), identityOf(spec))) {
        throw new Error(
          `${host.label}: cannot adopt "${spec.name}": it is not a vxlan device with vni ${spec.vni}, local ${spec.local}, dstport ` +
            `${spec.dstport}`,
        );
      }
    } else {
      // Read before anything is made: a missing underlay is refused with nothing to undo.
      underlay = await underlayMtu(host, spec.device);
      await addVxlan(host, spec, owner);
    }
    if (existing && !ours && owner !== undefined) await host.run(setAliasArgv(spec.namespace, spec.name, owner));
    try {
      await reconcile(host, spec, (await readVxlan(host, spec.namespace, spec.name, withRemotes))!, underlay);
      // The namespace is part of the id: delete finds the device where it lives.
      return {
        id: `${spec.namespace ?? ""}/${spec.name}`,
        observed: { ...(await readVxlan(host, spec.namespace, spec.name, withRemotes))! },
      };
    } catch (err) {
      if (!existing || ours) {
        await runUnlessGone(host, linkDeleteArgv(spec.namespace, spec.name)).catch((cleanup) => {
          throw partlyMade(err, interfaceIn(spec.namespace, spec.name), cleanup);
        });
      }
      throw err;
    }
  },
  async read(host, _id, olds) {
    const found = await readVxlan(host, olds.namespace as string | undefined, olds.name as string, Array.isArray(olds.remotes));
    return found && { ...found };
  },
  // A segment's device found with a fixed remote (made by hand as a cable, say) is not what the program
  // asks for, though its flood entries may read the same; update clears the fixed remote in place.
  drift: (_id, olds, news) => (news.remotes !== undefined && olds.remote !== undefined ? ["remote"] : []),
  async update(host, _id, olds, news) {
    // Flood entries are read when they are wanted or were: a segment's port that becomes a cable drops them.
    const withRemotes = news.remotes !== undefined || Array.isArray(olds.remotes);
    const current = await readVxlan(host, news.namespace, news.name, withRemotes);
    if (!current) throw new Error(`${host.label}: vxlan device "${news.name}" is gone; run \`pulumi refresh\` to recreate it`);
    await reconcile(host, news, current);
    return { ...(await readVxlan(host, news.namespace, news.name, news.remotes !== undefined))! };
  },
  async delete(host, _id, olds) {
    const namespace = olds.namespace as string | undefined;
    // A link that took the name since and is no vxlan device is someone else's, and so is a device another
    // owner took over (a Lab's segment, when a stack moved to LabSegment).
    const link = await readLink(host, namespace, olds.name as string);
    if (link?.kind === "vxlan" && !takenOver(link.alias, REPLACE_ON, olds)) await runUnlessGone(host, linkDeleteArgv(namespace, link.name));
  },
  async tagged(_host, source) {
    return taggedLinks(await source.links(), "vxlan").map(({ owner, namespace, link }) => ({
      owner,
      id: `${namespace ?? ""}/${link.ifname}`,
      olds: { namespace, name: link.ifname, owner },
      what: interfaceIn(namespace, link.ifname),
    }));
  },
});
