/**
 * iptables rules as plain data, in the manner of CNI's portmap: kinds build rule lists with pure
 * functions, in exactly the form `iptables -S` prints them; this module converges the host to them.
 *
 * A rule belongs to a resource through its comment `pulumi-netns:<id>`, never through its shape: read
 * and delete list every chain a rule of ours may be in and act on each line carrying the mark, so a rule
 * edited, copied or moved by hand is still found. The one exception is a rule set made by hand and
 * imported (`pulumi import`): it has no mark, and belongs to its resource by its exact shape (ruleKind.ts
 * decides, with `owns`).
 *
 *   nat    PREROUTING / OUTPUT   DNAT                 (PortForward)
 *   nat    POSTROUTING           MASQUERADE           (Masquerade, PortForward's hairpin)
 *   filter FORWARD  -j PULUMI-NETNS-FWD               (shared; right after `-j DOCKER-USER`, else first)
 *   filter PULUMI-NETNS-FWD      ACCEPTs              (acceptForward of every resource and stack)
 *
 * FORWARD is listed too: an accept of ours moved into it (ahead of the administrator's policy) is found
 * and moved back.
 */
import { isIP } from "node:net";
import { CommandFailedError } from "./errors";
import { canonicalAddress, parseCidr } from "./fields";
import { underHostLock } from "./holders";
import { Argv, Host, inNamespace, listEveryNamespace } from "./host";
import { namespaceGone } from "./iproute";
import { oneAtATime } from "./oneAtATime";
import { shellLine } from "./shell";

export type Family = 4 | 6;
export type Table = "nat" | "filter";

export interface Rule {
  family: Family;
  table: Table;
  chain: string;
  /** Matches and target as `iptables -S` prints them after `-A CHAIN` (so listings compare exactly). */
  spec: string[];
}

/** The filter chain holding every FORWARD accept of ours (at most 28 characters). */
export const FORWARD_CHAIN = "PULUMI-NETNS-FWD";
const DOCKER_USER = "DOCKER-USER";

/** Every chain a rule of ours may be in: where we put them, and FORWARD. */
const OWNED_CHAINS: readonly { table: Table; chain: string }[] = [
  { table: "nat", chain: "PREROUTING" },
  { table: "nat", chain: "OUTPUT" },
  { table: "nat", chain: "POSTROUTING" },
  { table: "filter", chain: "FORWARD" },
  { table: "filter", chain: FORWARD_CHAIN },
];

export const ownerMark = (id: string) => `pulumi-netns:${id}`;

export function ownerComment(id: string): string[] {
  return ["-m", "comment", "--comment", ownerMark(id)];
}

/** An address or network as `iptables -S` prints it, always with its prefix length. */
export function ruleAddress(address: string, prefix?: number): string {
  return `${canonicalAddress(address)}/${prefix ?? (isIP(address) === 6 ? 128 : 32)}`;
}

/** `ruleAddress` for "ADDRESS/PREFIX" text. */
export function ruleNetwork(cidr: string): string {
  const { address, prefix } = parseCidr(cidr)!;
  return ruleAddress(address, prefix);
}

export const binaryOf = (family: Family) => (family === 6 ? "ip6tables" : "iptables");

/** One line per rule, as shown in outputs and compared on refresh. */
export function renderRule(rule: Rule): string {
  return [binaryOf(rule.family), "-t", rule.table, "-A", rule.chain, ...rule.spec].join(" ");
}

/** `-w` waits for the xtables lock instead of failing when another tool holds it. */
function iptablesArgv(family: Family, table: Table, args: string[], namespace?: string): Argv {
  return inNamespace(namespace, [binaryOf(family), "-w", "10", "-t", table, ...args]);
}

/** Append, delete the first copy of, check for, or insert at a 1-based position. */
export function ruleArgv(op: "-A" | "-D" | "-C", rule: Rule, namespace?: string): Argv;
export function ruleArgv(op: "-I", rule: Rule, namespace: string | undefined, position: number): Argv;
export function ruleArgv(op: "-A" | "-D" | "-C" | "-I", rule: Rule, namespace?: string, position?: number): Argv {
  const where = op === "-I" ? [rule.chain, String(position)] : [rule.chain];
  return iptablesArgv(rule.family, rule.table, [op, ...where, ...rule.spec], namespace);
}

