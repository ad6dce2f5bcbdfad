/** A resource made of iptables rules owned through their comment; Masquerade and PortForward are two. */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import type { Argv, Host } from "./host";
import { inNamespaceWords } from "./errors";
import { convergeRules, desiredLines, Family, flushConntrack, FORWARD_CHAIN, observeRules, requireConntrack, Rule } from "./iptables";
import { defineKind, Kind, KindDefinition, neverCollides, Props } from "./kind";
import { ownerToken } from "./owner";
import { containsUnknown } from "./validate";

/** Both rule kinds open the FORWARD chain for their traffic unless told not to. */
export const acceptForward = z
  .boolean()
  .default(true)
  .describe(
    `Also accept the traffic in the FORWARD chain, for hosts whose FORWARD policy is DROP, such as Docker's. ` +
      `The accepts live in the shared chain ${FORWARD_CHAIN}, jumped to from FORWARD right after Docker's ` +
      `DOCKER-USER (else first), so an administrator's DOCKER-USER rules still apply.`,
  );

type RuleSpec<Shape extends z.ZodRawShape> = z.infer<z.ZodObject<Shape>> & { namespace?: string };

export function defineRuleKind<Shape extends z.ZodRawShape>(definition: {
  name: string;
  description: string;
  shape: Shape;
  refine?: KindDefinition<Shape>["refine"];
  /** The id prefix, e.g. "masq": ids look like masq-3f9a1c2b0d4e5f60@PROJECT/STACK (random hex without an owner). */
  idPrefix: string;
  /** The resource's rules, all of one family; never empty. */
  rules(spec: RuleSpec<Shape>, id: string): Rule[];
  /** A `conntrack -D` to run whenever the rules change, so that flows older than the change follow it. */
  conntrackFlush?(spec: RuleSpec<Shape>): Argv | undefined;
}): Kind<Shape> {
  const rulesOf = (props: Props, id: string) => definition.rules(props as RuleSpec<Shape>, id);
  const namespaceOf = (props: Props) => props.namespace as string | undefined;
  // A sweep knows a rule set by the listing it was found in (`foundFamily`), not by its spec.
  const familyOf = (props: Props, id: string) => (props.foundFamily as Family | undefined) ?? rulesOf(props, id)[0].family;
  /** `fromListing`: a refresh, whose reads share one listing per table. */
  const observe = async (host: Host, props: Props, id: string, fromListing = false) => {
    const rules = await observeRules(host, id, familyOf(props, id), rulesOf(props, id), namespaceOf(props), { fromListing });
    return rules && rules.length > 0 ? { rules } : undefined;
  };
  /**
   * Brings the rules marked with `id` to `desired`; `props` names the family, namespace and flush.
   * Only rules being put in need the conntrack tool: a delete (an upgraded resource's too) never waits on it.
   */
  const converge = async (host: Host, props: Props, id: string, desired: Rule[]) => {
    const flush = props.foundFamily === undefined ? definition.conntrackFlush?.(props as RuleSpec<Shape>) : undefined;
    const deleting = desired.length === 0;
    if (flush && !deleting) await requireConntrack(host, namespaceOf(props));
    const changed = await convergeRules(host, id, familyOf(props, id), desired, namespaceOf(props));
    if (flush && changed) await flushConntrack(host, flush, deleting);
  };
  return defineKind({
    name: definition.name,
    description: definition.description,
    shape: definition.shape,
    refine: definition.refine,
    replaceOn: Object.keys(definition.shape),
    collides: neverCollides,
    outputs: {
      rules: z
        .array(z.string())
        .describe(`The rules carrying this resource's mark on the host, as \`iptables -S\` prints them, and the shared jump to ${FORWARD_CHAIN} when in place.`),
    },
    adoptable: false,
    async create(host, spec, _adopt, owner) {
      // The mark is the owner: a create run again after an interruption finds its rules and adds none twice,
      // and a sweep knows the stack they belong to.
      const id = `${definition.idPrefix}-${owner ?? ownerToken(undefined)}`;
      await converge(host, spec, id, rulesOf(spec, id));
      return { id, observed: (await observe(host, spec, id)) ?? { rules: [] } };
    },
    read: (host, id, olds) => observe(host, olds, id, true),
    async update(host, id, _olds, news) {
      await converge(host, news, id, rulesOf(news, id));
      return (await observe(host, news, id)) ?? { rules: [] };
    },
    // Every rule with the mark goes, whatever its shape (rules of an earlier release too).
    delete: (host, id, olds) => converge(host, olds, id, []),
    async tagged(_host, source) {
      const prefix = `${definition.idPrefix}-`;
      return (await source.marks()).flatMap(({ namespace, family, id }) => {
        const owner = id.startsWith(prefix) ? id.slice(prefix.length) : "";
        if (!owner.includes("@")) return [];
        return [{ owner, id, olds: { namespace, foundFamily: family }, what: `the rules marked ${id}${inNamespaceWords(namespace)}` }];
      });
    },
    drift(id, olds, news) {
      if (containsUnknown(news)) return [];
      return isDeepStrictEqual(olds.rules, desiredLines(rulesOf(news, id))) ? [] : ["rules"];
    },
  });
}
