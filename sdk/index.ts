/**
 * pulumi-netns: Linux network namespaces, veth cables, bridges, addresses, routes, sysctls,
 * iptables NAT, VXLAN cables between hosts and netem link impairment as Pulumi resources, managed over SSH.
 * The dynamic door's classes and Lab (doors/dynamic.ts); `pulumi-netns/native` has the native door's.
 */
export * from "./doors/dynamic";
export * from "./lab";
