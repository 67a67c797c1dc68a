/**
 * BackgroundTask is periodic work an area hands to the server (sweeps,
 * write-backs): started on listen, and stopped before the store closes so a
 * last run never writes to a closed store.
 */
export interface BackgroundTask {
  start(): void;
  stop(): Promise<void>;
}
