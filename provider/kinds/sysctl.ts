import { z } from "zod";
import { namespaceName } from "../fields";
import { Argv, Host, inNamespace } from "../host";
import { namespaceGone } from "../iproute";
import { CommandFailedError } from "../errors";
import {
  currentRecord,
  HolderRecord,
  holderPath,
  join,
  leave,
  namespaceIdentity,
  newHolderToken,
  readRecord,
  transact,
} from "../holders";
import { defineKind, neverCollides } from "../kind";

/** sysctl prints multi-value settings separated by tabs; compare with single spaces. */
const normalize = (value: string) => value.trim().split(/\s+/).join(" ");

export const sysctlReadArgv = (key: string, namespace?: string): Argv => inNamespace(namespace, ["sysctl", "-n", key]);
export const sysctlWriteArgv = (key: string, value: string, namespace?: string): Argv =>
  inNamespace(namespace, ["sysctl", "-q", "-w", `${key}=${value}`]);

/**
 * Keys that move together. Writing net.ipv4.ip_forward (= conf.all.forwarding) rewrites every
 * net.ipv4.conf.*.forwarding and conf.all.accept_redirects (the kernel's inet_forward_change);
 * net.ipv6.conf.all.forwarding rewrites every net.ipv6.conf.*.forwarding. Writing one interface's
 * key (or `default`'s) changes that key alone. A group shares one holder record; each holder snapshots
 * and restores only what its own write can change (see `reach`). Any other key is a group of its own.
 */
export interface SysctlGroup {
  /** Record file name; never a valid key, so no group can collide with a key. */
  name: string;
  /** `sysctl` arguments that print every member as `KEY = VALUE`. */
  readArgs: string[];
  member(key: string): boolean;
  /** Keys whose write rewrites every member. */
  rewriteAll: string[];
  /** Restored first: writing it rewrites the other members. */
  primary?: string;
}

const IPV4_FORWARDING = /^net\.ipv4\.(ip_forward|conf\.[^.]+\.forwarding|conf\.all\.accept_redirects)$/;
const IPV6_FORWARDING = /^net\.ipv6\.conf\.[^.]+\.forwarding$/;

export function sysctlGroup(key: string): SysctlGroup {
  if (IPV4_FORWARDING.test(key) && key !== "net.ipv4.conf.all.accept_redirects") {
    return {
      name: "ipv4-forwarding",
      readArgs: ["-r", "\\.forwarding$|^net\\.ipv4\\.ip_forward$|^net\\.ipv4\\.conf\\.all\\.accept_redirects$", "net.ipv4"],
      member: (k) => IPV4_FORWARDING.test(k),
      rewriteAll: ["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"],
      primary: "net.ipv4.ip_forward",
    };
  }
  if (IPV6_FORWARDING.test(key)) {
    return {
      name: "ipv6-forwarding",
      readArgs: ["-r", "\\.forwarding$", "net.ipv6.conf"],
      member: (k) => IPV6_FORWARDING.test(k),
      rewriteAll: ["net.ipv6.conf.all.forwarding"],
      primary: "net.ipv6.conf.all.forwarding",
    };
  }
  return { name: key, readArgs: [key], member: (k) => k === key, rewriteAll: [] };
}

/** The members a write of `key` can change: the whole group for a key that rewrites it, else `key` alone. */
export function reach(group: SysctlGroup, key: string): (member: string) => boolean {
  return group.rewriteAll.includes(key) ? group.member : (member) => member === key;
}

/** `KEY = VALUE` lines of the group's members. */
export function parseSysctlValues(stdout: string, group: SysctlGroup): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const at = line.indexOf(" = ");
    if (at > 0 && group.member(line.slice(0, at))) values.set(line.slice(0, at), normalize(line.slice(at + 3)));
  }
  return values;
}

/** The group's values now; undefined when the namespace is gone. Vanished keys are simply absent. */
async function readGroup(host: Host, group: SysctlGroup, namespace?: string): Promise<Map<string, string> | undefined> {
  const result = await host.run(inNamespace(namespace, ["sysctl", ...group.readArgs]), { allowFailure: true, readOnly: true });
  if (namespaceGone(result)) return undefined;
  if (result.exitCode !== 0 && !/cannot stat/.test(result.stderr)) throw new CommandFailedError(host.label, result);
  return parseSysctlValues(result.stdout, group);
}

