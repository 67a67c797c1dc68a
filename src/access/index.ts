export {
  AccessServiceImpl,
  callerOf,
  type AccessServiceDeps,
} from "./access-service.js";
