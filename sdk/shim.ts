/**
 * The provider object Pulumi serializes into every resource's state. It holds only the kind's
 * name and loads the installed package when called, so state stays small, no secret or live client
 * is captured, and an upgraded package also serves refresh and destroy of existing resources.
 * Keep it free of imports used at run time: the serializer would capture them.
 */
import type * as pulumi from "@pulumi/pulumi";

export function shim(kind: string): pulumi.dynamic.ResourceProvider {
  const load = () => require("pulumi-netns/provider").provider(kind);
  // Stored twice per resource (inputs and outputs) and rewritten with every checkpoint: every byte counts.
  return {
    check: (...a) => load().check(...a),
    diff: (...a) => load().diff(...a),
    create: (...a) => load().create(...a),
    read: (...a) => load().read(...a),
    update: (...a) => load().update(...a),
    delete: (...a) => load().delete(...a),
  };
}