export interface SysctlRecord extends HolderRecord {
  /** Each member some holder's write can change, as it was before the first such holder came. */
  original: Record<string, string>;
}

const only = (values: Record<string, string>, keep: (key: string) => boolean) =>
  Object.fromEntries(Object.entries(values).filter(([key]) => keep(key)));

/**
 * The record after `token` joins: it snapshots the members its write can change that no earlier holder
 * snapshotted (an earlier snapshot is older, so it wins). Holders of vanished keys are dropped.
 */
export function joinSysctl(
  record: SysctlRecord | undefined,
  identity: string,
  token: string,
  key: string,
  values: Map<string, string>,
): SysctlRecord {
  const held = pruned(currentRecord(record, identity), values) ?? { identity, holders: {}, original: {} };
  const snapshot = only(Object.fromEntries(values), reach(sysctlGroup(key), key));
  return join({ ...held, original: { ...snapshot, ...held.original } }, token, key)!;
}

/** Holders whose key vanished (its interface was deleted) are gone with it; their resources read as gone. */
function pruned(record: SysctlRecord | undefined, values: Map<string, string>): SysctlRecord | undefined {
  if (!record) return undefined;
  const holders = Object.fromEntries(Object.entries(record.holders).filter(([, key]) => values.has(key)));
  return Object.keys(holders).length > 0 ? { ...record, holders } : undefined;
}

/**
 * `KEY=VALUE` writes that bring `original`'s keys back, primary first. Writing the primary makes the
 * kernel rewrite every member, so after it the other restored keys are written, and the `kept` ones
 * (still held by others) get their value of now back.
 */
export function restoreWrites(
  group: SysctlGroup,
  original: Record<string, string>,
  values: Map<string, string>,
  kept: (key: string) => boolean = () => false,
): string[] {
  const keys = Object.keys(original).filter((k) => values.has(k));
  const primary = group.primary;
  if (primary === undefined || !keys.includes(primary) || values.get(primary) === original[primary]) {
    return keys.filter((k) => values.get(k) !== original[k]).map((k) => `${k}=${original[k]}`);
  }
  const restored = [primary, ...keys.filter((k) => k !== primary)].map((k) => `${k}=${original[k]}`);
  const keptNow = [...values].filter(([k]) => kept(k)).map(([k, value]) => `${k}=${value}`);
  return [...restored, ...keptNow];
}

/**
 * What leaving does: the members the leaver's write could change and no remaining holder's can go back
 * to the snapshot, and leave the record; a holder that was never recorded restores nothing.
 */
export function leaveSysctl(
  record: SysctlRecord | undefined,
  identity: string,
  token: string,
  group: SysctlGroup,
  values: Map<string, string>,
): { next: SysctlRecord | undefined; writes: string[] } {
  const held = pruned(currentRecord(record, identity), values);
  const { next, wasHolder } = leave(held, token);
  if (!held || !wasHolder) return { next, writes: [] };
  const reached = reach(group, held.holders[token]);
  const remaining = Object.values(next?.holders ?? {}).map((key) => reach(group, key));
  const kept = (member: string) => remaining.some((reaches) => reaches(member));
  return {
    next: next && { ...next, original: only(held.original, kept) },
    writes: restoreWrites(group, only(held.original, (k) => reached(k) && !kept(k)), values, kept),
  };
}

const recordPath = (key: string, namespace?: string) => holderPath("sysctl", namespace, sysctlGroup(key).name);
const where = (namespace?: string) => (namespace ? ` in namespace "${namespace}"` : "");

/** Joins the holders of the key's group and sets the value; returns the value the group had before any holder. */
async function holdAndSet(host: Host, spec: { key: string; value: string; namespace?: string }, token: string): Promise<string> {
  const group = sysctlGroup(spec.key);
  let original = "";
  await transact<SysctlRecord>(host, recordPath(spec.key, spec.namespace), async (record) => {
    const [identity, values] = await Promise.all([namespaceIdentity(host, spec.namespace), readGroup(host, group, spec.namespace)]);
    const value = values?.get(spec.key);
    if (identity === undefined || value === undefined) throw new Error(`${host.label}: no sysctl ${spec.key}${where(spec.namespace)}`);
    const next = joinSysctl(record, identity, token, spec.key, values!);
    original = next.original[spec.key] ?? value;
    return { next, command: value !== spec.value ? sysctlWriteArgv(spec.key, spec.value, spec.namespace) : undefined };
  });
  return original;
}

