/** iproute2 argv builders and `ip -j` parsers shared by the link-type kinds. Pure except `runIp`. */
import { CommandFailedError } from "./errors";
import { Argv, CommandResult, Host, inNamespace, listEveryNamespace, RunOptions } from "./host";

/** stderr of `ip` when the object, or the namespace it would live in, does not exist. */
const GONE =
  /does not exist|Cannot find device|Cannot open network namespace|No such file or directory|No such device|No such process|Cannot assign requested address|[Aa]ddress not found/;

/** `ip -n NAME` / `ip netns exec NAME` when the namespace itself is gone. */
export function namespaceGone(result: CommandResult): boolean {
  return result.exitCode !== 0 && /Cannot open network namespace/.test(result.stderr);
}

export function isGone(result: CommandResult): boolean {
  return result.exitCode !== 0 && GONE.test(result.stderr);
}

/** Runs a command; "not found" answers come back as undefined, other failures throw. */
export async function runUnlessGone(host: Host, argv: Argv, options: RunOptions = {}): Promise<CommandResult | undefined> {
  const result = await host.run(argv, { ...options, allowFailure: true });
  if (result.exitCode === 0) return result;
  if (isGone(result)) return undefined;
  throw new CommandFailedError(host.label, result);
}

export interface LinkState {
  name: string;
  ifindex: number;
  kind?: string;
  mtu: number;
  up: boolean;
  master?: string;
  /** `ip link set … alias`: who made it, for links this provider made (owner.ts). */
  alias?: string;
  /** The other end of a veth: `ip` names it when it is in the same namespace, else gives its index and netnsid. */
  peer?: { name?: string; ifindex?: number; otherNamespace: boolean };
}

export interface IpLinkJson {
  ifindex: number;
  ifname: string;
  mtu: number;
  flags?: string[];
  /** The kernel's operational state: "UP", "DOWN", "LOWERLAYERDOWN" (a veth whose peer is down), "UNKNOWN". */
  operstate?: string;
  master?: string;
  ifalias?: string;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
  /** Present in `ip addr` output. */
  addr_info?: { local: string; prefixlen: number; scope?: string; dynamic?: boolean; tentative?: boolean; dadfailed?: boolean }[];
}

export function parseLinks(stdout: string): LinkState[] {
  return (JSON.parse(stdout.trim() || "[]") as IpLinkJson[]).map(linkState);
}

export function linkState(l: IpLinkJson): LinkState {
  return {
    name: l.ifname,
    ifindex: l.ifindex,
    kind: l.linkinfo?.info_kind,
    mtu: l.mtu,
    up: isUp(l),
    master: l.master,
    alias: l.ifalias,
    peer:
      l.link !== undefined || l.link_index !== undefined
        ? { name: l.link, ifindex: l.link_index, otherNamespace: l.link_netnsid !== undefined }
        : undefined,
  };
}

export function linkShowArgv(namespace: string | undefined, name: string): Argv {
  return inNamespace(namespace, ["ip", "-j", "-d", "link", "show", "dev", name]);
}

/**
 * Every link of every namespace with its addresses, as `ip -j -d addr show` prints them, by namespace
 * ("" is the host's own). One listing serves all the link and address reads of a refresh.
 */
export function listLinks(host: Host): Promise<Map<string, IpLinkJson[]>> {
  return listEveryNamespace(host, ["ip", "-j", "-d", "addr", "show"], (text) => JSON.parse(text.trim() || "[]") as IpLinkJson[]);
}

/** Where a kind looks links up: one command per link, or one listing of the whole host (a refresh). */
export interface LinkSource {
  link(namespace: string | undefined, name: string): Promise<LinkState | undefined>;
  /** The named namespaces. */
  namespaces(): Promise<string[]>;
}

export function parseNamespaces(stdout: string): string[] {
  return (JSON.parse(stdout.trim() || "[]") as { name: string }[]).map((n) => n.name);
}

export async function namespaceNames(host: Host): Promise<string[]> {
  return parseNamespaces((await host.run(["ip", "-j", "netns", "list"], { readOnly: true })).stdout);
}

export function liveLinks(host: Host): LinkSource {
  return { link: (namespace, name) => readLink(host, namespace, name), namespaces: () => namespaceNames(host) };
}

export function listedLinks(host: Host): LinkSource {
  return {
    async link(namespace, name) {
      const json = (await listLinks(host)).get(namespace ?? "")?.find((l) => l.ifname === name);
      return json && linkState(json);
    },
    namespaces: async () => [...(await listLinks(host)).keys()].filter((namespace) => namespace !== ""),
  };
}

export async function readLink(host: Host, namespace: string | undefined, name: string): Promise<LinkState | undefined> {
  const result = await runUnlessGone(host, linkShowArgv(namespace, name), { readOnly: true });
  return result ? parseLinks(result.stdout)[0] : undefined;
}

/** What a kind manages on a link; an unset field is left as it is, a null master means none. */
export interface LinkChange {
  up?: boolean;
  mtu?: number;
  master?: string | null;
}

export function linkSetArgv(namespace: string | undefined, name: string, change: LinkChange): Argv {
  const argv = ["ip", "link", "set", "dev", name];
  if (change.mtu !== undefined) argv.push("mtu", String(change.mtu));
  if (change.master === null) argv.push("nomaster");
  else if (change.master !== undefined) argv.push("master", change.master);
  if (change.up !== undefined) argv.push(change.up ? "up" : "down");
  return inNamespace(namespace, argv);
}

/** Administrative state from `ip -j` flags. */
export const isUp = (link: { flags?: string[] }) => (link.flags ?? []).includes("UP");

/** The part of `wanted` a link does not have yet: all of it for a link not there (about to be made). Pure. */
export function linkChanges(current: Partial<LinkState> | undefined, wanted: LinkChange): LinkChange {
  const change: LinkChange = {};
  if (wanted.mtu !== undefined && (!current || wanted.mtu !== current.mtu)) change.mtu = wanted.mtu;
  if (wanted.master !== undefined && (!current || wanted.master !== (current.master ?? null))) change.master = wanted.master;
  if (wanted.up !== undefined && (!current || wanted.up !== current.up)) change.up = wanted.up;
  return change;
}

/** Brings a link to the wanted mtu / master / up state in one command, when anything differs. */
export async function reconcileLink(
  host: Host,
  namespace: string | undefined,
  name: string,
  current: Partial<LinkState>,
  wanted: LinkChange,
): Promise<void> {
  const change = linkChanges(current, wanted);
  if (Object.keys(change).length > 0) await host.run(linkSetArgv(namespace, name, change));
}

export function linkDeleteArgv(namespace: string | undefined, name: string): Argv {
  return inNamespace(namespace, ["ip", "link", "del", "dev", name]);
}
