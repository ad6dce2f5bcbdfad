/** Every resource kind, registered once; the provider entry, SDK and schema all read this list. */
import type { Kind } from "../kind";
import { addressKind } from "./address";
import { bridgeKind } from "./bridge";
import { checkKind } from "./check";
import { labNodeKind } from "./labNode";
import { labSegmentKind } from "./labSegment";
import { masqueradeKind } from "./masquerade";
import { namespaceKind } from "./namespace";
import { netemKind } from "./netem";
import { portForwardKind } from "./portForward";
import { routeKind } from "./route";
import { serviceKind } from "./service";
import { sysctlKind } from "./sysctl";
import { vethKind } from "./veth";
import { vxlanKind } from "./vxlan";

export const kinds = [
  namespaceKind,
  vethKind,
  bridgeKind,
  addressKind,
  routeKind,
  masqueradeKind,
  portForwardKind,
  sysctlKind,
  vxlanKind,
  netemKind,
  serviceKind,
  checkKind,
  labNodeKind,
  labSegmentKind,
] as const satisfies readonly Kind<any>[];

export function kindNamed(name: string): Kind {
  const kind = kinds.find((k) => k.name === name);
  if (!kind) throw new Error(`pulumi-netns: unknown resource kind "${name}"`);
  return kind as unknown as Kind;
}
