/**
 * The provider object Pulumi serializes into every resource's state. It holds only the kind's
 * name and loads the installed package when called, so state stays small, no secret or live client
 * is captured, and an upgraded package also serves refresh and destroy of existing resources.
 * Keep it free of imports used at run time: the serializer would capture them.
 */
import type * as pulumi from "@pulumi/pulumi";

export function shim(kind: string): pulumi.dynamic.ResourceProvider {
  const load = () => require("pulumi-netns/provider").provider(kind);
  return {
    check: (olds, news) => load().check(olds, news),
    diff: (id, olds, news) => load().diff(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read(id, props),
    update: (id, olds, news) => load().update(id, olds, news),
    delete: (id, props) => load().delete(id, props),
  };
}
