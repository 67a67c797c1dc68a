export {
  loadConfig,
  defaultStateDir,
  type PalyraConfig,
  type ConfigFlags,
} from "./load.js";
export { writeConfigFile, writeFileAtomic } from "./write.js";
export { checkExposure } from "./exposure.js";
export {
  parseListenAddress,
  isLoopbackHost,
  formatListenAddress,
  type ListenAddress,
} from "./listen-address.js";
export { allowedHosts, normalizeHost, LOOPBACK_HOSTS } from "./hosts.js";
export {
  parseStoreUrl,
  storeUrlProblem,
  STORE_URL_FORMS,
  type StoreTarget,
} from "./store-url.js";
export { replicaIdOf } from "./replica-id.js";
export { editTomlKey } from "./toml-edit.js";
export { setConfigKey } from "./config-key.js";
