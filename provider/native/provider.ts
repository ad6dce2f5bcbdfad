/**
 * The native provider (`pulumi-resource-netns`): the same kinds and controller as the dynamic provider,
 * behind the engine's own resource-provider protocol. What differs is only where two inputs come from:
 * the connection is the provider's configuration (one per host, given once), and the owner is derived
 * from the URN the engine names. Neither is kept in a resource's state.
 */
import { createHash } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { connection as connectionSchema, Connection, sameConnection, targetIdentity } from "../connection";
import * as controller from "../controller";
import type { DiffResult } from "../controller";
import { provider } from "../index";
import { kindNamed } from "../kinds";
import { Props, TYPE_PREFIX } from "../kind";
import { LAB_ALLOCATION } from "../lab/allocation";
import { containsSecret, containsUnknown, Failure, isRecord, isSecretWrapper, secretWrapper, UNKNOWN, validate } from "../validate";

/** The value with every secret wrapper replaced by what it holds, for the kinds (which see plain values). */
export function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (!isRecord(value)) return value;
  if (isSecretWrapper(value)) return revealed(value.value);
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, revealed(field)]));
}

/**
 * `out` with each property marked secret where the same property of `given` holds a secret (objects
 * property by property): a provider that accepts secrets must return them marked, or the engine stores
 * them in plaintext. As the engine does for providers that do not (annotateSecrets).
 */
export function secretsAsIn(out: Props, given: Props): Props {
  return Object.fromEntries(
    Object.entries(out).map(([key, value]) => {
      const before = given[key];
      if (isRecord(value) && isRecord(before) && !isSecretWrapper(before)) return [key, secretsAsIn(value, before)];
      return [key, containsSecret(before) ? secretWrapper(value) : value];
    }),
  );
}

/** Fields of the connection that are not strings: generated SDKs send provider config as JSON text. */
const NON_STRING_FIELDS = Object.entries(
  (z.toJSONSchema(connectionSchema, { io: "input" }) as { properties: Record<string, { type?: string }> }).properties,
)
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

/**
 * A provider may have no host: the default provider of a program whose resources all name their own
 * (a Lab makes one per host) is configured from an empty stack config. A resource given it is refused.
 */
const hostless = connectionSchema.partial({ host: true });

const NO_HOST =
  "this resource's provider has no host: give it a netns.Provider (opts.provider), or set the default provider's host (`pulumi config set netns:host ...`)";

export function checkConfig(olds: Props, news: Props): Failure[] {
  const given = configInputs(news);
  const result = validate(hostless, given);
  if (!result.ok) return result.failures;
  // Without a host its resources could be neither replaced nor deleted: they would be deleted first, in vain.
  if (configInputs(olds).host !== undefined && given.host === undefined) {
    return [{ property: "host", reason: "a provider that had a host keeps one (destroy its resources first, with the host still set)" }];
  }
  return [];
}

/** Where the objects are; a change here is another machine. */
const TARGET_FIELDS = ["host", "port", "proxy"] as const;

/** A credential changes in place; another target machine replaces every resource of the provider. */
export function diffConfig(olds: Props, news: Props): DiffResult {
  const [before, after] = [configInputs(olds), configInputs(news)];
  if (sameConnection(before, after)) return { changes: false, replaces: [], deleteBeforeReplace: false };
  const target = (c: Props) => targetIdentity(c as Connection);
  // A field moves the target when taking just its new value gives another target.
  const moved = TARGET_FIELDS.filter((key) => containsUnknown(after[key]) || target({ ...before, [key]: after[key] }) !== target(before));
  return { changes: true, replaces: [...moved], deleteBeforeReplace: moved.length > 0 };
}

/** `HASH@PROJECT/STACK` (provider/owner.ts) of the resource a URN names. */
export function ownerOfUrn(urn: string): string {
  const [, stack, project] = /^urn:pulumi:([^:]+)::([^:]+)::/.exec(urn) ?? [];
  if (!stack || !project) throw new Error(`pulumi-netns: not a resource URN: ${urn}`);
  return `${createHash("sha256").update(urn).digest("hex").slice(0, 16)}@${project}/${stack}`;
}

/** The type a URN names, without the package prefix ("Veth"); a LabAllocation is served too, on no host. */
function typeOfUrn(urn: string): string {
  const type = urn.split("::")[2]?.split("$").pop() ?? "";
  if (!type.startsWith(TYPE_PREFIX)) throw new Error(`pulumi-netns: unknown resource type "${type}"`);
  return type.slice(TYPE_PREFIX.length);
}

