/**
 * FlagReader is the one question other areas ask of feature flags, is a flag
 * on?, so sessions and tokens depend on this contract and not on the access
 * area that implements it (FeatureFlags).
 */
export interface FlagReader {
  isEnabled(name: string): Promise<boolean>;
}
