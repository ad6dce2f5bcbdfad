/**
 * What every resource kind provides. The controller does the rest (validation, diff rules,
 * connection handling); a kind only knows its commands and how to read its object back.
 */
import { z } from "zod";
import { connection, Connection } from "./connection";
import { owner } from "./owner";
import type { HostRecord } from "./holders";
import type { Host } from "./host";
import type { IpLinkJson } from "./iproute";
import type { FoundMark } from "./iptables";
import { containsUnknown } from "./validate";

export type Props = Record<string, unknown>;

/** The package's type token of a resource or component ("netns:index:Veth"), as schema.json names it. */
export const TYPE_PREFIX = "netns:index:";
export const typeToken = (name: string) => `${TYPE_PREFIX}${name}`;

/** Output listing the property paths the program set, so that diff can tell one it stopped setting. */
export const SET_PROPERTIES = "setProperties";

/** What `suspended` means, for the kinds whose objects the kernel drops from an interface that goes down. */
export const SUSPENDED =
  "Kept in state but not on the host: the kernel drops it from an interface that is down, and a Lab sets this while a cable is down. " +
  "Unsetting it puts it back.";

/** For kinds that replace only when their kernel identity changes: a replacement is always another object. */
export const neverCollides = () => false;

/** What read/create/update observed on the host, keyed like the inputs plus computed outputs. */
export type Observed = Props;

/** An object on a host that carries an owner (owner.ts), as the kind's delete takes it. */
export interface Tagged {
  /** What the object's owner tag says: HASH@PROJECT/STACK. */
  owner: string;
  id: string;
  /** Enough of the outputs for `delete` (a holder's token among them). */
  olds: Props;
  /** The object in words, for the sweep's listing. */
  what: string;
}

/** What `tagged` reads a host from; each listing is taken once, whichever kinds ask. */
export interface TagSource {
  /** Every link of every namespace ("" is the host's own), with its alias. */
  links(): Promise<Map<string, IpLinkJson[]>>;
  /** Every holder and owner record under /run/pulumi-netns. */
  records(): Promise<HostRecord[]>;
  /** Every iptables rule mark. */
  marks(): Promise<FoundMark[]>;
}

/**
 * How `pulumi import KIND NAME ID` finds an object of this kind on the host, or why it cannot. The id names
 * the object's identity (its namespace and name, say); the kind reads the rest, so that the engine gets
 * every input and a program declaring them shows no change.
 */
export type Importing =
  | {
      /** The forms an import id takes, for the error a malformed one gets, e.g. "[NAMESPACE]/NAME". */
      idForm: string;
      /**
       * The properties an id names, keyed like the inputs (the controller checks each against its schema);
       * undefined when the id is not of the form. Pure: nothing reaches a host.
       */
      identify(id: string): Props | undefined;
      /**
       * What `read` needs beyond the identity (a veth's peer, a rule set's shape), and outputs an object
       * found by hand has (a sysctl's previous value), read from the host; undefined when the object is not
       * there. Without it, the identity is all `read` needs.
       */
      discover?(host: Host, id: string, identity: Props): Promise<Props | undefined>;
    }
  | {
      /** Why objects of this kind cannot be imported, as one sentence. */
      refused: string;
    };

/**
 * An id of the form create gives most kinds, NAMESPACE/REST with an empty NAMESPACE for the host's own
 * ("/veth0"): the namespace, when there is one, and the rest. Undefined without a slash or a rest.
 */
export function splitNamespace(id: string): { namespace?: string; rest: string } | undefined {
  const slash = id.indexOf("/");
  if (slash < 0 || slash === id.length - 1) return undefined;
  const namespace = id.slice(0, slash);
  return { ...(namespace ? { namespace } : {}), rest: id.slice(slash + 1) };
}

/** What an id NAMESPACE/NAME names: the namespace, and NAME as the property `key` ("name", "device", "key"). */
export function namespacedIdentity(id: string, key: string): Props | undefined {
  const parts = splitNamespace(id);
  return parts && { namespace: parts.namespace, [key]: parts.rest };
}

