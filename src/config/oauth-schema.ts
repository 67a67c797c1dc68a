import { z } from "zod";

/**
 * openaiOAuthSchema is palyra.toml's [openai_oauth]: the authorization server
 * StartOAuth, the callback, the refresher and RevokeProfile all use, so any
 * standard OAuth 2.0 / OpenID Connect server can stand in for OpenAI's.
 */
export const openaiOAuthSchema = z
  .object({
    /** The authorization server's issuer: the `iss` its ID tokens and redirects must carry. */
    issuer: z.url().default("https://auth.openai.com"),
    /** Where the browser signs in (authorization code + PKCE S256). */
    authorization_endpoint: z
      .url()
      .default("https://auth.openai.com/oauth/authorize"),
    /** Where codes are exchanged and refresh tokens redeemed; the refresher uses it too. */
    token_endpoint: z.url().default("https://auth.openai.com/oauth/token"),
    /** RFC 7009 revocation endpoint; unset: RevokeProfile only removes local secrets. */
    revocation_endpoint: z.url().optional(),
    /** The public OAuth client id registered with the provider; StartOAuth needs it. */
    client_id: z.string().min(1).max(256).optional(),
    /** Sent as `audience` in the authorization request when set. */
    audience: z.string().min(1).max(512).optional(),
    /** Space-separated scopes asked for when StartOAuth names none. */
    scopes: z
      .string()
      .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, {
        message:
          'expected space-separated OAuth scopes, e.g. "openid profile email offline_access"',
      })
      .default("openid profile email offline_access"),
  })
  .strict()
  .prefault({});
