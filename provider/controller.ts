/**
 * The dynamic provider's CRUD for any kind: validation at the edge, the diff rules every kind shares,
 * and the shared SSH host. Kinds see validated specs and a Host; nothing else.
 */
import { isDeepStrictEqual } from "node:util";
import { Connection, connection as connectionSchema, targetIdentity } from "./connection";
import type { Kind, Props } from "./kind";
import { hostFor } from "./ssh/pool";
import { containsUnknown, Failure, UNKNOWN, validate } from "./validate";

export interface DiffResult {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace: boolean;
}

export function check(kind: Kind, news: Props): { inputs: Props; failures?: Failure[] } {
  const result = validate(kind.inputs, news);
  return result.ok ? { inputs: result.value as Props } : { inputs: news, failures: result.failures };
}

const isRecord = (v: unknown): v is Props => typeof v === "object" && v !== null && !Array.isArray(v);

/** Leaf paths ("peer.master") set in news whose value differs from olds; unknown values count as changed. */
function changedPaths(olds: unknown, news: unknown, path: string): string[] {
  if (news === undefined) return [];
  if (isRecord(news) && isRecord(olds)) {
    return Object.keys(news).flatMap((key) => changedPaths(olds[key], news[key], `${path}.${key}`));
  }
  return news === UNKNOWN || !isDeepStrictEqual(olds, news) ? [path] : [];
}

/**
 * olds are the outputs in state (what the last create/read/update saw on the host); news are the
 * checked inputs. A property left unset in news is not managed, so its observed value never differs.
 */
export function diff(kind: Kind, id: string, olds: Props, news: Props): DiffResult {
  const changed = new Set<string>();
  const replaces = new Set<string>();
  for (const key of Object.keys(kind.shape)) {
    for (const path of changedPaths(olds[key], news[key], key)) {
      changed.add(key);
      if (kind.replaceOn.some((r) => r === path || r.startsWith(`${path}.`) || path.startsWith(`${r}.`))) replaces.add(key);
    }
  }
  const oldConnection = olds.connection as Partial<Connection> | undefined;
  const newConnection = news.connection as Partial<Connection> | string | undefined;
  if (!isDeepStrictEqual(oldConnection, newConnection)) {
    changed.add("connection");
    const unknownTarget = typeof newConnection !== "object" || containsUnknown(newConnection);
    if (unknownTarget || targetIdentity(oldConnection as Connection) !== targetIdentity(newConnection as Connection)) {
      replaces.add("connection");
    }
  }
  for (const key of kind.drift?.(id, olds, news) ?? []) changed.add(key);
  return {
    changes: changed.size > 0,
    replaces: [...replaces],
    // Kernel objects are named: the old one must go before a replacement of the same name appears.
    deleteBeforeReplace: replaces.size > 0,
  };
}

/** Outputs go through protobuf Structs, which have no `undefined`: absent means unset. */
const defined = (props: Props): Props => JSON.parse(JSON.stringify(props));

function hostOf(props: Props) {
  return hostFor(connectionSchema.parse(props.connection));
}

/** Validates again before anything reaches a host, whoever calls (the engine always checks first). */
function validated(kind: Kind, inputs: Props): Props {
  const result = validate(kind.inputs, inputs);
  if (!result.ok) {
    throw new Error(`invalid ${kind.name}: ${result.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
  }
  if (containsUnknown(result.value)) throw new Error(`invalid ${kind.name}: some inputs are still unknown`);
  return result.value as Props;
}

export async function create(kind: Kind, raw: Props): Promise<{ id: string; outs: Props }> {
  const inputs = validated(kind, raw);
  const { id, observed } = await kind.create(hostOf(inputs), inputs as never, inputs.adopt === true);
  return { id, outs: defined({ ...inputs, ...observed }) };
}

export async function read(kind: Kind, id: string, props: Props): Promise<{ id: string; props: Props }> {
  const observed = await kind.read(hostOf(props), id, props);
  if (!observed) return { id: "", props: {} };
  return { id, props: defined({ ...props, ...observed }) };
}

export async function update(kind: Kind, id: string, olds: Props, raw: Props): Promise<{ outs: Props }> {
  const news = validated(kind, raw);
  const observed = await kind.update(hostOf(news), id, olds, news as never);
  // Computed outputs (a sysctl's previous value, say) carry over from olds.
  return { outs: defined({ ...olds, ...news, ...observed }) };
}

export async function remove(kind: Kind, id: string, props: Props): Promise<void> {
  await kind.delete(hostOf(props), id, props);
}
