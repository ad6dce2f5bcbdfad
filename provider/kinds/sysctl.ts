import { z } from "zod";
import { namespaceName } from "../fields";
import { Argv, Host, inNamespace } from "../host";
import { namespaceGone } from "../iproute";
import { CommandFailedError, inNamespaceWords } from "../errors";
import { currentRecord, HolderRecord, holderPath, namespaceIdentity, recordedHolders, transact } from "../holders";
import { defineKind, namespacedIdentity, neverCollides } from "../kind";
import { ownerToken } from "../owner";

/** sysctl prints multi-value settings separated by tabs; compare with single spaces. */
const normalize = (value: string) => value.trim().split(/\s+/).join(" ");

export const sysctlReadArgv = (key: string, namespace?: string): Argv => inNamespace(namespace, ["sysctl", "-n", key]);
/** `KEY=VALUE` writes in order; -e: a key whose interface vanished since the read is skipped, not an error. */
export const sysctlWritesArgv = (writes: string[], namespace?: string): Argv =>
  inNamespace(namespace, ["sysctl", "-e", "-q", "-w", ...writes]);

/**
 * Keys that move together. Writing net.ipv4.ip_forward (= conf.all.forwarding) rewrites every
 * net.ipv4.conf.*.forwarding and sets conf.all.accept_redirects to its opposite (the kernel's
 * inet_forward_change); net.ipv6.conf.all.forwarding rewrites every net.ipv6.conf.*.forwarding. Writing
 * one interface's key (or `default`'s, or accept_redirects) changes that key alone. A group's holders
 * share one record, and every change to it sets the whole group as they want it (`settle`). Any other
 * key is a group of its own.
 */
export interface SysctlGroup {
  /** Record file name; never a valid key, so no group can collide with a key. */
  name: string;
  /** `sysctl` arguments that print every member as `KEY = VALUE`. */
  readArgs: string[];
  member(key: string): boolean;
  /** Keys whose write rewrites every member. */
  rewriteAll: string[];
  /** The value a member takes when a key of `rewriteAll` is written with `value`. */
  rewrittenTo(member: string, value: string): string;
  /** Written first: writing it rewrites the other members. */
  primary?: string;
}

const ACCEPT_REDIRECTS = "net.ipv4.conf.all.accept_redirects";
const IPV4_FORWARDING = /^net\.ipv4\.(ip_forward|conf\.[^.]+\.forwarding|conf\.all\.accept_redirects)$/;
const IPV6_FORWARDING = /^net\.ipv6\.conf\.[^.]+\.forwarding$/;

const keyOfItsOwn = (key: string): SysctlGroup => ({
  name: key,
  readArgs: [key],
  member: (k) => k === key,
  rewriteAll: [],
  rewrittenTo: (_member, value) => value,
});

