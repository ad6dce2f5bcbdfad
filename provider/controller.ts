/**
 * The dynamic provider's CRUD for any kind: validation at the edge, the diff rules every kind shares,
 * and the shared SSH host. Kinds see validated specs and a Host; nothing else.
 */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { compactConnection, Connection, connection as connectionSchema, sameConnection, targetIdentity } from "./connection";
import { Kind, Props, SET_PROPERTIES } from "./kind";
import { objectOwner } from "./owner";
import { hostFor } from "./ssh/pool";
import { containsUnknown, Failure, isRecord, UNKNOWN, validate } from "./validate";

export interface DiffResult {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace: boolean;
}

/**
 * What state keeps of checked inputs or outputs (rewritten with every checkpoint): the connection without
 * its default fields, and `adopt` only when set (a create that runs validates again, defaulting it).
 */
function stored(props: Props): Props {
  const { adopt, ...rest } = props;
  return {
    ...rest,
    ...(adopt === true ? { adopt } : {}),
    ...("connection" in props ? { connection: compactConnection(props.connection) } : {}),
  };
}

export function check(kind: Kind, news: Props): { inputs: Props; failures?: Failure[] } {
  const result = validate(kind.inputs, news);
  return result.ok ? { inputs: stored(result.value as Props) } : { inputs: news, failures: result.failures };
}

/** Leaf paths ("peer.master") set in news whose value differs from olds; unknown values count as changed. */
function changedPaths(olds: unknown, news: unknown, path: string): string[] {
  if (news === undefined) return [];
  if (isRecord(news) && isRecord(olds)) {
    return Object.keys(news).flatMap((key) => changedPaths(olds[key], news[key], `${path}.${key}`));
  }
  return news === UNKNOWN || !isDeepStrictEqual(olds, news) ? [path] : [];
}

/** Leaf paths of the kind's own properties that the program sets (defaults applied). */
export function setPaths(kind: Kind, inputs: Props): string[] {
  const leaves = (value: unknown, path: string): string[] =>
    isRecord(value) ? Object.keys(value).flatMap((key) => leaves(value[key], `${path}.${key}`)) : value === undefined ? [] : [path];
  return Object.keys(kind.shape).flatMap((key) => leaves(inputs[key], key));
}

/** The value at a dotted path; UNKNOWN when an object on the way is still unknown (preview). */
function valueAt(props: Props, path: string): unknown {
  let cursor: unknown = props;
  for (const key of path.split(".")) {
    if (cursor === UNKNOWN) return UNKNOWN;
    if (!isRecord(cursor)) return undefined;
    cursor = cursor[key];
  }
  return cursor;
}

/** The paths the last create/update was asked to set, as recorded in its outputs. */
const setBefore = (olds: Props) => olds[SET_PROPERTIES] as string[];

/** Paths the last create/update was asked to set and news leaves unset. */
function unsetPaths(olds: Props, news: Props): string[] {
  return setBefore(olds).filter((path) => valueAt(news, path) === undefined);
}

/**
 * Paths news sets that the last create/update was not asked to set. Even with the value the host already
 * has, taking a property over is an update: a bridge's MTU, say, is pinned only then.
 */
function newlySetPaths(kind: Kind, olds: Props, news: Props): string[] {
  const before = setBefore(olds);
  return setPaths(kind, news).filter((path) => !before.includes(path));
}

/** Each leaf of `over` laid onto `base`, whose other leaves (values read back from the host) stay. */
function overlay(base: unknown, over: unknown): unknown {
  if (!isRecord(base) || !isRecord(over)) return over;
  const merged: Props = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = overlay(base[key], value);
  return merged;
}

const inReplaceOn = (kind: Kind, path: string) =>
  kind.replaceOn.some((r) => r === path || r.startsWith(`${path}.`) || path.startsWith(`${r}.`));

/**
 * olds are the outputs in state (what the last create/read/update saw on the host, plus the paths the
 * program set); news are the checked inputs. A property the program never set is not managed, so its
 * observed value never differs; one it set and now leaves unset is a change: identity replaces, an
 * in-place property goes back to its kernel default (`resetTo`). One it starts to set is a change too.
 */
