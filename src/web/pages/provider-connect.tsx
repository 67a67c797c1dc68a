import { useState, type ReactNode } from "react";
import {
  AuthProviderKind,
  AuthScopeKind,
  CredentialCheckOutcome,
} from "../../../gen/palyra/auth/v1/profile_pb.js";
import { api } from "../api.js";
import { ErrorText, useAction } from "../components/ui.js";
import { attemptText } from "../logic/oauth.js";
import { OAuthProgress, useOAuthFlow } from "./oauth-flow.js";

/**
 * ConnectMethod is one way to connect a provider. Each method is its own
 * form.
 */
interface ConnectMethod {
  id: string;
  label: string;
  provider: AuthProviderKind;
  render: (done: (message: string) => void) => ReactNode;
}

const METHODS: ConnectMethod[] = [
  {
    id: "openai-api-key",
    label: "OpenAI API key",
    provider: AuthProviderKind.OPENAI,
    render: (done) => (
      <ApiKeyForm provider={AuthProviderKind.OPENAI} onDone={done} />
    ),
  },
  {
    id: "openai-oauth",
    label: "Connect OpenAI with OAuth",
    provider: AuthProviderKind.OPENAI,
    render: (done) => <OAuthForm onDone={done} />,
  },
  {
    id: "anthropic-api-key",
    label: "Anthropic API key",
    provider: AuthProviderKind.ANTHROPIC,
    render: (done) => (
      <ApiKeyForm provider={AuthProviderKind.ANTHROPIC} onDone={done} />
    ),
  },
];

/** ConnectWizard picks a provider and a method, then runs that method's form. */
export function ConnectWizard(props: { onChanged?: () => void }): ReactNode {
  const [method, setMethod] = useState<string>("");
  const [message, setMessage] = useState("");
  const chosen = METHODS.find((m) => m.id === method);
  return (
    <div className="card" role="region" aria-labelledby="connect-title">
      <h2 id="connect-title">Connect a provider</h2>
      <fieldset className="choices">
        <legend>Method</legend>
        {METHODS.map((m) => (
          <label key={m.id}>
            <input
              type="radio"
              name="connect-method"
              value={m.id}
              checked={method === m.id}
              onChange={() => {
                setMethod(m.id);
                setMessage("");
              }}
            />
            {m.label}
          </label>
        ))}
      </fieldset>
      {chosen?.render((msg) => {
        setMessage(msg);
        props.onChanged?.();
        setMethod("");
      })}
      {message && (
        <p role="status" data-testid="connect-result">
          {message}
        </p>
      )}
    </div>
  );
}

const OUTCOME: Record<CredentialCheckOutcome, string> = {
  [CredentialCheckOutcome.UNSPECIFIED]: "saved (not checked)",
  [CredentialCheckOutcome.VALID]: "key valid",
  [CredentialCheckOutcome.REJECTED]: "key rejected",
  [CredentialCheckOutcome.RATE_LIMITED]: "rate limited",
  [CredentialCheckOutcome.UNAVAILABLE]: "provider unavailable",
};

/**
 * ApiKeyForm sends a key to ConnectApiKey, which checks it with the provider
 * before saving. The key lives only in the uncontrolled password field and
 * is cleared as soon as it is sent; it is never shown again.
 */
