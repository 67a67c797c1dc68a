import type { ReactNode } from "react";
import { RefreshOutcome } from "../../../gen/palyra/auth/v1/auth_pb.js";
import type { AuthProfileHealth } from "../../../gen/palyra/auth/v1/health_pb.js";
import { CredentialCheckOutcome } from "../../../gen/palyra/auth/v1/profile_pb.js";
import { api } from "../api.js";
import { ConfirmButton } from "../components/ui.js";
import { revocationText } from "../logic/oauth.js";
import type { OAuthFlow } from "./oauth-flow.js";

const CHECK_LABELS: Record<CredentialCheckOutcome, string> = {
  [CredentialCheckOutcome.UNSPECIFIED]: "not checked",
  [CredentialCheckOutcome.VALID]: "valid",
  [CredentialCheckOutcome.REJECTED]: "rejected by the provider",
  [CredentialCheckOutcome.RATE_LIMITED]: "rate limited; try later",
  [CredentialCheckOutcome.UNAVAILABLE]: "provider unavailable",
};

/** ProfileActions are a profile row's buttons: validate, default, refresh, reconnect, revoke, delete. */
export function ProfileActions(props: {
  profile: AuthProfileHealth;
  isDefault: boolean;
  busy: boolean;
  run: (action: () => Promise<void>) => Promise<void>;
  say: (text: string) => void;
  reconnect: OAuthFlow;
  onDefaultChanged: () => void;
}): ReactNode {
  const p = props.profile;
  const id = p.profileId;
  const oauth = p.credentialType === "oauth";
  return (
    <>
      <button
        type="button"
        disabled={props.busy}
        onClick={() =>
          void props.run(async () => {
            const r = await api.auth.validateProfile({ profileId: id });
            props.say(
              `${id}: ${CHECK_LABELS[r.validation?.outcome ?? CredentialCheckOutcome.UNSPECIFIED]}${r.validation?.message ? ` (${r.validation.message})` : ""}`,
            );
          })
        }
      >
        Validate
      </button>
      {!props.isDefault && p.scope === "global" && (
        <button
          type="button"
          disabled={props.busy}
          onClick={() =>
            void props.run(async () => {
              const r = await api.auth.setDefaultProfile({ profileId: id });
              props.onDefaultChanged();
              props.say(
                r.configWritten
                  ? `${id} is now the default profile.`
                  : `${id} is now the default profile, but palyra.toml was not updated${r.configError ? ` (${r.configError})` : ""}.`,
              );
            })
          }
        >
          Set as default
        </button>
      )}
      {oauth && (
        <button
          type="button"
          disabled={props.busy}
          onClick={() =>
            void props.run(async () => {
              const r = await api.auth.refreshProfile({ profileId: id });
              props.say(
                `${id}: refresh ${RefreshOutcome[r.outcome].toLowerCase().replaceAll("_", " ")}${r.reason ? ` (${r.reason})` : ""}`,
              );
            })
          }
        >
          Refresh
        </button>
      )}
      {oauth && p.provider === "openai" && (
        <button
          type="button"
          disabled={props.reconnect.waiting}
          onClick={() =>
            // The flow's own status line reports the outcome.
            props.reconnect.begin(() =>
              api.auth.reconnectProfile({ profileId: id }),
            )
          }
        >
          Reconnect
        </button>
      )}
      {oauth && (
        <ConfirmButton
          label="Revoke"
          confirmLabel="Yes, revoke at the provider and remove"
          onConfirm={() =>
            props.run(async () => {
              const r = await api.auth.revokeProfile({ profileId: id });
              props.onDefaultChanged();
              props.say(revocationText(id, r.outcome, r.deleted));
            })
          }
        />
      )}
      <ConfirmButton
        label="Delete"
        onConfirm={() =>
          props.run(async () => {
            await api.auth.deleteProfile({ profileId: id });
            props.onDefaultChanged();
            props.say(`${id}: deleted`);
          })
        }
      />
    </>
  );
}