export function listArgv(family: Family, table: Table, chain: string, namespace?: string): Argv {
  return iptablesArgv(family, table, ["-S", chain], namespace);
}

/** Splits one `iptables -S` line into arguments; comments come in double quotes with `\"` escapes. */
export function splitRuleLine(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      word ??= "";
      for (i++; i < line.length && line[i] !== '"'; i++) word += line[i] === "\\" ? line[++i] : line[i];
    } else if (c === " ") {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The rules (`-A` lines) of an `iptables -S CHAIN` listing, in chain order; policy and `-N` lines are skipped. */
export function parseListing(stdout: string, family: Family, table: Table): Rule[] {
  return stdout
    .split("\n")
    .map(splitRuleLine)
    .filter((words) => words[0] === "-A" && words.length >= 2)
    .map((words) => ({ family, table, chain: words[1], spec: words.slice(2) }));
}

/** A rule set's mark as a listing found it: the namespace ("" the host's own) and family it is in. */
export interface FoundMark {
  namespace?: string;
  family: Family;
  id: string;
}

/** The id in a rule's mark (`pulumi-netns:<id>`), undefined for a rule without one. */
export function markOf(rule: Rule): string | undefined {
  const at = rule.spec.indexOf("--comment");
  const comment = at < 0 ? undefined : rule.spec[at + 1];
  return comment?.startsWith(ownerMark("")) ? comment.slice(ownerMark("").length) : undefined;
}

/** The value a rule gives an option, as `iptables -S` prints it ("-s" → "10.0.0.0/24"); undefined without it. */
export function optionValue(rule: Rule, option: string): string | undefined {
  const at = rule.spec.indexOf(option);
  return at < 0 ? undefined : rule.spec[at + 1];
}

/** Every mark of every rule on the host, once per namespace and family (the listings a refresh takes). */
export async function listMarks(host: Host): Promise<FoundMark[]> {
  const found = new Map<string, FoundMark>();
  for (const family of [4, 6] as const) {
    for (const table of ["nat", "filter"] as const) {
      const listed = await listEveryNamespace(host, iptablesArgv(family, table, ["-S"]), (text) => parseListing(text, family, table));
      for (const [namespace, rules] of listed) {
        for (const id of rules.flatMap((rule) => markOf(rule) ?? [])) {
          found.set(JSON.stringify([namespace, family, id]), { namespace: namespace || undefined, family, id });
        }
      }
    }
  }
  return [...found.values()];
}

/** Exact match on the comment: the mark of pf-abc is not the mark of pf-abcd. */
export const isOwnedBy = (rule: Rule, id: string): boolean => markOf(rule) === id;

const jumpsTo = (rule: Rule, chain: string) => rule.spec.at(-2) === "-j" && rule.spec.at(-1) === chain;

export function forwardJump(family: Family): Rule {
  return { family, table: "filter", chain: "FORWARD", spec: ["-j", FORWARD_CHAIN] };
}

/**
 * Where the jump to our chain belongs in FORWARD: right after Docker's `-j DOCKER-USER` when there is
 * one (the administrator's policy goes first), else first. `placed` says whether a jump already sits
 * at or after that point; `position` is where to insert one (1-based).
 */
export function jumpPlacement(forward: Rule[]): { placed: boolean; position: number } {
  const dockerUser = forward.findIndex((rule) => jumpsTo(rule, DOCKER_USER));
  const ours = forward.findIndex((rule) => rule.spec.length === 2 && jumpsTo(rule, FORWARD_CHAIN));
  return { placed: ours > dockerUser, position: dockerUser + 2 };
}

/** stderr of `iptables -S CHAIN` / `-D` / `-X` when the chain or rule is not there (legacy and nft backends). */
const NO_SUCH = new RegExp(
  [
    "No chain/target/match by that name",
    "Chain '[^']*' does not exist",
    "does a matching rule exist",
    "is incompatible, use 'nft' tool",
    "Bad rule",
    "_DEL(ETE)? failed \\(No such file or directory\\)",
  ].join("|"),
);

/** The rules of one chain; [] when the chain does not exist, undefined when the namespace is gone. */
async function listChain(host: Host, family: Family, table: Table, chain: string, namespace?: string): Promise<Rule[] | undefined> {
  const result = await host.run(listArgv(family, table, chain, namespace), { allowFailure: true });
  if (namespaceGone(result)) return undefined;
  if (result.exitCode !== 0 && NO_SUCH.test(result.stderr)) return [];
  if (result.exitCode !== 0) throw new CommandFailedError(host.label, result);
  return parseListing(result.stdout, family, table);
}

interface Listing {
  /** Every rule carrying the resource's mark. */
  owned: Rule[];
  /** Whether FORWARD jumps to our chain where it should. */
  jumpPlaced: boolean;
  /** Where in FORWARD a jump goes (jumpPlacement). */
  jumpPosition: number;
}

type ChainReader = typeof listChain;

/** listChain, answered from one listing per family and table of every namespace: it serves all the rule reads of a refresh. */
const listedChain: ChainReader = async (host, family, table, chain, namespace) => {
  const listed = await listEveryNamespace(host, iptablesArgv(family, table, ["-S"]), (text) => parseListing(text, family, table));
  return listed.get(namespace ?? "")?.filter((rule) => rule.chain === chain);
};

/** Which rules are a resource's (see the header). */
export type Owns = (rule: Rule) => boolean;

async function listOwned(
  host: Host,
  owns: Owns,
  family: Family,
  namespace?: string,
  readChain: ChainReader = listChain,
): Promise<Listing | undefined> {
  const owned: Rule[] = [];
  let placement = { placed: false, position: 1 };
  for (const { table, chain } of OWNED_CHAINS) {
    const rules = await readChain(host, family, table, chain, namespace);
    if (!rules) return undefined;
    owned.push(...rules.filter(owns));
    if (chain === "FORWARD") placement = jumpPlacement(rules);
  }
  return { owned, jumpPlaced: placement.placed, jumpPosition: placement.position };
}

const usesForwardChain = (rules: Rule[]) => rules.some((rule) => rule.chain === FORWARD_CHAIN);

/** `rules` less one copy of each rule in `less` (duplicates count), in order. */
function without(rules: Rule[], less: Rule[]): Rule[] {
  const remove = less.map(renderRule);
  return rules.filter((rule) => {
    const at = remove.indexOf(renderRule(rule));
    if (at >= 0) remove.splice(at, 1);
    return at < 0;
  });
}

/** The desired rules plus the shared jump they rely on, rendered: what `rules` shows when nothing drifted. */
export function desiredLines(rules: Rule[]): string[] {
  return [...rules, ...(usesForwardChain(rules) ? [forwardJump(rules[0].family)] : [])].map(renderRule);
}

/** The rules `owns` picks in every chain a rule of ours may be in, from a refresh's listing; undefined when the namespace is gone. */
export async function ownedRules(host: Host, owns: Owns, family: Family, namespace?: string): Promise<Rule[] | undefined> {
  return (await listOwned(host, owns, family, namespace, listedChain))?.owned;
}

/**
 * What is on the host: the desired lines that are present (in desired order), then every other rule
 * the resource owns (duplicates too), then the shared jump when it is in place. Undefined when the namespace is gone.
 */
export async function observeRules(
  host: Host,
  owns: Owns,
  family: Family,
  desired: Rule[],
  namespace?: string,
  { fromListing = false } = {},
): Promise<string[] | undefined> {
  const listing = await listOwned(host, owns, family, namespace, fromListing ? listedChain : listChain);
  if (!listing) return undefined;
  const extra = without(listing.owned, desired);
  const lines = [...without(desired, without(desired, listing.owned)), ...extra].map(renderRule);
  if (usesForwardChain(listing.owned) && listing.jumpPlaced) lines.push(renderRule(forwardJump(family)));
  return lines;
}

/** Creates our chain (tolerating a concurrent creator) and puts the FORWARD jump where it belongs. */
async function ensureForwardChain(host: Host, family: Family, namespace?: string): Promise<void> {
  const created = await host.run(iptablesArgv(family, "filter", ["-N", FORWARD_CHAIN], namespace), { allowFailure: true });
  if (created.exitCode !== 0 && !/already exists/.test(created.stderr)) throw new CommandFailedError(host.label, created);
  const forward = (await listChain(host, family, "filter", "FORWARD", namespace)) ?? [];
  const { placed, position } = jumpPlacement(forward);
  if (placed) return;
  const jump = forwardJump(family);
  await host.run(ruleArgv("-I", jump, namespace, position));
  // A jump ahead of DOCKER-USER would bypass the administrator's policy: the first copy is that one.
  if (forward.some((rule) => rule.spec.length === 2 && jumpsTo(rule, FORWARD_CHAIN))) await host.run(ruleArgv("-D", jump, namespace));
}

/**
 * Our chain is shared by every stack on the host: it is dropped, and rules are put in it, only under the
 * host's lock (holders.ts), one step each, so that no stack's rule lands in a chain another stack is
 * dropping. A namespace that is gone has nothing to drop.
 */
function dropForwardChainScript(family: Family, namespace?: string): string {
  const jump = forwardJump(family);
  return [
    `listing=$(${shellLine(listArgv(family, "filter", FORWARD_CHAIN, namespace))} 2>/dev/null) || exit 0`,
    `case "$listing" in *"-A ${FORWARD_CHAIN} "*) exit 0 ;; esac`,
    `while ${shellLine(ruleArgv("-D", jump, namespace))} 2>/dev/null; do :; done`,
    `${shellLine(iptablesArgv(family, "filter", ["-X", FORWARD_CHAIN], namespace))}`,
  ].join("\n");
}

/** The rules put into our chain, after making the chain and its jump (at `position`) when another stack dropped them. */
function appendToForwardChainScript(family: Family, namespace: string | undefined, position: number, rules: Rule[]): string {
  const jump = forwardJump(family);
  return [
    `${shellLine(iptablesArgv(family, "filter", ["-N", FORWARD_CHAIN], namespace))} 2>/dev/null || true`,
    `${shellLine(ruleArgv("-C", jump, namespace))} 2>/dev/null || ${shellLine(ruleArgv("-I", jump, namespace, position))}`,
    ...rules.map((rule) => shellLine(ruleArgv("-A", rule, namespace))),
  ].join("\n");
}

/** Removes our chain and every jump to it once no rule is left in it (any stack's, any resource's). */
async function dropForwardChainIfEmpty(host: Host, family: Family, namespace?: string): Promise<void> {
  await host.run(underHostLock(host, dropForwardChainScript(family, namespace)));
}

/**
 * Runs a step that needs our chain. Another stack's provider may drop the chain between two of our steps
 * (it was empty then, see dropForwardChainIfEmpty): then the chain and its jump are made again, and the step
 * runs again.
 */
async function withForwardChain<T>(host: Host, family: Family, namespace: string | undefined, step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (attempt === 5 || !(err instanceof CommandFailedError) || !NO_SUCH.test(err.result.stderr)) throw err;
      await ensureForwardChain(host, family, namespace).catch(() => undefined);
    }
  }
}

