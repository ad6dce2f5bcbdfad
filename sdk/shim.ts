/**
 * The provider object Pulumi serializes into every resource's state. It holds only the kind's
 * name and loads the installed package when called, so state stays small, no secret or live client
 * is captured, and an upgraded package also serves refresh and destroy of existing resources.
 * Keep it free of imports used at run time: the serializer would capture them.
 */
import type * as pulumi from "@pulumi/pulumi";

/**
 * Stored twice per resource (inputs and outputs) and rewritten with every checkpoint, so the object holds
 * one function, this: the dynamic provider host calls `configure` once, right after it loads the object
 * and before any other method, and it puts the kind's methods on it. When loading fails (say, a destroy
 * after the package was uninstalled), every method fails with the reason: the host keeps the object after
 * a failed configure and would skip a delete or read it lacks. Its text is what is stored: an anonymous
 * function (a named one is stored with a binding of its own name), without comments inside.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- the installed package, loaded when called (no comment may go inside) */
const configure = async function (this: Record<string, unknown>): Promise<void> {
  try {
    Object.assign(this, require("pulumi-netns/provider").provider(this.kind));
  } catch (e) {
    this.check = this.diff = this.create = this.read = this.update = this.delete = () => Promise.reject(e);
  }
};
/* eslint-enable @typescript-eslint/no-require-imports */

export function shim(kind: string): pulumi.dynamic.ResourceProvider {
  // Typed as a provider although its methods appear only once configure has run.
  return { kind, configure } as unknown as pulumi.dynamic.ResourceProvider;
}
