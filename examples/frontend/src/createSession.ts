// The therapists' app books a session: POST /sessions (create_session) with the signed-in therapist's access
// token. src/api.ts is generated from docs/openapi.json: `npm run typecheck` fails when the two part ways.
import type { SupabaseClient } from "@supabase/supabase-js";
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

const API_URL = "https://example.execute-api.eu-west-1.amazonaws.com"; // the stack's API URL, without /sessions

type Booking = components["schemas"]["CreateSessionRequest"];
type Session = components["schemas"]["Session"];
type Answers = paths["/sessions"]["post"]["responses"];
type ApiCode = Answers[Exclude<keyof Answers, 201>]["content"]["application/json"]["error"]["code"];

export class BookingError extends Error {
  constructor(
    readonly code: ApiCode | "signed_out" | "network" | "unexpected",
    message: string,
    readonly fields: string[] = [], // invalid_request: the fields to highlight
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const api = createClient<paths>({ baseUrl: API_URL });
const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

// One Idempotency-Key for every attempt, so that a retry never books twice; a form may pass its own, for its clicks.
export async function bookSession(
  supabase: SupabaseClient,
  booking: Booking,
  idempotencyKey: string = crypto.randomUUID(),
): Promise<Session> {
  let retried = false;
  let refreshed = false;
  for (;;) {
    const { data: auth } = await supabase.auth.getSession();
    if (!auth.session) throw new BookingError("signed_out", "Sign in to book a session.");
    let answer;
    try {
      answer = await api.POST("/sessions", {
        body: booking,
        params: { header: { "Idempotency-Key": idempotencyKey } },
        headers: { Authorization: `Bearer ${auth.session.access_token}` },
      });
    } catch (cause) {
      // Offline, a dropped connection, CORS: the session may have been booked, and only the same key may retry.
      if (retried) throw new BookingError("network", "The booking service cannot be reached.", [], { cause });
      retried = true;
      await sleep(1);
      continue;
    }
    const { data, error, response } = answer;
    if (data) return data.session;
    // An answer outside the contract: API Gateway's own timeout (503, 504) may come after a commit, so it is retried
    // once with the same key; anything else (a proxy's 502 page, an empty body) is reported.
    if (!error?.error) {
      if ((response.status === 503 || response.status === 504) && !retried) {
        retried = true;
        await sleep(1);
        continue;
      }
      throw new BookingError("unexpected", `The booking failed (HTTP ${response.status}).`);
    }
    const { code, message } = error.error;
    switch (code) {
      case "unauthorized": // expired or revoked: refresh the session once, then ask to sign in again
        if (refreshed || (await supabase.auth.refreshSession()).error) {
          throw new BookingError("signed_out", "Your sign-in has expired: sign in again.");
        }
        refreshed = true;
        continue;
      case "upstream_unavailable":
        if (retried) throw new BookingError(code, "The service is busy: try again in a minute.");
        retried = true;
        await sleep(Math.min(Number(response.headers.get("Retry-After")) || 1, 30));
        continue;
      case "invalid_request": {
        const fields = ("fields" in error.error && error.error.fields) || []; // only a 400 names fields
        throw new BookingError(code, `Check ${fields.join(", ") || "the details"}.`, fields);
      }
      case "client_not_found":
        throw new BookingError(code, "You have no client with this id.");
      case "client_archived":
        throw new BookingError(code, "This client deleted their account; the client is archived.");
      case "email_conflict":
        throw new BookingError(code, "Another client already has this client's email: ask an administrator.");
      case "not_a_therapist":
        throw new BookingError(code, "Only therapists can book sessions.");
      case "idempotency_key_reused": // the form's key, sent before with other details
        throw new BookingError(code, "This form was already sent with other details: reload it.");
      case "method_not_allowed": // a bug, here or in the service
      case "payload_too_large":
      case "unsupported_media_type":
      case "internal_error":
        throw new BookingError(code, `The booking failed (${message}).`);
      default: {
        const unhandled: never = code; // a code the document added: handle it above
        throw new BookingError("unexpected", `The booking failed (${String(unhandled)}).`);
      }
    }
  }
}
