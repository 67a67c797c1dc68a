export {
  Vault,
  MAX_SECRET_BYTES,
  MAX_LIST_LIMIT,
  type VaultOptions,
} from "./vault.js";
export {
  parseVaultRef,
  formatVaultRef,
  isVaultScope,
  MAX_VAULT_REF_LENGTH,
  type VaultRefParts,
} from "./vault-ref.js";
export { VAULT_KEY_FILE } from "./key-file.js";
