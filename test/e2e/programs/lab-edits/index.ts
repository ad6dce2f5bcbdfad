// A Lab whose nodes, links and LANs are the config's `topology` (JSON), over the hosts a, b and c.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const sshKey = cfg.requireSecret("sshKey");
const topology = cfg.requireObject<Pick<netns.LabArgs, "nodes" | "links" | "lans" | "expect">>("topology");
const host = (suffix: string) => ({ host: cfg.require(`host${suffix}`), hostKey: cfg.require(`hostKey${suffix}`), privateKey: sshKey });

const lab = new netns.Lab("lab", { hosts: { a: host("A"), b: host("B"), c: host("C") }, ...topology });

export const addresses = lab.addresses;