export function diff(kind: Kind, id: string, olds: Props, news: Props): DiffResult {
  const changed = new Set<string>();
  const replaces = new Set<string>();
  const paths = Object.keys(kind.shape).flatMap((key) => changedPaths(olds[key], news[key], key));
  // While anything is unknown (preview), check could not apply defaults or canonical values: what looks
  // unset or newly set may not be. Apply decides with the values known.
  const previewing = containsUnknown(news);
  for (const path of [...paths, ...(previewing ? [] : unsetPaths(olds, news))]) {
    const key = path.split(".")[0];
    changed.add(key);
    if (inReplaceOn(kind, path)) replaces.add(key);
  }
  if (!previewing) for (const path of newlySetPaths(kind, olds, news)) changed.add(path.split(".")[0]);
  const oldConnection = olds.connection as Partial<Connection> | undefined;
  const newConnection = news.connection as Partial<Connection> | string | undefined;
  if (!sameConnection(oldConnection, newConnection)) {
    changed.add("connection");
    // Credentials change in place; only the target decides replacement, even while other fields are unknown.
    const target = typeof newConnection === "object" ? [newConnection.host, newConnection.port, newConnection.proxy] : [UNKNOWN];
    if (containsUnknown(target) || targetIdentity(oldConnection as Connection) !== targetIdentity(newConnection as Connection)) {
      replaces.add("connection");
    }
  }
  for (const key of kind.drift?.(id, olds, news) ?? []) changed.add(key);
  // Kernel objects are named: the old one must go before a replacement of the same name appears.
  const clash = replaces.has("connection") || containsUnknown(news) || !kind.collides || kind.collides(olds, news);
  return {
    changes: changed.size > 0,
    replaces: [...replaces],
    deleteBeforeReplace: replaces.size > 0 && clash,
  };
}

/** Outputs go through protobuf Structs, which have no `undefined`: absent (or a reset's null) means unset. */
const defined = (props: Props): Props => JSON.parse(JSON.stringify(props, (_key, value) => (value === null ? undefined : value)));

const withSetPaths = (kind: Kind, inputs: Props, outs: Props): Props => ({ ...stored(outs), [SET_PROPERTIES]: setPaths(kind, inputs) });

/** news, with each in-place property the program stopped setting back at its kernel default. */
function withResets(kind: Kind, olds: Props, news: Props): Props {
  const reset = structuredClone(news);
  for (const path of unsetPaths(olds, news)) {
    if (!kind.resetTo || !(path in kind.resetTo)) continue;
    const keys = path.split(".");
    let cursor = reset;
    for (const key of keys.slice(0, -1)) cursor = (cursor[key] ??= {}) as Props;
    cursor[keys[keys.length - 1]] = kind.resetTo[path];
  }
  return reset;
}

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
  const { id, observed } = await kind.create(hostOf(inputs), inputs as never, inputs.adopt === true, objectOwner(kind.replaceOn, inputs));
  return { id, outs: withSetPaths(kind, inputs, defined({ ...inputs, ...observed })) };
}

export async function read(kind: Kind, id: string, props: Props): Promise<{ id: string; props: Props }> {
  const observed = await kind.read(hostOf(props), id, props);
  if (!observed) return { id: "", props: {} };
  return { id, props: defined({ ...props, ...observed }) };
}

