import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatStream, type ChatIds } from "../../src/compat/chat-response.js";

/**
 * ChatStream writes its chunks around a head serialized once instead of
 * JSON.stringify per chunk: every shape must still be byte for byte what
 * JSON.stringify of the whole chunk gives, so SDKs see OpenAI's exact JSON.
 */
describe("chat.completion.chunk bytes", () => {
  const chunkJson = (
    ids: ChatIds,
    includeUsage: boolean,
    delta: unknown,
    finish: string | null,
  ): string =>
    JSON.stringify({
      id: ids.id,
      object: "chat.completion.chunk",
      created: ids.created,
      model: ids.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });

  for (const includeUsage of [false, true]) {
    it(`a text token's chunk, for any text (include_usage ${includeUsage})`, () => {
      const ids = {
        id: "chatcmpl-r1",
        runId: "r1",
        created: 7,
        model: 'a "quoted" model',
      };
      const t = new ChatStream(ids, includeUsage);
      for (const text of [
        'say "hi"\n',
        "\u2028 ünï \u{1F600}",
        "\u0000delta\u0000",
      ]) {
        const [frame] = t.event({ kind: "token", text });
        assert.equal(
          frame?.data,
          chunkJson(ids, includeUsage, { content: text }, null),
        );
      }
    });

    it(`the role, tool-call and finish chunks (include_usage ${includeUsage})`, () => {
      const ids = {
        id: "chatcmpl-r\u2028",
        runId: "r",
        created: 7,
        model: "m",
      };
      const t = new ChatStream(ids, includeUsage);
      assert.equal(
        t.open()[0]?.data,
        chunkJson(
          ids,
          includeUsage,
          { role: "assistant", content: "", refusal: null },
          null,
        ),
      );
      const [call] = t.event({
        kind: "tool_call",
        index: 0,
        id: "c1",
        name: "f",
        argumentsDelta: '{"a"',
      });
      assert.equal(
        call?.data,
        chunkJson(
          ids,
          includeUsage,
          {
            tool_calls: [
              {
                index: 0,
                id: "c1",
                type: "function",
                function: { name: "f", arguments: '{"a"' },
              },
            ],
          },
          null,
        ),
      );
      const [finish] = t.close({ status: "done" }, () => ({}));
      assert.equal(
        finish?.data,
        chunkJson(ids, includeUsage, {}, "tool_calls"),
      );
    });
  }
});
