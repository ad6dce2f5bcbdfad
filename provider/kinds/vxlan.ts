/**
 * A VXLAN device: an Ethernet cable to another host, carried in UDP over the hosts' own network.
 * The device is always made from the host's namespace, even when it lives in another one, because
 * its UDP socket stays in the namespace that made it and must reach the underlay.
 */
import { isIP } from "node:net";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { AlreadyExistsError, CommandFailedError } from "../errors";
import { interfaceName, ipAddress, mtu, namespaceName, port } from "../fields";
import type { Argv, CommandResult, Host } from "../host";
import { linkDeleteArgv, linkShowArgv, readLink, reconcileLink, runUnlessGone } from "../iproute";
import { defineKind } from "../kind";

/** Outer IP, UDP and VXLAN headers plus the inner Ethernet header (kernel `VXLAN_HEADROOM`, `VXLAN6_HEADROOM`). */
export const VXLAN_OVERHEAD = { 4: 50, 6: 70 } as const;
/** IANA's port; the kernel's own default is Linux's pre-standard 8472. */
export const VXLAN_PORT = 4789;

interface VxlanSpec {
  name: string;
  vni: number;
  local: string;
  remote: string;
  dstport: number;
  device: string;
  namespace?: string;
  master?: string;
  mtu?: number;
  up: boolean;
}

/** `netns` at creation puts the device in its namespace at once, while its socket stays in the host's. */
export function vxlanAddArgv(spec: VxlanSpec): Argv {
  return [
    "ip", "link", "add", "name", spec.name,
    ...(spec.namespace ? ["netns", spec.namespace] : []),
    "type", "vxlan", "id", String(spec.vni), "local", spec.local, "remote", spec.remote,
    "dstport", String(spec.dstport), "dev", spec.device,
  ];
}

/** Inner MTU that fits the underlay: larger frames would be dropped without a word. */
export const defaultVxlanMtu = (underlayMtu: number, remote: string) => underlayMtu - VXLAN_OVERHEAD[isIP(remote) === 6 ? 6 : 4];

export interface VxlanState {
  vni: number;
  local?: string;
  remote?: string;
  dstport: number;
  mtu: number;
  up: boolean;
  master?: string;
}

interface VxlanJson {
  mtu: number;
  flags?: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { id: number; port: number; local?: string; local6?: string; remote?: string; remote6?: string } };
}

