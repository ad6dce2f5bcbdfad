/**
 * The native provider (`pulumi-resource-netns`): the same kinds and controller as the dynamic provider,
 * behind the engine's own resource-provider protocol. What differs is only where two inputs come from:
 * the connection is the provider's configuration (one per host, given once), and the owner is derived
 * from the URN the engine names. Neither is kept in a resource's state.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { connection as connectionSchema, Connection, sameConnection, targetIdentity } from "../connection";
import * as controller from "../controller";
import type { Kind, Props } from "../kind";
import { kinds } from "../kinds";
import { containsUnknown, Failure, isRecord, UNKNOWN, validate } from "../validate";

export const TYPE_PREFIX = "netns:index:";

/** The engine's marker of a secret value, as it arrives once the provider accepts secrets. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** The value with every secret wrapper replaced by what it holds (the engine re-marks outputs itself). */
export function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (!isRecord(value)) return value;
  if (value[SECRET_SIG] === SECRET_VALUE) return revealed(value.value);
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, revealed(field)]));
}

/** Fields of the connection that are not strings: generated SDKs send provider config as JSON text. */
const NON_STRING_FIELDS = Object.entries((z.toJSONSchema(connectionSchema, { io: "input" }) as { properties: Record<string, { type?: string }> }).properties)
  .filter(([, field]) => field.type !== "string")
  .map(([key]) => key);

/** The provider's configuration as the connection schema takes it. */
export function configInputs(raw: Props): Props {
  const plain = revealed(raw) as Props;
  return Object.fromEntries(
    Object.entries(plain)
      .filter(([key]) => key in connectionSchema.shape)
      .map(([key, value]) => {
        if (!NON_STRING_FIELDS.includes(key) || typeof value !== "string" || value === UNKNOWN) return [key, value];
        try {
          return [key, JSON.parse(value)];
        } catch {
          return [key, value];
        }
      }),
  );
}

export function checkConfig(news: Props): Failure[] {
  const result = validate(connectionSchema, configInputs(news));
  return result.ok ? [] : result.failures;
}

/** A credential changes in place; another target machine replaces every resource of the provider. */
export function diffConfig(olds: Props, news: Props): controller.DiffResult {
  const [before, after] = [configInputs(olds), configInputs(news)];
  if (sameConnection(before, after)) return { changes: false, replaces: [], deleteBeforeReplace: false };
  const identity = (c: Props) => (containsUnknown([c.host, c.port, c.proxy]) ? undefined : targetIdentity(c as Connection));
  const moved = identity(after) === undefined || identity(before) !== identity(after);
  return { changes: true, replaces: moved ? ["host"] : [], deleteBeforeReplace: moved };
}

/** `HASH@PROJECT/STACK` (provider/owner.ts) of the resource a URN names. */
export function ownerOfUrn(urn: string): string {
  const [, stack, project] = /^urn:pulumi:([^:]+)::([^:]+)::/.exec(urn) ?? [];
  if (!stack || !project) throw new Error(`pulumi-netns: not a resource URN: ${urn}`);
  return `${createHash("sha256").update(urn).digest("hex").slice(0, 16)}@${project}/${stack}`;
}

function kindOfUrn(urn: string): Kind {
  const type = urn.split("::")[2]?.split("$").pop() ?? "";
  const kind = type.startsWith(TYPE_PREFIX) ? kinds.find((k) => k.name === type.slice(TYPE_PREFIX.length)) : undefined;
  if (!kind) throw new Error(`pulumi-netns: unknown resource type "${type}"`);
  return kind as unknown as Kind;
}

/**
 * Stands in for the connection while a resource's inputs are checked: the kinds' rules never look at it,
 * and the provider's own configuration is checked (and may still be unknown) on its own.
 */
const CHECKED_ELSEWHERE = { host: "provider.invalid" };

const withoutConnection = ({ connection: _connection, ...rest }: Props): Props => rest;

export class NativeProvider {
  private target?: Connection;

  constructor(readonly version: string, readonly schema: string) {}

  configure(raw: Props): void {
    const inputs = configInputs(raw);
    // A preview may configure with values still unknown; no resource operation reaches a host then.
    if (containsUnknown(inputs)) return;
    const parsed = connectionSchema.safeParse(inputs);
    if (!parsed.success) throw new Error(`invalid provider configuration: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    this.target = parsed.data;
  }

  private connected(props: Props): Props {
    if (!this.target) throw new Error("pulumi-netns: the provider has no known connection (host) yet");
    return { ...props, connection: this.target };
  }

  async check(urn: string, _olds: Props, news: Props) {
    const kind = kindOfUrn(urn);
    const { inputs, failures } = controller.check(kind, { ...(revealed(news) as Props), connection: CHECKED_ELSEWHERE, owner: ownerOfUrn(urn) });
    return { inputs: withoutConnection(inputs), failures };
  }

  async diff(id: string, urn: string, olds: Props, news: Props) {
    // News are checked inputs, but for a refresh's diff right after `pulumi import`: then they are the inputs
    // import read, as a program gives them (no defaults). Checking them again changes checked ones in nothing.
    const { inputs } = await this.check(urn, {}, news);
    return controller.diff(kindOfUrn(urn), id, revealed(olds) as Props, inputs);
  }

  async create(urn: string, inputs: Props) {
    const { id, outs } = await controller.create(kindOfUrn(urn), this.connected(revealed(inputs) as Props));
    return { id, outs: withoutConnection(outs) };
  }

  async read(id: string, urn: string, props: Props = {}) {
    const kind = kindOfUrn(urn);
    // `pulumi import` (and the `import` resource option) reads with the id alone: the object is found from it.
    if (Object.keys(props).length === 0) {
      const { outs, inputs } = await controller.imported(kind, id, this.connected({ owner: ownerOfUrn(urn) }));
      return { id, props: withoutConnection(outs), inputs };
    }
    const read = await controller.read(kind, id, this.connected(revealed(props) as Props));
    return { id: read.id, props: withoutConnection(read.props) };
  }

  async update(id: string, urn: string, olds: Props, news: Props) {
    const { outs } = await controller.update(kindOfUrn(urn), id, revealed(olds) as Props, this.connected(revealed(news) as Props));
    return { outs: withoutConnection(outs) };
  }

  async delete(id: string, urn: string, props: Props) {
    await controller.remove(kindOfUrn(urn), id, this.connected(revealed(props) as Props));
  }
}
