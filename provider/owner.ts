/**
 * Who made an object on a host. Every resource has a stable owner, `HASH@PROJECT/STACK` (HASH: 16 hex
 * digits of its URN's SHA-256), set by the SDK; the object carries it from the remote step that makes it:
 * an interface in its alias (`ip link set … alias pulumi-netns:OWNER`), a namespace or bridge as its holder
 * token, an address, route or qdisc in an owner record under /run/pulumi-netns/owner, a sysctl as its holder
 * token, an iptables rule in its mark. So a create that runs again after an interrupted `up` (the engine
 * retries creates it never saw finish) finds its own work and takes it over, and anything else is refused.
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { AlreadyExistsError, OwnedElsewhereError } from "./errors";
import { HOLDERS_ROOT, HostRecord } from "./holders";
import type { Argv, Host } from "./host";
import { inNamespace } from "./host";
import type { IpLinkJson } from "./iproute";

export const owner = z
  .string()
  .regex(/^[0-9a-f]{16}@[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { message: "must be HASH@PROJECT/STACK (the SDK sets it)" })
  .optional()
  .describe("Set by the SDK, never shown in a diff: this resource's identity on the host (a hash of its URN, and its stack).");

/**
 * The owner an object carries: the resource's own owner, narrowed by the values that replace it
 * (`replaceOn`), so that a replacement (made before the object it replaces goes) is another owner, while
 * a create retried with the same inputs is the same one. Undefined for a resource without an owner.
 */
export function objectOwner(replaceOn: readonly string[], props: Record<string, unknown>): string | undefined {
  const resourceOwner = props.owner;
  if (typeof resourceOwner !== "string") return undefined;
  const valueAt = (path: string) =>
    path.split(".").reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], props);
  const hash = createHash("sha256")
    .update(JSON.stringify([resourceOwner, replaceOn.map(valueAt)]))
    .digest("hex")
    .slice(0, 16);
  return `${hash}@${ownerStack(resourceOwner)}`;
}

/** Holder tokens and rule ids: the owner's hash when there is an owner (so a retried create finds its own), else random. */
export const ownerToken = (ownerValue: string | undefined): string => ownerValue?.slice(0, 16) ?? randomBytes(8).toString("hex");

export const ownerStack = (ownerValue: string) => ownerValue.slice(17);

const TAG_PREFIX = "pulumi-netns:";

/** An interface's alias that says who made it. */
export const ownerTag = (ownerValue: string) => `${TAG_PREFIX}${ownerValue}`;

/** What a tag (an interface's alias, an owner record) says of an object: ours, another resource's (its owner), or nobody's. */
export function aliasOwner(alias: string | undefined, ownerValue: string | undefined): "ours" | { other: string } | undefined {
  if (!alias?.startsWith(TAG_PREFIX)) return undefined;
  const tagged = alias.slice(TAG_PREFIX.length);
  return ownerValue !== undefined && tagged === ownerValue ? "ours" : { other: tagged };
}

/**
 * Whether an object a resource made now carries another owner's tag: something took it over (a LabNode
 * took the objects of a Lab's finer resources when a stack moved to it), and the resource's delete leaves
 * it. A resource without an owner tags nothing it makes, so any tag on its object is another's. `sweep`
 * passes the object's own owner as `owner` (what the tag says), which is no other owner either.
 */
export function takenOver(tag: string | undefined, replaceOn: readonly string[], props: Record<string, unknown>): boolean {
  const tagged = taggedOwner(tag);
  if (tagged === undefined) return false;
  return typeof props.owner !== "string" || (tagged !== props.owner && tagged !== objectOwner(replaceOn, props));
}

/** The owner a tag (an alias, an owner record's line) names; undefined when it is no tag of ours. */
export const taggedOwner = (tag: string | undefined): string | undefined => {
  const tagged = aliasOwner(tag, undefined);
  return tagged === undefined || tagged === "ours" ? undefined : tagged.other;
};

/** The links of type `linkKind` whose alias names an owner, in every namespace of a listing. */
export function taggedLinks(links: Map<string, IpLinkJson[]>, linkKind: string): { owner: string; namespace?: string; link: IpLinkJson }[] {
  return [...links].flatMap(([namespace, listed]) =>
    listed.flatMap((link) => {
      const owner = link.linkinfo?.info_kind === linkKind ? taggedOwner(link.ifalias) : undefined;
      return owner ? [{ owner, namespace: namespace || undefined, link }] : [];
    }),
  );
}

export function setAliasArgv(namespace: string | undefined, name: string, ownerValue: string): Argv {
  return inNamespace(namespace, ["ip", "link", "set", "dev", name, "alias", ownerTag(ownerValue)]);
}

/** Where an object without an alias of its own (an address, a route, a qdisc) records its owner. */
export function ownerRecordPath(area: string, namespace: string | undefined, ...names: string[]): string {
  return [HOLDERS_ROOT, "owner", area, namespace ? `netns/${namespace}` : "host", ...names.map((n) => n.replace(/\//g, "_"))].join("/");
}

/** The objects whose owner records are in `area`, with the names their paths give. */
export function ownerRecords(records: HostRecord[], area: string): { owner: string; namespace?: string; names: string[] }[] {
  return records.flatMap((record) => {
    const owner = record.area === `owner/${area}` ? taggedOwner(record.text) : undefined;
    return owner ? [{ owner, namespace: record.namespace, names: record.names }] : [];
  });
}

/** An address or network as its record's name spells it ("10.0.0.0_24"), back as "10.0.0.0/24". */
export const networkFromRecordName = (name: string) => name.replace(/_(\d+)$/, "/$1");

const WRITE_RECORD = 'mkdir -p "${1%/*}" && printf \'%s\\n\' "$2" >"$1"';

/** The record's command, to run in one step with the make (`inOneStep`); none without an owner. */
export const writeOwnerRecordArgvs = (path: string, ownerValue: string | undefined): Argv[] =>
  ownerValue === undefined ? [] : [["sh", "-c", WRITE_RECORD, "sh", path, ownerTag(ownerValue)]];
/** Removes the record an owner left (none without an owner: only owned objects have records). */
export const removeOwnerRecordArgvs = (path: string, ownerValue: string | undefined): Argv[] =>
  ownerValue === undefined ? [] : [["rm", "-f", path]];

/** The tag an owner record holds; undefined when there is none. */
export async function recordedTag(host: Host, path: string): Promise<string | undefined> {
  const result = await host.run(["cat", path], { allowFailure: true, readOnly: true });
  return result.exitCode === 0 ? result.stdout.trim() : undefined;
}

/**
 * Whether a create may take over an object it found: its own (an interrupted create's), or with `adopt`
 * one that nobody tagged (`tag`: its alias or owner record). Throws naming the object otherwise.
 */
export function mayTakeOver(
  target: string,
  what: string,
  tag: string | undefined,
  ownerValue: string | undefined,
  adopt: boolean,
): { ours: boolean } {
  const tagged = aliasOwner(tag, ownerValue);
  if (tagged === "ours") return { ours: true };
  if (tagged) throw new OwnedElsewhereError(target, what, tagged.other);
  if (!adopt) throw new AlreadyExistsError(target, what);
  return { ours: false };
}
