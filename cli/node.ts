/**
 * A node to work in, for `exec` and `capture`: found in the stack by name, reached with the stack's own SSH
 * settings for its host, and the notes that say what a command waits for.
 */
import type { Connection } from "../provider/connection";
import type { Argv } from "../provider/host";
import { attach, Attached, AttachedIo } from "../provider/ssh/attached";
import { readExistingStack, StackOptions } from "./stack";
import { findNode, NodeView, topologyOf } from "./topology";

export interface NodeTarget {
  node: NodeView;
  /** Credentials: never printed. */
  connection: Connection;
  /** "node gw (namespace gw on east, root@10.0.0.7:22)": how messages name where something runs. */
  where: string;
}

export async function nodeTarget(options: StackOptions, name: string): Promise<NodeTarget> {
  const { owner, state } = await readExistingStack(options);
  const topology = topologyOf(state);
  const node = findNode(topology, owner, name);
  const where = `node ${node.name} (namespace ${node.namespace} on ${node.host}, ${topology.hosts.get(node.host)})`;
  return { node, connection: topology.connections.get(node.host)!, where };
}

/** A line on stderr, apart from the command's own output. */
export const note = (text: string) => process.stderr.write(`pulumi-netns: ${text}\n`);

/** Notes what `work` waits for when it takes longer than `afterMs`. */
export async function noting<T>(work: Promise<T>, afterMs: number, text: string): Promise<T> {
  const timer = setTimeout(() => note(text), afterMs);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}

/** An error of the command on the node, saying where it was going. */
export function failedAt(target: NodeTarget, err: unknown): Error {
  return new Error(`${target.where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Runs argv on the node's host; a connection that fails is reported with where it was going. */
export async function attachTo(target: NodeTarget, argv: Argv, io: AttachedIo): Promise<Attached> {
  try {
    return await noting(attach(target.connection, argv, io), 2_000, `connecting to ${target.where}…`);
  } catch (err) {
    throw failedAt(target, err);
  }
}
