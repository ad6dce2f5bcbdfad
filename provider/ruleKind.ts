/** A resource made of iptables rules owned through their comment; Masquerade and PortForward are two. */
import { randomBytes } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import type { Host } from "./host";
import { ensureRules, presentRules, removeRules, renderRule, Rule } from "./iptables";
import { defineKind, Kind, KindDefinition, Props } from "./kind";
import { containsUnknown } from "./validate";

/** Both rule kinds open the FORWARD chain for their traffic unless told not to. */
export const acceptForward = z
  .boolean()
  .default(true)
  .describe("Also accept the traffic in the FORWARD chain (inserted first), for hosts whose FORWARD policy is DROP, such as Docker's.");

type RuleSpec<Shape extends z.ZodRawShape> = z.infer<z.ZodObject<Shape>> & { namespace?: string };

export function defineRuleKind<Shape extends z.ZodRawShape>(definition: {
  name: string;
  description: string;
  shape: Shape;
  refine?: KindDefinition<Shape>["refine"];
  /** The id prefix, e.g. "masq": ids look like masq-3f9a1c2b0d4e. */
  idPrefix: string;
  rules(spec: RuleSpec<Shape>, id: string): Rule[];
}): Kind<Shape> {
  const rulesOf = (props: Props, id: string) => definition.rules(props as RuleSpec<Shape>, id);
  const namespaceOf = (props: Props) => props.namespace as string | undefined;
  const observe = async (host: Host, props: Props, id: string) => {
    const rules = await presentRules(host, rulesOf(props, id), namespaceOf(props));
    return rules && rules.length > 0 ? { rules } : undefined;
  };
  return defineKind({
    name: definition.name,
    description: definition.description,
    shape: definition.shape,
    refine: definition.refine,
    replaceOn: Object.keys(definition.shape),
    outputs: { rules: z.array(z.string()).describe("The rules of this resource present on the host, as iptables arguments.") },
    adoptable: false,
    async create(host, spec) {
      const id = `${definition.idPrefix}-${randomBytes(6).toString("hex")}`;
      await ensureRules(host, rulesOf(spec, id), namespaceOf(spec));
      return { id, observed: (await observe(host, spec, id)) ?? { rules: [] } };
    },
    read: (host, id, olds) => observe(host, olds, id),
    async update(host, id, _olds, news) {
      await ensureRules(host, rulesOf(news, id), namespaceOf(news));
      return (await observe(host, news, id)) ?? { rules: [] };
    },
    async delete(host, id, olds) {
      await removeRules(host, rulesOf(olds, id), namespaceOf(olds));
    },
    drift(id, olds, news) {
      if (containsUnknown(news)) return [];
      return isDeepStrictEqual(olds.rules, rulesOf(news, id).map(renderRule)) ? [] : ["rules"];
    },
  });
}