/** The properties an import id names, checked like inputs; an error naming the form the kind's ids take. */
export function importIdentity(kind: Kind, id: string): Props {
  const { importing } = kind;
  if ("refused" in importing) throw new Error(`${kind.name} cannot be imported: ${importing.refused}`);
  const expected = `${kind.name} id must be ${importing.idForm}`;
  const named = importing.identify(id);
  if (!named) throw new Error(`${expected}; got "${id}"`);
  const schema = z.object(Object.fromEntries(Object.keys(named).map((key) => [key, kind.shape[key]])));
  const result = validate(schema, named);
  if (!result.ok) throw new Error(`${expected}; in "${id}", ${result.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
  return defined(result.value as Props);
}

/** Leaf paths ("peer.name") of a value; arrays are leaves. */
const leafPaths = (value: unknown, path = ""): string[] =>
  isRecord(value)
    ? Object.keys(value).flatMap((key) => leafPaths(value[key], path ? `${path}.${key}` : key))
    : value === undefined
      ? []
      : [path];

/** A copy without the leaf at `path`, and without the objects that leaves empty. */
function withoutPath(props: Props, path: string): Props {
  const [key, ...rest] = path.split(".");
  if (rest.length === 0 || !isRecord(props[key])) {
    const { [key]: _removed, ...others } = props;
    return others;
  }
  const inner = withoutPath(props[key] as Props, rest.join("."));
  return Object.keys(inner).length > 0 ? { ...props, [key]: inner } : withoutPath(props, key);
}

/**
 * What a program gives to declare an imported object: `given` without each property that its default or
 * canonical spelling gives anyway (check yields the same inputs without it), or that is at the value it
 * goes back to when unset (`resetTo`: a veth's MTU of 1500).
 */
function programInputs(kind: Kind, given: Props, common: Props): Props {
  const checked = (props: Props) => kind.inputs.safeParse({ ...common, ...props });
  let lean = given;
  for (const path of leafPaths(given)) {
    const candidate = withoutPath(lean, path);
    const reset = kind.resetTo?.[path];
    const atReset = reset !== undefined && reset !== null && isDeepStrictEqual(valueAt(given, path), reset);
    const without = checked(candidate);
    if (atReset || (without.success && isDeepStrictEqual(without.data, checked(lean).data))) lean = candidate;
  }
  return lean;
}

/**
 * `pulumi import`: the object an id names, read from the host. `outs` are its outputs as state keeps them
 * after a create (every input as check spells it, what was read besides, the paths set, the owner), `inputs`
 * what a program declaring it gives (programInputs), so that its check and diff find nothing to change.
 * `common` carries the connection and the owner. Nothing is written (the engine reads in previews too): the
 * object gets no owner tag or holder record, and none later, since the owner in `outs` asks for no update.
 */
export async function imported(kind: Kind, id: string, common: Props): Promise<{ outs: Props; inputs: Props }> {
  const identity = importIdentity(kind, id);
  const host = hostOf(common);
  const importing = kind.importing as Exclude<Kind["importing"], { refused: string }>;
  const discovered = importing.discover ? await importing.discover(host, id, identity) : identity;
  const observed = discovered && (await kind.read(host, id, { ...common, ...discovered }));
  if (!discovered || !observed) throw new Error(`${host.label}: there is no ${kind.name} "${id}" to import`);
  const found: Props = { ...discovered, ...observed };
  const given = defined(Object.fromEntries(Object.keys(kind.shape).map((key) => [key, found[key]])));
  const result = validate(kind.inputs, { ...common, ...given });
  if (!result.ok) {
    const reasons = result.failures.map((f) => `${f.property}: ${f.reason}`).join("; ");
    throw new Error(`${host.label}: the ${kind.name} "${id}" on the host is not one a ${kind.name} resource can declare (${reasons})`);
  }
  const inputs = result.value as Props;
  const declared = programInputs(kind, given, common);
  // The paths set are those the program sets: one left at the value it goes back to when unset is not.
  const set = kind.inputs.parse({ ...common, ...declared }) as Props;
  return { outs: withSetPaths(kind, set, defined(overlay(found, inputs) as Props)), inputs: declared };
}

export async function update(kind: Kind, id: string, olds: Props, raw: Props): Promise<{ outs: Props }> {
  const news = validated(kind, raw);
  const wanted = withResets(kind, olds, news);
  const host = hostOf(news);
  const observed = await kind.update(host, id, olds, wanted as never);
  // Computed outputs (a sysctl's previous value, say) carry over from olds; a property no longer set does
  // not. The owner is what the host's objects carry: the one they were made with.
  const kept = Object.fromEntries(Object.entries(olds).filter(([key]) => !(key in kind.shape)));
  return { outs: withSetPaths(kind, news, defined({ ...kept, ...wanted, ...observed, owner: olds.owner })) };
}

export async function remove(kind: Kind, id: string, props: Props): Promise<void> {
  await kind.delete(hostOf(props), id, props);
}
