/** A resource made of iptables rules owned through their comment; Masquerade and PortForward are two. */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import type { Argv, Host } from "./host";
import { inNamespaceWords } from "./errors";
import {
  convergeRules,
  desiredLines,
  Family,
  flushConntrack,
  FORWARD_CHAIN,
  isOwnedBy,
  listMarks,
  markOf,
  observeRules,
  ownedRules,
  Owns,
  ownerComment,
  renderRule,
  requireConntrack,
  Rule,
} from "./iptables";
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

/** The ids create gives: PREFIX-HASH@PROJECT/STACK (the owner), or PREFIX-HEX for a resource without an owner. */
const markId = (prefix: string) => new RegExp(`^${prefix}-[0-9a-f]{16}(@[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?$`);

type RuleSpec<Shape extends z.ZodRawShape> = z.infer<z.ZodObject<Shape>> & { namespace?: string };

export function defineRuleKind<Shape extends z.ZodRawShape, Name extends string>(definition: {
  name: Name;
  description: string;
  shape: Shape;
  refine?: KindDefinition<Shape>["refine"];
  /** The id prefix, e.g. "masq": ids look like masq-3f9a1c2b0d4e5f60@PROJECT/STACK (random hex without an owner). */
  idPrefix: string;
  /** The resource's rules, all of one family, each carrying `mark` (its comment's words: none for rules imported unmarked); never empty. */
  rules(spec: RuleSpec<Shape>, mark: string[]): Rule[];
  /** The form of an import id naming rules made by hand, by what identifies them, e.g. "[NAMESPACE/]SOURCE". */
  handMadeForm: string;
  /** The properties such an id names; undefined for any other id (a mark's never is one). Pure. */
  identifyHandMade(id: string): Props | undefined;
  /**
   * For import: the specs (without namespace) that rules of one listing (`found`: of one family and
   * namespace, those with the mark, or all without one) might be made from and that agree with `identity`,
   * each with the rule it was read from. The import keeps those whose every rule is there.
   */
  candidates(identity: Props, found: Rule[]): { spec: Props; from: Rule }[];
  /** A `conntrack -D` to run whenever the rules change, so that flows older than the change follow it. */
  conntrackFlush?(spec: RuleSpec<Shape>): Argv | undefined;
}): Kind<Shape, Name> {
  // A resource imported from rules made by hand keeps the import id, which names them; they stay unmarked.
  const handMade = (id: string) => definition.identifyHandMade(id) !== undefined;
  const rulesOf = (props: Props, id: string) => definition.rules(props as RuleSpec<Shape>, handMade(id) ? [] : ownerComment(id));
  /** Its rules: those with its mark, or, imported unmarked, unmarked rules of exactly its shape. */
  const ownsOf = (props: Props, id: string): Owns => {
    if (!handMade(id)) return (rule) => isOwnedBy(rule, id);
    const lines = rulesOf(props, id).map(renderRule);
    return (rule) => markOf(rule) === undefined && lines.includes(renderRule(rule));
  };
  const namespaceOf = (props: Props) => props.namespace as string | undefined;
  // A sweep knows a rule set by the listing it was found in (`foundFamily`), not by its spec.
  const familyOf = (props: Props, id: string) => (props.foundFamily as Family | undefined) ?? rulesOf(props, id)[0].family;
  /** `fromListing`: a refresh, whose reads share one listing per table. */
  const observe = async (host: Host, props: Props, id: string, fromListing = false) => {
    const rules = await observeRules(host, ownsOf(props, id), familyOf(props, id), rulesOf(props, id), namespaceOf(props), { fromListing });
    return rules && rules.length > 0 ? { rules } : undefined;
  };
  /**
   * Brings the rules of resource `id` to `desired`; `props` names the family, namespace and flush.
   * Only rules being put in need the conntrack tool: a delete never waits on it.
   */
  const converge = async (host: Host, props: Props, id: string, desired: Rule[]) => {
    const flush = props.foundFamily === undefined ? definition.conntrackFlush?.(props as RuleSpec<Shape>) : undefined;
    const deleting = desired.length === 0;
    if (flush && !deleting) await requireConntrack(host, namespaceOf(props));
    const changed = await convergeRules(host, ownsOf(props, id), familyOf(props, id), desired, namespaceOf(props));
    if (flush && changed) await flushConntrack(host, flush, deleting);
  };
  /**
   * For import: the spec of the rules an id names, by their mark in whichever namespace and family they are,
   * or made by hand among the unmarked rules of the identity's namespace. A spec counts when every rule of
   * it is there; of two where one's rules include the other's, the larger (acceptForward's accepts, say),
   * lest rules be left unmanaged. A rule that fits no spec is named with the rule this kind would make.
   */
  const discoverRules = async (host: Host, id: string, identity: Props): Promise<Props | undefined> => {
    const marked = !handMade(id);
    const places = marked
      ? (await listMarks(host)).filter((found) => found.id === id)
      : ([4, 6] as const).map((family) => ({ family, namespace: identity.namespace as string | undefined }));
    const tried: { props: Props; lines: string[]; complete: boolean; from: Rule; expected: Rule }[] = [];
    for (const { family, namespace } of places) {
      const found =
        (await ownedRules(host, marked ? (rule) => isOwnedBy(rule, id) : (rule) => markOf(rule) === undefined, family, namespace)) ?? [];
      const present = found.map(renderRule);
      for (const { spec, from } of definition.candidates(identity, found)) {
        const props = { ...spec, ...(namespace ? { namespace } : {}) };
        const rules = rulesOf(props, id);
        const lines = rules.map(renderRule);
        tried.push({ props, lines, complete: lines.every((line) => present.includes(line)), from, expected: rules[0] });
      }
    }
    const complete = tried.filter((t) => t.complete);
    const largest = complete.filter(
      (t) => !complete.some((o) => o.lines.length > t.lines.length && t.lines.every((line) => o.lines.includes(line))),
    );
    const distinct = largest.filter((t, i) => largest.findIndex((o) => isDeepStrictEqual([...o.lines].sort(), [...t.lines].sort())) === i);
    if (distinct.length > 1) {
      throw new Error(
        `${host.label}: "${id}" fits ${distinct.length} sets of rules (${distinct.map((t) => `"${t.lines[0]}"`).join(", ")}); import ` +
          `takes one when one fits`,
      );
    }
    if (distinct.length === 1) return distinct[0].props;
    const misfit = tried.find((t) => !complete.some((c) => c.from === t.from));
    if (misfit) {
      throw new Error(
        `${host.label}: the rule "${renderRule(misfit.from)}" is not one a ${definition.name} makes (that would be ` +
          `"${renderRule(misfit.expected)}"): ` +
          "replace it by hand with that rule and import again, or leave it out of the program",
      );
    }
    return undefined;
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
        .describe(
          `The rules carrying this resource's mark on the host (imported from rules made by hand: those of its exact shape, unmarked), ` +
            `as \`iptables -S\` prints them, and the shared jump to ${FORWARD_CHAIN} when in place.`,
        ),
    },
    adoptable: false,
    importing: {
      idForm: `${definition.idPrefix}-MARK (rules pulumi-netns made, by their mark) or ${definition.handMadeForm} (rules made by hand)`,
      identify: (id) => definition.identifyHandMade(id) ?? (markId(definition.idPrefix).test(id) ? {} : undefined),
      discover: discoverRules,
    },
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
    // Every rule with the mark goes, whatever its shape.
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