/** Deletes the first copy of a rule; one already gone (or its namespace) is not an error. */
async function deleteRule(host: Host, rule: Rule, namespace?: string): Promise<"deleted" | "gone"> {
  const result = await host.run(ruleArgv("-D", rule, namespace), { allowFailure: true });
  if (result.exitCode === 0) return "deleted";
  if (namespaceGone(result) || NO_SUCH.test(result.stderr)) return "gone";
  throw new CommandFailedError(host.label, result);
}

/**
 * Makes the rules the resource owns exactly `desired` (all of one family): adds what is missing, removes
 * every other rule it owns (older shapes, moved copies, duplicates), repairs the shared jump. With
 * `desired` empty this is delete. On failure, rules this call added are removed again. Returns whether
 * anything changed; for a delete, a namespace that is gone counts as nothing to do.
 */
export function convergeRules(host: Host, owns: Owns, family: Family, desired: Rule[], namespace?: string): Promise<boolean> {
  // The shared chain and jump: one at a time per host, namespace and family.
  return oneAtATime(`${host.label} ${namespace ?? ""} ${family}`, async () => {
    const before = await listOwned(host, owns, family, namespace);
    if (!before && desired.length > 0) throw new Error(`${host.label}: network namespace "${namespace}" does not exist`);
    if (!before) return false;
    let changed = false;
    const added: Rule[] = [];
    try {
      if (usesForwardChain(desired) && !before.jumpPlaced) {
        await withForwardChain(host, family, namespace, () => ensureForwardChain(host, family, namespace));
        changed = true;
      }
      const missing = without(desired, before.owned);
      for (const rule of missing.filter((rule) => rule.chain !== FORWARD_CHAIN)) {
        await host.run(ruleArgv("-A", rule, namespace));
        added.push(rule);
      }
      const inChain = missing.filter((rule) => rule.chain === FORWARD_CHAIN);
      if (inChain.length > 0) {
        added.push(...inChain);
        await host.run(underHostLock(host, appendToForwardChainScript(family, namespace, before.jumpPosition, inChain)));
      }
    } catch (err) {
      for (const rule of added) await deleteRule(host, rule, namespace).catch(() => undefined);
      await dropForwardChainIfEmpty(host, family, namespace).catch(() => undefined);
      throw err;
    }
    // Extras go after the new rules are in, so the traffic never loses its rule meanwhile.
    for (const rule of without(before.owned, desired)) {
      await deleteRule(host, rule, namespace);
      changed = true;
    }
    if (!usesForwardChain(desired)) await dropForwardChainIfEmpty(host, family, namespace);
    return changed || added.length > 0;
  });
}

