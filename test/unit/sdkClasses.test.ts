/**
 * The resource classes of both doors come from the kinds list (sdk/resource.ts): one per kind, named after
 * it, registering its type. Their types are the ones the hand-written classes had: `Before` below declares
 * those as they were, and the assertions are checked by the compiler (tsc -p test/tsconfig.json, ts-jest).
 */
/* eslint-disable @typescript-eslint/no-namespace, @typescript-eslint/no-unused-vars, @typescript-eslint/no-unsafe-declaration-merging,
   @typescript-eslint/no-empty-object-type -- `Before` declares the old classes as they were written (class and interface merged) */
import * as pulumi from "@pulumi/pulumi";
import { kinds } from "../../provider/kinds";
import type { addressKind } from "../../provider/kinds/address";
import type { bridgeKind } from "../../provider/kinds/bridge";
import type { checkKind } from "../../provider/kinds/check";
import type { labNodeKind } from "../../provider/kinds/labNode";
import type { masqueradeKind } from "../../provider/kinds/masquerade";
import type { namespaceKind } from "../../provider/kinds/namespace";
import type { netemKind } from "../../provider/kinds/netem";
import type { portForwardKind } from "../../provider/kinds/portForward";
import type { routeKind } from "../../provider/kinds/route";
import type { serviceKind } from "../../provider/kinds/service";
import type { sysctlKind } from "../../provider/kinds/sysctl";
import type { vethKind } from "../../provider/kinds/veth";
import type { vxlanKind } from "../../provider/kinds/vxlan";
import * as dynamic from "../../sdk";
import * as native from "../../sdk/native";
import type { ArgsOf, OutputsOf } from "../../sdk/resource";

type Options = pulumi.CustomResourceOptions;
interface RuleOutputs {
  readonly rules: pulumi.Output<string[]>;
}

/** The dynamic door's classes as they were written by hand, one per kind. */
declare namespace Before {
  class Namespace extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof namespaceKind>, opts?: Options);
  }
  interface Namespace extends OutputsOf<typeof namespaceKind> {}
  class Veth extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof vethKind>, opts?: Options);
  }
  interface Veth extends OutputsOf<typeof vethKind> {}
  class Bridge extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof bridgeKind>, opts?: Options);
  }
  interface Bridge extends OutputsOf<typeof bridgeKind> {}
  class Address extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof addressKind>, opts?: Options);
  }
  interface Address extends OutputsOf<typeof addressKind> {}
  class Route extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof routeKind>, opts?: Options);
  }
  interface Route extends OutputsOf<typeof routeKind> {}
  class Masquerade extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof masqueradeKind>, opts?: Options);
  }
  interface Masquerade extends OutputsOf<typeof masqueradeKind>, RuleOutputs {}
  class PortForward extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof portForwardKind>, opts?: Options);
  }
  interface PortForward extends OutputsOf<typeof portForwardKind>, RuleOutputs {}
  class Sysctl extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof sysctlKind>, opts?: Options);
  }
  interface Sysctl extends OutputsOf<typeof sysctlKind> {
    readonly previous: pulumi.Output<string>;
  }
  class Vxlan extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof vxlanKind>, opts?: Options);
  }
  interface Vxlan extends OutputsOf<typeof vxlanKind> {}
  class Netem extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof netemKind>, opts?: Options);
  }
  interface Netem extends OutputsOf<typeof netemKind> {}
  class Service extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof serviceKind>, opts?: Options);
  }
  interface Service extends OutputsOf<typeof serviceKind> {}
  class Check extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof checkKind>, opts?: Options);
  }
  interface Check extends OutputsOf<typeof checkKind> {}
  class LabNode extends pulumi.dynamic.Resource {
    constructor(name: string, args: ArgsOf<typeof labNodeKind>, opts?: Options);
  }
  interface LabNode extends OutputsOf<typeof labNodeKind> {}
}

type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Exactly equal (for unions of keys: the same keys, none more). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Every<T> = T[keyof T] extends true ? true : false;
type Constructor = abstract new (...args: any[]) => any;
/** The same constructor arguments, the same outputs by name and type, and isInstance. */
type SameClass<Now extends Constructor, Was extends Constructor> = Every<{
  args: Mutual<ConstructorParameters<Now>, ConstructorParameters<Was>>;
  outputs: Equal<keyof InstanceType<Now>, keyof InstanceType<Was>>;
  types: Every<{ [P in keyof InstanceType<Was>]: Mutual<InstanceType<Now>[P], InstanceType<Was>[P]> }>;
  isInstance: Mutual<Now extends { isInstance: infer I } ? I : never, Was extends { isInstance: infer I } ? I : never>;
}>;
type ClassName = keyof typeof Before;

