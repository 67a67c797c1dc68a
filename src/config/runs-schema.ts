import { z } from "zod";

/** runsSchema is palyra.toml's [runs]: how soon the runs of a replica that stopped mid-run are failed. */
export const runsSchema = z
  .object({
    /**
     * How long an engine instance's liveness lease lasts (renewed every
     * third of it), and the time between two sweeps of the runs stopped
     * replicas left in progress: such a run is failed within about twice
     * this after its replica stopped.
     */
    liveness_seconds: z.number().int().min(1).max(3600).default(30),
  })
  .strict()
  .prefault({});