export interface KindDefinition<Shape extends z.ZodRawShape, Name extends string = string> {
  /** Resource type name, e.g. "Namespace"; also the SDK class name. */
  name: Name;
  description: string;
  /** The resource's own properties (connection and adopt are added for every kind). */
  shape: Shape;
  /** Cross-field rules; report issues on the property they concern. */
  refine?: (spec: z.infer<z.ZodObject<Shape>>, ctx: z.RefinementCtx) => void;
  /**
   * The checked spec in the kernel's spelling, for rules that span fields (one field's transform cannot
   * see another). It gets the connection and adopt along and must keep them; it runs again on values
   * it produced, so it must be idempotent.
   */
  canonical?: (spec: z.infer<z.ZodObject<Shape>>) => z.infer<z.ZodObject<Shape>>;
  /** Property paths ("name", "peer.name") whose change replaces the object; others update in place. */
  replaceOn: readonly string[];
  /**
   * In-place properties with a kernel default: the value update applies when the program stops setting
   * one (null: remove it, e.g. no bridge master). Other in-place properties left unset are simply absent.
   */
  resetTo?: Readonly<Record<string, string | number | boolean | null>>;
  /** Outputs computed by the provider, for the schema and the SDK's output list. */
  outputs?: z.ZodRawShape;
  /** Whether `adopt` means anything for this kind (objects with a natural name do). */
  adoptable: boolean;
  /**
   * `owner` (HASH@PROJECT/STACK, see owner.ts) is carried by what create makes; an object that carries it
   * already is this resource's own, made by a create that was interrupted, and is taken over quietly.
   */
  create(host: Host, spec: z.infer<z.ZodObject<Shape>>, adopt: boolean, owner?: string): Promise<{ id: string; observed: Observed }>;
  /** The object as it is now, or undefined when it is gone. */
  read(host: Host, id: string, olds: Props): Promise<Observed | undefined>;
  update(host: Host, id: string, olds: Props, news: z.infer<z.ZodObject<Shape>>): Promise<Observed>;
  /** Must succeed when the object is already gone. */
  delete(host: Host, id: string, olds: Props): Promise<void>;
  /** How `pulumi import` names and finds an object of this kind. */
  importing: Importing;
  /** Every object of this kind on the host that carries an owner, for `sweep` (what state forgot). */
  tagged(host: Host, source: TagSource): Promise<Tagged[]>;
  /** Output keys that differ from what `news` asks for, beyond the plain property comparison. */
  drift?(id: string, olds: Props, news: Props): string[];
  /**
   * Whether a replacement would clash with the object it replaces (the same kernel name), so the old one
   * must be deleted first. Otherwise the new one is made first and the old one removed at the end of the
   * update: an address moved to .3 before .2 goes keeps the routes through the device. Default: always.
   */
  collides?(olds: Props, news: Props): boolean;
}

/** What a program passes for a resource of this kind (defaults still to apply). */
export type KindInput<Shape extends z.ZodRawShape> = z.input<z.ZodObject<Shape>> & {
  connection: z.input<typeof connection>;
  adopt?: boolean;
};

/** Inputs every kind takes besides its own properties and adopt; never part of a diff. */
export const COMMON_INPUTS = { connection, owner };

export interface Kind<Shape extends z.ZodRawShape = z.ZodRawShape, Name extends string = string> extends KindDefinition<Shape, Name> {
  /** Everything a resource of this kind takes: connection, adopt and its own properties. */
  inputs: z.ZodType<z.infer<z.ZodObject<Shape>> & { connection: Connection; adopt: boolean; owner?: string }, KindInput<Shape>>;
}

export function defineKind<Shape extends z.ZodRawShape, Name extends string>(definition: KindDefinition<Shape, Name>): Kind<Shape, Name> {
  const adopt = definition.adoptable
    ? { adopt: z.boolean().default(false).describe("Take over an object of this name that already exists on the host.") }
    : {};
  type Spec = z.infer<z.ZodObject<Shape>>;
  const { refine, canonical } = definition;
  const object = z.object({ ...COMMON_INPUTS, ...adopt, ...definition.shape });
  // Cross-field rules wait until every value is known; preview sends placeholders.
  const refined = refine
    ? object.superRefine((value, ctx) => {
        if (!containsUnknown(value)) refine(value as Spec, ctx);
      })
    : object;
  const inputs = canonical
    ? refined.transform((value) => (containsUnknown(value) ? value : (canonical(value as Spec) as typeof value)))
    : refined;
  return { ...definition, inputs: inputs as unknown as Kind<Shape, Name>["inputs"] };
}