async function readValue(host: Host, key: string, namespace?: string): Promise<string | undefined> {
  const result = await host.run(sysctlReadArgv(key, namespace), { allowFailure: true, readOnly: true });
  if (result.exitCode === 0) return normalize(result.stdout);
  // The namespace is gone, or the key is (per-interface keys vanish with their interface).
  if (namespaceGone(result) || /cannot stat/.test(result.stderr)) return undefined;
  throw new CommandFailedError(host.label, result);
}

export const sysctlKind = defineKind({
  name: "Sysctl",
  description:
    "A kernel setting such as net.ipv4.ip_forward, set while the resource exists. Resources that share a setting " +
    "are recorded as its holders on the host; the last one to go restores the value found by the first.",
  shape: {
    key: z
      .string()
      .regex(/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/, { message: "must be a dotted sysctl key, e.g. net.ipv4.ip_forward" })
      .describe("Dotted key, e.g. net.ipv4.ip_forward."),
    value: z
      .string()
      .regex(/^[A-Za-z0-9_.:\s-]{1,256}$/, { message: "may hold letters, digits, spaces and _ . : -" })
      .transform(normalize)
      .describe('Value to set, e.g. "1".'),
    namespace: namespaceName.optional().describe("Namespace whose setting this is (net.* settings are per namespace)."),
  },
  replaceOn: ["key", "namespace"],
  collides: neverCollides,
  outputs: {
    previous: z.string().describe("The value before the first holder set it; restored when the last holder is destroyed."),
    holder: z.string().describe("This resource's token in the holder record on the host (under /run/pulumi-netns)."),
  },
  adoptable: false,
  async create(host, spec) {
    const holder = newHolderToken();
    const previous = await holdAndSet(host, spec, holder);
    return { id: `${spec.namespace ?? ""}/${spec.key}`, observed: { value: await readValue(host, spec.key, spec.namespace), previous, holder } };
  },
  async read(host, _id, olds) {
    const value = await readValue(host, olds.key as string, olds.namespace as string | undefined);
    return value === undefined ? undefined : { value };
  },
  async update(host, _id, olds, news) {
    // Joining again is a no-op for a recorded holder, and records it anew after a reboot cleared /run.
    if (typeof olds.holder === "string") await holdAndSet(host, news, olds.holder);
    else await host.run(sysctlWriteArgv(news.key, news.value, news.namespace));
    return { value: await readValue(host, news.key, news.namespace) };
  },
  async delete(host, _id, olds) {
    const key = olds.key as string;
    const namespace = olds.namespace as string | undefined;
    const group = sysctlGroup(key);
    const path = recordPath(key, namespace);
    if (typeof olds.holder !== "string") return deleteWithoutHolder(host, path, key, olds.previous as string | undefined, namespace);
    const token = olds.holder;
    await transact<SysctlRecord>(host, path, async (record) => {
      const [identity, values] = await Promise.all([namespaceIdentity(host, namespace), readGroup(host, group, namespace)]);
      // A namespace that is gone took its settings along: only its record is left to clean.
      if (identity === undefined || values === undefined) return { next: undefined };
      const { next, writes } = leaveSysctl(record, identity, token, group, values);
      // -e: a key whose interface vanished since the read is skipped, not an error.
      return { next, command: writes.length > 0 ? inNamespace(namespace, ["sysctl", "-e", "-q", "-w", ...writes]) : undefined };
    });
  },
});

/**
 * A Sysctl from before holder records knows only its own `previous`. It restores it as it always did,
 * unless holders are recorded for the setting now: then the last of them restores the group.
 */
async function deleteWithoutHolder(host: Host, path: string, key: string, previous: string | undefined, namespace?: string) {
  const [record, identity] = await Promise.all([readRecord<SysctlRecord>(host, path), namespaceIdentity(host, namespace)]);
  if (identity !== undefined && currentRecord(record, identity)) return;
  const current = await readValue(host, key, namespace);
  if (current === undefined || previous === undefined || current === previous) return;
  await host.run(sysctlWriteArgv(key, previous, namespace));
}
