/**
 * iptables rules as plain data, in the manner of CNI's portmap: kinds build rule lists with pure
 * functions; this module adds, checks and removes exactly those rules. Every rule carries the comment
 * `pulumi-netns:<id>`, so `-C` and `-D` can only ever match the owner's own rule, never a lookalike.
 */
import { CommandFailedError } from "./errors";
import { Argv, Host, inNamespace } from "./host";
import { namespaceGone } from "./iproute";

export interface Rule {
  family: 4 | 6;
  table: "nat" | "filter";
  chain: string;
  /** Matches and target, without the chain operation. */
  spec: string[];
  /** Insert at the top instead of appending (to precede DROP rules other tools installed). */
  first?: boolean;
}

export function ownerComment(id: string): string[] {
  return ["-m", "comment", "--comment", `pulumi-netns:${id}`];
}

/** One line per rule, as shown in outputs and compared on refresh. */
export function renderRule(rule: Rule): string {
  return [rule.family === 6 ? "ip6tables" : "iptables", "-t", rule.table, rule.first ? "-I" : "-A", rule.chain, ...rule.spec].join(" ");
}

/** `-w` waits for the xtables lock instead of failing when another tool holds it. */
export function ruleArgv(op: "-A" | "-I" | "-C" | "-D", rule: Rule, namespace?: string): Argv {
  const binary = rule.family === 6 ? "ip6tables" : "iptables";
  return inNamespace(namespace, [binary, "-w", "10", "-t", rule.table, op, rule.chain, ...rule.spec]);
}

/** iptables' answer to -C / -D of a rule that is not there. */
const NO_SUCH_RULE = /does a matching rule exist|No chain\/target\/match by that name|Bad rule/;

export async function rulePresent(host: Host, rule: Rule, namespace?: string): Promise<boolean | undefined> {
  const result = await host.run(ruleArgv("-C", rule, namespace), { allowFailure: true });
  if (result.exitCode === 0) return true;
  if (namespaceGone(result)) return undefined;
  if (NO_SUCH_RULE.test(result.stderr)) return false;
  throw new CommandFailedError(host.label, result);
}

/** The rendered rules that are present now, or undefined when the namespace is gone. */
export async function presentRules(host: Host, rules: Rule[], namespace?: string): Promise<string[] | undefined> {
  const present: string[] = [];
  for (const rule of rules) {
    const state = await rulePresent(host, rule, namespace);
    if (state === undefined) return undefined;
    if (state) present.push(renderRule(rule));
  }
  return present;
}

/** Adds what is missing; on failure removes what this call added, then throws. */
export async function ensureRules(host: Host, rules: Rule[], namespace?: string): Promise<void> {
  const added: Rule[] = [];
  try {
    for (const rule of rules) {
      if (await rulePresent(host, rule, namespace)) continue;
      await host.run(ruleArgv(rule.first ? "-I" : "-A", rule, namespace));
      added.push(rule);
    }
  } catch (err) {
    await removeRules(host, added, namespace).catch(() => undefined);
    throw err;
  }
}

/** Removes every copy of each rule; a rule or namespace already gone is success. */
export async function removeRules(host: Host, rules: Rule[], namespace?: string): Promise<void> {
  for (const rule of rules) {
    for (;;) {
      const result = await host.run(ruleArgv("-D", rule, namespace), { allowFailure: true });
      if (result.exitCode === 0) continue;
      if (namespaceGone(result) || NO_SUCH_RULE.test(result.stderr)) break;
      throw new CommandFailedError(host.label, result);
    }
  }
}
