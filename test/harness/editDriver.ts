/**
 * Applies a sequence of programs to a host the way the Pulumi engine applies `pulumi up`, through the
 * provider's own check/diff/create/update/delete:
 * - resources are visited in dependency order: create, update, or replace;
 * - a replacement that must delete first (deleteBeforeReplace) also deletes, first and in reverse
 *   order, the dependents whose inputs flow from it and whose diff would then replace;
 * - other replacements create the new object at once and delete the old one at the end;
 * - resources gone from the program are deleted at the end, dependents first.
 * Like the engine's checkpoint, `live` changes only when an operation's result is back, and a replaced
 * resource stays condemned until its delete is: an apply that dies half way (haltAfterCommands) leaves
 * what the engine's state would, and the next apply finishes the job.
 * Each resource has an owner, as the SDK gives it (a hash of its key). The provider is reached through a
 * door: the dynamic provider's methods, or the native provider's, as the engine calls them.
 */
import { createHash } from "node:crypto";
import { provider } from "../../provider";
import type { DiffResult } from "../../provider/controller";
import { Props, typeToken } from "../../provider/kind";
import { NativeProvider } from "../../provider/native/provider";
import { Failure, UNKNOWN } from "../../provider/validate";

/** A provider's methods for the resource of a program's key. */
export interface Door {
  check(kind: string, key: string, inputs: Props): Promise<{ inputs: Props; failures?: Failure[] }>;
  diff(kind: string, key: string, id: string, olds: Props, news: Props): Promise<DiffResult>;
  create(kind: string, key: string, inputs: Props): Promise<{ id: string; outs: Props }>;
  read(kind: string, key: string, id: string, props: Props): Promise<{ id: string; props: Props }>;
  update(kind: string, key: string, id: string, olds: Props, news: Props): Promise<{ outs: Props }>;
  delete(kind: string, key: string, id: string, props: Props): Promise<void>;
}

const ownerOf = (key: string) => `${createHash("sha256").update(key).digest("hex").slice(0, 16)}@edits/driver`;

/** The dynamic provider: each resource carries its connection, and its owner as the SDK sends it. */
export const dynamicDoor: Door = {
  check: (kind, key, inputs) => provider(kind).check({}, { ...inputs, owner: ownerOf(key) }),
  diff: (kind, _key, id, olds, news) => provider(kind).diff(id, olds, news),
  create: (kind, _key, inputs) => provider(kind).create(inputs),
  read: (kind, _key, id, props) => provider(kind).read(id, props),
  update: (kind, _key, id, olds, news) => provider(kind).update(id, olds, news),
  delete: (kind, _key, id, props) => provider(kind).delete(id, props),
};

/** The native provider, configured with the host's connection; resources come without theirs, named by URN. */
export function nativeDoor(connection: Props): Door {
  const native = new NativeProvider("0.0.0", "{}");
  native.configure(connection);
  const urn = (kind: string, key: string) => `urn:pulumi:driver::edits::${typeToken(kind)}::${key}`;
  return {
    check: (kind, key, { connection: _connection, ...inputs }) => native.check(urn(kind, key), {}, inputs),
    diff: (kind, key, id, olds, news) => native.diff(id, urn(kind, key), olds, news),
    create: (kind, key, inputs) => native.create(urn(kind, key), inputs),
    read: (kind, key, id, props) => native.read(id, urn(kind, key), props),
    update: (kind, key, id, olds, news) => native.update(id, urn(kind, key), olds, news),
    delete: (kind, key, id, props) => native.delete(id, urn(kind, key), props),
  };
}

export interface Declared {
  /** The program's logical name of the resource (stable across edits). */
  key: string;
  kind: string;
  inputs: Props;
  /** Keys of the resources it depends on. */
  deps: string[];
  /** Input paths whose value comes from another resource's outputs: path → key. */
  flows: Record<string, string>;
}

export type Program = Declared[];

export interface Live {
  key: string;
  kind: string;
  id: string;
  outs: Props;
  inputs: Props;
  deps: string[];
}

export type Operation = "create" | "update" | "replace" | "delete" | "same";

function setPath(props: Props, path: string, value: unknown): Props {
  const copy = structuredClone(props);
  const keys = path.split(".");
  let cursor = copy;
  for (const key of keys.slice(0, -1)) cursor = (cursor[key] ??= {}) as Props;
  cursor[keys[keys.length - 1]] = value;
  return copy;
}

/** Deletes in reverse dependency order: a resource goes only after everything that depends on it. */
function dependentsFirst(resources: Live[]): Live[] {
  const left = [...resources];
  const order: Live[] = [];
  while (left.length > 0) {
    const next = left.findIndex((r) => !left.some((other) => other !== r && other.deps.includes(r.key)));
    order.push(...left.splice(next < 0 ? left.length - 1 : next, 1));
  }
  return order;
}

export class EditDriver {
  constructor(private readonly door: Door = dynamicDoor) {}

  readonly live = new Map<string, Live>();
  /** Replaced by a new object of the same key, whose delete has not been done (the engine's `delete: true`). */
  readonly condemned: Live[] = [];
  readonly log: string[] = [];

  /** check's inputs, also when it fails on values still unknown (the engine plans with them all the same). */
  private async checkedAsPlanned(declared: Declared, inputs: Props): Promise<Props> {
    return (await this.door.check(declared.kind, declared.key, inputs)).inputs;
  }

