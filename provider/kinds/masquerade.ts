import { interfaceName, namespaceName, networkCidr, parseCidr } from "../fields";
import { FORWARD_CHAIN, optionValue, Rule, ruleNetwork } from "../iptables";
import { Props, splitNamespace } from "../kind";
import { acceptForward, defineRuleKind } from "../ruleKind";

export interface MasqueradeSpec {
  source: string;
  outInterface?: string;
  acceptForward: boolean;
}

/**
 * nat POSTROUTING: -s SRC ! -d SRC [-o OUT] MASQUERADE (traffic within the network keeps its source)
 * filter PULUMI-NETNS-FWD (acceptForward): SRC going out, and replies coming back, are accepted,
 * so the NAT also works on hosts whose FORWARD policy is DROP (Docker's).
 */
export function masqueradeRules(spec: MasqueradeSpec, mark: string[]): Rule[] {
  const family = parseCidr(spec.source)!.family;
  const source = ruleNetwork(spec.source);
  const out = spec.outInterface ? ["-o", spec.outInterface] : [];
  const back = spec.outInterface ? ["-i", spec.outInterface] : [];
  const rules: Rule[] = [
    { family, table: "nat", chain: "POSTROUTING", spec: ["-s", source, "!", "-d", source, ...out, ...mark, "-j", "MASQUERADE"] },
  ];
  if (spec.acceptForward) {
    rules.push(
      { family, table: "filter", chain: FORWARD_CHAIN, spec: ["-s", source, ...out, ...mark, "-j", "ACCEPT"] },
      {
        family,
        table: "filter",
        chain: FORWARD_CHAIN,
        spec: ["-d", source, ...back, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", ...mark, "-j", "ACCEPT"],
      },
    );
  }
  return rules;
}

/** An import id [NAMESPACE/]SOURCE: a network (one slash) after an optional namespace. */
export function masqueradeIdentity(id: string): Props | undefined {
  const parts: { namespace?: string; rest: string } | undefined = id.split("/").length === 3 ? splitNamespace(id) : { rest: id };
  return parts && parseCidr(parts.rest) ? { namespace: parts.namespace, source: parts.rest } : undefined;
}

/**
 * What MASQUERADE rules with a source may be made from (a PortForward's hairpin rule, which matches
 * DNATed flows, is none), with and without the accepts.
 */
export function masqueradeCandidates(identity: { source?: string }, found: Rule[]) {
  return found
    .filter(
      (rule) =>
        rule.table === "nat" && rule.chain === "POSTROUTING" && rule.spec.at(-1) === "MASQUERADE" && !rule.spec.includes("--ctstate"),
    )
    .flatMap((from) => {
      const source = optionValue(from, "-s");
      const outInterface = optionValue(from, "-o");
      if (!source || (identity.source !== undefined && source !== ruleNetwork(identity.source))) return [];
      return [true, false].map((accept) => ({ spec: { source, ...(outInterface ? { outInterface } : {}), acceptForward: accept }, from }));
    });
}

export const masqueradeKind = defineRuleKind({
  name: "Masquerade",
  description: "Source NAT for a network (iptables nat POSTROUTING MASQUERADE), so namespaces reach beyond the host.",
  shape: {
    source: networkCidr
      // iptables prints no "-s 0.0.0.0/0", and "! -d 0.0.0.0/0" would match nothing.
      .refine((s) => parseCidr(s)!.prefix > 0, { message: "a /0 source would masquerade nothing (it excludes every destination)" })
      .describe("Source network to masquerade, e.g. 192.168.15.0/24."),
    outInterface: interfaceName.optional().describe("Only masquerade traffic leaving through this interface."),
    namespace: namespaceName.optional().describe("Namespace whose firewall gets the rules; the host's own when unset."),
    acceptForward,
  },
  idPrefix: "masq",
  rules: masqueradeRules,
  handMadeForm: "[NAMESPACE/]SOURCE",
  identifyHandMade: masqueradeIdentity,
  candidates: masqueradeCandidates,
});
