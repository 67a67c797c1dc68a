import { z } from "zod";

/**
 * modelProviderSchema is palyra.toml's [model_provider]: the default auth
 * profile and where and how long runs and key checks talk to OpenAI and
 * Anthropic.
 */
export const modelProviderSchema = z
  .object({
    /**
     * The auth profile a run uses when its agent has no profile of its
     * own; no default. SetDefaultProfile writes it here, but the value set
     * through the API (kept in the store, shared by replicas) wins over
     * this one once there is such a value.
     */
    auth_profile_id: z.string().min(1).max(128).optional(),
    /** Chat Completions API base for openai runs; a local fake or a compatible server in tests. */
    openai_base_url: z.url().default("https://api.openai.com/v1"),
    /** Messages API base for anthropic runs. */
    anthropic_base_url: z.url().default("https://api.anthropic.com/v1"),
    /** How long a provider may take to answer, and may stay silent mid-stream, before the run fails UNAVAILABLE. */
    timeout_ms: z.number().int().min(100).max(600_000).default(120_000),
    /** How long a live API key check (ConnectApiKey, ValidateProfile) waits for the provider's /models before UNAVAILABLE. */
    key_check_timeout_ms: z.number().int().min(100).max(60_000).default(10_000),
  })
  .strict()
  .prefault({});
