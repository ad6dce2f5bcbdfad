/**
 * Entry point the serialized shim loads at run time: `provider(kindName)` gives the dynamic
 * provider methods for one resource kind. Everything heavy (ssh2, the pool) is behind this.
 */
import * as controller from "./controller";
import { exitWhenEngineGone } from "./engineWatch";
import { kindNamed } from "./kinds";
import type { Props } from "./kind";
import { LAB_ALLOCATION, labAllocationProvider } from "./lab/allocation";

export { closeAllHosts } from "./ssh/pool";
export { kinds } from "./kinds";

/** The dynamic provider host's entry script; the engine's address is its first argument. */
if (require.main && /[\\/]cmd[\\/]dynamic-provider[\\/]index\.js$/.test(require.main.filename)) exitWhenEngineGone(process.argv.slice(2));

export function provider(kindName: string) {
  if (kindName === LAB_ALLOCATION) return labAllocationProvider;
  const kind = kindNamed(kindName);
  return {
    check: async (_olds: Props, news: Props) => controller.check(kind, news),
    diff: async (id: string, olds: Props, news: Props) => controller.diff(kind, id, olds, news),
    create: (inputs: Props) => controller.create(kind, inputs),
    read: (id: string, props: Props) => controller.read(kind, id, props),
    update: (id: string, olds: Props, news: Props) => controller.update(kind, id, olds, news),
    delete: (id: string, props: Props) => controller.remove(kind, id, props),
  };
}