  private async checked(declared: Declared): Promise<Props> {
    const result = await this.door.check(declared.kind, declared.key, declared.inputs);
    if (result.failures)
      throw new Error(`${declared.kind} check failed: ${result.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
    return result.inputs;
  }

  private async remove(resource: Live): Promise<void> {
    this.log.push(`delete ${resource.key} ${resource.id}`);
    await this.door.delete(resource.kind, resource.key, resource.id, resource.outs);
  }

  private async create(declared: Declared, inputs: Props): Promise<void> {
    const { id, outs } = await this.door.create(declared.kind, declared.key, inputs);
    this.log.push(`create ${declared.key} ${id}`);
    this.live.set(declared.key, { key: declared.key, kind: declared.kind, id, outs, inputs, deps: declared.deps });
  }

  /** One `pulumi up` of `program`; returns the operation done on each key. */
  async apply(program: Program): Promise<Record<string, Operation>> {
    const ops: Record<string, Operation> = {};
    // The engine deletes what an earlier run condemned and did not delete first.
    for (const r of dependentsFirst([...this.condemned])) {
      await this.remove(r);
      this.condemned.splice(this.condemned.indexOf(r), 1);
    }
    const deleteAtEnd: Live[] = [...this.live.values()].filter((r) => !program.some((d) => d.key === r.key));
    const deletedFirst = new Set<string>();
    const dbr = new Set<string>();

    // Which existing resources a delete-before-replace takes down first, as the engine plans it.
    for (const declared of program) {
      const current = this.live.get(declared.key);
      if (!current) continue;
      const news = await this.checked(declared);
      const diff = await this.door.diff(declared.kind, declared.key, current.id, current.outs, news);
      let replacedFirst = diff.replaces.length > 0 && diff.deleteBeforeReplace;
      const fromReplaced = Object.entries(declared.flows).filter(([, source]) => dbr.has(source));
      if (!replacedFirst && fromReplaced.length > 0) {
        const unknown = fromReplaced.reduce((inputs, [path]) => setPath(inputs, path, UNKNOWN), declared.inputs);
        const planned = await this.door.diff(
          declared.kind,
          declared.key,
          current.id,
          current.outs,
          await this.checkedAsPlanned(declared, unknown),
        );
        replacedFirst = planned.replaces.length > 0 && planned.deleteBeforeReplace;
      }
      if (replacedFirst) dbr.add(declared.key);
    }

    for (const declared of program) {
      const current = this.live.get(declared.key);
      const news = await this.checked(declared);
      if (!current) {
        await this.create(declared, news);
        ops[declared.key] = deletedFirst.has(declared.key) ? "replace" : "create";
        continue;
      }
      if (dbr.has(declared.key)) {
        const chain = dependentsFirst([...this.live.values()].filter((r) => dbr.has(r.key) && !deletedFirst.has(r.key)));
        // Only this resource and its dependents go now; other chains go at their own step.
        const reach = new Set([declared.key]);
        for (const r of [...chain].reverse()) if (r.deps.some((d) => reach.has(d))) reach.add(r.key);
        for (const r of chain.filter((r) => reach.has(r.key))) {
          await this.remove(r);
          this.live.delete(r.key);
          deletedFirst.add(r.key);
        }
        await this.create(declared, news);
        ops[declared.key] = "replace";
        continue;
      }
      const diff = await this.door.diff(declared.kind, declared.key, current.id, current.outs, news);
      if (!diff.changes) {
        this.live.set(declared.key, { ...current, inputs: news, deps: declared.deps });
        ops[declared.key] = "same";
      } else if (diff.replaces.length === 0) {
        const { outs } = await this.door.update(declared.kind, declared.key, current.id, current.outs, news);
        this.log.push(`update ${declared.key} ${current.id}`);
        this.live.set(declared.key, { ...current, outs, inputs: news, deps: declared.deps });
        ops[declared.key] = "update";
      } else {
        deleteAtEnd.push(current);
        this.condemned.push(current);
        await this.create(declared, news);
        ops[declared.key] = "replace";
      }
    }

    for (const r of dependentsFirst(deleteAtEnd)) {
      await this.remove(r);
      if (this.condemned.includes(r)) this.condemned.splice(this.condemned.indexOf(r), 1);
      if (this.live.get(r.key) === r) this.live.delete(r.key);
      if (!ops[r.key]) ops[r.key] = "delete";
    }
    return ops;
  }

  /** `pulumi destroy`. */
  async destroy(): Promise<void> {
    for (const r of dependentsFirst([...this.live.values()])) {
      await this.remove(r);
      this.live.delete(r.key);
    }
  }

  /**
   * `pulumi refresh` followed by a preview: every live resource is still there and its read-back
   * state asks for no change. Returns what does not hold, one line per resource.
   */
  async unconverged(): Promise<string[]> {
    const problems: string[] = [];
    for (const r of this.live.values()) {
      const read = await this.door.read(r.kind, r.key, r.id, r.outs);
      if (read.id === "") {
        problems.push(`${r.key} (${r.kind} ${r.id}) is gone from the host`);
        continue;
      }
      const diff = await this.door.diff(r.kind, r.key, r.id, read.props, r.inputs);
      if (diff.changes) {
        const { connection: _read, ...seen } = read.props;
        const { connection: _asked, ...asked } = r.inputs;
        problems.push(
          `${r.key} (${r.kind} ${r.id}) differs after refresh: ${JSON.stringify(diff)}; asked ${JSON.stringify(asked)}; read ${JSON.stringify(seen)}`,
        );
      }
    }
    return problems;
  }
}