/**
 * conntrack: a UDP flow seen before a DNAT rule existed keeps its old translation (none) for as long
 * as packets keep coming, and one DNATed before a delete keeps going to the old target. CNI's portmap
 * flushes them; so does PortForward.
 */
const TOOL_MISSING = /conntrack: (command )?not found|exec of "conntrack" failed/;

function conntrackMissing(host: Host): Error {
  return new Error(
    `${host.label}: the \`conntrack\` tool is missing; PortForward needs it for UDP to flush stale connection ` +
      `entries. Install the Debian package "conntrack" (apt-get install conntrack).`,
  );
}

/** Fails before anything changes when the tool is not installed. */
export async function requireConntrack(host: Host, namespace?: string): Promise<void> {
  const result = await host.run(inNamespace(namespace, ["conntrack", "--version"]), { allowFailure: true });
  if (result.exitCode === 0 || namespaceGone(result)) return;
  if (result.exitCode === 127 || TOOL_MISSING.test(result.stderr)) throw conntrackMissing(host);
  throw new CommandFailedError(host.label, result);
}

/**
 * Runs a `conntrack -D` argv; "0 flow entries have been deleted" (exit 1) is success. `bestEffort`
 * (a delete): without the tool there is nothing to flush with, and the rules are gone all the same.
 */
export async function flushConntrack(host: Host, argv: Argv, bestEffort = false): Promise<void> {
  const result = await host.run(argv, { allowFailure: true });
  if (result.exitCode === 0 || namespaceGone(result) || / 0 flow entries have been deleted/.test(result.stderr)) return;
  const missing = result.exitCode === 127 || TOOL_MISSING.test(result.stderr);
  if (missing && bestEffort) return;
  if (missing) throw conntrackMissing(host);
  throw new CommandFailedError(host.label, result);
}