/** Compiles only when T is true: the checks below are the compiler's. */
const holds = <T extends true>(): T => true as T;

// The dynamic door's classes take and give what its hand-written classes did; each Args type is its constructor's.
holds<Every<{ [C in ClassName]: SameClass<(typeof dynamic)[C], (typeof Before)[C]> }>>();
holds<Mutual<dynamic.NamespaceArgs, ConstructorParameters<typeof Before.Namespace>[1]>>();
holds<Mutual<dynamic.SysctlArgs, ConstructorParameters<typeof Before.Sysctl>[1]>>();
holds<Mutual<dynamic.LabNodeArgs, ConstructorParameters<typeof Before.LabNode>[1]>>();
holds<Equal<dynamic.Masquerade["rules"], pulumi.Output<string[]>>>();
// @ts-expect-error: only the rule kinds declare rules.
holds<Equal<dynamic.Namespace["rules"], pulumi.Output<string[]>>>();

// The native door's classes take their kind's arguments but the connection, and give its outputs but the connection,
type NativeBefore<K> = new (
  name: string,
  args: Omit<ArgsOf<K>, "connection">,
  opts?: Options,
) => pulumi.CustomResource & Omit<OutputsOf<K>, "connection">;
holds<Mutual<ConstructorParameters<typeof native.Veth>, ConstructorParameters<NativeBefore<typeof vethKind>>>>();
holds<Mutual<native.Veth, InstanceType<NativeBefore<typeof vethKind>>>>();
holds<Mutual<ConstructorParameters<typeof native.LabNode>, ConstructorParameters<NativeBefore<typeof labNodeKind>>>>();
// Every class: the dynamic one's arguments and outputs but the connection.
type NativeArgs<C extends ClassName> = ConstructorParameters<(typeof native)[C]>[1];
type NativeOutputs<C extends ClassName> = keyof InstanceType<(typeof native)[C]>;
holds<Every<{ [C in ClassName]: Mutual<NativeArgs<C>, Omit<ConstructorParameters<(typeof Before)[C]>[1], "connection">> }>>();
holds<Every<{ [C in ClassName]: Equal<NativeOutputs<C>, Exclude<keyof InstanceType<(typeof Before)[C]>, "connection">> }>>();
// and besides, the computed outputs the dynamic door declares (the native provider reports them too).
holds<Mutual<native.Sysctl, InstanceType<NativeBefore<typeof sysctlKind>> & { readonly previous: pulumi.Output<string> }>>();
holds<Mutual<native.PortForward, InstanceType<NativeBefore<typeof portForwardKind>> & RuleOutputs>>();
// @ts-expect-error: no connection on the native door.
holds<Equal<keyof native.Veth & "connection", "connection">>();

describe("one class per kind of the kinds list, on each door, registering that kind", () => {
  const registered: { type: string; name: string }[] = [];
  beforeAll(() => {
    pulumi.runtime.setMocks(
      {
        newResource: async (args) => (registered.push({ type: args.type, name: args.name }), { id: `${args.name}-id`, state: args.inputs }),
        call: () => ({}),
      },
      "project",
      "stack",
      false,
    );
  });

  const doors = [
    { door: "dynamic", classes: dynamic, base: pulumi.dynamic.Resource, type: (kind: string) => `pulumi-nodejs:dynamic/netns:${kind}` },
    { door: "native", classes: native, base: pulumi.CustomResource, type: (kind: string) => `netns:index:${kind}` },
  ];
  test.each(doors)("$door", async ({ door, classes, base, type }) => {
    type AnyClass = new (name: string, args: Record<string, unknown>) => pulumi.CustomResource;
    const made = kinds.map((kind) => {
      const Class = classes[kind.name as ClassName] as unknown as AnyClass;
      expect({ kind: kind.name, name: Class.name, extendsBase: Class.prototype instanceof base }).toEqual({
        kind: kind.name,
        name: kind.name,
        extendsBase: true,
      });
      return new Class(`${door}-${kind.name}`, door === "dynamic" ? { connection: { host: "198.18.0.2" } } : {});
    });
    await new Promise((resolve) => pulumi.all(made.map((r) => r.urn)).apply(resolve));
    // Registrations complete in any order.
    const types = Object.fromEntries(registered.filter((r) => r.name.startsWith(`${door}-`)).map((r) => [r.name, r.type]));
    expect(types).toEqual(Object.fromEntries(kinds.map((kind) => [`${door}-${kind.name}`, type(kind.name)])));
  });
});
