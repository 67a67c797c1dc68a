export { Vault, type VaultOptions } from "./vault.js";
export { MAX_SECRET_BYTES } from "./sealing.js";
export { MAX_LIST_LIMIT, type ListRefsOptions } from "./listing.js";
export {
  parseVaultRef,
  formatVaultRef,
  isVaultScope,
  MAX_VAULT_REF_LENGTH,
  type VaultRefParts,
} from "./vault-ref.js";
export { VAULT_KEY_FILE } from "./key-file.js";
