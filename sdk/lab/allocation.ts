import * as pulumi from "@pulumi/pulumi";
import { LAB_ALLOCATION, LabAllocations, LabDemand } from "../../provider/lab/allocation";
import { shimFor } from "../resource";

export interface LabAllocationArgs {
  demand: LabDemand;
  /** Seats to keep when the resource is new (a lab moved to a new stack); its own last result wins after that. */
  previous?: LabAllocations;
}

export interface LabAllocation {
  /** Every subnet, address and VNI, with every seat of the last run kept. */
  readonly allocations: pulumi.Output<LabAllocations>;
}
/** A Lab's subnets, addresses and VNIs, kept where they were from one run to the next; nothing on any host. */
export class LabAllocation extends pulumi.dynamic.Resource {
  constructor(name: string, args: LabAllocationArgs, opts?: pulumi.CustomResourceOptions) {
    super(shimFor(LAB_ALLOCATION), name, { ...args, allocations: undefined }, opts, "netns", LAB_ALLOCATION);
  }
}
