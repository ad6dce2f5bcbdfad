/**
 * What state forgot: objects on a host whose owner tag names a stack, that no resource in the stack's
 * state is, such as after `pulumi stack rm --force`, or a create that was interrupted and then left the
 * program before the next `up`. Each kind finds its own tagged objects (`tagged`); removing one is the
 * kind's own delete, so a shared object is only released as that holder, and goes when no holder is left.
 */
import type { Host } from "./host";
import { readRecords } from "./holders";
import { listLinks } from "./iproute";
import { listMarks } from "./iptables";
import type { Kind, Tagged, TagSource } from "./kind";
import { kinds } from "./kinds";
import { objectOwner, ownerStack } from "./owner";

/**
 * A resource of the stack's state, as the sweep tells it apart: its kind, id and holder token (if any), and
 * the owner its objects carry. A LabNode's namespace and interfaces are listed by the Namespace and Veth
 * kinds, a LabSegment's bridge and port by the Bridge and Vxlan kinds: they are known by that owner, or the
 * bridge by its holder token.
 */
export interface StateResource {
  kind: string;
  id: string;
  holder?: string;
  owner?: string;
}

/** A resource of state as the sweep needs it, from its kind, id and outputs. */
export function stateResource(kindName: string, id: string, outputs: Record<string, unknown>): StateResource {
  const kind = kinds.find((k) => k.name === kindName);
  const owner = kind && objectOwner(kind.replaceOn, outputs);
  return { kind: kindName, id, ...(typeof outputs.holder === "string" ? { holder: outputs.holder } : {}), ...(owner ? { owner } : {}) };
}

export interface Orphan extends Tagged {
  kind: Kind;
}

function tagSource(host: Host): TagSource {
  const once = <T>(list: () => Promise<T>) => {
    let listed: Promise<T> | undefined;
    return () => (listed ??= list());
  };
  return { links: once(() => listLinks(host)), records: once(() => readRecords(host)), marks: once(() => listMarks(host)) };
}

/**
 * What tells an object of state: its id and holder token when it has one (an alias may have changed its
 * kind since it was made: a Bridge that became a LabSegment keeps its record), else its kind and id.
 */
const identity = (kind: string, id: string, holder: unknown) => JSON.stringify(typeof holder === "string" ? [id, holder] : [kind, id]);

/** The objects on the host tagged with `stack` (PROJECT/STACK) that are not in `state`, in the order they can go. */
export async function findOrphans(host: Host, stack: string, state: StateResource[]): Promise<Orphan[]> {
  const source = tagSource(host);
  const known = new Set(state.map((resource) => identity(resource.kind, resource.id, resource.holder)));
  const owners = new Set(state.flatMap((resource) => (resource.owner ? [resource.owner] : [])));
  const found = await Promise.all(
    kinds.map(async (kind) => (await kind.tagged(host, source)).map((tagged) => ({ ...tagged, kind: kind as unknown as Kind }))),
  );
  const seen = new Set<string>();
  // Dependents first (the kinds are listed in the order they are made): rules, then addresses, then links, then namespaces.
  return found
    .reverse()
    .flat()
    .filter((orphan) => {
      const key = identity(orphan.kind.name, orphan.id, orphan.olds.holder);
      if (ownerStack(orphan.owner) !== stack || known.has(key) || owners.has(orphan.owner) || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/** Each orphan through its kind's delete; a failure is reported and the others still go. */
export async function removeOrphans(host: Host, orphans: Orphan[]): Promise<{ orphan: Orphan; error?: string }[]> {
  const results: { orphan: Orphan; error?: string }[] = [];
  for (const orphan of orphans) {
    try {
      await orphan.kind.delete(host, orphan.id, orphan.olds);
      results.push({ orphan });
    } catch (err) {
      results.push({ orphan, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return results;
}