/**
 * Stands in for the connection while a resource's inputs are checked: the kinds' rules never look at it,
 * and the provider's own configuration is checked (and may still be unknown) on its own.
 */
const CHECKED_ELSEWHERE = { host: "provider.invalid" };

const withoutConnection = ({ connection: _connection, ...rest }: Props): Props => rest;

/** A component the provider builds for another language's program (`construct`), by type token. */
export type Construct = (
  name: string,
  inputs: pulumi.Inputs,
  options: pulumi.ComponentResourceOptions,
) => Promise<pulumi.provider.ConstructResult>;

export class NativeProvider {
  /** The connection; "none" for a provider configured without a host; unset before Configure. */
  private target?: Connection | "none";

  constructor(
    readonly version: string,
    readonly schema: string,
    private readonly components: Record<string, Construct> = {},
  ) {}

  async construct(name: string, type: string, inputs: pulumi.Inputs, options: pulumi.ComponentResourceOptions) {
    const build = this.components[type];
    if (!build) throw new Error(`pulumi-netns: unknown component type "${type}"`);
    return build(name, inputs, options);
  }

  /** The engine configures only with known values (a preview with unknown ones skips Configure). */
  configure(raw: Props): void {
    const parsed = hostless.safeParse(configInputs(raw));
    // Only the property and the reason: a value may be a credential.
    if (!parsed.success)
      throw new Error(`invalid provider configuration: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    this.target = parsed.data.host === undefined ? "none" : (parsed.data as Connection);
  }

  /** The dynamic provider's methods for the URN's type, and its props with the connection added (kinds only). */
  private served(urn: string, props: Props): [ReturnType<typeof provider>, Props] {
    const type = typeOfUrn(urn);
    const plain = revealed(props) as Props;
    if (type === LAB_ALLOCATION) return [provider(type), plain];
    if (this.target === undefined || this.target === "none") throw new Error(`pulumi-netns: ${NO_HOST}`);
    return [provider(type), { ...plain, connection: this.target }];
  }

  async check(urn: string, olds: Props, news: Props) {
    const type = typeOfUrn(urn);
    if (type !== LAB_ALLOCATION && this.target === "none") return { inputs: news, failures: [{ property: "", reason: NO_HOST }] };
    const plain = revealed(news) as Props;
    const given = type === LAB_ALLOCATION ? plain : { ...plain, connection: CHECKED_ELSEWHERE, owner: ownerOfUrn(urn) };
    const { inputs, failures } = await provider(type).check(revealed(olds) as Props, given);
    return { inputs: secretsAsIn(withoutConnection(inputs), news), failures };
  }

  async diff(id: string, urn: string, olds: Props, news: Props) {
    const type = typeOfUrn(urn);
    // News are checked inputs, but for a refresh's diff right after `pulumi import`: then they are the inputs
    // import read, as a program gives them (no defaults). Checking them again changes checked ones in nothing.
    // (A LabAllocation's check allocates from its olds: its news are always its own.)
    const checked = type === LAB_ALLOCATION ? news : (await this.check(urn, {}, news)).inputs;
    return provider(type).diff(id, revealed(olds) as Props, revealed(checked) as Props);
  }

  async create(urn: string, inputs: Props) {
    const [methods, props] = this.served(urn, inputs);
    const { id, outs } = await methods.create(props);
    return { id, outs: secretsAsIn(withoutConnection(outs), inputs) };
  }

  async read(id: string, urn: string, props: Props = {}) {
    // `pulumi import` (and the `import` resource option) reads with the id alone: the object is found from it.
    if (Object.keys(props).length === 0) {
      const [, common] = this.served(urn, { owner: ownerOfUrn(urn) });
      const { outs, inputs } = await controller.imported(kindNamed(typeOfUrn(urn)), id, common);
      return { id, props: withoutConnection(outs), inputs };
    }
    const [methods, connected] = this.served(urn, props);
    const read = await methods.read(id, connected);
    return { id: read.id, props: secretsAsIn(withoutConnection(read.props), props) };
  }

  async update(id: string, urn: string, olds: Props, news: Props) {
    const [methods, props] = this.served(urn, news);
    const { outs } = await methods.update(id, revealed(olds) as Props, props);
    return { outs: secretsAsIn(withoutConnection(outs), news) };
  }

  async delete(id: string, urn: string, props: Props) {
    const [methods, connected] = this.served(urn, props);
    await methods.delete(id, connected);
  }
}
