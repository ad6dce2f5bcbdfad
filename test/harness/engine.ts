/** Drives the provider the way the Pulumi engine does (check before create/update), for tests. */
import { provider } from "../../provider";
import type { Props } from "../../provider/kind";

export function engine(kindName: string) {
  const p = provider(kindName);
  const checked = async (inputs: Props) => {
    const result = await p.check({}, inputs);
    if (result.failures) throw new Error(result.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
    return result.inputs;
  };
  return {
    check: (inputs: Props) => p.check({}, inputs),
    checked,
    async create(inputs: Props) {
      const news = await checked(inputs);
      const { id, outs } = await p.create(news);
      return { id, outs, news };
    },
    read: p.read,
    async diff(id: string, olds: Props, inputs: Props) {
      return p.diff(id, olds, await checked(inputs));
    },
    async update(id: string, olds: Props, inputs: Props) {
      return (await p.update(id, olds, await checked(inputs))).outs;
    },
    delete: p.delete,
  };
}

type Engine = ReturnType<typeof engine>;

/**
 * Creates in order and remembers what, so destroy deletes in reverse order (as the engine would) and
 * forgets it: a second destroy (a test's cleanup after its own) deletes nothing twice.
 */
export function recorder() {
  const made: { kind: Engine; id: string; outs: Props }[] = [];
  return {
    async create(kind: Engine, inputs: Props) {
      const result = await kind.create(inputs);
      made.push({ kind, id: result.id, outs: result.outs });
      return result;
    },
    async destroy() {
      for (const { kind, id, outs } of made.splice(0).reverse()) await kind.delete(id, outs);
    },
  };
}
