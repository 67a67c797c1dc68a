import { AuthHealthState } from "../../../gen/palyra/auth/v1/health_pb.js";

/** HealthChip is how a profile's health state is shown: label, CSS tone and an explanation. */
export interface HealthChip {
  label:
    | "OK"
    | "EXPIRING"
    | "EXPIRED"
    | "MISSING"
    | "STATIC"
    | "NEEDS_REAUTH"
    | "UNKNOWN";
  tone: "good" | "warn" | "bad" | "neutral";
  title: string;
}

/** healthChip maps a health state to its chip; an unknown value is shown as such, never as OK. */
export function healthChip(state: AuthHealthState): HealthChip {
  switch (state) {
    case AuthHealthState.OK:
      return { label: "OK", tone: "good", title: "Credential is valid" };
    case AuthHealthState.EXPIRING:
      return { label: "EXPIRING", tone: "warn", title: "Expires soon" };
    case AuthHealthState.EXPIRED:
      return { label: "EXPIRED", tone: "bad", title: "Expired" };
    case AuthHealthState.MISSING:
      return { label: "MISSING", tone: "bad", title: "No credential stored" };
    case AuthHealthState.STATIC:
      return {
        label: "STATIC",
        tone: "neutral",
        title: "API key: never expires",
      };
    case AuthHealthState.NEEDS_REAUTH:
      return {
        label: "NEEDS_REAUTH",
        tone: "bad",
        title: "Reconnect this profile",
      };
    default:
      return {
        label: "UNKNOWN",
        tone: "neutral",
        title: "Health not reported",
      };
  }
}

/** HEALTH_SEVERITY orders states worst first, for sorting by health. */
const HEALTH_SEVERITY: Record<number, number> = {
  [AuthHealthState.NEEDS_REAUTH]: 0,
  [AuthHealthState.EXPIRED]: 1,
  [AuthHealthState.MISSING]: 2,
  [AuthHealthState.EXPIRING]: 3,
  [AuthHealthState.OK]: 4,
  [AuthHealthState.STATIC]: 5,
};

/** healthSeverity ranks a state for sorting: lower is worse, unknown last. */
export function healthSeverity(state: AuthHealthState): number {
  return HEALTH_SEVERITY[state] ?? 6;
}
