import { createRegistry, type DescFile } from "@bufbuild/protobuf";
import { file_palyra_access_v1_access } from "../../gen/palyra/access/v1/access_pb.js";
import { file_palyra_access_v1_audit } from "../../gen/palyra/access/v1/audit_pb.js";
import { file_palyra_access_v1_tokens } from "../../gen/palyra/access/v1/tokens_pb.js";
import { file_palyra_access_v1_workspaces } from "../../gen/palyra/access/v1/workspaces_pb.js";
import { file_palyra_auth_v1_auth } from "../../gen/palyra/auth/v1/auth_pb.js";
import { file_palyra_auth_v1_health } from "../../gen/palyra/auth/v1/health_pb.js";
import { file_palyra_auth_v1_oauth } from "../../gen/palyra/auth/v1/oauth_pb.js";
import { file_palyra_auth_v1_profile } from "../../gen/palyra/auth/v1/profile_pb.js";
import { file_palyra_common_v1_access } from "../../gen/palyra/common/v1/access_pb.js";
import { file_palyra_common_v1_permissions } from "../../gen/palyra/common/v1/permissions_pb.js";
import { file_palyra_common_v1_sensitive } from "../../gen/palyra/common/v1/sensitive_pb.js";
import { file_palyra_compat_v1_compat } from "../../gen/palyra/compat/v1/compat_pb.js";
import { file_palyra_run_v1_run } from "../../gen/palyra/run/v1/run_pb.js";
import { file_palyra_session_v1_session } from "../../gen/palyra/session/v1/session_pb.js";
import { file_palyra_store_v1_audit } from "../../gen/palyra/store/v1/audit_pb.js";
import { file_palyra_store_v1_default_profile } from "../../gen/palyra/store/v1/default_profile_pb.js";
import { file_palyra_store_v1_meta } from "../../gen/palyra/store/v1/meta_pb.js";
import { file_palyra_store_v1_oauth_attempts } from "../../gen/palyra/store/v1/oauth_attempts_pb.js";
import { file_palyra_store_v1_runs } from "../../gen/palyra/store/v1/runs_pb.js";
import { file_palyra_store_v1_sessions } from "../../gen/palyra/store/v1/sessions_pb.js";
import { file_palyra_store_v1_tokens } from "../../gen/palyra/store/v1/tokens_pb.js";
import { file_palyra_store_v1_workspaces } from "../../gen/palyra/store/v1/workspaces_pb.js";
import { file_palyra_vault_v1_vault } from "../../gen/palyra/vault/v1/vault_pb.js";

/**
 * palyraFiles is every generated palyra proto file, wire and storage alike: a
 * test checks it against gen/palyra so that a new file cannot be left out.
 */
export const palyraFiles: readonly DescFile[] = [
  file_palyra_access_v1_access,
  file_palyra_access_v1_audit,
  file_palyra_access_v1_tokens,
  file_palyra_access_v1_workspaces,
  file_palyra_auth_v1_auth,
  file_palyra_auth_v1_health,
  file_palyra_auth_v1_oauth,
  file_palyra_auth_v1_profile,
  file_palyra_common_v1_access,
  file_palyra_common_v1_permissions,
  file_palyra_common_v1_sensitive,
  file_palyra_compat_v1_compat,
  file_palyra_run_v1_run,
  file_palyra_session_v1_session,
  file_palyra_store_v1_audit,
  file_palyra_store_v1_default_profile,
  file_palyra_store_v1_meta,
  file_palyra_store_v1_oauth_attempts,
  file_palyra_store_v1_runs,
  file_palyra_store_v1_sessions,
  file_palyra_store_v1_tokens,
  file_palyra_store_v1_workspaces,
  file_palyra_vault_v1_vault,
];

/** messageRegistry finds the schema of any palyra message by its `$typeName`, so the logger can redact a message it is handed by the sensitive option. */
export const messageRegistry = createRegistry(...palyraFiles);
