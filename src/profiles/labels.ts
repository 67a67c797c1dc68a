import {
  AuthProviderKind,
  AuthScopeKind,
  type AuthProfile,
  type AuthProvider,
  type AuthScope,
} from "../../gen/palyra/auth/v1/profile_pb.js";

const PROVIDER_LABELS: Record<AuthProviderKind, string> = {
  [AuthProviderKind.UNSPECIFIED]: "unspecified",
  [AuthProviderKind.OPENAI]: "openai",
  [AuthProviderKind.ANTHROPIC]: "anthropic",
  [AuthProviderKind.TELEGRAM]: "telegram",
  [AuthProviderKind.SLACK]: "slack",
  [AuthProviderKind.DISCORD]: "discord",
  [AuthProviderKind.WEBHOOK]: "webhook",
  [AuthProviderKind.CUSTOM]: "custom",
};

/** providerLabel names a provider for reports, logs and metrics: "openai", or "custom:<name>". */
export function providerLabel(provider: AuthProvider | undefined): string {
  const kind = provider?.kind ?? AuthProviderKind.UNSPECIFIED;
  const label = PROVIDER_LABELS[kind] ?? "unspecified";
  return kind === AuthProviderKind.CUSTOM
    ? `${label}:${provider?.customName ?? ""}`
    : label;
}

/** scopeLabel names a scope for reports: "global" or "agent:<id>". */
export function scopeLabel(scope: AuthScope | undefined): string {
  return scope?.kind === AuthScopeKind.AGENT
    ? `agent:${scope.agentId}`
    : "global";
}

/** sameProvider tells whether a profile is for the provider (custom providers compare by name too). */
export function sameProvider(
  profile: AuthProfile,
  provider: AuthProvider,
): boolean {
  const own = profile.provider;
  if (own === undefined || own.kind !== provider.kind) return false;
  return (
    own.kind !== AuthProviderKind.CUSTOM ||
    own.customName === provider.customName
  );
}

/** agentOf returns the agent a profile is scoped to, or undefined for a global profile. */
export function agentOf(profile: AuthProfile): string | undefined {
  return profile.scope?.kind === AuthScopeKind.AGENT
    ? profile.scope.agentId
    : undefined;
}