export function sysctlGroup(key: string): SysctlGroup {
  if (IPV4_FORWARDING.test(key)) {
    return {
      name: "ipv4-forwarding",
      readArgs: ["-r", "\\.forwarding$|^net\\.ipv4\\.ip_forward$|^net\\.ipv4\\.conf\\.all\\.accept_redirects$", "net.ipv4"],
      member: (k) => IPV4_FORWARDING.test(k),
      rewriteAll: ["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"],
      rewrittenTo: (member, value) => (member === ACCEPT_REDIRECTS ? (value === "0" ? "1" : "0") : value),
      primary: "net.ipv4.ip_forward",
    };
  }
  if (IPV6_FORWARDING.test(key)) {
    return {
      name: "ipv6-forwarding",
      readArgs: ["-r", "\\.forwarding$", "net.ipv6.conf"],
      member: (k) => IPV6_FORWARDING.test(k),
      rewriteAll: ["net.ipv6.conf.all.forwarding"],
      rewrittenTo: (_member, value) => value,
      primary: "net.ipv6.conf.all.forwarding",
    };
  }
  return keyOfItsOwn(key);
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

/** What a holder sets. */
export interface SysctlHolding {
  key: string;
  value: string;
  /** Who holds it (owner.ts), for the sweep; a holder made without an owner has none. */
  owner?: string;
}

/**
 * A group's record. Holders are listed in the order they last set their value; the value is part of the
 * record so that every change of it changes the record, which the commit's compare-and-swap checks.
 */
export interface SysctlRecord extends HolderRecord<SysctlHolding> {
  /** Each member some holder's write reaches, as it was before any holder reached it. */
  original: Record<string, string>;
}

type Holders = [token: string, holding: SysctlHolding][];

/** The record's holders; one whose key vanished with its interface is gone with it (its resource reads as gone). */
function holdersOf(record: SysctlRecord | undefined, values: Map<string, string>): Holders {
  return Object.entries(record?.holders ?? {}).filter(([, holding]) => values.has(holding.key));
}

/** `values` after `holding` is written, as the kernel does it; a key that is gone changes nothing. */
export function written(group: SysctlGroup, values: Map<string, string>, holding: SysctlHolding): Map<string, string> {
  if (!values.has(holding.key)) return values;
  if (!group.rewriteAll.includes(holding.key)) return new Map(values).set(holding.key, holding.value);
  return new Map([...values].map(([member]) => [member, group.rewrittenTo(member, holding.value)]));
}

/**
 * What every member should be: its value without holders (`base`), then every whole-group holder's
 * write (ip_forward, conf.all.forwarding), then every one-key holder's; within each, the value set last wins.
 */
export function wantedValues(group: SysctlGroup, base: Map<string, string>, holdings: SysctlHolding[]): Map<string, string> {
  const wholeGroup = (holding: SysctlHolding) => group.rewriteAll.includes(holding.key);
  const ordered = [...holdings.filter(wholeGroup), ...holdings.filter((holding) => !wholeGroup(holding))];
  return ordered.reduce((values, holding) => written(group, values, holding), base);
}

/**
 * `KEY=VALUE` writes that turn `values` into `wanted`: the primary first when it changes (the kernel
 * then rewrites the other members), then each member that still differs.
 */
export function writesFor(group: SysctlGroup, wanted: Map<string, string>, values: Map<string, string>): string[] {
  const primary = group.primary;
  const primaryChanges = primary !== undefined && values.has(primary) && wanted.get(primary) !== values.get(primary);
  const first = primaryChanges ? [{ key: primary, value: wanted.get(primary)! }] : [];
  const afterFirst = first.reduce((now, holding) => written(group, now, holding), values);
  const rest = [...wanted].filter(([key, value]) => afterFirst.get(key) !== value).map(([key, value]) => ({ key, value }));
  return [...first, ...rest].map(({ key, value }) => `${key}=${value}`);
}

/** Holders after `token` leaves, or sets `holding`: at the end of the list, unless it holds that already. */
function holdersAfter(before: Holders, token: string | undefined, holding: SysctlHolding | undefined): Holders {
  if (token === undefined) return before;
  const others = before.filter(([t]) => t !== token);
  if (!holding) return others;
  const unchanged = before.some(
    ([t, h]) =>
      t === token && h.key === holding.key && h.value === holding.value && (holding.owner === undefined || h.owner === holding.owner),
  );
  return unchanged ? before : [...others, [token, holding]];
}

/**
 * One change to a group's holders, decided from the record and the values now: `token` joins or sets
 * a new value (`holding`), or leaves (no `holding`). Without a token (an imported resource, which holds
 * no record), `holding` is a one-off write beneath the holders: it changes what no holder's write reaches.
 * Every member goes to its wanted value; when the last holder leaves, that is each member's original.
 */
export function settle(
  group: SysctlGroup,
  record: SysctlRecord | undefined,
  identity: string,
  values: Map<string, string>,
  token: string | undefined,
  holding: SysctlHolding | undefined,
): { next: SysctlRecord | undefined; writes: string[] } {
  const current = currentRecord(record, identity);
  const before = holdersOf(current, values);
  const reached = (holders: Holders) => (member: string) => holders.some(([, { key }]) => reach(group, key)(member));
  // A member no holder reaches is as it would be without holders; one first seen (an interface made
  // since) gets what the primary's restore gives it.
  const stored = current?.original ?? {};
  const storedPrimary = group.primary === undefined ? undefined : stored[group.primary];
  const reachedBefore = reached(before);
  const base = new Map(
    [...values].map(([member, value]) => [member, reachedBefore(member) ? (stored[member] ?? storedPrimary ?? value) : value]),
  );

  const after = holdersAfter(before, token, holding);
  const oneOff = token === undefined && holding ? written(group, base, holding) : base;
  const wanted = wantedValues(
    group,
    oneOff,
    after.map(([, h]) => h),
  );

  const reachedAfter = reached(after);
  const original = Object.fromEntries([...base].filter(([member]) => reachedAfter(member)));
  return {
    next: after.length > 0 ? { identity, holders: Object.fromEntries(after), original } : undefined,
    writes: writesFor(group, wanted, values),
  };
}

export const recordPath = (group: SysctlGroup, namespace?: string) => holderPath("sysctl", namespace, group.name);

interface Change {
  token?: string;
  holding?: SysctlHolding;
}

/**
 * Settles one change under the group's record lock (`transact` asks again when another holder changed
 * the record meanwhile). `change` sees the values now, undefined when the namespace is gone; it may
 * throw, or say there is nothing to do. Returns the record kept.
 */
async function settleOnHost(
  host: Host,
  group: SysctlGroup,
  namespace: string | undefined,
  change: (values: Map<string, string> | undefined) => Change | undefined,
): Promise<SysctlRecord | undefined> {
  let kept: SysctlRecord | undefined;
  await transact<SysctlRecord>(host, recordPath(group, namespace), async (record) => {
    const [identity, values] = await Promise.all([namespaceIdentity(host, namespace), readGroup(host, group, namespace)]);
    const wanted = change(identity === undefined ? undefined : values);
    // A namespace that is gone took its settings along: only its record is left to clean.
    if (identity === undefined || values === undefined) return { next: undefined };
    if (!wanted) return { next: record };
    const { next, writes } = settle(group, record, identity, values, wanted.token, wanted.holding);
    kept = next;
    return { next, command: writes.length > 0 ? sysctlWritesArgv(writes, namespace) : undefined };
  });
  return kept;
}

/**
 * Sets the key's value as holder `token` (an imported resource has none: its write goes beneath the
 * holders). Returns the value before any holder reached the key.
 */
async function hold(
  host: Host,
  spec: { key: string; value: string; namespace?: string },
  token: string | undefined,
  owner: string | undefined,
): Promise<string | undefined> {
  const kept = await settleOnHost(host, sysctlGroup(spec.key), spec.namespace, (values) => {
    if (values?.get(spec.key) === undefined) throw new Error(`${host.label}: no sysctl ${spec.key}${inNamespaceWords(spec.namespace)}`);
    return { token, holding: { key: spec.key, value: spec.value, ...(owner ? { owner } : {}) } };
  });
  return kept?.original[spec.key];
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
  importing: {
    idForm: "[NAMESPACE]/KEY",
    identify: (id) => namespacedIdentity(id, "key"),
    // Imported, it holds no record: the value found is the one destroy puts back (after an update changed it).
    async discover(host, _id, identity) {
      const value = await readValue(host, identity.key as string, identity.namespace as string | undefined);
      return value === undefined ? undefined : { ...identity, previous: value };
    },
  },
  async create(host, spec, _adopt, owner) {
    // A create run again after an interruption holds under the same token: it sets the same holding again.
    const holder = ownerToken(owner);
    const previous = await hold(host, spec, holder, owner);
    return {
      id: `${spec.namespace ?? ""}/${spec.key}`,
      observed: { value: await readValue(host, spec.key, spec.namespace), previous, holder },
    };
  },
  async read(host, _id, olds) {
    const value = await readValue(host, olds.key as string, olds.namespace as string | undefined);
    return value === undefined ? undefined : { value };
  },
  async update(host, _id, olds, news) {
    // A holder that is not recorded (a reboot cleared /run) is recorded anew; an imported resource has
    // no token and writes beneath the holders.
    await hold(host, news, typeof olds.holder === "string" ? olds.holder : undefined, olds.owner as string | undefined);
    return { value: await readValue(host, news.key, news.namespace) };
  },
  async delete(host, _id, olds) {
    const key = olds.key as string;
    const namespace = olds.namespace as string | undefined;
    const group = sysctlGroup(key);
    if (typeof olds.holder !== "string") {
      // Imported, it holds no record: it puts back its own `previous`, beneath the holders recorded now.
      const previous = olds.previous as string | undefined;
      await settleOnHost(host, group, namespace, (values) => {
        const now = values?.get(key);
        return previous === undefined || now === undefined || now === previous ? undefined : { holding: { key, value: previous } };
      });
      return;
    }
    const token = olds.holder;
    await settleOnHost(host, group, namespace, () => ({ token }));
  },
  async tagged(_host, source) {
    const held = recordedHolders(await source.records(), "sysctl", (holding) => (holding as Partial<SysctlHolding>).owner);
    return held.map(({ record, token, owner, holding }) => {
      const key = holding as SysctlHolding;
      return {
        owner,
        id: `${record.namespace ?? ""}/${key.key}`,
        olds: { key: key.key, namespace: record.namespace, holder: token },
        what: `sysctl ${key.key} = ${key.value}${inNamespaceWords(record.namespace)}`,
      };
    });
  },
});
