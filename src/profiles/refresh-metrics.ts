import { create } from "@bufbuild/protobuf";
import {
  AuthRefreshMetricsSchema,
  type AuthRefreshMetrics,
} from "../../gen/palyra/auth/v1/health_pb.js";

interface Counts {
  attempts: number;
  successes: number;
  failures: number;
}

/**
 * RefreshMetrics counts refresh requests per provider since the daemon
 * started. In memory on purpose: they describe this process's traffic to
 * token endpoints, not stored state.
 */
export class RefreshMetrics {
  private readonly byProvider = new Map<string, Counts>();

  /** record counts one request that reached (or tried to reach) a token endpoint. */
  record(provider: string, success: boolean): void {
    let counts = this.byProvider.get(provider);
    if (counts === undefined) {
      counts = { attempts: 0, successes: 0, failures: 0 };
      this.byProvider.set(provider, counts);
    }
    counts.attempts++;
    if (success) counts.successes++;
    else counts.failures++;
  }

  /** toProto renders the totals and the per-provider counts, sorted by provider. */
  toProto(): AuthRefreshMetrics {
    const providers = [...this.byProvider.entries()].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    const sum = (pick: (c: Counts) => number): bigint =>
      BigInt(providers.reduce((n, [, c]) => n + pick(c), 0));
    return create(AuthRefreshMetricsSchema, {
      attempts: sum((c) => c.attempts),
      successes: sum((c) => c.successes),
      failures: sum((c) => c.failures),
      byProvider: providers.map(([provider, c]) => ({
        provider,
        attempts: BigInt(c.attempts),
        successes: BigInt(c.successes),
        failures: BigInt(c.failures),
      })),
    });
  }
}
