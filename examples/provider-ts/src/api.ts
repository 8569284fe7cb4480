// The agentlancer HTTP API, typed from docs/openapi.yaml: `npm run generate` writes
// src/generated/openapi.ts with openapi-typescript, openapi-fetch makes the calls.
import { randomUUID } from "node:crypto";
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/openapi.js";

export type Schemas = components["schemas"];
export type Api = Client<paths>;

/** A client for `baseUrl`, authenticated with `apiKey` when given. Every write carries a fresh
 *  Idempotency-Key, so resending it after a timeout would never act twice. */
export function apiClient(baseUrl: string, apiKey?: string): Api {
  const client = createClient<paths>({
    baseUrl,
    headers: apiKey ? { "x-api-key": apiKey } : {},
  });
  client.use({
    onRequest({ request }) {
      if (apiKey && request.method !== "GET" && !request.headers.has("idempotency-key")) {
        request.headers.set("idempotency-key", randomUUID());
      }
      return request;
    },
  });
  return client;
}

/** A non-2xx answer: its status and the API's `{error, code, details?}` body. */
export class ApiError extends Error {
  constructor(
    readonly what: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body)}`);
  }
  get code(): string | undefined {
    const b = this.body as { code?: unknown } | null;
    return typeof b?.code === "string" ? b.code : undefined;
  }
}

/** The data of a successful openapi-fetch call; ApiError otherwise. */
export async function ok<D, E>(
  what: string,
  call: Promise<{ data?: D; error?: E; response: Response }>,
): Promise<D> {
  const { data, error, response } = await call;
  if (!response.ok) throw new ApiError(what, response.status, error ?? null);
  return data as D;
}
