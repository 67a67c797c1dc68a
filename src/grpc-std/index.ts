// The only door into grpc-std. The service descriptors are re-exported so the
// server registers exactly the services these implementations were typed for.
export {
  createHealthService,
  HealthStatusBoard,
  ServingStatus,
  type HealthEvent,
  type HealthListener,
  type HealthServiceOptions,
} from "./health.js";
export {
  createReflectionServices,
  fileRegistryFrom,
  type ReflectionServices,
} from "./reflection.js";
export { Health } from "../../gen/grpc/health/v1/health_pb.js";
export { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
export { ServerReflection as ServerReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
