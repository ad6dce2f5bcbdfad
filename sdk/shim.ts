/**
 * The provider object Pulumi serializes into every resource's state. It holds only the kind's
 * name and loads the installed package when called, so state stays small, no secret or live client
 * is captured, and an upgraded package also serves refresh and destroy of existing resources.
 * Keep it free of imports used at run time: the serializer would capture them.
 */
import type * as pulumi from "@pulumi/pulumi";

export function shim(kind: string): pulumi.dynamic.ResourceProvider {
  // Stored twice per resource (inputs and outputs) and rewritten with every checkpoint, so it holds one
  // function: the dynamic provider host calls `configure` once, right after it loads this object and
  // before any other method, and that is where the kind's methods are put on it.
  // When loading fails, every method fails with the reason: the host keeps this object after a failed
  // configure and would skip a delete or read it lacks. (Comments inside configure would be stored too.)
  const loader = {
    kind,
    async configure() {
      try {
        Object.assign(this, require("pulumi-netns/provider").provider(this.kind));
      } catch (failure) {
        for (const m of ["check", "diff", "create", "read", "update", "delete"]) Object.assign(this, { [m]: () => Promise.reject(failure) });
      }
    },
  };
  // Typed as a provider although its methods appear only once configure has run.
  return loader as unknown as pulumi.dynamic.ResourceProvider;
}
