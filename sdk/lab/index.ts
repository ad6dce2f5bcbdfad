/** What a program uses of the Lab besides the door's `Lab` class: planning, the plan, the spec, errors. */
export { LabTopologyError } from "../../provider/lab/allocation";
export type { LabAllocations } from "../../provider/lab/allocation";
export { endImpairment } from "./impairment";
export type { LabArgs, LabHost } from "./component";
export type { LabPlan } from "./plan";
export { planLab } from "./planner";
export type { LabSpec, LinkImpairment } from "./spec";