function ApiKeyForm(props: {
  provider: AuthProviderKind;
  onDone: (message: string) => void;
}): ReactNode {
  const [name, setName] = useState("");
  const [agent, setAgent] = useState("");
  const [makeDefault, setMakeDefault] = useState(false);
  const action = useAction();
  return (
    <form
      aria-label="Connect with an API key"
      onSubmit={(e) => {
        e.preventDefault();
        const keyField = e.currentTarget.elements.namedItem(
          "api-key",
        ) as HTMLInputElement;
        const apiKey = keyField.value;
        keyField.value = "";
        void action.run(async () => {
          const res = await api.auth.connectApiKey({
            provider: props.provider,
            profileName: name.trim(),
            apiKey,
            setDefault: makeDefault && agent.trim() === "",
            scope:
              agent.trim() === ""
                ? { kind: AuthScopeKind.GLOBAL }
                : { kind: AuthScopeKind.AGENT, agentId: agent.trim() },
          });
          const outcome =
            OUTCOME[
              res.profile?.lastValidation?.outcome ??
                CredentialCheckOutcome.UNSPECIFIED
            ];
          props.onDone(
            `${res.created ? "Connected" : "Updated"} ${res.profile?.profileId ?? ""}: ${outcome}${makeDefault && agent.trim() === "" ? "; now the default" : ""}`,
          );
        });
      }}
    >
      <label htmlFor="profile-name">Profile name</label>
      <input
        id="profile-name"
        value={name}
        onChange={(e) => setName(e.target.value)}
        required
        maxLength={64}
      />
      <label htmlFor="agent-id">Agent (empty: every agent)</label>
      <input
        id="agent-id"
        value={agent}
        onChange={(e) => setAgent(e.target.value)}
      />
      <label htmlFor="api-key">API key</label>
      <input
        id="api-key"
        name="api-key"
        type="password"
        autoComplete="off"
        spellCheck={false}
        required
      />
      <DefaultCheckbox
        checked={makeDefault}
        agent={agent}
        onChange={setMakeDefault}
      />
      <button type="submit" disabled={action.busy}>
        {action.busy ? "Checking the key…" : "Validate and save"}
      </button>
      <ErrorText error={action.error} />
    </form>
  );
}

/**
 * OAuthForm signs in with OpenAI in a popup (authorization code + PKCE on
 * the daemon's side); the daemon's callback saves the profile.
 */
function OAuthForm(props: { onDone: (message: string) => void }): ReactNode {
  const [name, setName] = useState("");
  const [agent, setAgent] = useState("");
  const [makeDefault, setMakeDefault] = useState(false);
  const flow = useOAuthFlow();
  return (
    <form
      aria-label="Connect OpenAI with OAuth"
      onSubmit={(e) => {
        e.preventDefault();
        flow.begin(
          () =>
            api.auth.startOAuth({
              provider: AuthProviderKind.OPENAI,
              profileName: name.trim(),
              setDefault: makeDefault && agent.trim() === "",
              scope:
                agent.trim() === ""
                  ? { kind: AuthScopeKind.GLOBAL }
                  : { kind: AuthScopeKind.AGENT, agentId: agent.trim() },
            }),
          (a) => props.onDone(attemptText(a).text),
        );
      }}
    >
      <label htmlFor="oauth-profile-name">Profile name</label>
      <input
        id="oauth-profile-name"
        value={name}
        onChange={(e) => setName(e.target.value)}
        required
        maxLength={64}
      />
      <label htmlFor="oauth-agent-id">Agent (empty: every agent)</label>
      <input
        id="oauth-agent-id"
        value={agent}
        onChange={(e) => setAgent(e.target.value)}
      />
      <DefaultCheckbox
        checked={makeDefault}
        agent={agent}
        onChange={setMakeDefault}
      />
      <button type="submit" disabled={flow.waiting}>
        {flow.waiting ? "Waiting for the sign-in…" : "Sign in with OpenAI"}
      </button>
      <OAuthProgress flow={flow} />
    </form>
  );
}

/** DefaultCheckbox asks for set_default; only a global profile (no agent) can be the default. */
function DefaultCheckbox(props: {
  checked: boolean;
  agent: string;
  onChange: (checked: boolean) => void;
}): ReactNode {
  const global = props.agent.trim() === "";
  return (
    <label className="check">
      <input
        type="checkbox"
        checked={props.checked && global}
        disabled={!global}
        onChange={(e) => props.onChange(e.target.checked)}
      />
      Make it the default profile (global profiles only)
    </label>
  );
}
