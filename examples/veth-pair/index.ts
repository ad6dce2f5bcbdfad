// The first recipe: two namespaces and one virtual cable between them.
//   ip netns add red; ip netns add blue
//   ip link add veth-red type veth peer name veth-blue
//   ip link set veth-red netns red; ip link set veth-blue netns blue
//   ip -n red addr add 192.168.15.1/24 dev veth-red; ip -n blue addr add 192.168.15.2/24 dev veth-blue
//   ip -n red link set veth-red up; ip -n blue link set veth-blue up
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection: netns.ConnectionArgs = {
  host: cfg.require("host"),
  privateKey: cfg.requireSecret("sshKey"),
  hostKey: cfg.require("hostKey"),
};

const red = new netns.Namespace("red", { connection, name: "red" });
const blue = new netns.Namespace("blue", { connection, name: "blue" });

const cable = new netns.Veth("red-blue", {
  connection,
  name: "veth-red",
  namespace: red.name,
  peer: { name: "veth-blue", namespace: blue.name },
});

new netns.Address("red", { connection, namespace: red.name, device: cable.name, address: "192.168.15.1/24" });
new netns.Address("blue", { connection, namespace: blue.name, device: cable.peer.name, address: "192.168.15.2/24" });

export const namespaces = [red.name, blue.name];
