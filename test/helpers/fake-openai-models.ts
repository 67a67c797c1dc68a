import { openAiText } from "./fake-openai.js";
import { FakeUpstream, type RecordedRequest } from "./fake-upstream.js";

/** ModelsFake is a fake OpenAI API whose /models answer the test sets per key. */
export interface ModelsFake {
  upstream: FakeUpstream;
  /** Keys /models refuses with 401 (revoked upstream); every other key is accepted. */
  revoked: Set<string>;
  /** The /models requests made so far. */
  modelChecks(): RecordedRequest[];
}

/** startModelsFake answers /models like OpenAI (200 with a list, or 401 for a revoked key) and chat streams with "Hello". */
export async function startModelsFake(): Promise<ModelsFake> {
  const revoked = new Set<string>();
  const upstream = await new FakeUpstream((req) => {
    if (!req.path.endsWith("/models"))
      return { kind: "stream", events: openAiText(["Hello"]) };
    const key = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
    return revoked.has(key)
      ? {
          kind: "status",
          status: 401,
          body: {
            error: {
              message: "Incorrect API key provided",
              type: "invalid_request_error",
              code: "invalid_api_key",
            },
          },
        }
      : {
          kind: "status",
          status: 200,
          body: { object: "list", data: [{ id: "gpt-4o", object: "model" }] },
        };
  }).start();
  return {
    upstream,
    revoked,
    modelChecks: () =>
      upstream.requests.filter((r) => r.path.endsWith("/models")),
  };
}
