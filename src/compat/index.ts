export {
  registerCompatRoutes,
  COMPAT_BODY_LIMIT,
  COMPAT_FLAG,
  type CompatDeps,
  type ErrorRenderer,
} from "./routes.js";
