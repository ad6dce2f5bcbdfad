/**
 * pulumi-netns on the native provider (`pulumi-resource-netns`): the same resources as the package's main
 * entry, with the type tokens of schema.json (`netns:index:Veth`), and the connection given once per host
 * as a `Provider` that resources take through `opts.provider` (doors/native.ts).
 */
export * from "./doors/native";
export * from "./lab";