/** One link from `ip -d -j link show`, or undefined when it is not a vxlan device. */
export function parseVxlan(stdout: string): VxlanState | undefined {
  const [link] = JSON.parse(stdout.trim() || "[]") as VxlanJson[];
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

async function readVxlan(host: Host, namespace: string | undefined, name: string): Promise<VxlanState | undefined> {
  const result = await runUnlessGone(host, linkShowArgv(namespace, name), { readOnly: true });
  return result && parseVxlan(result.stdout);
}

async function underlayMtu(host: Host, device: string): Promise<number> {
  const underlay = await readLink(host, undefined, device);
  if (!underlay) throw new Error(`${host.label}: underlay device "${device}" does not exist in the host's namespace`);
  return underlay.mtu;
}

/** Brings mtu, master and up to the full desired state: an unset mtu or master means the default. */
async function reconcile(host: Host, spec: VxlanSpec, current: VxlanState): Promise<void> {
  const mtu = spec.mtu ?? defaultVxlanMtu(await underlayMtu(host, spec.device), spec.remote);
  await reconcileLink(host, spec.namespace, spec.name, current, { mtu, master: spec.master ?? null, up: spec.up });
}

/** What makes two ends one cable; any change replaces the device. */
const identityOf = (v: Pick<VxlanState, "vni" | "local" | "remote" | "dstport">) => ({ vni: v.vni, local: v.local, remote: v.remote, dstport: v.dstport });


export const vxlanKind = defineKind({
  name: "Vxlan",
  description:
    "A VXLAN device: a layer-2 cable to another host over UDP (`ip link add NAME type vxlan`), optionally placed in a namespace and on a bridge.",
  shape: {
    name: interfaceName.describe("Device name (at most 15 bytes)."),
    vni: z.number().int().min(1).max(16777215).describe("VXLAN network identifier (1..16777215); both ends use the same one."),
    local: ipAddress.describe("This host's underlay address, the source of the UDP packets."),
    remote: ipAddress.describe("The other host's underlay address (same IP family as `local`)."),
    dstport: port.default(VXLAN_PORT).describe("UDP port of the other end (IANA's 4789; the kernel alone would use 8472)."),
    device: interfaceName.describe("Underlay interface in the host's namespace; its MTU sets the default `mtu`."),
    namespace: namespaceName.optional().describe("Namespace to place the device in; the host's own when unset. Its UDP socket stays in the host's."),
    master: interfaceName.optional().describe("Bridge to enslave the device to (in the device's namespace)."),
    mtu: mtu
      .optional()
      .describe("MTU; when unset, the underlay's MTU minus 50 (IPv4) or 70 (IPv6), so encapsulated frames fit."),
    up: z.boolean().default(true).describe("Administrative state: up or down."),
  },
  refine(spec, ctx) {
    if (isIP(spec.local) !== isIP(spec.remote)) {
      ctx.addIssue({ code: "custom", path: ["remote"], message: "`local` and `remote` must be the same IP family" });
    }
  },
  replaceOn: ["name", "vni", "local", "remote", "dstport", "device", "namespace"],
  // Every device is made from the host's namespace, where a VNI and port can be bound only once.
  collides: (olds, news) =>
    (olds.vni === news.vni && olds.dstport === news.dstport) || (olds.name === news.name && olds.namespace === news.namespace),
  adoptable: true,
  async create(host, spec, adopt) {
    const existing = await readLink(host, spec.namespace, spec.name);
    if (existing && !adopt) throw new AlreadyExistsError(host.label, `interface "${spec.name}"`);
    if (existing) {
      const found = await readVxlan(host, spec.namespace, spec.name);
      if (!found || !isDeepStrictEqual(identityOf(found), identityOf(spec))) {
        throw new Error(`${host.label}: cannot adopt "${spec.name}": it is not a vxlan device with vni ${spec.vni}, local ${spec.local}, remote ${spec.remote}, dstport ${spec.dstport}`);
      }
    } else {
      await underlayMtu(host, spec.device);
      const result = await host.run(vxlanAddArgv(spec), { allowFailure: true });
      if (result.exitCode !== 0) throw explainAddFailure(host.label, spec, result);
    }
    try {
      await reconcile(host, spec, (await readVxlan(host, spec.namespace, spec.name))!);
      // The namespace is part of the id: delete finds the device where it lives.
      return { id: `${spec.namespace ?? ""}/${spec.name}`, observed: { ...(await readVxlan(host, spec.namespace, spec.name))! } };
    } catch (err) {
      if (!existing) await host.run(linkDeleteArgv(spec.namespace, spec.name), { allowFailure: true });
      throw err;
    }
  },
  async read(host, _id, olds) {
    const found = await readVxlan(host, olds.namespace as string | undefined, olds.name as string);
    return found && { ...found };
  },
  async update(host, _id, _olds, news) {
    const current = await readVxlan(host, news.namespace, news.name);
    if (!current) throw new Error(`${host.label}: vxlan device "${news.name}" is gone; run \`pulumi refresh\` to recreate it`);
    await reconcile(host, news, current);
    return { ...(await readVxlan(host, news.namespace, news.name))! };
  },
  async delete(host, _id, olds) {
    const namespace = olds.namespace as string | undefined;
    // A link that took the name since and is no vxlan device is someone else's.
    if (await readVxlan(host, namespace, olds.name as string)) await runUnlessGone(host, linkDeleteArgv(namespace, olds.name as string));
  },
});
